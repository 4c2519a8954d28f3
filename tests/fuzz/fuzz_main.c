/* fuzz_main.c - the libFuzzer-free main of the harnesses in tests/fuzz/,
 * for the bounded run in the test command (any compiler, under valgrind and
 * the sanitizers too).
 *
 *   fuzz_X FILE...   runs each file once (replays an input libFuzzer found)
 *   fuzz_X [DIR]     (default: its committed corpus) runs every file of the corpus DIR, then mutates them
 *                    (bit flips, byte changes, inserts, erases, splices of
 *                    two entries) for MUX_FUZZ_SECONDS (default 10, a tenth
 *                    under valgrind) from MUX_FUZZ_SEED (printed)
 *
 * The harness is the same LLVMFuzzerTestOneInput the clang -fsanitize=fuzzer
 * build runs (fuzz_X_lf), which explores far more: see README.md. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT (64u * 1024)
#define MAX_ENTRIES 512

struct entry {
    uint8_t *data;
    size_t len;
};

static struct entry corpus[MAX_ENTRIES];
static size_t ncorpus;

static int load_file(const char *path, struct entry *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    e->data = malloc(FUZZ_MAX_INPUT);
    e->len = e->data ? fread(e->data, 1, FUZZ_MAX_INPUT, f) : 0;
    fclose(f);
    return e->data ? 0 : -1;
}

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz: cannot open %s\n", dir);
        exit(2);
    }
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) && ncorpus < MAX_ENTRIES) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (load_file(path, &corpus[ncorpus]) == 0)
            ncorpus++;
    }
    closedir(d);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One mutant of a corpus entry into buf; returns its length. */
static size_t mutate(uint8_t *buf)
{
    const struct entry *e = &corpus[th_rand() % ncorpus];
    size_t len = e->len;
    memcpy(buf, e->data, len);
    for (unsigned n = 1 + (unsigned)(th_rand() % 4); n > 0; n--) {
        size_t at = len ? (size_t)(th_rand() % len) : 0;
        switch (th_rand() % 6) {
        case 0: if (len) buf[at] ^= (uint8_t)(1u << (th_rand() % 8)); break;
        case 1: if (len) buf[at] = (uint8_t)th_rand(); break;
        case 2: /* insert a few bytes */
            if (len + 8 <= FUZZ_MAX_INPUT) {
                memmove(buf + at + 8, buf + at, len - at);
                for (int i = 0; i < 8; i++)
                    buf[at + i] = (uint8_t)th_rand();
                len += 8;
            }
            break;
        case 3: /* erase */
            if (len) {
                size_t k = 1 + (size_t)(th_rand() % (len - at));
                memmove(buf + at, buf + at + k, len - at - k);
                len -= k;
            }
            break;
        case 4: /* splice another entry's tail */ {
            const struct entry *o = &corpus[th_rand() % ncorpus];
            size_t from = o->len ? (size_t)(th_rand() % o->len) : 0;
            size_t k = o->len - from;
            if (at + k > FUZZ_MAX_INPUT)
                k = FUZZ_MAX_INPUT - at;
            memcpy(buf + at, o->data + from, k);
            len = at + k;
            break;
        }
        default: /* truncate */
            len = at;
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : FUZZ_CORPUS_DIR;
    struct stat st;
    if (argc > 2 || (argc == 2 && stat(argv[1], &st) == 0 && !S_ISDIR(st.st_mode))) {
        for (int i = 1; i < argc; i++) {
            struct entry e;
            if (load_file(argv[i], &e) < 0) {
                fprintf(stderr, "fuzz: cannot read %s\n", argv[i]);
                return 2;
            }
            LLVMFuzzerTestOneInput(e.data, e.len);
            free(e.data);
        }
        printf("fuzz: %d inputs replayed\n", argc - 1);
        return 0;
    }
    load_dir(dir);
    if (ncorpus == 0) {
        fprintf(stderr, "fuzz: %s is empty\n", dir);
        return 2;
    }
    th_seed_rng("MUX_FUZZ_SEED");
    const char *sec = getenv("MUX_FUZZ_SECONDS");
    double budget = sec ? atof(sec) : 10;
    if (getenv("MUX_UNDER_VALGRIND"))
        budget /= 10;
    for (size_t i = 0; i < ncorpus; i++)
        LLVMFuzzerTestOneInput(corpus[i].data, corpus[i].len);
    uint8_t *buf = malloc(FUZZ_MAX_INPUT);
    double t0 = now_s();
    unsigned long long runs = 0;
    while (buf && now_s() - t0 < budget)
        for (int k = 0; k < 64; k++, runs++) {
            size_t len = mutate(buf);
            LLVMFuzzerTestOneInput(buf, len);
        }
    printf("fuzz: %zu corpus entries, %llu mutants in %.1f s (%.0f/s), no failure\n", ncorpus,
           runs, now_s() - t0, (double)runs / (now_s() - t0));
    free(buf);
    for (size_t i = 0; i < ncorpus; i++)
        free(corpus[i].data);
    return 0;
}
