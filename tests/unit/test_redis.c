/*
 * tf_redis against real redis-server instances: round trips, pipelining, AUTH with an ACL
 * user and with a plain password, SELECT, failing fast and backing off while Redis is down,
 * healing after a restart on the same port, EVALSHA falling back to EVAL on NOSCRIPT, and
 * what the metrics say of a connection nothing needs (idle, never exported as down).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_redis.h"
#include "tf_test.h"

static tf_redis_settings settings_for(int port)
{
    tf_redis_settings s = {
        .configured = true,
        .host = "127.0.0.1",
        .port = port,
        .prefix = "tftest",
        .connect_timeout_ms = 500,
        .command_timeout_ms = 500,
    };
    return s;
}

static bool reply_is_string(const redisReply *reply, const char *expected)
{
    return reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) &&
           reply->str && strcmp(reply->str, expected) == 0;
}

/* Runs `cmd` and says whether the reply was a string or status equal to `expected`. */
static bool command_answers(tf_redis *r, const char *cmd, const char *expected)
{
    redisReply *reply = tf_redis_command(r, cmd);
    bool ok = reply_is_string(reply, expected);
    if (reply)
        freeReplyObject(reply);
    return ok;
}

static double metric_value(tf_metric_type type, const char *name, const char *who)
{
    const char *names[] = {"who", NULL};
    const char *labels[] = {who};
    tf_metric *m = tf_metrics_register(type, name, "", names, NULL, 0);
    return m ? tf_metric_value(m, labels) : -1.0;
}

/* The sample line of `name` for `who` in the exposition, e.g. "tickflow_redis_up{who=\"x\"} 1";
 * "" when the series is not exported. */
static void exported(const char *name, const char *who, char *out, size_t size)
{
    out[0] = '\0';
    char *text = tf_metrics_render(NULL);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "\n%s{who=\"%s\"} ", name, who);
    const char *at = text ? strstr(text, prefix) : NULL;
    if (at) {
        at++;
        snprintf(out, size, "%.*s", (int)strcspn(at, "\n"), at);
    }
    free(text);
}

static bool exported_as(const char *name, const char *who, const char *value)
{
    char line[512], want[512];
    exported(name, who, line, sizeof line);
    if (!value)
        return line[0] == '\0';
    snprintf(want, sizeof want, "%s{who=\"%s\"} %s", name, who, value);
    if (strcmp(line, want) != 0)
        fprintf(stderr, "\nexported \"%s\", expected \"%s\"\n", line, want);
    return strcmp(line, want) == 0;
}

static void test_round_trip(void)
{
    tf_redis_settings s = settings_for(tft_shared_redis_port());
    tf_redis *r = tf_redis_create(&s, "test/round_trip");
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FALSE(tf_redis_is_connected(r)); /* create does not connect */

    redisReply *reply = tf_redis_command(r, "SET %s %b", "tftest:rt", "v\0x", (size_t)3);
    CU_ASSERT(reply_is_string(reply, "OK"));
    freeReplyObject(reply);
    CU_ASSERT(tf_redis_is_connected(r));

    const char *argv[] = {"GET", "tftest:rt"};
    reply = tf_redis_command_argv(r, 2, argv, NULL);
    CU_ASSERT_FATAL(reply != NULL);
    CU_ASSERT_EQUAL(reply->type, REDIS_REPLY_STRING);
    CU_ASSERT_EQUAL(reply->len, 3);
    CU_ASSERT(memcmp(reply->str, "v\0x", 3) == 0);
    freeReplyObject(reply);

    /* An error reply is a reply: the connection stays. */
    reply = tf_redis_command(r, "INCR tftest:rt");
    CU_ASSERT_FATAL(reply != NULL);
    CU_ASSERT_EQUAL(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
    CU_ASSERT(tf_redis_is_connected(r));

    /* Pipelining: replies come back in order. */
    const char *set_a[] = {"SET", "tftest:pa", "1"};
    const char *incr_a[] = {"INCRBY", "tftest:pa", "41"};
    CU_ASSERT_EQUAL(tf_redis_append_argv(r, 3, set_a, NULL), TF_OK);
    CU_ASSERT_EQUAL(tf_redis_append_argv(r, 3, incr_a, NULL), TF_OK);
    reply = tf_redis_get_reply(r);
    CU_ASSERT(reply_is_string(reply, "OK"));
    freeReplyObject(reply);
    reply = tf_redis_get_reply(r);
    CU_ASSERT_FATAL(reply != NULL);
    CU_ASSERT_EQUAL(reply->type, REDIS_REPLY_INTEGER);
    CU_ASSERT_EQUAL(reply->integer, 42);
    freeReplyObject(reply);

    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 0);
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_redis_up", "test/round_trip"), 1.0);
    tf_redis_drop(r);
    CU_ASSERT_FALSE(tf_redis_is_connected(r));
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_redis_up", "test/round_trip"), 0.0);
    CU_ASSERT(command_answers(r, "PING", "PONG")); /* a drop reconnects at once */
    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 1);
    tf_redis_destroy(r);
}

