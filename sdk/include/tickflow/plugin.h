/*
 * tickflow plugin ABI: the descriptor a plugin exports and the option table that declares its
 * options once (validation, `tickflow plugins describe` and docs/plugins/ all read it).
 *
 * Growth rules (after SQLite's sqlite3_api_routines and nginx's NGX_MODULE_V1):
 *  - TF_ABI_MAJOR changes only when a layout below changes incompatibly; the host refuses a
 *    plugin whose major differs from its own.
 *  - TF_ABI_MINOR grows when a field is appended to tf_plugin_descriptor or a function is
 *    appended to tf_host; `struct_size` tells each side how much the other one knows.
 */
#ifndef TICKFLOW_PLUGIN_H
#define TICKFLOW_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TF_ABI_MAJOR 1
/* 1.1: json_type_name .. http_post (hosts of that minor still reported 0: use TF_HOST_HAS);
 * 1.2: record_origin. */
#define TF_ABI_MINOR 2

/* The one symbol every plugin exports; see TF_PLUGIN_EXPORT below. */
#define TF_PLUGIN_SYMBOL "tickflow_plugin"

typedef enum tf_plugin_kind {
    TF_KIND_SOURCE = 1,    /* emits records on every tick */
    TF_KIND_TRANSFORM = 2, /* reads the tick's records, may add or drop records */
    TF_KIND_SINK = 3       /* consumes the tick's records */
} tf_plugin_kind;

/* Status codes. Negative values double as error classes in metrics
 * (tickflow_plugin_errors_total{class="..."}), so a plugin returns the most precise one. */
typedef enum tf_status {
    TF_OK = 0,
    TF_ERR = -1,        /* unclassified failure */
    TF_ENOMEM = -2,     /* allocation failed */
    TF_EINVAL = -3,     /* invalid argument or option */
    TF_ETIMEOUT = -4,   /* an operation ran past its deadline */
    TF_ECONNECT = -5,   /* could not connect (DNS, TCP, TLS) */
    TF_EHTTP = -6,      /* HTTP status that is not success (5xx, 4xx) */
    TF_EPARSE = -7,     /* body is not the expected JSON layout */
    TF_EAPI = -8,       /* the remote side answered with its own error object */
    TF_ERATELIMIT = -9, /* rate limited (locally or by the remote's 429/418 + Retry-After) */
    TF_ECIRCUIT = -10,  /* circuit breaker open for that host: no request was made */
    TF_ETOOLARGE = -11, /* response larger than the configured cap */
    TF_EVALUE = -12,    /* a value failed validation (zero, NaN, negative price...) */
    TF_EREDIS = -13,    /* Redis unreachable or returned an error */
    TF_EFENCED = -14,   /* write refused: the writer's fencing token is no longer current */
    TF_ESTOPPED = -15,  /* the runtime is stopping; the operation was abandoned */
    TF_ENOTFOUND = -16, /* the requested item does not exist */
    TF_ECONFLICT = -17  /* the item's state refuses the operation (closing a closed position) */
} tf_status;

/* Option types. In YAML: string "text"; int 15; double 1.5; bool true/false/on/off;
 * duration 500ms, 1s, 10m, 1h (plain integers are milliseconds); list [a, b] (a scalar where a
 * list is expected is a one-item list); map {k: v}; secret: like string, but its value is masked
 * wherever it could be printed and must come from ${VAR} or ${file:/path}. */
typedef enum tf_option_type {
    TF_OPT_STRING = 1,
    TF_OPT_INT = 2,
    TF_OPT_DOUBLE = 3,
    TF_OPT_BOOL = 4,
    TF_OPT_DURATION = 5,
    TF_OPT_LIST = 6,
    TF_OPT_MAP = 7,
    TF_OPT_SECRET = 8
} tf_option_type;

/* One option. Tables end with an entry whose name is NULL. */
typedef struct tf_option_def {
    const char *name;
    tf_option_type type;
    /* Default written as it would be in YAML ("1s", "true", "[BTC, ETH]"); NULL = no default. */
    const char *default_value;
    int required; /* non-zero: validation fails when the option is absent */
    const char *description;
    /* For TF_OPT_LIST: the type of each item (0 = any scalar). For TF_OPT_MAP with `fields`
     * NULL: the type of each value (0 = any). */
    tf_option_type item_type;
    /* For TF_OPT_MAP, or a TF_OPT_LIST whose item_type is TF_OPT_MAP: the keys such a map may
     * hold. A list item written as a plain scalar is shorthand for {fields[0].name: scalar}. */
    const struct tf_option_def *fields;
} tf_option_def;

struct tf_host;
struct tf_instance;
struct tf_options;
struct tf_batch;

/* Everything the host knows about the tick in progress; valid during the callback only. */
typedef struct tf_tick {
    uint32_t struct_size;
    const char *pipeline;   /* pipeline name */
    uint64_t seq;           /* 1, 2, ... per pipeline run */
    int64_t scheduled_ms;   /* wall-clock ms (epoch) at which this tick was due */
    int64_t deadline_ms;    /* monotonic ms by which the tick should be over (next period) */
    uint64_t fence;         /* fencing token of the lease held for this tick; 0 without lease */
    const char *fence_key;  /* Redis key holding the current token; NULL without lease */
    const char *key_prefix; /* Redis key prefix from the runtime settings ("tf") */
} tf_tick;

/*
 * The descriptor. Export it with TF_PLUGIN_EXPORT so the host finds it by TF_PLUGIN_SYMBOL:
 *
 *   TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
 *       TF_PLUGIN_HEADER, .name = "stdout", .kind = TF_KIND_SINK, ...
 *   };
 */
typedef struct tf_plugin_descriptor {
    uint32_t struct_size; /* sizeof(tf_plugin_descriptor) as the plugin was compiled */
    uint16_t abi_major;   /* TF_ABI_MAJOR as the plugin was compiled */
    uint16_t abi_minor;   /* TF_ABI_MINOR as the plugin was compiled */
    const char *name;     /* [a-z0-9_]+, unique per kind */
    tf_plugin_kind kind;
    const char *description; /* one line */
    const char *version;     /* the plugin's own version */
    const tf_option_def *options;

    /* Create an instance from validated options. `host` and `self` outlive the instance; the
     * plugin keeps them to call host services. Returns TF_OK and sets *instance, or a negative
     * status after logging why. */
    int (*init)(const struct tf_host *host, struct tf_instance *self,
                const struct tf_options *options, void **instance);
    /* Frees the instance and everything it owns. Called once, after the last callback. */
    void (*destroy)(void *instance);

    /* Exactly one of these, matching `kind`. Each returns TF_OK or a negative tf_status.
     * source: append new records to `out` (the batch owns them).
     * transform: read `batch`, append and/or drop records in place.
     * sink: consume `batch` (read only). */
    int (*collect)(void *instance, const tf_tick *tick, struct tf_batch *out);
    int (*process)(void *instance, const tf_tick *tick, struct tf_batch *batch);
    int (*write)(void *instance, const tf_tick *tick, const struct tf_batch *batch);

    void *reserved[8]; /* for minor versions: new optional callbacks; keep NULL */
} tf_plugin_descriptor;

#define TF_PLUGIN_HEADER                                                                           \
    .struct_size = sizeof(tf_plugin_descriptor), .abi_major = TF_ABI_MAJOR,                        \
    .abi_minor = TF_ABI_MINOR

#if defined(__GNUC__)
#define TF_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TF_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
}
#endif
#endif
