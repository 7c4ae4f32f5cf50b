/*
 * tf_lease: the lease of one pipeline, kept by a background thread with its own tf_redis.
 * The thread acquires (SET NX PX + a fencing token, one Lua script), extends every ttl/3 with a
 * compare-and-extend script and releases with compare-and-delete on stop. The pipeline thread
 * only reads the state and the local validity deadline under the mutex (tf_lease_check).
 */
#include "tf_lease.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "tf_common.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_redis.h"

#define TF_LEASE_TOKEN_BYTES     16
#define TF_LEASE_MIN_MARGIN_MS   50
#define TF_LEASE_MAX_RETRY_MS    100
#define TF_LEASE_MIN_INTERVAL_MS 10

/* KEYS[1] lease, KEYS[2] fence; ARGV[1] token, ARGV[2] ttl ms. Returns the new fencing token
 * as a string, or nil when another replica holds the lease. The token is the larger of
 * "previous + 1" and "server time in ms * 1024": the second term keeps it increasing when
 * Redis restarts without persistence and the fence key starts over (see
 * docs/scheduling-and-leases.md). TIME is the server's clock, so replicas' clocks do not
 * matter. Values stay below 2^53, exact in Lua's doubles; '%.0f' avoids the exponent notation
 * tostring() would use. */
static const char acquire_script[] =
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return false\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local floor = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) * 1024\n"
    "local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "local new = cur + 1\n"
    "if floor > new then new = floor end\n"
    "local s = string.format('%.0f', new)\n"
    "redis.call('SET', KEYS[2], s)\n"
    "return s\n";

/* KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms. 1 when the lease is still ours, else 0. */
static const char extend_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                    "end\n"
                                    "return 0\n";

/* KEYS[1] lease; ARGV[1] token. Deletes the lease only if it is still ours. */
static const char release_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                     "  return redis.call('DEL', KEYS[1])\n"
                                     "end\n"
                                     "return 0\n";

#define TF_LEASE_REPLICA_MAX 64

struct tf_lease {
    char *pipeline;
    char *lease_key;
    char *fence_key;
    char *component; /* "lease/<pipeline>" */
    int64_t ttl_ms;
    int64_t margin_ms;
    int64_t standby_ms; /* min(period, ttl/4): acquisition attempts while another replica holds */
    int64_t retry_ms;   /* polling while Redis fails; tf_redis's backoff gates the network */

    tf_redis *redis; /* used by the thread only (and by tf_lease_stop after the join) */
    char token[TF_LEASE_REPLICA_MAX + 2 * TF_LEASE_TOKEN_BYTES + 2]; /* "<replica>/<hex>" */
    bool have_token;      /* the lease key may still hold `token` */
    char last_error[128]; /* error reply of the last failed call, for the "paused" log line */

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC, so tf_lease_stop interrupts a wait at once */

    /* Under `lock`: */
    bool stop;
    tf_lease_state state;
    int64_t valid_until; /* monotonic ms: send time of the last acquire/extend + ttl - margin */
    uint64_t fence;
    unsigned long transitions;
    unsigned long acquisitions;       /* successful acquires: a change means a new holding */
    tf_lease_acquired_fn on_acquired; /* set before start; called by the thread, no lock held */
    void *on_acquired_arg;

    tf_metric *m_held;
    tf_metric *m_transitions;
    tf_metric *m_acquisitions;
    tf_metric *m_fence;
};

/* --- state (all under l->lock) --- */

static const char *state_name(tf_lease_state s)
{
    switch (s) {
    case TF_LEASE_HELD:
        return "held";
    case TF_LEASE_STANDBY:
        return "standby";
    default:
        return "unreachable";
    }
}

static void publish_metrics(tf_lease *l)
{
    const char *labels[] = {l->pipeline};
    if (l->m_held)
        tf_metric_set(l->m_held, labels, l->state == TF_LEASE_HELD ? 1.0 : 0.0);
    if (l->m_fence)
        tf_metric_set(l->m_fence, labels, (double)l->fence);
}

