/* body_ref.h - the body every HTTP response of a run must carry.
 *
 * Either the contents of --expect-file (ready from the start), or captured
 * from the run's first 200 response: until that one is complete exactly one
 * connection (the "owner", claimed with a compare-and-swap) may send
 * requests; it collects the body, then publishes it, and from then on every
 * body of every connection is compared with it byte for byte (memcmp as the
 * bytes stream in, nothing buffered per response).
 *
 * Thread rules: the owner alone appends; publishing is a release store,
 * body_ref_ready() an acquire load, so data/len are read-only and safe to
 * read from any thread once it returns true. An owner that loses its
 * connection releases the claim (and the capture) for another to take. */
#ifndef STRESS_BODY_REF_H
#define STRESS_BODY_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BODY_REF_CAPTURE_MAX (256u << 20) /* a first response larger fails the run */
#define BODY_REF_NO_OWNER UINT64_MAX

struct body_ref {
    char *data;      /* the reference bytes (owned) */
    size_t len;      /* valid once ready */
    size_t cap;      /* capture buffer size */
    int ready;       /* atomic: data/len are final */
    uint64_t owner;  /* atomic: connection id capturing, or BODY_REF_NO_OWNER */
    char source[64]; /* "the first response" or the file name, for messages */
};

/* No reference yet: the first response will be captured. */
void body_ref_init(struct body_ref *b);

/* The reference is the file at path. 0, or -1 with errno set. */
int body_ref_load(struct body_ref *b, const char *path);

void body_ref_free(struct body_ref *b);

static inline bool body_ref_ready(const struct body_ref *b)
{
    return __atomic_load_n(&b->ready, __ATOMIC_ACQUIRE) != 0;
}

/* May connection `conn` send a request now? True once ready, or when conn
 * owns (or has just claimed) the capture. */
bool body_ref_may_send(struct body_ref *b, uint64_t conn);

/* True if conn is the capturing owner (and the reference is not ready). */
bool body_ref_is_owner(const struct body_ref *b, uint64_t conn);

/* Owner: body bytes of its first response, in order. 0, or -1 past
 * BODY_REF_CAPTURE_MAX or out of memory. */
int body_ref_append(struct body_ref *b, const char *p, size_t n);

/* Owner: the captured response was complete and good; make it the reference. */
void body_ref_publish(struct body_ref *b);

/* conn's connection ended: if it was capturing, drop the capture and the
 * claim so another connection can take over. */
void body_ref_release(struct body_ref *b, uint64_t conn);

#endif
