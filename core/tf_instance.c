/*
 * Plugin instances and the host table (the services a plugin reaches through tf_host).
 * Repeated identical errors are logged once and then summarised every minute, so a source that
 * fails every second does not flood the log; every occurrence is still counted.
 */
#include "tf_instance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_fetch.h"
#include "tf_json.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_positions.h"
#include "tf_options.h"
#include "tf_record.h"
#include "tf_keyreads.h"
#include "tf_keys.h"
#include "tf_redis.h"

#define TF_MAX_LABELS    16
#define TF_REPEAT_LOG_MS 60000

struct tf_instance {
    const tf_plugin *plugin;      /* borrowed from the registry */
    const tf_stage_config *stage; /* borrowed from the configuration */
    char *pipeline;               /* owned */
    char component[160];
    void *state;                    /* the plugin's instance, owned through desc->destroy */
    tf_http *http;                  /* borrowed: the runtime's shared client */
    tf_http_client *client;         /* owned, created on first http_get */
    const tf_redis_settings *redis; /* borrowed: the runtime's settings */
    tf_interest *interest;          /* borrowed: the pipeline's symbol interest, may be NULL */
    const atomic_bool *stop;        /* borrowed: the pipeline's stop flag */
    pthread_mutex_t err_lock;
    char last_error[256];      /* last message passed to report_error */
    unsigned long repeats;     /* identical messages since it was last logged */
    int64_t last_error_log_ms; /* monotonic */
    atomic_ulong reported;     /* report_error calls so far */
    atomic_bool in_init;       /* desc->init is running (on the main thread) */
    tf_keyreads *key_reads;    /* owned: key store entries init read (NULL: none) */
};

/* --- metrics the host keeps per instance --- */

static tf_metric *errors_metric(void)
{
    static const char *const labels[] = {"pipeline", "plugin", "class", NULL};
    return tf_metrics_register(TF_METRIC_COUNTER, "tickflow_plugin_errors_total",
                               "Errors reported by plugins, by class", labels, NULL, 0);
}

static tf_metric *records_metric(void)
{
    static const char *const labels[] = {"pipeline", "plugin", NULL};
    return tf_metrics_register(TF_METRIC_COUNTER, "tickflow_plugin_records_total",
                               "Records emitted by sources and transforms, written by sinks",
                               labels, NULL, 0);
}

static void count_error(tf_instance *self, int status)
{
    const char *values[] = {self->pipeline, self->plugin->desc->name, tf_status_name(status)};
    tf_metric *m = errors_metric();
    if (m)
        tf_metric_add(m, values, 1);
}

static void count_records(tf_instance *self, size_t n)
{
    const char *values[] = {self->pipeline, self->plugin->desc->name};
    tf_metric *m = records_metric();
    if (m && n > 0)
        tf_metric_add(m, values, (double)n);
}

/* --- logging --- */

static void host_vlog(tf_instance *self, tf_log_level level, const char *fmt, va_list ap)
{
    tf_vlog(level, self ? self->component : "plugin", fmt, ap);
}

static void host_log(tf_instance *self, tf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_vlog(self, level, fmt, ap);
    va_end(ap);
}

/* Logs `msg` unless it repeats the previous one, in which case it is summarised at most once a
 * minute. */
static void log_deduplicated(tf_instance *self, const char *msg)
{
    int64_t now = tf_mono_ms();
    pthread_mutex_lock(&self->err_lock);
    bool same = strcmp(self->last_error, msg) == 0;
    bool summarise = same && now - self->last_error_log_ms >= TF_REPEAT_LOG_MS;
    unsigned long repeats = self->repeats;
    if (!same) {
        snprintf(self->last_error, sizeof self->last_error, "%s", msg);
        self->repeats = 0;
        self->last_error_log_ms = now;
    } else if (summarise) {
        self->repeats = 0;
        self->last_error_log_ms = now;
    } else {
        self->repeats++;
    }
    pthread_mutex_unlock(&self->err_lock);
    if (!same)
        tf_log(TF_LOG_WARN, self->component, "%s", msg);
    else if (summarise)
        tf_log(TF_LOG_WARN, self->component, "%s (repeated %lu more times)", msg, repeats + 1);
    else
        tf_log(TF_LOG_DEBUG, self->component, "%s", msg);
}

