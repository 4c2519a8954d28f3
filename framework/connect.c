/* connect.c - outbound connections (mux/worker.h): numeric addresses only,
 * so a worker never waits on a name lookup; the connection itself is
 * conn.c's (state CONNECTING, then the same life as an accepted one). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "conn.h"
#include "mux/worker.h"
#include "worker.h"

static int bad(char *msg, size_t size, const char *fmt, const char *text)
{
    if (msg && size)
        snprintf(msg, size, fmt, text);
    return -EINVAL;
}

MUX_API int mux_addr_parse_numeric(const char *text, struct sockaddr_storage *out, socklen_t *len,
                                   char *msg, size_t msg_size)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_str;
    size_t hlen;
    bool v6 = text[0] == '[';
    if (v6) {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return bad(msg, msg_size, "\"%s\": want [IPv6]:PORT", text);
        hlen = (size_t)(close - text - 1);
        text++;
        port_str = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon)
            return bad(msg, msg_size, "\"%s\": want IPv4:PORT or [IPv6]:PORT", text);
        hlen = (size_t)(colon - text);
        port_str = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return bad(msg, msg_size, "\"%s\": want a numeric address", text);
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(port_str, &end, 10);
    if (*port_str == '\0' || *end != '\0' || errno || port < 1 || port > 65535)
        return bad(msg, msg_size, "bad port \"%s\" (want 1..65535)", port_str);
    memset(out, 0, sizeof(*out));
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return bad(msg, msg_size, "\"%s\" is not a numeric IPv6 address", host);
        *len = sizeof(*a);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return bad(msg, msg_size,
                   "\"%s\" is not a numeric IPv4 address (names are not resolved: a lookup "
                   "would block the worker)", host);
    *len = sizeof(*a);
    return 0;
}

MUX_API int mux_worker_connect(struct mux_worker *pw, const struct sockaddr *addr,
                               socklen_t addr_len, const struct mux_handler *handler, void *data,
                               unsigned timeout_ms, struct mux_conn **out)
{
    struct mux__worker *w = mux__worker_priv(pw);
    if (!addr || !out || (handler && !handler->on_read))
        return -EINVAL;
    if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
        return -EAFNOSUPPORT;
    if (w->finished)
        return -ESHUTDOWN;
    return mux__conn_connect(w, addr, addr_len, handler ? handler : w->handler, data, timeout_ms,
                             out);
}
