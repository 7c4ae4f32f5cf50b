/*
 * The process-wide metrics registry (Prometheus data model) and its text exposition (format
 * 0.0.4). Families are created once and live until tf_metrics_shutdown; series (one per set
 * of label values) are created on first use. Thread-safe.
 */
#ifndef TF_METRICS_H
#define TF_METRICS_H

#include <stddef.h>

#include "tf_common.h"

typedef struct tf_metric tf_metric;

/* Creates the family `name` or returns the existing one when its type, label names and
 * buckets match; NULL (and an error log) on a mismatch or an invalid name. `label_names` is
 * NULL-terminated (or NULL); `buckets` are upper bounds in ascending order (NULL: the default
 * latency buckets 5 ms .. 10 s). The names and help text are copied. */
tf_metric *tf_metrics_register(tf_metric_type type, const char *name, const char *help,
                               const char *const *label_names, const double *buckets,
                               size_t n_buckets);
/* `label_values` has one entry per label name. Counter: add v >= 0. Gauge: add any v. */
void tf_metric_add(tf_metric *m, const char *const *label_values, double v);
void tf_metric_set(tf_metric *m, const char *const *label_values, double v);     /* gauge */
void tf_metric_observe(tf_metric *m, const char *const *label_values, double v); /* histogram */
/* Stops exporting the series until it is updated again (a state that no longer applies, e.g.
 * tickflow_redis_up of an idle connection). Does nothing when it does not exist. */
void tf_metric_remove(tf_metric *m, const char *const *label_values);
/* Current value of a counter or gauge series (0 if it does not exist or was removed); for tests
 * and status. */
double tf_metric_value(tf_metric *m, const char *const *label_values);

/* Number of label names the family was registered with. */
size_t tf_metric_label_count(const tf_metric *m);

/* Text exposition of every family; malloc'd, caller frees. */
char *tf_metrics_render(size_t *len);
/* Frees every family. Only at exit: outstanding tf_metric pointers become invalid. */
void tf_metrics_shutdown(void);

#endif