static void test_select_db(void)
{
    int port = tft_shared_redis_port();
    tf_redis_settings s = settings_for(port);
    s.db = 3;
    tf_redis *r = tf_redis_create(&s, "test/select");
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(command_answers(r, "SET tftest:db three", "OK"));
    tf_redis_destroy(r);

    redisContext *c = tft_redis_connect(port);
    CU_ASSERT_FATAL(c != NULL);
    redisReply *reply = redisCommand(c, "GET tftest:db");
    CU_ASSERT(reply && reply->type == REDIS_REPLY_NIL); /* not in db 0 */
    freeReplyObject(reply);
    reply = redisCommand(c, "SELECT 3");
    freeReplyObject(reply);
    reply = redisCommand(c, "GET tftest:db");
    CU_ASSERT(reply_is_string(reply, "three"));
    freeReplyObject(reply);
    redisFree(c);
}

static void test_auth(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    redisReply *reply =
        tft_redis_cmd(server->port, "ACL SETUSER tfuser on >s3cret-pass ~tftest:* +@all");
    CU_ASSERT(reply_is_string(reply, "OK"));
    if (reply)
        freeReplyObject(reply);

    tf_redis_settings s = settings_for(server->port);
    s.user = "tfuser";
    s.password = "s3cret-pass";
    tf_redis *good = tf_redis_create(&s, "test/auth_good");
    CU_ASSERT_FATAL(good != NULL);
    CU_ASSERT(command_answers(good, "SET tftest:auth yes", "OK"));
    /* The ACL applies: this user may not touch other keys. */
    reply = tf_redis_command(good, "SET other:key no");
    CU_ASSERT(reply && reply->type == REDIS_REPLY_ERROR);
    if (reply)
        freeReplyObject(reply);
    tf_redis_destroy(good);

    s.password = "wrong-password";
    tf_redis *bad = tf_redis_create(&s, "test/auth_bad");
    CU_ASSERT_FATAL(bad != NULL);
    long long start = tft_mono_ms();
    CU_ASSERT_PTR_NULL(tf_redis_command(bad, "PING"));
    CU_ASSERT(tft_mono_ms() - start < 1000);
    CU_ASSERT_FALSE(tf_redis_is_connected(bad));
    CU_ASSERT_PTR_NULL(tf_redis_command(bad, "PING")); /* still refused, no crash, no leak */
    tf_redis_destroy(bad);

    /* Password alone (requirepass, the default user). */
    reply = tft_redis_cmd(server->port, "CONFIG SET requirepass %s", "plain-pass");
    CU_ASSERT(reply_is_string(reply, "OK"));
    if (reply)
        freeReplyObject(reply);
    s.user = NULL;
    s.password = "plain-pass";
    tf_redis *plain = tf_redis_create(&s, "test/auth_plain");
    CU_ASSERT_FATAL(plain != NULL);
    CU_ASSERT(command_answers(plain, "PING", "PONG"));
    tf_redis_destroy(plain);

    s.password = NULL;
    tf_redis *none = tf_redis_create(&s, "test/auth_none");
    CU_ASSERT_FATAL(none != NULL);
    reply = tf_redis_command(none, "PING");
    CU_ASSERT(reply && reply->type == REDIS_REPLY_ERROR); /* NOAUTH, connection itself fine */
    if (reply)
        freeReplyObject(reply);
    tf_redis_destroy(none);
    tft_redis_destroy(server);
}

/* A TCP listener that accepts and closes at once, counting connections: stands in for a
 * broken server so the test can count how often tf_redis tries to reconnect. */
typedef struct slammer {
    int fd;
    atomic_int accepted;
    atomic_bool stop;
    pthread_t thread;
} slammer;

static void *slammer_run(void *arg)
{
    slammer *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 10) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c >= 0) {
            atomic_fetch_add(&s->accepted, 1);
            close(c);
        }
    }
    return NULL;
}

static int slammer_start(slammer *s, int port)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s->fd, 64) != 0) {
        close(s->fd);
        return -1;
    }
    atomic_init(&s->accepted, 0);
    atomic_init(&s->stop, false);
    return pthread_create(&s->thread, NULL, slammer_run, s) == 0 ? 0 : -1;
}

static void slammer_stop(slammer *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static bool pings(void *arg)
{
    return command_answers(arg, "PING", "PONG");
}

static void test_outage_and_recovery(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    tf_redis_settings s = settings_for(server->port);
    tf_redis *r = tf_redis_create(&s, "test/outage");
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(command_answers(r, "PING", "PONG"));
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_redis_up", "test/outage"), 1.0);

    tft_redis_stop(server);
    long long start = tft_mono_ms();
    CU_ASSERT_PTR_NULL(tf_redis_command(r, "PING"));
    CU_ASSERT(tft_mono_ms() - start < s.connect_timeout_ms + 500);
    CU_ASSERT_FALSE(tf_redis_is_connected(r));
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_redis_up", "test/outage"), 0.0);
    /* Down: every call fails and returns promptly. */
    start = tft_mono_ms();
    for (int i = 0; i < 200; i++)
        CU_ASSERT_PTR_NULL(tf_redis_command(r, "PING"));
    CU_ASSERT(tft_mono_ms() - start < 1000);

    /* A server that accepts and hangs up at once: calls in a tight loop for one second reach
     * it only as often as the growing backoff allows (full jitter over 100, 200, 400 ms...:
     * about 5 in the first second), not once per call. */
    slammer sl;
    CU_ASSERT_FATAL(slammer_start(&sl, server->port) == 0);
    int calls = 0;
    start = tft_mono_ms();
    while (tft_mono_ms() - start < 1000) {
        redisReply *reply = tf_redis_command(r, "PING");
        CU_ASSERT_PTR_NULL(reply);
        if (reply)
            freeReplyObject(reply);
        calls++;
        tft_sleep_ms(1);
    }
    slammer_stop(&sl);
    int accepted = atomic_load(&sl.accepted);
    CU_ASSERT(calls > 300);
    CU_ASSERT(accepted >= 2);
    CU_ASSERT(accepted <= 20);

    /* Back on the same port: the same tf_redis heals without being recreated. */
    unsigned long before = tf_redis_reconnects(r);
    CU_ASSERT_FATAL(tft_redis_restart(server) == 0);
    CU_ASSERT(tft_wait_until(pings, r, 8000));
    CU_ASSERT(tf_redis_is_connected(r));
    CU_ASSERT(tf_redis_reconnects(r) > before);
    CU_ASSERT_EQUAL(
        metric_value(TF_METRIC_COUNTER, "tickflow_redis_reconnects_total", "test/outage"),
        (double)tf_redis_reconnects(r));
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_redis_up", "test/outage"), 1.0);
    tf_redis_destroy(r);
    tft_redis_destroy(server);
}

static long long client_id(tf_redis *r)
{
    redisReply *reply = tf_redis_command(r, "CLIENT ID");
    long long id = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply)
        freeReplyObject(reply);
    return id;
}

static bool kill_client(int port, long long id)
{
    redisReply *reply = tft_redis_cmd(port, "CLIENT KILL ID %lld", id);
    bool killed = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (reply)
        freeReplyObject(reply);
    return killed;
}

/* The server closing an established connection (its `timeout`, CLIENT KILL, a restart) costs
 * the caller nothing: the command goes out once more on a new connection (issue 10). */
