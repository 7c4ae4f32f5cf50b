/*
 * libFuzzer harness for one source plugin's payload parser. The plugin's own .c files are
 * compiled into this program (tests/fuzz/CMakeLists.txt: one executable per source), so its
 * static parse functions run unchanged; each run creates the plugin with the options in
 * `fz_with` (a YAML flow mapping, validated by the real option code), collects one tick whose
 * HTTP answers (or Redis values) come from the input (fz_host.h says how the input is split),
 * and destroys it: no state carries from one input to the next.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fz_host.h"
#include "tf_record.h"

extern const tf_plugin_descriptor tickflow_plugin;
/* The plugin's options (generated per harness by tests/fuzz/CMakeLists.txt). */
extern const char fz_with[];

static tf_options *options;
static tf_instance *self;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_setup();
    self = fz_instance(&tickflow_plugin, fz_with, NULL, &options);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *state = NULL;
    if (tickflow_plugin.init(fz_host(), self, options, &state) != TF_OK) {
        fprintf(stderr, "fuzz_source: %s init failed with %s\n", tickflow_plugin.name, fz_with);
        abort();
    }
    fz_set_input(data, size);
    tf_batch *out = tf_batch_create();
    tf_tick tick = {.struct_size = sizeof tick,
                    .pipeline = "fuzz",
                    .seq = 1,
                    .scheduled_ms = FZ_NOW_MS,
                    .deadline_ms = INT64_MAX,
                    .key_prefix = "tf"};
    if (out)
        tickflow_plugin.collect(state, &tick, out);
    tf_batch_destroy(out);
    tickflow_plugin.destroy(state);
    return 0;
}
