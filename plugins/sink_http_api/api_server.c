/* The HTTP server of the http_api sink: see api_server.h and docs/api.md. */
#include "api_server.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_text.h"
#include <tickflow/httpguard.h>

/* Per-connection memory beyond the header block: response headers and the write buffer. */
#define SRV_MEMORY_RESERVE (4 * 1024)
#define SRV_LISTEN_BACKLOG 511
#define SRV_PARAM_MAX      72 /* path parameters longer than this are rejected */
#define SRV_MSG_MAX        320
#define SRV_STACK_ITEMS    64
#define SRV_LOG_EVERY_MS   1000
#define CT_JSON            "application/json"

typedef enum route {
    R_PREMIUM,
    R_PREMIUM_SYMBOL,
    R_HISTORY,
    R_TICKERS,
    R_TICKER,
    R_FX,
    R_POSITIONS,
    R_POSITION,
    R_POSITION_CLOSE,
    R_STREAM,
    R_HEALTHZ,
    R_READYZ,
    R_OTHER,
    R_COUNT
} route;

/* The route label of the metrics is the template, never the raw path: a scanner cannot create
 * unbounded series. `allow` is the Allow header of a 405 (HEAD wherever GET, RFC 9110 9.3.2);
 * `params` the query parameters. */
typedef struct route_def {
    const char *tmpl;
    const char *allow;
    const char *params[6];
} route_def;

static const route_def routes[R_COUNT] = {
    [R_PREMIUM] = {"/v1/premium", "GET, HEAD", {"symbol", "krw_exchange", "global_exchange"}},
    [R_PREMIUM_SYMBOL] = {"/v1/premium/{symbol}", "GET, HEAD", {NULL}},
    [R_HISTORY] = {"/v1/premium/{symbol}/history",
                   "GET, HEAD",
                   {"from", "to", "limit", "krw_exchange", "global_exchange"}},
    [R_TICKERS] = {"/v1/tickers", "GET, HEAD", {NULL}},
    [R_TICKER] = {"/v1/tickers/{exchange}/{symbol}", "GET, HEAD", {NULL}},
    [R_FX] = {"/v1/fx", "GET, HEAD", {NULL}},
    [R_POSITIONS] = {"/v1/positions", "GET, HEAD, POST", {"all"}},
    [R_POSITION] = {"/v1/positions/{id}", "GET, HEAD", {NULL}},
    [R_POSITION_CLOSE] = {"/v1/positions/{id}/close", "POST", {NULL}},
    [R_STREAM] = {"/v1/stream", "GET, HEAD", {NULL}},
    [R_HEALTHZ] = {"/healthz", "GET, HEAD", {NULL}},
    [R_READYZ] = {"/readyz", "GET, HEAD", {NULL}},
    [R_OTHER] = {"other", NULL, {NULL}},
};

struct api_server {
    const tf_host *host; /* borrowed */
    tf_instance *self;   /* borrowed */
    api_server_config cfg;
    char *prefix;       /* owned copy of cfg.prefix */
    char *port_file;    /* owned copy */
    api_snapshot *snap; /* borrowed */
    api_sse *sse;       /* borrowed */
    api_redis *redis;   /* borrowed */
    struct MHD_Daemon *daemon;
    tf_httpguard *guard; /* owned; outlives the daemon */
    int port;
    /* {route, code} and {route}; NULL until api_server_register_metrics, and after it when the
     * names are taken with other labels. Read by the request threads. */
    _Atomic(tf_metric *) m_requests;
    _Atomic(tf_metric *) m_duration;
    atomic_bool metrics_tried;
    atomic_llong log_last_ms; /* monotonic ms of the last libmicrohttpd message logged */
    atomic_uint log_suppressed;
};

/* Per-request state (libmicrohttpd's con_cls), freed when the request completes. */
typedef struct api_req {
    route route;
    int64_t t0_ms; /* monotonic, at the first call */
    char params[2][SRV_PARAM_MAX + 1];
    bool param_too_long;
    bool is_post;
    bool is_head;
    bool checked; /* answer_early has run */
    char *body;   /* owned: the request body so far */
    size_t body_len;
} api_req;

/* What a handler answers: a status and a response. A `borrowed` response belongs to a view
 * (the pre-rendered reads): the reply then holds a reference to that view until the response
 * is queued, since libmicrohttpd takes its own reference only when queueing. Other responses
 * are destroyed after queueing. */
typedef struct reply {
    unsigned status;
    struct MHD_Response *resp;
    bool borrowed;
    api_view *view;               /* the reference that keeps a borrowed response alive */
    const api_static *static_src; /* what a borrowed response came from (in `view`) */
} reply;

/* ---- replies ---- */

static void reply_text(reply *r, unsigned status, char *body, size_t len, const char *etag)
{
    r->status = status;
    r->resp = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r->resp) {
        free(body);
        return;
    }
    if (etag) {
        api_read_headers(r->resp, etag);
    } else {
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, CT_JSON);
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
}

/* Takes `obj`. Not cached (errors, probes, writes). */
static void reply_json(reply *r, unsigned status, json_t *obj)
{
    size_t len = 0;
    char *body = obj ? api_json_dump(obj, &len) : NULL;
    json_decref(obj);
    reply_text(r, status, body, len, NULL);
}

static void reply_error(reply *r, unsigned status, const char *code, const char *fmt, ...)
    TF_PRINTF(4, 5);

/* {"error":{"code":...,"message":...}}. The message may quote client input, which need not be
 * UTF-8: json_string() refuses that, and the message then falls back to the code. */
static void reply_error(reply *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[SRV_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *m = json_string(msg);
    if (!m)
        m = json_string(code);
    reply_json(r, status, json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", m));
}

static void reply_bad_param(reply *r, const char *name, const char *expected, const char *found)
{
    reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter",
                "parameter %s: expected %s, found '%.64s'", name, expected, found);
}

/* Takes the caller's reference to `v`, which owns `st`. */
static void reply_static(reply *r, struct MHD_Connection *conn, api_view *v, const api_static *st)
{
    r->view = v;
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && api_etag_matches(inm, st->etag);
    r->status = fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    r->resp = fresh ? st->not_modified : st->ok;
    r->borrowed = true;
    r->static_src = st;
}

/* A cached read rendered now: 304 when the client has `etag`, else 200 with `body` (taken). */
static void reply_read(reply *r, struct MHD_Connection *conn, unsigned status, char *body,
                       size_t len, const char *etag)
{
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (status == MHD_HTTP_OK && inm && api_etag_matches(inm, etag)) {
        free(body);
        r->status = MHD_HTTP_NOT_MODIFIED;
        r->resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r->resp) {
            MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ETAG, etag);
            MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=1");
        }
        return;
    }
    reply_text(r, status, body, len, etag);
}

/* A read whose body is only known now (history, positions): its ETag is the body's hash. */
static void reply_read_json(reply *r, struct MHD_Connection *conn, unsigned status, json_t *obj)
{
    size_t len = 0;
    char *body = obj ? api_json_dump(obj, &len) : NULL;
    json_decref(obj);
    if (!body) {
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    char etag[24];
    snprintf(etag, sizeof etag, "\"%016" PRIx64 "\"", api_hash(API_HASH_SEED, body, len));
    reply_read(r, conn, status, body, len, etag);
}

/* ---- parameters ---- */

typedef struct param_check {
    const route_def *def;
    const char *unknown; /* first parameter the route does not take */
    const char *empty;   /* first parameter given without a value */
} param_check;

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    param_check *pc = cls;
    bool known = false;
    for (size_t i = 0; pc->def->params[i] && !known; i++)
        known = strcmp(pc->def->params[i], key) == 0;
    if (!known && !pc->unknown)
        pc->unknown = key;
    if (known && (!value || !value[0]) && !pc->empty)
        pc->empty = key;
    return MHD_YES;
}

