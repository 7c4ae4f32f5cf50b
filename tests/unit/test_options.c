/* The option engine: every type, defaults, list and record shorthands, secrets, and every
 * error class with its exact file:line:column and path (files in tests/unit/config/). */
#include <stdlib.h>
#include <string.h>

#include "tf_log.h"
#include "tf_options.h"
#include "tf_test.h"
#include "tf_yaml.h"

#define OWNER "source 'tsrc'"

static const tf_option_def server_fields[] = {
    {"host", TF_OPT_STRING, NULL, 1, "Host", 0, NULL},
    {"port", TF_OPT_INT, "80", 0, "Port", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def item_fields[] = {
    {"symbol", TF_OPT_STRING, NULL, 1, "Symbol", 0, NULL},
    {"weight", TF_OPT_DOUBLE, "1", 0, "Weight", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def limit_fields[] = {
    {"rate", TF_OPT_DOUBLE, NULL, 1, "Rate", 0, NULL},
    {"burst", TF_OPT_DOUBLE, NULL, 0, "Burst", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def table[] = {
    {"name", TF_OPT_STRING, NULL, 1, "A required string", 0, NULL},
    {"count", TF_OPT_INT, "3", 0, "An int", 0, NULL},
    {"ratio", TF_OPT_DOUBLE, "0.5", 0, "A double", 0, NULL},
    {"enabled", TF_OPT_BOOL, "true", 0, "A bool", 0, NULL},
    {"timeout", TF_OPT_DURATION, "1s", 0, "A duration", 0, NULL},
    {"symbols", TF_OPT_LIST, "[BTC, ETH]", 0, "Strings", TF_OPT_STRING, NULL},
    {"periods", TF_OPT_LIST, NULL, 0, "Durations", TF_OPT_DURATION, NULL},
    {"labels", TF_OPT_MAP, NULL, 0, "String values", TF_OPT_STRING, NULL},
    {"server", TF_OPT_MAP, NULL, 0, "A record", 0, server_fields},
    {"items", TF_OPT_LIST, NULL, 0, "Records", TF_OPT_MAP, item_fields},
    {"limits", TF_OPT_MAP, NULL, 0, "Map of records", TF_OPT_MAP, limit_fields},
    {"token", TF_OPT_SECRET, NULL, 0, "A secret", 0, NULL},
    {"extra", TF_OPT_MAP, NULL, 0, "Anything", 0, NULL},
    {"tags", TF_OPT_LIST, "[]", 0, "Any scalars", 0, NULL},
    {"note", TF_OPT_STRING, NULL, 0, "No default", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static char fixture[1024];

static const char *config_file(const char *name)
{
    snprintf(fixture, sizeof fixture, "%s/%s", tft_source_path("tests/unit/config"), name);
    return fixture;
}

static int setup(void)
{
    setenv("TFT_TOKEN", "tok-secret-123", 1);
    unsetenv("TFT_UNSET_VAR");
    return 0;
}

static int teardown(void)
{
    tf_log_shutdown();
    return 0;
}

static bool has_diag(const tf_diag *d, const char *needle)
{
    for (size_t i = 0; i < tf_diag_count(d); i++) {
        if (strstr(tf_diag_message(d, i), needle))
            return true;
    }
    fprintf(stderr, "\nno diagnostic contains \"%s\"; got:\n", needle);
    tf_diag_print(d, stderr);
    return false;
}

/* Loads and interpolates a file (or a string when `text` is given), then validates its root. */
static tf_options *load(const char *file, const char *text, tf_diag *d)
{
    tf_yaml_doc *doc = text ? tf_yaml_parse_string(text, file, d) : tf_yaml_load_file(file, d);
    if (!doc)
        return NULL;
    tf_yaml_interpolate(doc, d);
    tf_options *o = tf_options_from_yaml(table, doc->root, "", OWNER, d);
    tf_yaml_doc_destroy(doc);
    return o;
}

static void test_every_type(void)
{
    tf_diag *d = tf_diag_create();
    tf_options *o = load(config_file("options_good.yaml"), NULL, d);
    if (tf_diag_count(d))
        tf_diag_print(d, stderr);
    CU_ASSERT_EQUAL(tf_diag_count(d), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(tf_options_string(o, "name"), "demo");
    CU_ASSERT_EQUAL(tf_options_int(o, "count"), 42);
    CU_ASSERT_DOUBLE_EQUAL(tf_options_double(o, "ratio"), 2.5, 1e-12); /* quoted: accepted */
    CU_ASSERT_FALSE(tf_options_bool(o, "enabled"));
    CU_ASSERT_EQUAL(tf_options_duration_ms(o, "timeout"), 5400000);

    /* A scalar where a list is expected is a one-item list. */
    const json_t *symbols = tf_options_json(o, "symbols");
    CU_ASSERT_EQUAL(json_array_size(symbols), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(symbols, 0)), "SOL");
    const json_t *periods = tf_options_json(o, "periods");
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(periods, 1)), 2000);
    const json_t *labels = tf_options_json(o, "labels");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(labels, "region")), "ap-northeast-2");

    /* Records get their defaults; a plain list item is {fields[0]: item}. */
    const json_t *server = tf_options_json(o, "server");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(server, "host")), "example.com");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(server, "port")), 80);
    const json_t *items = tf_options_json(o, "items");
    CU_ASSERT_EQUAL_FATAL(json_array_size(items), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(items, 0), "symbol")),
                           "BTC");
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(json_array_get(items, 0), "weight")),
                           1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(json_array_get(items, 1), "weight")),
                           2.0, 1e-12);
    const json_t *limits = tf_options_json(o, "limits");
    CU_ASSERT_DOUBLE_EQUAL(
        json_number_value(json_object_get(json_object_get(limits, "api.example.com"), "rate")),
        15.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(
        json_number_value(json_object_get(json_object_get(limits, "other.example.com"), "burst")),
        4.0, 1e-12);

    /* Untyped values keep the type they were written with. */
    const json_t *extra = tf_options_json(o, "extra");
    const json_t *nested = json_object_get(extra, "nested");
    CU_ASSERT(json_is_integer(json_array_get(nested, 0)));
    CU_ASSERT(json_is_string(json_array_get(nested, 1)));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(nested, 2), "three")), 3);
    CU_ASSERT(json_is_true(json_object_get(extra, "flag")));
    const json_t *tags = tf_options_json(o, "tags");
    CU_ASSERT(json_is_string(json_array_get(tags, 0)));
    CU_ASSERT(json_is_integer(json_array_get(tags, 1)));
    CU_ASSERT(json_is_real(json_array_get(tags, 2)));
    CU_ASSERT(json_is_true(json_array_get(tags, 3)));
    CU_ASSERT(json_is_string(json_array_get(tags, 4))); /* "7" was quoted */
    CU_ASSERT(json_is_null(json_array_get(tags, 5)));

    CU_ASSERT(tf_options_is_set(o, "name"));
    CU_ASSERT_FALSE(tf_options_is_set(o, "note"));
    CU_ASSERT_PTR_NULL(tf_options_string(o, "note"));
    CU_ASSERT_PTR_NULL(tf_options_json(o, "note"));
    /* Plugin bugs read as zero: an undeclared name, a getter of the wrong type. */
    CU_ASSERT_EQUAL(tf_options_int(o, "undeclared"), 0);
    CU_ASSERT_EQUAL(tf_options_int(o, "name"), 0);
    CU_ASSERT_PTR_NULL(tf_options_string(o, "count"));
    CU_ASSERT_EQUAL(tf_options_duration_ms(o, "count"), 0);
    tf_options_destroy(o);
    tf_diag_destroy(d);
}

