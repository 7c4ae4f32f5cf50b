/*
 * The API role as deployed: a batch replica (pipelines/demo.yaml) and an API replica
 * (pipelines/api.yaml) as real processes over a private Redis and the fake exchange. The API
 * serves fresh premiums, streams them over SSE with resumable ids, keeps serving (flagged
 * stale, /readyz 503) when Redis stops, and recovers by itself when it returns.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tf_deploy.h"

static tft_deploy *deploy;
static pid_t batch = -1, api = -1;

typedef struct body {
    char data[1 << 16];
    size_t len;
    int events; /* SSE: "\n\n"-terminated events seen */
    int want;   /* SSE: stop after this many */
} body;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t take = size * n;
    if (b->len + take >= sizeof b->data)
        take = sizeof b->data - b->len - 1;
    memcpy(b->data + b->len, p, take);
    b->len += take;
    b->data[b->len] = '\0';
    if (b->want) {
        b->events = 0;
        for (const char *q = b->data; (q = strstr(q, "event: premium")) != NULL; q++)
            b->events++;
        if (b->events >= b->want)
            return 0; /* enough: abort the transfer */
    }
    return size * n;
}

/* GET the API's path; `header` may be NULL. Returns the HTTP status (0 on failure). */
static long get(const char *path, const char *header, body *b, long timeout_ms)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", deploy->api_url, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    long status = 0;
    curl_easy_perform(c); /* an SSE read ends by our abort or the timeout */
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return status;
}

static bool premium_is(void *arg)
{
    const char *want = arg; /* "\"stale\":false" or "\"stale\":true" */
    static body b;
    b.len = 0;
    b.want = 0;
    /* The list endpoint answers 200 with stale values flagged (/v1/premium/BTC answers 503
     * once every value of the symbol is stale). */
    return get("/v1/premium?symbol=BTC", NULL, &b, 2000) == 200 && strstr(b.data, want);
}

static bool ready_is(void *arg)
{
    static body b;
    b.len = 0;
    b.want = 0;
    return get("/readyz", NULL, &b, 2000) == *(long *)arg;
}

/* The ids of the events in an SSE body, in order, as (ms, seq); returns how many. */
static int event_ids(const body *b, long long ms[], long long seq[], int max)
{
    int n = 0;
    for (const char *p = b->data; n < max && (p = strstr(p, "id: ")) != NULL; p += 4) {
        if (p != b->data && p[-1] != '\n')
            continue;
        if (sscanf(p + 4, "%lld-%lld", &ms[n], &seq[n]) == 2)
            n++;
    }
    return n;
}

static bool after(long long ms_a, long long seq_a, long long ms_b, long long seq_b)
{
    return ms_a > ms_b || (ms_a == ms_b && seq_a > seq_b);
}

static void test_fresh_premium_and_sse(void)
{
    CU_ASSERT_FATAL(tft_wait_until(premium_is, "\"stale\":false", 20000));
    /* Every event has its own history id; read until the ids have moved on to a later tick. */
    body b = {.want = 16};
    CU_ASSERT_EQUAL(get("/v1/stream", NULL, &b, 10000), 200);
    long long ms[16], seq[16];
    int n = event_ids(&b, ms, seq, 16);
    CU_ASSERT_FATAL(n >= 2);
    int later = 1;
    while (later < n && !after(ms[later], seq[later], ms[0], seq[0]))
        later++;
    fprintf(stderr, "\nSSE: %d events, first id %lld-%lld\n", n, ms[0], seq[0]);
    CU_ASSERT(later < n); /* ids are history stream ids that advance */
    /* Resume after the first: every replayed event is newer than it. */
    char header[128];
    snprintf(header, sizeof header, "Last-Event-ID: %lld-%lld", ms[0], seq[0]);
    body r = {.want = 1};
    CU_ASSERT_EQUAL(get("/v1/stream", header, &r, 8000), 200);
    long long rms[1], rseq[1];
    CU_ASSERT_FATAL(event_ids(&r, rms, rseq, 1) == 1);
    CU_ASSERT(after(rms[0], rseq[0], ms[0], seq[0]));
}

static void test_redis_outage_served_stale_then_recovers(void)
{
    long ok = 200, unavailable = 503;
    CU_ASSERT_FATAL(tft_wait_until(ready_is, &ok, 20000));
    tft_redis_stop(deploy->redis);
    /* The snapshot keeps answering; its values age into stale, and readiness drops. */
    CU_ASSERT(tft_wait_until(premium_is, "\"stale\":true", 20000));
    CU_ASSERT(tft_wait_until(ready_is, &unavailable, 20000));
    CU_ASSERT_EQUAL_FATAL(tft_redis_restart(deploy->redis), 0);
    /* Both replicas reconnect by themselves: fresh data and ready again. */
    CU_ASSERT(tft_wait_until(premium_is, "\"stale\":false", 30000));
    CU_ASSERT(tft_wait_until(ready_is, &ok, 30000));
    CU_ASSERT_EQUAL(kill(api, 0), 0);
    CU_ASSERT_EQUAL(kill(batch, 0), 0);
}

static int setup(void)
{
    deploy = tft_deploy_create();
    if (!deploy)
        return 1;
    batch = tft_deploy_start(deploy, "pipelines/demo.yaml", "batch", NULL);
    api = tft_deploy_start(deploy, "pipelines/api.yaml", "api", NULL);
    return batch > 0 && api > 0 ? 0 : 1;
}

static int teardown(void)
{
    tft_deploy_destroy(deploy);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"fresh premium; SSE ids resume from history", test_fresh_premium_and_sse},
        {"Redis outage: stale + 503, then recovery", test_redis_outage_served_stale_then_recovers},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("api replica", tests, setup, teardown);
}
