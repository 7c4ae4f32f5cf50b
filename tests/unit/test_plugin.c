/* Plugin loader: valid plugins load, and every refusal names the file and the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_plugin.h"
#include "tf_test.h"

static char plugin_dir[1024];

static const char *test_plugin(const char *name)
{
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s.so", plugin_dir, name);
    return path;
}

/* Loads one file into a fresh registry; returns the status and copies the single diagnostic. */
static int load_one(const char *name, char *msg, size_t size)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    int rc = tf_registry_load_file(reg, test_plugin(name), diag);
    msg[0] = '\0';
    if (tf_diag_count(diag) > 0)
        snprintf(msg, size, "%s", tf_diag_message(diag, 0));
    CU_ASSERT_EQUAL(tf_diag_count(diag), rc == TF_OK ? 0 : 1);
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
    return rc;
}

static void test_good_plugin_loads(void)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    CU_ASSERT_EQUAL(tf_registry_load_file(reg, test_plugin("good_abi"), diag), TF_OK);
    const tf_plugin *p = tf_registry_find(reg, TF_KIND_SOURCE, "good");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->desc->options[0].name, "symbols");
    CU_ASSERT_PTR_NOT_NULL(strstr(p->path, "good_abi.so"));
    CU_ASSERT_PTR_NULL(tf_registry_find(reg, TF_KIND_SINK, "good"));
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
}

static void test_wrong_abi_refused(void)
{
    char msg[512];
    CU_ASSERT_NOT_EQUAL(load_one("bad_abi", msg, sizeof msg), TF_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "bad_abi.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "ABI 2.0"));
    char host_abi[32]; /* the host's own version, named beside the plugin's */
    snprintf(host_abi, sizeof host_abi, "(ABI %d.%d)", TF_ABI_MAJOR, TF_ABI_MINOR);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, host_abi));
}

static void test_no_descriptor_refused(void)
{
    char msg[512];
    CU_ASSERT_NOT_EQUAL(load_one("no_descriptor", msg, sizeof msg), TF_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no_descriptor.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "tickflow_plugin"));
}

static void test_not_a_shared_object_refused(void)
{
    char msg[512];
    CU_ASSERT_NOT_EQUAL(load_one("not_elf", msg, sizeof msg), TF_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "not_elf.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cannot load plugin"));
}

static void test_short_descriptor_refused(void)
{
    char msg[512];
    CU_ASSERT_NOT_EQUAL(load_one("short_descriptor", msg, sizeof msg), TF_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "short_descriptor.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "16 bytes"));
}

static void test_bad_name_refused(void)
{
    char msg[512];
    CU_ASSERT_NOT_EQUAL(load_one("bad_name", msg, sizeof msg), TF_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "Bad Name!"));
}

static void test_missing_file_refused(void)
{
    char msg[512];
    CU_ASSERT_NOT_EQUAL(load_one("does_not_exist", msg, sizeof msg), TF_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "does_not_exist.so"));
}

static void test_duplicate_refused(void)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    CU_ASSERT_EQUAL(tf_registry_load_file(reg, test_plugin("dup_a"), diag), TF_OK);
    CU_ASSERT_NOT_EQUAL(tf_registry_load_file(reg, test_plugin("dup_b"), diag), TF_OK);
    CU_ASSERT_EQUAL_FATAL(tf_diag_count(diag), 1);
    const char *msg = tf_diag_message(diag, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "dup_b.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "dup_a.so"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "duplicate source plugin 'dup'"));
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
}

static void test_directory_load_counts_failures(void)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    /* bad_abi, bad_name, dup_b (dup_a loads first), no_descriptor, not_elf, short_descriptor */
    CU_ASSERT_EQUAL(tf_registry_load_dir(reg, plugin_dir, diag), 6);
    CU_ASSERT_EQUAL(tf_diag_count(diag), 6);
    CU_ASSERT_EQUAL(tf_registry_count(reg), 2); /* dup_a's "dup" and good_abi's "good" */
    CU_ASSERT_PTR_NOT_NULL(tf_registry_find(reg, TF_KIND_SOURCE, "good"));
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
}

static void test_builtin_and_env_path(void)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    setenv("TICKFLOW_PLUGIN_PATH", "/nonexistent-tickflow-dir", 1);
    tf_registry_load_default(reg, NULL, 0, diag);
    unsetenv("TICKFLOW_PLUGIN_PATH");
    /* The built-in directory is found relative to this executable (build/tests/..). */
    CU_ASSERT_PTR_NOT_NULL(tf_registry_find(reg, TF_KIND_SOURCE, "generate"));
    CU_ASSERT_PTR_NOT_NULL(tf_registry_find(reg, TF_KIND_SINK, "stdout"));
    CU_ASSERT_EQUAL_FATAL(tf_diag_count(diag), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(tf_diag_message(diag, 0), "/nonexistent-tickflow-dir"));
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
}

static void test_sorted_listing_keeps_pointers(void)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    tf_registry_load_default(reg, NULL, 0, diag);
    const tf_plugin *before = tf_registry_find(reg, TF_KIND_SINK, "stdout");
    for (size_t i = 1; i < tf_registry_count(reg); i++) {
        const tf_plugin *a = tf_registry_at(reg, i - 1), *b = tf_registry_at(reg, i);
        CU_ASSERT(a->desc->kind < b->desc->kind ||
                  (a->desc->kind == b->desc->kind && strcmp(a->desc->name, b->desc->name) < 0));
    }
    CU_ASSERT_PTR_EQUAL(before, tf_registry_find(reg, TF_KIND_SINK, "stdout"));
    CU_ASSERT_STRING_EQUAL(before->desc->name, "stdout");
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
}

int main(void)
{
    snprintf(plugin_dir, sizeof plugin_dir, "%s", tft_bin("x"));
    /* tft_bin gives <build>/bin/x; the test plugins live in <build>/tests/plugins. */
    char *bin = strstr(plugin_dir, "/bin/x");
    if (bin)
        snprintf(bin, sizeof plugin_dir - (size_t)(bin - plugin_dir), "/tests/plugins");
    CU_TestInfo tests[] = {
        {"a valid plugin loads", test_good_plugin_loads},
        {"wrong ABI major is refused", test_wrong_abi_refused},
        {"missing descriptor is refused", test_no_descriptor_refused},
        {"a file that is not a .so is refused", test_not_a_shared_object_refused},
        {"a short descriptor is refused", test_short_descriptor_refused},
        {"an invalid name is refused", test_bad_name_refused},
        {"a missing file is refused", test_missing_file_refused},
        {"a duplicate name is refused", test_duplicate_refused},
        {"a directory load counts every failure", test_directory_load_counts_failures},
        {"built-in dir and TICKFLOW_PLUGIN_PATH", test_builtin_and_env_path},
        {"listing is sorted and keeps pointers", test_sorted_listing_keeps_pointers},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("plugin loader", tests, NULL, NULL);
}
