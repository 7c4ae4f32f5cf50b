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
    static const char *const own_fields[] = {"kind",  "v",       "age_ms",
                                             "stale", "suspect", "history_id"};
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
    /* Rendered at request time like stale, so every premium carries it, even one written
     * before the premium transform flagged suspects. */
    out->suspect = json_is_true(json_object_get(obj, "suspect"));
    size_t len = 0;
    char *text = api_json_dump(copy, &len);
    json_decref(copy);
    out->fixed = text ? open_object(text, len, &out->fixed_len) : NULL;
    if (!out->symbol || !out->krw || !out->global || !out->fixed) {
        api_premium_clear(out);
        return false;
    }
    out->hash = api_hash(API_HASH_SEED, out->fixed, out->fixed_len);
    if (out->suspect) /* not in `fixed`: the identity must still tell the two apart */
        out->hash = api_hash(out->hash, "suspect", 7);
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
    a.fresh = !a.stale && !p->suspect;
    return a;
}

bool api_premium_render(api_buf *b, const api_premium *p, api_age age)
{
    char tail[128];
    const char *reason = "";
    if (age.stale && !p->rec_stale) /* the record's own stale_reason is in `fixed` */
        reason = age.known ? ",\"stale_reason\":\"age\"" : ",\"stale_reason\":\"no_ts\"";
    int n;
    if (age.known)
        n = snprintf(tail, sizeof tail, "\"age_ms\":%" PRId64 ",\"stale\":%s%s,\"suspect\":%s}",
                     age.age_ms, age.stale ? "true" : "false", reason,
                     p->suspect ? "true" : "false");
    else
        n = snprintf(tail, sizeof tail, "\"age_ms\":null,\"stale\":true%s,\"suspect\":%s}", reason,
                     p->suspect ? "true" : "false");
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
    st->body = body;
    st->len = len;
    st->not_modified = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return st->not_modified && api_read_headers(st->ok, st->etag) &&
           MHD_add_response_header(st->not_modified, MHD_HTTP_HEADER_ETAG, st->etag) == MHD_YES &&
           MHD_add_response_header(st->not_modified, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=1") ==
               MHD_YES;
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

/* ---- shared items ---- */

static api_premium *premium_new(const json_t *obj)
{
    api_premium *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    if (!api_premium_from_json(obj, p)) {
        free(p);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    return p;
}

static void premium_release(api_premium *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
        api_premium_clear(p);
        free(p);
    }
}

static void ticker_release(api_ticker *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) {
        free(t->exchange);
        free(t->symbol);
        free(t->json);
        static_clear(&t->resp);
        free(t);
    }
}

static api_ticker *ticker_new(const json_t *obj)
{
    api_ticker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->exchange = dup_field(obj, "exchange");
    t->symbol = dup_field(obj, "symbol");
    t->json = api_json_dump(obj, &t->json_len);
    if (!t->exchange || !t->symbol || !t->json || !static_wrap(&t->resp, t->json, t->json_len)) {
        ticker_release(t);
        return NULL;
    }
    return t;
}

static void list_release(api_list *l)
{
    if (l && atomic_fetch_sub(&l->refs, 1) == 1) {
        static_clear(&l->resp);
        free(l);
    }
}

static void *ref(atomic_int *refs, void *item)
{
    atomic_fetch_add(refs, 1);
    return item;
}

/* ---- the writer's store ---- */

/* One key of a kind: the record's JSON and, for premiums and tickers, its rendered item. */
typedef struct snap_entry {
    char *key;   /* owned */
    json_t *obj; /* owned */
    void *item;  /* owned reference: api_premium or api_ticker; NULL for other kinds */
    /* premiums: the history entry the value came from, when it named one. An entry at or
     * before it is a value already seen (a resync, a late event): no event, no change. */
    uint64_t hid_ms, hid_seq;
    bool has_hid;
} snap_entry;

/* Sorted by key (the view's order), so a new view is a walk, not a sort. */
typedef struct snap_table {
    snap_entry *v; /* owned */
    size_t n, cap;
    bool changed; /* since the last published view */
} snap_table;

struct api_snapshot {
    const tf_host *host;       /* borrowed */
    tf_instance *self;         /* borrowed */
    snap_table store[K_COUNT]; /* writer-only */
    pthread_mutex_t lock;      /* guards `current` */
    api_view *current;         /* owned reference */
};

static void item_release(snap_kind kind, void *item)
{
    if (kind == K_PREMIUM)
        premium_release(item);
    else if (kind == K_TICKER)
        ticker_release(item);
}

static void table_free(snap_kind kind, snap_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].key);
        json_decref(t->v[i].obj);
        item_release(kind, t->v[i].item);
    }
    free(t->v);
    *t = (snap_table){0};
}

