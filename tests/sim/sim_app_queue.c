/* The mux-queue app (apps/queue.c) as it is, its calls wrapped (sim_api.h). */
#include "sim_api.h"
#define main sim_queue_main
#include "queue.c"

const struct mux_handler *const sim_queue_handler = &queue_handler;
void *const sim_queue_app = &opts; /* its limits: depth 16, 4096-byte messages */
