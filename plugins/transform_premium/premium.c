/*
 * `premium` transform: joins KRW-quoted and USDT/USD-quoted tickers of the same symbol with the
 * latest USD/KRW rate and appends one `premium` record per (KRW exchange, global exchange,
 * symbol). Owns the remembered inputs (latest ticker per exchange, symbol and side; latest FX),
 * so a source that fails one tick does not break the join, and the premium gauges.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tickflow/tickflow.h>

#define PM_CTX_MAX              192 /* "ticker record #12 (bithumb BTC/KRW)" */
#define PM_REASON_MAX           80  /* "ticker_age,skew,fx_age"; the suspect fields */
#define PM_TS_MAX               9007199254740992.0 /* 2^53: larger doubles are not exact integers */
#define PM_SUSPECT_LOG_EVERY_MS 10000              /* at most one "suspect" line per 10 s */

typedef enum pm_basis { PM_BASIS_LAST, PM_BASIS_MID, PM_BASIS_MARK } pm_basis;

/* The latest ticker of one (exchange, symbol, side). Prices are > 0 when present and 0 when
 * absent: an input zero is rejected on arrival, so 0 never stands for a value. */
typedef struct pm_ticker {
    char *exchange; /* owned */
    char *symbol;   /* owned */
    char *quote;    /* owned: "KRW", "USDT" or "USD" */
    bool krw;       /* KRW side; otherwise the USDT/USD ("global") side */
    double last;    /* always present */
    double bid, ask, mark;
    int64_t ts;        /* ts_exchange (ts_received when the record has none), epoch ms */
    int64_t seen_ms;   /* our clock when it last arrived, for forget_after */
    bool basis_warned; /* the "no price for the basis" warning was logged */
} pm_ticker;

/* The latest USD/KRW rate. */
typedef struct pm_fx {
    bool known;
    double rate;         /* KRW per 1 USD, > 0 */
    char *provider;      /* owned; NULL when the record had none */
    int64_t ts_provider; /* epoch ms */
    int64_t seen_ms;
} pm_fx;

/* A (symbol, krw, global) whose gauges were set at least once. Gauges cannot be deleted, so
 * when the pair stops being produced its stale gauge goes to 1 and its age keeps growing. */
typedef struct pm_series {
    char *symbol;      /* owned */
    char *krw;         /* owned */
    char *global;      /* owned */
    int64_t oldest_ts; /* oldest ticker timestamp of its last premium */
    bool produced;     /* during the current tick */
} pm_series;

typedef struct premium {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    pm_basis basis;
    const char *basis_name; /* borrowed from the options */
    int64_t max_ticker_age_ms;
    int64_t max_skew_ms;
    int64_t max_fx_age_ms;
    int64_t forget_after_ms;
    double band_min;       /* premium_min: a premium below this (percent) is suspect */
    double band_max;       /* premium_max */
    const json_t *pairs;   /* borrowed: array of {krw, global}; empty = every pair */
    const json_t *symbols; /* borrowed: array of strings; empty = every symbol */
    pm_ticker *tickers;    /* owned, n_tickers used, in order of first arrival */
    size_t n_tickers;
    size_t cap_tickers;
    pm_fx fx;
    pm_series *series; /* owned */
    size_t n_series;
    size_t cap_series;
    tf_metric *m_pct;
    tf_metric *m_age;
    tf_metric *m_stale;
    tf_metric *m_suspect;        /* gauge: the last premium of the series was suspect */
    tf_metric *m_suspect_total;  /* counter: suspect premiums emitted */
    int64_t suspect_log_next_ms; /* monotonic ms before which suspects are only counted */
} premium;

/* Everything one premium record holds, computed and checked before the record is created. */
typedef struct pm_calc {
    pm_ticker *k; /* KRW side, borrowed from the state */
    pm_ticker *g; /* global side */
    double global_price;
    double premium_pct;
    bool has_usdt;
    double usdt_krw;
    double premium_usdt_pct;
    bool has_exec; /* bid and ask known on both sides */
    double entry_pct;
    double exit_pct;
    int64_t ts;     /* newest ticker timestamp */
    int64_t oldest; /* oldest ticker timestamp */
    int64_t skew_ms;
    int64_t age_ms;
    int64_t fx_age_ms;
    char stale_reason[PM_REASON_MAX];   /* "" when fresh */
    char suspect_reason[PM_REASON_MAX]; /* fields outside [band_min, band_max]; "" when none */
} pm_calc;

