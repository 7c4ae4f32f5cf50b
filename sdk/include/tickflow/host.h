/*
 * Services the host offers a plugin: records and batches, validated options, logging, metrics,
 * clocks and HTTP GET through the core's shared libcurl client. Every service is a function
 * pointer in tf_host; the table only ever grows at its end (check TF_HOST_HAS before calling a
 * function newer than ABI 1.0; each group below newer than that names the minor that added it).
 * JSON is jansson, linked by the plugin (pkg-config `tickflow` requires it) and shared with the
 * host in one process.
 */
#ifndef TICKFLOW_HOST_H
#define TICKFLOW_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tf_instance tf_instance; /* the host's handle for one plugin instance */
typedef struct tf_options tf_options;   /* validated options of one instance */
typedef struct tf_record tf_record;     /* one record: a kind and named, typed fields */
typedef struct tf_batch tf_batch;       /* the records of one tick, in order */
typedef struct tf_metric tf_metric;     /* a metric family */
typedef struct tf_http_response tf_http_response;
typedef struct tf_redis tf_redis; /* a Redis connection that reconnects by itself */

typedef enum tf_log_level {
    TF_LOG_ERROR = 0,
    TF_LOG_WARN = 1,
    TF_LOG_INFO = 2,
    TF_LOG_DEBUG = 3,
    TF_LOG_TRACE = 4
} tf_log_level;

typedef enum tf_field_type {
    TF_FIELD_NONE = 0, /* absent */
    TF_FIELD_STRING = 1,
    TF_FIELD_INT = 2,
    TF_FIELD_DOUBLE = 3,
    TF_FIELD_BOOL = 4,
    TF_FIELD_TS = 5 /* epoch milliseconds, int64 */
} tf_field_type;

typedef enum tf_metric_type {
    TF_METRIC_COUNTER = 1,
    TF_METRIC_GAUGE = 2,
    TF_METRIC_HISTOGRAM = 3
} tf_metric_type;

/* One HTTP GET. Zero fields take the runtime's defaults. */
typedef struct tf_http_request {
    uint32_t struct_size;       /* sizeof(tf_http_request) */
    const char *url;            /* absolute http:// or https:// URL */
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    int64_t timeout_ms;         /* total time limit; 0 = runtime default */
    int64_t connect_timeout_ms; /* 0 = runtime default */
} tf_http_request;

/* Flags for json_number / json_int64. */
#define TF_NUM_POSITIVE    1u /* reject zero and negatives (a price, a rate) */
#define TF_NUM_NONNEGATIVE 2u /* reject negatives (a volume) */

#if defined(__GNUC__)
#define TF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TF_PRINTF(fmt, args)
#endif

/* Flags for tf_fetch.flags. */
#define TF_FETCH_QUIET      1u /* report nothing: the caller words every failure itself */
#define TF_FETCH_OWN_LIMITS 2u /* do not report TF_ERATELIMIT / TF_ECIRCUIT without a response */

/* One GET of a JSON document through fetch_json: the caller fills the inputs (the rest zero),
 * fetch_json fills the outputs. */
typedef struct tf_fetch {
    uint32_t struct_size; /* sizeof(tf_fetch) */
    /* in */
    const char *context;  /* prefix of every message, e.g. "bithumb /public/ticker/BTC_KRW" */
    unsigned flags;       /* TF_FETCH_* */
    const char *expected; /* what an empty 2xx body should have been; NULL = "JSON" */
    /* out */
    long status;                /* HTTP status; 0 when no response arrived */
    int64_t received_ms;        /* now_ms() when http_get returned */
    size_t body_len;            /* bytes of body received */
    json_t *root;               /* the body as JSON (owned: caller decrefs); NULL if not JSON */
    tf_http_response *response; /* owned: caller frees with http_free (NULL-safe) */
    char error[256];            /* the JSON parse error ("line L column C: ..."), or "" */
    /* in, appended: a POST of post_len bytes of post_body instead of a GET (hosts with
     * http_post; set Content-Type in the request's headers) */
    const char *post_body;
    size_t post_len;
} tf_fetch;

