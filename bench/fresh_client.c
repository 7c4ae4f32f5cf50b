/*
 * bench/freshness's client: sets a new exact BTC price on the fake exchange and measures how
 * long it takes to show up, both in the batch replica's Redis key and in the API's
 * GET /v1/premium/BTC, polling each every millisecond. Prints a table and the target.
 *
 *   fresh_client --exchange URL --redis-port N --redis-key KEY [--api URL] [--count N]
 *                [--period-ms N] [--timeout-ms N]
 *
 * Built by bench/freshness with libcurl and hiredis, not by CMake.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#define FC_MAX_COUNT 10000
#define FC_KRW_BASE  136500000.0 /* inside the fake market's range: premium stays near 2.5 % */
#define FC_USDT_BASE 95000.0
#define FC_KRW_STEP  1000.0 /* Bithumb's tick above 2M KRW, so the value is served exactly */
#define FC_USDT_STEP 0.01

typedef struct fc_args {
    const char *exchange; /* borrowed from argv */
    const char *api;      /* borrowed from argv; NULL: Redis only */
    const char *redis_key;
    int redis_port;
    int count;
    int period_ms;
    int timeout_ms;
} fc_args;

/* A growable response body for libcurl. */
typedef struct fc_body {
    char *p; /* owned */
    size_t len;
    size_t cap;
} fc_body;

/* Latencies of one observed path, in ms; a timeout is recorded as timeout_ms. */
typedef struct fc_series {
    const char *name;
    double *ms; /* owned */
    int n;
    int timeouts;
} fc_series;

typedef struct fc_ctx {
    fc_args a;
    CURL *post;          /* owned: admin POSTs, kept alive */
    CURL *get;           /* owned: API GETs, kept alive */
    redisContext *redis; /* owned */
    fc_body body;
    char admin_url[512];
    uint64_t rng;
} fc_ctx;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* xorshift64*: a fixed seed so two runs sample the same phases. */
static double rand_unit(fc_ctx *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (double)((c->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int usage(const char *why)
{
    fprintf(stderr,
            "fresh_client: %s\nusage: fresh_client --exchange URL --redis-port N --redis-key KEY "
            "[--api URL] [--count N] [--period-ms N] [--timeout-ms N]\n",
            why);
    return 2;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return false;
    }
    *out = (int)v;
    return true;
}

static int parse_args(int argc, char **argv, fc_args *a)
{
    *a = (fc_args){.count = 100, .period_ms = 1000, .timeout_ms = 5000};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            return usage("every option takes a value");
        }
        const char *opt = argv[i];
        const char *val = argv[++i];
        bool ok = true;
        if (strcmp(opt, "--exchange") == 0) {
            a->exchange = val;
        } else if (strcmp(opt, "--api") == 0) {
            a->api = val;
        } else if (strcmp(opt, "--redis-key") == 0) {
            a->redis_key = val;
        } else if (strcmp(opt, "--redis-port") == 0) {
            ok = parse_int(val, 1, 65535, &a->redis_port);
        } else if (strcmp(opt, "--count") == 0) {
            ok = parse_int(val, 1, FC_MAX_COUNT, &a->count);
        } else if (strcmp(opt, "--period-ms") == 0) {
            ok = parse_int(val, 1, 3600000, &a->period_ms);
        } else if (strcmp(opt, "--timeout-ms") == 0) {
            ok = parse_int(val, 100, 3600000, &a->timeout_ms);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "fresh_client: bad option or value: %s %s\n", opt, val);
            return usage("expected --count 1..10000, --period-ms >= 1, --timeout-ms >= 100, "
                         "--redis-port 1..65535");
        }
    }
    if (a->exchange == NULL || a->redis_key == NULL || a->redis_port == 0) {
        return usage("--exchange, --redis-port and --redis-key are required");
    }
    return 0;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    fc_body *b = arg;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return 0; /* libcurl then fails the transfer with CURLE_WRITE_ERROR */
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