/* Rejects (400) query parameters the route does not take, or given without a value. */
static bool params_ok(struct MHD_Connection *conn, route rt, reply *r)
{
    param_check pc = {&routes[rt], NULL, NULL};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_param, &pc);
    if (pc.unknown) {
        char expected[160] = "no query parameters";
        size_t used = 0;
        for (size_t i = 0; routes[rt].params[i]; i++) {
            int n = snprintf(expected + used, sizeof expected - used, "%s%s",
                             i == 0 ? "one of " : ", ", routes[rt].params[i]);
            if (n < 0 || (size_t)n >= sizeof expected - used)
                break;
            used += (size_t)n;
        }
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter",
                    "parameter %.64s: unknown for %s; expected %s", pc.unknown, routes[rt].tmpl,
                    expected);
        return false;
    }
    if (pc.empty) {
        reply_bad_param(r, pc.empty, "a value", "");
        return false;
    }
    return true;
}

static const char *query(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

#define SYMBOL_RULE   "1-32 letters, digits, '_', '-' or '.' (a symbol such as BTC)"
#define EXCHANGE_RULE "1-32 letters, digits, '_', '-' or '.' (an exchange such as bithumb)"
#define ID_RULE       "1-64 letters, digits, '_', '-' or '.' (a position id)"

/* Validates an optional exchange filter into out ("" when absent). */
static bool exchange_param(struct MHD_Connection *conn, const char *name, char *out, size_t size,
                           reply *r)
{
    const char *v = query(conn, name);
    out[0] = '\0';
    if (v && !api_valid_exchange(v, out, size)) {
        reply_bad_param(r, name, EXCHANGE_RULE, v);
        return false;
    }
    return true;
}

static bool path_symbol(const api_req *q, size_t i, char *out, size_t size, reply *r)
{
    if (q->param_too_long || !api_valid_symbol(q->params[i], out, size)) {
        reply_bad_param(r, "symbol", SYMBOL_RULE, q->params[i]);
        return false;
    }
    return true;
}

/* ---- premiums ---- */

static bool matches(const api_premium *p, const char *krw, const char *global)
{
    return (!krw[0] || strcmp(p->krw, krw) == 0) && (!global[0] || strcmp(p->global, global) == 0);
}

/* Renders premiums idx[0..n) of `v` as {"data":[...]} with age and staleness as of now. The
 * weak ETag covers the pre-rendered parts and the stale flags, not age_ms: a 304 says the data
 * did not change (age_ms is derived from ts). `all_stale` 503s when every one is stale. */
static void reply_premiums(api_server *s, struct MHD_Connection *conn, const api_view *v,
                           const size_t *idx, size_t n, const char *all_stale, reply *r)
{
    api_age stack[SRV_STACK_ITEMS];
    api_age *ages = n <= SRV_STACK_ITEMS ? stack : malloc(n * sizeof *ages);
    if (!ages) {
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        return;
    }
    int64_t now = s->host->now_ms();
    uint64_t h = API_HASH_SEED;
    size_t size = 16, fresh = 0;
    for (size_t i = 0; i < n; i++) {
        const api_premium *p = v->premiums[idx[i]];
        ages[i] = api_premium_age(p, now, s->cfg.stale_after_ms);
        unsigned char bits[9];
        memcpy(bits, &p->hash, 8);
        bits[8] = ages[i].stale;
        h = api_hash(h, bits, sizeof bits);
        size += p->fixed_len + 80;
        fresh += ages[i].fresh;
    }
    if (all_stale && n > 0 && fresh == 0) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_fresh_data",
                    "every premium of %s is stale (older than stale_after %" PRId64
                    " ms or flagged stale by the premium transform) or suspect",
                    all_stale, s->cfg.stale_after_ms);
        goto out;
    }
    char etag[32];
    snprintf(etag, sizeof etag, "W/\"%016" PRIx64 "\"", h);
    api_buf b = {0};
    api_buf_reserve(&b, size);
    api_buf_puts(&b, "{\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            api_buf_puts(&b, ",");
        api_premium_render(&b, v->premiums[idx[i]], ages[i]);
    }
    api_buf_puts(&b, "]}");
    size_t len = 0;
    char *body = api_buf_take(&b, &len);
    reply_read(r, conn, MHD_HTTP_OK, body, len, etag);
out:
    if (ages != stack)
        free(ages);
}

static void route_premium(api_server *s, struct MHD_Connection *conn, reply *r)
{
    char symbol[SRV_PARAM_MAX], krw[SRV_PARAM_MAX], global[SRV_PARAM_MAX];
    const char *sym = query(conn, "symbol");
    symbol[0] = '\0';
    if (sym && !api_valid_symbol(sym, symbol, sizeof symbol)) {
        reply_bad_param(r, "symbol", SYMBOL_RULE, sym);
        return;
    }
    if (!exchange_param(conn, "krw_exchange", krw, sizeof krw, r) ||
        !exchange_param(conn, "global_exchange", global, sizeof global, r))
        return;
    api_view *v = api_snapshot_acquire(s->snap);
    size_t first = 0, count = v->n_premiums;
    if (symbol[0])
        count = api_view_symbol(v, symbol, &first);
    size_t stack[SRV_STACK_ITEMS] = {
        0}; /* zeroed: gcc -O2 cannot see idx == stack is filled before use */
    size_t *idx = count <= SRV_STACK_ITEMS ? stack : calloc(count, sizeof *idx);
    if (!idx) {
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    } else {
        size_t n = 0;
        for (size_t i = first; i < first + count; i++) {
            if (matches(v->premiums[i], krw, global))
                idx[n++] = i;
        }
        reply_premiums(s, conn, v, idx, n, NULL, r);
    }
    if (idx != stack)
        free(idx);
    api_view_release(v);
}

static void route_premium_symbol(api_server *s, struct MHD_Connection *conn, const api_req *q,
                                 reply *r)
{
    char symbol[SRV_PARAM_MAX];
    if (!path_symbol(q, 0, symbol, sizeof symbol, r))
        return;
    api_view *v = api_snapshot_acquire(s->snap);
    size_t first = 0;
    size_t count = api_view_symbol(v, symbol, &first);
    if (count == 0) {
        reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                    "no premium for symbol %s; GET /v1/premium lists the known ones", symbol);
    } else {
        size_t stack[SRV_STACK_ITEMS] = {
            0}; /* zeroed: gcc -O2 cannot see idx == stack is filled before use */
        size_t *idx = count <= SRV_STACK_ITEMS ? stack : calloc(count, sizeof *idx);
        for (size_t i = 0; idx && i < count; i++)
            idx[i] = first + i;
        if (idx)
            reply_premiums(s, conn, v, idx, count, symbol, r);
        else
            reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
        if (idx != stack)
            free(idx);
    }
    api_view_release(v);
}

/* ---- history ---- */

typedef struct history_query {
    char symbol[SRV_PARAM_MAX];
    char krw[SRV_PARAM_MAX];
    char global[SRV_PARAM_MAX];
    int64_t from, to; /* -1: absent */
    int64_t limit;
} history_query;

