/*
 * `stdout` sink: one JSON object per line per record, its fields at the top level, flushed
 * after every tick so a reader (or a test) sees each tick as soon as it is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tickflow/tickflow.h>

typedef struct stdout_sink {
    const tf_host *host; /* borrowed */
    tf_instance *self;   /* borrowed */
    const json_t *kinds; /* borrowed: array of kinds to print; empty = all */
    bool meta;
} stdout_sink;

static const tf_option_def options[] = {
    {"kinds", TF_OPT_LIST, "[]", 0, "Only print records of these kinds (empty: all)", TF_OPT_STRING,
     NULL},
    {"meta", TF_OPT_BOOL, "false", 0,
     "Add _pipeline, _tick and _fence (the lease's fencing token) to every line", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static int stdout_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                       void **instance)
{
    stdout_sink *s = calloc(1, sizeof *s);
    if (!s)
        return TF_ENOMEM;
    s->host = host;
    s->self = self;
    s->kinds = host->opt_json(opts, "kinds");
    s->meta = host->opt_bool(opts, "meta");
    *instance = s;
    return TF_OK;
}

static void stdout_destroy(void *instance)
{
    free(instance);
}

static bool wanted(const stdout_sink *s, const char *kind)
{
    if (!s->kinds || json_array_size(s->kinds) == 0)
        return true;
    size_t i;
    const json_t *k;
    json_array_foreach(s->kinds, i, k)
    {
        if (json_is_string(k) && strcmp(json_string_value(k), kind) == 0)
            return true;
    }
    return false;
}

static int stdout_write(void *instance, const tf_tick *tick, const tf_batch *batch)
{
    stdout_sink *s = instance;
    const tf_host *h = s->host;
    int rc = TF_OK;
    /* One lock for the whole tick: pipelines share stdout, and a tick's lines stay together. */
    flockfile(stdout);
    for (size_t i = 0; i < h->batch_count(batch); i++) {
        const tf_record *r = h->batch_at(batch, i);
        if (!wanted(s, h->record_kind(r)))
            continue;
        json_t *obj = h->record_to_json(r);
        if (!obj) {
            rc = TF_ENOMEM;
            break;
        }
        if (s->meta) {
            json_object_set_new(obj, "_pipeline", json_string(tick->pipeline));
            json_object_set_new(obj, "_tick", json_integer((json_int_t)tick->seq));
            json_object_set_new(obj, "_fence", json_integer((json_int_t)tick->fence));
        }
        char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(obj);
        if (!line) {
            rc = TF_ENOMEM;
            break;
        }
        fputs(line, stdout);
        fputc('\n', stdout);
        free(line);
    }
    if (fflush(stdout) != 0)
        rc = TF_ERR;
    funlockfile(stdout);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "stdout",
    .kind = TF_KIND_SINK,
    .description = "Prints every record as one JSON object per line on standard output",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = stdout_init,
    .destroy = stdout_destroy,
    .write = stdout_write,
};
