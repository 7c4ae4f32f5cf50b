/* Records and batches: typed fields, replacement, refusals, JSON form, batch operations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tf_record.h"
#include "tf_test.h"

static void test_fields_round_trip(void)
{
    tf_batch *b = tf_batch_create();
    tf_record *r = tf_record_new(b, "ticker");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "symbol", "BTC"), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_double(r, "last", 136850000.0), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_int(r, "volume", 42), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_bool(r, "stale", true), TF_OK);
    CU_ASSERT_EQUAL(tf_record_set_ts(r, "ts", 1795428930000LL), TF_OK);
    CU_ASSERT_STRING_EQUAL(tf_record_kind(r), "ticker");
    CU_ASSERT_EQUAL(tf_record_field_count(r), 5);
    CU_ASSERT_STRING_EQUAL(tf_record_get_string(r, "symbol"), "BTC");
    double d = 0;
    CU_ASSERT_EQUAL(tf_record_get_double(r, "last", &d), TF_OK);
    CU_ASSERT_EQUAL(d, 136850000.0);
    CU_ASSERT_EQUAL(tf_record_get_double(r, "volume", &d), TF_OK); /* int read as double */
    CU_ASSERT_EQUAL(d, 42.0);
    int64_t i = 0;
    CU_ASSERT_EQUAL(tf_record_get_int(r, "ts", &i), TF_OK);
    CU_ASSERT_EQUAL(i, 1795428930000LL);
    bool flag = false;
    CU_ASSERT_EQUAL(tf_record_get_bool(r, "stale", &flag), TF_OK);
    CU_ASSERT_TRUE(flag);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "ts"), TF_FIELD_TS);
    const char *name = NULL;
    CU_ASSERT_EQUAL(tf_record_field_at(r, 1, &name), TF_FIELD_DOUBLE);
    CU_ASSERT_STRING_EQUAL(name, "last");
    CU_ASSERT_EQUAL(tf_record_field_at(r, 5, &name), TF_FIELD_NONE);
    tf_batch_destroy(b);
}

static void test_refusals_and_lookups(void)
{
    tf_batch *b = tf_batch_create();
    tf_record *r = tf_record_new(b, "ticker");
    CU_ASSERT_EQUAL(tf_record_set_double(r, "last", NAN), TF_EVALUE);
    CU_ASSERT_EQUAL(tf_record_set_double(r, "last", INFINITY), TF_EVALUE);
    CU_ASSERT_EQUAL(tf_record_field_count(r), 0); /* a refused value leaves no field */
    CU_ASSERT_EQUAL(tf_record_set_int(r, "", 1), TF_EINVAL);
    CU_ASSERT_EQUAL(tf_record_set_string(r, "x", NULL), TF_EINVAL);
    CU_ASSERT_PTR_NULL(tf_record_new(b, ""));
    double d;
    int64_t i;
    CU_ASSERT_EQUAL(tf_record_get_double(r, "missing", &d), TF_ENOTFOUND);
    tf_record_set_string(r, "symbol", "BTC");
    CU_ASSERT_EQUAL(tf_record_get_int(r, "symbol", &i), TF_EINVAL);
    CU_ASSERT_PTR_NULL(tf_record_get_string(r, "missing"));
    tf_batch_destroy(b);
}

static void test_set_replaces(void)
{
    tf_batch *b = tf_batch_create();
    tf_record *r = tf_record_new(b, "ticker");
    tf_record_set_string(r, "v", "first");
    tf_record_set_double(r, "v", 2.5); /* a new type replaces the string (freed: ASan) */
    CU_ASSERT_EQUAL(tf_record_field_count(r), 1);
    CU_ASSERT_EQUAL(tf_record_field_type(r, "v"), TF_FIELD_DOUBLE);
    tf_record_set_string(r, "v", "again");
    CU_ASSERT_STRING_EQUAL(tf_record_get_string(r, "v"), "again");
    tf_batch_destroy(b);
}