static const tf_option_def pair_fields[] = {
    {"krw", TF_OPT_STRING, NULL, 1, "Exchange of the KRW-quoted ticker (its `exchange` field)", 0,
     NULL},
    {"global", TF_OPT_STRING, NULL, 1,
     "Exchange of the USDT/USD-quoted ticker (its `exchange` field)", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def options[] = {
    {"pairs", TF_OPT_LIST, "[]", 0,
     "Only these (KRW exchange, global exchange) pairs, e.g. [{krw: bithumb, global: binance}]; "
     "empty: every KRW exchange against every global exchange",
     TF_OPT_MAP, pair_fields},
    {"price", TF_OPT_STRING, "last", 0,
     "Global price basis: last, mid ((bid + ask) / 2) or mark (mark_price, perpetuals)", 0, NULL},
    {"max_ticker_age", TF_OPT_DURATION, "3s", 0,
     "A premium whose older ticker (ts_exchange) is older than this is flagged stale", 0, NULL},
    {"max_skew", TF_OPT_DURATION, "1s", 0,
     "A premium whose two tickers' ts_exchange differ by more than this is flagged stale", 0, NULL},
    {"max_fx_age", TF_OPT_DURATION, "15m", 0,
     "A premium whose FX rate (ts_provider) is older than this is flagged stale", 0, NULL},
    {"forget_after", TF_OPT_DURATION, "60s", 0,
     "An input (ticker or FX) that has not arrived for this long is forgotten, and the premiums "
     "needing it stop",
     0, NULL},
    {"symbols", TF_OPT_LIST, "[]", 0, "Only these symbols (e.g. [BTC, ETH]); empty: every symbol",
     TF_OPT_STRING, NULL},
    /* The kimchi premium peaked near +50 % (January 2018) and fell below -5 % (2019, 2022):
     * -20..+60 % holds its whole history with room, while a price x10 (+900 %) or /10 (-90 %)
     * on either side is far outside. */
    {"premium_min", TF_OPT_DOUBLE, "-20", 0,
     "A premium (premium_pct, premium_usdt_pct, entry/exit_premium_pct) below this, in percent, "
     "is flagged suspect: never fresh, counted in tickflow_premium_suspect_total",
     0, NULL},
    {"premium_max", TF_OPT_DOUBLE, "60", 0,
     "A premium above this, in percent, is flagged suspect (see premium_min)", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const char *const series_labels[] = {"symbol", "krw_exchange", "global_exchange", NULL};

/* ---- small helpers ---- */

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Replaces *slot with a copy of `s` unless it already holds that text. */
static int replace_string(char **slot, const char *s)
{
    if (*slot && strcmp(*slot, s) == 0)
        return TF_OK;
    char *d = dup_string(s);
    if (!d)
        return TF_ENOMEM;
    free(*slot);
    *slot = d;
    return TF_OK;
}

static const char *type_name(tf_field_type t)
{
    switch (t) {
    case TF_FIELD_STRING:
        return "a string";
    case TF_FIELD_INT:
        return "an int";
    case TF_FIELD_DOUBLE:
        return "a double";
    case TF_FIELD_BOOL:
        return "a bool";
    case TF_FIELD_TS:
        return "a timestamp";
    default:
        return "nothing (absent)";
    }
}

static bool is_global_quote(const char *quote)
{
    return strcmp(quote, "USDT") == 0 || strcmp(quote, "USD") == 0;
}

/* Appends `reason` to the comma-joined list in buf. */
static void add_reason(char *buf, size_t size, const char *reason)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "", reason);
    if (n < 0 || (size_t)n >= size - used)
        buf[used] = '\0'; /* cannot happen with the fixed reasons; keep the list well-formed */
}

/* ---- reading input records ---- */

static int read_string(premium *p, const tf_record *r, const char *ctx, const char *name,
                       const char **out)
{
    const tf_host *h = p->host;
    const char *v = h->record_get_string(r, name);
    if (v && v[0]) {
        *out = v;
        return TF_OK;
    }
    h->report_error(p->self, TF_EVALUE, "%s: %s: expected a non-empty string, found %s", ctx, name,
                    v ? "\"\"" : type_name(h->record_field_type(r, name)));
    return TF_EVALUE;
}

/* A price or rate: finite and > 0. An absent optional field gives 0. */
static int read_price(premium *p, const tf_record *r, const char *ctx, const char *name,
                      bool required, double *out)
{
    const tf_host *h = p->host;
    tf_field_type t = h->record_field_type(r, name);
    *out = 0;
    if (t == TF_FIELD_NONE && !required)
        return TF_OK;
    double v = 0;
    if (h->record_get_double(r, name, &v) != TF_OK) {
        h->report_error(p->self, TF_EVALUE, "%s: %s: expected a number > 0, found %s", ctx, name,
                        type_name(t));
        return TF_EVALUE;
    }
    if (!isfinite(v) || v <= 0) {
        h->report_error(p->self, TF_EVALUE, "%s: %s: expected a finite number > 0, found %.17g",
                        ctx, name, v);
        return TF_EVALUE;
    }
    *out = v;
    return TF_OK;
}

/* A timestamp written as a JSON number with a fraction part ("1795428930000.0"). */
static bool ts_from_double(const tf_host *h, const tf_record *r, const char *name, int64_t *out)
{
    double d = 0;
    if (h->record_get_double(r, name, &d) != TF_OK || d != floor(d) || fabs(d) >= PM_TS_MAX)
        return false;
    *out = (int64_t)d;
    return true;
}

/* An epoch-ms timestamp stored as TS or INT (the redis source re-emits cached JSON numbers as
 * INT), or as an integral DOUBLE. TF_OK, TF_ENOTFOUND, or TF_EVALUE after reporting. */
static int read_ts(premium *p, const tf_record *r, const char *ctx, const char *name, int64_t *out)
{
    const tf_host *h = p->host;
    tf_field_type t = h->record_field_type(r, name);
    if (t == TF_FIELD_NONE)
        return TF_ENOTFOUND;
    int64_t v = 0;
    if (h->record_get_int(r, name, &v) != TF_OK && !ts_from_double(h, r, name, &v)) {
        h->report_error(p->self, TF_EVALUE, "%s: %s: expected epoch milliseconds, found %s", ctx,
                        name, type_name(t));
        return TF_EVALUE;
    }
    if (v <= 0) {
        h->report_error(p->self, TF_EVALUE,
                        "%s: %s: expected epoch milliseconds > 0, found %" PRId64, ctx, name, v);
        return TF_EVALUE;
    }
    *out = v;
    return TF_OK;
}

/* ---- remembered state ---- */

static pm_ticker *find_ticker(premium *p, const char *exchange, const char *symbol, bool krw)
{
    for (size_t i = 0; i < p->n_tickers; i++) {
        pm_ticker *t = &p->tickers[i];
        if (t->krw == krw && strcmp(t->exchange, exchange) == 0 && strcmp(t->symbol, symbol) == 0)
            return t;
    }
    return NULL;
}

static void free_ticker(pm_ticker *t)
{
    free(t->exchange);
    free(t->symbol);
    free(t->quote);
}

static pm_ticker *add_ticker(premium *p, const char *exchange, const char *symbol)
{
    if (p->n_tickers == p->cap_tickers) {
        size_t cap = p->cap_tickers ? p->cap_tickers * 2 : 16;
        pm_ticker *grown = realloc(p->tickers, cap * sizeof *grown);
        if (!grown)
            return NULL;
        p->tickers = grown;
        p->cap_tickers = cap;
    }
    pm_ticker *t = &p->tickers[p->n_tickers];
    memset(t, 0, sizeof *t);
    t->exchange = dup_string(exchange);
    t->symbol = dup_string(symbol);
    if (!t->exchange || !t->symbol) {
        free_ticker(t);
        return NULL;
    }
    p->n_tickers++;
    return t;
}

/* Stores `in` (its strings are ignored) as the latest ticker of (exchange, symbol, side). */
static int remember_ticker(premium *p, const char *exchange, const char *symbol, const char *quote,
                           const pm_ticker *in)
{
    pm_ticker *t = find_ticker(p, exchange, symbol, in->krw);
    if (!t)
        t = add_ticker(p, exchange, symbol);
    if (!t)
        return TF_ENOMEM;
    int rc = replace_string(&t->quote, quote);
    if (rc != TF_OK)
        return rc;
    t->krw = in->krw;
    t->last = in->last;
    t->bid = in->bid;
    t->ask = in->ask;
    t->mark = in->mark;
    t->ts = in->ts;
    t->seen_ms = in->seen_ms;
    return TF_OK;
}

static int ingest_ticker(premium *p, const tf_record *r, size_t idx, int64_t now)
{
    char ctx[PM_CTX_MAX];
    snprintf(ctx, sizeof ctx, "ticker record #%zu", idx);
    const char *exchange = NULL;
    const char *symbol = NULL;
    const char *quote = NULL;
    if (read_string(p, r, ctx, "exchange", &exchange) != TF_OK ||
        read_string(p, r, ctx, "symbol", &symbol) != TF_OK ||
        read_string(p, r, ctx, "quote", &quote) != TF_OK)
        return TF_EVALUE;
    bool krw = strcmp(quote, "KRW") == 0;
    if (!krw && !is_global_quote(quote))
        return TF_OK; /* other quotes (BTC, EUR...) take no part in a KRW premium */
    snprintf(ctx, sizeof ctx, "ticker record #%zu (%s %s/%s)", idx, exchange, symbol, quote);
    pm_ticker t = {.krw = krw, .seen_ms = now};
    int rc = read_price(p, r, ctx, "last", true, &t.last);
    rc = rc ? rc : read_price(p, r, ctx, "bid", false, &t.bid);
    rc = rc ? rc : read_price(p, r, ctx, "ask", false, &t.ask);
    rc = rc ? rc : read_price(p, r, ctx, "mark_price", false, &t.mark);
    if (rc != TF_OK)
        return rc;
    if (t.bid > 0 && t.ask > 0 && t.bid > t.ask) {
        p->host->report_error(p->self, TF_EVALUE,
                              "%s: expected bid <= ask, found a crossed book (bid %.17g > ask "
                              "%.17g)",
                              ctx, t.bid, t.ask);
        return TF_EVALUE;
    }
    rc = read_ts(p, r, ctx, "ts_exchange", &t.ts);
    if (rc == TF_ENOTFOUND)
        rc = read_ts(p, r, ctx, "ts_received", &t.ts);
    if (rc == TF_ENOTFOUND) {
        p->host->report_error(p->self, TF_EVALUE,
                              "%s: ts_exchange: expected epoch milliseconds (or ts_received), "
                              "found neither",
                              ctx);
        return TF_EVALUE;
    }
    if (rc != TF_OK)
        return rc;
    return remember_ticker(p, exchange, symbol, quote, &t);
}

static int ingest_fx(premium *p, const tf_record *r, size_t idx, int64_t now)
{
    char ctx[PM_CTX_MAX];
    snprintf(ctx, sizeof ctx, "fx record #%zu", idx);
    const char *pair = NULL;
    if (read_string(p, r, ctx, "pair", &pair) != TF_OK)
        return TF_EVALUE;
    if (strcmp(pair, "USDKRW") != 0)
        return TF_OK; /* another pair on the same pipeline is not an error */
    double rate = 0;
    int64_t ts = 0;
    int rc = read_price(p, r, ctx, "rate", true, &rate);
    if (rc != TF_OK)
        return rc;
    rc = read_ts(p, r, ctx, "ts_provider", &ts);
    if (rc == TF_ENOTFOUND) {
        p->host->report_error(p->self, TF_EVALUE,
                              "%s: ts_provider: expected epoch milliseconds, found nothing "
                              "(absent)",
                              ctx);
        return TF_EVALUE;
    }
    if (rc != TF_OK)
        return rc;
    const char *provider = p->host->record_get_string(r, "provider");
    if (provider && provider[0]) {
        rc = replace_string(&p->fx.provider, provider);
        if (rc != TF_OK)
            return rc;
    } else {
        free(p->fx.provider);
        p->fx.provider = NULL;
    }
    p->fx.known = true;
    p->fx.rate = rate;
    p->fx.ts_provider = ts;
    p->fx.seen_ms = now;
    return TF_OK;
}

/* Reads the tick's tickers and FX into the state. Only allocation failures stop the tick; a
 * bad record is reported and skipped. */
static int ingest(premium *p, const tf_batch *batch, size_t n, int64_t now)
{
    const tf_host *h = p->host;
    for (size_t i = 0; i < n; i++) {
        const tf_record *r = h->batch_at(batch, i);
        const char *kind = h->record_kind(r);
        int rc = TF_OK;
        if (strcmp(kind, "ticker") == 0)
            rc = ingest_ticker(p, r, i, now);
        else if (strcmp(kind, "fx") == 0)
            rc = ingest_fx(p, r, i, now);
        if (rc == TF_ENOMEM)
            return rc;
    }
    return TF_OK;
}

/* Drops the inputs that have not arrived for forget_after (a delisted market, a removed
 * exchange), keeping the others in their order. */
static void forget(premium *p, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < p->n_tickers; i++) {
        if (now - p->tickers[i].seen_ms > p->forget_after_ms) {
            free_ticker(&p->tickers[i]);
            continue;
        }
        p->tickers[kept++] = p->tickers[i];
    }
    p->n_tickers = kept;
    if (p->fx.known && now - p->fx.seen_ms > p->forget_after_ms) {
        free(p->fx.provider);
        p->fx = (pm_fx){0};
    }
}

/* ---- selection ---- */

static bool symbol_wanted(const premium *p, const char *symbol)
{
    if (json_array_size(p->symbols) == 0)
        return true;
    size_t i;
    const json_t *v;
    json_array_foreach(p->symbols, i, v)
    {
        if (strcasecmp(json_string_value(v), symbol) == 0)
            return true;
    }
    return false;
}

static bool pair_wanted(const premium *p, const char *krw, const char *global)
{
    if (json_array_size(p->pairs) == 0)
        return true;
    size_t i;
    const json_t *v;
    json_array_foreach(p->pairs, i, v)
    {
        const char *k = json_string_value(json_object_get(v, "krw"));
        const char *g = json_string_value(json_object_get(v, "global"));
        if (strcmp(k, krw) == 0 && strcmp(g, global) == 0)
            return true;
    }
    return false;
}

/* ---- computation ---- */

/* The global price for the configured basis; false when the ticker lacks what it needs. */
static bool basis_price(const premium *p, const pm_ticker *g, double *out)
{
    switch (p->basis) {
    case PM_BASIS_MID:
        if (g->bid <= 0 || g->ask <= 0)
            return false;
        *out = (g->bid + g->ask) / 2.0;
        return true;
    case PM_BASIS_MARK:
        if (g->mark <= 0)
            return false;
        *out = g->mark;
        return true;
    default:
        *out = g->last;
        return true;
    }
}

/* (num / (price * rate) - 1) * 100; false when a step is not finite or the divisor not > 0. */
static bool premium_of(double num, double price, double rate, double *out)
{
    double den = price * rate;
    if (!isfinite(den) || den <= 0)
        return false;
    double v = (num / den - 1.0) * 100.0;
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

static int bad_result(premium *p, const pm_calc *c, const char *field, double num, double price,
                      double rate)
{
    p->host->report_error(p->self, TF_EVALUE,
                          "premium %s %s/%s: %s: expected a finite value, found a non-finite "
                          "result of (%.17g / (%.17g * %.17g) - 1) * 100",
                          c->k->symbol, c->k->exchange, c->g->exchange, field, num, price, rate);
    return TF_EVALUE;
}

static void stale_reasons(const premium *p, pm_calc *c)
{
    c->stale_reason[0] = '\0';
    if (c->age_ms > p->max_ticker_age_ms)
        add_reason(c->stale_reason, sizeof c->stale_reason, "ticker_age");
    if (c->skew_ms > p->max_skew_ms)
        add_reason(c->stale_reason, sizeof c->stale_reason, "skew");
    if (c->fx_age_ms > p->max_fx_age_ms)
        add_reason(c->stale_reason, sizeof c->stale_reason, "fx_age");
}

/* Names each computed premium outside [band_min, band_max] in c->suspect_reason. */
static void suspect_reasons(const premium *p, pm_calc *c)
{
    const struct {
        const char *name;
        bool present;
        double v;
    } fields[] = {{"premium_pct", true, c->premium_pct},
                  {"premium_usdt_pct", c->has_usdt, c->premium_usdt_pct},
                  {"entry_premium_pct", c->has_exec, c->entry_pct},
                  {"exit_premium_pct", c->has_exec, c->exit_pct}};
    c->suspect_reason[0] = '\0';
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].present && !(fields[i].v >= p->band_min && fields[i].v <= p->band_max))
            add_reason(c->suspect_reason, sizeof c->suspect_reason, fields[i].name);
    }
}