static bool ms_param(struct MHD_Connection *conn, const char *name, int64_t *out, reply *r)
{
    const char *v = query(conn, name);
    *out = -1;
    if (v && !api_parse_uint(v, out)) {
        reply_bad_param(r, name, "epoch milliseconds (1-16 digits)", v);
        return false;
    }
    return true;
}

#define HISTORY_LIMIT_DEFAULT 100
#define HISTORY_LIMIT_MAX     1000

static bool history_params(struct MHD_Connection *conn, const api_req *q, history_query *hq,
                           reply *r)
{
    if (!path_symbol(q, 0, hq->symbol, sizeof hq->symbol, r) ||
        !exchange_param(conn, "krw_exchange", hq->krw, sizeof hq->krw, r) ||
        !exchange_param(conn, "global_exchange", hq->global, sizeof hq->global, r) ||
        !ms_param(conn, "from", &hq->from, r) || !ms_param(conn, "to", &hq->to, r))
        return false;
    if (hq->from >= 0 && hq->to >= 0 && hq->from > hq->to) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter",
                    "parameter from: expected a time before to (%" PRId64 "), found %" PRId64,
                    hq->to, hq->from);
        return false;
    }
    const char *limit = query(conn, "limit");
    hq->limit = HISTORY_LIMIT_DEFAULT;
    if (limit &&
        (!api_parse_uint(limit, &hq->limit) || hq->limit < 1 || hq->limit > HISTORY_LIMIT_MAX)) {
        reply_bad_param(r, "limit", "an integer from 1 to 1000", limit);
        return false;
    }
    return true;
}

/* The history stream keys of the pairs of hq->symbol that pass the filters (malloc'd strings
 * in a malloc'd array), or NULL with *n = 0. */
static char **history_keys(const api_server *s, const api_view *v, const history_query *hq,
                           size_t *n)
{
    size_t first = 0;
    size_t count = api_view_symbol(v, hq->symbol, &first);
    char **keys = count ? calloc(count, sizeof *keys) : NULL;
    *n = 0;
    for (size_t i = first; keys && i < first + count; i++) {
        const api_premium *p = v->premiums[i];
        if (!matches(p, hq->krw, hq->global))
            continue;
        api_buf b = {0};
        api_buf_printf(&b, "%s:history:premium:%s:%s:%s", s->prefix, p->krw, p->global, p->symbol);
        keys[*n] = api_buf_take(&b, NULL);
        *n += keys[*n] != NULL;
    }
    return keys;
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* History entries as the API shows them: the stored premium plus its stream id. The stored
 * age_ms (the transform's, at computation) is dropped: in the API age_ms means "age at the
 * response", which a past entry has only through its ts. */
static json_t *history_body(api_entry *e, size_t n)
{
    json_t *data = json_array();
    for (size_t i = 0; data && i < n; i++) {
        json_object_del(e[i].obj, "kind");
        json_object_del(e[i].obj, "v");
        json_object_del(e[i].obj, "age_ms");
        json_object_set_new(e[i].obj, "id", json_string(e[i].id));
        json_array_append(data, e[i].obj);
    }
    return data ? json_pack("{s:o,s:I}", "data", data, "count", (json_int_t)n) : NULL;
}

static void route_history(api_server *s, struct MHD_Connection *conn, const api_req *q, reply *r)
{
    history_query hq;
    if (!history_params(conn, q, &hq, r))
        return;
    api_view *v = api_snapshot_acquire(s->snap);
    size_t n_keys = 0;
    char **keys = history_keys(s, v, &hq, &n_keys);
    size_t known = api_view_symbol(v, hq.symbol, &(size_t){0});
    api_view_release(v);
    if (n_keys == 0) {
        reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                    known ? "no premium pair of %s matches krw_exchange/global_exchange"
                          : "no premium for symbol %s; GET /v1/premium lists the known ones",
                    hq.symbol);
        free_keys(keys, n_keys);
        return;
    }
    char start[32] = "-", end[32] = "+";
    if (hq.from >= 0)
        snprintf(start, sizeof start, "%" PRId64, hq.from);
    if (hq.to >= 0)
        snprintf(end, sizeof end, "%" PRId64, hq.to);
    api_entry *entries = NULL;
    size_t n = 0;
    /* Without `from`, the newest `limit` up to `to`; with it, the oldest `limit` from it. */
    int rc = api_redis_ranges(s->redis, (const char *const *)keys, n_keys, start, end, hq.from < 0,
                              (size_t)hq.limit, &entries, &n);
    free_keys(keys, n_keys);
    if (rc != TF_OK) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "redis_unavailable",
                    "history needs Redis, which %s",
                    api_redis_configured(s->redis) ? "did not answer" : "is not configured");
        return;
    }
    reply_read_json(r, conn, MHD_HTTP_OK, history_body(entries, n));
    api_entries_free(entries, n);
}

/* ---- tickers, fx ---- */

static void route_ticker(api_server *s, struct MHD_Connection *conn, const api_req *q, reply *r)
{
    char exchange[SRV_PARAM_MAX], symbol[SRV_PARAM_MAX];
    if (q->param_too_long || !api_valid_exchange(q->params[0], exchange, sizeof exchange)) {
        reply_bad_param(r, "exchange", EXCHANGE_RULE, q->params[0]);
        return;
    }
    if (!path_symbol(q, 1, symbol, sizeof symbol, r))
        return;
    api_view *v = api_snapshot_acquire(s->snap);
    const api_ticker *t = api_view_ticker(v, exchange, symbol);
    if (t) {
        reply_static(r, conn, v, &t->resp);
        return;
    }
    reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                "no ticker for %s %s; GET /v1/tickers lists the known ones", exchange, symbol);
    api_view_release(v);
}

static void route_list(api_server *s, struct MHD_Connection *conn, route rt, reply *r)
{
    api_view *v = api_snapshot_acquire(s->snap);
    reply_static(r, conn, v, rt == R_FX ? &v->fx_all->resp : &v->tickers_all->resp);
}

/* ---- positions ---- */

static bool positions_available(const api_server *s, reply *r)
{
    const tf_host *h = s->host;
    if (!TF_HOST_HAS(h, position_open) || !TF_HOST_HAS(h, position_close) ||
        !TF_HOST_HAS(h, position_get) || !TF_HOST_HAS(h, position_list)) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "positions_unavailable",
                    "this runtime has no positions store");
        return false;
    }
    if (!api_redis_configured(s->redis)) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "redis_unavailable",
                    "positions need Redis, which is not configured");
        return false;
    }
    return true;
}

/* A live value older than stale_after (now - ts) is served stale, as a premium is: the
 * snapshot keeps the last value of a position whose pipeline stopped writing it. */
static void age_live(json_t *live, int64_t now, int64_t stale_after_ms)
{
    const json_t *ts = json_object_get(live, "ts");
    const char *reason = NULL;
    if (!json_is_integer(ts))
        reason = "no_ts";
    else if (now - json_integer_value(ts) > stale_after_ms)
        reason = "age";
    if (!reason || json_is_true(json_object_get(live, "stale")))
        return;
    json_object_set_new(live, "stale", json_true());
    json_object_set_new(live, "stale_reason", json_string(reason));
}

