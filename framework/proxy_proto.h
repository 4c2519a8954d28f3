/* proxy_proto.h - the PROXY protocol header (v1 text, v2 binary) that a
 * load balancer such as HAProxy (send-proxy / send-proxy-v2) writes at the
 * start of a connection to carry the real client address (private).
 * A pure, incremental parser over the bytes received so far: no state
 * between calls, no allocation, thread-safe. */
#ifndef MUX_PROXY_PROTO_H
#define MUX_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* v1: the spec's longest line ("PROXY UNKNOWN" + two IPv6 addresses and
 * ports), CRLF included. Without a CRLF within it the header is invalid. */
#define MUX__PROXY_V1_MAX 107
/* v2: the largest length field accepted (addresses + TLVs). The spec allows
 * 65535; HAProxy's headers (addresses, ALPN, authority, unique-id, SSL
 * TLVs) stay far below, and a bound keeps a connection's pre-handler input
 * small. */
#define MUX__PROXY_V2_MAX_LEN 2048
/* The most bytes a complete header can take (v2 fixed part + length): the
 * input a connection must be able to hold before the header is complete. */
#define MUX__PROXY_HEADER_MAX (16 + MUX__PROXY_V2_MAX_LEN)

struct mux__proxy_result {
    int version;             /* 1 or 2 */
    /* false: v1 UNKNOWN, v2 LOCAL, or a v2 family/transport other than
     * TCP over IPv4/IPv6: the connection's real addresses stand. */
    bool has_addrs;
    struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, when has_addrs */
    socklen_t src_len, dst_len;       /* 0 when !has_addrs */
};

/* Parses the PROXY header at the start of buf (the len bytes received so
 * far on the connection, from its first byte). Returns:
 *   > 0      the header is complete and takes that many bytes (<= len); the
 *            rest of buf is application data; *out is filled.
 *   0        a valid prefix so far: read more, then call again with the
 *            whole prefix (len == 0 also returns 0).
 *   -EINVAL  not a PROXY header, or a malformed one: close the connection.
 * Invalid input is reported as soon as the bytes seen prove it (a first byte
 * that starts neither "PROXY " nor the v2 signature fails at once), and a
 * header never needs more than MUX__PROXY_HEADER_MAX bytes to be decided.
 * *out is written only when the return is > 0. */
int mux__proxy_parse(const void *buf, size_t len, struct mux__proxy_result *out);

#endif
