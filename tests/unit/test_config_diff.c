/* What a reload restarts (tf_config_diff): configurations are compared as parsed, so comments,
 * file order and another pipeline's edits do not count, while every option value (secrets
 * resolved from ${VAR}), the schedule and the lease do; redis:, http: and keys: restart every
 * pipeline, log: and metrics: none. */
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_config_diff.h"
#include "tf_log.h"
#include "tf_test.h"
#include "tf_test_plugins.h"

static const tf_option_def tsrc_options[] = {
    {"symbol", TF_OPT_STRING, "BTC", 0, "Symbol", 0, NULL},
    {"key", TF_OPT_SECRET, NULL, 0, "API key", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_plugin_descriptor tsrc = {
    TF_PLUGIN_HEADER,
    .name = "tsrc",
    .kind = TF_KIND_SOURCE,
    .description = "test",
    .version = "1",
    .options = tsrc_options,
    .init = tft_noop_init,
    .destroy = tft_noop_destroy,
    .collect = tft_noop_collect,
};
static const tf_plugin_descriptor tsrc2 = {
    TF_PLUGIN_HEADER,
    .name = "tsrc2",
    .kind = TF_KIND_SOURCE,
    .description = "test",
    .version = "1",
    .options = tsrc_options,
    .init = tft_noop_init,
    .destroy = tft_noop_destroy,
    .collect = tft_noop_collect,
};
static const tf_plugin_descriptor tsink = {
    TF_PLUGIN_HEADER,        .name = "tsink", .kind = TF_KIND_SINK,  .description = "test",
    .version = "1",          .options = NULL, .init = tft_noop_init, .destroy = tft_noop_destroy,
    .write = tft_noop_write,
};

static tf_registry *reg;
static char *tmp;

static int setup(void)
{
    reg = tf_registry_create();
    tf_diag *d = tf_diag_create();
    const tf_plugin_descriptor *all[] = {&tsrc, &tsrc2, &tsink};
    int rc = 0;
    for (size_t i = 0; i < TF_ARRAY_LEN(all); i++)
        rc |= tf_registry_add(reg, all[i], "(test)", d);
    tf_diag_destroy(d);
    tmp = tft_mkdtemp();
    return rc == 0 && tmp ? 0 : -1;
}

static int teardown(void)
{
    tf_registry_destroy(reg);
    tft_rmdir(tmp);
    free(tmp);
    tf_log_shutdown();
    return 0;
}

static tf_config *load_text(const char *yaml)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/c.yaml", tmp);
    CU_ASSERT_EQUAL_FATAL(tft_write_file(path, yaml), 0);
    const char *paths[] = {path};
    tf_config *cfg = NULL;
    tf_diag *d = tf_diag_create();
    if (tf_config_load(paths, 1, reg, d, &cfg) != TF_OK)
        tf_diag_print(d, stderr);
    tf_diag_destroy(d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    return cfg;
}

static const tf_pipeline_config *named(const tf_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_pipelines; i++)
        if (strcmp(cfg->pipelines[i].name, name) == 0)
            return &cfg->pipelines[i];
    CU_FAIL_FATAL("no such pipeline");
    return NULL;
}

/* The `why` of comparing pipeline `name` of two texts; "" when it does not restart. */
static void why_of(const char *before, const char *after, const char *name, char *why, size_t size)
{
    tf_config *a = load_text(before), *b = load_text(after);
    bool changed = tf_config_diff_pipeline(named(a, name), named(b, name), why, size);
    CU_ASSERT_EQUAL(changed, why[0] != '\0');
    tf_config_destroy(a);
    tf_config_destroy(b);
}

#define BASE                                                                                       \
    "redis: {url: \"redis://127.0.0.1:6379/0\", prefix: tf}\n"                                     \
    "log: {level: info}\n"                                                                         \
    "pipelines:\n"                                                                                 \
    "  - name: a\n"                                                                                \
    "    every: 1s\n"                                                                              \
    "    sources: [{use: tsrc, with: {symbol: ETH, key: \"${TFT_DIFF_KEY}\"}}]\n"                  \
    "    sinks: [tsink]\n"                                                                         \
    "  - name: b\n"                                                                                \
    "    every: 1s\n"                                                                              \
    "    sources: [tsrc]\n"                                                                        \
    "    sinks: [tsink]\n"

static void test_text_that_changes_nothing(void)
{
    setenv("TFT_DIFF_KEY", "k-1", 1);
    char why[64];
    /* a comment, b first, b's symbol changed, ETH written another way */
    why_of(BASE,
           "# edited\n"
           "redis: {prefix: tf, url: \"redis://127.0.0.1:6379/0\"}\n"
           "log: {level: info}\n"
           "pipelines:\n"
           "  - name: b\n"
           "    every: 1s\n"
           "    sources: [{use: tsrc, with: {symbol: SOL}}]\n"
           "    sinks: [tsink]\n"
           "  - name: a     # the same\n"
           "    every: 1000ms\n"
           "    sources:\n"
           "      - use: tsrc\n"
           "        with: {key: \"${TFT_DIFF_KEY}\", symbol: \"ETH\"}\n"
           "    sinks: [{use: tsink}]\n",
           "a", why, sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "");
}

/* BASE with one substring replaced. */
static const char *edited(const char *from, const char *to)
{
    static char out[2048];
    const char *at = strstr(BASE, from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - BASE), BASE, to, at + strlen(from));
    return out;
}