/* The snapshot's live PnL is newer than the cached one the store returns. Only an open
 * position has one: nothing deletes a closed position's last value from the snapshot, and it
 * would read stale: false with a ts frozen at the close. */
static void merge_live(const api_server *s, const api_view *v, json_t *position, int64_t now)
{
    const char *status = json_string_value(json_object_get(position, "status"));
    if (!status || strcmp(status, "open") != 0) {
        json_object_del(position, "live");
        return;
    }
    const json_t *id = json_object_get(position, "id");
    char text[72];
    const char *key = json_string_value(id);
    if (json_is_integer(id)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        key = text;
    }
    const char *live = key ? api_view_live(v, key) : NULL;
    json_t *obj = live ? json_loads(live, 0, NULL) : NULL;
    if (obj)
        json_object_set_new(position, "live", obj);
    json_t *merged = json_object_get(position, "live");
    if (json_is_object(merged))
        age_live(merged, now, s->cfg.stale_after_ms);
}

static void reply_store_error(reply *r, int rc, const char *err, const char *what)
{
    switch (rc) {
    case TF_EINVAL:
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter", "%s", err[0] ? err : what);
        break;
    case TF_ENOTFOUND:
        reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "%s", err[0] ? err : what);
        break;
    case TF_EVALUE:
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_fresh_data", "%s",
                    err[0] ? err : "no fresh premium to price the position");
        break;
    case TF_EREDIS:
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "redis_unavailable", "%s",
                    err[0] ? err : "Redis did not answer");
        break;
    default:
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "%s: %s (status %d)", what,
                    err[0] ? err : "the positions store failed", rc);
    }
}

static void route_positions_get(api_server *s, struct MHD_Connection *conn, reply *r)
{
    const char *all_text = query(conn, "all");
    bool all = false;
    if (all_text) {
        all = strcmp(all_text, "true") == 0;
        if (!all && strcmp(all_text, "false") != 0) {
            reply_bad_param(r, "all", "true or false", all_text);
            return;
        }
    }
    if (!positions_available(s, r))
        return;
    tf_redis *rd = api_redis_take(s->redis);
    json_t *list = NULL;
    int rc = rd ? s->host->position_list(s->self, rd, all, &list) : TF_EREDIS;
    api_redis_give(s->redis, rd, rc != TF_EREDIS);
    if (rc != TF_OK || !json_is_array(list)) {
        json_decref(list);
        reply_store_error(r, rc == TF_OK ? TF_ERR : rc, "", "listing positions");
        return;
    }
    api_view *v = api_snapshot_acquire(s->snap);
    int64_t now = s->host->now_ms();
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        merge_live(s, v, p, now);
    }
    api_view_release(v);
    reply_read_json(r, conn, MHD_HTTP_OK, json_pack("{s:o}", "data", list));
}

static void route_position_get(api_server *s, struct MHD_Connection *conn, const api_req *q,
                               reply *r)
{
    char id[SRV_PARAM_MAX];
    if (q->param_too_long || !api_valid_id(q->params[0], id, sizeof id)) {
        reply_bad_param(r, "id", ID_RULE, q->params[0]);
        return;
    }
    if (!positions_available(s, r))
        return;
    tf_redis *rd = api_redis_take(s->redis);
    json_t *pos = NULL;
    int rc = rd ? s->host->position_get(s->self, rd, id, &pos) : TF_EREDIS;
    api_redis_give(s->redis, rd, rc != TF_EREDIS);
    if (rc != TF_OK || !json_is_object(pos)) {
        json_decref(pos);
        char err[128];
        snprintf(err, sizeof err, "no position %s", id);
        reply_store_error(r, rc == TF_OK ? TF_ERR : rc, rc == TF_ENOTFOUND ? err : "",
                          "reading the position");
        return;
    }
    api_view *v = api_snapshot_acquire(s->snap);
    merge_live(s, v, pos, s->host->now_ms());
    api_view_release(v);
    reply_read_json(r, conn, MHD_HTTP_OK, json_pack("{s:o}", "data", pos));
}

/* The request body as a JSON object; NULL (400 queued) when it is not one. An empty body is
 * allowed only when `optional`, and then *obj stays NULL. */
static bool body_object(api_server *s, const api_req *q, bool optional, json_t **obj, reply *r)
{
    *obj = NULL;
    if (q->body_len == 0) {
        if (optional)
            return true;
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter",
                    "body: expected a JSON object such as {\"symbol\":\"BTC\",\"direction\":"
                    "\"long_krw_short_global\",\"size\":0.1}, found an empty body");
        return false;
    }
    char err[160] = "";
    *obj = s->host->json_parse(q->body, q->body_len, err, sizeof err);
    if (!json_is_object(*obj)) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter", "body: expected a JSON object, %s%s",
                    *obj ? "found another JSON value" : "found invalid JSON: ", *obj ? "" : err);
        json_decref(*obj);
        *obj = NULL;
        return false;
    }
    return true;
}

static void route_position_open(api_server *s, const api_req *q, reply *r)
{
    json_t *request = NULL;
    if (!body_object(s, q, false, &request, r))
        return;
    tf_redis *rd = api_redis_take(s->redis);
    json_t *pos = NULL;
    char err[256] = "";
    int rc = rd ? s->host->position_open(s->self, rd, request, &pos, err, sizeof err) : TF_EREDIS;
    api_redis_give(s->redis, rd, rc != TF_EREDIS);
    json_decref(request);
    if (rc != TF_OK || !json_is_object(pos)) {
        json_decref(pos);
        reply_store_error(r, rc == TF_OK ? TF_ERR : rc, err, "opening the position");
        return;
    }
    char location[128] = "";
    const json_t *id = json_object_get(pos, "id");
    if (json_is_string(id))
        snprintf(location, sizeof location, "/v1/positions/%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(location, sizeof location, "/v1/positions/%" JSON_INTEGER_FORMAT,
                 json_integer_value(id));
    reply_json(r, MHD_HTTP_CREATED, json_pack("{s:o}", "data", pos));
    if (r->resp && location[0])
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_LOCATION, location);
}

static void route_position_close(api_server *s, const api_req *q, reply *r)
{
    char id[SRV_PARAM_MAX];
    if (q->param_too_long || !api_valid_id(q->params[0], id, sizeof id)) {
        reply_bad_param(r, "id", ID_RULE, q->params[0]);
        return;
    }
    json_t *request = NULL;
    if (!body_object(s, q, true, &request, r))
        return;
    tf_redis *rd = api_redis_take(s->redis);
    json_t *pos = NULL;
    char err[256] = "";
    int rc =
        rd ? s->host->position_close(s->self, rd, id, request, &pos, err, sizeof err) : TF_EREDIS;
    api_redis_give(s->redis, rd, rc != TF_EREDIS);
    json_decref(request);
    if (rc == TF_ECONFLICT) { /* already closed: the request was fine, the state is not */
        reply_error(r, MHD_HTTP_CONFLICT, "conflict", "%s",
                    err[0] ? err : "the position is already closed");
        json_decref(pos);
        return;
    }
    if (rc != TF_OK || !json_is_object(pos)) {
        json_decref(pos);
        char msg[128];
        snprintf(msg, sizeof msg, "no position %s", id);
        reply_store_error(r, rc == TF_OK ? TF_ERR : rc, rc == TF_ENOTFOUND && !err[0] ? msg : err,
                          "closing the position");
        return;
    }
    reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "data", pos));
}

/* ---- stream ---- */

