/* tf_fx_model: the fake market. Owns the seeded random walks (global USDT prices, USD/KRW, the
 * kimchi and tether premiums), advances them lazily in 100 ms steps, and keeps the exact
 * values a test fixed ("frozen" symbols). Not thread-safe: the server holds its lock. */
#ifndef TF_FX_MODEL_H
#define TF_FX_MODEL_H

#include <stddef.h>
#include <stdint.h>

enum tf_fx_sym {
    TF_FX_BTC,
    TF_FX_ETH,
    TF_FX_XRP,
    TF_FX_SOL,
    TF_FX_DOGE,
    TF_FX_ADA,
    TF_FX_USDT, /* KRW side only: its USDT price is 1 */
    TF_FX_NSYM
};

#define TF_FX_STEP_MS 100

struct tf_fx_symbol_info {
    const char *name;
    double base_usdt; /* where the walk starts and stays near */
    double usdt_tick; /* global tick */
    int usdt_dp;      /* decimals the global venues print */
    int qty_dp;       /* decimals of quantities */
    double qty_scale; /* typical top-of-book quantity */
    double volume;    /* typical daily volume in coins */
};

/* One symbol at one instant: everything an endpoint prints is derived from these. */
struct tf_fx_quote {
    double usdt, bid, ask; /* global last and top of book */
    double mark, index;    /* perp mark and index price */
    double krw, krw_bid, krw_ask;
    double krw_tick;
    int krw_dp;
    int frozen;
};

struct tf_fx_snapshot {
    int64_t now_ms; /* wall clock for payload timestamps */
    int64_t step;   /* walk steps taken so far */
    double usdkrw;
    double premium_pct; /* drift target; the served premium follows from the prices */
    double tether_pct;
    double funding;
    int usdkrw_frozen;
    int premium_frozen;
    struct tf_fx_quote q[TF_FX_NSYM];
};

/* An exact override from --price or POST /admin/price; has_* says which fields were given.
 * sym < 0 means "no symbol" (FX or premium only). */
struct tf_fx_fix {
    int sym;
    int has_usdt, has_bid, has_ask, has_mark, has_krw, has_krw_bid, has_krw_ask;
    int has_usdkrw, has_premium;
    double usdt, bid, ask, mark, krw, krw_bid, krw_ask, usdkrw, premium_pct;
};

struct tf_fx_model;

const struct tf_fx_symbol_info *tf_fx_symbol(int sym);
int tf_fx_symbol_find(const char *name); /* case-insensitive; -1 if unknown */

/* KRW tick for a price level (Bithumb/Upbit style) and how many decimals it needs. */
double tf_fx_krw_tick(double krw, int *dp);

struct tf_fx_model *tf_fx_model_create(uint64_t seed, double usdkrw, double premium_pct,
                                       int64_t mono_ms);
void tf_fx_model_destroy(struct tf_fx_model *m);

/* Advances the walks to mono_ms and fills out; wall_ms only stamps the snapshot. */
void tf_fx_model_snapshot(struct tf_fx_model *m, int64_t mono_ms, int64_t wall_ms,
                          struct tf_fx_snapshot *out);

/* Applies fix at mono_ms and freezes what it touched. Fields not given keep their current
 * value, except the derived ones (bid/ask, mark, KRW side) which follow a new usdt or krw.
 * Returns 0, or -1 with a message in err when a value is not a positive finite number. */
int tf_fx_model_fix(struct tf_fx_model *m, const struct tf_fx_fix *fix, int64_t mono_ms, char *err,
                    size_t errlen);

/* what: a symbol name, "USDKRW", "PREMIUM" or "*". Returns 0, or -1 if what is unknown. */
int tf_fx_model_unfreeze(struct tf_fx_model *m, const char *what);

#endif
