/* Redis pool, reachability and history streams: see api_redis.h. */
#include "api_redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "api_text.h"

#define PING_EVERY_MS 1000
#define TAKE_WAIT_MS  1000

struct api_redis {
    const tf_host *host; /* borrowed */
    tf_instance *self;   /* borrowed */
    bool configured;
    pthread_mutex_t lock; /* guards idle, n_idle, n_open */
    pthread_cond_t freed;
    tf_redis **idle; /* owned connections not in use */
    size_t n_idle, n_open, max;
    atomic_bool ok;          /* the last command's outcome */
    atomic_llong last_ok_ms; /* monotonic ms of the last outcome */
    atomic_bool pinging;     /* one thread pings at a time */
};

api_redis *api_redis_create(const tf_host *host, tf_instance *self, size_t max_conns)
{
    api_redis *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->host = host;
    p->self = self;
    p->max = max_conns ? max_conns : 1;
    p->idle = calloc(p->max, sizeof *p->idle);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&p->ok, true);
    atomic_init(&p->last_ok_ms, 0);
    atomic_init(&p->pinging, false);
    if (!p->idle) {
        api_redis_destroy(p);
        return NULL;
    }
    /* redis_open does not connect; it only fails when there is no redis: section. */
    tf_redis *r = host->redis_open(self);
    if (r) {
        p->configured = true;
        p->idle[p->n_idle++] = r;
        p->n_open = 1;
    }
    return p;
}

void api_redis_destroy(api_redis *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_idle; i++)
        p->host->redis_close(p->idle[i]);
    free(p->idle);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

bool api_redis_configured(const api_redis *p)
{
    return p->configured;
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

tf_redis *api_redis_take(api_redis *p)
{
    if (!p->configured)
        return NULL;
    struct timespec until;
    deadline_after(&until, TAKE_WAIT_MS);
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    while (p->n_idle == 0 && p->n_open >= p->max && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->freed, &p->lock, &until);
    tf_redis *r = NULL;
    bool open_new = false;
    if (p->n_idle > 0) {
        r = p->idle[--p->n_idle];
    } else if (p->n_open < p->max) {
        p->n_open++; /* reserved before opening, outside the lock */
        open_new = true;
    }
    pthread_mutex_unlock(&p->lock);
    if (open_new) {
        r = p->host->redis_open(p->self);
        if (!r) {
            pthread_mutex_lock(&p->lock);
            p->n_open--;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return r;
}

void api_redis_give(api_redis *p, tf_redis *r, bool ok)
{
    if (!r)
        return;
    atomic_store(&p->ok, ok);
    atomic_store(&p->last_ok_ms, (long long)p->host->monotonic_ms());
    pthread_mutex_lock(&p->lock);
    p->idle[p->n_idle++] = r;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

bool api_redis_reachable(api_redis *p)
{
    if (!p->configured)
        return true;
    long long now = (long long)p->host->monotonic_ms();
    bool expected = false;
    if (now - atomic_load(&p->last_ok_ms) < PING_EVERY_MS ||
        !atomic_compare_exchange_strong(&p->pinging, &expected, true))
        return atomic_load(&p->ok);
    tf_redis *r = api_redis_take(p);
    bool ok = false;
    if (r) {
        const char *argv[] = {"PING"};
        redisReply *reply = p->host->redis_command(r, 1, argv, NULL);
        ok = reply && reply->type == REDIS_REPLY_STATUS;
        p->host->redis_reply_free(reply);
        api_redis_give(p, r, ok);
    } else {
        atomic_store(&p->ok, false);
        atomic_store(&p->last_ok_ms, now);
    }
    atomic_store(&p->pinging, false);
    return ok;
}

void api_entries_free(api_entry *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        json_decref(e[i].obj);
    free(e);
}

/* The parsed `json` field of one XRANGE entry ([id, [field, value, ...]]), or NULL. */
static json_t *entry_json(const redisReply *fields)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, "json") == 0 &&
            v->type == REDIS_REPLY_STRING) {
            json_t *obj = json_loadb(v->str, v->len, 0, NULL);
            if (json_is_object(obj))
                return obj;
            json_decref(obj);
        }
    }
    return NULL;
}