/* Moves to `next`, counting transitions into or out of HELD, and acquisitions (into HELD):
 * summed over the replicas, those say how often the pipeline changed hands. Returns the
 * previous state. */
static tf_lease_state set_state(tf_lease *l, tf_lease_state next)
{
    pthread_mutex_lock(&l->lock);
    tf_lease_state prev = l->state;
    l->state = next;
    const char *labels[] = {l->pipeline};
    if ((prev == TF_LEASE_HELD) != (next == TF_LEASE_HELD)) {
        l->transitions++;
        tf_metric_add(l->m_transitions, labels, 1.0);
    }
    if (prev != TF_LEASE_HELD && next == TF_LEASE_HELD)
        tf_metric_add(l->m_acquisitions, labels, 1.0);
    if (next != TF_LEASE_HELD)
        l->valid_until = 0;
    publish_metrics(l);
    pthread_mutex_unlock(&l->lock);
    if (prev != next)
        TF_DEBUG(l->component, "lease state %s -> %s", state_name(prev), state_name(next));
    return prev;
}

/* A successful acquire or extend sent at `sent`: the lease is ours until sent + ttl at the
 * earliest on Redis's side, so locally until sent + ttl - margin. */
static tf_lease_state confirm_held(tf_lease *l, int64_t sent, uint64_t fence)
{
    pthread_mutex_lock(&l->lock);
    l->valid_until = sent + l->ttl_ms - l->margin_ms;
    l->fence = fence;
    pthread_mutex_unlock(&l->lock);
    return set_state(l, TF_LEASE_HELD);
}

/* --- Redis calls (thread only) --- */

/* Who this replica is, for operators reading the lease key: $TICKFLOW_REPLICA, or
 * "<hostname>-<pid>". Only the random part makes the token unique. */
static void replica_name(char *out, size_t size)
{
    const char *env = getenv("TICKFLOW_REPLICA");
    if (env && *env) {
        snprintf(out, size, "%.*s", TF_LEASE_REPLICA_MAX - 1, env);
        return;
    }
    char host[64] = "replica";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(out, size, "%.40s-%ld", host, (long)getpid());
}

static int new_token(tf_lease *l)
{
    unsigned char raw[TF_LEASE_TOKEN_BYTES];
    if (RAND_bytes(raw, (int)sizeof raw) != 1) {
        TF_ERROR(l->component, "cannot generate a lease token: RAND_bytes failed");
        return -1;
    }
    char replica[TF_LEASE_REPLICA_MAX];
    replica_name(replica, sizeof replica);
    static const char digits[] = "0123456789abcdef";
    char hex[2 * TF_LEASE_TOKEN_BYTES + 1];
    for (size_t i = 0; i < sizeof raw; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 0x0f];
    }
    hex[2 * sizeof raw] = '\0';
    snprintf(l->token, sizeof l->token, "%s/%s", replica, hex);
    return 0;
}

typedef enum call_result {
    CALL_OK,      /* the script said yes */
    CALL_REFUSED, /* the script said no: another replica holds the lease or ours is gone */
    CALL_FAILED   /* unreachable, or an error reply: the outcome is unknown */
} call_result;

/* An error reply (READONLY, NOAUTH, OOM...): kept for the log line of the state change. */
static call_result error_reply(tf_lease *l, const redisReply *reply, const char *what)
{
    snprintf(l->last_error, sizeof l->last_error, "%s: Redis replied %s", what,
             reply->str ? reply->str : "an error");
    TF_DEBUG(l->component, "%s for pipeline %s failed", l->last_error, l->pipeline);
    return CALL_FAILED;
}

