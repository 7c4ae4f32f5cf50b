/* tickflow-fake-exchange: an HTTP server on 127.0.0.1 that answers like Bithumb, Binance
 * futures, Upbit, OKX, Bybit and the USD/KRW sources, from a seeded fake market, with faults
 * and counters a test can drive through /admin/. This file owns the CLI, the libmicrohttpd
 * daemon, routing and the admin API; the market, bodies, faults and stats live in tf_fx_*.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "tf_fx_endpoint.h"
#include "tf_fx_fault.h"
#include "tf_fx_mutate.h"
#include "tf_fx_model.h"
#include "tf_fx_render.h"
#include "tf_fx_signed.h"
#include "tf_fx_stats.h"
#include "tf_fx_util.h"

#define TF_FX_MAX_FLAGS    32
#define TF_FX_MAX_BODY     65536
#define TF_FX_CONN_TIMEOUT 60 /* s; an idle keep-alive connection holds a thread */
#define TF_FX_EXIT_USAGE   2
#define TF_FX_ERR_LEN      256

struct tf_fx_opts {
    long port; /* -1 until given */
    uint64_t seed;
    double usdkrw;
    double premium;
    const char *port_file;
    int quiet;
    struct tf_fx_fix prices[TF_FX_MAX_FLAGS];
    size_t n_prices;
    struct tf_fx_fault faults[TF_FX_MAX_FLAGS];
    int fault_eps[TF_FX_MAX_FLAGS];
    size_t n_faults;
    double mutate_rate;
    long long mutate_seed; /* -1: the --seed */
};

/* Everything the MHD callbacks share. lock guards model, faults, stats and stopping; wake
 * lets a delayed request end early on shutdown. */
struct tf_fx_app {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int sync_ready; /* lock and wake initialised */
    int stopping;
    struct tf_fx_model *model;
    struct tf_fx_faults faults;
    struct tf_fx_stats *stats;
    struct tf_fx_mutator mutator; /* the mutating proxy mode; rate 0 = off */
    uint64_t next_conn_id;
    uint64_t seed;
    int quiet;
};

/* Per HTTP request: the POST body collected across MHD's upload calls. */
struct tf_fx_req {
    char *body;
    size_t len;
    int too_large;
};

static const struct tf_fx_route {
    const char *path;
    int prefix; /* 1: path is a prefix and the rest is tf_fx_args.tail */
    enum tf_fx_ep ep;
} tf_fx_routes[] = {
    {"/public/ticker/", 1, TF_FX_EP_BITHUMB_TICKER},
    {"/public/orderbook/", 1, TF_FX_EP_BITHUMB_ORDERBOOK},
    {"/fapi/v1/ticker/bookTicker", 0, TF_FX_EP_BINANCE_BOOK_TICKER},
    {"/fapi/v1/premiumIndex", 0, TF_FX_EP_BINANCE_PREMIUM_INDEX},
    {"/fapi/v1/ticker/price", 0, TF_FX_EP_BINANCE_TICKER_PRICE},
    {"/fapi/v2/ticker/price", 0, TF_FX_EP_BINANCE_TICKER_PRICE},
    {"/v1/forex/recent", 0, TF_FX_EP_DUNAMU_FOREX},
    {"/v6/latest/", 1, TF_FX_EP_ER_API_LATEST},
    {"/live", 0, TF_FX_EP_EXCHANGERATE_HOST_LIVE},
    {"/site/program/financial/exchangeJSON", 0, TF_FX_EP_KOREAEXIM_EXCHANGE},
    {"/v1/ticker", 0, TF_FX_EP_UPBIT_TICKER},
    {"/api/v5/market/ticker", 0, TF_FX_EP_OKX_TICKER},
    {"/api/v5/market/tickers", 0, TF_FX_EP_OKX_TICKERS},
    {"/v5/market/tickers", 0, TF_FX_EP_BYBIT_TICKERS},
};

/* ---- command line ---- */

static void tf_fx_usage(FILE *out)
{
    fprintf(out, "usage: tickflow-fake-exchange --port N [--seed N] [--price SYM=USDT_PRICE]...\n"
                 "           [--usdkrw X] [--premium PCT] [--fault ENDPOINT=MODE[:ARG]]...\n"
                 "           [--mutate RATE[:SEED]] [--port-file FILE] [--quiet]\n"
                 "\n"
                 "Fake exchange HTTP server on 127.0.0.1 for tickflow tests and demos.\n"
                 "  --port N          port to bind (0 = pick a free one)\n"
                 "  --seed N          random-walk seed (default 1)\n"
                 "  --price SYM=P     fix SYM's USDT price to P and freeze it (repeatable)\n"
                 "  --usdkrw X        starting USD/KRW (default 1400)\n"
                 "  --premium PCT     starting kimchi premium in %% (default 2.5)\n"
                 "  --fault ID=MODE[:ARG]  inject a fault at start (repeatable); ARG is the\n"
                 "                    Retry-After seconds for 429/418, milliseconds for delay\n"
                 "  --mutate RATE[:SEED]  mutating proxy: each numeric field of a market body\n"
                 "                    is mutated with probability RATE (x factor, 1e+308,\n"
                 "                    1e-308, sign flip, x10), seeded by SEED (default --seed)\n"
                 "  --port-file FILE  write the bound port to FILE (atomically)\n"
                 "  --quiet           no per-request log on stderr\n"
                 "\n"
                 "symbols: BTC ETH XRP SOL DOGE ADA USDT\n"
                 "endpoint ids: * ");
    for (int i = 0; i < TF_FX_EP_COUNT; i++) {
        fprintf(out, "%s ", tf_fx_ep_name((enum tf_fx_ep)i));
    }
    fprintf(out, "\nfault modes:");
    for (int i = 0; i < TF_FX_FAULT_MODE_COUNT; i++) {
        fprintf(out, " %s", tf_fx_fault_mode_name((enum tf_fx_fault_mode)i));
    }
    fprintf(out, "\nadmin: GET /admin/stats, GET /admin/state, POST /admin/reset,\n"
                 "       POST /admin/price, POST /admin/unfreeze, POST /admin/fault,\n"
                 "       POST /admin/mutate\n");
}

