/*
 * YAML input: parses a file (or a string) with libyaml's event API into a tree of scalars,
 * sequences and mappings where every node keeps its file, line and column, so validation can
 * point at the exact spot. Also the small readers shared by tf_options and tf_config: null and
 * boolean scalars, "found ..." descriptions, field paths and "did you mean" suggestions.
 */
#ifndef TF_YAML_H
#define TF_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "tf_diag.h"

typedef enum tf_yaml_kind {
    TF_YAML_SCALAR = 1,
    TF_YAML_SEQUENCE = 2,
    TF_YAML_MAPPING = 3
} tf_yaml_kind;

typedef struct tf_yaml_node tf_yaml_node;

typedef struct tf_yaml_pair {
    tf_yaml_node *key; /* always a scalar: other keys are rejected while loading */
    tf_yaml_node *value;
} tf_yaml_pair;

struct tf_yaml_node {
    tf_yaml_kind kind;
    const char *file; /* borrowed from the tf_yaml_doc */
    int line;         /* 1-based */
    int col;          /* 1-based */

    /* Scalars. `text` is the value after ${VAR} interpolation (the same pointer as `raw`
     * until tf_yaml_interpolate replaces it); `raw` is the value as written. Both are owned
     * and wiped on destroy, since either may hold a secret. Collections have both NULL. */
    char *text;
    char *raw;
    bool quoted; /* '...', "...", | or > (or tagged !!str): always a string, never null */
    bool failed; /* interpolation failed and was reported: do not report the value again */

    tf_yaml_node **items; /* sequences, in file order */
    size_t n_items;
    tf_yaml_pair *pairs; /* mappings, in file order, keys unique */
    size_t n_pairs;
};

typedef struct tf_yaml_doc {
    char *file;         /* owned: the path or name given at load */
    tf_yaml_node *root; /* NULL for a file without content (only comments) */
} tf_yaml_doc;

/* Loads one file holding one YAML document. Returns NULL, after adding a diagnostic, when the
 * file cannot be read or is not valid YAML (libyaml's problem at its line:column). Duplicate
 * keys, anchors/aliases, tags and a second document are reported too, but the tree is still
 * returned (first key wins, an alias reads as null) so validation can find more problems. */
tf_yaml_doc *tf_yaml_load_file(const char *path, tf_diag *diag);
/* The same from a string; `name` stands for the file in messages. */
tf_yaml_doc *tf_yaml_parse_string(const char *text, const char *name, tf_diag *diag);
/* Frees the tree after wiping every scalar. NULL is fine. */
void tf_yaml_doc_destroy(tf_yaml_doc *doc);

/* Applies tf_env_interpolate (tf_config.h) to every scalar value (not to mapping keys). Each
 * failure is a diagnostic at the scalar's line:column with its path, and marks it `failed`.
 * Returns the number of failures. */
size_t tf_yaml_interpolate(tf_yaml_doc *doc, tf_diag *diag);

/* The value under `key` in a mapping; NULL when absent or `map` is not a mapping. */
const tf_yaml_node *tf_yaml_get(const tf_yaml_node *map, const char *key);
/* The pair whose key is `key`, for the key's position; NULL when absent. */
const tf_yaml_pair *tf_yaml_get_pair(const tf_yaml_node *map, const char *key);
/* A plain (unquoted) scalar "", "~", "null", "Null" or "NULL". */
bool tf_yaml_is_null(const tf_yaml_node *n);
/* true/false, yes/no, on/off in any case -> 0 and *out; -1 otherwise. */
int tf_yaml_parse_bool(const char *text, bool *out);
/* For "found ..." in messages: `a mapping`, `a list`, `nothing`, or the scalar in double
 * quotes (shortened, control characters escaped), followed by ` (from ${VAR})` when the value
 * came from interpolation. Always NUL-terminates `buf`. */
void tf_yaml_describe(const tf_yaml_node *n, char *buf, size_t size);

/* Field paths for messages: "redis" + "url" -> "redis.url" ("" + "url" -> "url"), and
 * "pipelines" + 0 -> "pipelines[0]". A path too long for `size` ends in "...". */
void tf_yaml_path_key(char *out, size_t size, const char *base, const char *key);
void tf_yaml_path_index(char *out, size_t size, const char *base, size_t index);

/* The name in `names` closest to `word` (edit distance, ignoring case) when it is close
 * enough to be a likely typo; NULL otherwise. */
const char *tf_yaml_suggest(const char *word, const char *const *names, size_t n_names);

#endif
