/*
 * The http_api sink's in-memory snapshot. The sink's thread applies each batch to a private
 * store (the latest premium, ticker, fx and position_live per key) and, when something changed,
 * publishes a new immutable view. Bodies are rendered once per update, and only for what the
 * update changed: tickers and fx as ready-to-queue libmicrohttpd responses with their ETags,
 * each premium as its JSON minus the two fields that depend on the request time (age_ms,
 * stale); unchanged items and lists are shared with the previous view by reference. Request
 * threads take a reference to the current view and never wait for the writer beyond a pointer
 * swap.
 */
#ifndef API_SNAPSHOT_H
#define API_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>
#include <tickflow/tickflow.h>

#include "api_text.h"

#define API_NO_TS INT64_MIN

/* One premium, rendered once per update. Shared between views (refs) when it is a view's
 * item; a temporary one (history, replay) does not use refs. */
typedef struct api_premium {
    atomic_int refs;
    char *symbol; /* owned */
    char *krw;    /* owned: krw_exchange */
    char *global; /* owned: global_exchange */
    /* owned: the object's compact JSON without age_ms, stale, suspect and the closing brace; it
     * ends with
     * ',' (or '{' for an object with no other field) so the request-time fields follow. */
    char *fixed;
    size_t fixed_len;
    uint64_t hash;  /* of `fixed`: the premium's identity in ETags */
    int64_t ts;     /* the record's `ts` (epoch ms), API_NO_TS when absent */
    bool rec_stale; /* the record's own stale flag */
    bool suspect;   /* the record's suspect flag (outside the premium band; false if absent) */
} api_premium;

/* A read rendered once: its 200 and 304 responses (one reference each, owned by the view). */
typedef struct api_static {
    struct MHD_Response *ok;
    struct MHD_Response *not_modified;
    char etag[24];    /* "\"<16 hex>\"" */
    const char *body; /* the 200 body, owned by `ok`: lets a request build a private copy */
    size_t len;
} api_static;

/* One ticker, rendered once per update, shared between views. */
typedef struct api_ticker {
    atomic_int refs;
    char *exchange; /* owned */
    char *symbol;   /* owned */
    char *json;     /* owned: the ticker object, for the list body */
    size_t json_len;
    api_static resp; /* {"data": <the ticker>} */
} api_ticker;

/* A list read ({"data":[...]}), shared between views until its kind changes. */
typedef struct api_list {
    atomic_int refs;
    api_static resp;
} api_list;

typedef struct api_live {
    char *id;   /* owned: the position id as text */
    char *json; /* owned: the position_live record as a JSON object */
} api_live;

/* An immutable view. Readers hold a reference (api_snapshot_acquire / api_view_release). */
typedef struct api_view {
    atomic_int refs;
    api_premium **premiums; /* references, sorted by symbol, krw, global */
    size_t n_premiums;
    api_ticker **tickers; /* references, sorted by exchange, symbol */
    size_t n_tickers;
    api_list *tickers_all; /* reference */
    api_list *fx_all;      /* reference */
    api_live *lives;       /* owned, sorted by id */
    size_t n_lives;
} api_view;

typedef struct api_snapshot api_snapshot;

/* `host` and `self` are borrowed and outlive the snapshot. NULL when out of memory. */
api_snapshot *api_snapshot_create(const tf_host *host, tf_instance *self);
void api_snapshot_destroy(api_snapshot *s);

/* Called for each premium whose value changed in a batch (or that names a new history entry),
 * with the rendered premium (lent for the call) and the record's history stream id (NULL when
 * the record carries none that parses). */
typedef void (*api_premium_fn)(void *arg, const api_premium *p, const char *history_id);

/* Writer side (one thread): applies the batch's ticker, premium, fx and position_live records
 * and publishes a new view when something changed. Premiums that name a history entry are
 * applied in history id order, and one whose entry is not after the pair's last is dropped (a
 * resync or a late copy of a value already applied): `changed` sees each history entry once,
 * in order. Records without the fields that key them are reported (TF_EVALUE) and skipped.
 * Returns TF_OK, or TF_ENOMEM (the old view stays). */
int api_snapshot_apply(api_snapshot *s, const tf_batch *batch, api_premium_fn changed, void *arg);

/* Adds Content-Type, Cache-Control (max-age=1) and ETag: the headers of every successful read. */
bool api_read_headers(struct MHD_Response *r, const char *etag);

/* Reader side (any thread): the current view, referenced; never NULL. */
api_view *api_snapshot_acquire(api_snapshot *s);
void api_view_release(api_view *v);

/* The premiums of `symbol` (upper case): their count, the first at *first. */
size_t api_view_symbol(const api_view *v, const char *symbol, size_t *first);
const api_ticker *api_view_ticker(const api_view *v, const char *exchange, const char *symbol);
const char *api_view_live(const api_view *v, const char *id); /* JSON text or NULL */

/* Request-time state of a premium. */
typedef struct api_age {
    int64_t age_ms; /* now - ts; meaningless when !known */
    bool known;     /* the premium has a ts */
    bool stale;     /* rec_stale, or no ts, or age_ms > stale_after */
    bool fresh;     /* neither stale nor suspect: the only premiums a client may act on */
} api_age;

api_age api_premium_age(const api_premium *p, int64_t now_ms, int64_t stale_after_ms);
/* Appends the premium's full JSON object (its fixed part, then age_ms, stale and suspect). */
bool api_premium_render(api_buf *b, const api_premium *p, api_age age);

/* Builds a premium from a JSON object (a record or a history entry; not modified): the
 * rendered part leaves out the fields the API writes itself (kind, v, age_ms, stale,
 * history_id). Fills *out (freed with api_premium_clear); false when symbol, krw_exchange or
 * global_exchange is missing, or out of memory. */
bool api_premium_from_json(const json_t *obj, api_premium *out);
void api_premium_clear(api_premium *p);

#endif