static void host_report_error(tf_instance *self, tf_status status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&self->reported, 1);
    count_error(self, status);
    log_deduplicated(self, msg);
}

/* Called when a tick of this instance succeeded: the next error is news again. */
static void note_success(tf_instance *self)
{
    pthread_mutex_lock(&self->err_lock);
    bool had_error = self->last_error[0] != '\0';
    self->last_error[0] = '\0';
    self->repeats = 0;
    pthread_mutex_unlock(&self->err_lock);
    if (had_error)
        tf_log(TF_LOG_INFO, self->component, "recovered");
}

static const char *host_instance_pipeline(const tf_instance *self)
{
    return self->pipeline;
}

static const char *host_instance_name(const tf_instance *self)
{
    return self->plugin->desc->name;
}

/* --- metrics for plugins: `pipeline` is always the first label --- */

static tf_metric *host_metric_register(tf_instance *self, tf_metric_type type, const char *name,
                                       const char *help, const char *const *label_names,
                                       const double *buckets, size_t n_buckets)
{
    const char *labels[TF_MAX_LABELS + 1];
    size_t n = 0;
    labels[n++] = "pipeline";
    for (size_t i = 0; label_names && label_names[i]; i++) {
        if (n == TF_MAX_LABELS) {
            tf_log(TF_LOG_ERROR, self->component, "metric %s: more than %d labels", name,
                   TF_MAX_LABELS - 1);
            return NULL;
        }
        labels[n++] = label_names[i];
    }
    labels[n] = NULL;
    return tf_metrics_register(type, name, help, labels, buckets, n_buckets);
}

/* Prefixes the instance's pipeline to the plugin's label values. The SDK promises one value
 * per label the plugin registered, no terminator, so exactly the family's count is copied. */
static void with_pipeline(tf_instance *self, const tf_metric *m, const char *const *values,
                          const char **out)
{
    size_t n = tf_metric_label_count(m);
    out[0] = self->pipeline;
    for (size_t i = 1; i < n && i < TF_MAX_LABELS; i++)
        out[i] = values ? values[i - 1] : "";
}

static void host_metric_add(tf_metric *m, tf_instance *self, const char *const *values, double v)
{
    const char *all[TF_MAX_LABELS + 1] = {0};
    if (!m)
        return;
    with_pipeline(self, m, values, all);
    tf_metric_add(m, all, v);
}

static void host_metric_set(tf_metric *m, tf_instance *self, const char *const *values, double v)
{
    const char *all[TF_MAX_LABELS + 1] = {0};
    if (!m)
        return;
    with_pipeline(self, m, values, all);
    tf_metric_set(m, all, v);
}

static void host_metric_observe(tf_metric *m, tf_instance *self, const char *const *values,
                                double v)
{
    const char *all[TF_MAX_LABELS + 1] = {0};
    if (!m)
        return;
    with_pipeline(self, m, values, all);
    tf_metric_observe(m, all, v);
}

/* --- HTTP --- */

/* The instance's client, created on first use. */
static int ensure_client(tf_instance *self)
{
    if (!self->http)
        return TF_ECONNECT;
    if (!self->client) {
        self->client =
            tf_http_client_create(self->http, self->pipeline, self->plugin->desc->name, self->stop);
        if (!self->client)
            return TF_ENOMEM;
    }
    return TF_OK;
}

static int host_http_get(tf_instance *self, const tf_http_request *req, tf_http_response **out)
{
    *out = NULL;
    if (!req || !req->url)
        return TF_EINVAL;
    int rc = ensure_client(self);
    return rc == TF_OK ? tf_http_get(self->client, req, out) : rc;
}

