/* Strict numbers and JSON Pointer, including the shapes of the broken exchange fixtures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tf_json.h"
#include "tf_test.h"

static int num(const char *text, unsigned flags, double *out)
{
    char err[128];
    return tf_parse_number(text, flags, out, err, sizeof err);
}

static void test_accepts_plain_decimals(void)
{
    double v = 0;
    CU_ASSERT_EQUAL(num("136850000", TF_NUM_POSITIVE, &v), TF_OK);
    CU_ASSERT_EQUAL(v, 136850000.0);
    CU_ASSERT_EQUAL(num("95012.35", TF_NUM_POSITIVE, &v), TF_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, 95012.35, 1e-9);
    CU_ASSERT_EQUAL(num("-0.00010000", 0, &v), TF_OK);
    CU_ASSERT_DOUBLE_EQUAL(v, -0.0001, 1e-12);
    CU_ASSERT_EQUAL(num("1e-5", TF_NUM_POSITIVE, &v), TF_OK);
    CU_ASSERT_EQUAL(num(".5", 0, &v), TF_OK);
    CU_ASSERT_EQUAL(num("0", TF_NUM_NONNEGATIVE, &v), TF_OK);
}

static void test_rejects_garbage(void)
{
    const char *bad[] = {"",     " 1",   "1 ",      "NaN",         "nan",   "Inf",
                         "-inf", "0x10", "1,399.5", "135,120,000", "12abc", "1e",
                         ".",    "-",    "1e999",   "--1",         "1..2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v = 42;
        char err[128] = "";
        CU_ASSERT_EQUAL(tf_parse_number(bad[i], 0, &v, err, sizeof err), TF_EVALUE);
        CU_ASSERT_EQUAL(v, 42); /* untouched */
        CU_ASSERT(strlen(err) > 0);
    }
    double v;
    CU_ASSERT_EQUAL(num("0", TF_NUM_POSITIVE, &v), TF_EVALUE);
    CU_ASSERT_EQUAL(num("-1", TF_NUM_POSITIVE, &v), TF_EVALUE);
    CU_ASSERT_EQUAL(num("-1", TF_NUM_NONNEGATIVE, &v), TF_EVALUE);
}

static void test_json_values(void)
{
    json_t *doc = json_loads("{\"s\":\"1.5\",\"n\":2,\"r\":2.5,\"z\":null,\"b\":true,"
                             "\"a\":[],\"ms\":\"1795428930000\",\"msn\":1795428930000}",
                             0, NULL);
    double v;
    int64_t i;
    char err[128];
    CU_ASSERT_EQUAL(tf_json_number(json_object_get(doc, "s"), 0, &v, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(v, 1.5);
    CU_ASSERT_EQUAL(tf_json_number(json_object_get(doc, "n"), 0, &v, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(v, 2.0);
    CU_ASSERT_EQUAL(tf_json_number(json_object_get(doc, "z"), 0, &v, err, sizeof err), TF_EVALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "null"));
    CU_ASSERT_EQUAL(tf_json_number(json_object_get(doc, "b"), 0, &v, err, sizeof err), TF_EVALUE);
    CU_ASSERT_EQUAL(tf_json_number(json_object_get(doc, "missing"), 0, &v, err, sizeof err),
                    TF_EVALUE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing"));
    CU_ASSERT_EQUAL(tf_json_int64(json_object_get(doc, "ms"), 0, &i, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(i, 1795428930000LL);
    CU_ASSERT_EQUAL(tf_json_int64(json_object_get(doc, "msn"), 0, &i, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(i, 1795428930000LL);
    CU_ASSERT_EQUAL(tf_json_int64(json_object_get(doc, "s"), 0, &i, err, sizeof err), TF_EVALUE);
    json_decref(doc);
}

/* The broken fixtures' values are all refused. */
static void test_broken_fixture_values(void)
{
    json_t *doc = json_load_file(tft_fixture("bad_binance_book_ticker_non_numeric.json"), 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    double v;
    char err[128];
    CU_ASSERT_EQUAL(
        tf_json_number(json_object_get(doc, "bidPrice"), TF_NUM_POSITIVE, &v, err, sizeof err),
        TF_EVALUE);
    CU_ASSERT_EQUAL(
        tf_json_number(json_object_get(doc, "askPrice"), TF_NUM_POSITIVE, &v, err, sizeof err),
        TF_EVALUE);
    json_decref(doc);
    doc = json_load_file(tft_fixture("bad_bithumb_ticker_wrong_types.json"), 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    json_t *data = json_object_get(doc, "data");
    CU_ASSERT_EQUAL(tf_json_number(json_object_get(data, "closing_price"), TF_NUM_POSITIVE, &v, err,
                                   sizeof err),
                    TF_EVALUE);
    json_decref(doc);
}

static void test_pointer(void)
{
    json_t *doc = json_loads("{\"data\":[{\"last\":\"1\"}],\"a/b\":{\"m~n\":3},\"\":4}", 0, NULL);
    CU_ASSERT_STRING_EQUAL(json_string_value(tf_json_pointer(doc, "/data/0/last")), "1");
    CU_ASSERT_EQUAL(json_integer_value(tf_json_pointer(doc, "/a~1b/m~0n")), 3);
    CU_ASSERT_EQUAL(json_integer_value(tf_json_pointer(doc, "/")), 4);
    CU_ASSERT_PTR_EQUAL(tf_json_pointer(doc, ""), doc);
    CU_ASSERT_PTR_NULL(tf_json_pointer(doc, "/data/1/last"));
    CU_ASSERT_PTR_NULL(tf_json_pointer(doc, "/data/01/last"));
    CU_ASSERT_PTR_NULL(tf_json_pointer(doc, "/data/-/last"));
    CU_ASSERT_PTR_NULL(tf_json_pointer(doc, "data"));
    CU_ASSERT_PTR_NULL(tf_json_pointer(doc, "/a~2b"));
    json_decref(doc);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"plain decimals are accepted", test_accepts_plain_decimals},
        {"garbage is rejected", test_rejects_garbage},
        {"JSON numbers, strings and other types", test_json_values},
        {"values of the broken fixtures are refused", test_broken_fixture_values},
        {"RFC 6901 JSON Pointer", test_pointer},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("json", tests, NULL, NULL);
}
