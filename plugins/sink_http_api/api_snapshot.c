/* The snapshot and its views: see api_snapshot.h. */
#include "api_snapshot.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key components are joined with \x01, which sorts before every character a component may
 * hold, so sorting the joined keys sorts by (first component, second, ...). */
#define KEY_SEP "\x01"

typedef enum snap_kind { K_TICKER, K_PREMIUM, K_FX, K_LIVE, K_COUNT } snap_kind;

static const char *const kind_names[K_COUNT] = {"ticker", "premium", "fx", "position_live"};

struct api_snapshot {
    const tf_host *host; /* borrowed */
    tf_instance *self;   /* borrowed */
    /* Writer-only store: key -> the record's JSON (without kind and v). */
    json_t *store[K_COUNT];
    pthread_mutex_t lock; /* guards `current` */
    api_view *current;    /* owned reference */
};

/* ---- premiums ---- */

void api_premium_clear(api_premium *p)
{
    free(p->symbol);
    free(p->krw);
    free(p->global);
    free(p->fixed);
    *p = (api_premium){.ts = API_NO_TS};
}

static char *dup_field(const json_t *obj, const char *name)
{
    const char *v = json_string_value(json_object_get(obj, name));
    return v && v[0] ? strdup(v) : NULL;
}

/* `text` is a compact JSON object; keeps everything but the closing brace, then a comma unless
 * the object was empty. Takes ownership of text. */
static char *open_object(char *text, size_t len, size_t *out_len)
{
    if (len < 2 || text[len - 1] != '}') {
        free(text);
        return NULL;
    }
    len--; /* drop '}' */
    if (len > 1)
        text[len++] = ','; /* where the '}' was */
    text[len] = '\0';
    *out_len = len;
    return text;
}

bool api_premium_from_json(const json_t *obj, api_premium *out)
{
    static const char *const own_fields[] = {"kind", "v", "age_ms", "stale", "history_id"};
    *out = (api_premium){.ts = API_NO_TS};
    json_t *copy = json_copy((json_t *)obj); /* shallow: values are shared, not modified */
    if (!copy)
        return false;
    for (size_t i = 0; i < sizeof own_fields / sizeof own_fields[0]; i++)
        json_object_del(copy, own_fields[i]);
    out->symbol = dup_field(obj, "symbol");
    out->krw = dup_field(obj, "krw_exchange");
    out->global = dup_field(obj, "global_exchange");
    const json_t *ts = json_object_get(obj, "ts");
    if (json_is_integer(ts))
        out->ts = json_integer_value(ts);
    out->rec_stale = json_is_true(json_object_get(obj, "stale"));
    size_t len = 0;
    char *text = api_json_dump(copy, &len);
    json_decref(copy);
    out->fixed = text ? open_object(text, len, &out->fixed_len) : NULL;
    if (!out->symbol || !out->krw || !out->global || !out->fixed) {
        api_premium_clear(out);
        return false;
    }
    out->hash = api_hash(API_HASH_SEED, out->fixed, out->fixed_len);
    return true;
}

api_age api_premium_age(const api_premium *p, int64_t now_ms, int64_t stale_after_ms)
{
    api_age a = {0};
    if (p->ts == API_NO_TS) {
        a.stale = true;
        return a;
    }
    a.known = true;
    /* A ts slightly ahead of our clock (another host's clock) reads as age 0, not negative. */
    a.age_ms = now_ms > p->ts ? now_ms - p->ts : 0;
    a.stale = p->rec_stale || a.age_ms > stale_after_ms;
    return a;
}

bool api_premium_render(api_buf *b, const api_premium *p, api_age age)
{
    char tail[96];
    const char *reason = "";
    if (age.stale && !p->rec_stale) /* the record's own stale_reason is in `fixed` */
        reason = age.known ? ",\"stale_reason\":\"age\"" : ",\"stale_reason\":\"no_ts\"";
    int n;
    if (age.known)
        n = snprintf(tail, sizeof tail, "\"age_ms\":%" PRId64 ",\"stale\":%s%s}", age.age_ms,
                     age.stale ? "true" : "false", reason);
    else
        n = snprintf(tail, sizeof tail, "\"age_ms\":null,\"stale\":true%s}", reason);
    if (n < 0 || (size_t)n >= sizeof tail)
        return false;
    return api_buf_add(b, p->fixed, p->fixed_len) && api_buf_add(b, tail, (size_t)n);
}

