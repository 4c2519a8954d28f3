/* httpd_h2.h - HTTP/2 for mux-httpd (RFC 9113) on libnghttp2: h2 over TLS
 * when ALPN chose it (mux_conn_alpn), h2c with prior knowledge (the client
 * connection preface) and h2c by Upgrade (RFC 7540 3.2). Built when CMake
 * finds libnghttp2 (MUX_HTTPD_H2); see docs/httpd.md, "HTTP/2". */
#ifndef MUX_HTTPD_HTTPD_H2_H
#define MUX_HTTPD_HTTPD_H2_H

#include <stdbool.h>
#include <stddef.h>

#include <mux/mux.h>

#include "http_parse.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* 1: data starts with the whole preface; -2: data is a proper prefix of
 * it (wait for more); 0: it is not HTTP/2. */
int httpd_h2_sniff(const char *data, size_t len);

struct h2_conn;

/* Switches connection c to HTTP/2 and queues the server preface (our
 * SETTINGS), before or after the client's preface has come. armed: the
 * header deadline (mux_conn_set_deadline) is set now; from here on the
 * connection times its heads itself. NULL when out of memory. */
struct h2_conn *httpd_h2_new(struct mux_conn *c, bool armed);

/* Upgrade: h2c (RFC 7540 3.2). wanted: the HTTP/1.1 request (parsed and
 * checked) asks for it the way 3.2 requires: HTTP/1.1, no body, Upgrade
 * listing h2c, Connection listing Upgrade and HTTP2-Settings, exactly one
 * HTTP2-Settings. upgrade (only after wanted): 1 when switched, with the
 * 101 queued, then our SETTINGS and the request's answer as stream 1, and
 * *out the HTTP/2 connection that reads the client's preface next; 0 when
 * HTTP2-Settings is not a valid SETTINGS payload (then no upgrade: answer
 * with HTTP/1.1); -ENOMEM. Never over TLS (h2c is cleartext): the caller
 * checks that no ALPN protocol was chosen. */
bool httpd_h2_upgrade_wanted(const struct http_request *req, const struct http_request_info *info);
int httpd_h2_upgrade(struct mux_conn *c, const struct http_request *req, struct h2_conn **out);

/* on_read / on_writable of an HTTP/2 connection. */
size_t httpd_h2_read(struct h2_conn *h, const char *data, size_t len);
void httpd_h2_writable(struct h2_conn *h);

/* From on_close: frees the session and every stream (and their fds). */
void httpd_h2_free(struct h2_conn *h);

/* From on_worker_stop: frees the worker's spare stream records. */
struct httpd_worker;
void httpd_h2_worker_free(struct httpd_worker *hw);

#endif
