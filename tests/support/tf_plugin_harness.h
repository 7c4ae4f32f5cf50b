/*
 * Drives one plugin instance in the test process, exactly as the runtime would: the plugin is
 * loaded from the build's plugin directory, its `with:` options are validated from YAML by the
 * real configuration loader, and it gets the real host table (HTTP client included).
 */
#ifndef TF_PLUGIN_HARNESS_H
#define TF_PLUGIN_HARNESS_H

#include <stdbool.h>

#include <jansson.h>

#include "tf_common.h"

typedef struct tfh tfh;

/* kind: "source" | "transform" | "sink". `with` is a YAML flow mapping such as
 * "{base_url: 'http://127.0.0.1:1234', symbols: [BTC]}" (or NULL for none). `runtime` is
 * extra top-level YAML (e.g. "http: {hosts: {...}}\n") or NULL. NULL on failure; the reason
 * (every diagnostic, or the init failure) is printed to stderr. */
tfh *tfh_open(const char *kind, const char *plugin, const char *with, const char *runtime);
/* Like tfh_open but expects validation to FAIL: returns true when it did, and copies the
 * diagnostics (one per line) into msg. */
bool tfh_rejects(const char *kind, const char *plugin, const char *with, char *msg,
                 size_t msg_size);
void tfh_close(tfh *h);

/* One tick (seq increments each call). collect appends the source's records to `out`.
 * Return the plugin's status. */
int tfh_collect(tfh *h, tf_batch *out);
int tfh_process(tfh *h, tf_batch *batch);
int tfh_write(tfh *h, const tf_batch *batch);

/* Later ticks carry this fencing token and fence key (as a leased pipeline's would);
 * fence_key is copied. 0 / NULL: no lease. */
void tfh_set_fence(tfh *h, uint64_t fence, const char *fence_key);

/* Runs one collect into a fresh batch and discards it; *count = records it emitted. */
int tfh_collect_count(tfh *h, size_t *count);
/* tickflow_plugin_errors_total{pipeline, plugin, class} so far (0 when none, -1 if the family
 * cannot be read). The harness's pipeline is "harness". */
double tfh_errors(const char *pipeline, const char *plugin, const char *cls);

struct tft_fake;
/* One live fault on the fake exchange: sets `mode` on `endpoint` for one request, runs one
 * tick of `h` and asserts it fails with `want`, emits nothing and counts one error of that
 * class for `plugin`; then waits (5 s at most, past a 1 s Retry-After) until a tick succeeds
 * again with `records_after` records. */
void tfh_check_live_fault(tfh *h, struct tft_fake *fake, const char *plugin, const char *endpoint,
                          const char *mode, int want, size_t records_after);

/* Sets the pipeline-wide symbol interest as another stage (the positions transform) would:
 * the plugin's next collect also fetches these symbols. n = 0 clears it. */
void tfh_set_interest(tfh *h, const char *const *symbols, size_t n);
/* The pipeline-wide symbol interest as the harness's sources would see it (new reference). */
json_t *tfh_interest(tfh *h);

/* The host table and the instance, for plugins' own assertions. */
const tf_host *tfh_host(void);

/* Record helpers for assertions: the first record of `kind` whose string field `key` equals
 * `value` (NULL key: the first of that kind). */
tf_record *tfh_find(const tf_batch *b, const char *kind, const char *key, const char *value);
double tfh_double(const tf_record *r, const char *field); /* NAN when absent */
int64_t tfh_int(const tf_record *r, const char *field);   /* INT64_MIN when absent */
const char *tfh_string(const tf_record *r, const char *field);
#endif
