/* The mux-chat app (apps/chat.c) as it is, its calls wrapped (sim_api.h). */
#include "sim_api.h"
#define main sim_chat_main
#include "chat.c"

const struct mux_handler *const sim_chat_handler = &chat_handler;
void *const sim_chat_app = &opts; /* its limits: 4096-byte lines, 1 MiB queued per client */
