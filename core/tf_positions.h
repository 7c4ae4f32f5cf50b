/*
 * Open arbitrage positions (docs/positions.md): the PnL arithmetic, the position store in
 * Redis (hash <p>:position:<id>, set <p>:positions:open, counter <p>:positions:seq) and the
 * `tickflow positions open|close|list` command. The store functions take a tf_redis so the
 * HTTP API can reuse them; the `positions` transform plugin implements the same formulas.
 */
#ifndef TF_POSITIONS_H
#define TF_POSITIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "tf_diag.h"
#include "tf_plugin.h"
#include "tf_redis.h"

#define TF_POSITION_ID_MAX       24 /* "pos-" + a decimal uint64 + NUL */
#define TF_POSITION_SYMBOL_MAX   32
#define TF_POSITION_EXCHANGE_MAX 64

typedef enum tf_direction {
    TF_DIRECTION_LONG_KRW = 1,  /* long_krw_short_global: bought KRW spot, sold the global perp;
                                   profits when the premium rises */
    TF_DIRECTION_SHORT_KRW = 2, /* short_krw_long_global: the reverse */
} tf_direction;

/* The prices one side of a trade (entry or exit) executed at. */
typedef struct tf_fill {
    double krw_price;    /* KRW per base unit */
    double global_price; /* USDT (≈ USD) per base unit */
    double usdkrw;       /* KRW per 1 USD at that moment */
} tf_fill;

/* Top of both books and the rate at one moment (a `premium` record's executable fields). */
typedef struct tf_book {
    double krw_bid, krw_ask;
    double global_bid, global_ask;
    double usdkrw;
} tf_book;

typedef struct tf_position {
    char id[TF_POSITION_ID_MAX]; /* "pos-<n>" */
    char symbol[TF_POSITION_SYMBOL_MAX];
    char krw_exchange[TF_POSITION_EXCHANGE_MAX];
    char global_exchange[TF_POSITION_EXCHANGE_MAX];
    tf_direction direction;
    double size; /* base units, > 0 */
    double entry_premium_pct;
    tf_fill entry;
    int64_t opened_at; /* epoch ms */
    bool open;
    /* Closed positions only (zero while open). */
    int64_t closed_at;
    double exit_premium_pct;
    tf_fill exit;
    double realized_pnl_krw;
    double realized_pnl_pct_points;
} tf_position;

/* What a position is worth when closed at `exit`. */
typedef struct tf_pnl {
    double premium_pct;    /* premium of the exit fill */
    double pnl_pct_points; /* premium change in the position's favour */
    double pnl_krw;
} tf_pnl;

/* "long_krw_short_global" / "short_krw_long_global"; "?" for anything else. */
const char *tf_direction_name(tf_direction d);
/* TF_OK and *out, or TF_EINVAL for any other text. */
int tf_direction_parse(const char *text, tf_direction *out);

/* (krw / (global * usdkrw) - 1) * 100; NAN unless every input is finite and > 0. */
double tf_premium_pct(double krw, double global, double usdkrw);
/* The executable prices of entering / leaving a position of direction `d` against book `b`:
 * long_krw_short_global enters at krw_ask / global_bid and exits at krw_bid / global_ask;
 * short_krw_long_global the reverse. */
tf_fill tf_position_entry_fill(tf_direction d, const tf_book *b);
tf_fill tf_position_exit_fill(tf_direction d, const tf_book *b);
/* PnL of `p` (direction, size, entry) if closed at `exit` (exit->usdkrw converts the global
 * leg). TF_OK, or TF_EVALUE when an input is not finite and > 0. */
int tf_position_pnl(const tf_position *p, const tf_fill *exit, tf_pnl *out);

/* "pos-<n>" with n a positive decimal without leading zeros. */
bool tf_position_id_valid(const char *id);

/* ---- the store. `prefix` is the runtime's redis prefix ("tf"). Errors come back as a
 * status and a message in err ("what was expected, what was found"). ---- */

/* Opens a position from p's symbol, krw_exchange, global_exchange, direction, size, entry and
 * opened_at (0 = now). Sets p->id, p->entry_premium_pct, p->opened_at, p->open. Writes the hash
 * and the open set in one MULTI/EXEC. TF_OK, TF_EINVAL (an input field is invalid), TF_EREDIS. */
int tf_position_open(tf_redis *r, const char *prefix, tf_position *p, char *err, size_t err_size);
/* Closes open position `id` at `exit` (closed_at 0 = now): records the exit fill, premium and
 * realized PnL and leaves the open set, atomically (a Lua script refuses a position that is
 * not open, so two racing closes cannot both succeed). Fills *out with the closed position.
 * TF_OK, TF_ENOTFOUND (no such position), TF_EINVAL (bad id or fill), TF_ECONFLICT (already
 * closed), TF_EVALUE (the stored hash is malformed), TF_EREDIS. */
