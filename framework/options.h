/* options.h - defaults and cross-key checks for struct mux_options (private). */
#ifndef MUX_OPTIONS_H
#define MUX_OPTIONS_H

#include "mux/config.h"
#include "mux/server.h"

/* Rules that span keys (low water <= high water, ...). 0 or -EINVAL with
 * err->key naming the offending key ("server.write_low_water"). */
int mux__options_check(const struct mux_options *o, struct mux_error *err);

/* workers, with 0 resolved to the number of online CPUs. */
unsigned mux__options_workers(const struct mux_options *o);

/* Bytes of the field a key row stores into (MUX_CFG_LISTEN: the listen
 * array and its count). */
size_t mux__key_size(const struct mux_config_key *k);

#endif
