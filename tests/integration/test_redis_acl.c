/*
 * Least privilege with Redis ACLs: the two ACL SETUSER lines of docs/security.md (read from the
 * page, so the page and the test cannot drift) are enough for a batch replica and an API
 * replica to do their work, and refuse what each role must not do.
 */
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tf_fake.h"
#include "tf_proc.h"
#include "tf_test.h"

#define BATCH_USER     "tickflow-batch"
#define BATCH_PASSWORD "bt-Vq8Lz3Nx7Rk2Pm9Ws4Yd"
#define API_USER       "tickflow-api"
#define API_PASSWORD   "ap-Hc6Tj1Qb8Zx4Lr7Mn2Kf"
#define MAX_ARGS       64

static char *dir;
static tft_redis *redis;
static tft_fake *fake;

/* The "ACL SETUSER ..." line between <!-- acl:<role> --> and <!-- /acl:<role> --> of
 * docs/security.md, into `out`; false when missing. */
static bool doc_acl_line(const char *role, char *out, size_t size)
{
    char *doc = tft_read_file(tft_source_path("docs/security.md"), NULL);
    char open[64], close[64];
    snprintf(open, sizeof open, "<!-- acl:%s -->", role);
    snprintf(close, sizeof close, "<!-- /acl:%s -->", role);
    bool found = false;
    const char *start = doc ? strstr(doc, open) : NULL;
    const char *end = start ? strstr(start, close) : NULL;
    const char *line = start ? strstr(start, "ACL SETUSER ") : NULL;
    if (line && end && line < end) {
        size_t n = strcspn(line, "\r\n");
        found = (size_t)snprintf(out, size, "%.*s", (int)n, line) < size;
    }
    free(doc);
    return found;
}

/* Runs the documented line on the private instance, with the placeholder password
 * (>BATCH_PASSWORD / >API_PASSWORD) replaced by the test's. */