/* Why a resuming client cannot be given everything after its Last-Event-ID (docs/api.md,
 * "Resuming"): sent as a `gap` event before whatever could be replayed. NULL: no gap. */
static const char *replay_gap(const api_replay *info, int rc, const char **message)
{
    if (rc != TF_OK) {
        *message = "Redis did not answer: nothing was replayed";
        return "redis_unavailable";
    }
    if (info->trimmed) {
        *message = "the history kept (history_max) no longer reaches back to Last-Event-ID";
        return "trimmed";
    }
    if (info->truncated) {
        *message = "more events followed Last-Event-ID than sse_replay allows: the oldest of "
                   "them were left out";
        return "replay_limit";
    }
    return NULL;
}

/* One `gap` event (no id: the client's last id stays what it was). The header is echoed with
 * anything but printable ASCII replaced, and cut short: it is the client's, not ours. */
static api_event *gap_event(const char *last_id, const char *reason, const char *message,
                            const char *first_id)
{
    char echo[API_EVENT_ID_MAX * 2];
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)last_id; *c && n + 1 < sizeof echo; c++)
        echo[n++] = *c >= 0x20 && *c < 0x7f ? (char)*c : '?';
    echo[n] = '\0';
    json_t *o =
        json_pack("{s:s,s:s,s:s}", "reason", reason, "last_event_id", echo, "message", message);
    if (o && first_id && first_id[0])
        json_object_set_new(o, "resumed_from", json_string(first_id));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    api_event *e = text ? api_event_new(NULL, "gap", text, strlen(text)) : NULL;
    free(text);
    return e;
}

/* The events a client resuming after `last_id` is owed: a gap event when not all of them can
 * be had, then the history entries after it, oldest first. *out is malloc'd; returns the count. */
static size_t replay_events(api_server *s, const char *last_id, api_event ***out)
{
    *out = NULL;
    uint64_t ms, seq;
    const char *reason = NULL, *message = NULL;
    api_entry *entries = NULL;
    size_t n = 0;
    api_replay info = {0};
    if (!api_parse_stream_id(last_id, &ms, &seq)) {
        reason = "unknown_id";
        message = "Last-Event-ID is not a history id (<ms>-<seq>) of this API: nothing can be "
                  "replayed";
    } else if (!api_redis_configured(s->redis)) {
        reason = "no_history";
        message = "this API has no Redis to replay the history from";
    } else {
        int rc =
            api_redis_replay(s->redis, s->prefix, last_id, s->cfg.replay_max, &entries, &n, &info);
        reason = replay_gap(&info, rc, &message);
        if (rc != TF_OK)
            s->host->log(s->self, TF_LOG_WARN,
                         "SSE replay after Last-Event-ID %s skipped: Redis did not answer",
                         last_id);
    }
    api_event **events = calloc(n + 1, sizeof *events);
    size_t count = 0;
    if (events && reason) {
        events[count] = gap_event(last_id, reason, message, info.first_id);
        count += events[count] != NULL;
    }
    int64_t now = s->host->now_ms();
    for (size_t i = 0; events && i < n; i++) {
        api_premium p;
        if (!api_premium_from_json(entries[i].obj, &p))
            continue;
        api_buf b = {0};
        api_premium_render(&b, &p, api_premium_age(&p, now, s->cfg.stale_after_ms));
        api_premium_clear(&p);
        api_event *e = b.oom ? NULL : api_event_new(entries[i].id, "premium", b.p, b.len);
        api_buf_free(&b);
        if (e)
            events[count++] = e;
    }
    api_entries_free(entries, n);
    *out = events;
    return count;
}

static void route_stream(api_server *s, struct MHD_Connection *conn, reply *r)
{
    bool full = false;
    api_sse_client *c = api_sse_attach(s->sse, conn, &full);
    if (!c) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, full ? "too_many_clients" : "unavailable",
                    full ? "too many event stream clients (sse_max_clients); retry later"
                         : "the server is shutting down");
        return;
    }
    /* Attached first, replayed second: an event published meanwhile is either in the replay
     * or queued live (api_sse_prepend drops the copies). */
    const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (last && last[0]) { /* an empty Last-Event-ID is no id (WHATWG: not sent) */
        api_event **events = NULL;
        size_t n = replay_events(s, last, &events);
        api_sse_prepend(c, events, n);
        free(events);
    }
    r->status = MHD_HTTP_OK;
    r->resp = api_sse_response(c);
    if (!r->resp) {
        api_sse_detach(c);
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    }
}

/* ---- probes ---- */

static void route_readyz(api_server *s, reply *r)
{
    api_view *v = api_snapshot_acquire(s->snap);
    int64_t now = s->host->now_ms();
    size_t fresh = 0;
    for (size_t i = 0; i < v->n_premiums; i++)
        fresh += api_premium_age(v->premiums[i], now, s->cfg.stale_after_ms).fresh;
    size_t known = v->n_premiums;
    api_view_release(v);
    bool redis_ok = api_redis_reachable(s->redis);
    char reason[192] = "";
    if (fresh == 0)
        snprintf(reason, sizeof reason,
                 "no fresh premium: %zu known, none both newer than stale_after %" PRId64
                 " ms and not suspect",
                 known, s->cfg.stale_after_ms);
    else if (!redis_ok)
        snprintf(reason, sizeof reason, "Redis is not reachable");
    if (reason[0])
        reply_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                   json_pack("{s:s,s:s,s:I,s:b}", "status", "not_ready", "reason", reason,
                             "fresh_premiums", (json_int_t)fresh, "redis", redis_ok));
    else
        reply_json(r, MHD_HTTP_OK,
                   json_pack("{s:s,s:I,s:b}", "status", "ready", "fresh_premiums",
                             (json_int_t)fresh, "redis", redis_ok));
}

/* ---- routing ---- */

/* Splits the path into up to 5 segments (NULL-terminated pointers into buf). Empty segments
 * (a double or trailing slash) make the path unknown. */
