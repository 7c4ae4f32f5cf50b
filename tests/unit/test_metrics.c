/*
 * tf_metrics: registration rules, exact text exposition (ordering, escaping, histogram
 * buckets, number formatting), many series, concurrent updates, and promtool's verdict on
 * the rendered text.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_test.h"

#define PROMTOOL "/usr/bin/promtool"

/* Feeds `text` to `promtool check metrics`; true when it exits 0 (its findings go to the
 * test's output). A missing promtool fails the test: the check is part of the contract. */
static bool promtool_accepts(const char *text)
{
    if (access(PROMTOOL, X_OK) != 0) {
        CU_FAIL("promtool not found at " PROMTOOL ": install the Debian package `prometheus`");
        fprintf(stderr, "promtool not found at %s: install the Debian package `prometheus`\n",
                PROMTOOL);
        return false;
    }
    FILE *p = popen(PROMTOOL " check metrics", "w");
    if (!p)
        return false;
    fwrite(text, 1, strlen(text), p);
    int status = pclose(p);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static char *render(void)
{
    size_t len = 0;
    char *text = tf_metrics_render(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(len, strlen(text));
    return text;
}

static void assert_text(const char *got, const char *want)
{
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "--- got\n%s--- want\n%s---\n", got, want);
}

static void test_render_exact(void)
{
    tf_metrics_shutdown();
    tf_metric *temp =
        tf_metrics_register(TF_METRIC_GAUGE, "tf_test_temperature", "Temperature.", NULL, NULL, 0);
    static const char *const kind[] = {"kind", NULL};
    tf_metric *events = tf_metrics_register(TF_METRIC_COUNTER, "tf_test_events_total",
                                            "Events seen.\nSecond line \\ end", kind, NULL, 0);
    static const char *const route[] = {"route", NULL};
    static const double bounds[] = {0.25, 1};
    tf_metric *lat = tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_latency_seconds", "Latency.",
                                         route, bounds, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(temp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(events);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lat);
    tf_metric_set(temp, NULL, -1.5);
    tf_metric_add(events, (const char *[]){"b"}, 0.5);
    tf_metric_add(events, (const char *[]){"a"}, 1);
    tf_metric_add(events, (const char *[]){"a"}, 2);
    tf_metric_observe(lat, (const char *[]){"/x"}, 0.125);
    tf_metric_observe(lat, (const char *[]){"/x"}, 0.25); /* le is inclusive */
    tf_metric_observe(lat, (const char *[]){"/x"}, 0.5);
    tf_metric_observe(lat, (const char *[]){"/x"}, 4);
    char *text = render();
    assert_text(text, "# HELP tf_test_events_total Events seen.\\nSecond line \\\\ end\n"
                      "# TYPE tf_test_events_total counter\n"
                      "tf_test_events_total{kind=\"a\"} 3\n"
                      "tf_test_events_total{kind=\"b\"} 0.5\n"
                      "# HELP tf_test_latency_seconds Latency.\n"
                      "# TYPE tf_test_latency_seconds histogram\n"
                      "tf_test_latency_seconds_bucket{route=\"/x\",le=\"0.25\"} 2\n"
                      "tf_test_latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
                      "tf_test_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
                      "tf_test_latency_seconds_sum{route=\"/x\"} 4.875\n"
                      "tf_test_latency_seconds_count{route=\"/x\"} 4\n"
                      "# HELP tf_test_temperature Temperature.\n"
                      "# TYPE tf_test_temperature gauge\n"
                      "tf_test_temperature -1.5\n");
    CU_ASSERT_TRUE(promtool_accepts(text));
    free(text);
    tf_metrics_shutdown();
}

static void test_unlabeled_families_start_at_zero(void)
{
    tf_metrics_shutdown();
    tf_metrics_register(TF_METRIC_COUNTER, "tf_test_starts_total", "Starts.", NULL, NULL, 0);
    tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_wait_seconds", "Wait.", NULL, NULL, 0);
    static const char *const l[] = {"x", NULL};
    tf_metrics_register(TF_METRIC_GAUGE, "tf_test_labeled", "Labeled.", l, NULL, 0);
    char *text = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ntf_test_starts_total 0\n"));
    /* Default buckets 5 ms .. 10 s. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE tf_test_wait_seconds histogram\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.005\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.01\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.025\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.05\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.1\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.25\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"0.5\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"1\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"2.5\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"5\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"10\"} 0\n"
                                        "tf_test_wait_seconds_bucket{le=\"+Inf\"} 0\n"
                                        "tf_test_wait_seconds_sum 0\n"
                                        "tf_test_wait_seconds_count 0\n"));
    /* A labeled family with no series yet: HELP and TYPE only. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE tf_test_labeled gauge\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "tf_test_labeled{"));
    CU_ASSERT_TRUE(promtool_accepts(text));
    free(text);
    tf_metrics_shutdown();
}

/* A removed series is not exported (nor counted in tf_metric_value) until its next update. */
static void test_remove_series(void)
{
    tf_metrics_shutdown();
    static const char *const l[] = {"who", NULL};
    tf_metric *g = tf_metrics_register(TF_METRIC_GAUGE, "tf_test_up", "Up.", l, NULL, 0);
    tf_metric_set(g, (const char *[]){"a"}, 0);
    tf_metric_set(g, (const char *[]){"b"}, 1);
    tf_metric_remove(g, (const char *[]){"a"});
    tf_metric_remove(g, (const char *[]){"never"}); /* no such series: nothing happens */
    char *text = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE tf_test_up gauge\ntf_test_up{who=\"b\"} 1\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "who=\"a\""));
    CU_ASSERT_PTR_NULL(strstr(text, "who=\"never\""));
    CU_ASSERT_TRUE(promtool_accepts(text));
    free(text);
    tf_metric_set(g, (const char *[]){"a"}, 0);
    text = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tf_test_up{who=\"a\"} 0\ntf_test_up{who=\"b\"} 1\n"));
    free(text);
    tf_metrics_shutdown();
}

