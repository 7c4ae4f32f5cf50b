/* The SDK's plausibility rule (tickflow/plausible.h, tf_plaus_step): range, jumps held until
 * the next value confirms them, a return to the old level, the first value, the jump check
 * off, and the values the mutating proxy sends (1e+308, 1e-308, sign flips, x10). */
#include <math.h>
#include <stdio.h>

#include <tickflow/plausible.h>

#include "tf_common.h"
#include "tf_test.h"

/* Bithumb's BTC/KRW defaults: 20M..1B KRW, 20 % jump, 2 % tolerance. */
static const tf_plaus_limits BTC_KRW = {2e7, 1e9, 0.2, 0.02};

typedef struct step {
    double value;
    tf_plaus_verdict want;
} step;

/* Feeds the steps in order to one fresh series; `last` is the accepted value at the end. */
static void run_steps(const char *name, const tf_plaus_limits *l, const step *steps, size_t n,
                      double last)
{
    tf_plaus_state s = {0};
    for (size_t i = 0; i < n; i++) {
        tf_plaus_verdict got = tf_plaus_step(l, &s, steps[i].value);
        if (got != steps[i].want)
            fprintf(stderr, "\nFAILED: %s, step %zu (%.17g): got %s (%d), want %d\n", name, i,
                    steps[i].value, tf_plaus_reason(got), got, steps[i].want);
        CU_ASSERT_EQUAL(got, steps[i].want);
    }
    CU_ASSERT_EQUAL(s.last, last);
}

static void test_range(void)
{
    const step steps[] = {
        {1e308, TF_PLAUS_RANGE},      {1e-308, TF_PLAUS_RANGE}, {-136850000, TF_PLAUS_RANGE},
        {0, TF_PLAUS_RANGE},          {NAN, TF_PLAUS_RANGE},    {INFINITY, TF_PLAUS_RANGE},
        {1368500000, TF_PLAUS_RANGE}, /* x10 of BTC/KRW is above 1e9 */
        {2e7, TF_PLAUS_OK},           /* the bounds themselves are inside */
    };
    run_steps("range", &BTC_KRW, steps, TF_ARRAY_LEN(steps), 2e7);
    const step top[] = {{1e9, TF_PLAUS_OK}, {1e9 * (1 + 1e-15), TF_PLAUS_RANGE}};
    run_steps("range top", &BTC_KRW, top, TF_ARRAY_LEN(top), 1e9);
}

static void test_jump_confirmed_or_forgotten(void)
{
    const step steps[] = {
        {136850000, TF_PLAUS_OK},        /* first value: range only */
        {164220000, TF_PLAUS_OK},        /* +20 % exactly: accepted */
        {410550000, TF_PLAUS_JUMP},      /* x2.5: held */
        {164300000, TF_PLAUS_OK},        /* back near the old level: the jump is forgotten */
        {410550000, TF_PLAUS_JUMP},      /* held again */
        {415000000, TF_PLAUS_CONFIRMED}, /* within 2 % of the held value: a real move */
        {410000000, TF_PLAUS_OK},        /* now the reference */
    };
    run_steps("jump", &BTC_KRW, steps, TF_ARRAY_LEN(steps), 410000000);
}

static void test_jump_not_confirmed(void)
{
    const step steps[] = {
        {136850000, TF_PLAUS_OK},
        {410550000, TF_PLAUS_JUMP},
        {500000000, TF_PLAUS_JUMP}, /* neither near the held value nor the old one: held instead */
        {505000000, TF_PLAUS_CONFIRMED},
        {1e308, TF_PLAUS_RANGE},
        {250000000, TF_PLAUS_JUMP},
        {1e-308, TF_PLAUS_RANGE},   /* out of range: drops the held value... */
        {250000000, TF_PLAUS_JUMP}, /* ...so this one is held afresh, not confirmed */
        {-250000000, TF_PLAUS_RANGE},
    };
    run_steps("unconfirmed", &BTC_KRW, steps, TF_ARRAY_LEN(steps), 505000000);
}

static void test_jump_check_off(void)
{
    const tf_plaus_limits off = {2e7, 1e9, 0, 0};
    const step steps[] = {
        {136850000, TF_PLAUS_OK},
        {410550000, TF_PLAUS_OK},
        {1368500000, TF_PLAUS_RANGE},
    };
    run_steps("max_jump 0", &off, steps, TF_ARRAY_LEN(steps), 410550000);
}

static void test_helpers(void)
{
    CU_ASSERT_DOUBLE_EQUAL(tf_plaus_rel(120, 100), 0.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tf_plaus_rel(80, 100), 0.2, 1e-12);
    CU_ASSERT_STRING_EQUAL(tf_plaus_reason(TF_PLAUS_RANGE), "range");
    CU_ASSERT_STRING_EQUAL(tf_plaus_reason(TF_PLAUS_JUMP), "jump");
    CU_ASSERT_TRUE(tf_plaus_range_ok(1, 2));
    CU_ASSERT_FALSE(tf_plaus_range_ok(0, 2));
    CU_ASSERT_FALSE(tf_plaus_range_ok(2, 1));
    CU_ASSERT_FALSE(tf_plaus_range_ok(1, INFINITY));
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"range: extremes, signs, non-finite, bounds", test_range},
        {"jumps: confirmed by the next value, or forgotten", test_jump_confirmed_or_forgotten},
        {"jumps: unconfirmed values stay out", test_jump_not_confirmed},
        {"max_jump 0: range only", test_jump_check_off},
        {"helpers", test_helpers},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("plausible", tests, NULL, NULL);
}
