/* tf_fx_stats: request and connection counters that tests read back through /admin/stats
 * (requests per endpoint, distinct TCP connections per endpoint, recent arrival times, per
 * second buckets, Binance's used weight). Not thread-safe: the server holds its lock. */
#ifndef TF_FX_STATS_H
#define TF_FX_STATS_H

#include <stdint.h>

#include <jansson.h>

#include "tf_fx_endpoint.h"

#define TF_FX_TIMES_KEPT    1000
#define TF_FX_SECONDS_SHOWN 10

/* Per TCP connection, kept in MHD's socket context. */
struct tf_fx_conn {
    uint64_t id;
    uint32_t gen;      /* stats generation the flags below belong to */
    uint32_t served;   /* bit per endpoint this connection has served */
    int served_market; /* served at least one market (non-admin) request */
};

struct tf_fx_stats;

struct tf_fx_stats *tf_fx_stats_create(void);
void tf_fx_stats_destroy(struct tf_fx_stats *st);

void tf_fx_stats_reset(struct tf_fx_stats *st);
void tf_fx_stats_conn_open(struct tf_fx_stats *st);

/* Counts one request. ep < 0 is an admin request; conn may be NULL. */
void tf_fx_stats_request(struct tf_fx_stats *st, struct tf_fx_conn *conn, int ep, int64_t wall_ms,
                         int faulted);

/* Adds weight to the current minute's Binance weight and returns the new total. */
int tf_fx_stats_binance_weight(struct tf_fx_stats *st, int64_t wall_ms, int weight);

json_t *tf_fx_stats_json(const struct tf_fx_stats *st, int64_t wall_ms);

#endif
