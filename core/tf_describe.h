/*
 * Plugin descriptions for `tickflow plugins list|describe` (text, JSON) and the generated
 * Markdown in docs/plugins/, all rendered from the plugins' option tables.
 */
#ifndef TF_DESCRIBE_H
#define TF_DESCRIBE_H

#include <jansson.h>
#include <stdio.h>

#include "tf_plugin.h"

/* New reference: name, kind, description, version, file, abi, options[]. Secret defaults are
 * shown as "****". */
json_t *tf_describe_json(const tf_plugin *p);
void tf_describe_text(FILE *out, const tf_plugin *p);
void tf_describe_list_text(FILE *out, const tf_registry *reg);
void tf_describe_markdown(FILE *out, const tf_plugin *p);
/* Writes <dir>/README.md (index) and <dir>/<kind>_<name>.md per plugin. 0 or -1. */
int tf_describe_write_docs(const tf_registry *reg, const char *dir, FILE *err);

#endif