static void test_registration_rules(void)
{
    tf_metrics_shutdown();
    static const char *const ab[] = {"a", "b", NULL};
    static const char *const ba[] = {"b", "a", NULL};
    static const char *const a[] = {"a", NULL};
    static const double b1[] = {1, 2};
    static const double b2[] = {1, 3};
    tf_metric *c = tf_metrics_register(TF_METRIC_COUNTER, "tf_test_x_total", "X.", ab, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_EQUAL(
        tf_metrics_register(TF_METRIC_COUNTER, "tf_test_x_total", "other help", ab, NULL, 0), c);
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "tf_test_x_total", "X.", ab, NULL, 0));
    CU_ASSERT_PTR_NULL(
        tf_metrics_register(TF_METRIC_COUNTER, "tf_test_x_total", "X.", ba, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_COUNTER, "tf_test_x_total", "X.", a, NULL, 0));
    CU_ASSERT_PTR_NULL(
        tf_metrics_register(TF_METRIC_COUNTER, "tf_test_x_total", "X.", NULL, NULL, 0));

    tf_metric *h = tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h_seconds", "H.", a, b1, 2);
    CU_ASSERT_PTR_NOT_NULL(h);
    CU_ASSERT_PTR_EQUAL(tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h_seconds", "H.", a,
                                            (const double[]){1, 2, INFINITY}, 3),
                        h); /* a trailing +Inf is implicit */
    CU_ASSERT_PTR_NULL(
        tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h_seconds", "H.", a, b2, 2));
    CU_ASSERT_PTR_NULL(
        tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h_seconds", "H.", a, NULL, 0));

    /* Invalid names, labels and buckets. */
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_COUNTER, "tf_test_events", "", NULL, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "9lives", "", NULL, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "a-b", "", NULL, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "", "", NULL, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, NULL, "", NULL, NULL, 0));
    CU_ASSERT_PTR_NOT_NULL(tf_metrics_register(TF_METRIC_GAUGE, "ns:sub_g", "G.", NULL, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "tf_test_g1", "",
                                           (const char *[]){"__name", NULL}, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "tf_test_g2", "",
                                           (const char *[]){"a:b", NULL}, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "tf_test_g3", "",
                                           (const char *[]){"1a", NULL}, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_GAUGE, "tf_test_g4", "",
                                           (const char *[]){"a", "a", NULL}, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h2", "",
                                           (const char *[]){"le", NULL}, NULL, 0));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h3", "", NULL,
                                           (const double[]){2, 1}, 2));
    CU_ASSERT_PTR_NULL(tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h4", "", NULL,
                                           (const double[]){1, NAN}, 2));
    CU_ASSERT_PTR_NULL(tf_metrics_register((tf_metric_type)42, "tf_test_t", "", NULL, NULL, 0));
    tf_log_set_level(TF_LOG_INFO);

    char *text = render();
    CU_ASSERT_PTR_NULL(strstr(text, "tf_test_g1"));
    CU_ASSERT_PTR_NULL(strstr(text, "tf_test_events "));
    free(text);
    tf_metrics_shutdown();
}

