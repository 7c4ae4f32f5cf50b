/* Durations as written in YAML: units, compounds, fractions, bare milliseconds, and every
 * rejection with its reason. */
#include <stdint.h>
#include <string.h>

#include "tf_options.h"
#include "tf_test.h"

typedef struct good_case {
    const char *text;
    int64_t ms;
} good_case;

static void test_good(void)
{
    static const good_case cases[] = {
        {"500ms", 500},
        {"1s", 1000},
        {"10m", 600000},
        {"1h", 3600000},
        {"1h30m", 5400000},
        {"1m30s", 90000},
        {"2h3m4s5ms", 7384005},
        {"1.5s", 1500},
        {"0.25s", 250},
        {"1.5m", 90000},
        {"0.001s", 1},
        {"250", 250}, /* bare integer: milliseconds */
        {"0", 0},
        {"0ms", 0},
        {"9223372036854775ms", 9223372036854775LL},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        int64_t ms = -1;
        char err[256] = "";
        int rc = tf_duration_parse(cases[i].text, &ms, err, sizeof err);
        if (rc != 0 || ms != cases[i].ms)
            fprintf(stderr, "\n%s -> rc %d ms %lld (%s)\n", cases[i].text, rc, (long long)ms, err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(ms, cases[i].ms);
    }
}

typedef struct bad_case {
    const char *text;
    const char *reason; /* expected inside the message; NULL: only the general form */
} bad_case;

static void test_bad(void)
{
    static const bad_case cases[] = {
        {"", "empty"},
        {"-1s", "negative"},
        {"-5", "negative"},
        {"fast", NULL},
        {"250us", "unknown unit 'us'"},
        {"1d", "unknown unit 'd'"},
        {"1S", "unknown unit 'S'"},
        {"1.5", "must be whole"},
        {"1s500", "expected a unit"},
        {"1 s", "expected a unit"},
        {" 1s", NULL},
        {"1s ", "expected a number"},
        {"1m1h", "largest to smallest"},
        {"1s1s", "largest to smallest"},
        {"0.0005s", "finer than a millisecond"},
        {"0.5ms", "finer than a millisecond"},
        {"1.s", "digits after the decimal point"},
        {"99999999999999999999", "too large"},
        {"9223372036854775807s", "too large"},
        {"2562047788015216h", "too large"},
        {"+1s", NULL},
        {"1e3s", "unknown unit 'e'"},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        int64_t ms = 42;
        char err[256] = "";
        int rc = tf_duration_parse(cases[i].text, &ms, err, sizeof err);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_EQUAL(ms, 42); /* untouched on failure */
        bool general = strstr(err, "expected a duration such as 500ms, 1s, 10m; found \"") != NULL;
        bool reason = !cases[i].reason || strstr(err, cases[i].reason) != NULL;
        if (rc != -1 || !general || !reason)
            fprintf(stderr, "\n\"%s\" -> rc %d: %s\n", cases[i].text, rc, err);
        CU_ASSERT(general);
        CU_ASSERT(reason);
    }
}

static void test_message_quotes_the_input(void)
{
    int64_t ms;
    char err[256];
    CU_ASSERT_EQUAL(tf_duration_parse("fast", &ms, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "expected a duration such as 500ms, 1s, 10m; found \"fast\"");
    /* A NULL or tiny error buffer is allowed. */
    CU_ASSERT_EQUAL(tf_duration_parse("fast", &ms, NULL, 0), -1);
    char tiny[4];
    CU_ASSERT_EQUAL(tf_duration_parse("fast", &ms, tiny, sizeof tiny), -1);
    CU_ASSERT_EQUAL(strlen(tiny), 3);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"accepted durations", test_good},
        {"rejected durations and their reasons", test_bad},
        {"message form", test_message_quotes_the_input},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("durations", tests, NULL, NULL);
}