/* The index of `key`, or where it would be inserted (*found false). */
static size_t table_find(const snap_table *t, const char *key, bool *found)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Stores obj and item (both taken) under key at index i (found: replacing that entry). */
static bool table_put(snap_kind kind, snap_table *t, size_t i, bool found, const char *key,
                      json_t *obj, void *item)
{
    if (found) {
        json_decref(t->v[i].obj);
        item_release(kind, t->v[i].item);
    } else {
        char *k = strdup(key);
        snap_entry *v =
            t->n < t->cap ? t->v : realloc(t->v, (t->cap ? t->cap * 2 : 16) * sizeof *v);
        if (!k || !v) {
            free(k);
            json_decref(obj);
            item_release(kind, item);
            return false;
        }
        if (v != t->v) {
            t->v = v;
            t->cap = t->cap ? t->cap * 2 : 16;
        }
        memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof *t->v);
        t->n++;
        t->v[i].key = k;
    }
    t->v[i].obj = obj;
    t->v[i].item = item;
    t->v[i].has_hid = false;
    t->changed = true;
    return true;
}

/* ---- views ---- */

static void view_destroy(api_view *v)
{
    for (size_t i = 0; i < v->n_premiums; i++)
        premium_release(v->premiums[i]);
    free(v->premiums);
    for (size_t i = 0; i < v->n_tickers; i++)
        ticker_release(v->tickers[i]);
    free(v->tickers);
    list_release(v->tickers_all);
    list_release(v->fx_all);
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

/* References to every premium / ticker of the store, in key order. */
static bool share_premiums(const snap_table *t, api_view *v)
{
    v->premiums = t->n ? malloc(t->n * sizeof *v->premiums) : NULL;
    if (t->n && !v->premiums)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        api_premium *p = t->v[i].item;
        v->premiums[v->n_premiums++] = ref(&p->refs, p);
    }
    return true;
}

static bool share_tickers(const snap_table *t, api_view *v)
{
    v->tickers = t->n ? malloc(t->n * sizeof *v->tickers) : NULL;
    if (t->n && !v->tickers)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        api_ticker *tk = t->v[i].item;
        v->tickers[v->n_tickers++] = ref(&tk->refs, tk);
    }
    return true;
}

/* {"data":[...]} of a table: the tickers' rendered objects, or the records' JSON. */
static api_list *list_new(snap_kind kind, const snap_table *t)
{
    api_list *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    atomic_init(&l->refs, 1);
    api_buf b = {0};
    api_buf_puts(&b, "{\"data\":[");
    for (size_t i = 0; i < t->n && !b.oom; i++) {
        if (i > 0)
            api_buf_puts(&b, ",");
        if (kind == K_TICKER) {
            const api_ticker *tk = t->v[i].item;
            api_buf_add(&b, tk->json, tk->json_len);
            continue;
        }
        size_t len = 0;
        char *text = api_json_dump(t->v[i].obj, &len);
        if (text)
            api_buf_add(&b, text, len);
        else
            b.oom = true;
        free(text);
    }
    api_buf_puts(&b, "]}");
    size_t len = 0;
    char *body = api_buf_take(&b, &len);
    if (!body || !static_make(&l->resp, body, len)) {
        list_release(l);
        return NULL;
    }
    return l;
}

/* The list of `kind`: rendered again when the kind changed, else the previous view's. */
static api_list *list_for(const snap_table *t, snap_kind kind, api_list *prev)
{
    if (prev && !t->changed)
        return ref(&prev->refs, prev);
    return list_new(kind, t);
}

static bool build_lives(const snap_table *t, api_view *v)
{
    v->lives = t->n ? calloc(t->n, sizeof *v->lives) : NULL;
    bool ok = t->n == 0 || v->lives;
    for (size_t i = 0; ok && i < t->n; i++) {
        api_live *l = &v->lives[v->n_lives++];
        l->id = strdup(t->v[i].key);
        l->json = api_json_dump(t->v[i].obj, NULL);
        ok = l->id && l->json;
    }
    return ok;
}

