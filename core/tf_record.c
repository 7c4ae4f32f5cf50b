/*
 * Records and batches. Fields live in a small array searched linearly: a record has a dozen
 * fields at most, and a linear scan over that many short names beats hashing.
 */
#include "tf_record.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct tf_field {
    char *name; /* owned */
    tf_field_type type;
    union {
        char *s; /* owned */
        int64_t i;
        double d;
        bool b;
    } v;
} tf_field;

struct tf_record {
    char *kind;                /* owned */
    const tf_instance *origin; /* borrowed: the stage that created it; NULL when none */
    tf_field *fields;
    size_t n_fields;
    size_t cap_fields;
};

struct tf_batch {
    tf_record **records; /* owned */
    size_t count;
    size_t cap;
    const tf_instance *origin; /* borrowed: given to the records created now */
};

tf_batch *tf_batch_create(void)
{
    return calloc(1, sizeof(tf_batch));
}

static void field_clear(tf_field *f)
{
    if (f->type == TF_FIELD_STRING)
        free(f->v.s);
    f->v.s = NULL;
}

static void record_free(tf_record *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_fields; i++) {
        field_clear(&r->fields[i]);
        free(r->fields[i].name);
    }
    free(r->fields);
    free(r->kind);
    free(r);
}

void tf_batch_clear(tf_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->count; i++)
        record_free(b->records[i]);
    b->count = 0;
}

void tf_batch_destroy(tf_batch *b)
{
    if (!b)
        return;
    tf_batch_clear(b);
    free(b->records);
    free(b);
}

static int batch_reserve(tf_batch *b, size_t need)
{
    if (need <= b->cap)
        return TF_OK;
    size_t cap = b->cap ? b->cap : 16;
    while (cap < need)
        cap *= 2;
    tf_record **grown = realloc(b->records, cap * sizeof *grown);
    if (!grown)
        return TF_ENOMEM;
    b->records = grown;
    b->cap = cap;
    return TF_OK;
}

int tf_batch_move(tf_batch *to, tf_batch *from)
{
    /* An empty source batch may have no array at all: memcpy from NULL is undefined even for
     * zero bytes. */
    if (from->count == 0)
        return TF_OK;
    if (batch_reserve(to, to->count + from->count) != TF_OK)
        return TF_ENOMEM;
    memcpy(to->records + to->count, from->records, from->count * sizeof *from->records);
    to->count += from->count;
    from->count = 0;
    return TF_OK;
}

size_t tf_batch_count(const tf_batch *b)
{
    return b ? b->count : 0;
}

tf_record *tf_batch_at(const tf_batch *b, size_t i)
{
    return b && i < b->count ? b->records[i] : NULL;
}

void tf_batch_remove(tf_batch *b, size_t i)
{
    if (!b || i >= b->count)
        return;
    record_free(b->records[i]);
    memmove(b->records + i, b->records + i + 1, (b->count - i - 1) * sizeof *b->records);
    b->count--;
}

const tf_instance *tf_batch_set_origin(tf_batch *b, const tf_instance *origin)
{
    const tf_instance *prev = b->origin;
    b->origin = origin;
    return prev;
}

tf_record *tf_record_new(tf_batch *b, const char *kind)
{
    if (!b || !kind || !*kind || batch_reserve(b, b->count + 1) != TF_OK)
        return NULL;
    tf_record *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kind = strdup(kind);
    if (!r->kind) {
        free(r);
        return NULL;
    }
    r->origin = b->origin;
    b->records[b->count++] = r;
    return r;
}

const tf_instance *tf_record_origin(const tf_record *r)
{
    return r ? r->origin : NULL;
}

static tf_field *find_field(const tf_record *r, const char *name)
{
    for (size_t i = 0; i < r->n_fields; i++)
        if (strcmp(r->fields[i].name, name) == 0)
            return &r->fields[i];
    return NULL;
}

/* The field `name`, emptied and ready for a new value; created when absent. */
static tf_field *slot_for(tf_record *r, const char *name)
{
    tf_field *f = find_field(r, name);
    if (f) {
        field_clear(f);
        return f;
    }
    if (r->n_fields == r->cap_fields) {
        size_t cap = r->cap_fields ? r->cap_fields * 2 : 8;
        tf_field *grown = realloc(r->fields, cap * sizeof *grown);
        if (!grown)
            return NULL;
        r->fields = grown;
        r->cap_fields = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    f = &r->fields[r->n_fields++];
    *f = (tf_field){.name = copy, .type = TF_FIELD_NONE};
    return f;
}

/* "kind" is the record's own kind in its JSON form: a field may not shadow it. */
static bool name_ok(const tf_record *r, const char *name)
{
    return r && name && *name && strcmp(name, "kind") != 0;
}

int tf_record_set_string(tf_record *r, const char *name, const char *value)
{
    if (!name_ok(r, name) || !value)
        return TF_EINVAL;
    char *copy = strdup(value);
    if (!copy)
        return TF_ENOMEM;
    tf_field *f = slot_for(r, name);
    if (!f) {
        free(copy);
        return TF_ENOMEM;
    }
    f->type = TF_FIELD_STRING;
    f->v.s = copy;
    return TF_OK;
}

static int set_scalar(tf_record *r, const char *name, tf_field_type type, tf_field value)
{
    if (!name_ok(r, name))
        return TF_EINVAL;
    tf_field *f = slot_for(r, name);
    if (!f)
        return TF_ENOMEM;
    f->type = type;
    f->v = value.v;
    return TF_OK;
}

int tf_record_set_int(tf_record *r, const char *name, int64_t value)
{
    return set_scalar(r, name, TF_FIELD_INT, (tf_field){.v.i = value});
}

int tf_record_set_ts(tf_record *r, const char *name, int64_t epoch_ms)
{
    return set_scalar(r, name, TF_FIELD_TS, (tf_field){.v.i = epoch_ms});
}

int tf_record_set_double(tf_record *r, const char *name, double value)
{
    /* A NaN or infinite price must never reach a sink. */
    if (!isfinite(value))
        return TF_EVALUE;
    return set_scalar(r, name, TF_FIELD_DOUBLE, (tf_field){.v.d = value});
}

int tf_record_set_bool(tf_record *r, const char *name, bool value)
{
    return set_scalar(r, name, TF_FIELD_BOOL, (tf_field){.v.b = value});
}

const char *tf_record_kind(const tf_record *r)
{
    return r ? r->kind : NULL;
}

size_t tf_record_field_count(const tf_record *r)
{
    return r ? r->n_fields : 0;
}

tf_field_type tf_record_field_at(const tf_record *r, size_t i, const char **name)
{
    if (!r || i >= r->n_fields) {
        if (name)
            *name = NULL;
        return TF_FIELD_NONE;
    }
    if (name)
        *name = r->fields[i].name;
    return r->fields[i].type;
}

tf_field_type tf_record_field_type(const tf_record *r, const char *name)
{
    const tf_field *f = r && name ? find_field(r, name) : NULL;
    return f ? f->type : TF_FIELD_NONE;
}

const char *tf_record_get_string(const tf_record *r, const char *name)
{
    const tf_field *f = r && name ? find_field(r, name) : NULL;
    return f && f->type == TF_FIELD_STRING ? f->v.s : NULL;
}

int tf_record_get_int(const tf_record *r, const char *name, int64_t *out)
{
    const tf_field *f = r && name ? find_field(r, name) : NULL;
    if (!f)
        return TF_ENOTFOUND;
    if (f->type != TF_FIELD_INT && f->type != TF_FIELD_TS)
        return TF_EINVAL;
    *out = f->v.i;
    return TF_OK;
}

int tf_record_get_double(const tf_record *r, const char *name, double *out)
{
    const tf_field *f = r && name ? find_field(r, name) : NULL;
    if (!f)
        return TF_ENOTFOUND;
    if (f->type == TF_FIELD_DOUBLE)
        *out = f->v.d;
    else if (f->type == TF_FIELD_INT)
        *out = (double)f->v.i;
    else
        return TF_EINVAL;
    return TF_OK;
}

int tf_record_get_bool(const tf_record *r, const char *name, bool *out)
{
    const tf_field *f = r && name ? find_field(r, name) : NULL;
    if (!f)
        return TF_ENOTFOUND;
    if (f->type != TF_FIELD_BOOL)
        return TF_EINVAL;
    *out = f->v.b;
    return TF_OK;
}

static json_t *field_json(const tf_field *f)
{
    switch (f->type) {
    case TF_FIELD_STRING:
        return json_string(f->v.s);
    case TF_FIELD_INT:
    case TF_FIELD_TS:
        return json_integer(f->v.i);
    case TF_FIELD_DOUBLE:
        return json_real(f->v.d);
    case TF_FIELD_BOOL:
        return json_boolean(f->v.b);
    case TF_FIELD_NONE:
        break;
    }
    return json_null();
}

json_t *tf_record_to_json(const tf_record *r)
{
    if (!r)
        return NULL;
    json_t *obj = json_object();
    if (!obj || json_object_set_new(obj, "kind", json_string(r->kind)) != 0)
        goto fail;
    for (size_t i = 0; i < r->n_fields; i++) {
        json_t *v = field_json(&r->fields[i]);
        if (!v || json_object_set_new(obj, r->fields[i].name, v) != 0)
            goto fail;
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}
