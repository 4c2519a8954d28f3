/* mux/mux.h - umbrella header: everything an app needs. */
#ifndef MUX_MUX_H
#define MUX_MUX_H

#include "app.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "server.h"
#include "worker.h"

#define MUX_VERSION_MAJOR 0
#define MUX_VERSION_MINOR 1
#define MUX_VERSION_PATCH 0
#define MUX_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string (may differ from the header's). */
const char *mux_version(void);

#ifdef __cplusplus
}
#endif
#endif
