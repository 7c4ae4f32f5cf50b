/*
 * The shared HTTP client: per-host admission (Retry-After block, circuit breaker, token bucket)
 * in front of libcurl transfers, one reusable easy + multi handle per client so connections
 * stay alive across ticks, and the tickflow_http_* metrics.
 */
#include "tf_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tf_log.h"
#include "tf_metrics.h"

#define TF_HTTP_LOG "http"

/* How often a transfer or a rate wait looks at the stop flag. curl's own progress callback
 * may stay silent for up to a second on an idle connection, which is too slow for shutdown. */
#define TF_HTTP_POLL_MS       10
#define TF_HTTP_MAX_REDIRECTS 3L
/* Headers kept per response; a server sending more is either broken or hostile. */
#define TF_HTTP_MAX_HEADERS 256
#define TF_HTTP_KEY_MAX     300

#define TF_HTTP_DEFAULT_CONNECT_MS       3000
#define TF_HTTP_DEFAULT_TIMEOUT_MS       10000
#define TF_HTTP_DEFAULT_MAX_BODY         (8 * 1024 * 1024)
#define TF_HTTP_DEFAULT_BREAKER_FAILURES 5
#define TF_HTTP_DEFAULT_BREAKER_BASE_MS  1000
#define TF_HTTP_DEFAULT_BREAKER_MAX_MS   60000
#define TF_HTTP_DEFAULT_RETRY_AFTER_MS   (5 * 60 * 1000)

enum { TF_BREAKER_CLOSED = 0, TF_BREAKER_OPEN = 1, TF_BREAKER_HALF_OPEN = 2 };

typedef struct tf_http_header {
    char *name;  /* owned */
    char *value; /* owned */
} tf_http_header;

struct tf_http_response {
    long status;
    char *body; /* owned, always NUL-terminated */
    size_t len;
    size_t cap;
    tf_http_header *headers; /* owned; one entry per name (the last value received) */
    size_t n_headers;
    size_t cap_headers;
    int64_t elapsed_ms;
};

/* Per-host state. Entries live until tf_http_destroy, so pointers to them stay valid; every
 * field except `key` is guarded by tf_http.lock. */
typedef struct tf_http_host {
    char *key;   /* owned: "host" or "host:port" (port only when not the scheme's default) */
    double rate; /* tokens per second; 0 = unlimited */
    double burst;
    double tokens;             /* negative while callers wait on reserved tokens */
    double refilled_at;        /* monotonic seconds */
    int64_t retry_after_until; /* monotonic ms; requests before it are refused */
    int breaker;
    int failures;       /* consecutive, while closed */
    int backoff_k;      /* open periods in a row without a successful probe */
    int64_t open_until; /* monotonic ms */
    bool probing;       /* the one half-open probe is in flight */
} tf_http_host;

struct tf_http {
    tf_http_settings cfg; /* deep copy, defaults applied */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t lock; /* hosts and rng */
    tf_http_host **hosts; /* owned */
    size_t n_hosts;
    size_t cap_hosts;
    uint64_t rng;
    tf_metric *m_duration;
    tf_metric *m_responses;
    tf_metric *m_waits;
    tf_metric *m_wait_seconds;
    tf_metric *m_circuit;
};

