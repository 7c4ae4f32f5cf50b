/*
 * /v1/stream under a real EventSource client (npm `eventsource`, tests/clients/sse-cuts.mjs)
 * whose connection a proxy cuts at random byte offsets 50 times, in the middle of events and
 * of ticks: against the history streams in Redis, every (pair, tick) written while the client
 * followed the stream is received exactly once (no gap, no duplicate), resync periods included.
 * Real processes: redis-server, the fake exchange, a batch replica (pipelines/demo.yaml) and an
 * API replica (pipelines/api.yaml).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tf_deploy.h"

#define CUTS 50

static tft_deploy *deploy;

static bool has_premium(void *arg)
{
    (void)arg;
    redisReply *r =
        tft_redis_cmd(deploy->redis->port, "EXISTS %s", "tf:premium:bithumb:binance:BTC");
    bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* (ms, seq) of a history id; false when it is not one. */
static bool parse_id(const char *id, unsigned long long *ms, unsigned long long *seq)
{
    char tail;
    return id && sscanf(id, "%llu-%llu%c", ms, seq, &tail) == 2;
}

static int id_cmp(const char *a, const char *b)
{
    unsigned long long ams = 0, aseq = 0, bms = 0, bseq = 0;
    parse_id(a, &ams, &aseq);
    parse_id(b, &bms, &bseq);
    if (ams != bms)
        return ams < bms ? -1 : 1;
    return aseq < bseq ? -1 : aseq > bseq;
}

/* One (pair, entry) of the history, and how many times the client received it. */
typedef struct entry {
    char id[48];
    char pair[96];
    int received;
} entry;

typedef struct entries {
    entry *v;
    size_t n, cap;
} entries;

static void entries_add(entries *e, const char *id, const char *pair)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 256;
        e->v = realloc(e->v, e->cap * sizeof *e->v);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e->v);
    }
    entry *x = &e->v[e->n++];
    snprintf(x->id, sizeof x->id, "%s", id);
    snprintf(x->pair, sizeof x->pair, "%s", pair);
    x->received = 0;
}

/* Every entry of every premium history stream between first and last (inclusive). */
static void history_between(const char *first, const char *last, entries *out)
{
    redisReply *keys = tft_redis_cmd(deploy->redis->port, "KEYS %s", "tf:history:premium:*");
    CU_ASSERT_FATAL(keys && keys->type == REDIS_REPLY_ARRAY && keys->elements > 0);
    for (size_t k = 0; k < keys->elements; k++) {
        const char *key = keys->element[k]->str;
        const char *pair = key + strlen("tf:history:premium:");
        redisReply *r = tft_redis_cmd(deploy->redis->port, "XRANGE %s %s %s", key, first, last);
        CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY);
        for (size_t i = 0; i < r->elements; i++)
            entries_add(out, r->element[i]->element[0]->str, pair);
        freeReplyObject(r);
    }
    freeReplyObject(keys);
}

static entry *find(entries *e, const char *id, const char *pair)
{
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->v[i].id, id) == 0 && strcmp(e->v[i].pair, pair) == 0)
            return &e->v[i];
    }
    return NULL;
}

/* Runs the client; its report (new reference) or NULL. */
static json_t *run_client(void)
{
    char url[128], cuts[16], out[1024], log[1024];
    snprintf(url, sizeof url, "%s/v1/stream", deploy->api_url);
    snprintf(cuts, sizeof cuts, "%d", CUTS);
    snprintf(out, sizeof out, "%s/sse-cuts.json", deploy->dir);
    snprintf(log, sizeof log, "%s/sse-cuts.log", deploy->dir);
    const char *argv[] = {"/usr/bin/env",
                          "node",
                          tft_source_path("tests/clients/sse-cuts.mjs"),
                          TF_TEST_CLIENTS_DIR,
                          url,
                          cuts,
                          out,
                          NULL};
    pid_t pid = tft_spawn(argv, log, NULL);
    int status = -1;
    bool exited = pid > 0 && tft_wait_exit(pid, 200000, &status);
    char *text = tft_read_file(log, NULL);
    fprintf(stderr, "\n%s", text ? text : "(no client log)\n");
    free(text);
    if (!exited) {
        tft_kill_wait(pid);
        return NULL;
    }
    CU_ASSERT_EQUAL(status, 0);
    return json_load_file(out, 0, NULL);
}