static void timing(const premium *p, pm_calc *c, int64_t now)
{
    int64_t a = c->k->ts;
    int64_t b = c->g->ts;
    c->ts = a > b ? a : b;
    c->oldest = a < b ? a : b;
    c->skew_ms = a > b ? a - b : b - a;
    /* A timestamp ahead of our clock (venue clock drift) counts as age 0, not negative. */
    c->age_ms = now > c->oldest ? now - c->oldest : 0;
    c->fx_age_ms = now > p->fx.ts_provider ? now - p->fx.ts_provider : 0;
    stale_reasons(p, c);
}

/* Fills c from its two tickers, the FX and the KRW exchange's USDT/KRW ticker. TF_OK, or
 * TF_EVALUE after reporting a non-finite result. */
static int compute(premium *p, pm_calc *c, int64_t now)
{
    const pm_ticker *k = c->k;
    const pm_ticker *g = c->g;
    double rate = p->fx.rate;
    if (!isfinite(c->global_price))
        return bad_result(p, c, "global_price", k->last, c->global_price, rate);
    if (!premium_of(k->last, c->global_price, rate, &c->premium_pct))
        return bad_result(p, c, "premium_pct", k->last, c->global_price, rate);
    const pm_ticker *usdt = find_ticker(p, k->exchange, "USDT", true);
    /* USDT itself against USDT/KRW would be 0 % by construction: not a measurement. */
    if (usdt == k)
        usdt = NULL;
    c->has_usdt = usdt != NULL;
    if (usdt) {
        c->usdt_krw = usdt->last;
        if (!premium_of(k->last, c->global_price, usdt->last, &c->premium_usdt_pct))
            return bad_result(p, c, "premium_usdt_pct", k->last, c->global_price, usdt->last);
    }
    c->has_exec = k->bid > 0 && k->ask > 0 && g->bid > 0 && g->ask > 0;
    if (c->has_exec) {
        /* Entry buys KRW at the ask and sells global at the bid; exit does the reverse. */
        if (!premium_of(k->ask, g->bid, rate, &c->entry_pct))
            return bad_result(p, c, "entry_premium_pct", k->ask, g->bid, rate);
        if (!premium_of(k->bid, g->ask, rate, &c->exit_pct))
            return bad_result(p, c, "exit_premium_pct", k->bid, g->ask, rate);
    }
    timing(p, c, now);
    suspect_reasons(p, c);
    return TF_OK;
}