static int host_http_post(tf_instance *self, const tf_http_request *req, const char *body,
                          size_t len, tf_http_response **out)
{
    *out = NULL;
    if (!req || !req->url)
        return TF_EINVAL;
    int rc = ensure_client(self);
    return rc == TF_OK ? tf_http_post(self->client, req, body, len, out) : rc;
}

/* --- pipeline-wide symbol interest --- */

struct tf_interest {
    pthread_mutex_t lock;
    json_t *by_stage; /* object: stage component -> array of symbols */
};

tf_interest *tf_interest_create(void)
{
    tf_interest *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->by_stage = json_object();
    if (!in->by_stage) {
        free(in);
        return NULL;
    }
    pthread_mutex_init(&in->lock, NULL);
    return in;
}

void tf_interest_destroy(tf_interest *in)
{
    if (!in)
        return;
    json_decref(in->by_stage);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

static void host_interest_set(tf_instance *self, const char *const *symbols, size_t n)
{
    if (!self->interest)
        return;
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (symbols[i] && *symbols[i])
            json_array_append_new(list, json_string(symbols[i]));
    pthread_mutex_lock(&self->interest->lock);
    json_object_set_new(self->interest->by_stage, self->component, list);
    pthread_mutex_unlock(&self->interest->lock);
}

static int cmp_json_string(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static json_t *host_interest_get(tf_instance *self)
{
    json_t *seen = json_object(), *out = json_array();
    if (!seen || !out || !self->interest)
        goto done;
    pthread_mutex_lock(&self->interest->lock);
    const char *stage;
    json_t *list;
    json_object_foreach(self->interest->by_stage, stage, list)
    {
        size_t i;
        json_t *sym;
        json_array_foreach(list, i, sym) json_object_set(seen, json_string_value(sym), sym);
    }
    pthread_mutex_unlock(&self->interest->lock);
    const char *name;
    json_t *sym;
    json_object_foreach(seen, name, sym) json_array_append(out, sym);
    size_t n = json_array_size(out);
    json_t **items = n ? malloc(n * sizeof *items) : NULL;
    if (items) {
        for (size_t i = 0; i < n; i++)
            items[i] = json_incref(json_array_get(out, i));
        qsort(items, n, sizeof *items, cmp_json_string);
        json_array_clear(out);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(out, items[i]);
        free(items);
    }
done:
    json_decref(seen);
    return out;
}

/* --- Redis --- */

static tf_redis *host_redis_open(tf_instance *self)
{
    if (!self->redis || !self->redis->configured) {
        tf_log(TF_LOG_ERROR, self->component, "Redis needed, but no redis: section is configured");
        return NULL;
    }
    return tf_redis_create_for(self->redis, self->component, self->pipeline);
}

static void *host_redis_command(tf_redis *r, int argc, const char **argv, const size_t *lens)
{
    return tf_redis_command_argv(r, argc, argv, lens);
}

static void *host_redis_get_reply(tf_redis *r)
{
    return tf_redis_get_reply(r);
}

static int host_redis_read_reply(tf_redis *r, int64_t timeout_ms, void **reply)
{
    redisReply *got = NULL;
    int rc = tf_redis_read_reply(r, timeout_ms, &got);
    *reply = got;
    return rc;
}

static void *host_redis_eval(tf_redis *r, const char *script, int numkeys, int argc,
                             const char **argv, const size_t *lens)
{
    return tf_redis_eval(r, script, numkeys, argc, argv, lens);
}

static void host_redis_reply_free(void *reply)
{
    if (reply)
        freeReplyObject(reply);
}

static const char *host_redis_prefix(tf_instance *self)
{
    return self->redis && self->redis->prefix ? self->redis->prefix : "tf";
}

/* --- JSON --- */

static json_t *host_json_parse(const char *text, size_t len, char *err, size_t err_size)
{
    json_error_t e;
    if (!text) {
        if (err && err_size)
            snprintf(err, err_size, "no body");
        return NULL;
    }
    /* JSON_DECODE_ANY: some APIs answer with a bare array; DISABLE_EOF_CHECK stays off so
     * trailing garbage is an error. */
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY, &e);
    if (!root && err && err_size)
        snprintf(err, err_size, "line %d column %d: %s", e.line, e.column, e.text);
    return root;
}

/* --- options --- */

static const char *host_opt_string(const tf_options *o, const char *name)
{
    return tf_options_string(o, name);
}

/* --- source helpers (tf_fetch.c), given the host table so their messages go through it --- */

static const tf_host host_table;

static int host_fetch_json(tf_instance *self, const tf_http_request *req, tf_fetch *f)
{
    return tf_fetch_json(&host_table, self, req, f);
}

static int host_fetch_http_error(tf_instance *self, const tf_fetch *f, const char *expected_status)
{
    return tf_fetch_http_error(&host_table, self, f, expected_status);
}

static int host_check_fresh(tf_instance *self, const char *context, const char *field, int64_t ts,
                            int64_t received_ms, int64_t max_age_ms)
{
    return tf_fetch_check_fresh(&host_table, self, context, field, ts, received_ms, max_age_ms);
}

static int host_base_url(tf_instance *self, const char *option, const char *url, size_t max_len,
                         char **out)
{
    return tf_fetch_base_url(&host_table, self, option, url, max_len, out);
}

static int host_opt_positive_duration(tf_instance *self, const tf_options *o, const char *name,
                                      int64_t *out)
{
    return tf_fetch_positive_duration(&host_table, self, o, name, out);
}

/* A pair read by init stays in the plugin until the pipeline restarts: remember what was read
 * so that a reload restarts the pipeline when the entry changed (tf_instance_keys_changed). A
 * pair read at each tick needs nothing: the next tick sees the new entry. */
static void remember_key_read(tf_instance *self, const char *exchange, const char *name, int rc,
                              const char *key, size_t key_size, const char *secret,
                              size_t secret_size)
{
    if (rc != TF_OK && rc != TF_ENOTFOUND && rc != TF_EVALUE && rc != TF_EINVAL)
        return; /* the store could not answer: nothing to compare with later */
    if (!self->key_reads)
        self->key_reads = tf_keyreads_create();
    if (!self->key_reads || tf_keyreads_add(self->key_reads, exchange, name, rc, key, key_size,
                                            secret, secret_size) != TF_OK)
        tf_log(TF_LOG_WARN, self->component,
               "out of memory: a reload will not notice a change of key store entry %s/%s",
               exchange, name);
}

/* A store handle per call: plugins ask once, at init, so a connection kept open would only
 * idle. */
static int host_api_key_get(tf_instance *self, const char *exchange, const char *name, char *key,
                            size_t key_size, char *secret, size_t secret_size, char *err,
                            size_t err_size)
{
    char dummy[8];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    err[0] = '\0';
    const tf_keys_settings *ks = self && self->redis ? self->redis->keys : NULL;
    if (!ks || !ks->configured) {
        snprintf(err, err_size, "no keys: section is configured (see docs/keys.md)");
        return TF_ENOTFOUND;
    }
    if (!key || !secret) {
        snprintf(err, err_size, "expected buffers for the key and the secret; found NULL");
        return TF_EINVAL;
    }
    tf_keys *k = tf_keys_open(ks, self->redis, self->component);
    if (!k)
        return TF_ENOMEM;
    int rc = tf_keys_get(k, exchange, name, key, key_size, secret, secret_size, err, err_size);
    tf_keys_close(k);
    if (atomic_load(&self->in_init))
        remember_key_read(self, exchange, name, rc, key, key_size, secret, secret_size);
    if (rc == TF_OK) {
        tf_log_add_secret(key);
        tf_log_add_secret(secret);
    }
    return rc;
}

static int host_record_origin(const tf_record *r, tf_plugin_kind *kind, const char **plugin)
{
    const tf_instance *origin = tf_record_origin(r);
    if (!origin)
        return TF_ENOTFOUND;
    if (kind)
        *kind = origin->plugin->desc->kind;
    if (plugin)
        *plugin = origin->plugin->desc->name;
    return TF_OK;
}

static const tf_host host_table = {
    .struct_size = sizeof(tf_host),
    .abi_major = TF_ABI_MAJOR,
    .abi_minor = TF_ABI_MINOR,
    .log = host_log,
    .vlog = host_vlog,
    .report_error = host_report_error,
    .instance_pipeline = host_instance_pipeline,
    .instance_name = host_instance_name,
    .opt_string = host_opt_string,
    .opt_int = tf_options_int,
    .opt_double = tf_options_double,
    .opt_bool = tf_options_bool,
    .opt_duration_ms = tf_options_duration_ms,
    .opt_json = tf_options_json,
    .opt_is_set = tf_options_is_set,
    .record_new = tf_record_new,
    .record_set_string = tf_record_set_string,
    .record_set_int = tf_record_set_int,
    .record_set_double = tf_record_set_double,
    .record_set_bool = tf_record_set_bool,
    .record_set_ts = tf_record_set_ts,
    .record_kind = tf_record_kind,
    .record_field_count = tf_record_field_count,
    .record_field_at = tf_record_field_at,
    .record_field_type = tf_record_field_type,
    .record_get_string = tf_record_get_string,
    .record_get_int = tf_record_get_int,
    .record_get_double = tf_record_get_double,
    .record_get_bool = tf_record_get_bool,
    .record_to_json = tf_record_to_json,
    .batch_count = tf_batch_count,
    .batch_at = tf_batch_at,
    .batch_remove = tf_batch_remove,
    .metric_register = host_metric_register,
    .metric_add = host_metric_add,
    .metric_set = host_metric_set,
    .metric_observe = host_metric_observe,
    .now_ms = tf_now_ms,
    .monotonic_ms = tf_mono_ms,
    .http_get = host_http_get,
    .http_status = tf_http_response_status,
    .http_body = tf_http_response_body,
    .http_header = tf_http_response_header,
    .http_elapsed_ms = tf_http_response_elapsed_ms,
    .http_free = tf_http_response_free,
    .json_parse = host_json_parse,
    .json_number = tf_json_number,
    .json_int64 = tf_json_int64,
    .json_pointer = tf_json_pointer,
    .redis_open = host_redis_open,
    .redis_close = tf_redis_destroy,
    .redis_command = host_redis_command,
    .redis_append = tf_redis_append_argv,
    .redis_get_reply = host_redis_get_reply,
    .redis_eval = host_redis_eval,
    .redis_reply_free = host_redis_reply_free,
    .redis_prefix = host_redis_prefix,
    .redis_read_reply = host_redis_read_reply,
    .json_type_name = tf_json_type_name,
    .fetch_json = host_fetch_json,
    .fetch_http_error = host_fetch_http_error,
    .check_fresh = host_check_fresh,
    .base_url = host_base_url,
    .opt_positive_duration = host_opt_positive_duration,
    .http_post = host_http_post,
    .interest_set = host_interest_set,
    .interest_get = host_interest_get,
    .position_open = tf_positions_host_open,
    .position_close = tf_positions_host_close,
    .position_get = tf_positions_host_get,
    .position_list = tf_positions_host_list,
    .api_key_get = host_api_key_get,
    .record_origin = host_record_origin,
};

const tf_host *tf_host_table(void)
{
    return &host_table;
}

/* --- instances --- */

tf_instance *tf_instance_create(const tf_stage_config *stage, const char *pipeline, tf_http *http,
                                const tf_redis_settings *redis, tf_interest *interest,
                                const atomic_bool *stop)
{
    tf_instance *inst = calloc(1, sizeof *inst);
    if (!inst)
        return NULL;
    inst->plugin = stage->plugin;
    inst->stage = stage;
    inst->http = http;
    inst->redis = redis;
    inst->interest = interest;
    inst->stop = stop;
    pthread_mutex_init(&inst->err_lock, NULL);
    inst->pipeline = strdup(pipeline);
    if (!inst->pipeline)
        goto fail;
    snprintf(inst->component, sizeof inst->component, "%s/%s", pipeline, stage->plugin->desc->name);
    atomic_store(&inst->in_init, true);
    int rc = stage->plugin->desc->init(&host_table, inst, stage->options, &inst->state);
    atomic_store(&inst->in_init, false);
    if (rc != TF_OK) {
        tf_log(TF_LOG_ERROR, inst->component, "plugin init failed (%s) for %s", tf_status_name(rc),
               stage->path);
        inst->state = NULL;
        goto fail;
    }
    return inst;
fail:
    tf_keyreads_destroy(inst->key_reads);
    free(inst->pipeline);
    pthread_mutex_destroy(&inst->err_lock);
    free(inst);
    return NULL;
}

void tf_instance_destroy(tf_instance *inst)
{
    if (!inst)
        return;
    if (inst->state)
        inst->plugin->desc->destroy(inst->state);
    tf_http_client_destroy(inst->client);
    tf_keyreads_destroy(inst->key_reads);
    pthread_mutex_destroy(&inst->err_lock);
    free(inst->pipeline);
    free(inst);
}

bool tf_instance_keys_changed(const tf_instance *inst)
{
    const tf_keys_settings *ks = inst->redis ? inst->redis->keys : NULL;
    return tf_keyreads_changed(inst->key_reads, ks, inst->redis, inst->component);
}

/* Counts the outcome of one callback. A failure the plugin already explained through
 * report_error is not counted twice; an unexplained one is counted and logged here. */
static int account(tf_instance *inst, int rc, size_t records, unsigned long reported_before)
{
    bool reported = atomic_load(&inst->reported) != reported_before;
    count_records(inst, records);
    if (rc == TF_OK && !reported) {
        note_success(inst);
    } else if (rc < 0 && rc != TF_ESTOPPED && !reported) {
        char msg[128];
        snprintf(msg, sizeof msg, "tick failed: %s", tf_status_name(rc));
        count_error(inst, rc);
        log_deduplicated(inst, msg);
    }
    return rc;
}

int tf_instance_collect(tf_instance *inst, const tf_tick *tick, tf_batch *out)
{
    unsigned long reported = atomic_load(&inst->reported);
    size_t before = tf_batch_count(out);
    /* The records this source creates are its own (host->record_origin). */
    const tf_instance *prev = tf_batch_set_origin(out, inst);
    int rc = inst->plugin->desc->collect(inst->state, tick, out);
    tf_batch_set_origin(out, prev);
    return account(inst, rc, tf_batch_count(out) - before, reported);
}

int tf_instance_process(tf_instance *inst, const tf_tick *tick, tf_batch *batch)
{
    unsigned long reported = atomic_load(&inst->reported);
    size_t before = tf_batch_count(batch);
    /* Records the transform appends are its own; those it only reads keep their origin. */
    const tf_instance *prev = tf_batch_set_origin(batch, inst);
    int rc = inst->plugin->desc->process(inst->state, tick, batch);
    tf_batch_set_origin(batch, prev);
    size_t after = tf_batch_count(batch);
    return account(inst, rc, after > before ? after - before : 0, reported);
}

int tf_instance_write(tf_instance *inst, const tf_tick *tick, const tf_batch *batch)
{
    unsigned long reported = atomic_load(&inst->reported);
    int rc = inst->plugin->desc->write(inst->state, tick, batch);
    return account(inst, rc, rc == TF_OK ? tf_batch_count(batch) : 0, reported);
}

const tf_plugin *tf_instance_plugin(const tf_instance *inst)
{
    return inst->plugin;
}

const char *tf_instance_component(const tf_instance *inst)
{
    return inst->component;
}