/* Used by one thread at a time (a plugin instance's tick); only tf_http is shared. */
struct tf_http_client {
    tf_http *h;              /* borrowed */
    CURL *easy;              /* reused for every request of this client */
    CURLM *multi;            /* holds this client's idle connections between requests */
    char *pipeline;          /* owned */
    char *plugin;            /* owned */
    const atomic_bool *stop; /* borrowed, may be NULL */
    /* State of the transfer in progress. */
    tf_http_response *resp;
    bool too_large;
    bool stopped;
    bool nomem;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- process-wide libcurl initialisation ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool stop_requested(const tf_http_client *c)
{
    return c->stop && atomic_load(c->stop);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* xorshift64*: jitter only needs to differ between hosts and processes, not be unpredictable. */
static uint64_t rng_next(tf_http *h)
{
    uint64_t x = h->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- metrics (a family may be NULL if registration failed; then it is skipped) ---- */

static void metric_add(tf_metric *m, const char *const *labels, double v)
{
    if (m)
        tf_metric_add(m, labels, v);
}

static void metric_set(tf_metric *m, const char *const *labels, double v)
{
    if (m)
        tf_metric_set(m, labels, v);
}

static void register_metrics(tf_http *h)
{
    static const char *const call_labels[] = {"pipeline", "plugin", "host", NULL};
    static const char *const code_labels[] = {"pipeline", "plugin", "host", "code", NULL};
    static const char *const host_labels[] = {"host", NULL};

    h->m_duration = tf_metrics_register(
        TF_METRIC_HISTOGRAM, "tickflow_http_request_duration_seconds",
        "Duration of HTTP requests that reached the network, by host.", call_labels, NULL, 0);
    h->m_responses = tf_metrics_register(
        TF_METRIC_COUNTER, "tickflow_http_responses_total",
        "HTTP GET outcomes: the status code, or the error class when no response arrived.",
        code_labels, NULL, 0);
    h->m_waits =
        tf_metrics_register(TF_METRIC_COUNTER, "tickflow_http_rate_limit_waits_total",
                            "Requests that waited for a rate-limit token.", host_labels, NULL, 0);
    h->m_wait_seconds =
        tf_metrics_register(TF_METRIC_COUNTER, "tickflow_http_rate_limit_wait_seconds_total",
                            "Time spent waiting for rate-limit tokens.", host_labels, NULL, 0);
    h->m_circuit = tf_metrics_register(TF_METRIC_GAUGE, "tickflow_http_circuit_state",
                                       "Circuit breaker per host: 0 closed, 1 open, 2 half-open.",
                                       host_labels, NULL, 0);
}

static void set_circuit_gauge(tf_http *h, const tf_http_host *hs)
{
    const char *labels[] = {hs->key};
    metric_set(h->m_circuit, labels, (double)hs->breaker);
}

/* ---- settings ---- */

static void settings_free(tf_http_settings *s)
{
    free(s->user_agent);
    for (size_t i = 0; i < s->n_hosts; i++)
        free(s->hosts[i].host);
    free(s->hosts);
    memset(s, 0, sizeof *s);
}

static int64_t or_default(int64_t v, int64_t def)
{
    return v > 0 ? v : def;
}

/* Deep copy of `in` (may be NULL) with defaults for every zero field. */
static int settings_copy(tf_http_settings *out, const tf_http_settings *in)
{
    static const tf_http_settings none;
    if (!in)
        in = &none;
    memset(out, 0, sizeof *out);
    if (in->user_agent && in->user_agent[0])
        out->user_agent = strdup(in->user_agent);
    else
        out->user_agent = strdup("tickflow/" TF_VERSION_STRING);
    if (!out->user_agent)
        goto fail;
    out->connect_timeout_ms = or_default(in->connect_timeout_ms, TF_HTTP_DEFAULT_CONNECT_MS);
    out->timeout_ms = or_default(in->timeout_ms, TF_HTTP_DEFAULT_TIMEOUT_MS);
    out->max_body_bytes = or_default(in->max_body_bytes, TF_HTTP_DEFAULT_MAX_BODY);
    out->breaker_failures = (int)or_default(in->breaker_failures, TF_HTTP_DEFAULT_BREAKER_FAILURES);
    out->breaker_base_ms = or_default(in->breaker_base_ms, TF_HTTP_DEFAULT_BREAKER_BASE_MS);
    out->breaker_max_ms = or_default(in->breaker_max_ms, TF_HTTP_DEFAULT_BREAKER_MAX_MS);
    if (out->breaker_max_ms < out->breaker_base_ms)
        out->breaker_max_ms = out->breaker_base_ms;
    out->retry_after_max_ms = or_default(in->retry_after_max_ms, TF_HTTP_DEFAULT_RETRY_AFTER_MS);
    if (in->n_hosts == 0)
        return TF_OK;
    out->hosts = calloc(in->n_hosts, sizeof *out->hosts);
    if (!out->hosts)
        goto fail;
    for (size_t i = 0; i < in->n_hosts; i++) {
        out->hosts[i] = in->hosts[i];
        out->hosts[i].host = dup_or_empty(in->hosts[i].host);
        out->n_hosts = i + 1;
        if (!out->hosts[i].host)
            goto fail;
    }
    return TF_OK;
fail:
    settings_free(out);
    return TF_ENOMEM;
}

static const tf_http_host_limit *find_limit(const tf_http_settings *s, const char *name)
{
    for (size_t i = 0; i < s->n_hosts; i++) {
        if (strcasecmp(s->hosts[i].host, name) == 0)
            return &s->hosts[i];
    }
    return NULL;
}

/* ---- per-host table ---- */

/* The state key and the two names a rate entry may use, from an absolute http(s) URL.
 * `with_port` is "host:port" with the effective port (443 for https), `host` the bare name. */
typedef struct tf_url_host {
    char key[TF_HTTP_KEY_MAX];
    char with_port[TF_HTTP_KEY_MAX];
    char host[TF_HTTP_KEY_MAX];
} tf_url_host;

static void lowercase(char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    }
}

static int parse_url_host(const char *url, tf_url_host *out)
{
    int rc = TF_EINVAL;
    char *scheme = NULL;
    char *host = NULL;
    char *port = NULL;
    char *explicit_port = NULL;
    CURLU *u = curl_url();
    if (!u)
        return TF_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        goto out;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    /* Fails with CURLUE_NO_PORT when the URL has no port or the scheme's default one. */
    bool has_port =
        curl_url_get(u, CURLUPART_PORT, &explicit_port, CURLU_NO_DEFAULT_PORT) == CURLUE_OK;
    int n1 = snprintf(out->host, sizeof out->host, "%s", host);
    int n2 = snprintf(out->with_port, sizeof out->with_port, "%s:%s", host, port);
    if (n1 < 0 || (size_t)n1 >= sizeof out->host || n2 < 0 || (size_t)n2 >= sizeof out->with_port)
        goto out;
    lowercase(out->host);
    lowercase(out->with_port);
    memcpy(out->key, has_port ? out->with_port : out->host, sizeof out->key);
    rc = TF_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(explicit_port);
    curl_url_cleanup(u);
    return rc;
}

static tf_http_host *host_new(tf_http *h, const tf_url_host *uh)
{
    tf_http_host *hs = calloc(1, sizeof *hs);
    if (!hs)
        return NULL;
    hs->key = strdup(uh->key);
    if (!hs->key) {
        free(hs);
        return NULL;
    }
    /* A "host:port" entry wins over a "host" entry. */
    const tf_http_host_limit *lim = find_limit(&h->cfg, uh->with_port);
    if (!lim)
        lim = find_limit(&h->cfg, uh->host);
    if (lim && lim->rate > 0) {
        hs->rate = lim->rate;
        hs->burst = lim->burst > 0 ? lim->burst : lim->rate;
        /* A bucket smaller than one token could never pay for a request. */
        if (hs->burst < 1)
            hs->burst = 1;
        hs->tokens = hs->burst;
        hs->refilled_at = mono_s();
    }
    return hs;
}

/* The state of the URL's host, created on first use. Caller holds no lock. */
static tf_http_host *host_get(tf_http *h, const tf_url_host *uh)
{
    tf_http_host *found = NULL;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_hosts && !found; i++) {
        if (strcmp(h->hosts[i]->key, uh->key) == 0)
            found = h->hosts[i];
    }
    if (found)
        goto out;
    if (h->n_hosts == h->cap_hosts) {
        size_t cap = h->cap_hosts ? h->cap_hosts * 2 : 8;
        tf_http_host **grown = realloc(h->hosts, cap * sizeof *grown);
        if (!grown)
            goto out;
        h->hosts = grown;
        h->cap_hosts = cap;
    }
    found = host_new(h, uh);
    if (!found)
        goto out;
    h->hosts[h->n_hosts++] = found;
    set_circuit_gauge(h, found);
out:
    pthread_mutex_unlock(&h->lock);
    return found;
}

/* ---- circuit breaker and Retry-After (callers hold h->lock) ---- */

/* Full jitter keeps hosts from retrying in lockstep; the floor of half the period keeps a
 * "random in [0, period]" draw from reopening almost at once against a host that is down. */
static int64_t breaker_period(tf_http *h, int k)
{
    int64_t period = h->cfg.breaker_base_ms;
    for (int i = 0; i < k && period < h->cfg.breaker_max_ms; i++)
        period *= 2;
    if (period > h->cfg.breaker_max_ms)
        period = h->cfg.breaker_max_ms;
    int64_t half = period / 2;
    return half + (int64_t)(rng_next(h) % (uint64_t)(period - half + 1));
}

static void breaker_open(tf_http *h, tf_http_host *hs, int k, const char *why)
{
    int64_t period = breaker_period(h, k);
    bool reopen = hs->breaker != TF_BREAKER_CLOSED;
    hs->breaker = TF_BREAKER_OPEN;
    hs->backoff_k = k;
    hs->open_until = tf_mono_ms() + period;
    hs->failures = 0;
    set_circuit_gauge(h, hs);
    if (reopen)
        TF_WARN(TF_HTTP_LOG, "circuit for %s stays open for %lld ms: the probe failed (%s)",
                hs->key, (long long)period, why);
    else
        TF_WARN(TF_HTTP_LOG,
                "circuit for %s opened for %lld ms after %d consecutive failures (last: %s)",
                hs->key, (long long)period, h->cfg.breaker_failures, why);
}

static void breaker_close(tf_http *h, tf_http_host *hs)
{
    hs->breaker = TF_BREAKER_CLOSED;
    hs->backoff_k = 0;
    hs->failures = 0;
    set_circuit_gauge(h, hs);
    TF_INFO(TF_HTTP_LOG, "circuit for %s closed: the probe request succeeded", hs->key);
}

/* Steps 2 and 3 of tf_http_get: TF_OK (and *probe when this caller is the half-open probe),
 * TF_ERATELIMIT or TF_ECIRCUIT. */
static int host_admit(tf_http *h, tf_http_host *hs, bool *probe)
{
    int rc = TF_OK;
    int64_t now = tf_mono_ms();
    *probe = false;
    pthread_mutex_lock(&h->lock);
    if (now < hs->retry_after_until) {
        rc = TF_ERATELIMIT;
    } else if (hs->breaker == TF_BREAKER_HALF_OPEN) {
        rc = TF_ECIRCUIT;
    } else if (hs->breaker == TF_BREAKER_OPEN) {
        if (now < hs->open_until) {
            rc = TF_ECIRCUIT;
        } else {
            hs->breaker = TF_BREAKER_HALF_OPEN;
            hs->probing = true;
            *probe = true;
            set_circuit_gauge(h, hs);
            TF_DEBUG(TF_HTTP_LOG, "circuit for %s half-open: sending one probe", hs->key);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* A probe that never reached the server (stopped, no rate token) hands the turn to the next
 * caller instead of leaving the breaker half-open forever. */
static void probe_release(tf_http *h, tf_http_host *hs)
{
    pthread_mutex_lock(&h->lock);
    if (hs->probing) {
        hs->probing = false;
        hs->breaker = TF_BREAKER_OPEN;
        hs->open_until = tf_mono_ms();
        set_circuit_gauge(h, hs);
    }
    pthread_mutex_unlock(&h->lock);
}

static void host_record(tf_http *h, tf_http_host *hs, bool probe, bool failure, const char *why)
{
    pthread_mutex_lock(&h->lock);
    if (probe) {
        hs->probing = false;
        if (failure)
            breaker_open(h, hs, hs->backoff_k + 1, why);
        else
            breaker_close(h, hs);
    } else if (hs->breaker == TF_BREAKER_CLOSED) {
        /* Outcomes of requests that started before the breaker opened do not move it. */
        hs->failures = failure ? hs->failures + 1 : 0;
        if (hs->failures >= h->cfg.breaker_failures)
            breaker_open(h, hs, 0, why);
    }
    pthread_mutex_unlock(&h->lock);
}

/* `asked_ms` is what the host asked for, `block_ms` what is applied (at most retry_after_max). */
static void host_block(tf_http *h, tf_http_host *hs, int64_t block_ms, int64_t asked_ms,
                       long status)
{
    pthread_mutex_lock(&h->lock);
    int64_t until = tf_mono_ms() + block_ms;
    if (until > hs->retry_after_until) {
        hs->retry_after_until = until;
        if (asked_ms > block_ms)
            TF_WARN(TF_HTTP_LOG,
                    "%s answered HTTP %ld with Retry-After %lld s: no request to it for %lld ms "
                    "(http.retry_after_max)",
                    hs->key, status, (long long)(asked_ms / 1000), (long long)block_ms);
        else
            TF_WARN(TF_HTTP_LOG, "%s answered HTTP %ld: no request to it for %lld ms", hs->key,
                    status, (long long)block_ms);
    }
    pthread_mutex_unlock(&h->lock);
}

/* Retry-After (RFC 9110 10.2.3) is delta-seconds or an HTTP-date. Returns the block in ms, or
 * -1 when the value is absent or unreadable. */
static int64_t parse_retry_after(const char *v)
{
    if (!v || !v[0])
        return -1;
    char *end = NULL;
    errno = 0;
    long long secs = strtoll(v, &end, 10);
    if (end != v && errno == 0 && secs >= 0) {
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end == '\0')
            return secs > INT64_MAX / 1000 ? INT64_MAX / 2 : (int64_t)secs * 1000;
    }
    time_t when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    int64_t delta = ((int64_t)when - (int64_t)time(NULL)) * 1000;
    return delta > 0 ? delta : 0;
}

/* 429/418 (Binance escalates ignored 429s into 418 bans) and 503 may carry Retry-After;
 * a 429/418 without one still backs off for breaker_base_ms. The block is capped at
 * retry_after_max: a hostile or broken answer (Retry-After: 315360000) must not silence a
 * venue until restart. */
static void apply_retry_after(tf_http *h, tf_http_host *hs, const tf_http_response *r)
{
    long s = r->status;
    if (s != 429 && s != 418 && s != 503)
        return;
    int64_t block = parse_retry_after(tf_http_response_header(r, "retry-after"));
    if (block < 0 && s != 503)
        block = h->cfg.breaker_base_ms;
    int64_t capped = block > h->cfg.retry_after_max_ms ? h->cfg.retry_after_max_ms : block;
    if (capped > 0)
        host_block(h, hs, capped, block, s);
}

/* ---- token bucket ---- */

/* Takes a token now, or reserves the next one (tokens go negative, so later callers queue
 * behind) when it arrives before `deadline_s`. TF_ERATELIMIT otherwise. */
static int bucket_reserve(tf_http_host *hs, double now, double deadline_s, double *wait_s)
{
    *wait_s = 0;
    if (hs->rate <= 0)
        return TF_OK;
    hs->tokens += (now - hs->refilled_at) * hs->rate;
    if (hs->tokens > hs->burst)
        hs->tokens = hs->burst;
    hs->refilled_at = now;
    if (hs->tokens >= 1) {
        hs->tokens -= 1;
        return TF_OK;
    }
    double need = (1 - hs->tokens) / hs->rate;
    if (now + need >= deadline_s)
        return TF_ERATELIMIT;
    hs->tokens -= 1;
    *wait_s = need;
    return TF_OK;
}

static void bucket_refund(tf_http *h, tf_http_host *hs)
{
    pthread_mutex_lock(&h->lock);
    hs->tokens += 1;
    if (hs->tokens > hs->burst)
        hs->tokens = hs->burst;
    pthread_mutex_unlock(&h->lock);
}

/* Step 4 of tf_http_get. */
static int rate_wait(tf_http_client *c, tf_http_host *hs, int64_t deadline_ms)
{
    tf_http *h = c->h;
    double wait_s = 0;
    double start = mono_s();
    pthread_mutex_lock(&h->lock);
    int rc = bucket_reserve(hs, start, (double)deadline_ms / 1000.0, &wait_s);
    pthread_mutex_unlock(&h->lock);
    if (rc != TF_OK || wait_s <= 0)
        return rc;
    const char *labels[] = {hs->key};
    metric_add(h->m_waits, labels, 1);
    double until = start + wait_s;
    double now = start;
    while (now < until) {
        if (stop_requested(c)) {
            bucket_refund(h, hs);
            rc = TF_ESTOPPED;
            break;
        }
        double left_ms = (until - now) * 1000.0;
        sleep_ms(left_ms < TF_HTTP_POLL_MS ? (int64_t)left_ms + 1 : TF_HTTP_POLL_MS);
        now = mono_s();
    }
    metric_add(h->m_wait_seconds, labels, now - start);
    return rc;
}

/* ---- share handle ---- */

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *userp)
{
    TF_UNUSED(easy);
    TF_UNUSED(access);
    tf_http *h = userp;
    pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *userp)
{
    TF_UNUSED(easy);
    tf_http *h = userp;
    pthread_mutex_unlock(&h->share_locks[data]);
}

/* DNS answers and TLS sessions are shared by every client. The connection pool is not:
 * libcurl documents a shared connection cache as unsafe across concurrent threads (KNOWN_BUGS
 * "A shared connection cache is not thread-safe", curl issue #4915; still so in 7.88), and
 * every pipeline ticks in its own thread. Each client keeps its own kept-alive connections. */
static int share_create(tf_http *h)
{
    h->share = curl_share_init();
    if (!h->share)
        return TF_ENOMEM;
    CURLSHcode rc = curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    if (rc == CURLSHE_OK)
        rc = curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    if (rc == CURLSHE_OK)
        rc = curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    if (rc == CURLSHE_OK)
        rc = curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (rc == CURLSHE_OK)
        rc = curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return rc == CURLSHE_OK ? TF_OK : TF_ERR;
}

/* ---- tf_http ---- */

tf_http *tf_http_create(const tf_http_settings *settings)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        TF_ERROR(TF_HTTP_LOG, "curl_global_init failed: %s", curl_easy_strerror(curl_init_result));
        return NULL;
    }
    tf_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    for (size_t i = 0; i < TF_ARRAY_LEN(h->share_locks); i++)
        pthread_mutex_init(&h->share_locks[i], NULL);
    pthread_mutex_init(&h->lock, NULL);
    h->rng = (uint64_t)tf_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)h;
    if (h->rng == 0)
        h->rng = 0x9E3779B97F4A7C15ULL;
    if (settings_copy(&h->cfg, settings) != TF_OK)
        goto fail;
    if (share_create(h) != TF_OK)
        goto fail;
    register_metrics(h);
    return h;
