/*
 * Plausibility guard for sources: a price outside a sane range for its quote, or a jump from
 * the last good price larger than a bound that the next update does not confirm, is rejected
 * (counted in tickflow_source_rejected_total{exchange,symbol,reason} and logged, at most one
 * line per TF_PLAUS_LOG_EVERY_MS) instead of being published as fresh.
 *
 * Header-only on purpose: it only calls host services, and static inline functions need no
 * library beside the headers, so an out-of-tree plugin built against the installed SDK uses it
 * as is. Usage (docs/plugin-sdk.md, "Plausibility"):
 *
 *   tf_plaus guard;                            // in the instance
 *   tf_plaus_init(&guard, host, self, &cfg);   // in init; cfg from the plugin's options
 *   if (tf_plaus_check(&guard, "BTC", "last", price, now) != TF_OK) skip the record;
 *   tf_plaus_free(&guard);                     // in destroy
 */
#ifndef TICKFLOW_PLAUSIBLE_H
#define TICKFLOW_PLAUSIBLE_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tickflow.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TF_PLAUS_LOG_EVERY_MS 10000 /* at most one rejection line per guard per 10 s */
#define TF_PLAUS_KEY_MAX      64    /* "<symbol>/<field>", NUL included */

/* What tf_plaus_step decided about one value. */
typedef enum tf_plaus_verdict {
    TF_PLAUS_OK = 0,        /* within range, and within max_jump of the last good value */
    TF_PLAUS_CONFIRMED = 1, /* a held jump that this value confirms: accepted */
    TF_PLAUS_RANGE = -1,    /* not finite, or outside [min, max] */
    TF_PLAUS_JUMP = -2      /* moved more than max_jump: held until the next value confirms it */
} tf_plaus_verdict;

/* The limits of one series. */
typedef struct tf_plaus_limits {
    double min;       /* lowest sane value (> 0) */
    double max;       /* highest sane value */
    double max_jump;  /* largest relative move accepted unconfirmed (0.2 = 20 %); 0 = no check */
    double tolerance; /* a jump is confirmed when the next value is this close to it (0.02) */
} tf_plaus_limits;

/* The memory of one series: 0 stands for "none" (every accepted value is > 0). */
typedef struct tf_plaus_state {
    double last; /* last accepted value */
    double held; /* a jumped value waiting for its confirmation */
} tf_plaus_state;

/* |a - b| / b, the relative distance of a from the reference b (> 0). */
static inline double tf_plaus_rel(double a, double b)
{
    return fabs(a - b) / b;
}

/* The pure rule, for one value of one series; updates `s`. A value out of range also drops a
 * held jump: it is not the "next update" that could confirm it. */
static inline tf_plaus_verdict tf_plaus_step(const tf_plaus_limits *l, tf_plaus_state *s, double v)
{
    if (!isfinite(v) || !(v >= l->min && v <= l->max)) {
        s->held = 0;
        return TF_PLAUS_RANGE;
    }
    if (s->last <= 0 || l->max_jump <= 0 || tf_plaus_rel(v, s->last) <= l->max_jump) {
        s->last = v;
        s->held = 0;
        return TF_PLAUS_OK;
    }
    if (s->held > 0 && tf_plaus_rel(v, s->held) <= l->tolerance) {
        s->last = v;
        s->held = 0;
        return TF_PLAUS_CONFIRMED;
    }
    s->held = v;
    return TF_PLAUS_JUMP;
}

/* The `reason` label of a rejection. */
static inline const char *tf_plaus_reason(tf_plaus_verdict v)
{
    return v == TF_PLAUS_RANGE ? "range" : v == TF_PLAUS_JUMP ? "jump" : "ok";
}

/* A guard's configuration, read by the plugin from its own options (each plugin declares them
 * with its venue's defaults; see TF_PLAUS_OPTIONS). */