static call_result try_acquire(tf_lease *l, uint64_t *fence)
{
    if (new_token(l) != 0)
        return CALL_FAILED;
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%" PRId64, l->ttl_ms);
    const char *argv[] = {l->lease_key, l->fence_key, l->token, ttl};
    redisReply *reply = tf_redis_eval(l->redis, acquire_script, 2, 4, argv, NULL);
    call_result rc = CALL_FAILED;
    if (!reply)
        goto out;
    if (reply->type == REDIS_REPLY_ERROR) {
        rc = error_reply(l, reply, "acquire");
        goto out;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        rc = CALL_REFUSED;
        goto out;
    }
    if (reply->type != REDIS_REPLY_STRING || !reply->str) {
        TF_WARN(l->component, "acquire script returned reply type %d, expected a string or nil",
                reply->type);
        goto out;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(reply->str, &end, 10);
    if (errno != 0 || end == reply->str || *end != '\0') {
        TF_WARN(l->component, "acquire script returned fence '%s', expected a decimal integer",
                reply->str);
        goto out;
    }
    *fence = (uint64_t)value;
    l->have_token = true;
    rc = CALL_OK;
out:
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Compare-and-extend (ttl given) or compare-and-delete (ttl 0) with the current token. */
static call_result compare_and(tf_lease *l, const char *script, int64_t ttl_ms)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    const char *argv[] = {l->lease_key, l->token, ttl};
    redisReply *reply = tf_redis_eval(l->redis, script, 1, ttl_ms > 0 ? 3 : 2, argv, NULL);
    call_result rc = CALL_FAILED;
    if (!reply)
        goto out;
    if (reply->type == REDIS_REPLY_ERROR) {
        rc = error_reply(l, reply, ttl_ms > 0 ? "extend" : "release");
        goto out;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        TF_WARN(l->component, "lease script returned reply type %d, expected an integer",
                reply->type);
        goto out;
    }
    rc = reply->integer == 1 ? CALL_OK : CALL_REFUSED;
out:
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* --- the thread's steps; each returns the monotonic time of the next step --- */

static void note_unreachable(tf_lease *l)
{
    if (set_state(l, TF_LEASE_UNREACHABLE) == TF_LEASE_UNREACHABLE)
        return;
    if (l->last_error[0])
        TF_WARN(l->component, "Redis unreachable (%s), pipeline %s paused", l->last_error,
                l->pipeline);
    else
        TF_WARN(l->component, "Redis unreachable, pipeline %s paused", l->pipeline);
}

static void note_reachable(tf_lease *l, tf_lease_state prev)
{
    if (prev == TF_LEASE_UNREACHABLE)
        TF_INFO(l->component, "Redis reachable again (pipeline %s)", l->pipeline);
}

static int64_t step_acquire(tf_lease *l)
{
    int64_t sent = tf_mono_ms();
    uint64_t fence = 0;
    call_result rc = try_acquire(l, &fence);
    if (rc == CALL_FAILED) {
        note_unreachable(l);
        return tf_mono_ms() + l->retry_ms;
    }
    if (rc == CALL_REFUSED) {
        note_reachable(l, set_state(l, TF_LEASE_STANDBY));
        return sent + l->standby_ms;
    }
    pthread_mutex_lock(&l->lock);
    l->acquisitions++;
    pthread_mutex_unlock(&l->lock);
    tf_lease_state prev = confirm_held(l, sent, fence);
    note_reachable(l, prev);
    TF_INFO(l->component, "acquired lease for pipeline %s (fence %" PRIu64 ")", l->pipeline, fence);
    /* A new holding: the keys this pipeline writes may be gone (the previous holder died, or
     * Redis restarted empty and the extend found no key), so the pipeline ticks at once
     * instead of at the end of its period. */
    if (l->on_acquired)
        l->on_acquired(l->on_acquired_arg);
    return sent + l->ttl_ms / 3;
}

/* Extend failed with an unknown outcome: the lease may still be ours, so HELD stays until the
 * local validity runs out; then the pipeline pauses. */
static int64_t extend_failed(tf_lease *l)
{
    int64_t now = tf_mono_ms();
    pthread_mutex_lock(&l->lock);
    int64_t valid_until = l->valid_until;
    bool held = l->state == TF_LEASE_HELD;
    pthread_mutex_unlock(&l->lock);
    if (held && now < valid_until) {
        int64_t next = now + l->retry_ms;
        return next < valid_until ? next : valid_until;
    }
    note_unreachable(l);
    return now + l->retry_ms;
}

static int64_t step_extend(tf_lease *l)
{
    int64_t sent = tf_mono_ms();
    call_result rc = compare_and(l, extend_script, l->ttl_ms);
    if (rc == CALL_FAILED)
        return extend_failed(l);
    if (rc == CALL_REFUSED) {
        /* The key expired or another replica set its own token: ours is worthless now. */
        l->have_token = false;
        tf_lease_state prev = set_state(l, TF_LEASE_STANDBY);
        if (prev == TF_LEASE_HELD)
            TF_WARN(l->component,
                    "lost lease for pipeline %s: the lease key expired or another replica "
                    "took it over",
                    l->pipeline);
        note_reachable(l, prev);
        return tf_mono_ms(); /* try to acquire it again at once */
    }
    pthread_mutex_lock(&l->lock);
    uint64_t fence = l->fence;
    pthread_mutex_unlock(&l->lock);
    tf_lease_state prev = confirm_held(l, sent, fence);
    if (prev != TF_LEASE_HELD) {
        /* Redis came back before the key expired: the lease never left this replica. */
        note_reachable(l, prev);
        TF_INFO(l->component, "lease for pipeline %s still held (fence %" PRIu64 ")", l->pipeline,
                fence);
    }
    return sent + l->ttl_ms / 3;
}

/* Waits until `until` (monotonic ms) or a stop request. Returns true when asked to stop. */
static bool wait_until(tf_lease *l, int64_t until)
{
    struct timespec ts;
    tf_mono_to_timespec(until, &ts);
    pthread_mutex_lock(&l->lock);
    while (!l->stop && tf_mono_ms() < until)
        pthread_cond_timedwait(&l->wake, &l->lock, &ts);
    bool stop = l->stop;
    pthread_mutex_unlock(&l->lock);
    return stop;
}

static void *lease_thread(void *arg)
{
    tf_lease *l = arg;
    int64_t next = tf_mono_ms();
    while (!wait_until(l, next)) {
        l->last_error[0] = '\0';
        next = l->have_token ? step_extend(l) : step_acquire(l);
    }
    return NULL;
}

/* --- public API --- */

/* snprintf into a new buffer of the right size; NULL on failure. */
static char *alloc_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *alloc_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *text = malloc((size_t)n + 1);
    if (!text)
        return NULL;
    va_start(ap, fmt);
    int written = vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (written != n) {
        free(text);
        return NULL;
    }
    return text;
}

static int init_sync(tf_lease *l)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&l->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        pthread_cond_destroy(&l->wake);
        return -1;
    }
    return 0;
}

