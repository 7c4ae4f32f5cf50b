/* tf_fx_model: seeded random walks advanced lazily in 100 ms steps, plus frozen overrides. */
#include "tf_fx_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tf_fx_util.h"

/* Per-step sizes. A 100 ms step of 0.04 % keeps BTC moving a few dollars per request without
 * leaving its band; the FX step is the ±0.05 % the brief asks for. */
#define TF_FX_PRICE_STEP   0.0004
#define TF_FX_PRICE_BAND   0.05
#define TF_FX_FX_STEP      0.0005
#define TF_FX_FX_LO        1350.0
#define TF_FX_FX_HI        1450.0
#define TF_FX_PREM_STEP    0.02
#define TF_FX_PREM_LO      (-1.0)
#define TF_FX_PREM_HI      4.0
#define TF_FX_TETHER_START 2.5
#define TF_FX_TETHER_STEP  0.01
#define TF_FX_TETHER_LO    1.5
#define TF_FX_TETHER_HI    3.5
#define TF_FX_FUNDING      0.0001
/* Catching up after a long idle period: older steps are dropped rather than replayed, so a
 * request after a day of silence does not spin for seconds. */
#define TF_FX_MAX_CATCHUP 36000

static const struct tf_fx_symbol_info tf_fx_symbols[TF_FX_NSYM] = {
    {"BTC", 95000.0, 0.1, 2, 3, 5.0, 900.0},
    {"ETH", 3500.0, 0.01, 2, 3, 40.0, 14000.0},
    {"XRP", 2.3, 0.0001, 4, 1, 20000.0, 21000000.0},
    {"SOL", 180.0, 0.01, 2, 2, 300.0, 600000.0},
    {"DOGE", 0.4, 0.00001, 5, 0, 90000.0, 300000000.0},
    {"ADA", 0.9, 0.0001, 4, 0, 30000.0, 50000000.0},
    {"USDT", 1.0, 0.0001, 4, 2, 100000.0, 40000000.0},
};

struct tf_fx_model {
    uint64_t rng_state;
    uint64_t rng_inc;
    int64_t origin_ms;
    int64_t steps;
    double g[TF_FX_NSYM]; /* walking global price */
    double lo[TF_FX_NSYM];
    double hi[TF_FX_NSYM];
    struct tf_fx_quote fixed[TF_FX_NSYM]; /* served as is while .frozen */
    double usdkrw, fx_lo, fx_hi;
    int usdkrw_frozen;
    double premium, prem_lo, prem_hi;
    int premium_frozen;
    double tether;
};

const struct tf_fx_symbol_info *tf_fx_symbol(int sym)
{
    if (sym < 0 || sym >= TF_FX_NSYM) {
        return NULL;
    }
    return &tf_fx_symbols[sym];
}

int tf_fx_symbol_find(const char *name)
{
    for (int i = 0; i < TF_FX_NSYM; i++) {
        if (tf_fx_streq_ci(name, tf_fx_symbols[i].name)) {
            return i;
        }
    }
    return -1;
}

double tf_fx_krw_tick(double krw, int *dp)
{
    /* Bithumb/Upbit KRW order-price units; below 100 KRW we stop at 1 decimal (the brief
     * allows it and it keeps every KRW price exact in a double). */
    static const struct {
        double from, tick;
        int dp;
    } units[] = {
        {2000000, 1000, 0}, {1000000, 500, 0}, {500000, 100, 0}, {100000, 50, 0},
        {10000, 10, 0},     {1000, 1, 0},      {0, 0.1, 1},
    };
    size_t n = sizeof(units) / sizeof(units[0]);
    for (size_t i = 0; i < n; i++) {
        if (krw >= units[i].from) {
            *dp = units[i].dp;
            return units[i].tick;
        }
    }
    *dp = units[n - 1].dp;
    return units[n - 1].tick;
}