static size_t split_path(const char *url, char *buf, size_t size, char **seg, size_t max)
{
    if (url[0] != '/' || strlen(url) >= size)
        return 0;
    snprintf(buf, size, "%s", url + 1);
    size_t n = 0;
    char *p = buf;
    while (n < max) {
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    if (n == max && strchr(p, '/'))
        return 0; /* more segments than any route has */
    for (size_t i = 0; i < n; i++) {
        if (!seg[i][0])
            return 0;
    }
    return n;
}

static void set_param(api_req *q, size_t i, const char *v)
{
    if (strlen(v) > SRV_PARAM_MAX)
        q->param_too_long = true;
    snprintf(q->params[i], sizeof q->params[i], "%s", v);
}

static route match_v1(api_req *q, char **seg, size_t n)
{
    const char *what = seg[1];
    if (strcmp(what, "premium") == 0) {
        if (n == 2)
            return R_PREMIUM;
        set_param(q, 0, seg[2]);
        if (n == 3)
            return R_PREMIUM_SYMBOL;
        return n == 4 && strcmp(seg[3], "history") == 0 ? R_HISTORY : R_OTHER;
    }
    if (strcmp(what, "tickers") == 0) {
        if (n == 2)
            return R_TICKERS;
        if (n != 4)
            return R_OTHER;
        set_param(q, 0, seg[2]);
        set_param(q, 1, seg[3]);
        return R_TICKER;
    }
    if (strcmp(what, "positions") == 0) {
        if (n == 2)
            return R_POSITIONS;
        set_param(q, 0, seg[2]);
        if (n == 3)
            return R_POSITION;
        return n == 4 && strcmp(seg[3], "close") == 0 ? R_POSITION_CLOSE : R_OTHER;
    }
    if (n == 2 && strcmp(what, "fx") == 0)
        return R_FX;
    if (n == 2 && strcmp(what, "stream") == 0)
        return R_STREAM;
    return R_OTHER;
}

static route match_route(api_req *q, const char *url)
{
    char buf[512];
    char *seg[5];
    size_t n = split_path(url, buf, sizeof buf, seg, 5);
    if (n == 1 && strcmp(seg[0], "healthz") == 0)
        return R_HEALTHZ;
    if (n == 1 && strcmp(seg[0], "readyz") == 0)
        return R_READYZ;
    if (n >= 2 && strcmp(seg[0], "v1") == 0)
        return match_v1(q, seg, n);
    return R_OTHER;
}

/* A HEAD is answered as the GET it mirrors: libmicrohttpd sends that response's status and
 * headers (Content-Length included) without the body. */
static bool method_allowed(route rt, const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return rt == R_POSITIONS || rt == R_POSITION_CLOSE;
    bool read =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    return read && rt != R_POSITION_CLOSE;
}

static void dispatch_get(api_server *s, struct MHD_Connection *conn, api_req *q, reply *r)
{
    switch (q->route) {
    case R_PREMIUM:
        route_premium(s, conn, r);
        break;
    case R_PREMIUM_SYMBOL:
        route_premium_symbol(s, conn, q, r);
        break;
    case R_HISTORY:
        route_history(s, conn, q, r);
        break;
    case R_TICKERS:
    case R_FX:
        route_list(s, conn, q->route, r);
        break;
    case R_TICKER:
        route_ticker(s, conn, q, r);
        break;
    case R_POSITIONS:
        route_positions_get(s, conn, r);
        break;
    case R_POSITION:
        route_position_get(s, conn, q, r);
        break;
    case R_STREAM:
        route_stream(s, conn, r);
        /* libmicrohttpd 0.9.75 ends a chunked answer to a HEAD with "0\r\n\r\n", content a
         * HEAD answer must not carry (RFC 9110 9.3.2). Unchunked, it sends the headers and
         * closes; the stream's client is detached when the response is freed. */
        if (q->is_head && r->status == MHD_HTTP_OK && r->resp)
            MHD_set_response_options(r->resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
        break;
    case R_HEALTHZ:
        reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
        break;
    case R_READYZ:
        route_readyz(s, r);
        break;
    default:
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "unrouted request");
    }
}

/* ---- protection: rate limit, CORS, tokens ---- */

/* The client's address bytes (4 or 16), the rate limit's key; 0 when it has none. */
static size_t client_key(struct MHD_Connection *conn, unsigned char *key)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

static bool rate_limited(api_server *s, struct MHD_Connection *conn, reply *r)
{
    if (!s->cfg.rate_limit)
        return false;
    unsigned char key[API_RATELIMIT_KEY_MAX];
    size_t len = client_key(conn, key);
    unsigned retry = 1;
    if (api_ratelimit_take(s->cfg.rate_limit, key, len, s->host->monotonic_ms(), &retry))
        return false;
    if (s->cfg.rate_limited)
        s->host->metric_add(s->cfg.rate_limited, s->self, (const char *[]){NULL}, 1);
    reply_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
                "more than rate_limit requests a second from this address; retry after %u s",
                retry);
    char text[16];
    snprintf(text, sizeof text, "%u", retry);
    if (r->resp)
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_RETRY_AFTER, text);
    return true;
}

/* The request's Origin when it is one of cors_origins (compared exactly, as browsers send
 * it: scheme://host[:port]), else NULL. */
static const char *cors_origin(const api_server *s, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
    for (size_t i = 0; origin && i < s->cfg.n_cors; i++) {
        if (strcmp(origin, s->cfg.cors[i]) == 0)
            return origin;
    }
    return NULL;
}

static enum MHD_Result add_len(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": ", CRLF or "&=" */
    return MHD_YES;
}

/* libmicrohttpd refuses (414 or 431) a request line or header block that does not fit the
 * connection's memory, which is sized with room for the response; the exact limit is checked
 * here. The size is that of the parsed request line (path and arguments) and headers, within a
 * few bytes of the wire. A request line over the limit by itself is 414, as libmicrohttpd
 * answers one that does not fit. */
static bool headers_too_large(const api_server *s, struct MHD_Connection *conn, const char *url,
                              const char *method, reply *r)
{
    size_t line = strlen(method) + strlen(url) + 12; /* " HTTP/1.1\r\n" */
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_len, &line);
    size_t size = line;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_len, &size);
    if (size <= s->cfg.max_header_bytes)
        return false;
    if (line > s->cfg.max_header_bytes) {
        reply_error(r, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                    "request line: expected at most %zu bytes (max_header_bytes), found about %zu",
                    s->cfg.max_header_bytes, line);
        return true;
    }
    reply_error(r, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "header_too_large",
                "request line and headers: expected at most %zu bytes (max_header_bytes), found "
                "about %zu",
                s->cfg.max_header_bytes, size);
    return true;
}

/* An OPTIONS preflight: 204 with the CORS grants for a listed Origin, else 403. */
static void preflight(api_server *s, struct MHD_Connection *conn, reply *r)
{
    const char *origin = cors_origin(s, conn);
    if (!origin) {
        const char *found =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
        reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                    "cross-origin request: expected an Origin listed in cors_origins, found "
                    "'%.128s'",
                    found ? found : "none");
        return;
    }
    r->status = MHD_HTTP_NO_CONTENT;
    r->resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r->resp)
        return;
    MHD_add_response_header(r->resp, "Access-Control-Allow-Methods", "GET, POST");
    MHD_add_response_header(r->resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(r->resp, "Access-Control-Max-Age", "600");
}

/* Writes need a write token; reads a token of either scope when read_auth is on (probes stay
 * public for load balancers). 401 without a valid token, 403 with a read token on a write. */
static bool unauthorized(api_server *s, struct MHD_Connection *conn, route rt, bool write, reply *r)
{
    if (!write && (!s->cfg.read_auth || rt == R_HEALTHZ || rt == R_READYZ))
        return false;
    const char *authz =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    api_scope sc = api_auth_check(s->cfg.auth, authz);
    if (sc == API_SCOPE_WRITE || (!write && sc == API_SCOPE_READ))
        return false;
    if (sc == API_SCOPE_READ) {
        reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
                    "%s: expected a token with scope write, found one with scope read",
                    routes[rt].tmpl);
        return true;
    }
    reply_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                "%s: expected an Authorization: Bearer header with a valid %s token, found %s",
                routes[rt].tmpl, write ? "write" : "read or write",
                !authz ? "none" : "an unknown or malformed one");
    if (r->resp)
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"tickflow\"");
    return true;
}

/* The Content-Length headers of a request: how many, and whether their values differ. */
typedef struct length_headers {
    unsigned count;
    const char *first;
    bool differ;
    bool transfer_encoding; /* a Transfer-Encoding header too */
} length_headers;

static enum MHD_Result scan_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    length_headers *lh = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        lh->transfer_encoding = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (lh->count++ == 0)
        lh->first = value ? value : "";
    else if (strcmp(lh->first, value ? value : "") != 0)
        lh->differ = true;
    return MHD_YES;
}