static int tf_fx_parse_long(const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int tf_fx_parse_double(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

static int tf_fx_parse_price(const char *spec, struct tf_fx_fix *fix)
{
    char name[16];
    size_t len = strcspn(spec, "=");
    if (spec[len] != '=' || len == 0 || len >= sizeof(name)) {
        fprintf(stderr, "--price: expected SYM=USDT_PRICE, got \"%s\"\n", spec);
        return -1;
    }
    memcpy(name, spec, len);
    name[len] = '\0';
    memset(fix, 0, sizeof(*fix));
    fix->sym = tf_fx_symbol_find(name);
    if (fix->sym < 0 || fix->sym == TF_FX_USDT) {
        fprintf(stderr, "--price: expected one of BTC ETH XRP SOL DOGE ADA, got \"%s\"\n", name);
        return -1;
    }
    if (tf_fx_parse_double(spec + len + 1, &fix->usdt) != 0 || fix->usdt <= 0.0) {
        fprintf(stderr, "--price: expected a positive number after '=', got \"%s\"\n",
                spec + len + 1);
        return -1;
    }
    fix->has_usdt = 1;
    return 0;
}

static int tf_fx_opts_add(struct tf_fx_opts *o, int opt, const char *arg)
{
    long v = 0;
    char err[TF_FX_ERR_LEN];
    switch (opt) {
    case 'p':
        if (tf_fx_parse_long(arg, 0, 65535, &o->port) != 0) {
            fprintf(stderr, "--port: expected 0..65535, got \"%s\"\n", arg);
            return -1;
        }
        return 0;
    case 's':
        if (tf_fx_parse_long(arg, 0, 2147483647L, &v) != 0) {
            fprintf(stderr, "--seed: expected a non-negative integer, got \"%s\"\n", arg);
            return -1;
        }
        o->seed = (uint64_t)v;
        return 0;
    case 'P':
        if (o->n_prices >= TF_FX_MAX_FLAGS) {
            fprintf(stderr, "--price: at most %d\n", TF_FX_MAX_FLAGS);
            return -1;
        }
        return tf_fx_parse_price(arg, &o->prices[o->n_prices++]);
    case 'u':
        if (tf_fx_parse_double(arg, &o->usdkrw) != 0 || o->usdkrw <= 0.0) {
            fprintf(stderr, "--usdkrw: expected a positive number, got \"%s\"\n", arg);
            return -1;
        }
        return 0;
    case 'm':
        if (tf_fx_parse_double(arg, &o->premium) != 0 || fabs(o->premium) > 100.0) {
            fprintf(stderr, "--premium: expected a percentage in -100..100, got \"%s\"\n", arg);
            return -1;
        }
        return 0;
    case 'f':
        if (o->n_faults >= TF_FX_MAX_FLAGS) {
            fprintf(stderr, "--fault: at most %d\n", TF_FX_MAX_FLAGS);
            return -1;
        }
        if (tf_fx_fault_parse_spec(arg, &o->fault_eps[o->n_faults], &o->faults[o->n_faults], err,
                                   sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        o->n_faults++;
        return 0;
    case 'M':
        if (tf_fx_mutate_parse_spec(arg, &o->mutate_rate, &o->mutate_seed, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        return 0;
    case 'o':
        o->port_file = arg;
        return 0;
    case 'q':
        o->quiet = 1;
        return 0;
    default:
        return -1;
    }
}

/* Returns 0 to run, 1 after --help, -1 on a usage error (already reported). */
static int tf_fx_parse_args(int argc, char **argv, struct tf_fx_opts *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"seed", required_argument, NULL, 's'},
        {"price", required_argument, NULL, 'P'},
        {"usdkrw", required_argument, NULL, 'u'},
        {"premium", required_argument, NULL, 'm'},
        {"fault", required_argument, NULL, 'f'},
        {"mutate", required_argument, NULL, 'M'},
        {"port-file", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->port = -1;
    o->seed = 1;
    o->usdkrw = 1400.0;
    o->premium = 2.5;
    o->mutate_seed = -1;
    for (;;) {
        int opt = getopt_long(argc, argv, "", longopts, NULL);
        if (opt == -1) {
            break;
        }
        if (opt == 'h') {
            tf_fx_usage(stdout);
            return 1;
        }
        if (opt == '?' || tf_fx_opts_add(o, opt, optarg) != 0) {
            fprintf(stderr, "try 'tickflow-fake-exchange --help'\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "unexpected argument \"%s\"; try --help\n", argv[optind]);
        return -1;
    }
    if (o->port < 0) {
        fprintf(stderr, "--port is required (use --port 0 for a free port); try --help\n");
        return -1;
    }
    return 0;
}

/* ---- responses ---- */

static struct tf_fx_conn *tf_fx_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci == NULL ? NULL : ci->socket_context;
}

static int tf_fx_add_header_int(struct MHD_Response *resp, const char *name, long v)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld", v);
    if (len < 0 || (size_t)len >= sizeof(buf)) {
        return -1;
    }
    return MHD_add_response_header(resp, name, buf) == MHD_YES ? 0 : -1;
}

/* Extra headers a venue always sends (fixture *.headers.txt). weight < 0: none. */
static int tf_fx_venue_headers(struct MHD_Response *resp, int ep, int weight)
{
    if (ep >= 0 && tf_fx_ep_venue((enum tf_fx_ep)ep) == TF_FX_VENUE_UPBIT) {
        if (MHD_add_response_header(resp, "Remaining-Req", "group=ticker; min=600; sec=9") !=
            MHD_YES) {
            return -1;
        }
    }
    if (weight >= 0) {
        return tf_fx_add_header_int(resp, "X-MBX-USED-WEIGHT-1M", weight);
    }
    return 0;
}

/* Serialises and queues r (which is cleared). truncate: send only the first half. */
static enum MHD_Result tf_fx_send(struct tf_fx_app *app, struct MHD_Connection *c, int ep,
                                  struct tf_fx_reply *r, int truncate, int weight,
                                  const char *method, const char *url)
{
    char *body = NULL;
    if (r->json != NULL) {
        body = json_dumps(r->json, TF_FX_DUMP_FLAGS);
    } else if (r->raw != NULL) {
        body = r->raw;
        r->raw = NULL;
    }
    unsigned status = r->status;
    const char *ctype = r->content_type != NULL ? r->content_type : "application/json";
    int retry_after = r->retry_after;
    int had_body = r->json != NULL || body != NULL;
    tf_fx_reply_clear(r);
    if (had_body && body == NULL) {
        return MHD_NO;
    }
    size_t len = body != NULL ? strlen(body) : 0;
    if (truncate) {
        len /= 2;
    }
    struct MHD_Response *resp =
        body != NULL ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    int rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES ? 0 : -1;
    rc |= tf_fx_venue_headers(resp, ep, weight);
    if (retry_after > 0) {
        rc |= tf_fx_add_header_int(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    }
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        rc |= MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                      ep >= 0 ? "GET, HEAD" : "GET, POST") == MHD_YES
                  ? 0
                  : -1;
    }
    enum MHD_Result ret = rc == 0 ? MHD_queue_response(c, status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    if (!app->quiet) {
        fprintf(stderr, "%s %s -> %u (%s)\n", method, url, status,
                ep >= 0 ? tf_fx_ep_name((enum tf_fx_ep)ep) : "-");
    }
    return ret;
}

/* A small {"error": msg} reply for admin and routing errors. */
static enum MHD_Result tf_fx_send_error(struct tf_fx_app *app, struct MHD_Connection *c, int ep,
                                        unsigned status, const char *msg, const char *method,
                                        const char *url)
{
    struct tf_fx_reply r = {0};
    r.status = status;
    r.json = json_pack("{s:s, s:s}", "error", msg, "path", url);
    if (r.json == NULL) {
        return MHD_NO;
    }
    return tf_fx_send(app, c, ep, &r, 0, -1, method, url);
}

static enum MHD_Result tf_fx_send_json(struct tf_fx_app *app, struct MHD_Connection *c, json_t *j,
                                       const char *method, const char *url)
{
    struct tf_fx_reply r = {0};
    if (j == NULL) {
        return tf_fx_send_error(app, c, -1, 500, "out of memory", method, url);
    }
    r.status = 200;
    r.json = j;
    return tf_fx_send(app, c, -1, &r, 0, -1, method, url);
}

/* ---- market endpoints ---- */

static const char *tf_fx_arg(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

static void tf_fx_collect_args(struct MHD_Connection *c, const char *tail, struct tf_fx_args *a)
{
    a->tail = tail;
    a->symbol = tf_fx_arg(c, "symbol");
    a->markets = tf_fx_arg(c, "markets");
    a->inst_id = tf_fx_arg(c, "instId");
    a->inst_type = tf_fx_arg(c, "instType");
    a->category = tf_fx_arg(c, "category");
    a->codes = tf_fx_arg(c, "codes");
    a->access_key = tf_fx_arg(c, "access_key");
    a->source = tf_fx_arg(c, "source");
    a->currencies = tf_fx_arg(c, "currencies");
    a->authkey = tf_fx_arg(c, "authkey");
    a->searchdate = tf_fx_arg(c, "searchdate");
    a->data = tf_fx_arg(c, "data");
    a->count = tf_fx_arg(c, "count");
}

/* Sleeps ms without holding the lock, waking early when the server stops. */
static void tf_fx_pause(struct tf_fx_app *app, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&app->lock);
    while (!app->stopping) {
        if (pthread_cond_timedwait(&app->wake, &app->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&app->lock);
}

/* Under the lock: advance the market, take the fault, count the request. */
static void tf_fx_market_begin(struct tf_fx_app *app, struct MHD_Connection *c, enum tf_fx_ep ep,
                               int has_symbol, struct tf_fx_snapshot *snap,
                               struct tf_fx_fault *fault, int *weight)
{
    int64_t wall = tf_fx_wall_ms();
    int64_t mono = tf_fx_mono_ms();
    pthread_mutex_lock(&app->lock);
    tf_fx_model_snapshot(app->model, mono, wall, snap);
    *fault = tf_fx_faults_take(&app->faults, ep);
    tf_fx_stats_request(app->stats, tf_fx_conn_of(c), (int)ep, wall,
                        fault->mode != TF_FX_FAULT_NONE);
    *weight = -1;
    if (tf_fx_ep_venue(ep) == TF_FX_VENUE_BINANCE) {
        *weight =
            tf_fx_stats_binance_weight(app->stats, wall, tf_fx_ep_binance_weight(ep, has_symbol));
    }
    pthread_mutex_unlock(&app->lock);
}

static enum MHD_Result tf_fx_serve_market(struct tf_fx_app *app, struct MHD_Connection *c,
                                          enum tf_fx_ep ep, const char *tail, const char *method,
                                          const char *url)
{
    struct tf_fx_args args;
    tf_fx_collect_args(c, tail, &args);
    struct tf_fx_snapshot snap;
    struct tf_fx_fault fault;
    int weight = -1;
    tf_fx_market_begin(app, c, ep, args.symbol != NULL, &snap, &fault, &weight);
    if (fault.mode == TF_FX_FAULT_DELAY) {
        tf_fx_pause(app, fault.delay_ms);
    }
    struct tf_fx_reply r;
    int rc = tf_fx_fault_replaces(fault.mode) ? tf_fx_fault_reply(&fault, ep, snap.now_ms, &r)
                                              : tf_fx_render(ep, &snap, &args, &r);
    if (rc != 0) {
        return tf_fx_send_error(app, c, (int)ep, 500, "fake exchange: out of memory", method, url);
    }
    if (r.ok_layout && r.json != NULL) {
        tf_fx_fault_mutate(fault.mode, r.json);
        pthread_mutex_lock(&app->lock);
        tf_fx_mutate_json(&app->mutator, r.json);
        pthread_mutex_unlock(&app->lock);
    }
    if (fault.mode == TF_FX_FAULT_HTML) {
        weight = -1; /* the CDN answered, not Binance */
    }
    return tf_fx_send(app, c, (int)ep, &r, fault.mode == TF_FX_FAULT_TRUNCATE, weight, method, url);
}

/* ---- admin API ---- */

static json_t *tf_fx_quote_json(const struct tf_fx_snapshot *s, int sym)
{
    const struct tf_fx_quote *q = &s->q[sym];
    double premium = (q->krw / (q->usdt * s->usdkrw) - 1.0) * 100.0;
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b}", "usdt", q->usdt, "bid",
                     q->bid, "ask", q->ask, "mark", q->mark, "index", q->index, "krw", q->krw,
                     "krw_bid", q->krw_bid, "krw_ask", q->krw_ask, "premium_pct", premium, "frozen",
                     q->frozen);
}

static json_t *tf_fx_state_json(struct tf_fx_app *app)
{
    struct tf_fx_snapshot s;
    int64_t wall = tf_fx_wall_ms();
    int64_t mono = tf_fx_mono_ms();
    pthread_mutex_lock(&app->lock);
    tf_fx_model_snapshot(app->model, mono, wall, &s);
    json_t *faults = tf_fx_faults_json(&app->faults);
    json_t *mutate = tf_fx_mutator_json(&app->mutator);
    pthread_mutex_unlock(&app->lock);
    json_t *syms = json_object();
    int rc = syms == NULL ? -1 : 0;
    for (int i = 0; rc == 0 && i < TF_FX_NSYM; i++) {
        rc |= tf_fx_put(syms, tf_fx_symbol(i)->name, tf_fx_quote_json(&s, i));
    }
    json_t *o = json_pack("{s:I, s:I, s:I, s:f, s:b, s:f, s:b, s:f, s:f, s:o?, s:o?}", "now_ms",
                          (json_int_t)s.now_ms, "step", (json_int_t)s.step, "seed",
                          (json_int_t)app->seed, "usdkrw", s.usdkrw, "usdkrw_frozen",
                          s.usdkrw_frozen, "premium_pct", s.premium_pct, "premium_frozen",
                          s.premium_frozen, "tether_premium_pct", s.tether_pct, "funding_rate",
                          s.funding, "symbols", rc == 0 ? syms : NULL, "faults", faults);
    if (rc != 0) {
        json_decref(syms);
    }
    if (o == NULL || rc != 0 || faults == NULL || mutate == NULL) {
        json_decref(mutate);
        json_decref(o);
        return NULL;
    }
    return json_object_set_new(o, "mutate", mutate) == 0 ? o : (json_decref(o), NULL);
}

/* Reads an optional number (a JSON number, or a string holding one) from body. */
static int tf_fx_body_number(json_t *body, const char *key, int *has, double *v, char *err,
                             size_t errlen)
{
    json_t *x = json_object_get(body, key);
    *has = 0;
    if (x == NULL || json_is_null(x)) {
        return 0;
    }
    if (json_is_number(x)) {
        *v = json_number_value(x);
        *has = 1;
        return 0;
    }
    if (json_is_string(x) && tf_fx_parse_double(json_string_value(x), v) == 0) {
        *has = 1;
        return 0;
    }
    snprintf(err, errlen, "field \"%s\": expected a number", key);
    return -1;
}

static int tf_fx_body_fix(json_t *body, struct tf_fx_fix *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->sym = -1;
    json_t *sym = json_object_get(body, "symbol");
    if (sym != NULL &&
        (!json_is_string(sym) || (f->sym = tf_fx_symbol_find(json_string_value(sym))) < 0)) {
        snprintf(err, errlen, "field \"symbol\": expected one of BTC ETH XRP SOL DOGE ADA USDT");
        return -1;
    }
    int rc = tf_fx_body_number(body, "usdt", &f->has_usdt, &f->usdt, err, errlen);
    rc |= tf_fx_body_number(body, "bid", &f->has_bid, &f->bid, err, errlen);
    rc |= tf_fx_body_number(body, "ask", &f->has_ask, &f->ask, err, errlen);
    rc |= tf_fx_body_number(body, "mark", &f->has_mark, &f->mark, err, errlen);
    rc |= tf_fx_body_number(body, "krw", &f->has_krw, &f->krw, err, errlen);
    rc |= tf_fx_body_number(body, "krw_bid", &f->has_krw_bid, &f->krw_bid, err, errlen);
    rc |= tf_fx_body_number(body, "krw_ask", &f->has_krw_ask, &f->krw_ask, err, errlen);
    rc |= tf_fx_body_number(body, "usdkrw", &f->has_usdkrw, &f->usdkrw, err, errlen);
    rc |= tf_fx_body_number(body, "premium_pct", &f->has_premium, &f->premium_pct, err, errlen);
    if (rc != 0) {
        return -1;
    }
    int sym_fields = f->has_usdt || f->has_bid || f->has_ask || f->has_mark || f->has_krw ||
                     f->has_krw_bid || f->has_krw_ask;
    if (f->sym < 0 && (sym_fields || !(f->has_usdkrw || f->has_premium))) {
        snprintf(err, errlen,
                 "expected \"symbol\" with price fields, or \"usdkrw\"/"
                 "\"premium_pct\" alone");
        return -1;
    }
    return 0;
}

static int tf_fx_admin_price(struct tf_fx_app *app, json_t *body, char *err, size_t errlen)
{
    struct tf_fx_fix fix;
    if (tf_fx_body_fix(body, &fix, err, errlen) != 0) {
        return -1;
    }
    pthread_mutex_lock(&app->lock);
    int rc = tf_fx_model_fix(app->model, &fix, tf_fx_mono_ms(), err, errlen);
    pthread_mutex_unlock(&app->lock);
    return rc;
}

static int tf_fx_admin_unfreeze(struct tf_fx_app *app, json_t *body, char *err, size_t errlen)
{
    const char *what = json_string_value(json_object_get(body, "symbol"));
    if (what == NULL) {
        snprintf(err, errlen,
                 "field \"symbol\": expected a symbol, \"USDKRW\", \"PREMIUM\" or "
                 "\"*\"");
        return -1;
    }
    pthread_mutex_lock(&app->lock);
    int rc = tf_fx_model_unfreeze(app->model, what);
    pthread_mutex_unlock(&app->lock);
    if (rc != 0) {
        snprintf(err, errlen, "field \"symbol\": unknown \"%s\"", what);
    }
    return rc;
}

static int tf_fx_body_int(json_t *body, const char *key, int dflt, int *out, char *err,
                          size_t errlen)
{
    json_t *x = json_object_get(body, key);
    *out = dflt;
    if (x == NULL || json_is_null(x)) {
        return 0;
    }
    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 3600000) {
        snprintf(err, errlen, "field \"%s\": expected an integer 0..3600000", key);
        return -1;
    }
    *out = (int)json_integer_value(x);
    return 0;
}

static int tf_fx_admin_fault(struct tf_fx_app *app, json_t *body, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(body, "endpoint"));
    int ep = name == NULL ? -2 : (strcmp(name, "*") == 0 ? -1 : tf_fx_ep_find(name));
    if (ep == -2 || (ep < 0 && strcmp(name, "*") != 0)) {
        snprintf(err, errlen,
                 "field \"endpoint\": expected an endpoint id or \"*\" (see "
                 "--help)");
        return -1;
    }
    json_t *mode = json_object_get(body, "mode");
    char mode_buf[32];
    const char *mode_text = json_string_value(mode);
    if (json_is_integer(mode)) {
        int len = snprintf(mode_buf, sizeof(mode_buf), "%lld", (long long)json_integer_value(mode));
        mode_text = (len > 0 && (size_t)len < sizeof(mode_buf)) ? mode_buf : NULL;
    }
    struct tf_fx_fault f = {0};
    if (tf_fx_fault_mode_parse(mode_text, &f.mode) != 0) {
        snprintf(err, errlen,
                 "field \"mode\": expected none|500|503|429|418|delay|truncate|"
                 "html|wrong_types|error_object|empty|zero");
        return -1;
    }
    int rc =
        tf_fx_body_int(body, "retry_after", TF_FX_DEFAULT_RETRY_AFTER, &f.retry_after, err, errlen);
    rc |= tf_fx_body_int(body, "delay_ms", TF_FX_DEFAULT_DELAY_MS, &f.delay_ms, err, errlen);
    rc |= tf_fx_body_int(body, "count", 0, &f.remaining, err, errlen);
    if (rc != 0) {
        return -1;
    }
    pthread_mutex_lock(&app->lock);
    tf_fx_faults_set(&app->faults, ep, &f);
    pthread_mutex_unlock(&app->lock);
    return 0;
}

typedef int (*tf_fx_admin_post_fn)(struct tf_fx_app *app, json_t *body, char *err, size_t errlen);

/* {"rate": R, "seed": S}: (re)starts the mutating proxy mode; rate 0 turns it off. The seed
 * defaults to --seed; the counters restart. */
static int tf_fx_admin_mutate(struct tf_fx_app *app, json_t *body, char *err, size_t errlen)
{
    json_t *rate = json_object_get(body, "rate");
    json_t *seed = json_object_get(body, "seed");
    if (!json_is_number(rate) || !(json_number_value(rate) >= 0.0) ||
        json_number_value(rate) > 1.0) {
        snprintf(err, errlen, "rate: expected a number in 0..1");
        return -1;
    }
    if (seed != NULL && (!json_is_integer(seed) || json_integer_value(seed) < 0)) {
        snprintf(err, errlen, "seed: expected a non-negative integer");
        return -1;
    }
    pthread_mutex_lock(&app->lock);
    tf_fx_mutator_init(&app->mutator, json_number_value(rate),
                       seed != NULL ? (uint64_t)json_integer_value(seed) : app->seed);
    pthread_mutex_unlock(&app->lock);
    return 0;
}

static enum MHD_Result tf_fx_admin_post(struct tf_fx_app *app, struct MHD_Connection *c,
                                        struct tf_fx_req *req, tf_fx_admin_post_fn fn,
                                        const char *method, const char *url)
{
    char err[TF_FX_ERR_LEN];
    if (req->too_large) {
        return tf_fx_send_error(app, c, -1, 413, "body larger than 64 KiB", method, url);
    }
    json_error_t jerr;
    json_t *body = json_loadb(req->body != NULL ? req->body : "", req->len, 0, &jerr);
    if (body == NULL || !json_is_object(body)) {
        snprintf(err, sizeof(err), "body: expected a JSON object (%s at line %d column %d)",
                 body == NULL ? jerr.text : "not an object", body == NULL ? jerr.line : 1,
                 body == NULL ? jerr.column : 1);
        json_decref(body);
        return tf_fx_send_error(app, c, -1, 400, err, method, url);
    }
    int rc = fn(app, body, err, sizeof(err));
    json_decref(body);
    if (rc != 0) {
        return tf_fx_send_error(app, c, -1, 400, err, method, url);
    }
    return tf_fx_send_json(app, c, tf_fx_state_json(app), method, url);
}

static enum MHD_Result tf_fx_admin(struct tf_fx_app *app, struct MHD_Connection *c,
                                   struct tf_fx_req *req, const char *url, const char *method)
{
    static const struct {
        const char *path;
        int post;
        tf_fx_admin_post_fn fn;
    } posts[] = {
        {"/admin/price", 1, tf_fx_admin_price},
        {"/admin/unfreeze", 1, tf_fx_admin_unfreeze},
        {"/admin/fault", 1, tf_fx_admin_fault},
        {"/admin/mutate", 1, tf_fx_admin_mutate},
    };
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int64_t wall = tf_fx_wall_ms();
    pthread_mutex_lock(&app->lock);
    tf_fx_stats_request(app->stats, tf_fx_conn_of(c), -1, wall, 0);
    pthread_mutex_unlock(&app->lock);
    if (strcmp(url, "/admin/stats") == 0 || strcmp(url, "/admin/state") == 0) {
        if (!is_get) {
            return tf_fx_send_error(app, c, -1, 405, "use GET", method, url);
        }
        if (strcmp(url, "/admin/state") == 0) {
            return tf_fx_send_json(app, c, tf_fx_state_json(app), method, url);
        }
        pthread_mutex_lock(&app->lock);
        json_t *j = tf_fx_stats_json(app->stats, wall);
        pthread_mutex_unlock(&app->lock);
        return tf_fx_send_json(app, c, j, method, url);
    }
    if (strcmp(url, "/admin/reset") == 0) {
        if (!is_post) {
            return tf_fx_send_error(app, c, -1, 405, "use POST", method, url);
        }
        pthread_mutex_lock(&app->lock);
        tf_fx_stats_reset(app->stats);
        pthread_mutex_unlock(&app->lock);
        return tf_fx_send_json(app, c, json_pack("{s:b}", "ok", 1), method, url);
    }
    for (size_t i = 0; i < sizeof(posts) / sizeof(posts[0]); i++) {
        if (strcmp(url, posts[i].path) != 0) {
            continue;
        }
        if (!is_post) {
            return tf_fx_send_error(app, c, -1, 405, "use POST", method, url);
        }
        return tf_fx_admin_post(app, c, req, posts[i].fn, method, url);
    }
    return tf_fx_send_error(app, c, -1, 404, "unknown admin path", method, url);
}

/* ---- MHD callbacks ---- */

static const struct tf_fx_route *tf_fx_route_find(const char *url, const char **tail)
{
    for (size_t i = 0; i < sizeof(tf_fx_routes) / sizeof(tf_fx_routes[0]); i++) {
        const struct tf_fx_route *r = &tf_fx_routes[i];
        size_t len = strlen(r->path);
        if (r->prefix && strncmp(url, r->path, len) == 0) {
            *tail = url + len;
            return r;
        }
        if (!r->prefix && strcmp(url, r->path) == 0) {
            *tail = "";
            return r;
        }
    }
    return NULL;
}

static enum MHD_Result tf_fx_dispatch(struct tf_fx_app *app, struct MHD_Connection *c,
                                      struct tf_fx_req *req, const char *url, const char *method)
{
    if (strncmp(url, "/admin/", 7) == 0) {
        return tf_fx_admin(app, c, req, url, method);
    }
    if (tf_fx_signed_match(url)) {
        struct tf_fx_reply r = {0};
        if (tf_fx_signed_serve(c, url, method, req->body, req->len, &r) != 0) {
            return tf_fx_send_error(app, c, -1, 500, "out of memory", method, url);
        }
        return tf_fx_send(app, c, -1, &r, 0, -1, method, url);
    }
    const char *tail = NULL;
    const struct tf_fx_route *route = tf_fx_route_find(url, &tail);
    if (route == NULL) {
        return tf_fx_send_error(app, c, -1, 404, "not found", method, url);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return tf_fx_send_error(app, c, (int)route->ep, 405, "method not allowed", method, url);
    }
    return tf_fx_serve_market(app, c, route->ep, tail, method, url);
}

static void tf_fx_req_append(struct tf_fx_req *req, const char *data, size_t size)
{
    if (req->too_large || req->len + size > TF_FX_MAX_BODY) {
        req->too_large = 1;
        return;
    }
    char *grown = realloc(req->body, req->len + size + 1);
    if (grown == NULL) {
        req->too_large = 1;
        return;
    }
    memcpy(grown + req->len, data, size);
    req->len += size;
    grown[req->len] = '\0';
    req->body = grown;
}

static enum MHD_Result tf_fx_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_size,
                                        void **req_cls)
{
    struct tf_fx_app *app = cls;
    struct tf_fx_req *req = *req_cls;
    (void)version;
    if (req == NULL) {
        /* First call: headers only. Answer on a later call, once any body has arrived. */
        req = calloc(1, sizeof(*req));
        if (req == NULL) {
            return MHD_NO;
        }
        *req_cls = req;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        tf_fx_req_append(req, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return tf_fx_dispatch(app, c, req, url, method);
}

static void tf_fx_on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                               enum MHD_RequestTerminationCode toe)
{
    struct tf_fx_req *req = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (req != NULL) {
        free(req->body);
        free(req);
        *req_cls = NULL;
    }
}

static void tf_fx_on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                                enum MHD_ConnectionNotificationCode toe)
{
    struct tf_fx_app *app = cls;
    (void)c;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
        free(*socket_ctx);
        *socket_ctx = NULL;
        return;
    }
    /* A failed calloc only loses this connection's per-endpoint counting. */
    struct tf_fx_conn *conn = calloc(1, sizeof(*conn));
    pthread_mutex_lock(&app->lock);
    app->next_conn_id++;
    if (conn != NULL) {
        conn->id = app->next_conn_id;
    }
    tf_fx_stats_conn_open(app->stats);
    pthread_mutex_unlock(&app->lock);
    *socket_ctx = conn;
}

/* ---- startup and shutdown ---- */

static int tf_fx_app_init(struct tf_fx_app *app, const struct tf_fx_opts *o)
{
    char err[TF_FX_ERR_LEN];
    memset(app, 0, sizeof(*app));
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        return -1;
    }
    /* tf_fx_pause computes its deadline on CLOCK_MONOTONIC. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&app->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        return -1;
    }
    if (pthread_mutex_init(&app->lock, NULL) != 0) {
        pthread_cond_destroy(&app->wake);
        return -1;
    }
    app->sync_ready = 1;
    app->seed = o->seed;
    app->quiet = o->quiet;
    app->model = tf_fx_model_create(o->seed, o->usdkrw, o->premium, tf_fx_mono_ms());
    app->stats = tf_fx_stats_create();
    if (app->model == NULL || app->stats == NULL) {
        fprintf(stderr, "tickflow-fake-exchange: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < o->n_prices; i++) {
        if (tf_fx_model_fix(app->model, &o->prices[i], tf_fx_mono_ms(), err, sizeof(err)) != 0) {
            fprintf(stderr, "--price: %s\n", err);
            return -1;
        }
    }
    for (size_t i = 0; i < o->n_faults; i++) {
        tf_fx_faults_set(&app->faults, o->fault_eps[i], &o->faults[i]);
    }
    tf_fx_mutator_init(&app->mutator, o->mutate_rate,
                       o->mutate_seed >= 0 ? (uint64_t)o->mutate_seed : o->seed);
    return 0;
}

/* Safe on a partly initialised app (tf_fx_app_init zeroes it first). */
static void tf_fx_app_fini(struct tf_fx_app *app)
{
    tf_fx_model_destroy(app->model);
    tf_fx_stats_destroy(app->stats);
    if (app->sync_ready) {
        pthread_cond_destroy(&app->wake);
        pthread_mutex_destroy(&app->lock);
    }
}

static struct MHD_Daemon *tf_fx_start(struct tf_fx_app *app, unsigned port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Thread per connection: a delay fault sleeping in one handler must not hold up others. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO_INTERNAL_THREAD;
    if (!app->quiet) {
        flags |= MHD_USE_ERROR_LOG;
    }
    return MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, tf_fx_on_request, app, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, tf_fx_on_completed, app,
        MHD_OPTION_NOTIFY_CONNECTION, tf_fx_on_connection, app, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)TF_FX_CONN_TIMEOUT, MHD_OPTION_END);
}

