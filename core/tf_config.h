/*
 * Configuration: YAML files (or directories of *.yaml / *.yml) holding the runtime settings
 * (redis:, http:, log:, metrics:, keys:) and the pipelines. Loading interpolates ${VAR} and
 * ${VAR:-default}, validates every section and every plugin's `with:` against its option table,
 * and reports every problem as file:line:column with its path. Nothing starts on any error.
 */
#ifndef TF_CONFIG_H
#define TF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "tf_common.h"
#include "tf_diag.h"
#include "tf_plugin.h"

/* One entry of sources:, transforms: or sinks:. */
typedef struct tf_stage_config {
    const tf_plugin *plugin; /* borrowed from the registry passed to tf_config_load */
    tf_options *options;     /* owned */
    char *path;              /* "pipelines[0].sources[1]", for messages */
} tf_stage_config;

typedef struct tf_pipeline_config {
    char *name;
    char *file; /* where it was defined */
    int line;
    int64_t every_ms;
    bool lease;           /* true when redis: is configured and lease is not off */
    int64_t lease_ttl_ms; /* default 2000 */
    tf_stage_config *sources;
    size_t n_sources;
    tf_stage_config *transforms;
    size_t n_transforms;
    tf_stage_config *sinks;
    size_t n_sinks;
} tf_pipeline_config;

struct tf_keys_settings;

typedef struct tf_redis_settings {
    bool configured; /* a redis: section was given */
    char *url;       /* as written, with no credentials: redis://host:port/db */
    char *host;
    int port;
    int db;
    char *user;                 /* NULL when not set (secret) */
    char *password;             /* NULL when not set (secret) */
    char *prefix;               /* key prefix, default "tf" */
    int64_t connect_timeout_ms; /* default 500 */
    int64_t command_timeout_ms; /* default 1000 */
    /* Borrowed: the keys: section of the same configuration (NULL outside a loaded config).
     * Kept here so that whatever is lent the Redis settings (plugin instances) also reaches the
     * key store without another parameter. */
    const struct tf_keys_settings *keys;
} tf_redis_settings;

typedef struct tf_http_host_limit {
    char *host;   /* "api.bithumb.com" or "127.0.0.1:8080" (a port-specific entry wins) */
    double rate;  /* requests per second */
    double burst; /* bucket size, default = rate */
} tf_http_host_limit;

typedef struct tf_http_settings {
    char *user_agent;
    int64_t connect_timeout_ms; /* default 3000 */
    int64_t timeout_ms;         /* default 10000 */
    int64_t max_body_bytes;     /* default 8 MiB */
    int breaker_failures;       /* consecutive failures that open the breaker; default 5 */
    int64_t breaker_base_ms;    /* first open period; default 1000 */
    int64_t breaker_max_ms;     /* cap; default 60000 */
    int64_t retry_after_max_ms; /* longest block a Retry-After can impose; default 300000 */
    tf_http_host_limit *hosts;  /* YAML http.hosts plus built-in defaults not overridden */
    size_t n_hosts;
} tf_http_settings;

typedef struct tf_log_settings {
    tf_log_level level; /* default info */
    bool json;          /* format: json (default text) */
} tf_log_settings;

typedef struct tf_metrics_settings {
    char *listen; /* "127.0.0.1:9464" serves /metrics and /healthz; NULL = off */
} tf_metrics_settings;

typedef enum tf_keys_store_kind {
    TF_KEYS_STORE_REDIS = 0, /* <prefix>:keys:<exchange>:<name> under redis: */
    TF_KEYS_STORE_FILE = 1   /* one JSON file, written atomically with mode 0600 */
} tf_keys_store_kind;

/* A master key of the API key store (docs/keys.md). */
typedef struct tf_master_key {
    char *id;                /* "k1": recorded in each entry it encrypts */
    unsigned char bytes[32]; /* AES-256 key; wiped by tf_config_destroy */
} tf_master_key;

typedef struct tf_keys_settings {
    bool configured; /* a keys: section was given */
    tf_keys_store_kind store;
    char *file;             /* the store file (store: file), else NULL */
    tf_master_key *masters; /* [0] encrypts (master_key); the rest only decrypt (rotation) */
    size_t n_masters;
} tf_keys_settings;

typedef struct tf_config {
    tf_redis_settings redis;
    tf_http_settings http;
    tf_log_settings log;
    tf_metrics_settings metrics;
    tf_keys_settings keys; /* cfg->redis.keys points here */
    tf_pipeline_config *pipelines;
    size_t n_pipelines;
} tf_config;

/* Loads `paths` (files or directories; a directory contributes its *.yaml and *.yml files in
 * name order). Runtime sections may appear in at most one file; pipeline names are unique.
 * Returns TF_OK and *out, or TF_EINVAL with every problem in `diag` (and *out = NULL). */
int tf_config_load(const char *const *paths, size_t n_paths, const tf_registry *reg, tf_diag *diag,
                   tf_config **out);
void tf_config_destroy(tf_config *cfg);

/* The option tables of the runtime sections, for `tickflow describe`-style docs. */
extern const tf_option_def tf_config_redis_options[];
extern const tf_option_def tf_config_http_options[];
extern const tf_option_def tf_config_log_options[];
extern const tf_option_def tf_config_metrics_options[];
extern const tf_option_def tf_config_keys_options[];
extern const tf_option_def tf_config_pipeline_options[];

/* Interpolates ${VAR} and ${VAR:-default} from the environment ($$ is a literal $).
 * Returns a malloc'd string, or NULL with a reason in err (unset variable without default,
 * unterminated ${). */
char *tf_env_interpolate(const char *text, char *err, size_t err_size);

#endif