/* A view of the store; `prev` (may be NULL) lends its unchanged lists. */
static api_view *build_view(const api_snapshot *s, api_view *prev)
{
    api_view *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    bool ok = share_premiums(&s->store[K_PREMIUM], v) && share_tickers(&s->store[K_TICKER], v);
    if (ok) {
        v->tickers_all = list_for(&s->store[K_TICKER], K_TICKER, prev ? prev->tickers_all : NULL);
        v->fx_all = list_for(&s->store[K_FX], K_FX, prev ? prev->fx_all : NULL);
        ok = v->tickers_all && v->fx_all && build_lives(&s->store[K_LIVE], v);
    }
    if (!ok) {
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
        if (strcmp(v->premiums[mid]->symbol, symbol) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < v->n_premiums && strcmp(v->premiums[end]->symbol, symbol) == 0)
        end++;
    *first = lo;
    return end - lo;
}

const api_ticker *api_view_ticker(const api_view *v, const char *exchange, const char *symbol)
{
    size_t lo = 0, hi = v->n_tickers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const api_ticker *t = v->tickers[mid];
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

/* The rendered item a store entry keeps for `kind` (NULL for kinds without one). */
static bool render_item(snap_kind kind, const json_t *obj, void **item)
{
    *item = NULL;
    if (kind == K_PREMIUM)
        *item = premium_new(obj);
    else if (kind == K_TICKER)
        *item = ticker_new(obj);
    else
        return true;
    return *item != NULL;
}

/* A premium's history entry id, parsed (false when the record names none). */
typedef struct snap_hid {
    uint64_t ms, seq;
    bool ok;
} snap_hid;

static int hid_cmp(uint64_t ams, uint64_t aseq, uint64_t bms, uint64_t bseq)
{
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq;
}

/* True when a premium naming history entry `h` says nothing new for the stored entry `e`. */
static bool seen_before(const snap_entry *e, const snap_hid *h)
{
    return h->ok && e->has_hid && hid_cmp(h->ms, h->seq, e->hid_ms, e->hid_seq) <= 0;
}

/* Stores one record (its JSON, taken) and renders what it changes. */
static int apply_one(api_snapshot *s, snap_kind kind, json_t *obj, size_t index,
                     api_premium_fn changed, void *arg)
{
    json_object_del(obj, "kind");
    json_object_del(obj, "v");
    char *history_id = NULL;
    snap_hid hid = {0};
    if (kind == K_PREMIUM) {
        /* Neither changes what the premium says: age_ms is recomputed per request and the
         * history id only names the event. */
        history_id = dup_field(obj, "history_id");
        hid.ok = history_id && api_parse_stream_id(history_id, &hid.ms, &hid.seq);
        json_object_del(obj, "history_id");
        json_object_del(obj, "age_ms");
    }
    api_buf key = {0};
    int rc = TF_OK;
    if (!record_key(s, kind, obj, index, &key)) {
        rc = key.oom ? TF_ENOMEM : TF_EVALUE;
        goto out;
    }
    snap_table *t = &s->store[kind];
    bool found = false;
    size_t i = table_find(t, key.p, &found);
    if (found && seen_before(&t->v[i], &hid))
        goto out;
    /* A history entry is news even when its value repeats the last one: it is another tick. */
    if (found && !hid.ok && json_equal(t->v[i].obj, obj))
        goto out; /* the same value again (a resync): nothing to render, no event */
    void *item = NULL;
    if (!render_item(kind, obj, &item)) {
        rc = TF_ENOMEM;
        goto out;
    }
    if (kind == K_PREMIUM && changed)
        changed(arg, item, hid.ok ? history_id : NULL);
    if (!table_put(kind, t, i, found, key.p, json_incref(obj), item)) {
        rc = TF_ENOMEM;
        goto out;
    }
    t->v[i].has_hid = hid.ok;
    t->v[i].hid_ms = hid.ms;
    t->v[i].hid_seq = hid.seq;
out:
    json_decref(obj);
    free(history_id);
    api_buf_free(&key);
    return rc;
}

/* A record of the batch, and its history id when it is a premium that names one. */
typedef struct snap_order {
    size_t index;
    snap_hid hid;
} snap_order;

/* Premiums that name history entries go in id order (the order the redis sink published
 * them, and the order SSE clients resume in); the others keep the batch's order, first. */
static int order_cmp(const void *a, const void *b)
{
    const snap_order *x = a, *y = b;
    if (x->hid.ok != y->hid.ok)
        return x->hid.ok ? 1 : -1;
    int c = x->hid.ok ? hid_cmp(x->hid.ms, x->hid.seq, y->hid.ms, y->hid.seq) : 0;
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static snap_hid record_hid(const tf_host *h, const tf_record *r)
{
    snap_hid hid = {0};
    const char *text = h->record_get_string(r, "history_id");
    hid.ok = text && api_parse_stream_id(text, &hid.ms, &hid.seq);
    return hid;
}

int api_snapshot_apply(api_snapshot *s, const tf_batch *batch, api_premium_fn changed, void *arg)
{
    const tf_host *h = s->host;
    int rc = TF_OK;
    size_t n = h->batch_count(batch);
    snap_order *order = n ? malloc(n * sizeof *order) : NULL;
    if (n && !order)
        return TF_ENOMEM;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const tf_record *r = h->batch_at(batch, i);
        int kind = kind_of(h->record_kind(r));
        if (kind < 0)
            continue;
        order[count].index = i;
        order[count].hid = kind == K_PREMIUM ? record_hid(h, r) : (snap_hid){0};
        count++;
    }
    if (count > 1)
        qsort(order, count, sizeof *order, order_cmp);
    for (size_t j = 0; j < count && rc != TF_ENOMEM; j++) {
        const tf_record *r = h->batch_at(batch, order[j].index);
        json_t *obj = h->record_to_json(r);
        int one = obj ? apply_one(s, (snap_kind)kind_of(h->record_kind(r)), obj, order[j].index,
                                  changed, arg)
                      : TF_ENOMEM;
        if (one == TF_ENOMEM)
            rc = TF_ENOMEM;
    }
    free(order);
    bool dirty = false;
    for (int k = 0; k < K_COUNT; k++)
        dirty = dirty || s->store[k].changed;
    if (!dirty)
        return rc;
    api_view *v = build_view(s, s->current);
    if (!v)
        return TF_ENOMEM; /* the tables stay marked changed: the next batch retries */
    for (int k = 0; k < K_COUNT; k++)
        s->store[k].changed = false;
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
    s->current = build_view(s, NULL);
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
        table_free((snap_kind)k, &s->store[k]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
