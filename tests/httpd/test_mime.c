/* test_mime.c - extension -> Content-Type lookups, table driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <string.h>

#include "mime.h"

struct mime_case {
    const char *name;
    const char *type;
};

static const struct mime_case cases[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"a.htm", "text/html; charset=utf-8"},
    {"INDEX.HTML", "text/html; charset=utf-8"},
    {"style.css", "text/css; charset=utf-8"},
    {"app.js", "text/javascript; charset=utf-8"},
    {"mod.mjs", "text/javascript; charset=utf-8"},
    {"data.json", "application/json"},
    {"notes.txt", "text/plain; charset=utf-8"},
    {"feed.xml", "text/xml; charset=utf-8"},
    {"logo.svg", "image/svg+xml"},
    {"a.png", "image/png"},
    {"a.JPG", "image/jpeg"},
    {"a.jpeg", "image/jpeg"},
    {"a.gif", "image/gif"},
    {"a.webp", "image/webp"},
    {"favicon.ico", "image/x-icon"},
    {"m.wasm", "application/wasm"},
    {"doc.pdf", "application/pdf"},
    {"f.woff", "font/woff"},
    {"f.woff2", "font/woff2"},
    {"v.mp4", "video/mp4"},
    {"site.webmanifest", "application/manifest+json"},
    {"dir/sub/x.Css", "text/css; charset=utf-8"},
    {"archive.tar.gz", "application/gzip"},
    {"README", MIME_DEFAULT_TYPE},
    {".profile", MIME_DEFAULT_TYPE},
    {"dir.d/noext", MIME_DEFAULT_TYPE},
    {"trailingdot.", MIME_DEFAULT_TYPE},
    {"x.unknownext", MIME_DEFAULT_TYPE},
    {"x.htmlx", MIME_DEFAULT_TYPE},
    {"x.ht", MIME_DEFAULT_TYPE},
    {"x.averyveryverylongextension", MIME_DEFAULT_TYPE},
    {"", MIME_DEFAULT_TYPE},
};

static void test_mime_table(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = mime_type_for(cases[i].name);
        if (strcmp(got, cases[i].type) != 0)
            fail_msg("%s: got %s want %s", cases[i].name, got, cases[i].type);
    }
}

static void test_mime_ext(void **state)
{
    assert_string_equal(mime_type_for_ext("PnG", 3), "image/png");
    assert_string_equal(mime_type_for_ext("jsonld", 4), "application/json"); /* n bytes only */
    assert_null(mime_type_for_ext("", 0));
    assert_null(mime_type_for_ext("zzz", 3));
}

/* bsearch needs the table sorted, unique and in lower case. */
static void test_mime_table_sorted(void **state)
{
    size_t n = mime__table_size();
    assert_true(n > 30);
    for (size_t i = 0; i < n; i++) {
        const char *e = mime__table_ext(i);
        for (const char *p = e; *p; p++)
            assert_false(*p >= 'A' && *p <= 'Z');
        assert_non_null(mime_type_for_ext(e, strlen(e)));
        if (i > 0)
            assert_true(strcmp(mime__table_ext(i - 1), e) < 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mime_table),
        cmocka_unit_test(test_mime_ext),
        cmocka_unit_test(test_mime_table_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