typedef struct tf_host {
    uint32_t struct_size; /* sizeof(tf_host) as the host was compiled */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* --- logging: one line, prefixed with the pipeline and plugin; secrets are masked. --- */
    void (*log)(tf_instance *self, tf_log_level level, const char *fmt, ...) TF_PRINTF(3, 4);
    void (*vlog)(tf_instance *self, tf_log_level level, const char *fmt, va_list ap);
    /* Counts one error of class `status` for this instance (tickflow_plugin_errors_total) and
     * logs the message at warn level; the same message repeated tick after tick is logged at
     * debug and summarised at warn once a minute. A callback that returns a negative status
     * without having called report_error is counted (and logged) by the host itself. */
    void (*report_error)(tf_instance *self, tf_status status, const char *fmt, ...) TF_PRINTF(3, 4);
    /* Instance identity, for messages and labels. */
    const char *(*instance_pipeline)(const tf_instance *self);
    const char *(*instance_name)(const tf_instance *self); /* plugin name */

    /* --- validated options (types checked, defaults applied, ${VAR} resolved) --- */
    /* Returned pointers are borrowed: valid until the instance is destroyed. Asking for a name
     * that is not in the plugin's table is a plugin bug: it is logged and a zero value returned. */
    const char *(*opt_string)(const tf_options *o, const char *name); /* string|secret|NULL */
    int64_t (*opt_int)(const tf_options *o, const char *name);
    double (*opt_double)(const tf_options *o, const char *name);
    bool (*opt_bool)(const tf_options *o, const char *name);
    int64_t (*opt_duration_ms)(const tf_options *o, const char *name);
    /* list -> JSON array, map -> JSON object, scalars as their JSON types; NULL when unset. */
    const json_t *(*opt_json)(const tf_options *o, const char *name);
    bool (*opt_is_set)(const tf_options *o, const char *name); /* given in YAML (not default) */

    /* --- records --- */
    /* A new record of `kind`, appended to `batch`, which owns it. NULL on allocation failure. */
    tf_record *(*record_new)(tf_batch *batch, const char *kind);
    /* Setters copy their arguments and replace a field of the same name. They return TF_OK,
     * TF_EINVAL for a NULL/empty name or the reserved name "kind", TF_EVALUE for a non-finite
     * double, TF_ENOMEM. */
    int (*record_set_string)(tf_record *r, const char *name, const char *value);
    int (*record_set_int)(tf_record *r, const char *name, int64_t value);
    int (*record_set_double)(tf_record *r, const char *name, double value);
    int (*record_set_bool)(tf_record *r, const char *name, bool value);
    int (*record_set_ts)(tf_record *r, const char *name, int64_t epoch_ms);
    const char *(*record_kind)(const tf_record *r);
    size_t (*record_field_count)(const tf_record *r);
    /* The i-th field in insertion order; returns its type (TF_FIELD_NONE past the end). */
    tf_field_type (*record_field_at)(const tf_record *r, size_t i, const char **name);
    tf_field_type (*record_field_type)(const tf_record *r, const char *name);
    /* Getters: TF_OK and *out set, or TF_ENOTFOUND (absent) / TF_EINVAL (other type).
     * record_get_double also reads INT fields; record_get_int also reads TS fields. */
    const char *(*record_get_string)(const tf_record *r, const char *name); /* NULL if absent */
    int (*record_get_int)(const tf_record *r, const char *name, int64_t *out);
    int (*record_get_double)(const tf_record *r, const char *name, double *out);
    int (*record_get_bool)(const tf_record *r, const char *name, bool *out);
    /* {"kind": ..., <fields at the top level>}; new reference, caller decrefs. */
    json_t *(*record_to_json)(const tf_record *r);
    size_t (*batch_count)(const tf_batch *b);
    tf_record *(*batch_at)(const tf_batch *b, size_t i);
    /* Drops (and frees) the i-th record; later records move down by one. */
    void (*batch_remove)(tf_batch *b, size_t i);

    /* --- metrics (Prometheus). Every series gets a `pipeline` label first, then the
     * plugin's own labels. Registering the same name again returns the same family when the
     * type and label names match, NULL otherwise. --- */
    tf_metric *(*metric_register)(tf_instance *self, tf_metric_type type, const char *name,
                                  const char *help, const char *const *label_names,
                                  const double *buckets, size_t n_buckets);
    /* label_values: one per label name given at registration (not counting `pipeline`). */
    void (*metric_add)(tf_metric *m, tf_instance *self, const char *const *label_values, double v);
    void (*metric_set)(tf_metric *m, tf_instance *self, const char *const *label_values, double v);
    void (*metric_observe)(tf_metric *m, tf_instance *self, const char *const *label_values,
                           double v);

    /* --- clocks --- */
    int64_t (*now_ms)(void);       /* wall clock, epoch ms */
    int64_t (*monotonic_ms)(void); /* monotonic ms, for durations */

    /* --- HTTP through the core's shared client: kept-alive connections per host, per-host
     * rate limit, Retry-After, circuit breaker, size cap, compressed transfer. Returns TF_OK
     * when a response arrived (any status; check http_status) and sets *out, which the caller
     * frees with http_free. Otherwise a negative status and *out = NULL: TF_ETIMEOUT,
     * TF_ECONNECT, TF_ETOOLARGE, TF_ERATELIMIT (Retry-After in force or no rate token before
     * the deadline: no request was made), TF_ECIRCUIT, TF_ESTOPPED, TF_EHTTP (too many
     * redirects), TF_EINVAL (bad URL or header, struct_size not set), TF_ENOMEM. --- */
    int (*http_get)(tf_instance *self, const tf_http_request *req, tf_http_response **out);
    long (*http_status)(const tf_http_response *r);
    const char *(*http_body)(const tf_http_response *r, size_t *len); /* NUL-terminated */
    /* Case-insensitive; the last value received; NULL if absent. */
    const char *(*http_header)(const tf_http_response *r, const char *name);
    int64_t (*http_elapsed_ms)(const tf_http_response *r);
    void (*http_free)(tf_http_response *r);

    /* --- JSON helpers over jansson --- */
    /* Parses `len` bytes; on failure returns NULL and writes "line L column C: reason" into
     * err (if given). New reference. */
    json_t *(*json_parse)(const char *text, size_t len, char *err, size_t err_size);
    /* Strict numbers from a JSON number or a numeric string ("136850000", "95012.35").
     * Rejected with a reason in err (TF_EVALUE): null, other types, "", "NaN", "Inf", hex,
     * thousands separators, trailing garbage, and per flags zero/negative values. */
    int (*json_number)(const json_t *v, unsigned flags, double *out, char *err, size_t err_size);
    int (*json_int64)(const json_t *v, unsigned flags, int64_t *out, char *err, size_t err_size);
    /* RFC 6901 JSON Pointer ("/data/0/price"); borrowed reference or NULL. */
    json_t *(*json_pointer)(const json_t *root, const char *pointer);

    /* --- Redis, through the runtime's redis: settings (address, ACL user and password, db).
     * The connection reconnects by itself with backoff after any error and is never reused
     * after one. Replies are hiredis `redisReply *` (include <hiredis/hiredis.h> to read
     * them), freed with redis_reply_free; NULL means Redis is unreachable (counted and logged
     * by the host). A tf_redis is used by one thread at a time. redis_command and redis_eval
     * send a command once more on a new connection when the server had closed the connection
     * (its `timeout`, a restart), so they suit commands that are safe to repeat. --- */
    /* NULL when no redis: section is configured. The caller owns it (redis_close). */
    tf_redis *(*redis_open)(tf_instance *self);
    void (*redis_close)(tf_redis *r);
    void *(*redis_command)(tf_redis *r, int argc, const char **argv, const size_t *lens);
    /* Pipelining: append commands (TF_OK or TF_EREDIS), then read one reply per command. */
    int (*redis_append)(tf_redis *r, int argc, const char **argv, const size_t *lens);
    void *(*redis_get_reply)(tf_redis *r);
    /* EVALSHA, loading the script on NOSCRIPT; `script` must outlive `r`. */
    void *(*redis_eval)(tf_redis *r, const char *script, int numkeys, int argc, const char **argv,
                        const size_t *lens);
    void (*redis_reply_free)(void *reply);
    /* The runtime's key prefix ("tf" unless redis.prefix says otherwise). */
    const char *(*redis_prefix)(tf_instance *self);

    /* --- pipeline-wide symbol interest: one stage asks the sources of its pipeline to also
     * fetch some symbols (the positions transform: symbols with an open position, even when
     * they are not in a source's `symbols` list). A source unions interest_get() with its own
     * list on each tick. --- */
    /* Replaces this instance's contribution (n = 0 clears it). Copies the strings. */
    void (*interest_set)(tf_instance *self, const char *const *symbols, size_t n);
    /* Every stage's contributions in this pipeline, deduplicated and sorted; a new JSON array
     * of strings (caller decrefs; never NULL unless out of memory). */
    json_t *(*interest_get)(tf_instance *self);

    /* --- the positions store (docs/positions.md), shared by the CLI and API plugins. `r` is a
     * connection from redis_open; keys use the runtime prefix. --- */
    /* Opens a position from {symbol, direction, size, krw_exchange?, global_exchange?,
     * krw_price?, global_price?, usdkrw?}; without prices the current premium in Redis gives the
     * executable entry prices. TF_OK and *out = the stored position (new reference), or a
     * negative status with the reason in err: TF_EINVAL (bad request, err names the field),
     * TF_ENOTFOUND / TF_EVALUE (no fresh premium to price it), TF_EREDIS. */
    int (*position_open)(tf_instance *self, tf_redis *r, const json_t *request, json_t **out,
                         char *err, size_t err_size);
    /* Closes an open position at the current executable exit prices (or those in `request`,
     * which may be NULL): TF_OK and the closed position, TF_ENOTFOUND (unknown id), TF_EINVAL
     * (bad request, err names the field), TF_ECONFLICT (already closed), TF_EVALUE (no fresh
     * premium), TF_EREDIS. */
    int (*position_close)(tf_instance *self, tf_redis *r, const char *id, const json_t *request,
                          json_t **out, char *err, size_t err_size);
    /* One position (with its cached live PnL under "live" when it is open and a value is
     * present; a closed position never has one): TF_OK or TF_ENOTFOUND / TF_EREDIS. */
    int (*position_get)(tf_instance *self, tf_redis *r, const char *id, json_t **out);
    /* Array of positions (open ones; every one with `all`), each as position_get returns. */
    int (*position_list)(tf_instance *self, tf_redis *r, bool all, json_t **out);

    /* --- Redis Pub/Sub. For a connection from redis_open that was sent SUBSCRIBE: waits up to
     * timeout_ms for the next message. TF_OK and *reply set (free with redis_reply_free);
     * TF_ETIMEOUT when none came (the connection stays up: silence is normal on a subscription,
     * so a reader that must notice a stop request loops on a short timeout); TF_EREDIS when not
     * connected or the connection failed (dropped: the next redis_command reconnects, and the
     * subscription must then be sent again). --- */
    int (*redis_read_reply)(tf_redis *r, int64_t timeout_ms, void **reply);

    /* --- shared source helpers (ABI 1.1) --- */
    /* "an object", "an array", "a string", "a number", "a boolean", "null", or "nothing
     * (missing)" for NULL: the `found ...` half of a message about a JSON value. */
    const char *(*json_type_name)(const json_t *v);
    /* GETs req and parses the body as JSON, reporting (report_error) what every source would
     * report the same way, prefixed with f->context:
     *  - no response: TF_ETIMEOUT "expected a response within <req->timeout_ms> ms", TF_ECONNECT,
     *    TF_ETOOLARGE, TF_ERATELIMIT / TF_ECIRCUIT ("no request made: ..."; not reported with
     *    TF_FETCH_OWN_LIMITS), others; TF_ESTOPPED is returned silently;
     *  - 2xx with an empty body or invalid JSON: TF_EPARSE;
     *  - 2xx with JSON: TF_OK, f->root set;
     *  - any other status: NOT reported, so the caller can look for its venue's error object in
     *    f->root first (parsed when the body is JSON): TF_ERATELIMIT for 429/418, else TF_EHTTP;
     *    fetch_http_error then reports the generic message.
     * With TF_FETCH_QUIET nothing is reported. The caller always frees f->root and f->response,
     * whatever the result. */
    int (*fetch_json)(tf_instance *self, const tf_http_request *req, tf_fetch *f);
    /* Reports a non-2xx reply that carried no venue error: 429/418 as TF_ERATELIMIT with its
     * Retry-After, anything else as TF_EHTTP "expected HTTP <expected_status> with JSON, found
     * HTTP N (<Content-Type>, <bytes>, title of an HTML page)". Returns that class. */
    int (*fetch_http_error)(tf_instance *self, const tf_fetch *f, const char *expected_status);
    /* A payload timestamp `ts` (epoch ms) taken at `received_ms`: TF_OK when at most max_age_ms
     * older and at most 5 s newer; else reports TF_EVALUE "<context>: <field>: stale: ..." or
     * "... expected at most 5000 ms in the future ..." and returns it. */
    int (*check_fresh)(tf_instance *self, const char *context, const char *field, int64_t ts,
                       int64_t received_ms, int64_t max_age_ms);
    /* Validates an option holding an http:// or https:// URL with a host (logged as
     * "<option>: expected ..." on failure, TF_EINVAL) of at most max_len characters once
     * trailing '/' are removed; *out = that copy (owned: caller frees). */
    int (*base_url)(tf_instance *self, const char *option, const char *url, size_t max_len,
                    char **out);
    /* A duration option that must be > 0: TF_OK and *out, or logged "<name>: expected a
     * duration > 0 such as 5s, found N ms" and TF_EINVAL. */
    int (*opt_positive_duration)(tf_instance *self, const tf_options *o, const char *name,
                                 int64_t *out);

    /* --- exchange API keys from the encrypted key store (docs/security.md). The runtime's
     * `keys:` section says where the store is and which master keys decrypt it. --- */
    /* Decrypts the pair stored as (exchange, name) into the caller's buffers (NUL-terminated),
     * which the caller wipes with explicit_bzero after use. The values are also registered
     * with the log masker. TF_OK; TF_ENOTFOUND (no such entry, or no keys: section);
     * TF_EINVAL (a buffer too small); TF_EVALUE (wrong master key, tampered or truncated
     * entry: err says which, never garbage); TF_EREDIS. */
    int (*api_key_get)(tf_instance *self, const char *exchange, const char *name, char *key,
                       size_t key_size, char *secret, size_t secret_size, char *err,
                       size_t err_size);

    /* POST `len` bytes of `body` through the same client and per-host rules as http_get (set
     * Content-Type in req->headers). Private exchange APIs sign a form body (Bithumb v1). */
    int (*http_post)(tf_instance *self, const tf_http_request *req, const char *body, size_t len,
                     tf_http_response **out);

    /* --- record provenance (ABI 1.2) --- */
    /* The stage of the pipeline that created `r`: TF_OK with *kind (TF_KIND_SOURCE: a source's
     * collect; TF_KIND_TRANSFORM: appended by a transform's process) and *plugin (the plugin's
     * name, such as "redis"; borrowed, valid while the record is). TF_ENOTFOUND for a record
     * no stage created (a test building a batch by hand). Either out pointer may be NULL. A
     * sink uses it to tell what its pipeline only read back from a store from what it fetched
     * or computed: the redis sink does not write back what a redis source read. */
    int (*record_origin)(const tf_record *r, tf_plugin_kind *kind, const char **plugin);

    /* New functions are appended here; bump TF_ABI_MINOR. */
} tf_host;

/* True when the host's table includes `member` (a host older than the plugin may not). */
#define TF_HOST_HAS(host, member)                                                                  \
    ((host)->struct_size >= offsetof(tf_host, member) + sizeof((host)->member) &&                  \
     (host)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif
