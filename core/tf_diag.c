/*
 * Diagnostics: an ordered list of formatted problem messages. Owns every message string.
 * A message that cannot be stored (out of memory) is still counted, so a caller that checks
 * tf_diag_count() never mistakes a failed load for a clean one.
 */
#include "tf_diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_DIAG_LOST "(a diagnostic was lost: out of memory)"

struct tf_diag {
    char **msgs; /* owned, in insertion order */
    size_t count;
    size_t cap;
    size_t lost; /* messages that could not be stored */
};

tf_diag *tf_diag_create(void)
{
    return calloc(1, sizeof(tf_diag));
}

void tf_diag_destroy(tf_diag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++)
        free(d->msgs[i]);
    free(d->msgs);
    free(d);
}

/* "file:line:col: path: body" with the unknown parts left out; malloc'd, or NULL. */
__attribute__((format(printf, 5, 0))) static char *
format_message(const char *file, int line, int col, const char *path, const char *fmt, va_list ap)
{
    char *body = NULL;
    if (vasprintf(&body, fmt, ap) < 0)
        return NULL;
    const char *p = path ? path : "";
    const char *sep = *p ? ": " : "";
    char *msg = NULL;
    int rc;
    if (!file || !*file)
        rc = asprintf(&msg, "%s%s%s", p, sep, body);
    else if (line <= 0)
        rc = asprintf(&msg, "%s: %s%s%s", file, p, sep, body);
    else if (col <= 0)
        rc = asprintf(&msg, "%s:%d: %s%s%s", file, line, p, sep, body);
    else
        rc = asprintf(&msg, "%s:%d:%d: %s%s%s", file, line, col, p, sep, body);
    free(body);
    return rc < 0 ? NULL : msg;
}

static int grow(tf_diag *d)
{
    if (d->count < d->cap)
        return 0;
    size_t cap = d->cap ? d->cap * 2 : 16;
    char **msgs = realloc(d->msgs, cap * sizeof *msgs);
    if (!msgs)
        return -1;
    d->msgs = msgs;
    d->cap = cap;
    return 0;
}

void tf_diag_add(tf_diag *d, const char *file, int line, int col, const char *path, const char *fmt,
                 ...)
{
    if (!d)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = format_message(file, line, col, path, fmt, ap);
    va_end(ap);
    if (!msg || grow(d) != 0) {
        free(msg);
        d->lost++;
        return;
    }
    d->msgs[d->count++] = msg;
}

size_t tf_diag_count(const tf_diag *d)
{
    return d ? d->count + d->lost : 0;
}

const char *tf_diag_message(const tf_diag *d, size_t i)
{
    if (!d || i >= d->count + d->lost)
        return NULL;
    return i < d->count ? d->msgs[i] : TF_DIAG_LOST;
}

void tf_diag_print(const tf_diag *d, FILE *out)
{
    for (size_t i = 0; i < tf_diag_count(d); i++)
        fprintf(out, "error: %s\n", tf_diag_message(d, i));
}
