/*
 * The metrics registry: families kept sorted by name (stable exposition), each with its own
 * lock and an open-addressing hash of series keyed by label values, so the per-tick updates
 * cost one hash and one short critical section. Renders the Prometheus text format 0.0.4.
 */
#include "tf_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_log.h"

#define COMPONENT "metrics"
/* A guard against unbounded label cardinality (a label fed from input): past this many series
 * a family drops new series and says so once. */
#define TF_METRICS_MAX_SERIES 10000

static const double g_default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

typedef struct series {
    uint64_t hash;
    char **values;      /* one per label name, owned */
    double value;       /* counter, gauge */
    uint64_t *buckets;  /* histogram: per-bucket (not cumulative) counts, n_buckets */
    uint64_t inf_count; /* histogram: observations above the last bound */
    double sum;
    uint64_t count;
    bool removed; /* not exported until its next update (tf_metric_remove) */
} series;

struct tf_metric {
    tf_metric_type type;
    char *name;
    char *help;
    char **label_names;
    size_t n_labels;
    double *bounds;
    size_t n_bounds;
    pthread_mutex_t lock; /* guards the series table and every series' values */
    series **slots;       /* open addressing, linear probing; capacity a power of two */
    size_t cap;
    size_t n_series;
    bool overflow_logged;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static tf_metric **g_families; /* sorted by name */
static size_t g_n_families;

/* --- a small string builder ---------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

/* --- validation ---------------------------------------------------------------------------- */

static bool name_char(char c, bool first, bool colon_ok)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon_ok && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*. */
static bool valid_name(const char *s, bool colon_ok)
{
    if (!s || !s[0])
        return false;
    for (size_t i = 0; s[i]; i++)
        if (!name_char(s[i], i == 0, colon_ok))
            return false;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *type_name(tf_metric_type type)
{
    switch (type) {
    case TF_METRIC_COUNTER:
        return "counter";
    case TF_METRIC_GAUGE:
        return "gauge";
    case TF_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "unknown";
}

static size_t count_labels(const char *const *label_names)
{
    size_t n = 0;
    while (label_names && label_names[n])
        n++;
    return n;
}

static int check_labels(tf_metric_type type, const char *name, const char *const *label_names)
{
    for (size_t i = 0; label_names && label_names[i]; i++) {
        const char *l = label_names[i];
        if (!valid_name(l, false) || strncmp(l, "__", 2) == 0) {
            TF_ERROR(COMPONENT,
                     "metric %s: label name \"%s\" is invalid; expected [a-zA-Z_][a-zA-Z0-9_]* "
                     "not starting with __",
                     name, l);
            return -1;
        }
        if (type == TF_METRIC_HISTOGRAM && strcmp(l, "le") == 0) {
            TF_ERROR(COMPONENT, "metric %s: a histogram cannot have a label named \"le\"", name);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(label_names[j], l) == 0) {
                TF_ERROR(COMPONENT, "metric %s: label name \"%s\" appears twice", name, l);
                return -1;
            }
        }
    }
    return 0;
}

/* Resolves the bucket bounds to use: default when none given; a trailing +Inf is implicit. */
static int check_buckets(const char *name, const double **bounds, size_t *n)
{
    if (!*bounds || *n == 0) {
        *bounds = g_default_buckets;
        *n = TF_ARRAY_LEN(g_default_buckets);
        return 0;
    }
    if (isinf((*bounds)[*n - 1]) && (*bounds)[*n - 1] > 0)
        (*n)--;
    for (size_t i = 0; i < *n; i++) {
        double b = (*bounds)[i];
        if (!isfinite(b) || (i > 0 && !(b > (*bounds)[i - 1]))) {
            TF_ERROR(COMPONENT,
                     "metric %s: bucket %zu (%g) is invalid; expected finite bounds in strictly "
                     "ascending order",
                     name, i, b);
            return -1;
        }
    }
    return 0;
}

static int check_new(tf_metric_type type, const char *name, const char *const *label_names)
{
    if (type != TF_METRIC_COUNTER && type != TF_METRIC_GAUGE && type != TF_METRIC_HISTOGRAM) {
        TF_ERROR(COMPONENT, "metric %s: unknown type %d", name ? name : "(null)", (int)type);
        return -1;
    }
    if (!valid_name(name, true)) {
        TF_ERROR(COMPONENT, "metric name \"%s\" is invalid; expected [a-zA-Z_:][a-zA-Z0-9_:]*",
                 name ? name : "(null)");
        return -1;
    }
    if (type == TF_METRIC_COUNTER && !ends_with(name, "_total")) {
        TF_ERROR(COMPONENT, "counter %s: expected a name ending in _total", name);
        return -1;
    }
    return check_labels(type, name, label_names);
}

/* --- families ------------------------------------------------------------------------------ */

static void series_free(series *s, size_t n_labels)
{
    if (!s)
        return;
    for (size_t i = 0; s->values && i < n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void family_free(tf_metric *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        series_free(m->slots[i], m->n_labels);
    free(m->slots);
    for (size_t i = 0; m->label_names && i < m->n_labels; i++)
        free(m->label_names[i]);
    free(m->label_names);
    free(m->bounds);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static tf_metric *family_new(tf_metric_type type, const char *name, const char *help,
                             const char *const *label_names, const double *bounds, size_t n_bounds)
{
    tf_metric *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->n_labels = count_labels(label_names);
    m->label_names = calloc(m->n_labels + 1, sizeof *m->label_names);
    if (!m->name || !m->help || !m->label_names)
        goto fail;
    for (size_t i = 0; i < m->n_labels; i++) {
        m->label_names[i] = strdup(label_names[i]);
        if (!m->label_names[i])
            goto fail;
    }
    if (type == TF_METRIC_HISTOGRAM) {
        m->n_bounds = n_bounds;
        m->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof *m->bounds);
        if (!m->bounds)
            goto fail;
        if (n_bounds)
            memcpy(m->bounds, bounds, n_bounds * sizeof *bounds);
    }
    return m;
fail:
    family_free(m);
    return NULL;
}

static bool same_shape(const tf_metric *m, tf_metric_type type, const char *const *label_names,
                       const double *bounds, size_t n_bounds)
{
    if (m->type != type || m->n_labels != count_labels(label_names))
        return false;
    for (size_t i = 0; i < m->n_labels; i++)
        if (strcmp(m->label_names[i], label_names[i]) != 0)
            return false;
    if (type != TF_METRIC_HISTOGRAM)
        return true;
    if (m->n_bounds != n_bounds)
        return false;
    for (size_t i = 0; i < n_bounds; i++)
        if (m->bounds[i] != bounds[i])
            return false;
    return true;
}

static void describe_labels(char *buf, size_t size, const char *const *names, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? "," : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void log_mismatch(const tf_metric *m, tf_metric_type type, const char *const *label_names)
{
    char have[256];
    char want[256];
    describe_labels(have, sizeof have, (const char *const *)m->label_names, m->n_labels);
    describe_labels(want, sizeof want, label_names, count_labels(label_names));
    TF_ERROR(COMPONENT,
             "metric %s is registered as %s{%s}%s; a second registration asked for %s{%s} "
             "(the type, label names and buckets must match)",
             m->name, type_name(m->type), have,
             m->type == TF_METRIC_HISTOGRAM ? " with its buckets" : "", type_name(type), want);
}

/* Index where `name` is or would be inserted. Caller holds g_lock. */
static size_t family_index(const char *name, bool *found)
{
    size_t lo = 0;
    size_t hi = g_n_families;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g_families[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int family_insert(tf_metric *m, size_t at)
{
    tf_metric **grown = realloc(g_families, (g_n_families + 1) * sizeof *grown);
    if (!grown)
        return -1;
    g_families = grown;
    memmove(&g_families[at + 1], &g_families[at], (g_n_families - at) * sizeof *g_families);
    g_families[at] = m;
    g_n_families++;
    return 0;
}

static series *series_get(tf_metric *m, const char *const *label_values, bool create);

tf_metric *tf_metrics_register(tf_metric_type type, const char *name, const char *help,
                               const char *const *label_names, const double *buckets,
                               size_t n_buckets)
{
    if (check_new(type, name, label_names) != 0)
        return NULL;
    const double *bounds = buckets;
    size_t n_bounds = n_buckets;
    if (type == TF_METRIC_HISTOGRAM && check_buckets(name, &bounds, &n_bounds) != 0)
        return NULL;
    tf_metric *result = NULL;
    pthread_mutex_lock(&g_lock);
    bool found;
    size_t at = family_index(name, &found);
    if (found) {
        tf_metric *m = g_families[at];
        if (same_shape(m, type, label_names, bounds, n_bounds))
            result = m;
        else
            log_mismatch(m, type, label_names);
        goto out;
    }
    tf_metric *m = family_new(type, name, help, label_names, bounds, n_bounds);
    if (!m || family_insert(m, at) != 0) {
        family_free(m);
        TF_ERROR(COMPONENT, "metric %s: out of memory", name);
        goto out;
    }
    /* A family without labels has exactly one series: expose it (at 0) from the start. */
    if (m->n_labels == 0) {
        pthread_mutex_lock(&m->lock);
        series_get(m, NULL, true);
        pthread_mutex_unlock(&m->lock);
    }
    result = m;
out:
    pthread_mutex_unlock(&g_lock);
    return result;
}

/* --- series -------------------------------------------------------------------------------- */

static const char *label_value(const char *const *values, size_t i)
{
    return values && values[i] ? values[i] : "";
}

/* FNV-1a over the values, each followed by a separator byte so ("ab","c") != ("a","bc"). */
static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)label_value(values, i); *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        h ^= 0xff;
        h *= 1099511628211ULL;
    }
    return h;
}

static bool series_matches(const series *s, uint64_t h, const char *const *values, size_t n)
{
    if (s->hash != h)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], label_value(values, i)) != 0)
            return false;
    return true;
}

/* Caller holds m->lock. */
static int table_grow(tf_metric *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    series **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        series *s = m->slots[i];
        if (!s)
            continue;
        size_t j = (size_t)s->hash & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static series *series_new(const tf_metric *m, uint64_t h, const char *const *values)
{
    series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hash = h;
    s->values = calloc(m->n_labels ? m->n_labels : 1, sizeof *s->values);
    if (!s->values)
        goto fail;
    for (size_t i = 0; i < m->n_labels; i++) {
        s->values[i] = strdup(label_value(values, i));
        if (!s->values[i])
            goto fail;
    }
    if (m->type == TF_METRIC_HISTOGRAM) {
        s->buckets = calloc(m->n_bounds ? m->n_bounds : 1, sizeof *s->buckets);
        if (!s->buckets)
            goto fail;
    }
    return s;
fail:
    series_free(s, m->n_labels);
    return NULL;
}

/* Finds (or, with `create`, adds) the series for `label_values`. Caller holds m->lock. */
static series *series_get(tf_metric *m, const char *const *label_values, bool create)
{
    uint64_t h = hash_values(label_values, m->n_labels);
    if (m->cap) {
        size_t j = (size_t)h & (m->cap - 1);
        while (m->slots[j]) {
            if (series_matches(m->slots[j], h, label_values, m->n_labels))
                return m->slots[j];
            j = (j + 1) & (m->cap - 1);
        }
    }
    if (!create)
        return NULL;
    if (m->n_series >= TF_METRICS_MAX_SERIES) {
        if (!m->overflow_logged)
            TF_ERROR(COMPONENT, "metric %s: more than %d series; new label values are dropped",
                     m->name, TF_METRICS_MAX_SERIES);
        m->overflow_logged = true;
        return NULL;
    }
    /* Keep the load factor under 3/4 so probes stay short. */
    if ((m->n_series + 1) * 4 > m->cap * 3 && table_grow(m) != 0)
        return NULL;
    series *s = series_new(m, h, label_values);
    if (!s)
        return NULL;
    size_t j = (size_t)h & (m->cap - 1);
    while (m->slots[j])
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = s;
    m->n_series++;
    return s;
}

void tf_metric_add(tf_metric *m, const char *const *label_values, double v)
{
    if (!m || m->type == TF_METRIC_HISTOGRAM)
        return;
    /* A counter only goes up; a negative or NaN increment would break rate(). */
    if (m->type == TF_METRIC_COUNTER && !(v >= 0))
        return;
    pthread_mutex_lock(&m->lock);
    series *s = series_get(m, label_values, true);
    if (s) {
        s->value += v;
        s->removed = false;
    }
    pthread_mutex_unlock(&m->lock);
}

void tf_metric_set(tf_metric *m, const char *const *label_values, double v)
{
    if (!m || m->type != TF_METRIC_GAUGE)
        return;
    pthread_mutex_lock(&m->lock);
    series *s = series_get(m, label_values, true);
    if (s) {
        s->value = v;
        s->removed = false;
    }
    pthread_mutex_unlock(&m->lock);
}

/* The series keeps its slot: label sets are bounded, and open addressing would need its probe
 * chains repaired on a real delete. */
void tf_metric_remove(tf_metric *m, const char *const *label_values)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    series *s = series_get(m, label_values, false);
    if (s)
        s->removed = true;
    pthread_mutex_unlock(&m->lock);
}

void tf_metric_observe(tf_metric *m, const char *const *label_values, double v)
{
    if (!m || m->type != TF_METRIC_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&m->lock);
    series *s = series_get(m, label_values, true);
    if (!s)
        goto out;
    size_t i = 0;
    while (i < m->n_bounds && v > m->bounds[i])
        i++;
    if (i < m->n_bounds)
        s->buckets[i]++;
    else
        s->inf_count++;
    s->sum += v;
    s->count++;
    s->removed = false;
out:
    pthread_mutex_unlock(&m->lock);
}

/* For a histogram, the observation count. */
double tf_metric_value(tf_metric *m, const char *const *label_values)
{
    if (!m)
        return 0;
    double v = 0;
    pthread_mutex_lock(&m->lock);
    const series *s = series_get(m, label_values, false);
    if (s && !s->removed)
        v = m->type == TF_METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* --- exposition ---------------------------------------------------------------------------- */

/* Integers print without an exponent; others print in the shortest form that reads back as
 * the same double (at most %.17g), which Prometheus' parser accepts. */
static void format_double(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == trunc(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v == 0 ? 0.0 : v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void add_double(sbuf *b, double v)
{
    char num[40];
    format_double(v, num, sizeof num);
    sb_add(b, num);
}

static void add_u64(sbuf *b, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    sb_add(b, num);
}

/* HELP escapes \ and newline; label values also escape ". */
static void add_escaped(sbuf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_add(b, "\\\\");
        else if (*s == '\n')
            sb_add(b, "\\n");
        else if (quote && *s == '"')
            sb_add(b, "\\\"");
        else
            sb_addn(b, s, 1);
    }
}

/* `{a="x",b="y"` + optional le + `}`; nothing when there are no labels at all. */
static void add_labels(sbuf *b, const tf_metric *m, const series *s, const char *le)
{
    if (m->n_labels == 0 && !le)
        return;
    sb_add(b, "{");
    for (size_t i = 0; i < m->n_labels; i++) {
        if (i)
            sb_add(b, ",");
        sb_add(b, m->label_names[i]);
        sb_add(b, "=\"");
        add_escaped(b, s->values[i], true);
        sb_add(b, "\"");
    }
    if (le) {
        sb_add(b, m->n_labels ? ",le=\"" : "le=\"");
        sb_add(b, le);
        sb_add(b, "\"");
    }
    sb_add(b, "}");
}

static void render_histogram(sbuf *b, const tf_metric *m, const series *s)
{
    uint64_t cumulative = 0;
    char le[40];
    for (size_t i = 0; i < m->n_bounds; i++) {
        cumulative += s->buckets[i];
        format_double(m->bounds[i], le, sizeof le);
        sb_add(b, m->name);
        sb_add(b, "_bucket");
        add_labels(b, m, s, le);
        sb_add(b, " ");
        add_u64(b, cumulative);
        sb_add(b, "\n");
    }
    sb_add(b, m->name);
    sb_add(b, "_bucket");
    add_labels(b, m, s, "+Inf");
    sb_add(b, " ");
    add_u64(b, s->count);
    sb_add(b, "\n");
    sb_add(b, m->name);
    sb_add(b, "_sum");
    add_labels(b, m, s, NULL);
    sb_add(b, " ");
    add_double(b, s->sum);
    sb_add(b, "\n");
    sb_add(b, m->name);
    sb_add(b, "_count");
    add_labels(b, m, s, NULL);
    sb_add(b, " ");
    add_u64(b, s->count);
    sb_add(b, "\n");
}

static size_t g_sort_labels; /* label count for series_cmp; set under g_lock */

static int series_cmp(const void *a, const void *b)
{
    const series *x = *(const series *const *)a;
    const series *y = *(const series *const *)b;
    for (size_t i = 0; i < g_sort_labels; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Caller holds g_lock (which also serializes use of g_sort_labels) and m->lock. */
static int render_family(sbuf *b, const tf_metric *m)
{
    series **list = malloc((m->n_series ? m->n_series : 1) * sizeof *list);
    if (!list)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i] && !m->slots[i]->removed)
            list[n++] = m->slots[i];
    g_sort_labels = m->n_labels;
    qsort(list, n, sizeof *list, series_cmp);
    sb_add(b, "# HELP ");
    sb_add(b, m->name);
    sb_add(b, " ");
    add_escaped(b, m->help, false);
    sb_add(b, "\n# TYPE ");
    sb_add(b, m->name);
    sb_add(b, " ");
    sb_add(b, type_name(m->type));
    sb_add(b, "\n");
    for (size_t i = 0; i < n; i++) {
        if (m->type == TF_METRIC_HISTOGRAM) {
            render_histogram(b, m, list[i]);
            continue;
        }
        sb_add(b, m->name);
        add_labels(b, m, list[i], NULL);
        sb_add(b, " ");
        add_double(b, list[i]->value);
        sb_add(b, "\n");
    }
    free(list);
    return 0;
}

char *tf_metrics_render(size_t *len)
{
    sbuf b = {0};
    sb_add(&b, "");
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n_families && !b.oom; i++) {
        tf_metric *m = g_families[i];
        pthread_mutex_lock(&m->lock);
        int rc = render_family(&b, m);
        pthread_mutex_unlock(&m->lock);
        if (rc != 0)
            b.oom = true;
    }
    pthread_mutex_unlock(&g_lock);
    if (b.oom) {
        free(b.p);
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

void tf_metrics_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n_families; i++)
        family_free(g_families[i]);
    free(g_families);
    g_families = NULL;
    g_n_families = 0;
    pthread_mutex_unlock(&g_lock);
}

size_t tf_metric_label_count(const tf_metric *m)
{
    return m ? m->n_labels : 0;
}