static void test_defaults(void)
{
    tf_diag *d = tf_diag_create();
    tf_options *o = load("inline.yaml", "name: x\n", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(tf_options_int(o, "count"), 3);
    CU_ASSERT_DOUBLE_EQUAL(tf_options_double(o, "ratio"), 0.5, 1e-12);
    CU_ASSERT_TRUE(tf_options_bool(o, "enabled"));
    CU_ASSERT_EQUAL(tf_options_duration_ms(o, "timeout"), 1000);
    const json_t *symbols = tf_options_json(o, "symbols");
    CU_ASSERT_EQUAL(json_array_size(symbols), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(symbols, 1)), "ETH");
    CU_ASSERT_EQUAL(json_array_size(tf_options_json(o, "tags")), 0);
    CU_ASSERT_FALSE(tf_options_is_set(o, "count"));
    CU_ASSERT_PTR_NULL(tf_options_json(o, "server")); /* no default: unset */
    tf_options_destroy(o);

    /* tf_options_defaults: fine without required options, refused with one. */
    static const tf_option_def optional[] = {
        {"level", TF_OPT_STRING, "info", 0, "", 0, NULL},
        {"every", TF_OPT_DURATION, "2s", 0, "", 0, NULL},
        {NULL, 0, NULL, 0, NULL, 0, NULL},
    };
    o = tf_options_defaults(optional, "log", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(tf_options_string(o, "level"), "info");
    CU_ASSERT_EQUAL(tf_options_duration_ms(o, "every"), 2000);
    tf_options_destroy(o);
    CU_ASSERT_EQUAL(tf_diag_count(d), 0);
    CU_ASSERT_PTR_NULL(tf_options_defaults(table, "sec", d));
    CU_ASSERT(has_diag(d, "sec.name: missing required option 'name' for sec"));
    tf_diag_destroy(d);

    /* A table whose default is not valid is the table's bug, and says so. */
    static const tf_option_def broken[] = {
        {"delay", TF_OPT_DURATION, "soon", 0, "", 0, NULL},
        {NULL, 0, NULL, 0, NULL, 0, NULL},
    };
    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(tf_options_from_yaml(broken, NULL, "with", OWNER, d));
    CU_ASSERT(has_diag(d, "with.delay: the default \"soon\" of option 'delay' is invalid"));
    CU_ASSERT(has_diag(d, "a bug in source 'tsrc'"));
    tf_diag_destroy(d);
}

typedef struct expected {
    const char *where; /* "options_bad.yaml:L:C: path" */
    const char *what;  /* part of the message */
} expected;

static void test_every_error_class(void)
{
    static const expected cases[] = {
        {"options_bad.yaml:2:8: count", "expected an integer such as 15; found \"12abc\""},
        {"options_bad.yaml:3:8: ratio", "expected a number such as 1.5; found \"fast\""},
        {"options_bad.yaml:4:10: enabled",
         "expected true or false (or yes/no, on/off); found \"maybe\""},
        {"options_bad.yaml:5:10: timeout",
         "expected a duration such as 500ms, 1s, 10m; found \"fast\""},
        {"options_bad.yaml:6:1: timout",
         "unknown option 'timout' for source 'tsrc'; did you mean 'timeout'?"},
        {"options_bad.yaml:7:10: symbols", "expected a list such as [a, b]; found a mapping"},
        {"options_bad.yaml:8:15: periods[1]",
         "expected a duration such as 500ms, 1s, 10m; found \"2x\" (unknown unit 'x'"},
        {"options_bad.yaml:9:9: labels", "expected a mapping such as {key: value}; found a list"},
        {"options_bad.yaml:10:9: server.host", "missing required key 'host'"},
        {"options_bad.yaml:11:14: items[1]", "expected a mapping; found a list"},
        {"options_bad.yaml:12:26: limits.a.example.com.rte",
         "unknown key 'rte'; did you mean 'rate'?"},
        {"options_bad.yaml:12:25: limits.a.example.com.rate", "missing required key 'rate'"},
        {"options_bad.yaml:13:8: token",
         "a secret must come from ${VAR} or ${file:/path}, not be written in the file"},
        {"options_bad.yaml:14:7: name", "expected a string; found a mapping"},
        {"options_bad.yaml:15:8: tags[0]",
         "expected a single value (text, number or boolean); found a list"},
        {"options_bad.yaml:16:1: count2", "unknown option 'count2' for source 'tsrc'; did you "
                                          "mean 'count'?"},
        {"options_bad.yaml:17:8: extra", "environment variable TFT_UNSET_VAR is not set"},
    };
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load(config_file("options_bad.yaml"), NULL, d));
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        char needle[512];
        snprintf(needle, sizeof needle, "%s: %s", cases[i].where, cases[i].what);
        CU_ASSERT(has_diag(d, needle));
    }
    /* Exactly one message per problem: nothing reported twice, nothing extra. */
    CU_ASSERT_EQUAL(tf_diag_count(d), TF_ARRAY_LEN(cases));
    /* The literal secret is never echoed. */
    for (size_t i = 0; i < tf_diag_count(d); i++)
        CU_ASSERT_PTR_NULL(strstr(tf_diag_message(d, i), "hunter2"));
    tf_diag_destroy(d);
}

