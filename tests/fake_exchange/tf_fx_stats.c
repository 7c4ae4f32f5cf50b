/* tf_fx_stats: counters behind /admin/stats. */
#include "tf_fx_stats.h"

#include <stdlib.h>
#include <string.h>

#include "tf_fx_util.h"

/* Power of two above TF_FX_SECONDS_SHOWN so the current second never overwrites a shown one. */
#define TF_FX_SECOND_SLOTS 16

struct tf_fx_second {
    int64_t sec;
    uint64_t count;
};

struct tf_fx_ep_stats {
    uint64_t requests;
    uint64_t faulted;
    uint64_t connections;
    int64_t times[TF_FX_TIMES_KEPT]; /* ring of arrival times */
    size_t times_len;
    size_t times_next;
    struct tf_fx_second seconds[TF_FX_SECOND_SLOTS];
};

struct tf_fx_stats {
    uint32_t gen;
    uint64_t connections_total;
    uint64_t market_connections_total;
    uint64_t requests_total;
    uint64_t admin_requests;
    int64_t weight_minute;
    int weight;
    struct tf_fx_ep_stats ep[TF_FX_EP_COUNT];
};

struct tf_fx_stats *tf_fx_stats_create(void)
{
    struct tf_fx_stats *st = calloc(1, sizeof(*st));
    if (st != NULL) {
        st->gen = 1;
    }
    return st;
}

void tf_fx_stats_destroy(struct tf_fx_stats *st)
{
    free(st);
}

void tf_fx_stats_reset(struct tf_fx_stats *st)
{
    /* Bumping the generation makes open connections count afresh without touching them. */
    uint32_t gen = st->gen + 1;
    memset(st, 0, sizeof(*st));
    st->gen = gen;
}

void tf_fx_stats_conn_open(struct tf_fx_stats *st)
{
    st->connections_total++;
}

static void tf_fx_stats_mark_conn(struct tf_fx_stats *st, struct tf_fx_conn *conn, int ep)
{
    if (conn == NULL) {
        return;
    }
    if (conn->gen != st->gen) {
        conn->gen = st->gen;
        conn->served = 0;
        conn->served_market = 0;
    }
    if (ep < 0) {
        return;
    }
    uint32_t bit = 1u << ep;
    if ((conn->served & bit) == 0) {
        conn->served |= bit;
        st->ep[ep].connections++;
    }
    if (!conn->served_market) {
        conn->served_market = 1;
        st->market_connections_total++;
    }
}

void tf_fx_stats_request(struct tf_fx_stats *st, struct tf_fx_conn *conn, int ep, int64_t wall_ms,
                         int faulted)
{
    st->requests_total++;
    tf_fx_stats_mark_conn(st, conn, ep);
    if (ep < 0 || ep >= TF_FX_EP_COUNT) {
        st->admin_requests++;
        return;
    }
    struct tf_fx_ep_stats *e = &st->ep[ep];
    e->requests++;
    e->faulted += faulted ? 1 : 0;
    e->times[e->times_next] = wall_ms;
    e->times_next = (e->times_next + 1) % TF_FX_TIMES_KEPT;
    if (e->times_len < TF_FX_TIMES_KEPT) {
        e->times_len++;
    }
    int64_t sec = wall_ms / 1000;
    struct tf_fx_second *slot = &e->seconds[sec % TF_FX_SECOND_SLOTS];
    if (slot->sec != sec) {
        slot->sec = sec;
        slot->count = 0;
    }
    slot->count++;
}

int tf_fx_stats_binance_weight(struct tf_fx_stats *st, int64_t wall_ms, int weight)
{
    int64_t minute = wall_ms / 60000;
    if (minute != st->weight_minute) {
        st->weight_minute = minute;
        st->weight = 0;
    }
    st->weight += weight;
    return st->weight;
}

static json_t *tf_fx_stats_times(const struct tf_fx_ep_stats *e)
{
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    size_t start = (e->times_next + TF_FX_TIMES_KEPT - e->times_len) % TF_FX_TIMES_KEPT;
    int rc = 0;
    for (size_t i = 0; i < e->times_len; i++) {
        rc |= json_array_append_new(arr, json_integer(e->times[(start + i) % TF_FX_TIMES_KEPT]));
    }
    if (rc != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* Counts of the last TF_FX_SECONDS_SHOWN whole seconds, oldest first. */
static json_t *tf_fx_stats_seconds(const struct tf_fx_ep_stats *e, int64_t now_sec)
{
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    int rc = 0;
    for (int64_t sec = now_sec - TF_FX_SECONDS_SHOWN; sec < now_sec; sec++) {
        const struct tf_fx_second *slot = &e->seconds[sec % TF_FX_SECOND_SLOTS];
        uint64_t n = slot->sec == sec ? slot->count : 0;
        rc |= json_array_append_new(arr, json_integer((json_int_t)n));
    }
    if (rc != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *tf_fx_stats_endpoint(const struct tf_fx_ep_stats *e)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_int(o, "requests", (int64_t)e->requests);
    rc |= tf_fx_put_int(o, "connections", (int64_t)e->connections);
    rc |= tf_fx_put_int(o, "faulted", (int64_t)e->faulted);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *tf_fx_stats_json(const struct tf_fx_stats *st, int64_t wall_ms)
{
    json_t *o = json_object();
    json_t *eps = json_object();
    json_t *per_sec = json_object();
    json_t *times = json_object();
    int rc = (o == NULL || eps == NULL || per_sec == NULL || times == NULL) ? -1 : 0;
    for (int i = 0; rc == 0 && i < TF_FX_EP_COUNT; i++) {
        const char *name = tf_fx_ep_name((enum tf_fx_ep)i);
        rc |= tf_fx_put(eps, name, tf_fx_stats_endpoint(&st->ep[i]));
        rc |= tf_fx_put(per_sec, name, tf_fx_stats_seconds(&st->ep[i], wall_ms / 1000));
        rc |= tf_fx_put(times, name, tf_fx_stats_times(&st->ep[i]));
    }
    if (rc != 0) {
        goto fail;
    }
    int weight = st->weight_minute == wall_ms / 60000 ? st->weight : 0;
    rc |= tf_fx_put_int(o, "now_ms", wall_ms);
    rc |= tf_fx_put_int(o, "connections_total", (int64_t)st->connections_total);
    rc |= tf_fx_put_int(o, "market_connections_total", (int64_t)st->market_connections_total);
    rc |= tf_fx_put_int(o, "requests_total", (int64_t)st->requests_total);
    rc |= tf_fx_put_int(o, "admin_requests", (int64_t)st->admin_requests);
    rc |= tf_fx_put_int(o, "binance_used_weight_1m", weight);
    /* The puts below take ownership of the three sub-objects whatever they return. */
    rc |= tf_fx_put(o, "endpoints", eps);
    rc |= tf_fx_put(o, "per_second", per_sec);
    rc |= tf_fx_put(o, "request_times_ms", times);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
fail:
    json_decref(eps);
    json_decref(per_sec);
    json_decref(times);
    json_decref(o);
    return NULL;
}