static bool create_user(const char *role, const char *placeholder, const char *password)
{
    char line[2048];
    if (!doc_acl_line(role, line, sizeof line))
        return false;
    const char *argv[MAX_ARGS];
    char pass_arg[128];
    snprintf(pass_arg, sizeof pass_arg, ">%s", password);
    /* Split on blanks in place: the ACL rules hold no quoted arguments. */
    int argc = 0;
    char *p = line;
    while (*p && argc < MAX_ARGS) {
        p += strspn(p, " \t");
        if (!*p)
            break;
        char *tok = p;
        p += strcspn(p, " \t");
        if (*p)
            *p++ = '\0';
        argv[argc++] = tok[0] == '>' && strcmp(tok + 1, placeholder) == 0 ? pass_arg : tok;
    }
    redisContext *c = tft_redis_connect(redis->port);
    if (!c)
        return false;
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (!ok)
        fprintf(stderr, "\n%s: %s\n", role, r && r->str ? r->str : "no reply");
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* A connection authenticated as `user`. */
static redisContext *connect_as(const char *user, const char *password)
{
    redisContext *c = tft_redis_connect(redis->port);
    if (!c)
        return NULL;
    redisReply *r = redisCommand(c, "AUTH %s %s", user, password);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* True when `user` gets a NOPERM error for the command. */
static bool refused(const char *user, const char *password, int argc, const char **argv)
{
    redisContext *c = connect_as(user, password);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    bool no = r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOPERM") != NULL;
    if (!no)
        fprintf(stderr, "\n%s %s: expected NOPERM, found %s\n", user, argv[0],
                r ? (r->str ? r->str : "a non-error reply") : "no reply");
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return no;
}

static bool key_exists(void *arg)
{
    redisReply *r = tft_redis_cmd(redis->port, "EXISTS %s", (const char *)arg);
    bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    return yes;
}

static bool premium_served(void *arg)
{
    char *body = NULL;
    bool served = tft_http_get(arg, NULL, 2000, &body) == 200 && strstr(body, "\"premium_pct\"");
    free(body);
    return served;
}

static void dump_log_on_failure(const char *log)
{
    if (!CU_get_number_of_failures())
        return;
    char *text = tft_read_file(log, NULL);
    fprintf(stderr, "\n%s:\n%s\n", log, text ? text : "");
    free(text);
}

/* The demo's batch role (pipelines/demo.yaml) against the fake exchange, as the batch user. */
static const char *write_batch_config(void)
{
    char yaml[2048];
    int n =
        snprintf(yaml, sizeof yaml,
                 "redis: {url: 'redis://127.0.0.1:%d/0', user: '${TF_TEST_REDIS_USER}',\n"
                 "        password: '${TF_TEST_REDIS_PASSWORD}'}\n"
                 "pipelines:\n"
                 "  - name: fx\n"
                 "    every: 10m\n"
                 "    lease: {ttl: 2s}\n"
                 "    sources: [{use: fx, with: {providers: [{name: dunamu, base_url: '%s'}]}}]\n"
                 "    sinks: [{use: redis}]\n"
                 "  - name: kimchi\n"
                 "    every: 300ms\n"
                 "    lease: {ttl: 2s}\n"
                 "    sources:\n"
                 "      - {use: bithumb, with: {base_url: '%s', symbols: [BTC, ETH]}}\n"
                 "      - {use: binance_futures, with: {base_url: '%s', symbols: [BTC, ETH]}}\n"
                 "      - {use: redis, with: {keys: ['fx:USDKRW']}}\n"
                 "    transforms:\n"
                 "      - {use: premium, with: {max_skew: 30s, max_ticker_age: 30s}}\n"
                 "      - {use: positions}\n"
                 "    sinks: [{use: redis}]\n",
                 redis->port, fake->base, fake->base, fake->base);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof yaml);
    return tfp_write_config(dir, "batch.yaml", yaml);
}

/* Runs `tickflow positions ...` as the API user; its exit code, -1 when it did not exit. */
static int run_as_api(const char *const *argv, const char *log)
{
    const char *env[] = {"TF_TEST_REDIS_USER=" API_USER, "TF_TEST_REDIS_PASSWORD=" API_PASSWORD,
                         NULL};
    pid_t pid = tft_spawn(argv, log, env);
    int status = 0;
    if (pid <= 0 || !tft_wait_exit(pid, 20000, &status)) {
        if (pid > 0)
            tft_kill_wait(pid);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_roles_work_and_are_confined(void)
{
    CU_ASSERT_FATAL(create_user("batch", "BATCH_PASSWORD", BATCH_PASSWORD));
    CU_ASSERT_FATAL(create_user("api", "API_PASSWORD", API_PASSWORD));

    char batch_cfg[1024], batch_log[1100], api_log[1100];
    snprintf(batch_cfg, sizeof batch_cfg, "%s", write_batch_config());
    snprintf(batch_log, sizeof batch_log, "%s/batch.log", dir);
    snprintf(api_log, sizeof api_log, "%s/api.log", dir);
    const char *batch_env[] = {"TF_TEST_REDIS_USER=" BATCH_USER,
                               "TF_TEST_REDIS_PASSWORD=" BATCH_PASSWORD, NULL};
    const char *batch_argv[] = {tft_bin("tickflow"), "run", batch_cfg, NULL};
    pid_t batch = tft_spawn(batch_argv, batch_log, batch_env);
    CU_ASSERT_FATAL(batch > 0);
    CU_ASSERT(tft_wait_until(key_exists, "tf:premium:bithumb:binance:BTC", 20000));
    CU_ASSERT(key_exists("tf:fx:USDKRW"));
    CU_ASSERT(key_exists("tf:history:premium:bithumb:binance:BTC"));

    char redis_url[64], api_listen[64], env_url[96], env_listen[96], metrics_listen[96];
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis->port);
    int api_port = tft_free_port();
    snprintf(api_listen, sizeof api_listen, "127.0.0.1:%d", api_port);
    snprintf(env_url, sizeof env_url, "TICKFLOW_REDIS_URL=%s", redis_url);
    snprintf(env_listen, sizeof env_listen, "TICKFLOW_API_LISTEN=%s", api_listen);
    snprintf(metrics_listen, sizeof metrics_listen, "TICKFLOW_METRICS_LISTEN=127.0.0.1:%d",
             tft_free_port());
    const char *api_env[] = {env_url,
                             env_listen,
                             metrics_listen,
                             "TICKFLOW_REDIS_USER=" API_USER,
                             "TICKFLOW_REDIS_PASSWORD=" API_PASSWORD,
                             NULL};
    const char *api_argv[] = {tft_bin("tickflow"), "run", tft_source_path("pipelines/api.yaml"),
                              NULL};
    pid_t api = tft_spawn(api_argv, api_log, api_env);
    CU_ASSERT_FATAL(api > 0);
    char url[128];
    snprintf(url, sizeof url, "http://%s/v1/premium/BTC", api_listen);
    CU_ASSERT(tft_wait_until(premium_served, url, 20000));

    /* The positions writes of the API role, through the CLI that shares its code. */
    /* The batch file, read with the API user's credentials: the CLI runs no pipeline. */
    const char *cli_cfg = batch_cfg;
    char cli_log[1100];
    snprintf(cli_log, sizeof cli_log, "%s/cli.log", dir);
    const char *open[] = {tft_bin("tickflow"),
                          "positions",
                          "open",
                          "-c",
                          cli_cfg,
                          "--symbol",
                          "BTC",
                          "--direction",
                          "long_krw_short_global",
                          "--size",
                          "1",
                          "--krw-price",
                          "140000000",
                          "--global-price",
                          "95000",
                          "--usdkrw",
                          "1400",
                          NULL};
    CU_ASSERT_EQUAL(run_as_api(open, cli_log), 0);
    CU_ASSERT(key_exists("tf:position:pos-1"));
    const char *close[] = {tft_bin("tickflow"), "positions", "close", "-c", cli_cfg, "pos-1", NULL};
    CU_ASSERT_EQUAL(run_as_api(close, cli_log), 0);
    redisReply *status = tft_redis_cmd(redis->port, "HGET tf:position:pos-1 status");
    CU_ASSERT(status && status->type == REDIS_REPLY_STRING && strcmp(status->str, "closed") == 0);
    if (status)
        freeReplyObject(status);
    dump_log_on_failure(cli_log);

    /* What each role must not do. */
    CU_ASSERT(refused(API_USER, API_PASSWORD, 3, (const char *[]){"SET", "tf:premium:x", "y"}));
    CU_ASSERT(refused(API_USER, API_PASSWORD, 1, (const char *[]){"FLUSHALL"}));
    CU_ASSERT(refused(API_USER, API_PASSWORD, 2, (const char *[]){"GET", "tf:keys:bithumb:main"}));
    CU_ASSERT(refused(API_USER, API_PASSWORD, 2, (const char *[]){"GET", "tf:fence:kimchi"}));
    CU_ASSERT(refused(BATCH_USER, BATCH_PASSWORD, 1, (const char *[]){"FLUSHALL"}));
    CU_ASSERT(refused(BATCH_USER, BATCH_PASSWORD, 3, (const char *[]){"CONFIG", "GET", "*"}));
    CU_ASSERT(refused(BATCH_USER, BATCH_PASSWORD, 3, (const char *[]){"SET", "other:x", "y"}));
    CU_ASSERT(refused(BATCH_USER, BATCH_PASSWORD, 2, (const char *[]){"KEYS", "*"}));

    CU_ASSERT_EQUAL(tft_stop(api, SIGTERM, 10000), 0);
    CU_ASSERT_EQUAL(tft_stop(batch, SIGTERM, 10000), 0);
    /* Every command either role ran was allowed. */
    CU_ASSERT_EQUAL(tft_file_count(batch_log, "NOPERM"), 0);
    CU_ASSERT_EQUAL(tft_file_count(api_log, "NOPERM"), 0);
    redisReply *log = tft_redis_cmd(redis->port, "ACL LOG");
    CU_ASSERT(log && log->type == REDIS_REPLY_ARRAY);
    /* ACL LOG also holds the refusals provoked above: 8 entries (counted once each). */
    CU_ASSERT(log && log->elements == 8);
    if (log && log->elements != 8) {
        for (size_t i = 0; i < log->elements; i++) {
            const redisReply *e = log->element[i];
            for (size_t k = 0; k + 1 < e->elements; k += 2) {
                if (e->element[k + 1]->type == REDIS_REPLY_STRING)
                    fprintf(stderr, " %s=%s", e->element[k]->str, e->element[k + 1]->str);
            }
            fprintf(stderr, "\n");
        }
    }
    if (log)
        freeReplyObject(log);
    dump_log_on_failure(batch_log);
    dump_log_on_failure(api_log);
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
        {"documented ACLs: batch and API roles work, forbidden commands get NOPERM",
         test_roles_work_and_are_confined},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("redis ACL", tests, setup, teardown);
}
