/* fuzz_http_parse.c - the fuzz entry point for mux-httpd's request path.
 *
 * LLVMFuzzerTestOneInput() runs one input through the request parser (with
 * the default and with tiny limits), the request checks, the chunked body
 * decoder (on what follows a chunked head, and on the raw bytes), the path
 * normaliser, the Range and date parsers and the response planner, and
 * aborts when an invariant breaks: results in range, every returned span
 * inside the input and made of legal bytes, prefixes of a complete head
 * incomplete, the last_len shortcut agreeing with a full parse, normalised
 * paths free of "." / ".." / "//", response heads well formed.
 *
 * Built two ways: with clang -fsanitize=fuzzer as fuzz_http_parse (the
 * long, coverage-guided campaign, see docs/httpd.md), and with
 * fuzz_driver.c as the bounded ctest run httpd_fuzz_smoke.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_date.h"
#include "http_parse.h"
#include "http_path.h"
#include "http_range.h"
#include "http_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_INPUT (1u << 16)

static bool within(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static void check_token(const char *p, size_t n)
{
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++)
        CHECK(!is_ctl((unsigned char)p[i]) && p[i] != ' ' && p[i] != ':' && p[i] != '"');
}

static void check_request(const char *buf, size_t head, const struct http_request *req)
{
    CHECK(within(req->method, req->method_len, buf, head));
    check_token(req->method, req->method_len);
    CHECK(within(req->target, req->target_len, buf, head));
    CHECK(req->target_len > 0);
    for (size_t i = 0; i < req->target_len; i++)
        CHECK(!is_ctl((unsigned char)req->target[i]) && req->target[i] != ' ');
    CHECK(req->minor_version == 0 || req->minor_version == 1);
    CHECK(req->num_headers <= req->max_headers && req->num_headers <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        CHECK(within(h->name, h->name_len, buf, head));
        check_token(h->name, h->name_len);
        CHECK(within(h->value, h->value_len, buf, head));
        for (size_t j = 0; j < h->value_len; j++)
            CHECK(h->value[j] == '\t' || !is_ctl((unsigned char)h->value[j]));
        if (h->value_len > 0) {
            CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            CHECK(h->value[h->value_len - 1] != ' ' && h->value[h->value_len - 1] != '\t');
        }
    }
    CHECK(buf[head - 1] == '\n');
}

static bool same_request(const struct http_request *a, const struct http_request *b)
{
    if (a->method != b->method || a->target != b->target || a->target_len != b->target_len ||
        a->minor_version != b->minor_version || a->num_headers != b->num_headers)
        return false;
    for (size_t i = 0; i < a->num_headers; i++) {
        if (a->headers[i].value != b->headers[i].value ||
            a->headers[i].value_len != b->headers[i].value_len ||
            a->headers[i].name_len != b->headers[i].name_len)
            return false;
    }
    return true;
}

/* A normalised path: relative, single slashes, no dot components. */
static void check_normalized(const char *out, int n)
{
    CHECK(n >= 0 && n <= HTTP_PATH_MAX);
    CHECK(strlen(out) == (size_t)n);
    if (n == 0)
        return;
    CHECK(out[0] != '/');
    CHECK(strstr(out, "//") == NULL);
    const char *p = out;
    while (*p) {
        size_t c = strcspn(p, "/");
        CHECK(!(c == 1 && p[0] == '.'));
        CHECK(!(c == 2 && p[0] == '.' && p[1] == '.'));
        p += c;
        if (*p == '/')
            p++;
    }
}

static void fuzz_normalize(const char *t, size_t n)
{
    static char out[MAX_INPUT + 1];
    if (n > MAX_INPUT)
        return;
    int rc = http_path_normalize(t, n, out, n + 1);
    CHECK(rc >= 0 || rc == -400 || rc == -403 || rc == -414);
    if (rc >= 0)
        check_normalized(out, rc);
    /* A small output buffer is never overrun. */
    char small[9];
    small[8] = 'Z';
    rc = http_path_normalize(t, n, small, 8);
    CHECK(small[8] == 'Z');
    if (rc >= 0)
        check_normalized(small, rc);
}

