/*
 * Issue 10, section 2: behind the fake exchange's mutating proxy mode (every numeric field of
 * a market body multiplied, 1e+308 / 1e-308, sign flips, x10, seeded), the demo pipelines
 * serve no value outside the bounds as fresh: not through the API (polled) and not in Redis
 * (read back). Phase 1 runs pipelines/demo.yaml as shipped for 60 s: the sources' guards
 * reject what is absurd. Phase 2 turns the sources' guards off (wide ranges, max_jump 0), so
 * absurd prices reach the premium transform, whose band must flag them suspect. Every
 * rejection and every suspect is counted in the batch replica's metrics; the counts are
 * printed for the closing note.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_deploy.h"

#define PHASE1_MS   60000
#define PHASE2_MS   30000
#define MUTATE_RATE "0.02"
#define BAND_MIN    (-20.0) /* the premium transform's default band, percent */
#define BAND_MAX    60.0
#define SEEN_MAX    8192

static tft_deploy *deploy;

/* The sources' default ranges (bithumb: KRW, binance_futures: USDT) for the demo symbols. */
static const struct bound {
    const char *exchange;
    const char *symbol;
    double min, max;
} bounds[] = {
    {"bithumb", "BTC", 2e7, 1e9}, {"bithumb", "ETH", 3e5, 3e7},   {"bithumb", "XRP", 50, 5e4},
    {"bithumb", "SOL", 3e3, 3e6}, {"bithumb", "USDT", 800, 3000}, {"binance", "BTC", 1e4, 1e6},
    {"binance", "ETH", 200, 5e4}, {"binance", "XRP", 0.05, 50},   {"binance", "SOL", 2, 5000},
};

/* What one phase saw. */
typedef struct tally {
    long polls;           /* API responses checked */
    long redis_reads;     /* Redis values checked */
    long fresh_premiums;  /* fresh premiums seen (API and Redis) */
    long suspect_seen;    /* suspect premiums seen */
    long violations;      /* values outside the bounds served as fresh */
    long bad_premiums;    /* of which in premiums */
    char *seen[SEEN_MAX]; /* distinct suspect premiums: "<krw>/<global>/<symbol>/<ts>" */
    size_t n_seen;
} tally;

static const struct bound *bound_of(const char *exchange, const char *symbol)
{
    for (size_t i = 0; exchange && symbol && i < sizeof bounds / sizeof bounds[0]; i++) {
        if (strcmp(bounds[i].exchange, exchange) == 0 && strcmp(bounds[i].symbol, symbol) == 0)
            return &bounds[i];
    }
    return NULL;
}

static void violation(tally *t, const char *where, const json_t *v, const char *why)
{
    t->violations++;
    if (t->violations <= 5) {
        char *text = json_dumps(v, JSON_COMPACT);
        fprintf(stderr, "\nVIOLATION (%s): %s: %s\n", where, why, text ? text : "?");
        free(text);
    }
}

/* A ticker as served: every price field inside its source's range (the sources emit nothing
 * else, whatever the exchange sent). */
static void check_ticker(tally *t, const char *where, const json_t *v, bool guarded)
{
    const struct bound *b = bound_of(json_string_value(json_object_get(v, "exchange")),
                                     json_string_value(json_object_get(v, "symbol")));
    static const char *const fields[] = {"last", "bid", "ask", "mark_price", "index_price"};
    for (size_t i = 0; b && guarded && i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *f = json_object_get(v, fields[i]);
        if (!f)
            continue;
        double x = json_number_value(f);
        if (!json_is_number(f) || !(x >= b->min && x <= b->max))
            violation(t, where, v, fields[i]);
    }
}

static void note_suspect(tally *t, const json_t *v)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s/%s/%lld",
             json_string_value(json_object_get(v, "krw_exchange")),
             json_string_value(json_object_get(v, "global_exchange")),
             json_string_value(json_object_get(v, "symbol")),
             (long long)json_integer_value(json_object_get(v, "ts")));
    t->suspect_seen++;
    for (size_t i = 0; i < t->n_seen; i++) {
        if (strcmp(t->seen[i], key) == 0)
            return;
    }
    if (t->n_seen < SEEN_MAX)
        t->seen[t->n_seen++] = strdup(key);
}