fail:
    TF_ERROR(TF_HTTP_LOG, "could not create the HTTP client (out of memory or libcurl error)");
    tf_http_destroy(h);
    return NULL;
}

void tf_http_destroy(tf_http *h)
{
    if (!h)
        return;
    if (h->share)
        curl_share_cleanup(h->share);
    for (size_t i = 0; i < h->n_hosts; i++) {
        free(h->hosts[i]->key);
        free(h->hosts[i]);
    }
    free(h->hosts);
    settings_free(&h->cfg);
    pthread_mutex_destroy(&h->lock);
    for (size_t i = 0; i < TF_ARRAY_LEN(h->share_locks); i++)
        pthread_mutex_destroy(&h->share_locks[i]);
    free(h);
}

int tf_http_breaker_state(tf_http *h, const char *host)
{
    if (!h || !host)
        return TF_BREAKER_CLOSED;
    int state = TF_BREAKER_CLOSED;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_hosts; i++) {
        if (strcasecmp(h->hosts[i]->key, host) == 0)
            state = h->hosts[i]->breaker;
    }
    pthread_mutex_unlock(&h->lock);
    return state;
}

/* ---- responses ---- */

static tf_http_response *response_new(void)
{
    tf_http_response *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cap = 1024;
    r->body = malloc(r->cap);
    if (!r->body) {
        free(r);
        return NULL;
    }
    r->body[0] = '\0';
    return r;
}

