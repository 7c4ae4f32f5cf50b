/* The YAML tree: positions, quoting, null, duplicate keys, anchors, syntax errors with
 * libyaml's problem at line:column, and the shared readers (describe, paths, suggestions). */
#include <stdlib.h>
#include <string.h>

#include "tf_common.h"
#include "tf_test.h"
#include "tf_yaml.h"

static char fixture[1024];

static const char *config_file(const char *name)
{
    snprintf(fixture, sizeof fixture, "%s", tft_source_path("tests/unit/config"));
    size_t n = strlen(fixture);
    snprintf(fixture + n, sizeof fixture - n, "/%s", name);
    return fixture;
}

/* True when some diagnostic contains `needle`; prints them all otherwise. */
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

static void assert_at(const tf_yaml_node *n, int line, int col)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    if (n->line != line || n->col != col)
        fprintf(stderr, "\nnode at %d:%d, expected %d:%d\n", n->line, n->col, line, col);
    CU_ASSERT_EQUAL(n->line, line);
    CU_ASSERT_EQUAL(n->col, col);
}

static void test_positions_and_quoting(void)
{
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_load_file(config_file("yaml_positions.yaml"), d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(tf_diag_count(d), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc->file, "yaml_positions.yaml"));
    const tf_yaml_node *top = tf_yaml_get(doc->root, "top");
    CU_ASSERT_EQUAL_FATAL(top->kind, TF_YAML_MAPPING);
    assert_at(top, 3, 3);
    CU_ASSERT_STRING_EQUAL(top->file, doc->file);

    const tf_yaml_node *name = tf_yaml_get(top, "name");
    assert_at(name, 3, 9);
    CU_ASSERT(name->quoted);
    CU_ASSERT_STRING_EQUAL(name->text, "quoted 1s");
    assert_at(tf_yaml_get_pair(top, "name")->key, 3, 3);

    const tf_yaml_node *plain = tf_yaml_get(top, "plain");
    assert_at(plain, 4, 10);
    CU_ASSERT_FALSE(plain->quoted);

    const tf_yaml_node *list = tf_yaml_get(top, "list");
    CU_ASSERT_EQUAL_FATAL(list->kind, TF_YAML_SEQUENCE);
    CU_ASSERT_EQUAL_FATAL(list->n_items, 2);
    assert_at(list->items[0], 6, 7);
    assert_at(list->items[1], 7, 7);
    assert_at(tf_yaml_get(list->items[1], "k"), 7, 11);
    CU_ASSERT_STRING_EQUAL(tf_yaml_get(list->items[1], "n")->text, "2");

    const tf_yaml_node *block = tf_yaml_get(top, "block");
    CU_ASSERT(block->quoted); /* a block scalar is always text */
    CU_ASSERT_STRING_EQUAL(block->text, "text\n");

    const tf_yaml_node *empty = tf_yaml_get(top, "empty");
    CU_ASSERT(tf_yaml_is_null(empty));
    CU_ASSERT_FALSE(tf_yaml_is_null(name));

    const tf_yaml_node *second = tf_yaml_get(doc->root, "second");
    assert_at(second, 11, 9);
    assert_at(second->items[1], 11, 13);
    CU_ASSERT(second->items[1]->quoted);
    CU_ASSERT_PTR_NULL(tf_yaml_get(doc->root, "missing"));
    CU_ASSERT_PTR_NULL(tf_yaml_get(name, "x")); /* not a mapping */
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

static void test_duplicate_keys(void)
{
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_load_file(config_file("yaml_duplicate.yaml"), d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc); /* still returned: validation may find more */
    CU_ASSERT_EQUAL(tf_diag_count(d), 2);
    CU_ASSERT(has_diag(d, "yaml_duplicate.yaml:4:3: b.c: duplicate key 'c' (first defined at "
                          "line 3, column 3)"));
    CU_ASSERT(has_diag(d, "yaml_duplicate.yaml:5:1: a: duplicate key 'a' (first defined at "
                          "line 1, column 1)"));
    /* The first value wins. */
    CU_ASSERT_EQUAL(doc->root->n_pairs, 2);
    CU_ASSERT_STRING_EQUAL(tf_yaml_get(doc->root, "a")->text, "1");
    CU_ASSERT_STRING_EQUAL(tf_yaml_get(tf_yaml_get(doc->root, "b"), "c")->text, "1");
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

static void test_syntax_error(void)
{
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_load_file(config_file("yaml_syntax.yaml"), d);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT_EQUAL_FATAL(tf_diag_count(d), 1);
    CU_ASSERT(has_diag(d, "yaml_syntax.yaml:2:4: invalid YAML: found character that cannot "
                          "start any token"));

    tf_diag_destroy(d);
    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(tf_yaml_parse_string("a: [1, 2\nb: 3\n", "flow.yaml", d));
    CU_ASSERT(has_diag(d, "flow.yaml:2:"));
    CU_ASSERT(has_diag(d, "invalid YAML: did not find expected ',' or ']' (while parsing a flow "
                          "sequence that starts at line 1, column 4)"));
    tf_diag_destroy(d);
}

static void test_missing_file(void)
{
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(tf_yaml_load_file("/nonexistent/tickflow.yaml", d));
    CU_ASSERT(has_diag(d, "/nonexistent/tickflow.yaml: cannot read the file: No such file"));
    tf_diag_destroy(d);
}

static void test_anchors_aliases_tags_refused(void)
{
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_parse_string("base: &b {x: 1}\n"
                                            "other: *b\n"
                                            "n: !!int 3\n"
                                            "s: !!str 3\n",
                                            "anchors.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(tf_diag_count(d), 3);
    CU_ASSERT(has_diag(d, "anchors.yaml:1:7: base: YAML anchors (&b) are not supported"));
    CU_ASSERT(has_diag(d, "anchors.yaml:2:8: other: YAML aliases (*b) are not supported"));
    CU_ASSERT(has_diag(d, "anchors.yaml:3:4: n: YAML tags (tag:yaml.org,2002:int) are not "
                          "supported"));
    /* The alias reads as an already reported value; !!str makes a string. */
    CU_ASSERT(tf_yaml_get(doc->root, "other")->failed);
    CU_ASSERT(tf_yaml_get(doc->root, "s")->quoted);
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

static void test_documents_keys_and_depth(void)
{
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc = tf_yaml_parse_string("a: 1\n---\nb: 2\n", "two.yaml", d);
    CU_ASSERT_PTR_NOT_NULL(doc);
    CU_ASSERT(has_diag(d, "two.yaml:2:1: expected one YAML document per file"));
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);

    d = tf_diag_create();
    doc = tf_yaml_parse_string("m:\n  ? [a, b]\n  : v\n  k: w\n", "key.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT(has_diag(d, "key.yaml:2:5: m: expected a plain key such as 'name'; found a list"));
    const tf_yaml_node *m = tf_yaml_get(doc->root, "m");
    CU_ASSERT_EQUAL(m->n_pairs, 1); /* the complex key and its value are dropped */
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);

    char deep[101];
    memset(deep, '[', 100);
    deep[100] = '\0';
    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(tf_yaml_parse_string(deep, "deep.yaml", d));
    CU_ASSERT(has_diag(d, "expected at most 64 levels of nesting"));
    tf_diag_destroy(d);

    d = tf_diag_create();
    doc = tf_yaml_parse_string("# only a comment\n", "empty.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_PTR_NULL(doc->root);
    CU_ASSERT_EQUAL(tf_diag_count(d), 0);
    tf_yaml_doc_destroy(doc);

    doc = tf_yaml_parse_string("a: \"x\\0y\"\n", "nul.yaml", d);
    CU_ASSERT(has_diag(d, "nul.yaml:1:4: a: expected text; found a value containing a NUL"));
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);
}

static void test_readers(void)
{
    bool b = false;
    const char *yes[] = {"true", "True", "YES", "on", "On"};
    const char *no[] = {"false", "no", "Off", "OFF"};
    for (size_t i = 0; i < TF_ARRAY_LEN(yes); i++) {
        CU_ASSERT_EQUAL(tf_yaml_parse_bool(yes[i], &b), 0);
        CU_ASSERT_TRUE(b);
    }
    for (size_t i = 0; i < TF_ARRAY_LEN(no); i++) {
        CU_ASSERT_EQUAL(tf_yaml_parse_bool(no[i], &b), 0);
        CU_ASSERT_FALSE(b);
    }
    CU_ASSERT_EQUAL(tf_yaml_parse_bool("maybe", &b), -1);
    CU_ASSERT_EQUAL(tf_yaml_parse_bool("1", &b), -1);

    char buf[128];
    tf_diag *d = tf_diag_create();
    tf_yaml_doc *doc =
        tf_yaml_parse_string("s: \"say \\\"hi\\\"\\n\"\nm: {a: 1}\nl: [1]\nn: ~\n", "d.yaml", d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    tf_yaml_describe(tf_yaml_get(doc->root, "s"), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "\"say \\\"hi\\\"\\x0a\"");
    tf_yaml_describe(tf_yaml_get(doc->root, "m"), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "a mapping");
    tf_yaml_describe(tf_yaml_get(doc->root, "l"), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "a list");
    tf_yaml_describe(tf_yaml_get(doc->root, "n"), buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "nothing");
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(d);

    tf_yaml_path_key(buf, sizeof buf, "", "redis");
    CU_ASSERT_STRING_EQUAL(buf, "redis");
    tf_yaml_path_key(buf, sizeof buf, "redis", "url");
    CU_ASSERT_STRING_EQUAL(buf, "redis.url");
    tf_yaml_path_index(buf, sizeof buf, "pipelines", 3);
    CU_ASSERT_STRING_EQUAL(buf, "pipelines[3]");
    char small[8];
    tf_yaml_path_key(small, sizeof small, "pipelines", "name");
    CU_ASSERT_STRING_EQUAL(small, "pipe...");

    const char *names[] = {"timeout", "connect_timeout", "pipelines", "url", "user"};
    CU_ASSERT_STRING_EQUAL(tf_yaml_suggest("timout", names, 5), "timeout");
    CU_ASSERT_STRING_EQUAL(tf_yaml_suggest("Timeout", names, 5), "timeout");
    CU_ASSERT_STRING_EQUAL(tf_yaml_suggest("pipeline", names, 5), "pipelines");
    CU_ASSERT_STRING_EQUAL(tf_yaml_suggest("connect_timout", names, 5), "connect_timeout");
    CU_ASSERT_STRING_EQUAL(tf_yaml_suggest("tiemout", names, 5), "timeout"); /* a swap */
    CU_ASSERT_STRING_EQUAL(tf_yaml_suggest("usr", names, 5), "user");
    CU_ASSERT_PTR_NULL(tf_yaml_suggest("frobnicate", names, 5));
    CU_ASSERT_PTR_NULL(tf_yaml_suggest("xyz", names, 5));
    CU_ASSERT_PTR_NULL(tf_yaml_suggest("", names, 5));
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"positions and quoting", test_positions_and_quoting},
        {"duplicate keys", test_duplicate_keys},
        {"syntax errors at line:column", test_syntax_error},
        {"a missing file", test_missing_file},
        {"anchors, aliases and tags are refused", test_anchors_aliases_tags_refused},
        {"documents, keys and depth", test_documents_keys_and_depth},
        {"readers", test_readers},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("yaml", tests, NULL, NULL);
}
