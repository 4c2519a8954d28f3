/* notify.c - telling a service manager how the server is doing (systemd's
 * Type=notify): READY=1 once serving, RELOADING=1 around a reload,
 * STOPPING=1 when the shutdown begins. libsystemd's sd_notify() does the
 * work; without $NOTIFY_SOCKET it does nothing, and a build without
 * libsystemd (MUX_HAVE_SYSTEMD undefined) never notifies. */
#include <stdio.h>
#include <time.h>

#include "mux/log.h"
#include "server_priv.h"

#ifdef MUX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void mux__notify(const char *state)
{
#ifdef MUX_HAVE_SYSTEMD
    char buf[128];
    const char *msg = state;
    if (state[0] == 'R' && state[2] == 'L') { /* RELOADING=1 carries the time it began */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(buf, sizeof(buf), "%s\nMONOTONIC_USEC=%llu", state,
                 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
        msg = buf;
    }
    int rc = sd_notify(0, msg);
    if (rc < 0)
        mux_log(MUX_LOG_WARN, "sd_notify(%s): error %d", state, -rc);
#else
    (void)state;
#endif
}
