/*
 * Plugin loader and registry: dlopen()s shared objects from the built-in directory,
 * TICKFLOW_PLUGIN_PATH and --plugin-dir, checks each descriptor's ABI and shape, and keeps
 * the plugins by (kind, name). Refusals name the file and never crash the host.
 */
#ifndef TF_PLUGIN_H
#define TF_PLUGIN_H

#include "tf_common.h"
#include "tf_diag.h"

typedef struct tf_plugin {
    const tf_plugin_descriptor *desc; /* borrowed from the loaded object */
    char *path;                       /* file it came from (owned) */
    void *handle;                     /* dlopen handle (owned); NULL for built-ins in tests */
} tf_plugin;

typedef struct tf_registry tf_registry;

tf_registry *tf_registry_create(void);
/* dlclose()s every plugin: call only after every instance is destroyed. */
void tf_registry_destroy(tf_registry *reg);

/* Loads one file. Returns TF_OK, or a negative status after adding one diagnostic naming the
 * file: not a shared object, no `tickflow_plugin` symbol, ABI major differs, descriptor
 * shorter than this host needs, bad name/kind/callbacks, duplicate (kind, name). */
int tf_registry_load_file(tf_registry *reg, const char *path, tf_diag *diag);
/* Loads every *.so in `dir` in name order; a missing directory is not an error. Returns the
 * number of failures (each in diag). */
int tf_registry_load_dir(tf_registry *reg, const char *dir, tf_diag *diag);
/* The standard search: `extra_dirs` (from --plugin-dir, in order), then each directory of
 * $TICKFLOW_PLUGIN_PATH (colon-separated), then the built-in directory. A plugin found first
 * wins; the same (kind, name) found again in a later directory is a duplicate diagnostic. */
int tf_registry_load_default(tf_registry *reg, const char *const *extra_dirs, size_t n_extra,
                             tf_diag *diag);
/* The built-in plugin directory: <dir of the executable>/../lib/tickflow/plugins when it
 * exists (build tree and relocated installs), else the configured install directory. */
const char *tf_registry_builtin_dir(void);

/* Registers a descriptor that is linked into the binary (tests); `path` is informative. */
int tf_registry_add(tf_registry *reg, const tf_plugin_descriptor *desc, const char *path,
                    tf_diag *diag);

const tf_plugin *tf_registry_find(const tf_registry *reg, tf_plugin_kind kind, const char *name);
size_t tf_registry_count(const tf_registry *reg);
const tf_plugin *tf_registry_at(const tf_registry *reg, size_t i); /* sorted by kind, name */

const char *tf_plugin_kind_name(tf_plugin_kind kind); /* "source", "transform", "sink" */
const char *tf_option_type_name(tf_option_type type); /* "string", "duration", ... */

#endif