static void test_missing_and_empty(void)
{
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load(config_file("options_missing.yaml"), NULL, d));
    CU_ASSERT(has_diag(d, "options_missing.yaml:2:1: name: missing required option 'name' for "
                          "source 'tsrc'"));
    CU_ASSERT(has_diag(d, "options_missing.yaml:2:"));
    CU_ASSERT(has_diag(d, "count: expected an integer such as 15; found nothing"));
    CU_ASSERT(has_diag(d, "options_missing.yaml:3:8: ratio: expected a number such as 1.5; "
                          "found \"1e400\""));
    CU_ASSERT_EQUAL(tf_diag_count(d), 3);
    tf_diag_destroy(d);

    /* Not a mapping at all. */
    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load("list.yaml", "[1, 2]\n", d));
    CU_ASSERT(has_diag(d, "list.yaml:1:1: expected a mapping of options for source 'tsrc'; "
                          "found a list"));
    tf_diag_destroy(d);

    /* An empty `with:` (null) is no options at all: the required one is missing there. */
    d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_parse_string("with:\nnext: 1\n", "null.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_PTR_NULL(
        tf_options_from_yaml(table, tf_yaml_get(doc->root, "with"), "p.with", OWNER, d));
    CU_ASSERT(has_diag(d, "p.with.name: missing required option 'name'"));
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