static void test_cut_50_times_every_event_once(void)
{
    CU_ASSERT_FATAL(tft_wait_until(has_premium, NULL, 30000));
    json_t *report = run_client();
    CU_ASSERT_PTR_NOT_NULL_FATAL(report);
    const json_t *events = json_object_get(report, "events");
    size_t n = json_array_size(events);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT(json_integer_value(json_object_get(report, "cuts")) >= CUTS);
    /* Nothing needed announcing: every resume could be served from the history. */
    CU_ASSERT_EQUAL(json_array_size(json_object_get(report, "gaps")), 0);

    /* The window the client followed: from its first event to its last. */
    const char *first = json_string_value(json_array_get(json_array_get(events, 0), 1));
    const char *last = json_string_value(json_array_get(json_array_get(events, n - 1), 1));
    entries want = {0};
    history_between(first, last, &want);

    size_t duplicates = 0, unknown = 0, mid_tick = 0, out_of_order = 0;
    const char *prev_id = NULL;
    long long prev_conn = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = json_array_get(events, i);
        long long conn = json_integer_value(json_array_get(ev, 0));
        const char *id = json_string_value(json_array_get(ev, 1));
        const char *pair = json_string_value(json_array_get(ev, 2));
        unsigned long long ms, seq, pms, pseq;
        entry *e = find(&want, id, pair);
        if (!e) {
            if (unknown++ < 5)
                fprintf(stderr, "received %s %s: not a history entry in the window\n", id, pair);
        } else if (e->received++ > 0 && duplicates++ < 5) {
            fprintf(stderr, "received %s %s twice\n", id, pair);
        }
        if (prev_id && id_cmp(id, prev_id) <= 0)
            out_of_order++;
        /* A resume whose first event shares the previous connection's tick: the cut fell in
         * the middle of that tick's events. */
        if (prev_id && conn != prev_conn && parse_id(id, &ms, &seq) &&
            parse_id(prev_id, &pms, &pseq) && ms == pms)
            mid_tick++;
        prev_id = id;
        prev_conn = conn;
    }
    size_t missing = 0;
    for (size_t i = 0; i < want.n; i++) {
        if (want.v[i].received == 0 && missing++ < 5)
            fprintf(stderr, "never received %s %s\n", want.v[i].id, want.v[i].pair);
    }
    fprintf(stderr,
            "SSE under %d cuts: %zu events over %lld connections, %zu history entries in the "
            "window; %zu missing, %zu duplicates, %zu unknown, %zu out of order; %zu cuts fell "
            "inside a tick\n",
            CUTS, n, (long long)json_integer_value(json_object_get(report, "connections")), want.n,
            missing, duplicates, unknown, out_of_order, mid_tick);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(duplicates, 0);
    CU_ASSERT_EQUAL(unknown, 0);
    CU_ASSERT_EQUAL(out_of_order, 0);
    CU_ASSERT(mid_tick >= 10);
    free(want.v);
    json_decref(report);
}

static int setup(void)
{
    deploy = tft_deploy_create();
    /* The client reconnects 100 ms after each cut (the server's retry field). */
    static const char *const fast_retry[] = {"TICKFLOW_API_SSE_RETRY=100ms", NULL};
    return deploy && tft_deploy_start(deploy, "pipelines/demo.yaml", "batch", NULL) > 0 &&
                   tft_deploy_start(deploy, "pipelines/api.yaml", "api", fast_retry) > 0
               ? 0
               : 1;
}

static int teardown(void)
{
    tft_deploy_destroy(deploy);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"EventSource cut 50 times: every (pair, tick) once", test_cut_50_times_every_event_once},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("sse clients", tests, setup, teardown);
}