int tf_position_close(tf_redis *r, const char *prefix, const char *id, const tf_fill *exit,
                      int64_t closed_at, tf_position *out, char *err, size_t err_size);
/* TF_OK, TF_ENOTFOUND, TF_EINVAL (bad id), TF_EVALUE (malformed hash), TF_EREDIS. */
int tf_position_get(tf_redis *r, const char *prefix, const char *id, tf_position *out, char *err,
                    size_t err_size);
/* The open positions (or every position when `all`), sorted by id number. *out is malloc'd
 * (caller frees; NULL when *n is 0). A malformed hash is skipped with a message in `warnings`
 * (may be NULL). TF_OK, TF_EREDIS, TF_ENOMEM. */
int tf_position_list(tf_redis *r, const char *prefix, bool all, tf_position **out, size_t *n,
                     tf_diag *warnings, char *err, size_t err_size);
/* The `position_live` JSON the redis sink keeps at <p>:position:<id>:live, one pipelined GET
 * per open position: live[i] is a new reference or NULL (closed, absent, expired or not JSON).
 * TF_OK or TF_EREDIS (every live[i] NULL). */
int tf_position_live(tf_redis *r, const char *prefix, const tf_position *ps, size_t n,
                     json_t **live);
/* The executable book of <p>:premium:<krw>:<global>:<symbol> (the redis sink's copy of the
 * premium transform's record). TF_OK, TF_ENOTFOUND (key absent or expired), TF_EVALUE (stale,
 * or a field missing or not a number > 0), TF_EREDIS. */
int tf_position_book(tf_redis *r, const char *prefix, const char *krw_exchange,
                     const char *global_exchange, const char *symbol, tf_book *out, char *err,
                     size_t err_size);

/* The hash fields as typed JSON (numbers as numbers); new reference. */
json_t *tf_position_to_json(const tf_position *p);

/* ---- JSON requests, with the contracts of the host's position_* services (host.h) that the
 * HTTP API calls. Positions come back as tf_position_to_json objects (new references). ---- */

/* Opens from {symbol, direction, size, krw_exchange?, global_exchange?, krw_price?,
 * global_price?, usdkrw?} (exchanges default to bithumb / binance; the three prices all or
 * none: without them the premium in Redis gives the executable entry prices). TF_OK and *out;
 * TF_EINVAL (err names the field: missing, wrong type, unknown field), TF_EVALUE (no fresh
 * premium: absent, stale or without bids and asks), TF_EREDIS. */
int tf_position_open_json(tf_redis *r, const char *prefix, const json_t *request, json_t **out,
                          char *err, size_t err_size);
/* Closes `id` at {krw_price, global_price, usdkrw} from `request` (NULL or {}: the executable
 * exit prices of the premium in Redis). TF_OK and *out; TF_ENOTFOUND (no such position, or not
 * an id), TF_EINVAL (a bad or unknown field in `request`: err says which), TF_ECONFLICT
 * (already closed), TF_EVALUE (no fresh premium), TF_EREDIS. The request is checked before the
 * position is read, so a malformed request is TF_EINVAL whatever the position's state. */
int tf_position_close_json(tf_redis *r, const char *prefix, const char *id, const json_t *request,
                           json_t **out, char *err, size_t err_size);
/* One position with its live PnL under "live" when the sink holds one. TF_OK, TF_ENOTFOUND,
 * TF_EVALUE (malformed hash), TF_EREDIS. */
int tf_position_get_json(tf_redis *r, const char *prefix, const char *id, json_t **out);
/* Array of positions (open ones; every one with `all`), each as tf_position_get_json gives it.
 * TF_OK, TF_EREDIS, TF_ENOMEM. */
int tf_position_list_json(tf_redis *r, const char *prefix, bool all, json_t **out);

/* The same four with the host table's signatures (tf_host.position_open ...): the prefix is
 * the instance's runtime redis prefix. */
int tf_positions_host_open(tf_instance *self, tf_redis *r, const json_t *request, json_t **out,
                           char *err, size_t err_size);
int tf_positions_host_close(tf_instance *self, tf_redis *r, const char *id, const json_t *request,
                            json_t **out, char *err, size_t err_size);
int tf_positions_host_get(tf_instance *self, tf_redis *r, const char *id, json_t **out);
int tf_positions_host_list(tf_instance *self, tf_redis *r, bool all, json_t **out);

/* `tickflow positions open|close|list ...`. argv[0] is "positions"; the registry validates
 * the -c configuration's pipelines. Returns the exit code: 0 ok, 1 runtime failure (Redis,
 * unknown or closed position, no fresh premium), 2 usage or configuration error. */
int tf_positions_cli(const tf_registry *reg, int argc, const char *const *argv);

#endif