typedef struct tf_plaus_config {
    const char *exchange; /* `exchange` label and message prefix; borrowed, outlives the guard */
    const char *prefix;   /* option name prefix in messages: "price" (price_min...) or "rate" */
    double min, max;      /* range of a symbol that `bounds` does not list */
    const json_t *bounds; /* {SYMBOL: [min, max]} or NULL; borrowed only during tf_plaus_init */
    double max_jump;
    double tolerance;
} tf_plaus_config;

typedef struct tf_plaus_bound {
    char symbol[TF_PLAUS_KEY_MAX];
    double min, max;
} tf_plaus_bound;

typedef struct tf_plaus_series {
    char key[TF_PLAUS_KEY_MAX]; /* "<symbol>/<field>" */
    tf_plaus_state state;
} tf_plaus_series;

/* One source's guard. Owns its arrays (tf_plaus_free). */
typedef struct tf_plaus {
    const tf_host *host; /* borrowed */
    tf_instance *self;   /* borrowed */
    tf_plaus_config cfg; /* bounds is NULL after init: the table below holds them */
    tf_plaus_bound *bounds;
    size_t n_bounds;
    tf_plaus_series *series;
    size_t n_series, cap_series;
    tf_metric *rejected;
    int64_t log_next_ms;           /* monotonic ms before which rejections are only counted */
    uint64_t log_quiet;            /* rejections not logged since the last line */
    uint64_t n_rejected;           /* every rejection, for tests and summaries */
    uint64_t n_confirmed;          /* jumps accepted once confirmed */
    tf_plaus_verdict last_verdict; /* of the last tf_plaus_check, for the caller's messages */
} tf_plaus;

/* Descriptions of the options a guarded source declares in its own table, with its venue's
 * defaults (docs/plugin-sdk.md, "Plausibility"): price_min, price_max (TF_OPT_DOUBLE),
 * price_bounds (TF_OPT_MAP of TF_OPT_LIST), max_jump and jump_tolerance (TF_OPT_DOUBLE). */
#define TF_PLAUS_DOC_MIN                                                                           \
    "Lowest sane price of a symbol that price_bounds does not list; a lower one is rejected "      \
    "(tickflow_source_rejected_total{reason=\"range\"}), never emitted"
#define TF_PLAUS_DOC_MAX                                                                           \
    "Highest sane price of a symbol that price_bounds does not list; a higher one is rejected"
#define TF_PLAUS_DOC_BOUNDS                                                                        \
    "Sane range per symbol, {BTC: [min, max]}, of every price field of its records (last, bid, "   \
    "ask, mark, index); replaces price_min/price_max for that symbol"
#define TF_PLAUS_DOC_JUMP                                                                          \
    "Largest move of a price field from its last accepted value published at once (0.2 = 20 "      \
    "%); a larger one is held back (reason=\"jump\") until the next update confirms it within "    \
    "jump_tolerance. 0 = no jump check"
#define TF_PLAUS_DOC_TOLERANCE                                                                     \
    "How close (relative) the next update must be to a held jump to confirm it"

/* Reads the options above into a config (prefix "price"). */
static inline tf_plaus_config tf_plaus_config_from(const tf_host *h, const tf_options *o,
                                                   const char *exchange)
{
    tf_plaus_config c = {.exchange = exchange,
                         .prefix = "price",
                         .min = h->opt_double(o, "price_min"),
                         .max = h->opt_double(o, "price_max"),
                         .bounds = h->opt_json(o, "price_bounds"),
                         .max_jump = h->opt_double(o, "max_jump"),
                         .tolerance = h->opt_double(o, "jump_tolerance")};
    return c;
}

/* A [min, max] pair: two numbers, 0 < min < max. */
static inline bool tf_plaus_range_ok(double min, double max)
{
    return isfinite(min) && isfinite(max) && min > 0 && min < max;
}