/* ---- output ---- */

static int set_optional_price(const tf_host *h, tf_record *r, const char *name, double v)
{
    return v > 0 ? h->record_set_double(r, name, v) : TF_OK;
}

static int fill_record(const premium *p, tf_record *r, const pm_calc *c)
{
    const tf_host *h = p->host;
    const pm_ticker *k = c->k;
    const pm_ticker *g = c->g;
    int rc = h->record_set_string(r, "symbol", k->symbol);
    rc = rc ? rc : h->record_set_string(r, "krw_exchange", k->exchange);
    rc = rc ? rc : h->record_set_string(r, "global_exchange", g->exchange);
    rc = rc ? rc : h->record_set_string(r, "global_quote", g->quote);
    rc = rc ? rc : h->record_set_string(r, "basis", p->basis_name);
    rc = rc ? rc : h->record_set_double(r, "krw_price", k->last);
    rc = rc ? rc : h->record_set_double(r, "global_price", c->global_price);
    rc = rc ? rc : h->record_set_double(r, "usdkrw", p->fx.rate);
    if (!rc && p->fx.provider)
        rc = h->record_set_string(r, "fx_provider", p->fx.provider);
    rc = rc ? rc : h->record_set_int(r, "fx_age_ms", c->fx_age_ms);
    rc = rc ? rc : h->record_set_double(r, "premium_pct", c->premium_pct);
    if (!rc && c->has_usdt) {
        rc = h->record_set_double(r, "usdt_krw", c->usdt_krw);
        rc = rc ? rc : h->record_set_double(r, "premium_usdt_pct", c->premium_usdt_pct);
    }
    if (!rc && c->has_exec) {
        rc = h->record_set_double(r, "entry_premium_pct", c->entry_pct);
        rc = rc ? rc : h->record_set_double(r, "exit_premium_pct", c->exit_pct);
    }
    rc = rc ? rc : set_optional_price(h, r, "krw_bid", k->bid);
    rc = rc ? rc : set_optional_price(h, r, "krw_ask", k->ask);
    rc = rc ? rc : set_optional_price(h, r, "global_bid", g->bid);
    rc = rc ? rc : set_optional_price(h, r, "global_ask", g->ask);
    rc = rc ? rc : h->record_set_ts(r, "ts", c->ts);
    rc = rc ? rc : h->record_set_int(r, "skew_ms", c->skew_ms);
    rc = rc ? rc : h->record_set_int(r, "age_ms", c->age_ms);
    rc = rc ? rc : h->record_set_bool(r, "stale", c->stale_reason[0] != '\0');
    if (!rc && c->stale_reason[0])
        rc = h->record_set_string(r, "stale_reason", c->stale_reason);
    rc = rc ? rc : h->record_set_bool(r, "suspect", c->suspect_reason[0] != '\0');
    if (!rc && c->suspect_reason[0])
        rc = h->record_set_string(r, "suspect_reason", c->suspect_reason);
    return rc;
}