/* ---- static responses ---- */

bool api_read_headers(struct MHD_Response *r, const char *etag)
{
    return MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") ==
               MHD_YES &&
           MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=1") == MHD_YES &&
           MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag) == MHD_YES;
}

static void static_clear(api_static *st)
{
    if (st->ok)
        MHD_destroy_response(st->ok);
    if (st->not_modified)
        MHD_destroy_response(st->not_modified);
    *st = (api_static){0};
}

/* Takes ownership of `body` (malloc'd, len bytes); the 200 response frees it. */
static bool static_make(api_static *st, char *body, size_t len)
{
    snprintf(st->etag, sizeof st->etag, "\"%016" PRIx64 "\"", api_hash(API_HASH_SEED, body, len));
    st->ok = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!st->ok) {
        free(body);
        return false;
    }
    st->not_modified = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return st->not_modified && api_read_headers(st->ok, st->etag) &&
           MHD_add_response_header(st->not_modified, MHD_HTTP_HEADER_ETAG, st->etag) == MHD_YES &&
           MHD_add_response_header(st->not_modified, MHD_HTTP_HEADER_CACHE_CONTROL,
                                   "max-age=1") == MHD_YES;
}

/* {"data":<json>} as a static read; takes nothing. */
static bool static_wrap(api_static *st, const char *json, size_t len)
{
    api_buf b = {0};
    api_buf_puts(&b, "{\"data\":");
    api_buf_add(&b, json, len);
    api_buf_puts(&b, "}");
    size_t n = 0;
    char *body = api_buf_take(&b, &n);
    return body && static_make(st, body, n);
}

/* ---- views ---- */

static void view_destroy(api_view *v)
{
    for (size_t i = 0; i < v->n_premiums; i++)
        api_premium_clear(&v->premiums[i]);
    free(v->premiums);
    for (size_t i = 0; i < v->n_tickers; i++) {
        free(v->tickers[i].exchange);
        free(v->tickers[i].symbol);
        static_clear(&v->tickers[i].resp);
    }
    free(v->tickers);
    static_clear(&v->tickers_all);
    static_clear(&v->fx_all);
    for (size_t i = 0; i < v->n_lives; i++) {
        free(v->lives[i].id);
        free(v->lives[i].json);
    }
    free(v->lives);
    free(v);
}

void api_view_release(api_view *v)
{
    if (v && atomic_fetch_sub(&v->refs, 1) == 1)
        view_destroy(v);
}

api_view *api_snapshot_acquire(api_snapshot *s)
{
    pthread_mutex_lock(&s->lock);
    api_view *v = s->current;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&s->lock);
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of `obj`, sorted; borrowed strings in a malloc'd array (NULL when empty or OOM). */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    if (*n == 0)
        return NULL;
    const char **keys = malloc(*n * sizeof *keys);
    if (!keys) {
        *n = 0;
        return NULL;
    }
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        keys[i++] = key;
    }
    (void)value;
    qsort(keys, *n, sizeof *keys, cmp_str);
    return keys;
}

static bool build_premiums(const api_snapshot *s, api_view *v)
{
    size_t n = 0;
    const char **keys = sorted_keys(s->store[K_PREMIUM], &n);
    if (n == 0)
        return true;
    v->premiums = keys ? calloc(n, sizeof *v->premiums) : NULL;
    bool ok = v->premiums != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = api_premium_from_json(json_object_get(s->store[K_PREMIUM], keys[i]),
                                   &v->premiums[i]);
        v->n_premiums += ok;
    }
    free(keys);
    return ok;
}