static inline int tf_plaus_init_bound(tf_plaus *g, const char *sym, const json_t *v)
{
    tf_plaus_bound *b = &g->bounds[g->n_bounds];
    const json_t *lo = json_array_get(v, 0);
    const json_t *hi = json_array_get(v, 1);
    bool ok = json_array_size(v) == 2 && json_is_number(lo) && json_is_number(hi) &&
              strlen(sym) < sizeof b->symbol;
    if (ok)
        ok = tf_plaus_range_ok(json_number_value(lo), json_number_value(hi));
    if (!ok) {
        g->host->log(g->self, TF_LOG_ERROR,
                     "%s_bounds.%s: expected [min, max] with 0 < min < max (e.g. [20000000, "
                     "1000000000]), found %s",
                     g->cfg.prefix, sym, json_is_array(v) ? "another list" : "a scalar");
        return TF_EINVAL;
    }
    snprintf(b->symbol, sizeof b->symbol, "%s", sym);
    b->min = json_number_value(lo);
    b->max = json_number_value(hi);
    g->n_bounds++;
    return TF_OK;
}

static inline int tf_plaus_check_config(tf_plaus *g)
{
    const tf_plaus_config *c = &g->cfg;
    if (!tf_plaus_range_ok(c->min, c->max)) {
        g->host->log(g->self, TF_LOG_ERROR,
                     "%s_min, %s_max: expected 0 < min < max, found %.17g and %.17g", c->prefix,
                     c->prefix, c->min, c->max);
        return TF_EINVAL;
    }
    if (!(c->max_jump >= 0 && isfinite(c->max_jump)) ||
        !(c->tolerance >= 0 && c->tolerance < c->max_jump + (c->max_jump == 0))) {
        g->host->log(g->self, TF_LOG_ERROR,
                     "max_jump, jump_tolerance: expected max_jump >= 0 and 0 <= jump_tolerance < "
                     "max_jump, found %.17g and %.17g",
                     c->max_jump, c->tolerance);
        return TF_EINVAL;
    }
    return TF_OK;
}

/* Validates cfg (logging what is wrong) and registers the metric. TF_OK, TF_EINVAL, TF_ENOMEM.
 * The guard is zeroed first, so tf_plaus_free is safe after any result. */
static inline int tf_plaus_init(tf_plaus *g, const tf_host *h, tf_instance *self,
                                const tf_plaus_config *cfg)
{
    static const char *const labels[] = {"exchange", "symbol", "reason", NULL};
    memset(g, 0, sizeof *g); /* no compound literal: the header stays valid C++ */
    g->host = h;
    g->self = self;
    g->cfg = *cfg;
    g->cfg.bounds = NULL;
    int rc = tf_plaus_check_config(g);
    size_t n = json_object_size(cfg->bounds);
    if (rc == TF_OK && n > 0) {
        g->bounds = (tf_plaus_bound *)calloc(n, sizeof *g->bounds);
        rc = g->bounds ? TF_OK : TF_ENOMEM;
    }
    const char *sym;
    const json_t *v;
    json_object_foreach((json_t *)cfg->bounds, sym, v)
    {
        if (rc == TF_OK)
            rc = tf_plaus_init_bound(g, sym, v);
    }
    if (rc != TF_OK)
        return rc;
    g->rejected = h->metric_register(self, TF_METRIC_COUNTER, "tickflow_source_rejected_total",
                                     "Prices a source refused to emit, by reason: range or jump.",
                                     labels, NULL, 0);
    return TF_OK;
}

static inline void tf_plaus_free(tf_plaus *g)
{
    free(g->bounds);
    free(g->series);
    g->bounds = NULL;
    g->series = NULL;
    g->n_bounds = g->n_series = g->cap_series = 0;
}

/* The limits of `symbol`: its price_bounds entry, else price_min/price_max. */
static inline tf_plaus_limits tf_plaus_limits_of(const tf_plaus *g, const char *symbol)
{
    tf_plaus_limits l = {g->cfg.min, g->cfg.max, g->cfg.max_jump, g->cfg.tolerance};
    for (size_t i = 0; i < g->n_bounds; i++) {
        if (strcmp(g->bounds[i].symbol, symbol) == 0) {
            l.min = g->bounds[i].min;
            l.max = g->bounds[i].max;
        }
    }
    return l;
}

