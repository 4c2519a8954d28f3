/* fuzz_proxy.c - the PROXY protocol v1/v2 parser (framework/proxy_proto.c).
 *
 * Properties, for any bytes: the result is a length within the input and
 * within MUX__PROXY_HEADER_MAX, 0 (a valid prefix) or -EINVAL; a complete
 * header's every proper prefix is a valid prefix, and the header alone
 * parses to the same length and addresses; a valid prefix is never longer
 * than a header can be; once invalid, more bytes never make it valid; the
 * addresses are IPv4 or IPv6 with their lengths, or none. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "proxy_proto.h"

static void check_result(const struct mux__proxy_result *r)
{
    CHECK(r->version == 1 || r->version == 2);
    if (!r->has_addrs) {
        CHECK(r->src_len == 0 && r->dst_len == 0);
        return;
    }
    int f = r->src.ss_family;
    CHECK(f == AF_INET || f == AF_INET6);
    CHECK(r->dst.ss_family == f);
    socklen_t want = f == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    CHECK(r->src_len == want && r->dst_len == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mux__proxy_result r, again;
    int rc = mux__proxy_parse(data, size, &r);
    CHECK(rc == 0 || rc == -EINVAL || (rc > 0 && (size_t)rc <= size));
    if (rc > 0) {
        CHECK(rc <= MUX__PROXY_HEADER_MAX);
        check_result(&r);
        CHECK(mux__proxy_parse(data, (size_t)rc, &again) == rc);
        CHECK(again.version == r.version && again.has_addrs == r.has_addrs);
        CHECK(memcmp(&again.src, &r.src, r.src_len) == 0);
        for (size_t k = 0; k < (size_t)rc; k += 1 + k / 64)
            CHECK(mux__proxy_parse(data, k, &again) == 0);
    } else if (rc == 0) {
        CHECK(size < MUX__PROXY_HEADER_MAX);
        for (size_t k = 0; k < size; k += 1 + k / 64)
            CHECK(mux__proxy_parse(data, k, &again) == 0);
    } else if (size < MUX__PROXY_HEADER_MAX + 8) {
        uint8_t more[MUX__PROXY_HEADER_MAX + 16];
        memcpy(more, data, size);
        for (int i = 0; i < 8; i++) /* whatever follows, it stays invalid */
            more[size + (size_t)i] = (uint8_t)(i * 37 + size);
        CHECK(mux__proxy_parse(more, size + 8, &again) == -EINVAL);
    }
    return 0;
}