static void test_label_escaping(void)
{
    tf_metrics_shutdown();
    static const char *const l[] = {"path", "host", NULL};
    tf_metric *g = tf_metrics_register(TF_METRIC_GAUGE, "tf_test_esc", "E.", l, NULL, 0);
    tf_metric_set(g, (const char *[]){"a\\b\"c\nd", "h"}, 1);
    tf_metric_set(g, (const char *[]){"", NULL}, 2); /* NULL value reads as "" */
    char *text = render();
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tf_test_esc{path=\"\",host=\"\"} 2\n"
                                        "tf_test_esc{path=\"a\\\\b\\\"c\\nd\",host=\"h\"} 1\n"));
    CU_ASSERT_TRUE(promtool_accepts(text));
    free(text);
    tf_metrics_shutdown();
}

static void test_number_format(void)
{
    tf_metrics_shutdown();
    static const char *const l[] = {"v", NULL};
    tf_metric *g = tf_metrics_register(TF_METRIC_GAUGE, "tf_test_num", "N.", l, NULL, 0);
    tf_metric_set(g, (const char *[]){"a_nan"}, NAN);
    tf_metric_set(g, (const char *[]){"b_pinf"}, INFINITY);
    tf_metric_set(g, (const char *[]){"c_ninf"}, -INFINITY);
    tf_metric_set(g, (const char *[]){"d_tenth"}, 0.1);
    tf_metric_set(g, (const char *[]){"e_third"}, 1.0 / 3.0);
    tf_metric_set(g, (const char *[]){"f_big_int"}, 9007199254740991.0);
    tf_metric_set(g, (const char *[]){"g_huge"}, 1e300);
    tf_metric_set(g, (const char *[]){"h_ms"}, 1732444262123.0);
    tf_metric_set(g, (const char *[]){"i_negzero"}, -0.0);
    tf_metric_set(g, (const char *[]){"j_tiny"}, 5e-324);
    char *text = render();
    assert_text(text, "# HELP tf_test_num N.\n"
                      "# TYPE tf_test_num gauge\n"
                      "tf_test_num{v=\"a_nan\"} NaN\n"
                      "tf_test_num{v=\"b_pinf\"} +Inf\n"
                      "tf_test_num{v=\"c_ninf\"} -Inf\n"
                      "tf_test_num{v=\"d_tenth\"} 0.1\n"
                      "tf_test_num{v=\"e_third\"} 0.3333333333333333\n"
                      "tf_test_num{v=\"f_big_int\"} 9007199254740991\n"
                      "tf_test_num{v=\"g_huge\"} 1e+300\n"
                      "tf_test_num{v=\"h_ms\"} 1732444262123\n"
                      "tf_test_num{v=\"i_negzero\"} 0\n"
                      "tf_test_num{v=\"j_tiny\"} 4.94065645841247e-324\n");
    CU_ASSERT_TRUE(promtool_accepts(text));
    free(text);
    tf_metrics_shutdown();
}