static int emit(premium *p, tf_batch *batch, const pm_calc *c)
{
    const tf_host *h = p->host;
    tf_record *r = h->record_new(batch, "premium");
    if (!r)
        return TF_ENOMEM;
    int rc = fill_record(p, r, c);
    if (rc != TF_OK) /* never leave a half record behind */
        h->batch_remove(batch, h->batch_count(batch) - 1);
    return rc;
}

static pm_series *find_series(premium *p, const char *symbol, const char *krw, const char *global)
{
    for (size_t i = 0; i < p->n_series; i++) {
        pm_series *s = &p->series[i];
        if (strcmp(s->symbol, symbol) == 0 && strcmp(s->krw, krw) == 0 &&
            strcmp(s->global, global) == 0)
            return s;
    }
    if (p->n_series == p->cap_series) {
        size_t cap = p->cap_series ? p->cap_series * 2 : 8;
        pm_series *grown = realloc(p->series, cap * sizeof *grown);
        if (!grown)
            return NULL;
        p->series = grown;
        p->cap_series = cap;
    }
    pm_series *s = &p->series[p->n_series];
    *s = (pm_series){
        .symbol = dup_string(symbol), .krw = dup_string(krw), .global = dup_string(global)};
    if (!s->symbol || !s->krw || !s->global) {
        free(s->symbol);
        free(s->krw);
        free(s->global);
        return NULL;
    }
    p->n_series++;
    return s;
}