static void headers_clear(tf_http_response *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->n_headers = 0;
}

void tf_http_response_free(tf_http_response *r)
{
    if (!r)
        return;
    headers_clear(r);
    free(r->headers);
    free(r->body);
    free(r);
}

long tf_http_response_status(const tf_http_response *r)
{
    return r ? r->status : 0;
}

const char *tf_http_response_body(const tf_http_response *r, size_t *len)
{
    if (len)
        *len = r ? r->len : 0;
    return r ? r->body : NULL;
}

const char *tf_http_response_header(const tf_http_response *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    }
    return NULL;
}

int64_t tf_http_response_elapsed_ms(const tf_http_response *r)
{
    return r ? r->elapsed_ms : 0;
}

/* Stores one header, replacing an earlier value of the same name. */
static int headers_set(tf_http_response *r, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    char *v = strndup(value, vlen);
    if (!v)
        return TF_ENOMEM;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strlen(r->headers[i].name) == nlen &&
            strncasecmp(r->headers[i].name, name, nlen) == 0) {
            free(r->headers[i].value);
            r->headers[i].value = v;
            return TF_OK;
        }
    }
    if (r->n_headers >= TF_HTTP_MAX_HEADERS) {
        free(v);
        return TF_OK;
    }
    if (r->n_headers == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
        tf_http_header *grown = realloc(r->headers, cap * sizeof *grown);
        if (!grown)
            goto fail;
        r->headers = grown;
        r->cap_headers = cap;
    }
    char *n = strndup(name, nlen);
    if (!n)
        goto fail;
    r->headers[r->n_headers].name = n;
    r->headers[r->n_headers].value = v;
    r->n_headers++;
    return TF_OK;
