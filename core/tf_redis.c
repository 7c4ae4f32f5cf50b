/*
 * tf_redis: one synchronous hiredis connection that reconnects by itself, with full-jitter
 * exponential backoff between attempts, state changes logged once, and the
 * tickflow_redis_up / tickflow_redis_idle / tickflow_redis_reconnects_total metrics. Writing to
 * a socket the server closed raises SIGPIPE: the process ignores it (tf_runtime_init,
 * tft_run_suite).
 */
#include "tf_redis.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "tf_common.h"
#include "tf_log.h"
#include "tf_metrics.h"

#define TF_REDIS_BACKOFF_BASE_MS    100
#define TF_REDIS_BACKOFF_CAP_MS     5000
#define TF_REDIS_DEFAULT_CONNECT_MS 500
#define TF_REDIS_DEFAULT_COMMAND_MS 1000
#define TF_REDIS_SHA_CACHE          4
#define TF_REDIS_SHA_HEX            41

typedef struct sha_entry {
    const char *script; /* borrowed: the caller keeps it valid while the tf_redis exists */
    char hex[TF_REDIS_SHA_HEX];
} sha_entry;

struct tf_redis {
    char *host;
    int port;
    int db;
    char *user;     /* NULL when unset */
    char *password; /* NULL when unset; never logged */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    char *who;

    redisContext *ctx; /* NULL while disconnected; never reused after an error */
    bool answered;     /* the server has answered on ctx: the connection counts as made */
    int64_t retry_at;  /* monotonic ms: no connection attempt before this */
    unsigned failures; /* failed connection attempts since the last success (backoff exponent) */
    unsigned attempts; /* connection attempts since the connection was lost (for the log) */
    bool ever_connected;
    bool down_logged; /* "lost" / "cannot connect" was logged and "reconnected" is still due */
    unsigned long reconnects;
    uint64_t rng;

    sha_entry sha[TF_REDIS_SHA_CACHE];
    size_t sha_next;

    char *pipeline; /* NULL unless opened for a pipeline's plugin; set once at creation */
    tf_redis *next; /* in g_all, under g_all_lock */

    /* What the metrics say, under export_lock (tf_redis_idle_pipeline runs on another thread):
     * a connection is in use from its first command until its pipeline goes on standby, and
     * only then does tickflow_redis_up tell whether it is established. */
    pthread_mutex_t export_lock;
    bool in_use;
    bool connected;
    int64_t last_ok_ms;   /* monotonic ms of the last command that got a reply; 0: none */
    int64_t last_fail_ms; /* ... and of the last one that did not (unreachable, broken) */

    tf_metric *m_up;
    tf_metric *m_idle;
    tf_metric *m_reconnects;
};

/* Every live connection, so that a pipeline going on standby can mark its plugins' idle. */
static pthread_mutex_t g_all_lock = PTHREAD_MUTEX_INITIALIZER;
static tf_redis *g_all;

/* --- helpers --- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static uint64_t next_random(tf_redis *r)
{
    /* xorshift64*: enough to spread the reconnects of many replicas, no crypto needed */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545F4914F6CDD1DULL;
}