static int tf_fx_bound_port(struct MHD_Daemon *d, unsigned *port)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    if (info == NULL || getsockname(info->listen_fd, (struct sockaddr *)&addr, &len) != 0) {
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return 0;
}

/* Write to a temporary name and rename, so a reader never sees a partial file. */
static int tf_fx_write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    int len = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof(tmp)) {
        fprintf(stderr, "--port-file: path too long\n");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "--port-file: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    int rc = fprintf(f, "%u\n", port) < 0 ? -1 : 0;
    rc |= fclose(f) != 0 ? -1 : 0;
    if (rc != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "--port-file: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct tf_fx_opts *opts = calloc(1, sizeof(*opts));
    struct tf_fx_app app;
    struct MHD_Daemon *daemon = NULL;
    int status = 1;
    memset(&app, 0, sizeof(app));
    if (opts == NULL) {
        fprintf(stderr, "tickflow-fake-exchange: out of memory\n");
        return 1;
    }
    int parsed = tf_fx_signed_take_args(&argc, argv) != 0 ? -1 : tf_fx_parse_args(argc, argv, opts);
    if (parsed != 0) {
        free(opts);
        return parsed > 0 ? 0 : TF_FX_EXIT_USAGE;
    }
    /* Block the stop signals before MHD starts its threads so they inherit the mask and only
     * sigwait below ever sees them. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (tf_fx_app_init(&app, opts) != 0) {
        goto out;
    }
    daemon = tf_fx_start(&app, (unsigned)opts->port);
    unsigned port = 0;
    if (daemon == NULL || tf_fx_bound_port(daemon, &port) != 0) {
        fprintf(stderr, "tickflow-fake-exchange: cannot listen on 127.0.0.1:%ld\n", opts->port);
        goto out;
    }
    printf("listening on 127.0.0.1:%u\n", port);
    fflush(stdout);
    if (opts->port_file != NULL && tf_fx_write_port_file(opts->port_file, port) != 0) {
        goto out;
    }
    int sig = 0;
    sigwait(&stop_sigs, &sig);
    if (!app.quiet) {
        fprintf(stderr, "tickflow-fake-exchange: signal %d, stopping\n", sig);
    }
    status = 0;
out:
    if (app.sync_ready) {
        pthread_mutex_lock(&app.lock);
        app.stopping = 1;
        pthread_cond_broadcast(&app.wake);
        pthread_mutex_unlock(&app.lock);
    }
    if (daemon != NULL) {
        MHD_stop_daemon(daemon);
    }
    if (status == 0 && opts->port_file != NULL) {
        unlink(opts->port_file);
    }
    tf_fx_app_fini(&app);
    free(opts);
    return status;
}
