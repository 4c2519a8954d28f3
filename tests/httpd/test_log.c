/* test_log.c - the access log line (apps/httpd/httpd_log.c): format,
 * escaping of bytes that could forge or split a line, truncation of a long
 * target within HTTPD_LOG_LINE_MAX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "httpd_log.h"

static void test_common_format(void **state)
{
    struct httpd_log_entry e = {.peer = "127.0.0.1:40312", .when = 1795514400, /* 2026-11-24 */
                                .method = "GET", .method_len = 3, .target = "/a.css",
                                .target_len = 6, .minor_version = 1, .status = 200,
                                .bytes = 1234};
    char line[HTTPD_LOG_LINE_MAX];
    size_t n = httpd_log_format(&e, line, sizeof line);
    assert_string_equal(line, "127.0.0.1:40312 - - [24/Nov/2026:10:00:00 +0000] "
                              "\"GET /a.css HTTP/1.1\" 200 1234\n");
    assert_int_equal(n, strlen(line));
    e.method = NULL; /* a head that did not parse */
    e.status = 400;
    httpd_log_format(&e, line, sizeof line);
    assert_non_null(strstr(line, "] \"-\" 400 1234\n"));
}

static void test_escaping(void **state)
{
    const char target[] = "/a\"b\\c\n\x01\x7f\xc3\xa9 d";
    struct httpd_log_entry e = {.peer = "[::1]:80", .method = "G\"T", .method_len = 3,
                                .target = target, .target_len = sizeof target - 1,
                                .minor_version = 0, .status = 404, .bytes = 7};
    char line[HTTPD_LOG_LINE_MAX];
    httpd_log_format(&e, line, sizeof line);
    assert_non_null(strstr(line, "\"G\\x22T /a\\x22b\\x5cc\\x0a\\x01\\x7f\\xc3\\xa9 d HTTP/1.0\" "
                                 "404 7\n"));
    assert_int_equal(strchr(line, '\n') - line, strlen(line) - 1); /* one line */
}

static void test_long_target_is_cut(void **state)
{
    static char target[8192];
    memset(target, 'a', sizeof target);
    target[0] = '/';
    struct httpd_log_entry e = {.peer = "127.0.0.1:1", .method = "GET", .method_len = 3,
                                .target = target, .target_len = sizeof target,
                                .minor_version = 1, .status = 414, .bytes = UINT64_MAX};
    char line[HTTPD_LOG_LINE_MAX];
    size_t n = httpd_log_format(&e, line, sizeof line);
    assert_true(n < sizeof line);
    assert_int_equal(strlen(line), n);
    assert_non_null(strstr(line, "aaa... HTTP/1.1\" 414 18446744073709551615\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_format),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_long_target_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
