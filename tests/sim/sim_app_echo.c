/* The mux-echo app (apps/echo.c) as it is, its calls wrapped (sim_api.h). */
#include "sim_api.h"
#define main sim_echo_main
#include "echo.c"

const struct mux_handler *const sim_echo_handler = &echo_handler;