fail:
    free(v);
    return TF_ENOMEM;
}

/* ---- curl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    tf_http_client *c = userp;
    tf_http_response *r = c->resp;
    size_t n = size * nmemb;
    /* Decoded bytes: a small compressed body can still inflate past the cap. */
    if (r->len + n > (size_t)c->h->cfg.max_body_bytes) {
        c->too_large = true;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap;
        while (r->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(r->body, cap);
        if (!grown) {
            c->nomem = true;
            return 0;
        }
        r->body = grown;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    tf_http_client *c = userp;
    size_t n = size * nmemb;
    /* A status line starts a new response (after a redirect or 100 Continue): only the final
     * response's headers are kept. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        headers_clear(c->resp);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon || colon == data)
        return n;
    size_t nlen = (size_t)(colon - data);
    while (nlen > 0 && is_blank(data[nlen - 1]))
        nlen--;
    const char *v = colon + 1;
    const char *end = data + n;
    while (v < end && is_blank(*v))
        v++;
    while (end > v && is_blank(end[-1]))
        end--;
    if (headers_set(c->resp, data, nlen, v, (size_t)(end - v)) != TF_OK) {
        c->nomem = true;
        return 0;
    }
    return n;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    TF_UNUSED(ultotal);
    TF_UNUSED(ulnow);
    tf_http_client *c = userp;
    if (stop_requested(c)) {
        c->stopped = true;
        return 1;
    }
    curl_off_t cap = (curl_off_t)c->h->cfg.max_body_bytes;
    if (dltotal > cap || dlnow > cap) {
        c->too_large = true;
        return 1;
    }
    return 0;
}

/* ---- clients ---- */

/* Options that stay the same for every request of the client. */
static int client_setup(tf_http_client *c)
{
    CURL *e = c->easy;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_SHARE, c->h->share);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* "" = every encoding this libcurl can decode (gzip, deflate, br when built in). */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_USERAGENT, c->h->cfg.user_agent);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_MAXREDIRS, TF_HTTP_MAX_REDIRECTS);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->h->cfg.max_body_bytes);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_XFERINFODATA, c);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    if (rc != CURLE_OK)
        TF_ERROR(TF_HTTP_LOG, "libcurl refused an option: %s", curl_easy_strerror(rc));
    return rc == CURLE_OK ? TF_OK : TF_ERR;
}

