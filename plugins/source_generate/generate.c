/*
 * `generate` source: synthetic records for trying pipelines before market plugins exist, and
 * for tests. With no options it emits one record per tick: {kind: "generated", seq, index, ts}.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tickflow/tickflow.h>

typedef struct generate {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    const char *kind;    /* borrowed from options */
    int64_t count;
    const json_t *fields; /* borrowed: constant fields copied into every record */
    const char *walk_field;
    double value; /* current random-walk value */
    double step_pct;
    int64_t delay_ms; /* simulated slow source */
    uint64_t rng;     /* xorshift64 state; deterministic per seed */
} generate;

static const tf_option_def options[] = {
    {"kind", TF_OPT_STRING, "generated", 0, "Record kind of the generated records", 0, NULL},
    {"count", TF_OPT_INT, "1", 0, "Records per tick (1 to 100000)", 0, NULL},
    {"fields", TF_OPT_MAP, NULL, 0,
     "Constant fields added to every record (strings, numbers, booleans)", 0, NULL},
    {"walk_field", TF_OPT_STRING, NULL, 0,
     "Name of a double field that follows a seeded random walk (e.g. price)", 0, NULL},
    {"start", TF_OPT_DOUBLE, "100", 0, "Starting value of the random walk", 0, NULL},
    {"step_pct", TF_OPT_DOUBLE, "0.1", 0, "Largest step of the random walk, in percent", 0, NULL},
    {"seed", TF_OPT_INT, "1", 0, "Seed of the random walk (same seed, same sequence)", 0, NULL},
    {"delay", TF_OPT_DURATION, "0ms", 0,
     "Time each collect takes (simulates a slow source, e.g. an HTTP timeout)", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static int generate_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                         void **instance)
{
    int64_t count = host->opt_int(opts, "count");
    double start = host->opt_double(opts, "start");
    double step = host->opt_double(opts, "step_pct");
    if (count < 1 || count > 100000) {
        host->log(self, TF_LOG_ERROR, "count must be between 1 and 100000, found %lld",
                  (long long)count);
        return TF_EINVAL;
    }
    if (start <= 0 || step < 0 || step >= 50) {
        host->log(self, TF_LOG_ERROR,
                  "start must be > 0 and step_pct in [0, 50), found start %g, step_pct %g", start,
                  step);
        return TF_EINVAL;
    }
    generate *g = calloc(1, sizeof *g);
    if (!g)
        return TF_ENOMEM;
    g->host = host;
    g->self = self;
    g->kind = host->opt_string(opts, "kind");
    g->count = count;
    g->fields = host->opt_json(opts, "fields");
    g->walk_field = host->opt_string(opts, "walk_field");
    g->value = start;
    g->step_pct = step;
    g->delay_ms = host->opt_duration_ms(opts, "delay");
    g->rng = (uint64_t)host->opt_int(opts, "seed") * 2654435761u + 0x9E3779B97F4A7C15ull;
    *instance = g;
    return TF_OK;
}

static void generate_destroy(void *instance)
{
    free(instance);
}

static double next_unit(generate *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (double)(g->rng >> 11) / (double)(1ull << 53); /* [0, 1) */
}

static int set_constant(generate *g, tf_record *r, const char *name, const json_t *v)
{
    const tf_host *h = g->host;
    if (json_is_string(v))
        return h->record_set_string(r, name, json_string_value(v));
    if (json_is_integer(v))
        return h->record_set_int(r, name, json_integer_value(v));
    if (json_is_real(v))
        return h->record_set_double(r, name, json_real_value(v));
    if (json_is_boolean(v))
        return h->record_set_bool(r, name, json_is_true(v));
    return TF_OK; /* nested values are not record fields; the option table says scalars */
}

static int generate_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    generate *g = instance;
    const tf_host *h = g->host;
    if (g->delay_ms > 0) {
        struct timespec ts = {(time_t)(g->delay_ms / 1000), (long)(g->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    int64_t now = h->now_ms();
    for (int64_t i = 0; i < g->count; i++) {
        tf_record *r = h->record_new(out, g->kind);
        if (!r)
            return TF_ENOMEM;
        int rc = h->record_set_int(r, "seq", (int64_t)tick->seq);
        rc = rc ? rc : h->record_set_int(r, "index", i);
        rc = rc ? rc : h->record_set_ts(r, "ts", now);
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)g->fields, key, value)
        {
            if (!rc)
                rc = set_constant(g, r, key, value);
        }
        if (!rc && g->walk_field) {
            g->value *= 1.0 + (next_unit(g) * 2.0 - 1.0) * g->step_pct / 100.0;
            rc = h->record_set_double(r, g->walk_field, g->value);
        }
        if (rc)
            return rc;
    }
    return TF_OK;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "generate",
    .kind = TF_KIND_SOURCE,
    .description = "Synthetic records (one per tick by default) for trying pipelines and tests",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = generate_init,
    .destroy = generate_destroy,
    .collect = generate_collect,
};
