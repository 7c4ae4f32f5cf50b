/*
 * rsrc_pending: a chained hash of Redis keys with a doubly linked age list, so replacing a
 * key's value, finding the oldest entry and dropping it are all O(1).
 */
#include "rsrc_pending.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RSRC_BUCKETS_MIN 64
#define RSRC_BUCKETS_MAX ((size_t)1 << 20)

/* FNV-1a: short keys, no adversary (the keys come from our own sink). */
static size_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        h ^= *c;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

int rsrc_pending_init(rsrc_pending *p, size_t expected)
{
    memset(p, 0, sizeof *p);
    size_t n = RSRC_BUCKETS_MIN;
    while (n < expected && n < RSRC_BUCKETS_MAX)
        n *= 2;
    p->buckets = calloc(n, sizeof *p->buckets);
    if (!p->buckets)
        return -1;
    p->n_buckets = n;
    return 0;
}

static void entry_free(rsrc_entry *e)
{
    free(e->key);
    json_decref(e->value);
    free(e);
}

void rsrc_pending_clear(rsrc_pending *p)
{
    rsrc_entry *e = p->head;
    while (e) {
        rsrc_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    if (p->buckets)
        memset(p->buckets, 0, p->n_buckets * sizeof *p->buckets);
    p->head = p->tail = NULL;
    p->count = 0;
}

void rsrc_pending_free(rsrc_pending *p)
{
    rsrc_pending_clear(p);
    free(p->buckets);
    memset(p, 0, sizeof *p);
}

static void unlink_age(rsrc_pending *p, rsrc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        p->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        p->tail = e->prev;
    e->prev = e->next = NULL;
}

static void append_age(rsrc_pending *p, rsrc_entry *e)
{
    e->prev = p->tail;
    e->next = NULL;
    if (p->tail)
        p->tail->next = e;
    else
        p->head = e;
    p->tail = e;
}

static rsrc_entry **bucket_of(const rsrc_pending *p, const char *key)
{
    return &p->buckets[hash_key(key) & (p->n_buckets - 1)];
}

rsrc_entry *rsrc_pending_get(const rsrc_pending *p, const char *key)
{
    for (rsrc_entry *e = *bucket_of(p, key); e; e = e->chain) {
        if (strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

static void drop_oldest(rsrc_pending *p)
{
    rsrc_entry *old = p->head;
    rsrc_entry **link = bucket_of(p, old->key);
    while (*link != old)
        link = &(*link)->chain;
    *link = old->chain;
    unlink_age(p, old);
    entry_free(old);
    p->count--;
}

/* The entry's identity: the key, or "<key>#<history_id>" for a value that names its history
 * entry (premiums), so two history entries of one key are two values to deliver, while the same
 * entry read twice (its event, then a resync) is one. NULL when out of memory. */
static char *identity_of(const char *key, const json_t *value, bool *has_history)
{
    const char *hid = json_string_value(json_object_get(value, "history_id"));
    *has_history = hid != NULL;
    if (!hid)
        return strdup(key);
    size_t n = strlen(key) + 1 + strlen(hid) + 1;
    char *id = malloc(n);
    if (id)
        snprintf(id, n, "%s#%s", key, hid);
    return id;
}

int rsrc_pending_put(rsrc_pending *p, const char *key, json_t *value, size_t max)
{
    bool has_history = false;
    char *id = identity_of(key, value, &has_history);
    if (!id) {
        json_decref(value);
        return -1;
    }
    rsrc_entry *e = rsrc_pending_get(p, id);
    if (e) {
        json_decref(e->value);
        e->value = value;
        /* A newer value of a key moves to the end; the same history entry again keeps its
         * place, so entries stay in the order they were published. */
        if (!has_history) {
            unlink_age(p, e);
            append_age(p, e);
        }
        free(id);
        return 0;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        free(id);
        json_decref(value);
        return -1;
    }
    int dropped = 0;
    if (max > 0 && p->count >= max) {
        drop_oldest(p);
        dropped = 1;
    }
    e->key = id;
    e->value = value;
    rsrc_entry **bucket = bucket_of(p, id);
    e->chain = *bucket;
    *bucket = e;
    append_age(p, e);
    p->count++;
    return dropped;
}

void rsrc_pending_swap(rsrc_pending *a, rsrc_pending *b)
{
    rsrc_pending t = *a;
    *a = *b;
    *b = t;
}