/* The list body {"data":[...]} of `kind`, and for tickers one static read per item. */
static bool build_list(const api_snapshot *s, snap_kind kind, api_view *v, api_static *all)
{
    size_t n = 0;
    const char **keys = sorted_keys(s->store[kind], &n);
    bool ok = n == 0 || keys;
    if (ok && kind == K_TICKER && n > 0) {
        v->tickers = calloc(n, sizeof *v->tickers);
        ok = v->tickers != NULL;
    }
    api_buf b = {0};
    api_buf_puts(&b, "{\"data\":[");
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *obj = json_object_get(s->store[kind], keys[i]);
        size_t len = 0;
        char *text = api_json_dump(obj, &len);
        ok = text != NULL;
        if (ok && i > 0)
            api_buf_puts(&b, ",");
        if (ok)
            api_buf_add(&b, text, len);
        if (ok && kind == K_TICKER) {
            api_ticker *t = &v->tickers[v->n_tickers++];
            t->exchange = dup_field(obj, "exchange");
            t->symbol = dup_field(obj, "symbol");
            ok = t->exchange && t->symbol && static_wrap(&t->resp, text, len);
        }
        free(text);
    }
    free(keys);
    api_buf_puts(&b, "]}");
    size_t len = 0;
    char *body = api_buf_take(&b, &len);
    if (!ok || !body) {
        free(body);
        return false;
    }
    return static_make(all, body, len);
}

static bool build_lives(const api_snapshot *s, api_view *v)
{
    size_t n = 0;
    const char **keys = sorted_keys(s->store[K_LIVE], &n);
    if (n == 0)
        return true;
    v->lives = keys ? calloc(n, sizeof *v->lives) : NULL;
    bool ok = v->lives != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        api_live *l = &v->lives[v->n_lives++];
        l->id = strdup(keys[i]);
        l->json = api_json_dump(json_object_get(s->store[K_LIVE], keys[i]), NULL);
        ok = l->id && l->json;
    }
    free(keys);
    return ok;
}

static api_view *build_view(const api_snapshot *s)
{
    api_view *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    if (!build_premiums(s, v) || !build_list(s, K_TICKER, v, &v->tickers_all) ||
        !build_list(s, K_FX, v, &v->fx_all) || !build_lives(s, v)) {
        view_destroy(v);
        return NULL;
    }
    return v;
}

static void publish(api_snapshot *s, api_view *v)
{
    pthread_mutex_lock(&s->lock);
    api_view *old = s->current;
    s->current = v;
    pthread_mutex_unlock(&s->lock);
    api_view_release(old);
}

/* ---- lookups ---- */

size_t api_view_symbol(const api_view *v, const char *symbol, size_t *first)
{
    size_t lo = 0, hi = v->n_premiums;
    while (lo < hi) { /* lower bound */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(v->premiums[mid].symbol, symbol) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < v->n_premiums && strcmp(v->premiums[end].symbol, symbol) == 0)
        end++;
    *first = lo;
    return end - lo;
}

const api_ticker *api_view_ticker(const api_view *v, const char *exchange, const char *symbol)
{
    size_t lo = 0, hi = v->n_tickers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const api_ticker *t = &v->tickers[mid];
        int c = strcmp(t->exchange, exchange);
        if (c == 0)
            c = strcmp(t->symbol, symbol);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *api_view_live(const api_view *v, const char *id)
{
    for (size_t i = 0; i < v->n_lives; i++) {
        if (strcmp(v->lives[i].id, id) == 0)
            return v->lives[i].json;
    }
    return NULL;
}

/* ---- writer side ---- */

/* A key component: a non-empty string without control characters (so KEY_SEP cannot occur). */
static const char *component(const json_t *obj, const char *field, char *buf, size_t size)
{
    const json_t *v = json_object_get(obj, field);
    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    const char *s = json_string_value(v);
    if (!s || !s[0])
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return NULL;
    }
    return s;
}

