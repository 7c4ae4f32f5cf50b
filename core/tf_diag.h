/*
 * Diagnostics: the list of problems found while loading configuration or plugins. Each entry
 * reads "file:line:column: path: message" so a user can jump to it; validation collects every
 * problem before anything starts instead of stopping at the first.
 */
#ifndef TF_DIAG_H
#define TF_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef struct tf_diag tf_diag;

tf_diag *tf_diag_create(void);
void tf_diag_destroy(tf_diag *d);

/* Appends one problem. `file` may be NULL; line/col 0 = unknown (omitted from the message);
 * `path` may be NULL or "" (omitted), e.g. "pipelines[0].sources[1].with.timeout". */
void tf_diag_add(tf_diag *d, const char *file, int line, int col, const char *path, const char *fmt,
                 ...) __attribute__((format(printf, 6, 7)));
size_t tf_diag_count(const tf_diag *d);
/* The i-th message, formatted as above; borrowed. */
const char *tf_diag_message(const tf_diag *d, size_t i);
/* One message per line, prefixed with "error: ". */
void tf_diag_print(const tf_diag *d, FILE *out);

#endif
