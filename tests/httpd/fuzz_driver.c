/* fuzz_driver.c - a libFuzzer-free main for fuzz_http_parse.c.
 *
 * With file arguments, runs each file once (to replay a crash found by the
 * libFuzzer campaign with gcc, valgrind or gdb). Without, runs a bounded,
 * deterministic mutation campaign: seeds (valid requests and interesting
 * fragments) mutated by a seeded PRNG, every input placed right before a
 * PROT_NONE page so an over-read faults even without ASan. This is the
 * ctest httpd_fuzz_smoke. Environment: MUX_FUZZ_ITERATIONS (default
 * 200000; 10000 under valgrind), MUX_FUZZ_SEED (default 1).
 * `--write-seeds DIR` writes the seeds as files, a starting corpus for
 * libFuzzer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LEN (32u * 1024)

static const char *const seeds[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "HEAD /index.html HTTP/1.0\r\n\r\n",
    "GET /a/b/../c/./d.html?q=1#f HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\n"
    "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
    "GET /%2e%2e/%2E%2e%2fetc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /..%2f..%2f HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://host/x/y HTTP/1.1\r\nHost: host\r\n\r\n",
    "GET /f HTTP/1.1\r\nHost: a\r\nRange: bytes=0-99\r\nIf-Range: \"5f-a\"\r\n\r\n",
    "GET /f HTTP/1.1\r\nHost: a\r\nRange: bytes=-5\r\n\r\n",
    "GET /f HTTP/1.1\r\nHost: a\r\nIf-None-Match: W/\"1-2\", \"3-4\", *\r\n"
    "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    "GET /f HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n\r\n",
    "GET /f HTTP/1.1\r\nHost: a\r\nIf-Modified-Since: Sun Nov  6 08:49:37 1994\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\"\r\nhello\r\n"
    "0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "5\r\nhello\r\n0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
    "\r\n\nGET / HTTP/1.1\nHost: a\n\n",
    "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    "bytes=1-2",
    "bytes=-0,5-",
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sat, 31 Dec 2016 23:59:60 GMT",
    "/a/./b/../../c//d/%2e%2E/",
};

static const char *const tokens[] = {
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
    ":",
    "%",
    "%2e",
    "%2f",
    "%00",
    "..",
    "/",
    "?",
    "#",
    "\r\n\r\n",
    "HTTP/1.1",
    "HTTP/2.0",
    "Host: a\r\n",
    "Range: bytes=",
    "If-Range: ",
    "If-None-Match: ",
    "Connection: close\r\n",
    "Content-Length: ",
    "W/\"",
    "\"",
    ",",
    "-",
    "9999999999999999999999",
    "\x00",
    "\x7f",
    "\xff",
    "GMT",
    "Feb 29",
    "\\",
};

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rng() % n);
}

static size_t insert(char *buf, size_t len, size_t at, const char *s, size_t n)
{
    if (len + n > MAX_LEN)
        return len;
    memmove(buf + at + n, buf + at, len - at);
    memcpy(buf + at, s, n);
    return len + n;
}

static size_t mutate_once(char *buf, size_t len)
{
    size_t at = below(len + 1);
    switch (below(8)) {
    case 0: /* flip a bit */
        if (len > 0)
            buf[below(len)] ^= (char)(1u << below(8));
        return len;
    case 1: /* random byte */
        if (len > 0)
            buf[below(len)] = (char)rng();
        return len;
    case 2: { /* insert a token */
        const char *t = tokens[below(sizeof tokens / sizeof tokens[0])];
        return insert(buf, len, at, t, t[0] == '\0' ? 1 : strlen(t));
    }
    case 3: { /* delete a run */
        size_t n = below(len - at + 1) % 16;
        memmove(buf + at, buf + at + n, len - at - n);
        return len - n;
    }
    case 4: { /* duplicate a run */
        size_t n = below(len - at + 1) % 64;
        char tmp[64];
        memcpy(tmp, buf + at, n);
        return insert(buf, len, at, tmp, n);
    }
    case 5: /* truncate */
        return at;
    case 6: { /* splice another seed in */
        const char *s = seeds[below(sizeof seeds / sizeof seeds[0])];
        size_t sl = strlen(s), from = below(sl);
        return insert(buf, len, at, s + from, below(sl - from + 1));
    }
    default: { /* repeat a byte many times (limits) */
        char c = len > 0 ? buf[below(len)] : 'a';
        size_t n = below(20000);
        if (len + n > MAX_LEN)
            return len;
        memmove(buf + at + n, buf + at, len - at);
        memset(buf + at, c, n);
        return len + n;
    }
    }
}

/* A readable region of MAX_LEN bytes followed by a PROT_NONE page. */
static char *guarded_region(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t readable = (MAX_LEN + page - 1) / page * page;
    char *map =
        mmap(NULL, readable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map + readable, page, PROT_NONE) != 0) {
        perror("mmap");
        exit(1);
    }
    return map + readable; /* the end: inputs are copied to end - len */
}

static void run_at_edge(char *edge, const char *in, size_t len)
{
    memcpy(edge - len, in, len);
    LLVMFuzzerTestOneInput((const uint8_t *)(edge - len), len);
}

static int run_files(int argc, char **argv)
{
    static char data[MAX_LEN];
    char *edge = guarded_region();
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        run_at_edge(edge, data, n);
        printf("%s: ok (%zu bytes)\n", argv[i], n);
    }
    return 0;
}

static int write_seeds(const char *dir)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%02zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        fwrite(seeds[i], 1, strlen(seeds[i]), f);
        fclose(f);
    }
    return 0;
}

static unsigned long env_number(const char *name, unsigned long dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoul(v, NULL, 10) : dflt;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    if (argc > 1)
        return run_files(argc, argv);

    static char buf[MAX_LEN];
    char *edge = guarded_region();
    unsigned long iterations =
        env_number("MUX_FUZZ_ITERATIONS", getenv("MUX_UNDER_VALGRIND") ? 10000 : 200000);
    rng_state = env_number("MUX_FUZZ_SEED", 1) * UINT64_C(0x9e3779b97f4a7c15) | 1;
    size_t nseeds = sizeof seeds / sizeof seeds[0];
    clock_t start = clock();

    for (unsigned long i = 0; i < iterations; i++) {
        const char *s = seeds[i % nseeds];
        size_t len = strlen(s);
        memcpy(buf, s, len);
        size_t rounds = i < nseeds ? 0 : 1 + below(8);
        for (size_t r = 0; r < rounds; r++)
            len = mutate_once(buf, len);
        run_at_edge(edge, buf, len);
    }
    printf("httpd fuzz smoke: %lu inputs, %.1f s, no invariant broken\n", iterations,
           (double)(clock() - start) / CLOCKS_PER_SEC);
    return 0;
}
