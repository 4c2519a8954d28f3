/* compiler.h - small portable helpers shared by the framework's files. */
#ifndef MUX_COMPILER_H
#define MUX_COMPILER_H

#include <stddef.h>

#define MUX_API __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define MUX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