/* A premium as served: when fresh (stale and suspect both false) every percentage is inside
 * the band and, in phase 1, both prices inside their sources' ranges. */
static void check_premium(tally *t, const char *where, const json_t *v, bool guarded)
{
    if (json_is_true(json_object_get(v, "suspect"))) {
        note_suspect(t, v);
        return;
    }
    /* An absent flag reads as false (docs/redis.md): the values themselves are judged. */
    if (json_is_true(json_object_get(v, "stale")))
        return;
    t->fresh_premiums++;
    long before = t->violations;
    static const char *const pcts[] = {"premium_pct", "premium_usdt_pct", "entry_premium_pct",
                                       "exit_premium_pct"};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        const json_t *f = json_object_get(v, pcts[i]);
        double x = json_number_value(f);
        if (f && !(x >= BAND_MIN && x <= BAND_MAX))
            violation(t, where, v, pcts[i]);
    }
    const char *symbol = json_string_value(json_object_get(v, "symbol"));
    const struct bound *k = bound_of(json_string_value(json_object_get(v, "krw_exchange")), symbol);
    const struct bound *g =
        bound_of(json_string_value(json_object_get(v, "global_exchange")), symbol);
    double kp = json_number_value(json_object_get(v, "krw_price"));
    double gp = json_number_value(json_object_get(v, "global_price"));
    if (guarded && k && !(kp >= k->min && kp <= k->max))
        violation(t, where, v, "krw_price");
    if (guarded && g && !(gp >= g->min && gp <= g->max))
        violation(t, where, v, "global_price");
    t->bad_premiums += t->violations > before;
}

/* GET <api><path> and check every item of its "data" array. */
static void poll_api(tally *t, const char *path, bool premiums, bool guarded)
{
    char url[256];
    char *body = NULL;
    snprintf(url, sizeof url, "%s%s", deploy->api_url, path);
    long status = tft_http_get(url, NULL, 2000, &body);
    json_t *j = status == 200 && body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "data"), i, v)
    {
        if (premiums)
            check_premium(t, path, v, guarded);
        else
            check_ticker(t, path, v, guarded);
    }
    t->polls += j != NULL;
    json_decref(j);
}

/* Every tf:ticker:* and tf:premium:* value in Redis. */
static void read_redis(tally *t, bool guarded)
{
    static const char *const patterns[] = {"tf:ticker:*", "tf:premium:*"};
    for (size_t p = 0; p < 2; p++) {
        redisReply *keys = tft_redis_cmd(deploy->redis->port, "KEYS %s", patterns[p]);
        for (size_t i = 0; keys && keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
            redisReply *val = tft_redis_cmd(deploy->redis->port, "GET %s", keys->element[i]->str);
            json_t *j =
                val && val->type == REDIS_REPLY_STRING ? json_loads(val->str, 0, NULL) : NULL;
            if (j && p == 0)
                check_ticker(t, "redis", j, guarded);
            else if (j)
                check_premium(t, "redis", j, guarded);
            t->redis_reads += j != NULL;
            json_decref(j);
            if (val)
                freeReplyObject(val);
        }
        if (keys)
            freeReplyObject(keys);
    }
}

/* Suspect premiums in every history stream since `from_ms`. */
static long history_suspects(long long from_ms)
{
    long n = 0;
    redisReply *keys = tft_redis_cmd(deploy->redis->port, "KEYS tf:history:premium:*");
    for (size_t i = 0; keys && keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
        redisReply *r =
            tft_redis_cmd(deploy->redis->port, "XRANGE %s %lld +", keys->element[i]->str, from_ms);
        for (size_t e = 0; r && r->type == REDIS_REPLY_ARRAY && e < r->elements; e++) {
            const redisReply *fields = r->element[e]->element[1];
            for (size_t f = 0; f + 1 < fields->elements; f += 2)
                n += strstr(fields->element[f + 1]->str, "\"suspect\":true") != NULL;
        }
        if (r)
            freeReplyObject(r);
    }
    if (keys)
        freeReplyObject(keys);
    return n;
}

