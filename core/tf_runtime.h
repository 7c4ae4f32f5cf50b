/*
 * The runtime: owns the configuration, the shared HTTP client, the running pipelines and the
 * metrics listener, and turns signals into actions (SIGINT/SIGTERM stop, SIGHUP reloads; an
 * invalid new configuration is rejected with its errors logged and the running one goes on).
 */
#ifndef TF_RUNTIME_H
#define TF_RUNTIME_H

#include <stddef.h>

#include "tf_plugin.h"

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (so every thread created later
 * inherits the mask and only tf_runtime_run receives them) and ignores SIGPIPE. Call first
 * thing in main, before any thread exists. */
void tf_runtime_block_signals(void);

/* Loads `paths`, runs every pipeline until SIGINT/SIGTERM, then stops cleanly. Returns the
 * process exit code: 0 after a clean stop, 2 when the configuration is invalid, 1 when the
 * runtime could not start. `reg` is borrowed. */
int tf_runtime_run(const tf_registry *reg, const char *const *paths, size_t n_paths);

#endif