tf_http_client *tf_http_client_create(tf_http *h, const char *pipeline, const char *plugin,
                                      const atomic_bool *stop)
{
    if (!h)
        return NULL;
    tf_http_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->h = h;
    c->stop = stop;
    c->pipeline = dup_or_empty(pipeline);
    c->plugin = dup_or_empty(plugin);
    c->easy = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->pipeline || !c->plugin || !c->easy || !c->multi)
        goto fail;
    if (client_setup(c) != TF_OK)
        goto fail;
    return c;
fail:
    tf_http_client_destroy(c);
    return NULL;
}

void tf_http_client_destroy(tf_http_client *c)
{
    if (!c)
        return;
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->easy)
        curl_easy_cleanup(c->easy);
    free(c->pipeline);
    free(c->plugin);
    free(c);
}

/* ---- one request ---- */

static bool is_origin_header(const char *line)
{
    static const char origin[] = "origin";
    size_t n = sizeof origin - 1;
    if (strncasecmp(line, origin, n) != 0)
        return false;
    const char *p = line + n;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == ':' || *p == ';';
}

/* The caller's headers, minus any Origin: Upbit (and Bithumb's Upbit-style API) throttle
 * requests carrying Origin to one per 10 s, as browser traffic (docs.upbit.com rate limits). */