/* Appends the entries of one XRANGE reply to *out. */
static int collect(const redisReply *reply, api_entry **out, size_t *n, size_t *cap)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return TF_EREDIS;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= sizeof((*out)->id))
            continue;
        json_t *obj = entry_json(e->element[1]);
        if (!obj)
            continue;
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            api_entry *q = realloc(*out, c * sizeof *q);
            if (!q) {
                json_decref(obj);
                return TF_ENOMEM;
            }
            *out = q;
            *cap = c;
        }
        api_entry *slot = &(*out)[(*n)++];
        memcpy(slot->id, e->element[0]->str, e->element[0]->len);
        slot->id[e->element[0]->len] = '\0';
        slot->obj = obj;
    }
    return TF_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    return api_stream_id_cmp(((const api_entry *)a)->id, ((const api_entry *)b)->id);
}

/* Keeps `count` entries of the sorted array: the newest (reverse) or the oldest. */
static void trim(api_entry *e, size_t *n, size_t count, bool reverse)
{
    if (*n <= count)
        return;
    size_t extra = *n - count;
    if (reverse) {
        for (size_t i = 0; i < extra; i++)
            json_decref(e[i].obj);
        memmove(e, e + extra, count * sizeof *e);
    } else {
        for (size_t i = count; i < *n; i++)
            json_decref(e[i].obj);
    }
    *n = count;
}

int api_redis_ranges(api_redis *p, const char *const *keys, size_t n_keys, const char *start,
                     const char *end, bool reverse, size_t count, api_entry **out, size_t *n_out)
{
    const tf_host *h = p->host;
    *out = NULL;
    *n_out = 0;
    tf_redis *r = api_redis_take(p);
    if (!r)
        return TF_EREDIS;
    char count_text[24];
    snprintf(count_text, sizeof count_text, "%zu", count);
    int rc = TF_OK;
    size_t appended = 0;
    while (appended < n_keys && rc == TF_OK) {
        /* XREVRANGE takes the bounds the other way round. */
        const char *argv[] = {reverse ? "XREVRANGE" : "XRANGE",
                              keys[appended],
                              reverse ? end : start,
                              reverse ? start : end,
                              "COUNT",
                              count_text};
        rc = h->redis_append(r, 6, argv, NULL);
        appended += rc == TF_OK;
    }
    bool connected = rc == TF_OK;
    size_t cap = 0;
    for (size_t i = 0; i < appended; i++) {
        redisReply *reply = h->redis_get_reply(r);
        if (!reply) { /* the connection is gone: the remaining replies will not come */
            connected = false;
            rc = TF_EREDIS;
            break;
        }
        int one = collect(reply, out, n_out, &cap); /* an error reply: TF_EREDIS */
        if (rc == TF_OK)
            rc = one;
        h->redis_reply_free(reply);
    }
    api_redis_give(p, r, connected);
    if (rc != TF_OK) {
        api_entries_free(*out, *n_out);
        *out = NULL;
        *n_out = 0;
        return rc;
    }
    if (*n_out > 0)
        qsort(*out, *n_out, sizeof **out, cmp_entry);
    trim(*out, n_out, count, reverse);
    return TF_OK;
}

/* ---- replay ---- */

typedef struct key_list {
    char **v; /* owned strings */
    size_t n, cap;
} key_list;

static void keys_free(key_list *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
    *k = (key_list){0};
}

static int keys_push(key_list *k, const char *text, size_t len)
{
    if (k->n == k->cap) {
        size_t c = k->cap ? k->cap * 2 : 64;
        char **q = realloc(k->v, c * sizeof *q);
        if (!q)
            return TF_ENOMEM;
        k->v = q;
        k->cap = c;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return TF_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    k->v[k->n++] = copy;
    return TF_OK;
}

/* "<prefix>:history:premium:*" with the prefix's glob characters escaped (it is literal). */
static bool history_pattern(const char *prefix, char *buf, size_t size)
{
    size_t used = 0;
    for (const char *c = prefix; *c; c++) {
        if (used + 2 >= size)
            return false;
        if (strchr("*?[]\\", *c))
            buf[used++] = '\\';
        buf[used++] = *c;
    }
    int n = snprintf(buf + used, size - used, ":history:premium:*");
    return n > 0 && (size_t)n < size - used;
}

/* Every key matching `pattern` (SCAN: no server-side blocking, whatever the key count). */
static int scan_keys(api_redis *p, tf_redis *r, const char *pattern, key_list *out)
{
    const tf_host *h = p->host;
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "stream"};
        redisReply *reply = h->redis_command(r, 8, argv, NULL);
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
            h->redis_reply_free(reply);
            return TF_EREDIS;
        }
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        const redisReply *page = reply->element[1];
        int rc = TF_OK;
        for (size_t i = 0; i < page->elements && rc == TF_OK; i++) {
            if (page->element[i]->type == REDIS_REPLY_STRING)
                rc = keys_push(out, page->element[i]->str, page->element[i]->len);
        }
        h->redis_reply_free(reply);
        if (rc != TF_OK)
            return rc;
    } while (strcmp(cursor, "0") != 0);
    return TF_OK;
}