static void publish(premium *p, const pm_calc *c)
{
    const tf_host *h = p->host;
    const char *values[] = {c->k->symbol, c->k->exchange, c->g->exchange};
    bool suspect = c->suspect_reason[0] != '\0';
    h->metric_set(p->m_suspect, p->self, values, suspect ? 1.0 : 0.0);
    if (suspect) {
        /* tickflow_premium_pct keeps the last plausible value: an absurd one would wreck every
         * graph and threshold alert built on it. */
        h->metric_add(p->m_suspect_total, p->self, values, 1);
        if (p->host->monotonic_ms() >= p->suspect_log_next_ms) {
            p->suspect_log_next_ms = p->host->monotonic_ms() + PM_SUSPECT_LOG_EVERY_MS;
            h->log(p->self, TF_LOG_WARN,
                   "premium %s %s/%s: suspect (%s outside %.6g..%.6g %%): premium_pct %.6g, "
                   "krw_price %.10g, global_price %.10g, usdkrw %.10g; published with suspect: "
                   "true (one line per %d s)",
                   c->k->symbol, c->k->exchange, c->g->exchange, c->suspect_reason, p->band_min,
                   p->band_max, c->premium_pct, c->k->last, c->global_price, p->fx.rate,
                   PM_SUSPECT_LOG_EVERY_MS / 1000);
        }
    } else {
        h->metric_set(p->m_pct, p->self, values, c->premium_pct);
    }
    h->metric_set(p->m_age, p->self, values, (double)c->age_ms / 1000.0);
    h->metric_set(p->m_stale, p->self, values, c->stale_reason[0] ? 1.0 : 0.0);
    pm_series *s = find_series(p, c->k->symbol, c->k->exchange, c->g->exchange);
    if (s) { /* without memory the gauges are still right; only the gone-pair flag is lost */
        s->produced = true;
        s->oldest_ts = c->oldest;
    }
}