/* Sum of the samples of `family` in the batch's /metrics whose labels contain `match`. */
static double metric_sum(int port, const char *family, const char *match)
{
    char url[128];
    char *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    if (tft_http_get(url, NULL, 5000, &body) != 200 || !body) {
        free(body);
        return -1;
    }
    double sum = 0;
    size_t flen = strlen(family);
    for (const char *p = body; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > flen && strncmp(p, family, flen) == 0 && p[flen] == '{') {
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)(len < 1023 ? len : 1023), p);
            const char *space = strrchr(line, ' ');
            if (space && (!match || strstr(line, match)))
                sum += strtod(space + 1, NULL);
        }
        p = end ? end + 1 : NULL;
    }
    free(body);
    return sum;
}

static bool fresh_btc(void *arg)
{
    (void)arg;
    char url[256];
    char *body = NULL;
    snprintf(url, sizeof url, "%s/v1/premium/BTC", deploy->api_url);
    long status = tft_http_get(url, NULL, 2000, &body);
    bool ok = status == 200 && body && strstr(body, "\"stale\":false");
    free(body);
    return ok;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls the API (premiums, tickers) about every 100 ms and Redis about every second, for
 * `ms`. */
static void observe(tally *t, long long ms, bool guarded)
{
    long long end = mono_ms() + ms;
    long long next_redis = 0;
    while (mono_ms() < end) {
        poll_api(t, "/v1/premium", true, guarded);
        poll_api(t, "/v1/tickers", false, guarded);
        if (mono_ms() >= next_redis) {
            read_redis(t, guarded);
            next_redis = mono_ms() + 1000;
        }
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL); /* the poll period */
    }
}

static void mutate(const char *rate)
{
    char body[64];
    snprintf(body, sizeof body, "{\"rate\":%s,\"seed\":42}", rate);
    CU_ASSERT_TRUE(tft_fake_post(deploy->fake, "/admin/mutate", body));
}

static json_t *mutation_counts(void)
{
    json_t *state = tft_fake_admin(deploy->fake, "/admin/state", NULL);
    json_t *m = json_incref(json_object_get(state, "mutate"));
    json_decref(state);
    return m;
}

static void free_tally(tally *t)
{
    for (size_t i = 0; i < t->n_seen; i++)
        free(t->seen[i]);
}

/* Runs one phase against a batch replica already producing fresh premiums, with metrics on
 * `metrics_port`. */
static void run_phase(const char *name, int metrics_port, long long ms, bool guarded)
{
    tally t = {0};
    double rejected0 = metric_sum(metrics_port, "tickflow_source_rejected_total", NULL);
    double suspect0 = metric_sum(metrics_port, "tickflow_premium_suspect_total", NULL);
    long long from = wall_ms();
    mutate(MUTATE_RATE);
    observe(&t, ms, guarded);
    json_t *counts = mutation_counts();
    mutate("0");
    /* Let the last mutated tick be written, then read what it left. */
    observe(&t, 2000, guarded);
    double range = metric_sum(metrics_port, "tickflow_source_rejected_total", "reason=\"range\"");
    double jump = metric_sum(metrics_port, "tickflow_source_rejected_total", "reason=\"jump\"");
    double rejected = metric_sum(metrics_port, "tickflow_source_rejected_total", NULL) - rejected0;
    double suspects = metric_sum(metrics_port, "tickflow_premium_suspect_total", NULL) - suspect0;
    long in_history = history_suspects(from);
    char *mtext = json_dumps(counts, JSON_COMPACT);
    fprintf(stderr,
            "\n%s: %lld s behind the mutating proxy (rate %s): mutations %s; API polls %ld, "
            "Redis reads %ld, fresh premiums checked %ld; rejected by the sources %.0f (range "
            "%.0f, jump %.0f); suspect premiums counted %.0f, in the history %ld, distinct "
            "seen by API/Redis %zu; values outside the bounds served as fresh: %ld (%ld in "
            "premiums)\n",
            name, ms / 1000, MUTATE_RATE, mtext ? mtext : "?", t.polls, t.redis_reads,
            t.fresh_premiums, rejected, range, jump, suspects, in_history, t.n_seen, t.violations,
            t.bad_premiums);
    free(mtext);
    CU_ASSERT(json_integer_value(json_object_get(counts, "fields")) > 0);
    CU_ASSERT(t.polls > 100);
    CU_ASSERT(t.fresh_premiums > 0);
    CU_ASSERT_EQUAL(t.violations, 0);
    /* Counted: each suspect seen and each in the history is one the metric counted. */
    CU_ASSERT(suspects >= (double)t.n_seen);
    CU_ASSERT(suspects >= (double)in_history);
    /* The attack reached the layer under test: the sources' guards, or the band. */
    CU_ASSERT(guarded ? rejected > 0 : suspects > 0);
    json_decref(counts);
    free_tally(&t);
}