/* The value of `field` in an XINFO STREAM reply (a flat field/value array), or NULL. */
static const redisReply *info_field(const redisReply *info, const char *field)
{
    if (!info || info->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < info->elements; i += 2) {
        const redisReply *f = info->element[i];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, field) == 0)
            return info->element[i + 1];
    }
    return NULL;
}

/* True when the stream lost entries to trimming (entries-added > length, Redis 7) and its
 * oldest remaining entry comes after `after`: what the client lacks may have been trimmed.
 * (Trimming only ever removes the oldest entries; max-deleted-entry-id tracks XDEL only.) */
static bool trimmed_after(const redisReply *info, const char *after)
{
    const redisReply *length = info_field(info, "length");
    const redisReply *added = info_field(info, "entries-added");
    const redisReply *first = info_field(info, "first-entry");
    if (!length || !added || length->type != REDIS_REPLY_INTEGER ||
        added->type != REDIS_REPLY_INTEGER || added->integer <= length->integer)
        return false;
    if (!first || first->type != REDIS_REPLY_ARRAY || first->elements < 1 ||
        first->element[0]->type != REDIS_REPLY_STRING)
        return true; /* trimmed to nothing */
    return api_stream_id_cmp(first->element[0]->str, after) > 0;
}

/* Sends XREVRANGE + XINFO STREAM for every key, then reads and merges the replies. */
static int read_streams(api_redis *p, tf_redis *r, const key_list *keys, const char *after,
                        size_t max, api_entry **out, size_t *n_out, api_replay *info,
                        bool *connected)
{
    const tf_host *h = p->host;
    char start[64], count[24];
    snprintf(start, sizeof start, "(%s", after);   /* exclusive: after the last one seen */
    snprintf(count, sizeof count, "%zu", max + 1); /* one more tells that more exist */
    size_t sent = 0;
    int rc = TF_OK;
    for (; sent < keys->n && rc == TF_OK; sent++) {
        const char *range[] = {"XREVRANGE", keys->v[sent], "+", start, "COUNT", count};
        const char *xinfo[] = {"XINFO", "STREAM", keys->v[sent]};
        rc = h->redis_append(r, 6, range, NULL);
        if (rc == TF_OK)
            rc = h->redis_append(r, 3, xinfo, NULL);
    }
    size_t cap = 0;
    for (size_t i = 0; i < 2 * sent && *connected; i++) {
        redisReply *reply = h->redis_get_reply(r);
        if (!reply) { /* the connection is gone: the remaining replies will not come */
            *connected = false;
            rc = TF_EREDIS;
            break;
        }
        int one = TF_OK;
        if (i % 2 == 0)
            one = collect(reply, out, n_out, &cap);
        else if (reply->type == REDIS_REPLY_ARRAY)
            info->trimmed = info->trimmed || trimmed_after(reply, after);
        /* XINFO of a stream deleted since SCAN is an error reply: nothing to replay there. */
        if (rc == TF_OK && one != TF_OK)
            rc = one;
        h->redis_reply_free(reply);
    }
    return rc;
}

int api_redis_replay(api_redis *p, const char *prefix, const char *after, size_t max,
                     api_entry **out, size_t *n_out, api_replay *info)
{
    *out = NULL;
    *n_out = 0;
    memset(info, 0, sizeof *info);
    char pattern[256];
    if (!history_pattern(prefix, pattern, sizeof pattern))
        return TF_EINVAL;
    tf_redis *r = api_redis_take(p);
    if (!r)
        return TF_EREDIS;
    key_list keys = {0};
    int rc = scan_keys(p, r, pattern, &keys);
    bool connected = rc != TF_EREDIS;
    if (rc == TF_OK)
        rc = read_streams(p, r, &keys, after, max, out, n_out, info, &connected);
    api_redis_give(p, r, connected);
    info->streams = keys.n;
    keys_free(&keys);
    if (rc != TF_OK) {
        api_entries_free(*out, *n_out);
        *out = NULL;
        *n_out = 0;
        return rc;
    }
    if (*n_out > 0)
        qsort(*out, *n_out, sizeof **out, cmp_entry);
    info->truncated = *n_out > max;
    trim(*out, n_out, max, true);
    if (*n_out > 0)
        snprintf(info->first_id, sizeof info->first_id, "%s", (*out)[0].id);
    return TF_OK;
}