/* Pairs produced before but not this tick are missing an input: flag them stale and let
 * their age grow, so an alert on either gauge fires. */
static void publish_gone(premium *p, int64_t now)
{
    const tf_host *h = p->host;
    for (size_t i = 0; i < p->n_series; i++) {
        pm_series *s = &p->series[i];
        if (s->produced)
            continue;
        const char *values[] = {s->symbol, s->krw, s->global};
        int64_t age = now > s->oldest_ts ? now - s->oldest_ts : 0;
        h->metric_set(p->m_age, p->self, values, (double)age / 1000.0);
        h->metric_set(p->m_stale, p->self, values, 1.0);
    }
}

/* One premium for (k, g) when every input is known. Only TF_ENOMEM is returned as an error:
 * a bad value is reported and that pair skipped. */
static int produce(premium *p, tf_batch *batch, pm_ticker *k, pm_ticker *g, int64_t now)
{
    pm_calc c = {.k = k, .g = g};
    if (!basis_price(p, g, &c.global_price)) {
        if (!g->basis_warned)
            p->host->log(p->self, TF_LOG_WARN,
                         "%s %s/%s: price %s: expected %s in its tickers, found none; no "
                         "premium for this market until it has one",
                         g->exchange, g->symbol, g->quote, p->basis_name,
                         p->basis == PM_BASIS_MID ? "bid and ask" : "mark_price");
        g->basis_warned = true;
        return TF_OK;
    }
    g->basis_warned = false;
    if (compute(p, &c, now) != TF_OK)
        return TF_OK;
    int rc = emit(p, batch, &c);
    if (rc != TF_OK)
        return rc;
    publish(p, &c);
    return TF_OK;
}

static int produce_all(premium *p, tf_batch *batch, int64_t now)
{
    for (size_t i = 0; i < p->n_series; i++)
        p->series[i].produced = false;
    if (!p->fx.known)
        goto out; /* no premium without a rate */
    for (size_t i = 0; i < p->n_tickers; i++) {
        pm_ticker *k = &p->tickers[i];
        if (!k->krw || !symbol_wanted(p, k->symbol))
            continue;
        for (size_t j = 0; j < p->n_tickers; j++) {
            pm_ticker *g = &p->tickers[j];
            if (g->krw || strcmp(g->symbol, k->symbol) != 0 ||
                !pair_wanted(p, k->exchange, g->exchange))
                continue;
            int rc = produce(p, batch, k, g, now);
            if (rc != TF_OK)
                return rc;
        }
    }
out:
    publish_gone(p, now);
    return TF_OK;
}

static int premium_process(void *instance, const tf_tick *tick, tf_batch *batch)
{
    (void)tick;
    premium *p = instance;
    int64_t now = p->host->now_ms();
    /* Only the records that came in: the premiums appended below are not inputs. */
    int rc = ingest(p, batch, p->host->batch_count(batch), now);
    if (rc != TF_OK)
        return rc;
    forget(p, now);
    return produce_all(p, batch, now);
}

/* ---- init / destroy ---- */