static void seed_random(tf_redis *r)
{
    uint64_t seed = 0;
    if (RAND_bytes((unsigned char *)&seed, (int)sizeof seed) != 1)
        seed = (uint64_t)tf_now_ms() ^ (uint64_t)(uintptr_t)r;
    r->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

/* Full jitter (uniform in [0, min(cap, base * 2^failures)]) so replicas that lost Redis at the
 * same moment do not reconnect in lockstep. */
static void schedule_retry(tf_redis *r)
{
    int64_t ceiling = TF_REDIS_BACKOFF_BASE_MS;
    for (unsigned i = 0; i < r->failures && ceiling < TF_REDIS_BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > TF_REDIS_BACKOFF_CAP_MS)
        ceiling = TF_REDIS_BACKOFF_CAP_MS;
    r->retry_at = tf_mono_ms() + (int64_t)(next_random(r) % (uint64_t)(ceiling + 1));
}

/* Caller holds export_lock. A connection nothing uses is neither up nor down: it is not
 * exported as down, which the alert rules would read as an outage (docs/metrics.md). */
static void export_state(const tf_redis *r)
{
    const char *labels[] = {r->who};
    if (r->in_use)
        tf_metric_set(r->m_up, labels, r->connected ? 1.0 : 0.0);
    else
        tf_metric_remove(r->m_up, labels);
    tf_metric_set(r->m_idle, labels, r->in_use ? 0.0 : 1.0);
}

static void set_connected(tf_redis *r, bool connected)
{
    pthread_mutex_lock(&r->export_lock);
    r->connected = connected;
    export_state(r);
    pthread_mutex_unlock(&r->export_lock);
}

/* Every command (and every read of a subscribed connection) puts the connection in use. */
static void note_use(tf_redis *r)
{
    pthread_mutex_lock(&r->export_lock);
    r->in_use = true;
    export_state(r);
    pthread_mutex_unlock(&r->export_lock);
}

/* Records whether a command got a reply, for tf_redis_pipeline_reachable. */
static void note_outcome(tf_redis *r, bool ok)
{
    pthread_mutex_lock(&r->export_lock);
    if (ok)
        r->last_ok_ms = tf_mono_ms();
    else
        r->last_fail_ms = tf_mono_ms();
    pthread_mutex_unlock(&r->export_lock);
}

static struct timeval ms_to_timeval(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static const char *context_error(const redisContext *ctx, const char *fallback)
{
    if (ctx && ctx->err && ctx->errstr[0])
        return ctx->errstr;
    return fallback;
}

/* --- connection life cycle --- */

static void free_context(tf_redis *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    set_connected(r, false);
}

/* The connection broke while in use: drop it and wait for the backoff before reconnecting. */
static void lose_connection(tf_redis *r, const char *reason)
{
    if (!r->down_logged)
        TF_WARN(r->who, "lost the Redis connection to %s:%d: %s", r->host, r->port, reason);
    r->down_logged = true;
    free_context(r);
    r->failures = 0;
    r->attempts = 0;
    schedule_retry(r);
}

/* Runs AUTH or SELECT on a fresh context. 0 on success; otherwise copies the reason. */
static int setup_command(redisContext *ctx, int argc, const char **argv, char *why, size_t size)
{
    redisReply *reply = redisCommandArgv(ctx, argc, argv, NULL);
    int rc = -1;
    if (!reply) {
        snprintf(why, size, "%s failed: %s", argv[0], context_error(ctx, "no reply"));
        goto out;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, size, "%s was refused: %s", argv[0], reply->str ? reply->str : "");
        goto out;
    }
    rc = 0;
out:
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Connects and runs AUTH and SELECT. *answered tells whether the server replied already. */
static redisContext *open_context(const tf_redis *r, bool *answered, char *why, size_t size)
{
    *answered = false;
    struct timeval connect_tv = ms_to_timeval(r->connect_timeout_ms);
    redisContext *ctx = redisConnectWithTimeout(r->host, r->port, connect_tv);
    if (!ctx || ctx->err) {
        snprintf(why, size, "%s", context_error(ctx, "out of memory"));
        goto fail;
    }
    if (redisSetTimeout(ctx, ms_to_timeval(r->command_timeout_ms)) != REDIS_OK) {
        snprintf(why, size, "cannot set the command timeout: %s", context_error(ctx, "?"));
        goto fail;
    }
    /* Keepalive detects a peer that vanished without closing (host down, partition) on an
     * otherwise idle connection. */
    if (redisEnableKeepAlive(ctx) != REDIS_OK) {
        snprintf(why, size, "cannot enable TCP keepalive: %s", context_error(ctx, "?"));
        goto fail;
    }
    if (r->password) {
        const char *auth_user[] = {"AUTH", r->user ? r->user : "", r->password};
        const char *auth_pass[] = {"AUTH", r->password};
        int rc = r->user ? setup_command(ctx, 3, auth_user, why, size)
                         : setup_command(ctx, 2, auth_pass, why, size);
        if (rc != 0)
            goto fail;
        *answered = true;
    }
    if (r->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *select[] = {"SELECT", db};
        if (setup_command(ctx, 2, select, why, size) != 0)
            goto fail;
        *answered = true;
    }
    return ctx;
fail:
    if (ctx)
        redisFree(ctx);
    return NULL;
}

/* The first reply on a new connection: only now does it count as made (logged, counted, the
 * backoff reset), so a server that accepts and hangs up at once still meets a growing
 * backoff and a quiet log. */
static void note_connected(tf_redis *r)
{
    r->answered = true;
    r->attempts++;
    /* A first connection after failed attempts counts too: the metric tracks recoveries. */
    if (r->ever_connected || r->attempts > 1) {
        r->reconnects++;
        const char *labels[] = {r->who};
        if (r->m_reconnects)
            tf_metric_add(r->m_reconnects, labels, 1.0);
    }
    if (!r->ever_connected && r->attempts == 1)
        TF_INFO(r->who, "connected to Redis at %s:%d", r->host, r->port);
    else if (!r->ever_connected)
        TF_INFO(r->who, "connected to Redis at %s:%d after %u attempts", r->host, r->port,
                r->attempts);
    else if (r->down_logged)
        TF_INFO(r->who, "reconnected to Redis at %s:%d after %u attempt%s", r->host, r->port,
                r->attempts, r->attempts == 1 ? "" : "s");
    else
        TF_DEBUG(r->who, "reconnected to Redis at %s:%d", r->host, r->port);
    r->ever_connected = true;
    r->down_logged = false;
    r->failures = 0;
    r->attempts = 0;
    set_connected(r, true);
}

static void note_connect_failure(tf_redis *r, const char *why)
{
    r->attempts++;
    if (!r->down_logged)
        TF_WARN(r->who, "cannot connect to Redis at %s:%d: %s (retrying with backoff)", r->host,
                r->port, why);
    else
        TF_DEBUG(r->who, "Redis connection attempt %u to %s:%d failed: %s", r->attempts, r->host,
                 r->port, why);
    r->down_logged = true;
    r->failures++;
    schedule_retry(r);
}

/* Connected, or connected now, or false at once while the backoff deadline is ahead. */
static bool ensure_connected(tf_redis *r)
{
    if (r->ctx)
        return true;
    if (tf_mono_ms() < r->retry_at)
        return false;
    char why[256];
    bool answered = false;
    r->ctx = open_context(r, &answered, why, sizeof why);
    r->answered = false;
    if (!r->ctx) {
        note_connect_failure(r, why);
        return false;
    }
    if (answered)
        note_connected(r);
    return true;
}

/* A NULL reply or a context in error means the stream can no longer be trusted. */
static redisReply *checked_reply(tf_redis *r, redisReply *reply)
{
    if (reply && !r->ctx->err) {
        if (!r->answered)
            note_connected(r);
        note_outcome(r, true);
        return reply;
    }
    note_outcome(r, false);
    char why[160];
    snprintf(why, sizeof why, "%s", context_error(r->ctx, "no reply"));
    if (reply)
        freeReplyObject(reply);
    if (r->answered) {
        lose_connection(r, why);
    } else {
        /* Never answered: a failed attempt, so the backoff keeps growing. */
        free_context(r);
        note_connect_failure(r, why);
    }
    return NULL;
}

/* --- public API --- */

static void register_metrics(tf_redis *r)
{
    const char *label_names[] = {"who", NULL};
    r->m_up = tf_metrics_register(TF_METRIC_GAUGE, "tickflow_redis_up",
                                  "1 while this Redis connection is established, 0 while it is "
                                  "needed and down; absent while idle",
                                  label_names, NULL, 0);
    r->m_idle = tf_metrics_register(TF_METRIC_GAUGE, "tickflow_redis_idle",
                                    "1 while nothing on this replica needs this Redis connection",
                                    label_names, NULL, 0);
    r->m_reconnects = tf_metrics_register(
        TF_METRIC_COUNTER, "tickflow_redis_reconnects_total",
        "Connections re-established after a loss or a failed first attempt", label_names, NULL, 0);
    const char *labels[] = {r->who};
    if (r->m_reconnects)
        tf_metric_add(r->m_reconnects, labels, 0.0); /* the series exists from the start */
    pthread_mutex_lock(&r->export_lock);
    export_state(r); /* idle until its first command */
    pthread_mutex_unlock(&r->export_lock);
}

static void link_connection(tf_redis *r)
{
    pthread_mutex_lock(&g_all_lock);
    r->next = g_all;
    g_all = r;
    pthread_mutex_unlock(&g_all_lock);
}

static void unlink_connection(tf_redis *r)
{
    pthread_mutex_lock(&g_all_lock);
    for (tf_redis **at = &g_all; *at; at = &(*at)->next) {
        if (*at == r) {
            *at = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_all_lock);
}

tf_redis *tf_redis_create(const tf_redis_settings *settings, const char *who)
{
    return tf_redis_create_for(settings, who, NULL);
}

tf_redis *tf_redis_create_for(const tf_redis_settings *settings, const char *who,
                              const char *pipeline)
{
    tf_redis *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->export_lock, NULL);
    r->host = strdup(settings->host && settings->host[0] ? settings->host : "127.0.0.1");
    r->port = settings->port > 0 ? settings->port : 6379;
    r->db = settings->db;
    r->user = dup_or_null(settings->user);
    r->password = dup_or_null(settings->password);
    r->connect_timeout_ms = settings->connect_timeout_ms > 0 ? settings->connect_timeout_ms
                                                             : TF_REDIS_DEFAULT_CONNECT_MS;
    r->command_timeout_ms = settings->command_timeout_ms > 0 ? settings->command_timeout_ms
                                                             : TF_REDIS_DEFAULT_COMMAND_MS;
    r->who = strdup(who ? who : "redis");
    r->pipeline = dup_or_null(pipeline);
    if (!r->host || !r->who || (settings->user && !r->user) ||
        (settings->password && !r->password) || (pipeline && !r->pipeline))
        goto fail;
    seed_random(r);
    r->retry_at = tf_mono_ms();
    register_metrics(r);
    link_connection(r);
    return r;
fail:
    tf_redis_destroy(r);
    return NULL;
}

void tf_redis_destroy(tf_redis *r)
{
    if (!r)
        return;
    unlink_connection(r);
    if (r->ctx)
        redisFree(r->ctx);
    /* A connection that no longer exists is exported neither as down nor as idle. */
    const char *labels[] = {r->who};
    if (r->who) {
        tf_metric_remove(r->m_up, labels);
        tf_metric_remove(r->m_idle, labels);
    }
    pthread_mutex_destroy(&r->export_lock);
    free(r->host);
    free(r->user);
    free(r->password);
    free(r->who);
    free(r->pipeline);
    free(r);
}

void tf_redis_idle_pipeline(const char *pipeline)
{
    pthread_mutex_lock(&g_all_lock);
    for (tf_redis *r = g_all; r; r = r->next) {
        if (!r->pipeline || strcmp(r->pipeline, pipeline) != 0)
            continue;
        pthread_mutex_lock(&r->export_lock);
        r->in_use = false;
        export_state(r);
        pthread_mutex_unlock(&r->export_lock);
    }
    pthread_mutex_unlock(&g_all_lock);
}

/* Did the command fail because the server had closed (or reset) a connection that worked
 * before: "Server closed the connection" (an idle connection Redis closed with its `timeout`, or
 * one that outlived a restart), "Broken pipe", "Connection reset by peer"? Not a timeout: a
 * Redis that does not answer may have run the command, and a retry would double the wait.
 * hiredis keeps only the text of errno (strerror), so the I/O cases are matched on it. */
static bool closed_by_server(const tf_redis *r, const redisReply *reply, bool had_answered)
{
    if (reply || !had_answered || !r->ctx || !r->ctx->err)
        return false;
    if (r->ctx->err == REDIS_ERR_EOF)
        return true;
    return r->ctx->err == REDIS_ERR_IO && (strcmp(r->ctx->errstr, strerror(EPIPE)) == 0 ||
                                           strcmp(r->ctx->errstr, strerror(ECONNRESET)) == 0);
}

/* The connection died under an established connection's first command: drop it without the
 * backoff, so the caller's single retry reconnects at once. A Redis that is really gone then
 * refuses the new connection, and that failure starts the backoff as usual. */
static void drop_closed(tf_redis *r)
{
    TF_INFO(r->who, "Redis closed the connection to %s:%d (%s); retrying once on a new connection",
            r->host, r->port, context_error(r->ctx, "closed"));
    free_context(r);
    r->retry_at = 0;
}

/* Sends one command with send(r, arg) and reads its reply, retrying once on a new connection
 * when the server had closed the connection (closed_by_server). Callers' writes are idempotent
 * or fenced (docs/redis.md), so the retry cannot apply a stale holder's write. */
typedef redisReply *(*send_fn)(redisContext *ctx, void *arg);

static redisReply *command_with_retry(tf_redis *r, send_fn send, void *arg)
{
    note_use(r);
    for (int attempt = 0;; attempt++) {
        if (!ensure_connected(r)) {
            note_outcome(r, false);
            return NULL;
        }
        bool had_answered = r->answered;
        redisReply *reply = send(r->ctx, arg);
        if (attempt == 0 && closed_by_server(r, reply, had_answered)) {
            drop_closed(r);
            continue;
        }
        return checked_reply(r, reply);
    }
}

typedef struct fmt_args {
    const char *fmt;
    va_list ap;
} fmt_args;

static redisReply *send_fmt(redisContext *ctx, void *arg)
{
    fmt_args *f = arg;
    va_list ap;
    va_copy(ap, f->ap); /* a retry formats the same arguments again */
    redisReply *reply = redisvCommand(ctx, f->fmt, ap);
    va_end(ap);
    return reply;
}

typedef struct argv_args {
    int argc;
    const char **argv;
    const size_t *lens;
} argv_args;

static redisReply *send_argv(redisContext *ctx, void *arg)
{
    const argv_args *a = arg;
    return redisCommandArgv(ctx, a->argc, a->argv, a->lens);
}

bool tf_redis_pipeline_reachable(const char *pipeline)
{
    int64_t ok = 0, fail = 0;
    pthread_mutex_lock(&g_all_lock);
    for (tf_redis *r = g_all; r; r = r->next) {
        if (!r->pipeline || strcmp(r->pipeline, pipeline) != 0)
            continue;
        pthread_mutex_lock(&r->export_lock);
        if (r->in_use) {
            ok = r->last_ok_ms > ok ? r->last_ok_ms : ok;
            fail = r->last_fail_ms > fail ? r->last_fail_ms : fail;
        }
        pthread_mutex_unlock(&r->export_lock);
    }
    pthread_mutex_unlock(&g_all_lock);
    return fail <= ok;
}

redisReply *tf_redis_command(tf_redis *r, const char *fmt, ...)
{
    fmt_args f = {.fmt = fmt};
    va_start(f.ap, fmt);
    redisReply *reply = command_with_retry(r, send_fmt, &f);
    va_end(f.ap);
    return reply;
}

redisReply *tf_redis_command_argv(tf_redis *r, int argc, const char **argv, const size_t *lens)
{
    argv_args a = {.argc = argc, .argv = argv, .lens = lens};
    return command_with_retry(r, send_argv, &a);
}

int tf_redis_append_argv(tf_redis *r, int argc, const char **argv, const size_t *lens)
{
    note_use(r);
    if (!ensure_connected(r)) {
        note_outcome(r, false);
        return TF_EREDIS;
    }
    if (redisAppendCommandArgv(r->ctx, argc, argv, lens) != REDIS_OK) {
        /* Only fails when out of memory; the buffer may hold half a command, so drop it. */
        lose_connection(r, context_error(r->ctx, "cannot queue the command"));
        return TF_EREDIS;
    }
    return TF_OK;
}

redisReply *tf_redis_get_reply(tf_redis *r)
{
    /* Never reconnects: the replies of the appended commands died with the old connection. */
    note_use(r);
    if (!r->ctx) {
        note_outcome(r, false);
        return NULL;
    }
    void *reply = NULL;
    if (redisGetReply(r->ctx, &reply) != REDIS_OK) {
        if (reply)
            freeReplyObject(reply);
        reply = NULL;
    }
    return checked_reply(r, reply);
}

int tf_redis_read_reply(tf_redis *r, int64_t timeout_ms, redisReply **out)
{
    *out = NULL;
    note_use(r);
    if (!r->ctx) {
        note_outcome(r, false);
        return TF_EREDIS;
    }
    void *reply = NULL;
    /* A reply may already sit in hiredis's buffer, read along with the previous one. */
    bool failed = redisGetReplyFromReader(r->ctx, &reply) != REDIS_OK;
    if (!failed && !reply) {
        struct pollfd pfd = {.fd = r->ctx->fd, .events = POLLIN};
        int ready = poll(&pfd, 1, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
        if (ready == 0 || (ready < 0 && errno == EINTR))
            return TF_ETIMEOUT;
        /* Readable (data, end of stream or an error): the read returns at once, or within the
         * command timeout when only part of a reply has arrived. */
        failed = ready < 0 || redisGetReply(r->ctx, &reply) != REDIS_OK;
    }
    if (failed && reply) {
        freeReplyObject(reply);
        reply = NULL;
    }
    *out = checked_reply(r, reply);
    return *out ? TF_OK : TF_EREDIS;
}

static int sha1_hex(const char *script, char out[TF_REDIS_SHA_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(script, strlen(script), md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20)
        return -1;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0x0f];
    }
    out[2 * md_len] = '\0';
    return 0;
}

/* The SHA1 of `script`, cached by pointer (the caller keeps scripts alive). NULL on failure. */
static const char *script_sha(tf_redis *r, const char *script)
{
    for (size_t i = 0; i < TF_REDIS_SHA_CACHE; i++) {
        if (r->sha[i].script == script)
            return r->sha[i].hex;
    }
    sha_entry *e = &r->sha[r->sha_next];
    if (sha1_hex(script, e->hex) != 0)
        return NULL;
    e->script = script;
    r->sha_next = (r->sha_next + 1) % TF_REDIS_SHA_CACHE;
    return e->hex;
}

static bool is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->str &&
           strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* EVAL[SHA] <head> <numkeys> argv...: builds the argument vector and runs it. */
static redisReply *run_eval(tf_redis *r, const char *verb, const char *head, int numkeys, int argc,
                            const char **argv, const size_t *lens)
{
    redisReply *reply = NULL;
    const char **full_argv = calloc((size_t)argc + 3, sizeof *full_argv);
    size_t *full_lens = calloc((size_t)argc + 3, sizeof *full_lens);
    if (!full_argv || !full_lens)
        goto out;
    char nkeys[16];
    snprintf(nkeys, sizeof nkeys, "%d", numkeys);
    full_argv[0] = verb;
    full_argv[1] = head;
    full_argv[2] = nkeys;
    for (int i = 0; i < 3; i++)
        full_lens[i] = strlen(full_argv[i]);
    for (int i = 0; i < argc; i++) {
        full_argv[i + 3] = argv[i];
        full_lens[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    reply = tf_redis_command_argv(r, argc + 3, full_argv, full_lens);
out:
    free(full_argv);
    free(full_lens);
    return reply;
}

redisReply *tf_redis_eval(tf_redis *r, const char *script, int numkeys, int argc, const char **argv,
                          const size_t *lens)
{
    const char *sha = script_sha(r, script);
    if (!sha)
        return run_eval(r, "EVAL", script, numkeys, argc, argv, lens);
    redisReply *reply = run_eval(r, "EVALSHA", sha, numkeys, argc, argv, lens);
    if (!reply || !is_noscript(reply))
        return reply;
    /* The server lost its script cache (restart, SCRIPT FLUSH): EVAL runs and caches it. */
    freeReplyObject(reply);
    return run_eval(r, "EVAL", script, numkeys, argc, argv, lens);
}

bool tf_redis_is_connected(const tf_redis *r)
{
    return r->ctx != NULL;
}

void tf_redis_drop(tf_redis *r)
{
    /* No backoff: the caller saw a surprise on a working connection, not an outage. */
    if (r->ctx)
        TF_DEBUG(r->who, "dropping the Redis connection on request");
    free_context(r);
}

unsigned long tf_redis_reconnects(const tf_redis *r)
{
    return r->reconnects;
}