static int build_headers(const char *const *in, struct curl_slist **out)
{
    *out = NULL;
    for (size_t i = 0; in && in[i]; i++) {
        if (is_origin_header(in[i])) {
            TF_DEBUG(TF_HTTP_LOG, "dropping an Origin header from a request");
            continue;
        }
        if (!strchr(in[i], ':') && !strchr(in[i], ';')) {
            TF_WARN(TF_HTTP_LOG, "request header %zu: expected \"Name: value\", found \"%s\"", i,
                    in[i]);
            curl_slist_free_all(*out);
            *out = NULL;
            return TF_EINVAL;
        }
        struct curl_slist *next = curl_slist_append(*out, in[i]);
        if (!next) {
            curl_slist_free_all(*out);
            *out = NULL;
            return TF_ENOMEM;
        }
        *out = next;
    }
    return TF_OK;
}

/* Runs the transfer on the client's multi handle, looking at the stop flag every
 * TF_HTTP_POLL_MS. Removing the handle afterwards returns a kept-alive connection to the
 * client's pool. */
static CURLcode run_transfer(tf_http_client *c)
{
    CURLcode result = CURLE_OK;
    if (curl_multi_add_handle(c->multi, c->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    bool done = false;
    while (!done) {
        int running = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            result = CURLE_RECV_ERROR;
            break;
        }
        int left = 0;
        CURLMsg *msg = curl_multi_info_read(c->multi, &left);
        while (msg) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->easy) {
                result = msg->data.result;
                done = true;
            }
            msg = curl_multi_info_read(c->multi, &left);
        }
        if (done)
            break;
        if (running == 0) {
            result = CURLE_RECV_ERROR;
            break;
        }
        if (stop_requested(c)) {
            c->stopped = true;
            result = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if (curl_multi_poll(c->multi, NULL, 0, TF_HTTP_POLL_MS, NULL) != CURLM_OK) {
            result = CURLE_RECV_ERROR;
            break;
        }
    }
    curl_multi_remove_handle(c->multi, c->easy);
    return result;
}

static int map_result(const tf_http_client *c, CURLcode rc)
{
    if (c->stopped)
        return TF_ESTOPPED;
    if (c->too_large)
        return TF_ETOOLARGE;
    if (c->nomem)
        return TF_ENOMEM;
    switch (rc) {
    case CURLE_OK:
        return TF_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return TF_ETIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return TF_ETOOLARGE;
    case CURLE_OUT_OF_MEMORY:
        return TF_ENOMEM;
    case CURLE_TOO_MANY_REDIRECTS:
        return TF_EHTTP;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return TF_EINVAL;
    case CURLE_FAILED_INIT:
        return TF_ERR;
    default:
        /* DNS, TCP, TLS, a connection dropped mid-response, a body that does not decode. */
        return TF_ECONNECT;
    }
}

typedef struct tf_http_call {
    const tf_http_request *req;
    const char *post_body; /* NULL: a GET */
    size_t post_len;
    const char *host; /* state key, for messages: the URL's query may hold a key */
    int64_t deadline_ms;
    int64_t connect_timeout_ms;
} tf_http_call;

static int set_request_options(tf_http_client *c, const tf_http_call *call,
                               struct curl_slist *headers)
{
    int64_t left = call->deadline_ms - tf_mono_ms();
    if (left < 1)
        left = 1;
    CURL *e = c->easy;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, call->req->url);
    if (rc == CURLE_OK && call->post_body) {
        rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->post_len);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, call->post_body);
    } else if (rc == CURLE_OK) {
        rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)call->connect_timeout_ms);
    if (rc == CURLE_OK)
        return TF_OK;
    return rc == CURLE_OUT_OF_MEMORY ? TF_ENOMEM : TF_EINVAL;
}

/* Step 5: TF_OK and *out (any HTTP status), or a transport error class. *elapsed_ms is the
 * transfer's duration either way. */
static int perform(tf_http_client *c, const tf_http_call *call, tf_http_response **out,
                   int64_t *elapsed_ms)
{
    *elapsed_ms = 0;
    struct curl_slist *headers = NULL;
    int rc = build_headers(call->req->headers, &headers);
    if (rc != TF_OK)
        return rc;
    tf_http_response *r = response_new();
    if (!r) {
        rc = TF_ENOMEM;
        goto out;
    }
    rc = set_request_options(c, call, headers);
    if (rc != TF_OK)
        goto out;
    c->resp = r;
    c->too_large = false;
    c->stopped = false;
    c->nomem = false;
    c->errbuf[0] = '\0';
    int64_t start = tf_mono_ms();
    CURLcode cc = run_transfer(c);
    *elapsed_ms = tf_mono_ms() - start;
    r->elapsed_ms = *elapsed_ms;
    rc = map_result(c, cc);
    if (rc == TF_OK)
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r->status);
    else
        TF_DEBUG(TF_HTTP_LOG, "GET to %s failed (%s): %s", call->host, tf_status_name(rc),
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
out:
    /* The list is freed below; the handle must not keep pointing at it. */
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    c->resp = NULL;
    if (rc == TF_OK)
        *out = r;
    else
        tf_http_response_free(r);
    return rc;
}