static void test_what_restarts_a_pipeline(void)
{
    setenv("TFT_DIFF_KEY", "k-1", 1);
    char why[64];
    why_of(BASE, edited("every: 1s", "every: 2s"), "a", why, sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "every");
    why_of(BASE, edited("symbol: ETH", "symbol: XRP"), "a", why, sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "sources[0]");
    why_of(BASE, edited("use: tsrc,", "use: tsrc2,"), "a", why, sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "sources[0]");
    why_of(BASE, edited("sinks: [tsink]", "sinks: [tsink, tsink]"), "a", why, sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "sinks");
    why_of(BASE, edited("every: 1s\n", "every: 1s\n    lease: {ttl: 5s}\n"), "a", why, sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "lease");
    /* an option written with its default value: tf_options_is_set answers otherwise */
    why_of(BASE, edited("sources: [tsrc]", "sources: [{use: tsrc, with: {symbol: BTC}}]"), "b", why,
           sizeof why);
    CU_ASSERT_STRING_EQUAL(why, "sources[0]");

    /* a secret that changed behind the same ${VAR}; the reason never holds the value */
    tf_config *a = load_text(BASE);
    setenv("TFT_DIFF_KEY", "k-2", 1);
    tf_config *b = load_text(BASE);
    CU_ASSERT(tf_config_diff_pipeline(named(a, "a"), named(b, "a"), why, sizeof why));
    CU_ASSERT_STRING_EQUAL(why, "sources[0]");
    CU_ASSERT_FALSE(tf_config_diff_pipeline(named(a, "b"), named(b, "b"), why, sizeof why));
    tf_config_destroy(a);
    tf_config_destroy(b);
}

static void test_runtime_sections(void)
{
    setenv("TFT_DIFF_KEY", "k-1", 1);
    setenv("TFT_DIFF_MASTER", "2222222222222222222222222222222222222222222222222222222222222222",
           1);
    static const struct {
        const char *from, *to, *why;
    } cases[] = {
        {"log: {level: info}", "log: {level: debug, format: json}", NULL},
        {"log: {level: info}", "metrics: {listen: \"127.0.0.1:9999\"}", NULL},
        {"prefix: tf", "prefix: tf2", "redis"},
        {"6379/0", "6379/1", "redis"},
        {"prefix: tf}", "prefix: tf, command_timeout: 2s}", "redis"},
        {"log: {level: info}", "http: {timeout: 3s}", "http"},
        {"log: {level: info}", "keys: {master_key: \"${TFT_DIFF_MASTER}\"}", "keys"},
    };
    tf_config *a = load_text(BASE);
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        tf_config *b = load_text(edited(cases[i].from, cases[i].to));
        const char *why = tf_config_diff_runtime(a, b);
        bool expected = cases[i].why ? why && strcmp(why, cases[i].why) == 0 : why == NULL;
        if (!expected)
            fprintf(stderr, "\n%s -> %s: got %s\n", cases[i].from, cases[i].to, why ? why : "NULL");
        CU_ASSERT(expected);
        tf_config_destroy(b);
    }
    tf_config_destroy(a);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"comments, order and other pipelines change nothing", test_text_that_changes_nothing},
        {"what restarts a pipeline", test_what_restarts_a_pipeline},
        {"runtime sections", test_runtime_sections},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("config_diff", tests, setup, teardown);
}
