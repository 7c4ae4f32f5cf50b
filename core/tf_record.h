/*
 * Records and batches. A record is a kind plus named, typed fields in insertion order; a batch
 * owns the records of one tick. Each record remembers the stage (plugin instance) that created
 * it, so a sink can tell what its pipeline read back from a store from what it computed.
 * Plugins reach these through the host table (tf_instance.c).
 */
#ifndef TF_RECORD_H
#define TF_RECORD_H

#include <jansson.h>

#include "tf_common.h"

tf_batch *tf_batch_create(void);
/* Frees the batch and every record in it. NULL is fine. */
void tf_batch_destroy(tf_batch *b);
/* Frees every record, keeps the batch for reuse. */
void tf_batch_clear(tf_batch *b);
/* Moves every record of `from` to the end of `to` (from is left empty). TF_OK or TF_ENOMEM. */
int tf_batch_move(tf_batch *to, tf_batch *from);
size_t tf_batch_count(const tf_batch *b);
tf_record *tf_batch_at(const tf_batch *b, size_t i);
void tf_batch_remove(tf_batch *b, size_t i);

/* The instance whose callback is filling `b` (borrowed; NULL: none, e.g. a test building a
 * batch by hand). Records created on `b` from now on carry it as their origin. Returns the
 * previous one, so a caller can restore it. */
const tf_instance *tf_batch_set_origin(tf_batch *b, const tf_instance *origin);

/* Appends a new, empty record of `kind` (copied) to `b`, which owns it. Its origin is the
 * batch's current origin (tf_batch_set_origin). */
tf_record *tf_record_new(tf_batch *b, const char *kind);
/* The instance that created `r` (borrowed), or NULL. Kept when the record moves between
 * batches. */
const tf_instance *tf_record_origin(const tf_record *r);
int tf_record_set_string(tf_record *r, const char *name, const char *value);
int tf_record_set_int(tf_record *r, const char *name, int64_t value);
int tf_record_set_double(tf_record *r, const char *name, double value);
int tf_record_set_bool(tf_record *r, const char *name, bool value);
int tf_record_set_ts(tf_record *r, const char *name, int64_t epoch_ms);
const char *tf_record_kind(const tf_record *r);
size_t tf_record_field_count(const tf_record *r);
tf_field_type tf_record_field_at(const tf_record *r, size_t i, const char **name);
tf_field_type tf_record_field_type(const tf_record *r, const char *name);
const char *tf_record_get_string(const tf_record *r, const char *name);
int tf_record_get_int(const tf_record *r, const char *name, int64_t *out);
int tf_record_get_double(const tf_record *r, const char *name, double *out);
int tf_record_get_bool(const tf_record *r, const char *name, bool *out);
/* {"kind": kind, field: value...}; new reference or NULL on allocation failure. */
json_t *tf_record_to_json(const tf_record *r);

#endif