static int start_batch(const char *yaml, const char *tag, int metrics_port)
{
    char metrics[64];
    snprintf(metrics, sizeof metrics, "TICKFLOW_METRICS_LISTEN=127.0.0.1:%d", metrics_port);
    const char *env[] = {metrics, NULL};
    return tft_deploy_start(deploy, yaml, tag, env) > 0 ? 0 : -1;
}

/* pipelines/demo.yaml as shipped. */
static void test_guarded_sources(void)
{
    int port = tft_free_port();
    CU_ASSERT_EQUAL_FATAL(start_batch("pipelines/demo.yaml", "batch", port), 0);
    bool up = tft_wait_until(fresh_btc, NULL, 30000);
    if (!up)
        tft_deploy_print_log(deploy, "batch");
    CU_ASSERT_FATAL(up);
    run_phase("phase 1 (demo.yaml)", port, PHASE1_MS, true);
    tft_deploy_stop(deploy, "batch");
}

/* demo.yaml with the sources' guards opened: the band alone keeps absurd premiums from being
 * served as fresh. */
static void test_band_alone(void)
{
    char *text = tft_read_file(tft_source_path("pipelines/demo.yaml"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    static const char *const open = ", price_min: 1e-300, price_max: 1e300, price_bounds: {}, "
                                    "max_jump: 0}";
    /* Both sources' `with:` maps are flow maps ending in "]}" on their line. */
    size_t cap = strlen(text) + 2 * strlen(open) + 1;
    char *out = calloc(1, cap);
    size_t used = 0;
    for (const char *p = text; *p;) {
        const char *hit = strstr(p, "SOL, USDT]}");
        const char *hit2 = strstr(p, "XRP, SOL]}");
        const char *first = hit && (!hit2 || hit < hit2) ? hit : hit2;
        if (!first) {
            used += (size_t)snprintf(out + used, cap - used, "%s", p);
            break;
        }
        size_t upto = (size_t)(strchr(first, '}') - p);
        used += (size_t)snprintf(out + used, cap - used, "%.*s%s", (int)upto, p, open);
        p += upto + 1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/demo-open.yaml", deploy->dir);
    CU_ASSERT_EQUAL_FATAL(tft_write_file(path, out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "max_jump: 0}"));
    free(out);
    free(text);
    int port = tft_free_port();
    CU_ASSERT_EQUAL_FATAL(start_batch(path, "open", port), 0);
    bool up = tft_wait_until(fresh_btc, NULL, 30000);
    if (!up)
        tft_deploy_print_log(deploy, "open");
    CU_ASSERT_FATAL(up);
    run_phase("phase 2 (source guards off)", port, PHASE2_MS, false);
    tft_deploy_stop(deploy, "open");
}

static int setup(void)
{
    deploy = tft_deploy_create();
    if (!deploy)
        return 1;
    return tft_deploy_start(deploy, "pipelines/api.yaml", "api", NULL) > 0 ? 0 : 1;
}

static int teardown(void)
{
    tft_deploy_destroy(deploy);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"mutating proxy, demo as shipped: nothing absurd served fresh", test_guarded_sources},
        {"mutating proxy, source guards off: the band flags suspects", test_band_alone},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("integration_plausibility", tests, setup, teardown);
}
