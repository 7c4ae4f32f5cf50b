/* The tickflow command line: exit codes and messages of check, plugins, --version, --help. */
#include <stdlib.h>
#include <string.h>

#include "tf_proc.h"
#include "tf_test.h"

static char *dir;
static char out[1024];

static char *output(void)
{
    return tft_read_file(out, NULL);
}

static bool contains(const char *needle)
{
    char *text = output();
    bool found = text && strstr(text, needle);
    if (!found)
        fprintf(stderr, "\nexpected \"%s\" in output:\n%s\n", needle, text ? text : "(none)");
    free(text);
    return found;
}

static void test_version_and_help(void)
{
    const char *version[] = {"--version", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(version, out, 10000), 0);
    CU_ASSERT(contains("tickflow " TF_VERSION_STRING_FOR_TEST));
    CU_ASSERT(contains("plugin ABI 1."));
    const char *help[] = {"--help", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(help, out, 10000), 0);
    CU_ASSERT(contains("check [--dump] FILE|DIR"));
    const char *bad[] = {"frobnicate", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(bad, out, 10000), 2);
    CU_ASSERT(contains("unknown command 'frobnicate'"));
    const char *none[] = {NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(none, out, 10000), 2);
}

static void test_check_good(void)
{
    const char *cfg = tfp_write_config(dir, "good.yaml",
                                       "pipelines:\n"
                                       "  - name: hello\n"
                                       "    every: 500ms\n"
                                       "    sources:\n"
                                       "      - use: generate\n"
                                       "    sinks:\n"
                                       "      - use: stdout\n");
    const char *args[] = {"check", cfg, NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(args, out, 10000), 0);
    CU_ASSERT(contains("ok: 1 pipeline(s): hello (every 500 ms)"));
    /* The shipped example must stay valid too. */
    const char *shipped[] = {"check", tft_source_path("pipelines/hello.yaml"), NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(shipped, out, 10000), 0);
}

/* Every pipeline file the project ships validates (each file on its own: they are
 * alternatives, not one configuration). */
static void test_shipped_pipelines_valid(void)
{
    setenv("TF_DEMO_EXCHANGE", "http://127.0.0.1:1", 1);
    const char *files[] = {"pipelines/hello.yaml",          "pipelines/kimchi-premium.yaml",
                           "pipelines/demo.yaml",           "pipelines/api.yaml",
                           "pipelines/examples/upbit.yaml", "pipelines/examples/okx.yaml",
                           "pipelines/examples/bybit.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        const char *args[] = {"check", tft_source_path(files[i]), NULL};
        int rc = tfp_run_cli(args, out, 10000);
        if (rc != 0) {
            char *text = output();
            fprintf(stderr, "\n%s:\n%s\n", files[i], text ? text : "");
            free(text);
        }
        CU_ASSERT_EQUAL(rc, 0);
    }
}

static void test_check_bad(void)
{
    /* Line 6 col 15: `timeout` is unknown to generate; line 7: bad duration. */
    const char *cfg = tfp_write_config(dir, "bad.yaml",
                                       "pipelines:\n"
                                       "  - name: hello\n"
                                       "    every: 500ms\n"
                                       "    sources:\n"
                                       "      - use: generate\n"
                                       "        with: {timeout: 1s}\n"
                                       "      - use: generate\n"
                                       "        with: {delay: soon}\n"
                                       "    sinks:\n"
                                       "      - use: nosuchsink\n");
    const char *args[] = {"check", cfg, NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(args, out, 10000), 2);
    CU_ASSERT(contains("bad.yaml:6:"));
    CU_ASSERT(contains("pipelines[0].sources[0].with.timeout"));
    CU_ASSERT(contains("bad.yaml:8:"));
    CU_ASSERT(contains("pipelines[0].sources[1].with.delay"));
    CU_ASSERT(contains("soon"));
    CU_ASSERT(contains("bad.yaml:10:"));
    CU_ASSERT(contains("nosuchsink"));
    CU_ASSERT(contains("3 error(s)"));
}