static void test_closed_connection_retried_once(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    tf_redis_settings s = settings_for(server->port);
    tf_redis *r = tf_redis_create(&s, "test/closed");
    CU_ASSERT_FATAL(r != NULL);
    long long first = client_id(r);
    CU_ASSERT_FATAL(first > 0);

    CU_ASSERT_FATAL(kill_client(server->port, first));
    CU_ASSERT(command_answers(r, "SET tftest:closed 1", "OK"));
    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 1);
    long long second = client_id(r);
    CU_ASSERT(second > first);

    CU_ASSERT_FATAL(kill_client(server->port, second));
    const char *argv[] = {"GET", "tftest:closed"};
    redisReply *reply = tf_redis_command_argv(r, 2, argv, NULL);
    CU_ASSERT(reply_is_string(reply, "1"));
    if (reply)
        freeReplyObject(reply);
    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 2);

    /* Restarted (empty) between two commands: the next one succeeds, on the new server. */
    CU_ASSERT_FATAL(tft_redis_restart(server) == 0);
    CU_ASSERT(command_answers(r, "PING", "PONG"));
    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 3);
    CU_ASSERT_EQUAL(metric_value(TF_METRIC_GAUGE, "tickflow_redis_up", "test/closed"), 1.0);

    /* Stopped: one retry, refused at once, then the usual backoff. */
    tft_redis_stop(server);
    long long start = tft_mono_ms();
    CU_ASSERT_PTR_NULL(tf_redis_command(r, "PING"));
    CU_ASSERT(tft_mono_ms() - start < s.connect_timeout_ms + 500);
    CU_ASSERT_FALSE(tf_redis_is_connected(r));
    tf_redis_destroy(r);
    tft_redis_destroy(server);
}

static bool script_cached(int port, const char *script)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(script, strlen(script), md, &n, EVP_sha1(), NULL);
    char hex[41];
    for (unsigned int i = 0; i < n && i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    redisReply *reply = tft_redis_cmd(port, "SCRIPT EXISTS %s", hex);
    bool cached = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
                  reply->element[0]->integer == 1;
    if (reply)
        freeReplyObject(reply);
    return cached;
}

static void test_eval_noscript_fallback(void)
{
    /* A private server: SCRIPT FLUSH would disturb tests sharing the suite-wide one. */
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    int port = server->port;
    tf_redis_settings s = settings_for(port);
    tf_redis *r = tf_redis_create(&s, "test/eval");
    CU_ASSERT_FATAL(r != NULL);
    static const char script[] = "return KEYS[1] .. '=' .. ARGV[1] .. '/' .. #ARGV";
    const char *argv[] = {"tftest:k", "v\0w", "second"};
    const size_t lens[] = {8, 3, 6};

    redisReply *reply = tf_redis_eval(r, script, 1, 3, argv, lens);
    CU_ASSERT_FATAL(reply != NULL);
    CU_ASSERT_EQUAL(reply->type, REDIS_REPLY_STRING);
    CU_ASSERT_EQUAL(reply->len, 14);
    CU_ASSERT(memcmp(reply->str, "tftest:k=v\0w/2", 14) == 0);
    freeReplyObject(reply);
    CU_ASSERT(script_cached(port, script));

    redisReply *flushed = tft_redis_cmd(port, "SCRIPT FLUSH");
    CU_ASSERT(reply_is_string(flushed, "OK"));
    if (flushed)
        freeReplyObject(flushed);
    CU_ASSERT_FALSE(script_cached(port, script));

    const char *plain[] = {"tftest:k", "x"};
    reply = tf_redis_eval(r, script, 1, 2, plain, NULL);
    CU_ASSERT(reply_is_string(reply, "tftest:k=x/1"));
    if (reply)
        freeReplyObject(reply);
    CU_ASSERT(script_cached(port, script));
    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 0);

    /* A script error is a reply, not a broken connection. */
    static const char broken[] = "return redis.call('NOSUCHCOMMAND')";
    reply = tf_redis_eval(r, broken, 0, 0, NULL, NULL);
    CU_ASSERT(reply && reply->type == REDIS_REPLY_ERROR);
    if (reply)
        freeReplyObject(reply);
    CU_ASSERT(tf_redis_is_connected(r));
    tf_redis_destroy(r);
    tft_redis_destroy(server);
}