/* The store key of a record, or false (reported) when a keying field is missing. */
static bool record_key(api_snapshot *s, snap_kind kind, const json_t *obj, size_t index,
                       api_buf *key)
{
    static const char *const fields[K_COUNT][4] = {
        [K_TICKER] = {"exchange", "symbol", NULL},
        [K_PREMIUM] = {"symbol", "krw_exchange", "global_exchange", NULL},
        [K_FX] = {"pair", NULL},
        [K_LIVE] = {"id", NULL},
    };
    for (size_t i = 0; fields[kind][i]; i++) {
        char num[32];
        const char *c = component(obj, fields[kind][i], num, sizeof num);
        if (!c) {
            s->host->report_error(s->self, TF_EVALUE,
                                  "%s record #%zu: field %s: expected a non-empty string without "
                                  "control characters, found %s; record skipped",
                                  kind_names[kind], index, fields[kind][i],
                                  json_object_get(obj, fields[kind][i]) ? "another value"
                                                                        : "no such field");
            return false;
        }
        if (i > 0)
            api_buf_puts(key, KEY_SEP);
        api_buf_puts(key, c);
    }
    return !key->oom;
}

static int kind_of(const char *kind)
{
    for (int k = 0; k < K_COUNT; k++) {
        if (strcmp(kind_names[k], kind) == 0)
            return k;
    }
    return -1;
}

/* Stores one record (its JSON, taken). *dirty is set when the store changed. */
static int apply_one(api_snapshot *s, snap_kind kind, json_t *obj, size_t index,
                     api_premium_fn changed, void *arg, bool *dirty)
{
    json_object_del(obj, "kind");
    json_object_del(obj, "v");
    char *history_id = NULL;
    if (kind == K_PREMIUM) {
        /* Neither changes what the premium says: age_ms is recomputed per request and the
         * history id only names the event. */
        history_id = dup_field(obj, "history_id");
        json_object_del(obj, "history_id");
        json_object_del(obj, "age_ms");
    }
    api_buf key = {0};
    int rc = TF_OK;
    if (!record_key(s, kind, obj, index, &key)) {
        rc = key.oom ? TF_ENOMEM : TF_EVALUE;
        goto out;
    }
    const json_t *old = json_object_get(s->store[kind], key.p);
    if (old && json_equal((json_t *)old, obj))
        goto out;
    if (kind == K_PREMIUM && changed) {
        api_premium p;
        if (api_premium_from_json(obj, &p))
            changed(arg, &p, history_id);
        api_premium_clear(&p);
    }
    if (json_object_set(s->store[kind], key.p, obj) != 0) {
        rc = TF_ENOMEM;
        goto out;
    }
    *dirty = true;
out:
    json_decref(obj);
    free(history_id);
    api_buf_free(&key);
    return rc;
}

int api_snapshot_apply(api_snapshot *s, const tf_batch *batch, api_premium_fn changed, void *arg)
{
    const tf_host *h = s->host;
    bool dirty = false;
    int rc = TF_OK;
    size_t n = h->batch_count(batch);
    for (size_t i = 0; i < n && rc != TF_ENOMEM; i++) {
        const tf_record *r = h->batch_at(batch, i);
        int kind = kind_of(h->record_kind(r));
        if (kind < 0)
            continue;
        json_t *obj = h->record_to_json(r);
        int one = obj ? apply_one(s, (snap_kind)kind, obj, i, changed, arg, &dirty) : TF_ENOMEM;
        if (one == TF_ENOMEM)
            rc = TF_ENOMEM;
    }
    if (!dirty)
        return rc;
    api_view *v = build_view(s);
    if (!v)
        return TF_ENOMEM;
    publish(s, v);
    return rc;
}

api_snapshot *api_snapshot_create(const tf_host *host, tf_instance *self)
{
    api_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->host = host;
    s->self = self;
    pthread_mutex_init(&s->lock, NULL);
    bool ok = true;
    for (int k = 0; k < K_COUNT; k++) {
        s->store[k] = json_object();
        ok = ok && s->store[k];
    }
    s->current = ok ? build_view(s) : NULL;
    if (!s->current) {
        api_snapshot_destroy(s);
        return NULL;
    }
    return s;
}

void api_snapshot_destroy(api_snapshot *s)
{
    if (!s)
        return;
    api_view_release(s->current);
    for (int k = 0; k < K_COUNT; k++)
        json_decref(s->store[k]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