static void fuzz_range(const char *v, size_t n)
{
    static const uint64_t sizes[] = {0, 1, 10, 4096, UINT64_MAX / 2};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct http_ranges r;
        enum http_range_result res = http_range_parse(v, n, sizes[i], &r);
        CHECK(res == HTTP_RANGE_NONE || res == HTTP_RANGE_PARTIAL ||
              res == HTTP_RANGE_UNSATISFIABLE);
        if (res != HTTP_RANGE_PARTIAL)
            continue;
        CHECK(r.count >= 1 && r.count <= HTTP_RANGES_MAX);
        uint64_t total = 0;
        for (unsigned k = 0; k < r.count; k++) {
            CHECK(r.r[k].len > 0 && r.r[k].start < sizes[i] &&
                  r.r[k].len <= sizes[i] - r.r[k].start);
            total += r.r[k].len;
            CHECK(total <= sizes[i]);
        }
    }
}

static void fuzz_date(const char *s, size_t n)
{
    time_t t, back;
    char out[HTTP_DATE_LEN + 1];
    if (http_date_parse(s, n, &t) != 0)
        return;
    CHECK(http_date_format(t, out) == HTTP_DATE_LEN && strlen(out) == HTTP_DATE_LEN);
    CHECK(http_date_parse(out, HTTP_DATE_LEN, &back) == 0);
    CHECK(back == t || (back == t - 1 && memcmp(out + 23, "59", 2) == 0)); /* leap second */
}

static void check_response_head(const char *buf, const struct http_plan *p, uint64_t size)
{
    CHECK(p->head_len > 4 && p->head_len <= HTTP_RESPONSE_HEAD_MAX);
    CHECK(memcmp(buf, "HTTP/1.1 ", 9) == 0);
    const char *end = NULL;
    for (size_t i = 0; i + 3 < p->head_len; i++) {
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    }
    CHECK(end != NULL);
    for (const char *q = buf; q < end + 4; q++) {
        if (*q == '\n')
            CHECK(q > buf && q[-1] == '\r');
        if (*q == '\r')
            CHECK(q[1] == '\n');
    }
    CHECK(p->file_len == 0 || p->file_offset + p->file_len <= size);
}

static void fuzz_response(const struct http_request_info *info, int status, uint64_t size)
{
    static const char date[] = "Tue, 14 Nov 2023 22:13:20 GMT";
    struct http_file_facts file = {
        .size = size, .mtime = (time_t)(size * 7919 % 2000000000), .content_type = "text/plain"};
    struct http_response_in in = {.status = status,
                                  .method = info->method,
                                  .keep_alive = info->keep_alive,
                                  .req = info,
                                  .file = &file,
                                  .date = date};
    char buf[HTTP_RESPONSE_HEAD_MAX];
    struct http_plan p;
    CHECK(http_plan_response(&in, buf, sizeof buf, &p) == 0);
    check_response_head(buf, &p, size);
    if (info->if_none_match.ptr != NULL) {
        char tag[HTTP_ETAG_MAX];
        size_t n = http_etag(size, file.mtime, tag);
        (void)http_etag_list_match(info->if_none_match.ptr, info->if_none_match.len, tag, n, true);
    }
}

/* The decoder on buf[0..n): results in range, never more consumed than
 * offered, and feeding it in two pieces (the unconsumed tail offered again,
 * as the framework does) ends the same way. */
static void fuzz_chunked(const char *buf, size_t n, uint64_t max)
{
    struct http_chunked d;
    size_t used;
    http_chunked_init(&d);
    int rc = http_chunked_decode(&d, buf, n, max, &used);
    CHECK(rc == 1 || rc == HTTP_PARSE_INCOMPLETE || rc == -400 || rc == -413);
    CHECK(used <= n);
    CHECK(rc != HTTP_PARSE_INCOMPLETE || n - used <= HTTP_MAX_HEADER_BYTES + 2);
    size_t split = n / 3, used1, used2;
    http_chunked_init(&d);
    int rc1 = http_chunked_decode(&d, buf, split, max, &used1);
    CHECK(used1 <= split);
    if (rc1 != HTTP_PARSE_INCOMPLETE) {
        CHECK(rc1 == rc && (rc != 1 || used1 == used));
        return;
    }
    int rc2 = http_chunked_decode(&d, buf + used1, n - used1, max, &used2);
    CHECK(rc2 == rc);
    CHECK(rc != 1 || used1 + used2 == used);
}