/* Where the body ends must be certain (RFC 9112 6.3): differing Content-Length headers, or one
 * with Transfer-Encoding, let a proxy and this server split the stream differently (request
 * smuggling), and libmicrohttpd 0.9.75 silently takes the first value, even in strict mode.
 * Such a request is refused on the first call, which closes the connection (nothing after it
 * can be framed). Identical repeats are allowed (RFC 9110 8.6). */
static bool framing_ambiguous(struct MHD_Connection *conn, reply *r)
{
    length_headers lh = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_length, &lh);
    if (lh.differ) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter",
                    "header Content-Length: expected one value, found %u headers that differ",
                    lh.count);
        return true;
    }
    if (lh.count > 0 && lh.transfer_encoding) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_parameter",
                    "header Content-Length: expected it or Transfer-Encoding, found both");
        return true;
    }
    return false;
}

/* Answers everything that needs no body; false when the request is a POST whose body must be
 * read first. */
static bool answer_early(api_server *s, struct MHD_Connection *conn, const char *url,
                         const char *method, api_req *q, reply *r)
{
    if (rate_limited(s, conn, r) || headers_too_large(s, conn, url, method, r))
        return true;
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0 && s->cfg.n_cors > 0) {
        preflight(s, conn, r);
        return true;
    }
    if (q->route == R_OTHER) {
        reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                    "no route for %.120s; see docs/api.md for the endpoints", url);
        return true;
    }
    if (!method_allowed(q->route, method)) {
        reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                    "%s expects %s, found %.32s", routes[q->route].tmpl, routes[q->route].allow,
                    method);
        if (r->resp)
            MHD_add_response_header(r->resp, MHD_HTTP_HEADER_ALLOW, routes[q->route].allow);
        return true;
    }
    q->is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    q->is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (unauthorized(s, conn, q->route, q->is_post, r))
        return true;
    if (!params_ok(conn, q->route, r))
        return true;
    if (!q->is_post) {
        dispatch_get(s, conn, q, r);
        return true;
    }
    const char *ct =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && strncasecmp(ct, CT_JSON, strlen(CT_JSON)) != 0) {
        reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                    "body: expected Content-Type application/json, found %.64s", ct);
        return true;
    }
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
        reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                    "body: expected at most %zu bytes (max_body), found Content-Length %.24s",
                    s->cfg.max_body, cl);
        return true;
    }
    return !positions_available(s, r);
}

static void count_request(api_server *s, route rt, unsigned status, int64_t t0_ms)
{
    char code[8];
    snprintf(code, sizeof code, "%u", status);
    const tf_host *h = s->host;
    tf_metric *requests = atomic_load(&s->m_requests);
    tf_metric *duration = atomic_load(&s->m_duration);
    if (requests)
        h->metric_add(requests, s->self, (const char *[]){routes[rt].tmpl, code}, 1);
    if (duration)
        h->metric_observe(duration, s->self, (const char *[]){routes[rt].tmpl},
                          (double)(h->monotonic_ms() - t0_ms) / 1000.0);
}

/* A shared, pre-rendered response cannot take per-request headers (other threads send it):
 * a cross-origin request gets a private copy. */
static void reply_make_own(reply *r)
{
    const api_static *st = r->static_src;
    struct MHD_Response *copy =
        r->status == MHD_HTTP_OK
            ? MHD_create_response_from_buffer(st->len, (void *)st->body, MHD_RESPMEM_MUST_COPY)
            : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (copy && r->status == MHD_HTTP_OK) {
        api_read_headers(copy, st->etag);
    } else if (copy) {
        MHD_add_response_header(copy, MHD_HTTP_HEADER_ETAG, st->etag);
        MHD_add_response_header(copy, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=1");
    }
    r->resp = copy;
    r->borrowed = false;
}

static void add_cors(api_server *s, struct MHD_Connection *conn, reply *r)
{
    const char *origin = s->cfg.n_cors ? cors_origin(s, conn) : NULL;
    if (!origin || !r->resp)
        return;
    if (r->borrowed)
        reply_make_own(r);
    if (!r->resp)
        return;
    MHD_add_response_header(r->resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_VARY, "Origin");
}

static enum MHD_Result queue(api_server *s, struct MHD_Connection *conn, const api_req *q, reply *r)
{
    add_cors(s, conn, r);
    if (!r->resp) {
        api_view_release(r->view);
        count_request(s, q->route, MHD_HTTP_INTERNAL_SERVER_ERROR, q->t0_ms);
        return MHD_NO; /* out of memory: close the connection */
    }
    tf_httpguard_request_received(conn);
    enum MHD_Result rc = MHD_queue_response(conn, r->status, r->resp);
    if (!r->borrowed)
        MHD_destroy_response(r->resp);
    api_view_release(r->view); /* the connection holds the response now */
    count_request(s, q->route, r->status, q->t0_ms);
    return rc;
}

/* Takes a chunk of the body; false when it would pass max_body. */
static bool take_body(api_server *s, api_req *q, const char *data, size_t len)
{
    if (len > s->cfg.max_body - q->body_len)
        return false;
    char *p = realloc(q->body, q->body_len + len + 1);
    if (!p)
        return false;
    memcpy(p + q->body_len, data, len);
    q->body = p;
    q->body_len += len;
    p[q->body_len] = '\0';
    return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    api_server *s = cls;
    api_req *q = *con_cls;
    reply r = {0};
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q)
            return MHD_NO;
        *con_cls = q;
        q->t0_ms = s->host->monotonic_ms();
        q->route = match_route(q, url);
        if (framing_ambiguous(conn, &r))
            return queue(s, conn, q, &r);
        /* libmicrohttpd 0.9.75 closes the connection after a response queued on the first
         * call, so GETs are answered on the second: that keeps connections alive. A POST is
         * checked now, before its body is read. */
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return MHD_YES;
        if (answer_early(s, conn, url, method, q, &r))
            return queue(s, conn, q, &r);
        q->checked = true;
        return MHD_YES; /* its body comes next */
    }
    if (!q->checked) {
        if (*upload_data_size > 0) {
            *upload_data_size = 0; /* a body on a GET is read and ignored */
            return MHD_YES;
        }
        q->checked = true;
        if (answer_early(s, conn, url, method, q, &r))
            return queue(s, conn, q, &r);
    }
    if (*upload_data_size > 0) {
        if (!take_body(s, q, upload_data, *upload_data_size)) {
            /* A chunked body over the cap: a response cannot be queued mid-body, so the
             * connection is closed; counted as the 413 it is. */
            count_request(s, q->route, MHD_HTTP_CONTENT_TOO_LARGE, q->t0_ms);
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (q->route == R_POSITIONS)
        route_position_open(s, q, &r);
    else
        route_position_close(s, q, &r);
    return queue(s, conn, q, &r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    tf_httpguard_request_done(
        conn); /* a kept-alive connection's next request gets a new deadline */
    api_req *q = *con_cls;
    if (q) {
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

static void count_closed(void *arg, tf_httpguard_reason reason)
{
    const api_server *s = arg;
    if (!s->cfg.conn_closed)
        return;
    const char *label = reason == TF_HTTPGUARD_TIMEOUT ? "request_timeout" : "evicted";
    s->host->metric_add(s->cfg.conn_closed, s->self, (const char *[]){label}, 1);
}

/* libmicrohttpd's own diagnostics (malformed requests, refused connections) go to our log, at
 * most one a second: a client flood must not become a log flood. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    api_server *s = cls;
    long long now = (long long)s->host->monotonic_ms();
    long long last = atomic_load(&s->log_last_ms);
    if (now - last < SRV_LOG_EVERY_MS ||
        !atomic_compare_exchange_strong(&s->log_last_ms, &last, now)) {
        atomic_fetch_add(&s->log_suppressed, 1);
        return;
    }
    unsigned suppressed = atomic_exchange(&s->log_suppressed, 0);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (suppressed)
        s->host->log(s->self, TF_LOG_WARN, "libmicrohttpd: %s (and %u more since the last one)",
                     msg, suppressed);
    else
        s->host->log(s->self, TF_LOG_WARN, "libmicrohttpd: %s", msg);
}

/* ---- listening ---- */

/* Splits "host:port" or "[v6]:port". */
static bool split_listen(const char *listen, char *host, size_t hsz, char *port, size_t psz)
{
    const char *h = listen, *colon;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return false;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen)))
            return false;
        hlen = (size_t)(colon - listen);
    }
    int64_t p = -1;
    if (hlen == 0 || hlen >= hsz || !api_parse_uint(colon + 1, &p) || p > 65535)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, psz, "%s", colon + 1);
    return true;
}