static CURL *make_easy(fc_body *b)
{
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    return e;
}

/* Performs the prepared transfer; 0 when it answered 200 (body in c->body). */
static int perform(fc_ctx *c, CURL *e)
{
    c->body.len = 0;
    if (c->body.p != NULL) {
        c->body.p[0] = '\0';
    }
    if (curl_easy_perform(e) != CURLE_OK) {
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 && c->body.p != NULL ? 0 : -1;
}

/* The number after the first "krw_price": in a JSON text, NAN when there is none. */
static double krw_price_in(const char *json)
{
    const char *at = json != NULL ? strstr(json, "\"krw_price\":") : NULL;
    if (at == NULL) {
        return NAN;
    }
    at += strlen("\"krw_price\":");
    at += strspn(at, " \"");
    char *end = NULL;
    double v = strtod(at, &end);
    return end == at ? NAN : v;
}

static int set_price(fc_ctx *c, double usdt, double krw)
{
    char json[256];
    int n =
        snprintf(json, sizeof json, "{\"symbol\":\"BTC\",\"usdt\":%.2f,\"krw\":%.0f}", usdt, krw);
    if (n < 0 || (size_t)n >= sizeof json) {
        return -1;
    }
    curl_easy_setopt(c->post, CURLOPT_POSTFIELDS, json);
    if (perform(c, c->post) != 0) {
        fprintf(stderr, "fresh_client: POST %s did not answer 200: %s\n", c->admin_url,
                c->body.p != NULL ? c->body.p : "(no body)");
        return -1;
    }
    return 0;
}

static bool redis_shows(fc_ctx *c, double krw)
{
    redisReply *r = redisCommand(c->redis, "GET %s", c->a.redis_key);
    bool seen = false;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        seen = krw_price_in(r->str) == krw;
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return seen;
}

static bool api_shows(fc_ctx *c, double krw)
{
    return perform(c, c->get) == 0 && krw_price_in(c->body.p) == krw;
}

/* Sets one price and polls both paths every millisecond until each shows it or times out;
 * latencies are measured from the moment the exchange acknowledged the new price. */
static int one_change(fc_ctx *c, int i, fc_series *redis, fc_series *api)
{
    double krw = FC_KRW_BASE + (i + 1) * FC_KRW_STEP;
    double usdt = FC_USDT_BASE + (i + 1) * FC_USDT_STEP;
    if (set_price(c, usdt, krw) != 0) {
        return -1;
    }
    double t0 = now_ms();
    double seen_redis = -1;
    double seen_api = c->a.api != NULL ? -1 : 0;
    for (;;) {
        double t = now_ms();
        if (seen_redis < 0 && redis_shows(c, krw)) {
            seen_redis = now_ms() - t0;
        }
        if (seen_api < 0 && api_shows(c, krw)) {
            seen_api = now_ms() - t0;
        }
        bool done = seen_redis >= 0 && seen_api >= 0;
        if (done || t - t0 > c->a.timeout_ms) {
            break;
        }
        sleep_ms(1);
    }
    if (i < 0) {
        return 0; /* the warm-up change is not recorded */
    }
    redis->timeouts += seen_redis < 0;
    redis->ms[redis->n++] = seen_redis < 0 ? c->a.timeout_ms : seen_redis;
    if (c->a.api != NULL) {
        api->timeouts += seen_api < 0;
        api->ms[api->n++] = seen_api < 0 ? c->a.timeout_ms : seen_api;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted series. */
static double pct(const fc_series *s, double p)
{
    int rank = (int)ceil(p / 100.0 * s->n);
    if (rank < 1) {
        rank = 1;
    }
    return s->ms[rank - 1];
}

static void print_row(const fc_series *s)
{
    qsort(s->ms, (size_t)s->n, sizeof s->ms[0], cmp_double);
    double sum = 0;
    for (int i = 0; i < s->n; i++) {
        sum += s->ms[i];
    }
    printf("%-34s %5d %9.1f %9.1f %9.1f %9.1f %9.1f %8d\n", s->name, s->n, sum / s->n, pct(s, 50),
           pct(s, 90), pct(s, 99), s->ms[s->n - 1], s->timeouts);
}

static void report(const fc_ctx *c, const fc_series *redis, const fc_series *api)
{
    printf("\n%-34s %5s %9s %9s %9s %9s %9s %8s\n", "observed at", "n", "mean_ms", "p50_ms",
           "p90_ms", "p99_ms", "max_ms", "timeouts");
    print_row(redis);
    if (api->n > 0) {
        print_row(api);
    }
    printf(
        "(from the fake exchange's 200 to POST /admin/price until the first poll showing the new "
        "krw_price; polled every 1 ms; a timeout counts as %d ms)\n",
        c->a.timeout_ms);
    double limit = c->a.period_ms + 50.0;
    printf("\ntarget (API p99 <= one pipeline period (%d ms) + 50 ms = %.0f ms): ", c->a.period_ms,
           limit);
    if (api->n == 0) {
        printf("NOT MEASURED - no API replica (Redis p99 %.1f ms shown above)\n", pct(redis, 99));
        return;
    }
    double p99 = pct(api, 99);
    printf("%s (API p99 %.1f ms)\n", p99 <= limit && api->timeouts == 0 ? "MET" : "NOT MET", p99);
}

static int setup(fc_ctx *c)
{
    int n = snprintf(c->admin_url, sizeof c->admin_url, "%s/admin/price", c->a.exchange);
    if (n < 0 || (size_t)n >= sizeof c->admin_url) {
        fprintf(stderr, "fresh_client: --exchange URL longer than 480 bytes\n");
        return -1;
    }
    c->post = make_easy(&c->body);
    c->get = make_easy(&c->body);
    if (c->post == NULL || c->get == NULL) {
        return -1;
    }
    curl_easy_setopt(c->post, CURLOPT_URL, c->admin_url);
    if (c->a.api != NULL) {
        curl_easy_setopt(c->get, CURLOPT_URL, c->a.api);
    }
    c->redis = redisConnect("127.0.0.1", c->a.redis_port);
    if (c->redis == NULL || c->redis->err) {
        fprintf(stderr, "fresh_client: cannot connect to Redis on 127.0.0.1:%d: %s\n",
                c->a.redis_port, c->redis != NULL ? c->redis->errstr : "out of memory");
        return -1;
    }
    c->rng = 0x9e3779b97f4a7c15ull;
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 1;
    fc_ctx c = {0};
    fc_series redis = {.name = "Redis key (batch replica)"};
    fc_series api = {.name = "GET /v1/premium/BTC (API replica)"};

    if (parse_args(argc, argv, &c.a) != 0) {
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    redis.ms = calloc((size_t)c.a.count, sizeof(double));
    api.ms = calloc((size_t)c.a.count, sizeof(double));
    if (redis.ms == NULL || api.ms == NULL || setup(&c) != 0) {
        goto out;
    }
    /* Freeze BTC at a known value first, so every measured change starts from a settled one. */
    if (one_change(&c, -1, &redis, &api) != 0) {
        goto out;
    }
    for (int i = 0; i < c.a.count; i++) {
        /* A random wait puts each change at a uniformly random point of the 1 s tick. */
        sleep_ms(rand_unit(&c) * c.a.period_ms);
        if (one_change(&c, i, &redis, &api) != 0) {
            goto out;
        }
        if ((i + 1) % 20 == 0) {
            fprintf(stderr, "==> %d/%d changes\n", i + 1, c.a.count);
        }
    }
    report(&c, &redis, &api);
    rc = 0;
out:
    if (c.redis != NULL) {
        redisFree(c.redis);
    }
    curl_easy_cleanup(c.post);
    curl_easy_cleanup(c.get);
    curl_global_cleanup();
    free(c.body.p);
    free(redis.ms);
    free(api.ms);
    return rc;
}
