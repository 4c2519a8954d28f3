/* httpd_h2.h - HTTP/2 for mux-httpd (RFC 9113) on libnghttp2: h2 over TLS
 * and h2c with prior knowledge, both recognised by the client connection
 * preface that every HTTP/2 client sends first. Built when CMake finds
 * libnghttp2 (MUX_HTTPD_H2); see docs/httpd.md, "HTTP/2". */
#ifndef MUX_HTTPD_HTTPD_H2_H
#define MUX_HTTPD_HTTPD_H2_H

#include <stddef.h>

#include <mux/mux.h>

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* 1: data starts with the whole preface; -2: data is a proper prefix of
 * it (wait for more); 0: it is not HTTP/2. */
int httpd_h2_sniff(const char *data, size_t len);

struct h2_conn;

/* Switches connection c to HTTP/2 (its server preface is queued). NULL
 * when out of memory. */
struct h2_conn *httpd_h2_new(struct mux_conn *c);

/* on_read / on_writable of an HTTP/2 connection. */
size_t httpd_h2_read(struct h2_conn *h, const char *data, size_t len);
void httpd_h2_writable(struct h2_conn *h);

/* From on_close: frees the session and every stream (and their fds). */
void httpd_h2_free(struct h2_conn *h);

#endif