static void test_secrets(void)
{
    char path[1100];
    char *dir = tft_mkdtemp();
    snprintf(path, sizeof path, "%s/token", dir);
    tft_write_file(path, "file-secret-456\n");
    static const char *const accepted[] = {
        "name: x\ntoken: ${TFT_TOKEN}\n",
        "name: x\ntoken: \"${TFT_TOKEN}\"\n",
        "name: x\ntoken: ${TFT_UNSET_VAR:-dflt-secret}\n",
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(accepted); i++) {
        tf_diag *d = tf_diag_create();
        tf_options *o = load("secret.yaml", accepted[i], d);
        CU_ASSERT_PTR_NOT_NULL(o);
        if (!o)
            tf_diag_print(d, stderr);
        tf_options_destroy(o);
        tf_diag_destroy(d);
    }
    static const char *const refused[] = {
        "name: x\ntoken: plain-text-secret\n",
        "name: x\ntoken: \"quoted-secret\"\n",
        "name: x\ntoken: pre-${TFT_TOKEN}\n",
        "name: x\ntoken: ${TFT_TOKEN}${TFT_TOKEN}\n",
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(refused); i++) {
        tf_diag *d = tf_diag_create();
        CU_ASSERT_PTR_NULL(load("secret.yaml", refused[i], d));
        CU_ASSERT(has_diag(d, "secret.yaml:2:8: token: a secret must come from ${VAR} or "
                              "${file:/path}, not be written in the file"));
        tf_diag_destroy(d);
    }

    /* From a file; the value is registered for masking and dumped as ****. */
    char yaml[1300];
    snprintf(yaml, sizeof yaml, "name: x\ntoken: ${file:%s}\ncount: 7\n", path);
    tf_diag *d = tf_diag_create();
    tf_options *o = load("secret.yaml", yaml, d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(tf_options_string(o, "token"), "file-secret-456");
    json_t *dump = tf_options_dump(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(dump, "token")), "****");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(dump, "count")), 7);
    CU_ASSERT(json_is_null(json_object_get(dump, "note")));
    char *text = json_dumps(dump, 0);
    CU_ASSERT_PTR_NULL(strstr(text, "file-secret-456"));
    free(text);
    json_decref(dump);
    char masked[128];
    tf_log_mask("auth file-secret-456 and tok-secret-123", masked, sizeof masked);
    CU_ASSERT_STRING_EQUAL(masked, "auth **** and ****");
    tf_options_destroy(o);
    tf_diag_destroy(d);
    tft_rmdir(dir);
    free(dir);
}

/* Secrets nested in records and lists are masked in dumps too. */
static void test_nested_secret_dump(void)
{
    static const tf_option_def key_fields[] = {
        {"id", TF_OPT_STRING, NULL, 1, "", 0, NULL},
        {"secret", TF_OPT_SECRET, NULL, 0, "", 0, NULL},
        {NULL, 0, NULL, 0, NULL, 0, NULL},
    };
    static const tf_option_def t[] = {
        {"keys", TF_OPT_LIST, NULL, 0, "", TF_OPT_MAP, key_fields},
        {"pins", TF_OPT_LIST, NULL, 0, "", TF_OPT_SECRET, NULL},
        {NULL, 0, NULL, 0, NULL, 0, NULL},
    };
    tf_diag *d = tf_diag_create();
    /* Inside { } and [ ] a reference must be quoted: YAML reads its braces as structure. */
    tf_yaml_doc *doc = tf_yaml_parse_string("keys:\n  - {id: a, secret: \"${TFT_TOKEN}\"}\n"
                                            "  - b\n"
                                            "pins: [\"${TFT_TOKEN}\"]\n",
                                            "nested.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    tf_yaml_interpolate(doc, d);
    tf_options *o = tf_options_from_yaml(t, doc->root, "", OWNER, d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    json_t *dump = tf_options_dump(o);
    char *text = json_dumps(dump, JSON_COMPACT | JSON_SORT_KEYS);
    CU_ASSERT_STRING_EQUAL(text, "{\"keys\":[{\"id\":\"a\",\"secret\":\"****\"},{\"id\":\"b\"}],"
                                 "\"pins\":[\"****\"]}");
    free(text);
    json_decref(dump);
    tf_options_destroy(o);
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"every option type", test_every_type},
        {"defaults", test_defaults},
        {"every error class at its line:column", test_every_error_class},
        {"missing and empty values", test_missing_and_empty},
        {"secrets", test_secrets},
        {"nested secrets are masked", test_nested_secret_dump},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("options", tests, setup, teardown);
}
