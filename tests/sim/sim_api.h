/* sim_api.h - included before an app's source (sim_app_*.c): the app's
 * calls of the public API go through these wrappers, which count how deep
 * inside a mux_* call the handler is (a callback run there breaks the
 * promise of mux/conn.h) and tell the world when the app itself ends or
 * shuts a connection (its replies may then be cut short). */
#ifndef MUX_SIM_API_H
#define MUX_SIM_API_H

#include <mux/mux.h>

#include "sim.h"

static inline int sim_mux_conn_send(struct mux_conn *c, const void *buf, size_t len)
{
    sim_api_depth++;
    int rc = mux_conn_send(c, buf, len);
    sim_api_depth--;
    if (rc == 0)
        sim_world_queued(c, len);
    return rc;
}

static inline int sim_mux_conn_sendfile(struct mux_conn *c, int fd, off_t off, size_t len)
{
    sim_api_depth++;
    int rc = mux_conn_sendfile(c, fd, off, len);
    sim_api_depth--;
    if (rc == 0)
        sim_world_queued(c, len);
    return rc;
}

#define SIM_WRAP_VOID(name, decl, args, ends)                                                    \
    static inline void sim_##name decl                                                         \
    {                                                                                          \
        if (ends)                                                                              \
            sim_world_app_ended(c);                                                            \
        sim_api_depth++;                                                                       \
        name args;                                                                             \
        sim_api_depth--;                                                                       \
    }

SIM_WRAP_VOID(mux_conn_want_writable, (struct mux_conn * c, bool on), (c, on), false)
SIM_WRAP_VOID(mux_conn_pause_read, (struct mux_conn * c), (c), false)
SIM_WRAP_VOID(mux_conn_resume_read, (struct mux_conn * c), (c), false)
SIM_WRAP_VOID(mux_conn_close, (struct mux_conn * c), (c), true)
SIM_WRAP_VOID(mux_conn_shutdown_write, (struct mux_conn * c), (c), true)
SIM_WRAP_VOID(mux_conn_abort, (struct mux_conn * c), (c), true)
SIM_WRAP_VOID(mux_conn_set_timeout, (struct mux_conn * c, unsigned ms), (c, ms), false)
SIM_WRAP_VOID(mux_conn_set_deadline, (struct mux_conn * c, unsigned ms), (c, ms), ms != 0)

static inline uint64_t sim_mux_timer_start(struct mux_worker *w, unsigned delay, unsigned repeat,
                                           mux_timer_fn fn, void *arg)
{
    sim_api_depth++;
    uint64_t id = mux_timer_start(w, delay, repeat, fn, arg);
    sim_api_depth--;
    return id;
}

static inline bool sim_mux_timer_cancel(struct mux_worker *w, uint64_t id)
{
    sim_api_depth++;
    bool ok = mux_timer_cancel(w, id);
    sim_api_depth--;
    return ok;
}

static inline int sim_mux_server_post(struct mux_server *s, unsigned worker, mux_post_fn fn,
                                      void *arg)
{
    sim_api_depth++;
    int rc = mux_server_post(s, worker, fn, arg);
    sim_api_depth--;
    return rc;
}

#define mux_conn_send sim_mux_conn_send
#define mux_server_post sim_mux_server_post
#define mux_conn_sendfile sim_mux_conn_sendfile
#define mux_conn_want_writable sim_mux_conn_want_writable
#define mux_conn_pause_read sim_mux_conn_pause_read
#define mux_conn_resume_read sim_mux_conn_resume_read
#define mux_conn_close sim_mux_conn_close
#define mux_conn_shutdown_write sim_mux_conn_shutdown_write
#define mux_conn_abort sim_mux_conn_abort
#define mux_conn_set_timeout sim_mux_conn_set_timeout
#define mux_conn_set_deadline sim_mux_conn_set_deadline
#define mux_timer_start sim_mux_timer_start
#define mux_timer_cancel sim_mux_timer_cancel

#endif