static int check_durations(const tf_host *h, tf_instance *self, const tf_options *opts)
{
    static const char *const names[] = {"max_ticker_age", "max_skew", "max_fx_age", "forget_after"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int64_t v = h->opt_duration_ms(opts, names[i]);
        if (v <= 0) {
            h->log(self, TF_LOG_ERROR, "%s: expected a duration > 0, found %" PRId64 " ms",
                   names[i], v);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int check_basis(premium *p, const tf_options *opts)
{
    const char *b = p->host->opt_string(opts, "price");
    p->basis_name = b ? b : "";
    if (strcmp(p->basis_name, "last") == 0)
        p->basis = PM_BASIS_LAST;
    else if (strcmp(p->basis_name, "mid") == 0)
        p->basis = PM_BASIS_MID;
    else if (strcmp(p->basis_name, "mark") == 0)
        p->basis = PM_BASIS_MARK;
    else {
        p->host->log(p->self, TF_LOG_ERROR, "price: expected one of last, mid, mark, found \"%s\"",
                     p->basis_name);
        return TF_EINVAL;
    }
    return TF_OK;
}

static int check_band(premium *p)
{
    if (isfinite(p->band_min) && isfinite(p->band_max) && p->band_min < p->band_max)
        return TF_OK;
    p->host->log(p->self, TF_LOG_ERROR,
                 "premium_min, premium_max: expected finite percentages with min < max (e.g. -20 "
                 "and 60), found %.17g and %.17g",
                 p->band_min, p->band_max);
    return TF_EINVAL;
}

/* The loader checked types and required keys; empty names would silently match nothing. */
static int check_lists(premium *p)
{
    size_t i;
    const json_t *v;
    json_array_foreach(p->pairs, i, v)
    {
        const char *k = json_string_value(json_object_get(v, "krw"));
        const char *g = json_string_value(json_object_get(v, "global"));
        if (!k || !k[0] || !g || !g[0]) {
            p->host->log(p->self, TF_LOG_ERROR,
                         "pairs[%zu]: expected non-empty krw and global exchange names, found "
                         "krw \"%s\", global \"%s\"",
                         i, k ? k : "", g ? g : "");
            return TF_EINVAL;
        }
    }
    json_array_foreach(p->symbols, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || !s[0]) {
            p->host->log(p->self, TF_LOG_ERROR,
                         "symbols[%zu]: expected a non-empty symbol such as BTC, found \"%s\"", i,
                         s ? s : "");
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int register_metrics(premium *p)
{
    const tf_host *h = p->host;
    p->m_pct = h->metric_register(p->self, TF_METRIC_GAUGE, "tickflow_premium_pct",
                                  "Last premium of KRW over global price, in percent.",
                                  series_labels, NULL, 0);
    p->m_age = h->metric_register(p->self, TF_METRIC_GAUGE, "tickflow_premium_age_seconds",
                                  "Age of the older ticker behind the last premium, in seconds.",
                                  series_labels, NULL, 0);
    p->m_stale = h->metric_register(p->self, TF_METRIC_GAUGE, "tickflow_premium_stale",
                                    "1 when the last premium is stale or no longer produced.",
                                    series_labels, NULL, 0);
    p->m_suspect = h->metric_register(
        p->self, TF_METRIC_GAUGE, "tickflow_premium_suspect",
        "1 when the last premium was flagged suspect (outside the premium band).", series_labels,
        NULL, 0);
    p->m_suspect_total = h->metric_register(
        p->self, TF_METRIC_COUNTER, "tickflow_premium_suspect_total",
        "Premiums flagged suspect (outside the premium band).", series_labels, NULL, 0);
    if (!p->m_pct || !p->m_age || !p->m_stale || !p->m_suspect || !p->m_suspect_total) {
        h->log(p->self, TF_LOG_ERROR,
               "metrics: expected to register tickflow_premium_{pct,age_seconds,stale,suspect,"
               "suspect_total}, found a family of that name with another type or labels");
        return TF_EINVAL;
    }
    return TF_OK;
}

static void premium_destroy(void *instance)
{
    premium *p = instance;
    if (!p)
        return;
    for (size_t i = 0; i < p->n_tickers; i++)
        free_ticker(&p->tickers[i]);
    free(p->tickers);
    for (size_t i = 0; i < p->n_series; i++) {
        free(p->series[i].symbol);
        free(p->series[i].krw);
        free(p->series[i].global);
    }
    free(p->series);
    free(p->fx.provider);
    free(p);
}

static int premium_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                        void **instance)
{
    int rc = check_durations(host, self, opts);
    if (rc != TF_OK)
        return rc;
    premium *p = calloc(1, sizeof *p);
    if (!p)
        return TF_ENOMEM;
    p->host = host;
    p->self = self;
    p->max_ticker_age_ms = host->opt_duration_ms(opts, "max_ticker_age");
    p->max_skew_ms = host->opt_duration_ms(opts, "max_skew");
    p->max_fx_age_ms = host->opt_duration_ms(opts, "max_fx_age");
    p->forget_after_ms = host->opt_duration_ms(opts, "forget_after");
    p->band_min = host->opt_double(opts, "premium_min");
    p->band_max = host->opt_double(opts, "premium_max");
    p->pairs = host->opt_json(opts, "pairs");
    p->symbols = host->opt_json(opts, "symbols");
    rc = check_basis(p, opts);
    rc = rc ? rc : check_band(p);
    rc = rc ? rc : check_lists(p);
    rc = rc ? rc : register_metrics(p);
    if (rc != TF_OK)
        goto fail;
    *instance = p;
    return TF_OK;
fail:
    premium_destroy(p);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "premium",
    .kind = TF_KIND_TRANSFORM,
    .description = "Kimchi premium of KRW-quoted over USDT/USD-quoted tickers, per exchange pair",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = premium_init,
    .destroy = premium_destroy,
    .process = premium_process,
};