static void fuzz_complete_head(const char *buf, size_t size, int rc, const struct http_request *req)
{
    size_t head = (size_t)rc;
    check_request(buf, head, req);

    /* The head alone parses the same; every shorter prefix is incomplete. */
    struct http_header h2[HTTP_MAX_HEADERS];
    struct http_request r2 = {.headers = h2, .max_headers = HTTP_MAX_HEADERS};
    CHECK(http_parse_request(buf, head, &r2, 0, NULL) == rc && same_request(req, &r2));
    CHECK(http_parse_request(buf, head - 1, &r2, 0, NULL) == HTTP_PARSE_INCOMPLETE);
    CHECK(http_parse_request(buf, head / 2, &r2, 0, NULL) == HTTP_PARSE_INCOMPLETE);
    /* The last_len shortcut agrees with a full parse. */
    CHECK(http_parse_request(buf, head, &r2, head / 2, NULL) == rc && same_request(req, &r2));

    struct http_request_info info;
    int crc = http_request_check(req, &info);
    CHECK(crc == 0 || crc == -400 || crc == -501);
    fuzz_normalize(req->target, req->target_len);
    if (crc == 0) {
        if (info.chunked)
            fuzz_chunked(buf + head, size - head, 1u << 20);
        if (info.range.ptr != NULL)
            fuzz_range(info.range.ptr, info.range.len);
        fuzz_response(&info, 200, size);
        fuzz_response(&info, 200, 0);
    }
    fuzz_response(&info, crc == 0 ? 404 : -crc, size);
    (void)size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http_header hdrs[HTTP_MAX_HEADERS];
    struct http_request req = {.headers = hdrs, .max_headers = HTTP_MAX_HEADERS};

    int rc = http_parse_request(buf, size, &req, 0, NULL);
    CHECK(rc == HTTP_PARSE_INCOMPLETE || rc == HTTP_PARSE_BAD_REQUEST ||
          rc == HTTP_PARSE_URI_TOO_LONG || rc == HTTP_PARSE_HEADERS_TOO_LARGE ||
          rc == HTTP_PARSE_BAD_VERSION || (rc > 0 && (size_t)rc <= size));
    if (rc > 0)
        fuzz_complete_head(buf, size, rc, &req);

    /* Tiny limits and a tiny header array exercise the limit paths. */
    struct http_limits tiny = {.max_request_line = 24, .max_headers = 3, .max_header_bytes = 48};
    struct http_request small = {.headers = hdrs, .max_headers = 2};
    int rc2 = http_parse_request(buf, size, &small, 0, &tiny);
    CHECK(rc2 == HTTP_PARSE_INCOMPLETE || rc2 < -2 || (rc2 > 0 && (size_t)rc2 <= size));
    if (rc2 > 0)
        CHECK(small.num_headers <= 2);
    /* A truthful last_len hint (the prefix was incomplete) changes nothing,
     * except that an error may still be reported as incomplete. */
    if (size > 1 && http_parse_request(buf, size / 2, &req, 0, NULL) == HTTP_PARSE_INCOMPLETE) {
        int rc3 = http_parse_request(buf, size, &req, size / 2, NULL);
        CHECK(rc3 == rc || (rc3 == HTTP_PARSE_INCOMPLETE && rc < -2));
    }

    /* The leaf parsers on the raw bytes too. */
    fuzz_normalize(buf, size);
    fuzz_range(buf, size);
    fuzz_date(buf, size);
    fuzz_chunked(buf, size, 64);
    return 0;
}