static void register_metrics(tf_lease *l)
{
    const char *names[] = {"pipeline", NULL};
    l->m_held =
        tf_metrics_register(TF_METRIC_GAUGE, "tickflow_lease_held",
                            "1 while this replica holds the pipeline's lease", names, NULL, 0);
    l->m_transitions =
        tf_metrics_register(TF_METRIC_COUNTER, "tickflow_lease_transitions_total",
                            "Times this replica gained or lost the lease", names, NULL, 0);
    l->m_acquisitions =
        tf_metrics_register(TF_METRIC_COUNTER, "tickflow_lease_acquisitions_total",
                            "Times this replica acquired the lease", names, NULL, 0);
    l->m_fence = tf_metrics_register(TF_METRIC_GAUGE, "tickflow_lease_fence",
                                     "Fencing token of the last acquisition by this replica", names,
                                     NULL, 0);
    const char *labels[] = {l->pipeline};
    /* Both series exist from the start, so increase() sees the first acquisition. */
    tf_metric_add(l->m_transitions, labels, 0.0);
    tf_metric_add(l->m_acquisitions, labels, 0.0);
    publish_metrics(l);
}

tf_lease *tf_lease_create(const tf_redis_settings *redis, const char *pipeline, int64_t ttl_ms,
                          int64_t period_ms)
{
    if (!redis || !pipeline || ttl_ms <= 0)
        return NULL;
    tf_lease *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (init_sync(l) != 0) {
        free(l);
        return NULL;
    }
    const char *prefix = redis->prefix && redis->prefix[0] ? redis->prefix : "tf";
    l->pipeline = strdup(pipeline);
    l->lease_key = alloc_printf("%s:lease:%s", prefix, pipeline);
    l->fence_key = alloc_printf("%s:fence:%s", prefix, pipeline);
    l->component = alloc_printf("lease/%s", pipeline);
    if (!l->pipeline || !l->lease_key || !l->fence_key || !l->component)
        goto fail;
    l->ttl_ms = ttl_ms;
    l->margin_ms = ttl_ms / 10 > TF_LEASE_MIN_MARGIN_MS ? ttl_ms / 10 : TF_LEASE_MIN_MARGIN_MS;
    l->standby_ms = period_ms > 0 && period_ms < ttl_ms / 4 ? period_ms : ttl_ms / 4;
    if (l->standby_ms < TF_LEASE_MIN_INTERVAL_MS)
        l->standby_ms = TF_LEASE_MIN_INTERVAL_MS;
    l->retry_ms = l->standby_ms < TF_LEASE_MAX_RETRY_MS ? l->standby_ms : TF_LEASE_MAX_RETRY_MS;
    l->state = TF_LEASE_STANDBY;
    l->redis = tf_redis_create(redis, l->component);
    if (!l->redis)
        goto fail;
    register_metrics(l);
    return l;
fail:
    tf_lease_destroy(l);
    return NULL;
}

