/*
 * Secrets never leak (docs/security.md): a real `tickflow run` at log level trace, with an ACL
 * user and password for Redis and an FX API key that travels in a URL query, is grepped
 * byte for byte — its output, `plugins describe fx`, every Redis key and value and /metrics —
 * for each secret. A wrong Redis password must not be echoed by the error either.
 */
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tf_fake.h"
#include "tf_proc.h"
#include "tf_test.h"

/* Long and random-looking, so an accidental match is impossible. */
#define SECRET_USER     "tfuser-Q7xLm2Vr9KpZ4wNb"
#define SECRET_PASSWORD "Pw-h8Tq3Rz6YcV1mXk9LsD2f"
#define SECRET_FX_KEY   "Fxk-Z4nB7wQ2pL9vT6mR3yHc"
#define WRONG_PASSWORD  "Wr-K3vP8xN1qZ6tL9bM4sYd7"
#define VISIBLE_LABEL   "visible-label-Jd82Ka"

static const char *const g_secrets[] = {SECRET_USER, SECRET_PASSWORD, SECRET_FX_KEY};

static char *dir;
static tft_redis *redis;
static tft_fake *fake;

/* Occurrences of `needle` in the `len` bytes at `p` (binary-safe). */
static int count_in(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    int count = 0;
    const char *end = p + len;
    while (p && (size_t)(end - p) >= n) {
        const char *at = memmem(p, (size_t)(end - p), needle, n);
        if (!at)
            break;
        count++;
        p = at + n;
    }
    return count;
}