static bool is_transport_error(int rc)
{
    return rc == TF_ETIMEOUT || rc == TF_ECONNECT || rc == TF_ETOOLARGE || rc == TF_EHTTP;
}

static bool is_failure_status(long status)
{
    return status >= 500 || status == 429 || status == 418;
}

static void count_outcome(tf_http_client *c, const tf_http_host *hs, int rc, long status)
{
    char code[24];
    if (rc == TF_OK)
        snprintf(code, sizeof code, "%ld", status);
    else
        snprintf(code, sizeof code, "%s", tf_status_name(rc));
    const char *labels[] = {c->pipeline, c->plugin, hs->key, code};
    metric_add(c->h->m_responses, labels, 1);
}

/* Reads the request fields the caller's struct_size covers; TF_EINVAL when it is too short
 * to hold even the URL and headers. */
static int read_request(const tf_http *h, const tf_http_request *req, int64_t *timeout_ms,
                        int64_t *connect_ms)
{
    size_t need = offsetof(tf_http_request, headers) + sizeof req->headers;
    if (req->struct_size < need || !req->url) {
        TF_WARN(TF_HTTP_LOG,
                "tf_http_request: expected struct_size >= %zu and a url, found struct_size %u "
                "and url %s",
                need, (unsigned)req->struct_size, req->url ? "set" : "NULL");
        return TF_EINVAL;
    }
    *timeout_ms = h->cfg.timeout_ms;
    *connect_ms = h->cfg.connect_timeout_ms;
    if (req->struct_size >= offsetof(tf_http_request, timeout_ms) + sizeof(int64_t) &&
        req->timeout_ms > 0)
        *timeout_ms = req->timeout_ms;
    if (req->struct_size >= offsetof(tf_http_request, connect_timeout_ms) + sizeof(int64_t) &&
        req->connect_timeout_ms > 0)
        *connect_ms = req->connect_timeout_ms;
    return TF_OK;
}

/* After a transfer: duration histogram, Retry-After, breaker. Errors that say nothing about
 * the host (stopped, out of memory) only hand back a probe turn. */
static void after_transfer(tf_http_client *c, tf_http_host *hs, bool probe, int rc,
                           const tf_http_response *r, int64_t elapsed_ms)
{
    tf_http *h = c->h;
    if (rc != TF_OK && !is_transport_error(rc)) {
        if (probe)
            probe_release(h, hs);
        return;
    }
    const char *labels[] = {c->pipeline, c->plugin, hs->key};
    if (h->m_duration)
        tf_metric_observe(h->m_duration, labels, (double)elapsed_ms / 1000.0);
    char why[32];
    if (rc == TF_OK) {
        apply_retry_after(h, hs, r);
        snprintf(why, sizeof why, "HTTP %ld", r->status);
    } else {
        snprintf(why, sizeof why, "%s", tf_status_name(rc));
    }
    bool failure = rc != TF_OK || is_failure_status(r->status);
    host_record(h, hs, probe, failure, why);
}

/* One request through every per-host rule; a GET when post_body is NULL. */
static int request(tf_http_client *c, const tf_http_request *req, const char *post_body,
                   size_t post_len, tf_http_response **out)
{
    if (out)
        *out = NULL;
    if (!c || !req || !out)
        return TF_EINVAL;
    tf_http *h = c->h;
    int64_t timeout_ms = 0;
    tf_http_call call = {.req = req, .post_body = post_body, .post_len = post_len};
    int rc = read_request(h, req, &timeout_ms, &call.connect_timeout_ms);
    if (rc != TF_OK)
        return rc;
    tf_url_host uh;
    rc = parse_url_host(req->url, &uh);
    if (rc != TF_OK) {
        TF_WARN(TF_HTTP_LOG, "expected an absolute http:// or https:// URL, found \"%s\"",
                req->url);
        return rc;
    }
    tf_http_host *hs = host_get(h, &uh);
    if (!hs)
        return TF_ENOMEM;
    call.host = hs->key;
    call.deadline_ms = tf_mono_ms() + timeout_ms;
    bool probe = false;
    if (stop_requested(c)) {
        rc = TF_ESTOPPED;
        goto out;
    }
    rc = host_admit(h, hs, &probe);
    if (rc != TF_OK)
        goto out;
    rc = rate_wait(c, hs, call.deadline_ms);
    if (rc != TF_OK) {
        if (probe)
            probe_release(h, hs);
        goto out;
    }
    int64_t elapsed_ms = 0;
    rc = perform(c, &call, out, &elapsed_ms);
    after_transfer(c, hs, probe, rc, *out, elapsed_ms);
out:
    count_outcome(c, hs, rc, *out ? (*out)->status : 0);
    return rc;
}

int tf_http_get(tf_http_client *c, const tf_http_request *req, tf_http_response **out)
{
    return request(c, req, NULL, 0, out);
}

int tf_http_post(tf_http_client *c, const tf_http_request *req, const char *body, size_t len,
                 tf_http_response **out)
{
    return request(c, req, body ? body : "", body ? len : 0, out);
}