static int bind_one(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    /* Rebinding right after a reload must not fail on TIME_WAIT connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) /* an IPv6 address does not also take IPv4 */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SRV_LISTEN_BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int open_listener(const char *listen, int *family, char *err, size_t errsz)
{
    char host[256], port[8];
    if (!split_listen(listen, host, sizeof host, port, sizeof port)) {
        snprintf(err, errsz,
                 "option listen: expected host:port with a port 0-65535 (e.g. 127.0.0.1:8080 or "
                 "[::1]:8080), found \"%s\"",
                 listen);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errsz, "option listen \"%s\": cannot resolve host \"%s\": %s", listen, host,
                 gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = bind_one(ai);
        if (fd < 0)
            last_errno = errno;
        else
            *family = ai->ai_family;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errsz, "option listen \"%s\": cannot listen: %s", listen,
                 strerror(last_errno));
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* Written to a temporary name and renamed, so a reader never sees half a number. */
static bool write_port_file(const char *path, int port, char *err, size_t errsz)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = n > 0 && (size_t)n < sizeof tmp ? fopen(tmp, "w") : NULL;
    bool ok = f && fprintf(f, "%d\n", port) > 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok)
        snprintf(err, errsz, "option port_file: cannot write \"%s\": %s", path, strerror(errno));
    return ok;
}

static struct MHD_Daemon *start_daemon(api_server *s, int fd, int family)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    const api_server_config *c = &s->cfg;
    bool tls = c->tls_cert && c->tls_key;
    if (tls)
        flags |= MHD_USE_TLS;
    /* The request line and headers are parsed in place inside this per-connection pool: twice
     * max_header_bytes lets headers_too_large answer a header block up to twice the limit with
     * a JSON 431 (libmicrohttpd's own 431 beyond that); the reserve holds the response headers
     * and the write buffer. */
    size_t memory = 2 * c->max_header_bytes + SRV_MEMORY_RESERVE;
    /* The logger comes first so that libmicrohttpd reports everything after it to us. */
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s},
        {MHD_OPTION_LISTEN_SOCKET, (intptr_t)fd, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)c->threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)c->connection_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)c->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)c->per_ip_limit, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)memory, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, s},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)tf_httpguard_notify_connection, s->guard},
        {MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)c->tls_cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)c->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
}

void api_server_register_metrics(api_server *s)
{
    static const char *const req_labels[] = {"route", "code", NULL};
    static const char *const dur_labels[] = {"route", NULL};
    if (atomic_exchange(&s->metrics_tried, true))
        return;
    const tf_host *h = s->host;
    tf_metric *requests = h->metric_register(
        s->self, TF_METRIC_COUNTER, "tickflow_api_requests_total",
        "Requests served by the http_api sink, by route template and HTTP status", req_labels, NULL,
        0);
    tf_metric *duration =
        h->metric_register(s->self, TF_METRIC_HISTOGRAM, "tickflow_api_request_duration_seconds",
                           "Time the http_api sink spent producing a response, by route template",
                           dur_labels, NULL, 0);
    atomic_store(&s->m_requests, requests);
    atomic_store(&s->m_duration, duration);
    if (!requests || !duration)
        h->log(s->self, TF_LOG_WARN,
               "request metrics disabled: tickflow_api_requests_total or "
               "tickflow_api_request_duration_seconds is already registered with other labels");
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

api_server *api_server_start(const tf_host *host, tf_instance *self, const api_server_config *cfg,
                             api_snapshot *snap, api_sse *sse, api_redis *redis, char *err,
                             size_t errsz)
{
    int fd = -1;
    api_server *s = calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->host = host;
    s->self = self;
    s->cfg = *cfg;
    atomic_init(&s->log_last_ms, -SRV_LOG_EVERY_MS);
    atomic_init(&s->log_suppressed, 0);
    atomic_init(&s->m_requests, NULL);
    atomic_init(&s->m_duration, NULL);
    atomic_init(&s->metrics_tried, false);
    s->snap = snap;
    s->sse = sse;
    s->redis = redis;
    s->prefix = strdup(cfg->prefix ? cfg->prefix : "tf");
    s->port_file = dup_or_null(cfg->port_file);
    if (!s->prefix || (cfg->port_file && cfg->port_file[0] && !s->port_file))
        goto fail;
    s->cfg.prefix = s->prefix;
    s->cfg.port_file = s->port_file;
    if (cfg->tls_cert && cfg->tls_key && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errsz,
                 "options tls_cert/tls_key: expected a libmicrohttpd built with TLS (GnuTLS), "
                 "found one without it; serve plain HTTP behind a TLS proxy instead");
        goto fail;
    }
    tf_httpguard_config gc = {.max_connections = cfg->max_connections,
                              .request_timeout_ms = cfg->request_timeout_ms,
                              .on_close = count_closed,
                              .on_close_arg = s};
    s->guard = tf_httpguard_create(&gc, err, errsz);
    if (!s->guard)
        goto fail;
    int family = AF_INET;
    fd = open_listener(cfg->listen, &family, err, errsz);
    if (fd < 0)
        goto fail;
    s->port = bound_port(fd);
    s->daemon = start_daemon(s, fd, family);
    if (!s->daemon) {
        snprintf(err, errsz, "option listen \"%s\": libmicrohttpd failed to start (see the log)",
                 cfg->listen);
        goto fail;
    }
    fd = -1; /* the daemon owns it now */
    if (s->port_file && !write_port_file(s->port_file, s->port, err, errsz))
        goto fail;
    return s;
fail:
    if (fd >= 0)
        close(fd);
    if (s && !err[0])
        snprintf(err, errsz, "out of memory");
    api_server_stop(s);
    return NULL;
}

int api_server_port(const api_server *s)
{
    return s ? s->port : -1;
}

void api_server_stop(api_server *s)
{
    if (!s)
        return;
    if (s->daemon) {
        api_sse_shutdown(s->sse);
        MHD_stop_daemon(s->daemon);
    }
    tf_httpguard_destroy(s->guard); /* after the daemon: it reported every connection closed */
    free(s->prefix);
    free(s->port_file);
    free(s);
}
