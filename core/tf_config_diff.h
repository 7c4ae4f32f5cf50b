/*
 * Compares two loaded configurations to decide what a reload restarts: the parsed structures
 * (with every ${VAR} and ${file:} resolved), never the YAML text, so a comment, a reordering
 * or another pipeline's edit leaves a pipeline's comparison unchanged.
 */
#ifndef TF_CONFIG_DIFF_H
#define TF_CONFIG_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "tf_config.h"

/* The runtime section of `next` that differs from `cur` and that every pipeline depends on:
 * "redis" (leases and Redis plugins connect with it), "http" (the shared client every HTTP
 * plugin uses) or "keys" (plugins read exchange keys at init). NULL when none does; log: and
 * metrics: are applied without restarting pipelines, so they are not reported. */
const char *tf_config_diff_runtime(const tf_config *cur, const tf_config *next);

/* True when pipeline `next` would not run like `cur` (same name assumed): schedule, lease, or a
 * stage's plugin or options (secrets included). `why` receives what differs first ("every",
 * "lease", "sources[1]", "sinks"): never a value, which may be a secret. Where it was written
 * (file, line) does not count. */
bool tf_config_diff_pipeline(const tf_pipeline_config *cur, const tf_pipeline_config *next,
                             char *why, size_t why_size);

#endif