int tf_lease_start(tf_lease *l)
{
    if (l->started)
        return TF_OK;
    pthread_mutex_lock(&l->lock);
    l->stop = false;
    pthread_mutex_unlock(&l->lock);
    if (pthread_create(&l->thread, NULL, lease_thread, l) != 0)
        return TF_ENOMEM;
    l->started = true;
    return TF_OK;
}

void tf_lease_stop(tf_lease *l)
{
    if (!l || !l->started)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    l->started = false;
    /* Stop running ticks before the key is deleted, so no other replica can overlap. */
    tf_lease_state prev = set_state(l, TF_LEASE_STANDBY);
    if (!l->have_token)
        return;
    l->have_token = false;
    if (compare_and(l, release_script, 0) == CALL_OK)
        TF_INFO(l->component, "released lease for pipeline %s", l->pipeline);
    else if (prev == TF_LEASE_HELD)
        TF_WARN(l->component,
                "could not release the lease for pipeline %s; it expires within %" PRId64 " ms",
                l->pipeline, l->ttl_ms);
}

void tf_lease_destroy(tf_lease *l)
{
    if (!l)
        return;
    tf_lease_stop(l);
    tf_redis_destroy(l->redis);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l->pipeline);
    free(l->lease_key);
    free(l->fence_key);
    free(l->component);
    free(l);
}

bool tf_lease_check(tf_lease *l, uint64_t *fence)
{
    return tf_lease_check_holding(l, fence, NULL);
}

bool tf_lease_check_holding(tf_lease *l, uint64_t *fence, unsigned long *holding)
{
    int64_t now = tf_mono_ms();
    pthread_mutex_lock(&l->lock);
    bool ok = l->state == TF_LEASE_HELD && now < l->valid_until;
    if (ok && fence)
        *fence = l->fence;
    if (ok && holding)
        *holding = l->acquisitions;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void tf_lease_on_acquired(tf_lease *l, tf_lease_acquired_fn fn, void *arg)
{
    l->on_acquired = fn;
    l->on_acquired_arg = arg;
}

tf_lease_state tf_lease_get_state(tf_lease *l)
{
    /* HELD past the local validity means the renewal thread is stuck in a call (or the process
     * was paused): report what tf_lease_check acts on, not the thread's last word. */
    int64_t now = tf_mono_ms();
    pthread_mutex_lock(&l->lock);
    tf_lease_state s = l->state;
    if (s == TF_LEASE_HELD && now >= l->valid_until)
        s = TF_LEASE_UNREACHABLE;
    pthread_mutex_unlock(&l->lock);
    return s;
}

const char *tf_lease_fence_key(const tf_lease *l)
{
    return l->fence_key;
}

unsigned long tf_lease_transitions(tf_lease *l)
{
    pthread_mutex_lock(&l->lock);
    unsigned long n = l->transitions;
    pthread_mutex_unlock(&l->lock);
    return n;
}