/* check --dump prints the effective configuration with secret values masked. */
static void test_check_dump_masks_secrets(void)
{
    setenv("TF_TEST_DUMP_PASSWORD", "dump-secret-Zq81xkP0wL", 1);
    const char *cfg = tfp_write_config(dir, "dump.yaml",
                                       "redis:\n"
                                       "  url: redis://127.0.0.1:6379/0\n"
                                       "  password: ${TF_TEST_DUMP_PASSWORD}\n"
                                       "pipelines:\n"
                                       "  - name: dumped\n"
                                       "    every: 2s\n"
                                       "    sources: [{use: generate, with: {count: 3}}]\n"
                                       "    sinks: [{use: stdout}]\n");
    const char *args[] = {"check", "--dump", cfg, NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(args, out, 10000), 0);
    char *text = output();
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_PTR_NULL(strstr(text, "dump-secret-Zq81xkP0wL"));
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_object_get(j, "redis"), "password")), "****");
    json_t *p0 = json_array_get(json_object_get(j, "pipelines"), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(p0, "every_ms")), 2000);
    json_t *with = json_object_get(json_array_get(json_object_get(p0, "sources"), 0), "with");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(with, "count")), 3);
    json_decref(j);
    free(text);
}

static void test_check_missing_file(void)
{
    const char *args[] = {"check", "/nonexistent/tickflow.yaml", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(args, out, 10000), 2);
    CU_ASSERT(contains("/nonexistent/tickflow.yaml"));
}

static void test_plugins_list_and_describe(void)
{
    const char *list[] = {"plugins", "list", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(list, out, 10000), 0);
    CU_ASSERT(contains("generate"));
    CU_ASSERT(contains("stdout"));
    const char *describe[] = {"plugins", "describe", "generate", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(describe, out, 10000), 0);
    CU_ASSERT(contains("walk_field"));
    CU_ASSERT(contains("duration"));
    const char *json[] = {"plugins", "describe", "stdout", "--json", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(json, out, 10000), 0);
    char *text = output();
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "name")), "stdout");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "kind")), "sink");
    json_t *opt = json_array_get(json_object_get(j, "options"), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(opt, "name")), "kinds");
    json_decref(j);
    free(text);
    const char *list_json[] = {"plugins", "list", "--json", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(list_json, out, 10000), 0);
    text = output();
    j = text ? json_loads(text, 0, NULL) : NULL;
    CU_ASSERT(json_is_array(j) && json_array_size(j) >= 2);
    json_decref(j);
    free(text);
    const char *unknown[] = {"plugins", "describe", "nope", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(unknown, out, 10000), 1);
    CU_ASSERT(contains("no plugin named 'nope'"));
}

static void test_broken_plugin_dir_warns(void)
{
    /* A plugin directory holding a file that is not a shared object: listed as a warning
     * naming the file, exit 1 for `plugins list`, and the built-ins still load. */
    char path[1100];
    snprintf(path, sizeof path, "%s/broken.so", dir);
    tft_write_file(path, "not an ELF file\n");
    const char *args[] = {"--plugin-dir", dir, "plugins", "list", NULL};
    CU_ASSERT_EQUAL(tfp_run_cli(args, out, 10000), 1);
    CU_ASSERT(contains("broken.so"));
    CU_ASSERT(contains("generate"));
}

/* docs/plugins/ must be exactly what `tickflow plugins docs` generates from the tables. */
static void test_plugin_docs_up_to_date(void)
{
    char gen[1100];
    snprintf(gen, sizeof gen, "%s/plugin-docs", dir);
    const char *args[] = {"plugins", "docs", gen, NULL};
    CU_ASSERT_EQUAL_FATAL(tfp_run_cli(args, out, 10000), 0);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' > '%s/docs.diff' 2>&1", gen,
             tft_source_path("docs/plugins"), dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "%s/docs.diff", dir);
        char *diff = tft_read_file(cmd, NULL);
        fprintf(stderr,
                "\ndocs/plugins is stale: run `build/bin/tickflow plugins docs "
                "docs/plugins`\n%s\n",
                diff ? diff : "");
        free(diff);
    }
    CU_ASSERT_EQUAL(rc, 0);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    snprintf(out, sizeof out, "%s/out.txt", dir);
    return dir ? 0 : 1;
}

static int teardown(void)
{
    tft_rmdir(dir);
    free(dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"--version, --help, unknown command", test_version_and_help},
        {"check accepts a valid file", test_check_good},
        {"every shipped pipeline file validates", test_shipped_pipelines_valid},
        {"check reports every problem with file:line:col", test_check_bad},
        {"check names a missing file", test_check_missing_file},
        {"check --dump masks secrets", test_check_dump_masks_secrets},
        {"plugins list and describe", test_plugins_list_and_describe},
        {"a broken plugin file is a warning naming it", test_broken_plugin_dir_warns},
        {"docs/plugins matches the option tables", test_plugin_docs_up_to_date},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("cli", tests, setup, teardown);
}
