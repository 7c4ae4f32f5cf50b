/*
 * Validated plugin options. A tf_options is built from a YAML mapping by checking it against
 * the plugin's option table (types, required keys, unknown keys, defaults), so plugins never
 * see or parse YAML. Values are kept as jansson values: string/secret -> string, int -> integer,
 * double -> real, bool -> true/false, duration -> integer milliseconds, list -> array,
 * map -> object.
 */
#ifndef TF_OPTIONS_H
#define TF_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "tf_common.h"
#include "tf_diag.h"

struct tf_yaml_node;

/* Validates `node` (a YAML mapping, or NULL for "no options given") against `table`. Every
 * problem is added to `diag` with the node's file:line:column and `path` + ".key". Returns
 * NULL when there was any problem. `owner` names the plugin in messages. */
tf_options *tf_options_from_yaml(const tf_option_def *table, const struct tf_yaml_node *node,
                                 const char *path, const char *owner, tf_diag *diag);
/* Options from defaults only (e.g. for the runtime sections that are absent). NULL if a
 * required option has no default (reported in diag with `path`). */
tf_options *tf_options_defaults(const tf_option_def *table, const char *path, tf_diag *diag);
/* Wipes secret values from memory, then frees. NULL is fine. */
void tf_options_destroy(tf_options *o);

const char *tf_options_string(const tf_options *o, const char *name);
int64_t tf_options_int(const tf_options *o, const char *name);
double tf_options_double(const tf_options *o, const char *name);
bool tf_options_bool(const tf_options *o, const char *name);
int64_t tf_options_duration_ms(const tf_options *o, const char *name);
const json_t *tf_options_json(const tf_options *o, const char *name);
bool tf_options_is_set(const tf_options *o, const char *name);
/* True when both hold the same values (secrets included) for the same table and the same
 * options were written in YAML: an instance made from either would behave the same. */
bool tf_options_equal(const tf_options *a, const tf_options *b);
/* Every option as JSON for config dumps; secret values are replaced by "****". New ref. */
json_t *tf_options_dump(const tf_options *o);

/* "1500ms", "2s", "10m", "1h", "1h30m", "250us" is rejected; a bare integer is ms.
 * Returns 0 and *out_ms, or -1 and a reason in err ("expected a duration such as 500ms, 1s,
 * 10m; found \"abc\""). */
int tf_duration_parse(const char *text, int64_t *out_ms, char *err, size_t err_size);

#endif