static void test_json_form(void)
{
    tf_batch *b = tf_batch_create();
    tf_record *r = tf_record_new(b, "fx");
    tf_record_set_string(r, "pair", "USDKRW");
    tf_record_set_double(r, "rate", 1402.5);
    tf_record_set_ts(r, "ts", 1000);
    tf_record_set_bool(r, "stale", false);
    json_t *j = tf_record_to_json(r);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    CU_ASSERT_STRING_EQUAL(text, "{\"kind\":\"fx\",\"pair\":\"USDKRW\",\"rate\":1402.5,\"ts\":1000,"
                                 "\"stale\":false}");
    free(text);
    json_decref(j);
    tf_batch_destroy(b);
}

static void test_batch_operations(void)
{
    tf_batch *a = tf_batch_create(), *b = tf_batch_create();
    for (int i = 0; i < 40; i++)
        tf_record_set_int(tf_record_new(i < 20 ? a : b, "n"), "i", i);
    CU_ASSERT_EQUAL(tf_batch_count(a), 20);
    CU_ASSERT_EQUAL(tf_batch_move(a, b), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(a), 40);
    CU_ASSERT_EQUAL(tf_batch_count(b), 0);
    tf_batch_remove(a, 0);
    int64_t v = -1;
    tf_record_get_int(tf_batch_at(a, 0), "i", &v);
    CU_ASSERT_EQUAL(v, 1);
    tf_record_get_int(tf_batch_at(a, 38), "i", &v);
    CU_ASSERT_EQUAL(v, 39);
    CU_ASSERT_PTR_NULL(tf_batch_at(a, 39));
    tf_batch_remove(a, 100); /* out of range: no-op */
    CU_ASSERT_EQUAL(tf_batch_count(a), 39);
    tf_batch_clear(a);
    CU_ASSERT_EQUAL(tf_batch_count(a), 0);
    tf_batch_destroy(a);
    tf_batch_destroy(b);
    /* Moving a never-used batch (no array yet) into another never-used one: a source that
     * failed before emitting anything. UBSan aborts on memcpy from NULL if this regresses. */
    tf_batch *empty_to = tf_batch_create(), *empty_from = tf_batch_create();
    CU_ASSERT_EQUAL(tf_batch_move(empty_to, empty_from), TF_OK);
    CU_ASSERT_EQUAL(tf_batch_count(empty_to), 0);
    tf_batch_destroy(empty_to);
    tf_batch_destroy(empty_from);
}

/* The origin of a record is whatever instance was filling its batch when it was created; it
 * follows the record into another batch. The instances are opaque here: only their identity
 * matters. */
static void test_origin(void)
{
    static int source_a, transform_b; /* stand-ins for two tf_instance handles */
    const tf_instance *a = (const tf_instance *)(const void *)&source_a;
    const tf_instance *t = (const tf_instance *)(const void *)&transform_b;
    tf_batch *own = tf_batch_create();
    tf_batch *tick = tf_batch_create();
    tf_record *by_hand = tf_record_new(own, "fx");
    CU_ASSERT_PTR_NULL(tf_record_origin(by_hand));
    CU_ASSERT_PTR_NULL(tf_batch_set_origin(own, a));
    tf_record *fetched = tf_record_new(own, "fx");
    CU_ASSERT_PTR_EQUAL(tf_batch_set_origin(own, NULL), a);
    CU_ASSERT_PTR_EQUAL(tf_record_origin(fetched), a);
    CU_ASSERT_EQUAL(tf_batch_move(tick, own), TF_OK);
    CU_ASSERT_PTR_EQUAL(tf_record_origin(tf_batch_at(tick, 1)), a);
    tf_batch_set_origin(tick, t);
    tf_record *computed = tf_record_new(tick, "premium");
    tf_batch_set_origin(tick, NULL);
    CU_ASSERT_PTR_EQUAL(tf_record_origin(computed), t);
    CU_ASSERT_PTR_EQUAL(tf_record_origin(tf_batch_at(tick, 1)), a); /* unchanged by t */
    CU_ASSERT_PTR_NULL(tf_record_origin(NULL));
    tf_batch_destroy(own);
    tf_batch_destroy(tick);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"typed fields round trip", test_fields_round_trip},
        {"refusals and lookups", test_refusals_and_lookups},
        {"setting a field again replaces it", test_set_replaces},
        {"JSON form has fields at top level", test_json_form},
        {"batch move, remove, clear", test_batch_operations},
        {"records carry the stage that created them", test_origin},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("records", tests, NULL, NULL);
}
