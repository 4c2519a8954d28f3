/* body_ref.c - the reference body of an HTTP run (see body_ref.h). Not on
 * the hot path except body_ref_ready(), one acquire load. */
#include "body_ref.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void body_ref_init(struct body_ref *b)
{
    memset(b, 0, sizeof(*b));
    b->owner = BODY_REF_NO_OWNER;
    snprintf(b->source, sizeof(b->source), "the run's first response");
}

int body_ref_load(struct body_ref *b, const char *path)
{
    body_ref_init(b);
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f)
        return -1;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        errno = EINVAL;
        return -1;
    }
    size_t n = (size_t)st.st_size;
    b->data = malloc(n ? n : 1);
    if (!b->data || fread(b->data, 1, n, f) != n || fgetc(f) != EOF) {
        int err = b->data ? EIO : ENOMEM; /* EIO: short read, or the file grew */
        fclose(f);
        free(b->data);
        b->data = NULL;
        errno = err;
        return -1;
    }
    fclose(f);
    b->len = n;
    snprintf(b->source, sizeof(b->source), "%.63s", path);
    b->ready = 1;
    return 0;
}

void body_ref_free(struct body_ref *b)
{
    free(b->data);
    b->data = NULL;
}

bool body_ref_may_send(struct body_ref *b, uint64_t conn)
{
    if (body_ref_ready(b))
        return true;
    uint64_t owner = __atomic_load_n(&b->owner, __ATOMIC_ACQUIRE);
    if (owner == conn)
        return true;
    uint64_t none = BODY_REF_NO_OWNER;
    return owner == BODY_REF_NO_OWNER &&
           __atomic_compare_exchange_n(&b->owner, &none, conn, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}

bool body_ref_is_owner(const struct body_ref *b, uint64_t conn)
{
    return !body_ref_ready(b) && __atomic_load_n(&b->owner, __ATOMIC_ACQUIRE) == conn;
}

int body_ref_append(struct body_ref *b, const char *p, size_t n)
{
    if (n > BODY_REF_CAPTURE_MAX - b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *q = realloc(b->data, cap);
        if (!q)
            return -1;
        b->data = q, b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void body_ref_publish(struct body_ref *b)
{
    __atomic_store_n(&b->ready, 1, __ATOMIC_RELEASE);
}

void body_ref_release(struct body_ref *b, uint64_t conn)
{
    if (!body_ref_is_owner(b, conn))
        return;
    b->len = 0;
    __atomic_store_n(&b->owner, BODY_REF_NO_OWNER, __ATOMIC_RELEASE);
}