/* Asserts that no secret occurs in the bytes; `what` names them in the failure output. */
static void assert_clean(const char *what, const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof g_secrets / sizeof g_secrets[0]; i++) {
        int n = count_in(p, len, g_secrets[i]);
        if (n)
            fprintf(stderr, "\nLEAK: %s holds secret #%zu %d time(s)\n", what, i, n);
        CU_ASSERT_EQUAL(n, 0);
    }
}

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET `url` into `b` (caller frees b->data); the HTTP status or 0. */
static long http_get(const char *url, body *b)
{
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* Appends the reply's strings (recursively) to `b`. */
static void collect_reply(const redisReply *r, body *b)
{
    if (!r)
        return;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR) {
        on_data(r->str, 1, r->len, b);
        on_data("\n", 1, 1, b);
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        collect_reply(r->element[i], b);
}

static void collect_cmd(redisContext *c, body *b, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    collect_reply(r, b);
    if (r)
        freeReplyObject(r);
}

/* Reads the value of one key by its type, plus its DUMP serialisation. */
static void collect_key(redisContext *c, const char *key, body *b)
{
    on_data((char *)key, 1, strlen(key), b);
    on_data("\n", 1, 1, b);
    redisReply *t = redisCommand(c, "TYPE %s", key);
    const char *type = t && t->type == REDIS_REPLY_STATUS ? t->str : "";
    if (strcmp(type, "string") == 0) {
        collect_cmd(c, b, 2, (const char *[]){"GET", key});
    } else if (strcmp(type, "hash") == 0) {
        collect_cmd(c, b, 2, (const char *[]){"HGETALL", key});
    } else if (strcmp(type, "set") == 0) {
        collect_cmd(c, b, 2, (const char *[]){"SMEMBERS", key});
    } else if (strcmp(type, "stream") == 0) {
        collect_cmd(c, b, 4, (const char *[]){"XRANGE", key, "-", "+"});
    } else if (strcmp(type, "list") == 0) {
        collect_cmd(c, b, 4, (const char *[]){"LRANGE", key, "0", "-1"});
    } else if (strcmp(type, "zset") == 0) {
        collect_cmd(c, b, 5, (const char *[]){"ZRANGE", key, "0", "-1", "WITHSCORES"});
    }
    collect_cmd(c, b, 2, (const char *[]){"DUMP", key});
    if (t)
        freeReplyObject(t);
}

/* Every key and value of the instance (SCAN over all of it), as the default user. */
static size_t collect_redis(body *b)
{
    redisContext *c = tft_redis_connect(redis->port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    size_t keys = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s COUNT 1000", cursor);
        CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            collect_key(c, r->element[1]->element[i]->str, b);
            keys++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
    return keys;
}

static bool key_exists(void *arg)
{
    redisReply *r = tft_redis_cmd(redis->port, "EXISTS %s", (const char *)arg);
    bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return yes;
}

static const char *write_config(int metrics_port)
{
    char yaml[2048];
    int n =
        snprintf(yaml, sizeof yaml,
                 "redis: {url: 'redis://127.0.0.1:%d', user: '${TF_TEST_REDIS_USER}',\n"
                 "        password: '${TF_TEST_REDIS_PASSWORD}'}\n"
                 "metrics: {listen: '127.0.0.1:%d'}\n"
                 "log: {level: trace}\n"
                 "pipelines:\n"
                 "  - name: fx\n"
                 "    every: 300ms\n"
                 "    lease: {ttl: 2s}\n"
                 "    sources:\n"
                 "      - use: fx\n"
                 "        with: {providers: [{name: exchangerate_host, base_url: '%s',\n"
                 "                            api_key: '${TF_TEST_FX_KEY}'}]}\n"
                 "    sinks: [{use: redis}, {use: stdout}]\n"
                 "  - name: gen\n"
                 "    every: 200ms\n"
                 "    lease: {ttl: 2s}\n"
                 "    sources:\n"
                 "      - use: generate\n"
                 "        with: {kind: ticker, fields: {exchange: gen, symbol: LBL, label: '%s'}}\n"
                 "    sinks: [{use: redis, with: {kinds: [ticker]}}, {use: stdout}]\n",
                 redis->port, metrics_port, fake->base, VISIBLE_LABEL);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof yaml);
    return tfp_write_config(dir, "masking.yaml", yaml);
}

static pid_t spawn_run(const char *config, const char *log, const char *password)
{
    char pass_env[128];
    snprintf(pass_env, sizeof pass_env, "TF_TEST_REDIS_PASSWORD=%s", password);
    const char *env[] = {"TF_TEST_REDIS_USER=" SECRET_USER, pass_env,
                         "TF_TEST_FX_KEY=" SECRET_FX_KEY, NULL};
    const char *argv[] = {tft_bin("tickflow"), "run", config, NULL};
    return tft_spawn(argv, log, env);
}

typedef struct scrape {
    const char *url;
    body *b;
} scrape;

/* True once /metrics answered and shows a written FX record. */
static bool metrics_scraped(void *arg)
{
    scrape *s = arg;
    free(s->b->data);
    *s->b = (body){0};
    return http_get(s->url, s->b) == 200 && strstr(s->b->data, "tickflow_pipeline_ticks_total");
}

static void test_full_pipeline_leaks_nothing(void)
{
    redisReply *acl = tft_redis_cmd(redis->port, "ACL SETUSER %s on >%s ~* &* +@all", SECRET_USER,
                                    SECRET_PASSWORD);
    CU_ASSERT_FATAL(acl && acl->type == REDIS_REPLY_STATUS);
    freeReplyObject(acl);
    /* The first two FX requests fail: the error paths log too. */
    CU_ASSERT(tft_fake_post(fake, "/admin/fault",
                            "{\"endpoint\":\"exchangerate_host.live\",\"mode\":\"500\","
                            "\"delay_ms\":0,\"count\":2}"));
    int metrics_port = tft_free_port();
    char config[1024];
    snprintf(config, sizeof config, "%s", write_config(metrics_port));
    char log[1100];
    snprintf(log, sizeof log, "%s/run.log", dir);
    pid_t pid = spawn_run(config, log, SECRET_PASSWORD);
    CU_ASSERT_FATAL(pid > 0);

    /* Runs until both pipelines wrote, and for ~3 s in all. */
    long long started = tft_mono_ms();
    CU_ASSERT(tft_wait_until(key_exists, "tf:fx:USDKRW", 20000));
    CU_ASSERT(tft_wait_until(key_exists, "tf:ticker:gen:LBL", 20000));
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", metrics_port);
    body metrics = {0};
    scrape s = {url, &metrics};
    CU_ASSERT(tft_wait_until(metrics_scraped, &s, 10000));
    long long ran = tft_mono_ms() - started;
    if (ran < 3000)
        tft_sleep_ms((int)(3000 - ran)); /* pacing: lets more ticks log, not a wait */
    CU_ASSERT(tft_fake_stat(fake, "exchangerate_host.live", "requests") >= 3);
    CU_ASSERT_EQUAL(tft_stop(pid, SIGTERM, 10000), 0);

    size_t len = 0;
    char *out = tft_read_file(log, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    /* Positive controls: the grep sees what was printed and written. */
    CU_ASSERT(count_in(out, len, VISIBLE_LABEL) > 0);
    CU_ASSERT(count_in(out, len, "exchangerate_host") > 0);
    assert_clean("tickflow run output", out, len);
    free(out);

    assert_clean("/metrics", metrics.data ? metrics.data : "", metrics.len);
    CU_ASSERT(metrics.len > 0);
    free(metrics.data);

    body all = {0};
    CU_ASSERT(collect_redis(&all) >= 4);
    CU_ASSERT(count_in(all.data, all.len, VISIBLE_LABEL) > 0);
    assert_clean("Redis keys and values", all.data, all.len);
    free(all.data);

    char describe_out[1100];
    snprintf(describe_out, sizeof describe_out, "%s/describe.txt", dir);
    const char *args[] = {"plugins", "describe", "fx", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(args, describe_out, 20000), 0);
    char *text = tft_read_file(describe_out, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(count_in(text, len, "api_key") > 0);
    assert_clean("plugins describe fx", text, len);
    free(text);
}

static bool auth_failure_logged(void *arg)
{
    return tft_file_count((const char *)arg, "NOAUTH") + tft_file_count(arg, "WRONGPASS") +
               tft_file_count(arg, "invalid username-password") >
           0;
}

/* Redis refuses the password: the error names the failure, never the password tried. */
static void test_wrong_password_not_echoed(void)
{
    int metrics_port = tft_free_port();
    char config[1024];
    snprintf(config, sizeof config, "%s", write_config(metrics_port));
    char log[1100];
    snprintf(log, sizeof log, "%s/wrong.log", dir);
    pid_t pid = spawn_run(config, log, WRONG_PASSWORD);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT(tft_wait_until(auth_failure_logged, log, 15000));
    tft_stop(pid, SIGTERM, 10000);
    size_t len = 0;
    char *out = tft_read_file(log, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(count_in(out, len, WRONG_PASSWORD), 0);
    assert_clean("run with a wrong password", out, len);
    if (CU_get_number_of_failures())
        fprintf(stderr, "\n%s\n", out);
    free(out);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    redis = tft_redis_start(0);
    fake = tft_fake_start(NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return dir && redis && fake ? 0 : 1;
}

static int teardown(void)
{
    if (fake)
        tft_fake_stop(fake);
    if (redis)
        tft_redis_destroy(redis);
    tft_rmdir(dir);
    free(dir);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"full pipeline at trace: no secret in output, Redis, /metrics, describe",
         test_full_pipeline_leaks_nothing},
        {"a wrong Redis password is not echoed", test_wrong_password_not_echoed},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("masking", tests, setup, teardown);
}
