/*
 * libFuzzer harness for the configuration loader: the input is one YAML file, loaded by
 * tf_config_load exactly as `tickflow check` would (YAML parsing, ${VAR} interpolation, every
 * runtime section, pipelines, and each stage's `with:` validated against the option table of
 * the real plugins of this build, loaded from its plugin directory).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fz_host.h"
#include "tf_config.h"
#include "tf_plugin.h"

#ifndef FZ_PLUGIN_DIR
#error "FZ_PLUGIN_DIR: the build's plugin directory"
#endif

static tf_registry *registry;
static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_setup();
    registry = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    if (!registry || !diag || tf_registry_load_dir(registry, FZ_PLUGIN_DIR, diag) != 0 ||
        tf_registry_count(registry) == 0) {
        fprintf(stderr, "fuzz_config: cannot load the plugins of %s\n", FZ_PLUGIN_DIR);
        if (diag)
            tf_diag_print(diag, stderr);
        abort();
    }
    tf_diag_destroy(diag);
    /* A variable for ${VAR} to find; the loader reads files only through ${file:...}. */
    setenv("FZ_SECRET", "fuzz-secret", 1);
    char dir[] = "/tmp/tf-fuzz-config-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/fuzz.yaml", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    size_t written = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || written != size)
        abort();
    tf_diag *diag = tf_diag_create();
    tf_config *cfg = NULL;
    const char *paths[] = {path};
    if (diag)
        tf_config_load(paths, 1, registry, diag, &cfg);
    tf_config_destroy(cfg);
    tf_diag_destroy(diag);
    return 0;
}
