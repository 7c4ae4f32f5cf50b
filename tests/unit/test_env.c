/* ${VAR}, ${VAR:-default}, ${file:/path} and $$ in configuration values, and the
 * diagnostics a failed interpolation produces at the scalar's line:column. */
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_test.h"
#include "tf_yaml.h"

static char *dir;

static int setup(void)
{
    dir = tft_mkdtemp();
    setenv("TFT_SET", "value", 1);
    setenv("TFT_EMPTY", "", 1);
    unsetenv("TFT_UNSET");
    return dir ? 0 : -1;
}

static int teardown(void)
{
    tft_rmdir(dir);
    free(dir);
    return 0;
}

/* Interpolates `in` and compares with `want`; NULL `want` means it must fail. */
static void expect(const char *in, const char *want)
{
    char err[256] = "";
    char *out = tf_env_interpolate(in, err, sizeof err);
    if ((want == NULL) != (out == NULL) || (out && strcmp(out, want) != 0))
        fprintf(stderr, "\n\"%s\" -> %s%s%s (err: %s)\n", in, out ? "\"" : "", out ? out : "NULL",
                out ? "\"" : "", err);
    if (want) {
        CU_ASSERT_PTR_NOT_NULL(out);
        CU_ASSERT(out && strcmp(out, want) == 0);
    } else {
        CU_ASSERT_PTR_NULL(out);
        CU_ASSERT(strlen(err) > 0);
    }
    free(out);
}

static void test_variables(void)
{
    expect("plain text", "plain text");
    expect("", "");
    expect("${TFT_SET}", "value");
    expect("a-${TFT_SET}-b", "a-value-b");
    expect("${TFT_SET}${TFT_SET}", "valuevalue");
    expect("${TFT_EMPTY}", "");
    expect("${TFT_UNSET:-fallback}", "fallback");
    expect("${TFT_EMPTY:-fallback}", "fallback"); /* like the shell's :- */
    expect("${TFT_SET:-fallback}", "value");
    expect("${TFT_UNSET:-}", "");
    expect("${TFT_UNSET:-a:b/c}", "a:b/c");
}

static void test_dollars(void)
{
    expect("$$", "$");
    expect("cost $$5", "cost $5");
    expect("$${TFT_SET}", "${TFT_SET}");
    expect("$5 and $x", "$5 and $x"); /* a $ not followed by { stays */
    expect("trailing $", "trailing $");
    expect("$$$$", "$$");
}

static void test_failures_name_the_problem(void)
{
    char err[256];
    CU_ASSERT_PTR_NULL(tf_env_interpolate("x ${TFT_UNSET} y", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "TFT_UNSET is not set"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "${TFT_UNSET:-default}"));
    CU_ASSERT_PTR_NULL(tf_env_interpolate("${TFT_SET", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unterminated ${"));
    CU_ASSERT_PTR_NULL(tf_env_interpolate("${}", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected ${NAME}"));
    CU_ASSERT_PTR_NULL(tf_env_interpolate("${1ABC}", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "found ${1ABC}"));
    CU_ASSERT_PTR_NULL(tf_env_interpolate("${A B}", err, sizeof err));
    expect("${TFT_SET-x}", NULL); /* only :- gives a default */
    /* No error buffer is fine. */
    CU_ASSERT_PTR_NULL(tf_env_interpolate("${TFT_UNSET}", NULL, 0));
}

static void test_files(void)
{
    char path[1024], in[1200];
    snprintf(path, sizeof path, "%s/secret", dir);
    CU_ASSERT_EQUAL_FATAL(tft_write_file(path, "s3cr3t-value\n"), 0);
    snprintf(in, sizeof in, "${file:%s}", path);
    expect(in, "s3cr3t-value");
    snprintf(in, sizeof in, "pre-${file:%s}-post", path);
    expect(in, "pre-s3cr3t-value-post");

    tft_write_file(path, "crlf\r\n\r\n");
    snprintf(in, sizeof in, "${file:%s}", path);
    expect(in, "crlf");
    tft_write_file(path, "two\nlines\n");
    expect(in, "two\nlines");
    tft_write_file(path, "");
    expect(in, "");

    char missing[1100];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    snprintf(in, sizeof in, "${file:%s}", missing);
    char err[512];
    CU_ASSERT_PTR_NULL(tf_env_interpolate(in, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, missing));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
    snprintf(in, sizeof in, "${file:%s:-dflt}", missing);
    expect(in, "dflt");

    /* A directory is not a secret file. */
    snprintf(in, sizeof in, "${file:%s}", dir);
    expect(in, NULL);
}

/* Through the YAML tree: every scalar value, with the diagnostic at its line:column. */
static void test_tree_interpolation(void)
{
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_parse_string("a: ${TFT_SET}\n"
                                            "list:\n"
                                            "  - x\n"
                                            "  - pre ${TFT_UNSET} post\n"
                                            "${TFT_SET}: key not interpolated\n"
                                            "q: \"${TFT_UNSET:-quoted}\"\n",
                                            "env.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(tf_yaml_interpolate(doc, d), 1);
    CU_ASSERT_EQUAL_FATAL(tf_diag_count(d), 1);
    const char *msg = tf_diag_message(d, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "env.yaml:4:5: list[1]: environment variable TFT_UNSET"));
    const tf_yaml_node *root = doc->root;
    CU_ASSERT_STRING_EQUAL(tf_yaml_get(root, "a")->text, "value");
    CU_ASSERT_STRING_EQUAL(tf_yaml_get(root, "a")->raw, "${TFT_SET}");
    CU_ASSERT(tf_yaml_get(root, "list")->items[1]->failed);
    CU_ASSERT_PTR_NOT_NULL(tf_yaml_get(root, "${TFT_SET}"));
    CU_ASSERT_STRING_EQUAL(tf_yaml_get(root, "q")->text, "quoted");
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"variables and defaults", test_variables},
        {"dollar signs", test_dollars},
        {"failures name the problem", test_failures_name_the_problem},
        {"${file:/path} secrets", test_files},
        {"every scalar of a YAML tree", test_tree_interpolation},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("environment interpolation", tests, setup, teardown);
}