static void test_values_and_types(void)
{
    tf_metrics_shutdown();
    static const char *const l[] = {"k", NULL};
    tf_metric *c = tf_metrics_register(TF_METRIC_COUNTER, "tf_test_c_total", "C.", l, NULL, 0);
    tf_metric *g = tf_metrics_register(TF_METRIC_GAUGE, "tf_test_g", "G.", l, NULL, 0);
    tf_metric *h = tf_metrics_register(TF_METRIC_HISTOGRAM, "tf_test_h", "H.", l, NULL, 0);
    const char *const k1[] = {"one"};
    const char *const k2[] = {"two"};
    tf_metric_add(c, k1, 2);
    tf_metric_add(c, k1, -1);  /* counters never go down */
    tf_metric_add(c, k1, NAN); /* nor become NaN */
    tf_metric_set(c, k1, 100); /* set is for gauges */
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(c, k1), 2, 0);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(c, k2), 0, 0);
    tf_metric_set(g, k1, 5);
    tf_metric_add(g, k1, -7);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(g, k1), -2, 0);
    tf_metric_observe(h, k1, 0.3);
    tf_metric_observe(h, k1, NAN); /* dropped */
    tf_metric_observe(g, k1, 1);   /* not a histogram: no-op */
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(h, k1), 1, 0);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(g, k1), -2, 0);
    tf_metric_add(NULL, k1, 1);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(NULL, k1), 0, 0);
    char *text = render();
    CU_ASSERT_PTR_NULL(strstr(text, "k=\"two\"")); /* value lookups do not create series */
    free(text);
    tf_metrics_shutdown();
}

static void test_many_series(void)
{
    tf_metrics_shutdown();
    static const char *const l[] = {"pipeline", "plugin", NULL};
    tf_metric *c = tf_metrics_register(TF_METRIC_COUNTER, "tf_test_many_total", "M.", l, NULL, 0);
    enum { N = 5000 };
    char a[32];
    char b[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(a, sizeof a, "p%d", i % 97);
            snprintf(b, sizeof b, "x%d", i);
            tf_metric_add(c, (const char *[]){a, b}, i);
        }
    }
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, "p%d", i % 97);
        snprintf(b, sizeof b, "x%d", i);
        wrong += tf_metric_value(c, (const char *[]){a, b}) != 3.0 * i;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    /* ("p1","x2") and ("p1x","2") are different series. */
    tf_metric_add(c, (const char *[]){"ab", "c"}, 1);
    tf_metric_add(c, (const char *[]){"a", "bc"}, 5);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(c, (const char *[]){"ab", "c"}), 1, 0);
    char *text = render();
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, N + 2 + 2);
    /* Series are sorted by label values: stable output. */
    CU_ASSERT_TRUE(strstr(text, "{pipeline=\"a\",plugin=\"bc\"}") <
                   strstr(text, "{pipeline=\"ab\",plugin=\"c\"}"));
    free(text);
    tf_metrics_shutdown();
}

enum { THREADS = 4, ADDS = 20000 };

static void *adder(void *arg)
{
    tf_metric *c = arg;
    for (int i = 0; i < ADDS; i++) {
        tf_metric_add(c, (const char *[]){i % 2 ? "odd" : "even"}, 1);
        if (i % 1000 == 0)
            free(tf_metrics_render(NULL));
    }
    return NULL;
}

static void test_concurrent_updates(void)
{
    tf_metrics_shutdown();
    static const char *const l[] = {"parity", NULL};
    tf_metric *c = tf_metrics_register(TF_METRIC_COUNTER, "tf_test_conc_total", "C.", l, NULL, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, adder, c);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(c, (const char *[]){"odd"}), THREADS * ADDS / 2, 0);
    CU_ASSERT_DOUBLE_EQUAL(tf_metric_value(c, (const char *[]){"even"}), THREADS * ADDS / 2, 0);
    tf_metrics_shutdown();
}

static int suite_cleanup(void)
{
    tf_metrics_shutdown();
    tf_log_shutdown();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"render exact text", test_render_exact},
        {"unlabeled families start at zero", test_unlabeled_families_start_at_zero},
        {"registration rules", test_registration_rules},
        {"removed series", test_remove_series},
        {"label escaping", test_label_escaping},
        {"number format", test_number_format},
        {"values and types", test_values_and_types},
        {"many series", test_many_series},
        {"concurrent updates", test_concurrent_updates},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("metrics", tests, NULL, suite_cleanup);
}