static void test_unreachable_at_start(void)
{
    int port = tft_free_port();
    tf_redis_settings s = settings_for(port);
    tf_redis *r = tf_redis_create(&s, "test/never_up");
    CU_ASSERT_FATAL(r != NULL);
    long long start = tft_mono_ms();
    for (int i = 0; i < 50; i++)
        CU_ASSERT_PTR_NULL(tf_redis_command(r, "PING"));
    CU_ASSERT(tft_mono_ms() - start < 1000);
    const char *argv[] = {"PING"};
    CU_ASSERT_EQUAL(tf_redis_append_argv(r, 1, argv, NULL), TF_EREDIS);
    CU_ASSERT_PTR_NULL(tf_redis_get_reply(r));

    /* A first connection after failed attempts counts as a recovery (docs/metrics.md). */
    tft_redis *server = tft_redis_start(port);
    CU_ASSERT_FATAL(server != NULL);
    CU_ASSERT(tft_wait_until(pings, r, 8000));
    CU_ASSERT_EQUAL(tf_redis_reconnects(r), 1);
    CU_ASSERT_EQUAL(
        metric_value(TF_METRIC_COUNTER, "tickflow_redis_reconnects_total", "test/never_up"), 1.0);
    tf_redis_destroy(r);
    tft_redis_destroy(server);
}

/* A connection its owner never used, or that its pipeline stopped needing when it went on
 * standby, is idle: tickflow_redis_idle 1 and no tickflow_redis_up series, so a standby's
 * plugin connections never look like an outage. Used, it says up (1) or down (0). */
static void test_idle_is_not_down(void)
{
    tft_redis *server = tft_redis_start(0);
    CU_ASSERT_FATAL(server != NULL);
    tf_redis_settings s = settings_for(server->port);
    const char *who = "kimchi/test_idle";
    tf_redis *r = tf_redis_create_for(&s, who, "kimchi");
    tf_redis *lease = tf_redis_create(&s, "lease/test_idle");
    CU_ASSERT_FATAL(r != NULL && lease != NULL);
    CU_ASSERT(exported_as("tickflow_redis_up", who, NULL));
    CU_ASSERT(exported_as("tickflow_redis_idle", who, "1"));

    CU_ASSERT(command_answers(r, "PING", "PONG"));
    CU_ASSERT(command_answers(lease, "PING", "PONG"));
    CU_ASSERT(exported_as("tickflow_redis_up", who, "1"));
    CU_ASSERT(exported_as("tickflow_redis_idle", who, "0"));

    /* The pipeline goes on standby: its connection is idle, the lease's is not touched. */
    tf_redis_idle_pipeline("kimchi");
    CU_ASSERT(exported_as("tickflow_redis_up", who, NULL));
    CU_ASSERT(exported_as("tickflow_redis_idle", who, "1"));
    CU_ASSERT(exported_as("tickflow_redis_up", "lease/test_idle", "1"));

    /* Used again while Redis is down: down. Then idle again: no longer reported down. */
    tft_redis_stop(server);
    CU_ASSERT_PTR_NULL(tf_redis_command(r, "PING"));
    CU_ASSERT(exported_as("tickflow_redis_up", who, "0"));
    CU_ASSERT(exported_as("tickflow_redis_idle", who, "0"));
    tf_redis_idle_pipeline("kimchi");
    CU_ASSERT(exported_as("tickflow_redis_up", who, NULL));
    CU_ASSERT(exported_as("tickflow_redis_idle", who, "1"));

    /* Closed: exported neither way. */
    tf_redis_destroy(r);
    CU_ASSERT(exported_as("tickflow_redis_up", who, NULL));
    CU_ASSERT(exported_as("tickflow_redis_idle", who, NULL));
    tf_redis_destroy(lease);
    tft_redis_destroy(server);
}

static int suite_cleanup(void)
{
    tf_metrics_shutdown();
    tf_log_shutdown();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"round trip, pipelining, drop", test_round_trip},
        {"SELECT db", test_select_db},
        {"AUTH: ACL user, wrong password, requirepass", test_auth},
        {"outage: fail fast, backoff, heal on the same port", test_outage_and_recovery},
        {"EVALSHA falls back to EVAL on NOSCRIPT", test_eval_noscript_fallback},
        {"a connection the server closed: the command is retried once",
         test_closed_connection_retried_once},
        {"unreachable at start", test_unreachable_at_start},
        {"idle connections are not exported as down", test_idle_is_not_down},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("tf_redis", tests, NULL, suite_cleanup);
}
