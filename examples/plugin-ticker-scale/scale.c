/*
 * `scale` transform, the out-of-tree example plugin: multiplies chosen double fields of chosen
 * record kinds by a factor (a price in thousands of KRW, cents to dollars, a sign flip). It is
 * built against the installed SDK only (see Makefile and ../README.md).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tickflow/tickflow.h>

typedef struct scale {
    const tf_host *host;  /* borrowed: outlives the instance */
    tf_instance *self;    /* borrowed: the host's handle, for logs and errors */
    const json_t *fields; /* borrowed from the options: array of field names */
    const json_t *kinds;  /* borrowed from the options: array of kinds; empty = every kind */
    double factor;
} scale;

/* The one declaration of the options: the host validates YAML against it (with line:column),
 * fills in defaults, and `tickflow plugins describe scale` prints it. */
static const tf_option_def options[] = {
    {"fields", TF_OPT_LIST, NULL, 1,
     "Double fields to multiply; a record without one of them keeps its other fields",
     TF_OPT_STRING, NULL},
    {"factor", TF_OPT_DOUBLE, "1", 0, "Multiplier applied to every listed field", 0, NULL},
    {"kinds", TF_OPT_LIST, "[]", 0, "Only scale records of these kinds (empty: all)", TF_OPT_STRING,
     NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static int check_fields(const tf_host *host, tf_instance *self, const json_t *fields)
{
    /* `required` rejects a missing option; an explicit empty list still passes the host. */
    if (json_array_size(fields) == 0) {
        host->log(self, TF_LOG_ERROR,
                  "option 'fields': expected at least one field name, found an empty list");
        return TF_EINVAL;
    }
    size_t i;
    const json_t *name;
    json_array_foreach(fields, i, name)
    {
        if (json_string_length(name) == 0) {
            host->log(self, TF_LOG_ERROR,
                      "option 'fields[%zu]': expected a field name, found an empty string", i);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int scale_init(const tf_host *host, tf_instance *self, const tf_options *opts,
                      void **instance)
{
    const json_t *fields = host->opt_json(opts, "fields");
    double factor = host->opt_double(opts, "factor");
    int rc = check_fields(host, self, fields);
    if (rc != TF_OK)
        return rc;
    if (!isfinite(factor)) {
        host->log(self, TF_LOG_ERROR, "option 'factor': expected a finite number, found %g",
                  factor);
        return TF_EINVAL;
    }
    scale *s = calloc(1, sizeof *s);
    if (!s)
        return TF_ENOMEM;
    s->host = host;
    s->self = self;
    s->fields = fields;
    s->kinds = host->opt_json(opts, "kinds");
    s->factor = factor;
    *instance = s;
    return TF_OK;
}

static void scale_destroy(void *instance)
{
    free(instance);
}

static bool wanted(const scale *s, const char *kind)
{
    if (json_array_size(s->kinds) == 0)
        return true;
    size_t i;
    const json_t *k;
    json_array_foreach(s->kinds, i, k)
    {
        if (strcmp(json_string_value(k), kind) == 0)
            return true;
    }
    return false;
}

static const char *type_name(tf_field_type type)
{
    switch (type) {
    case TF_FIELD_STRING:
        return "a string";
    case TF_FIELD_INT:
        return "an int";
    case TF_FIELD_BOOL:
        return "a bool";
    case TF_FIELD_TS:
        return "a timestamp";
    default:
        return "another type";
    }
}

/* Counts one per-record error (tickflow_plugin_errors_total) without failing the tick.
 * report_error is part of ABI 1.0, so every host that loads this plugin has it: the check is
 * the pattern for a host function appended in a later minor version. */
static void report(const scale *s, tf_status status, const char *fmt, ...) TF_PRINTF(3, 4);

static void report(const scale *s, tf_status status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); /* a truncated message is still worth logging */
    va_end(ap);
    if (TF_HOST_HAS(s->host, report_error))
        s->host->report_error(s->self, status, "%s", msg);
    else
        s->host->log(s->self, TF_LOG_WARN, "%s", msg);
}

/* Scales one field in place. A problem that concerns this record alone (wrong type, overflow)
 * is reported and leaves the field as it was; only the host's own failure (TF_ENOMEM) fails
 * the tick. */
static int scale_field(const scale *s, tf_record *r, const char *name)
{
    const tf_host *h = s->host;
    tf_field_type type = h->record_field_type(r, name);
    if (type == TF_FIELD_NONE)
        return TF_OK; /* records of one kind may omit optional fields */
    if (type != TF_FIELD_DOUBLE) {
        report(s, TF_EVALUE, "field '%s' of a '%s' record: expected a double, found %s", name,
               h->record_kind(r), type_name(type));
        return TF_OK;
    }
    double value = 0;
    if (h->record_get_double(r, name, &value) != TF_OK)
        return TF_OK; /* not after the type check above; nothing to scale */
    int rc = h->record_set_double(r, name, value * s->factor);
    if (rc == TF_EVALUE) {
        report(s, TF_EVALUE, "field '%s' of a '%s' record: %g x %g overflows a double", name,
               h->record_kind(r), value, s->factor);
        return TF_OK;
    }
    return rc;
}

static int scale_process(void *instance, const tf_tick *tick, tf_batch *batch)
{
    (void)tick; /* the factor does not depend on the tick */
    const scale *s = instance;
    const tf_host *h = s->host;
    for (size_t i = 0; i < h->batch_count(batch); i++) {
        tf_record *r = h->batch_at(batch, i);
        if (!wanted(s, h->record_kind(r)))
            continue;
        size_t j;
        const json_t *name;
        json_array_foreach(s->fields, j, name)
        {
            int rc = scale_field(s, r, json_string_value(name));
            if (rc != TF_OK)
                return rc;
        }
    }
    return TF_OK;
}

/* The plugin's only exported symbol; every other name in this file is static. */
TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "scale",
    .kind = TF_KIND_TRANSFORM,
    .description = "Multiplies chosen double fields of chosen record kinds by a factor",
    .version = "1.0.0",
    .options = options,
    .init = scale_init,
    .destroy = scale_destroy,
    .process = scale_process,
};
