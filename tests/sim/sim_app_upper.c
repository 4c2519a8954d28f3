/* The mux-upper app (apps/upper.c) as it is, its calls wrapped (sim_api.h). */
#include "sim_api.h"
#define main sim_upper_main
#include "upper.c"

const struct mux_handler *const sim_upper_handler = &upper_handler;