/* PCG32 (O'Neill, pcg-random.org): small, seedable, same sequence on every platform. */
static uint32_t tf_fx_rng_next(struct tf_fx_model *m)
{
    uint64_t old = m->rng_state;
    m->rng_state = old * 6364136223846793005ULL + m->rng_inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

static void tf_fx_rng_seed(struct tf_fx_model *m, uint64_t seed)
{
    m->rng_state = 0;
    m->rng_inc = (seed << 1u) | 1u;
    tf_fx_rng_next(m);
    m->rng_state += seed;
    tf_fx_rng_next(m);
}

/* Uniform in [-1, 1). */
static double tf_fx_rng_unit(struct tf_fx_model *m)
{
    return (double)tf_fx_rng_next(m) / 2147483648.0 - 1.0;
}

/* Reflects v back into [lo, hi] so the walk stays in its band without sticking to an edge. */
static double tf_fx_bounded(double v, double lo, double hi)
{
    if (v < lo) {
        v = lo + (lo - v);
    }
    if (v > hi) {
        v = hi - (v - hi);
    }
    return fmin(fmax(v, lo), hi);
}

static void tf_fx_set_band(struct tf_fx_model *m, int sym, double centre)
{
    m->g[sym] = centre;
    m->lo[sym] = centre * (1.0 - TF_FX_PRICE_BAND);
    m->hi[sym] = centre * (1.0 + TF_FX_PRICE_BAND);
}

struct tf_fx_model *tf_fx_model_create(uint64_t seed, double usdkrw, double premium_pct,
                                       int64_t mono_ms)
{
    struct tf_fx_model *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    tf_fx_rng_seed(m, seed);
    m->origin_ms = mono_ms;
    for (int i = 0; i < TF_FX_NSYM; i++) {
        tf_fx_set_band(m, i, tf_fx_symbols[i].base_usdt);
    }
    /* A start value outside the default band widens the band instead of being bounced. */
    m->usdkrw = usdkrw;
    m->fx_lo = fmin(TF_FX_FX_LO, usdkrw);
    m->fx_hi = fmax(TF_FX_FX_HI, usdkrw);
    m->premium = premium_pct;
    m->prem_lo = fmin(TF_FX_PREM_LO, premium_pct);
    m->prem_hi = fmax(TF_FX_PREM_HI, premium_pct);
    m->tether = TF_FX_TETHER_START;
    return m;
}

void tf_fx_model_destroy(struct tf_fx_model *m)
{
    free(m);
}

/* Every walk draws its number even when frozen, so freezing one symbol does not change the
 * path of the others for a given seed. */
static void tf_fx_model_step(struct tf_fx_model *m)
{
    for (int i = 0; i < TF_FX_USDT; i++) {
        double u = tf_fx_rng_unit(m);
        if (!m->fixed[i].frozen) {
            m->g[i] = tf_fx_bounded(m->g[i] * (1.0 + TF_FX_PRICE_STEP * u), m->lo[i], m->hi[i]);
        }
    }
    double u = tf_fx_rng_unit(m);
    if (!m->usdkrw_frozen) {
        m->usdkrw = tf_fx_bounded(m->usdkrw * (1.0 + TF_FX_FX_STEP * u), m->fx_lo, m->fx_hi);
    }
    u = tf_fx_rng_unit(m);
    if (!m->premium_frozen) {
        m->premium = tf_fx_bounded(m->premium + TF_FX_PREM_STEP * u, m->prem_lo, m->prem_hi);
    }
    u = tf_fx_rng_unit(m);
    m->tether = tf_fx_bounded(m->tether + TF_FX_TETHER_STEP * u, TF_FX_TETHER_LO, TF_FX_TETHER_HI);
}

static void tf_fx_model_advance(struct tf_fx_model *m, int64_t mono_ms)
{
    int64_t target = (mono_ms - m->origin_ms) / TF_FX_STEP_MS;
    if (target - m->steps > TF_FX_MAX_CATCHUP) {
        m->steps = target - TF_FX_MAX_CATCHUP;
    }
    while (m->steps < target) {
        tf_fx_model_step(m);
        m->steps++;
    }
}

static double tf_fx_round_tick(double v, double tick, int dp)
{
    return tf_fx_round_dp(round(v / tick) * tick, dp);
}

static double tf_fx_derive_krw_raw(const struct tf_fx_model *m, int sym, double usdt)
{
    if (sym == TF_FX_USDT) {
        return m->usdkrw * (1.0 + m->tether / 100.0);
    }
    return usdt * m->usdkrw * (1.0 + m->premium / 100.0);
}

/* The KRW book is one tick either side of the last trade, so mid == last. */
static void tf_fx_set_krw(struct tf_fx_quote *q, double krw_raw)
{
    q->krw_tick = tf_fx_krw_tick(krw_raw, &q->krw_dp);
    q->krw = tf_fx_round_tick(krw_raw, q->krw_tick, q->krw_dp);
    q->krw_bid = tf_fx_round_dp(q->krw - q->krw_tick, q->krw_dp);
    q->krw_ask = tf_fx_round_dp(q->krw + q->krw_tick, q->krw_dp);
}

/* Global side around a given last: one tick either side, mark a hair above, index a bit
 * higher (a perp usually trades slightly under its spot index). */
static void tf_fx_set_global(struct tf_fx_quote *q, int sym, double usdt)
{
    const struct tf_fx_symbol_info *info = &tf_fx_symbols[sym];
    q->usdt = usdt;
    if (sym == TF_FX_USDT) {
        q->bid = q->ask = q->mark = q->index = usdt;
        return;
    }
    q->bid = tf_fx_round_dp(usdt - info->usdt_tick, 10);
    q->ask = tf_fx_round_dp(usdt + info->usdt_tick, 10);
    q->mark = tf_fx_round_dp(usdt * 1.00004, 8);
    q->index = tf_fx_round_dp(usdt * 1.00026, 8);
}

static void tf_fx_quote_now(const struct tf_fx_model *m, int sym, struct tf_fx_quote *q)
{
    if (m->fixed[sym].frozen) {
        *q = m->fixed[sym];
        return;
    }
    const struct tf_fx_symbol_info *info = &tf_fx_symbols[sym];
    double usdt = 1.0;
    if (sym != TF_FX_USDT) {
        usdt = tf_fx_round_tick(m->g[sym], info->usdt_tick, info->usdt_dp);
    }
    tf_fx_set_global(q, sym, usdt);
    tf_fx_set_krw(q, tf_fx_derive_krw_raw(m, sym, usdt));
    q->frozen = 0;
}

void tf_fx_model_snapshot(struct tf_fx_model *m, int64_t mono_ms, int64_t wall_ms,
                          struct tf_fx_snapshot *out)
{
    tf_fx_model_advance(m, mono_ms);
    out->now_ms = wall_ms;
    out->step = m->steps;
    out->usdkrw = m->usdkrw;
    out->premium_pct = m->premium;
    out->tether_pct = m->tether;
    out->funding = TF_FX_FUNDING;
    out->usdkrw_frozen = m->usdkrw_frozen;
    out->premium_frozen = m->premium_frozen;
    for (int i = 0; i < TF_FX_NSYM; i++) {
        tf_fx_quote_now(m, i, &out->q[i]);
    }
}

static int tf_fx_check_value(int has, double v, int must_be_positive, const char *name, char *err,
                             size_t errlen)
{
    if (!has) {
        return 0;
    }
    if (!isfinite(v) || (must_be_positive && v <= 0.0)) {
        snprintf(err, errlen, "field \"%s\": expected a %s number, got %g", name,
                 must_be_positive ? "positive finite" : "finite", v);
        return -1;
    }
    return 0;
}

static int tf_fx_fix_validate(const struct tf_fx_fix *f, char *err, size_t errlen)
{
    int rc = 0;
    rc |= tf_fx_check_value(f->has_usdt, f->usdt, 1, "usdt", err, errlen);
    rc |= tf_fx_check_value(f->has_bid, f->bid, 1, "bid", err, errlen);
    rc |= tf_fx_check_value(f->has_ask, f->ask, 1, "ask", err, errlen);
    rc |= tf_fx_check_value(f->has_mark, f->mark, 1, "mark", err, errlen);
    rc |= tf_fx_check_value(f->has_krw, f->krw, 1, "krw", err, errlen);
    rc |= tf_fx_check_value(f->has_krw_bid, f->krw_bid, 1, "krw_bid", err, errlen);
    rc |= tf_fx_check_value(f->has_krw_ask, f->krw_ask, 1, "krw_ask", err, errlen);
    rc |= tf_fx_check_value(f->has_usdkrw, f->usdkrw, 1, "usdkrw", err, errlen);
    rc |= tf_fx_check_value(f->has_premium, f->premium_pct, 0, "premium_pct", err, errlen);
    if (rc == 0 && f->sym >= TF_FX_NSYM) {
        snprintf(err, errlen, "unknown symbol index %d", f->sym);
        rc = -1;
    }
    return rc == 0 ? 0 : -1;
}

static void tf_fx_fix_fx(struct tf_fx_model *m, const struct tf_fx_fix *f)
{
    if (f->has_usdkrw) {
        m->usdkrw = f->usdkrw;
        m->usdkrw_frozen = 1;
        m->fx_lo = fmin(m->fx_lo, f->usdkrw);
        m->fx_hi = fmax(m->fx_hi, f->usdkrw);
    }
    if (f->has_premium) {
        m->premium = f->premium_pct;
        m->premium_frozen = 1;
        m->prem_lo = fmin(m->prem_lo, f->premium_pct);
        m->prem_hi = fmax(m->prem_hi, f->premium_pct);
    }
}

int tf_fx_model_fix(struct tf_fx_model *m, const struct tf_fx_fix *f, int64_t mono_ms, char *err,
                    size_t errlen)
{
    if (tf_fx_fix_validate(f, err, errlen) != 0) {
        return -1;
    }
    tf_fx_model_advance(m, mono_ms);
    /* FX first: a KRW price re-derived below uses the new rate. */
    tf_fx_fix_fx(m, f);
    if (f->sym < 0) {
        return 0;
    }
    struct tf_fx_quote q;
    tf_fx_quote_now(m, f->sym, &q);
    if (f->has_usdt) {
        tf_fx_set_global(&q, f->sym, f->usdt);
    }
    if (f->has_krw) {
        q.krw = f->krw;
        q.krw_tick = tf_fx_krw_tick(f->krw, &q.krw_dp);
        q.krw_bid = tf_fx_round_dp(q.krw - q.krw_tick, 10);
        q.krw_ask = tf_fx_round_dp(q.krw + q.krw_tick, 10);
    } else if (f->has_usdt) {
        tf_fx_set_krw(&q, tf_fx_derive_krw_raw(m, f->sym, q.usdt));
    }
    q.bid = f->has_bid ? f->bid : q.bid;
    q.ask = f->has_ask ? f->ask : q.ask;
    q.mark = f->has_mark ? f->mark : q.mark;
    q.krw_bid = f->has_krw_bid ? f->krw_bid : q.krw_bid;
    q.krw_ask = f->has_krw_ask ? f->krw_ask : q.krw_ask;
    q.frozen = 1;
    m->fixed[f->sym] = q;
    return 0;
}

static void tf_fx_unfreeze_sym(struct tf_fx_model *m, int sym)
{
    if (m->fixed[sym].frozen && sym != TF_FX_USDT) {
        /* Resume from the fixed price, with the band re-centred on it. */
        tf_fx_set_band(m, sym, m->fixed[sym].usdt);
    }
    m->fixed[sym].frozen = 0;
}

int tf_fx_model_unfreeze(struct tf_fx_model *m, const char *what)
{
    int all = what != NULL && what[0] == '*' && what[1] == '\0';
    int matched = all;
    if (all || tf_fx_streq_ci(what, "USDKRW")) {
        m->usdkrw_frozen = 0;
        matched = 1;
    }
    if (all || tf_fx_streq_ci(what, "PREMIUM")) {
        m->premium_frozen = 0;
        matched = 1;
    }
    for (int i = 0; i < TF_FX_NSYM; i++) {
        if (all || tf_fx_streq_ci(what, tf_fx_symbols[i].name)) {
            tf_fx_unfreeze_sym(m, i);
            matched = 1;
        }
    }
    return matched ? 0 : -1;
}