/* The state of (symbol, field), created on first use; NULL without memory. */
static inline tf_plaus_state *tf_plaus_state_of(tf_plaus *g, const char *symbol, const char *field)
{
    char key[TF_PLAUS_KEY_MAX];
    snprintf(key, sizeof key, "%s/%s", symbol, field);
    for (size_t i = 0; i < g->n_series; i++) {
        if (strcmp(g->series[i].key, key) == 0)
            return &g->series[i].state;
    }
    if (g->n_series == g->cap_series) {
        size_t cap = g->cap_series ? g->cap_series * 2 : 16;
        tf_plaus_series *grown = (tf_plaus_series *)realloc(g->series, cap * sizeof *grown);
        if (!grown)
            return NULL;
        g->series = grown;
        g->cap_series = cap;
    }
    tf_plaus_series *s = &g->series[g->n_series++];
    memset(s, 0, sizeof *s);
    memcpy(s->key, key, sizeof key);
    return &s->state;
}

/* Counts a rejection and logs it unless another line was logged less than
 * TF_PLAUS_LOG_EVERY_MS ago (those are only counted, and their number said in the next line). */
static inline void tf_plaus_reject(tf_plaus *g, const char *symbol, const char *field, double v,
                                   tf_plaus_verdict verdict, const tf_plaus_limits *l,
                                   const tf_plaus_state *before)
{
    const tf_host *h = g->host;
    const char *values[] = {g->cfg.exchange, symbol, tf_plaus_reason(verdict), NULL};
    if (g->rejected)
        h->metric_add(g->rejected, g->self, values, 1);
    g->n_rejected++;
    int64_t now = h->monotonic_ms();
    if (now < g->log_next_ms) {
        g->log_quiet++;
        return;
    }
    g->log_next_ms = now + TF_PLAUS_LOG_EVERY_MS;
    char why[160];
    if (verdict == TF_PLAUS_RANGE)
        snprintf(why, sizeof why, "expected %.6g to %.6g", l->min, l->max);
    else
        snprintf(why, sizeof why,
                 "expected at most %.3g %% from the last accepted %.10g; held until the next "
                 "update confirms it",
                 l->max_jump * 100, before->last);
    h->log(g->self, TF_LOG_WARN,
           "%s %s %s: rejected %.10g (%s): %s; %llu more rejection(s) not logged in the last "
           "%d s (tickflow_source_rejected_total)",
           g->cfg.exchange, symbol, field, v, tf_plaus_reason(verdict), why,
           (unsigned long long)g->log_quiet, TF_PLAUS_LOG_EVERY_MS / 1000);
    g->log_quiet = 0;
}

/* Checks one price field of one symbol: TF_OK (emit it), TF_EVALUE (rejected: counted and
 * logged here, so the caller just skips the record) or TF_ENOMEM. */
static inline int tf_plaus_check(tf_plaus *g, const char *symbol, const char *field, double v)
{
    tf_plaus_state *s = tf_plaus_state_of(g, symbol, field);
    if (!s)
        return TF_ENOMEM;
    tf_plaus_limits l = tf_plaus_limits_of(g, symbol);
    tf_plaus_state before = *s;
    tf_plaus_verdict verdict = tf_plaus_step(&l, s, v);
    g->last_verdict = verdict;
    if (verdict == TF_PLAUS_CONFIRMED) {
        g->n_confirmed++;
        g->host->log(g->self, TF_LOG_INFO,
                     "%s %s %s: accepted %.10g, a move of %.3g %% from %.10g confirmed by two "
                     "updates",
                     g->cfg.exchange, symbol, field, v, tf_plaus_rel(v, before.last) * 100,
                     before.last);
        return TF_OK;
    }
    if (verdict == TF_PLAUS_OK)
        return TF_OK;
    tf_plaus_reject(g, symbol, field, v, verdict, &l, &before);
    return TF_EVALUE;
}

#ifdef __cplusplus
}
#endif
#endif
