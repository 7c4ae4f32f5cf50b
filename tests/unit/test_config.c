/* Configuration loading: directories of files, runtime sections with their defaults, the
 * pipelines with their plugins' options, lease forms, and every cross-file problem, each at
 * its file:line:column with its path (files in tests/unit/config/). */
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_log.h"
#include "tf_options.h"
#include "tf_test.h"
#include "tf_test_plugins.h"

/* ---- test plugins, registered without dlopen ---- */

static int t_process(void *instance, const tf_tick *tick, tf_batch *batch)
{
    TF_UNUSED(instance);
    TF_UNUSED(tick);
    TF_UNUSED(batch);
    return TF_OK;
}

static const tf_option_def tsrc_options[] = {
    {"symbol", TF_OPT_STRING, "BTC", 0, "Symbol", 0, NULL},
    {"timeout", TF_OPT_DURATION, "1s", 0, "Timeout", 0, NULL},
    {"key", TF_OPT_SECRET, NULL, 0, "API key", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def treq_options[] = {
    {"url", TF_OPT_STRING, NULL, 1, "URL", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_plugin_descriptor tsrc = {
    TF_PLUGIN_HEADER,
    .name = "tsrc",
    .kind = TF_KIND_SOURCE,
    .description = "test",
    .version = "1",
    .options = tsrc_options,
    .init = tft_noop_init,
    .destroy = tft_noop_destroy,
    .collect = tft_noop_collect,
};
static const tf_plugin_descriptor treq = {
    TF_PLUGIN_HEADER,
    .name = "treq",
    .kind = TF_KIND_SOURCE,
    .description = "test",
    .version = "1",
    .options = treq_options,
    .init = tft_noop_init,
    .destroy = tft_noop_destroy,
    .collect = tft_noop_collect,
};
static const tf_plugin_descriptor tmid = {
    TF_PLUGIN_HEADER,     .name = "tmid",  .kind = TF_KIND_TRANSFORM, .description = "test",
    .version = "1",       .options = NULL, .init = tft_noop_init,     .destroy = tft_noop_destroy,
    .process = t_process,
};
static const tf_plugin_descriptor tsink = {
    TF_PLUGIN_HEADER,        .name = "tsink", .kind = TF_KIND_SINK,  .description = "test",
    .version = "1",          .options = NULL, .init = tft_noop_init, .destroy = tft_noop_destroy,
    .write = tft_noop_write,
};

static tf_registry *reg;
static char *tmp;
static char fixture[1024];

static int setup(void)
{
    setenv("TFT_REDIS_PASSWORD", "redis-pass-789", 1);
    reg = tf_registry_create();
    tf_diag *d = tf_diag_create();
    const tf_plugin_descriptor *all[] = {&tsrc, &treq, &tmid, &tsink};
    int rc = 0;
    for (size_t i = 0; i < TF_ARRAY_LEN(all); i++)
        rc |= tf_registry_add(reg, all[i], "(test)", d);
    if (tf_diag_count(d))
        tf_diag_print(d, stderr);
    tf_diag_destroy(d);
    tmp = tft_mkdtemp();
    return rc == 0 && tmp ? 0 : -1;
}

static int teardown(void)
{
    tf_registry_destroy(reg);
    tft_rmdir(tmp);
    free(tmp);
    tf_log_shutdown();
    return 0;
}

static const char *config_path(const char *name)
{
    snprintf(fixture, sizeof fixture, "%s/%s", tft_source_path("tests/unit/config"), name);
    return fixture;
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

/* Loads one path; on success returns the config, else NULL with `d` filled. */
static tf_config *load1(const char *path, tf_diag *d)
{
    tf_config *cfg = NULL;
    const char *paths[] = {path};
    int rc = tf_config_load(paths, 1, reg, d, &cfg);
    CU_ASSERT_EQUAL(rc == TF_OK, cfg != NULL);
    CU_ASSERT_EQUAL(rc == TF_OK, tf_diag_count(d) == 0);
    return cfg;
}

/* Writes `yaml` to a temp file and loads it. */
static tf_config *load_text(const char *name, const char *yaml, tf_diag *d)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    tft_write_file(path, yaml);
    return load1(path, d);
}

static const tf_http_host_limit *find_host(const tf_config *cfg, const char *host)
{
    for (size_t i = 0; i < cfg->http.n_hosts; i++) {
        if (strcmp(cfg->http.hosts[i].host, host) == 0)
            return &cfg->http.hosts[i];
    }
    return NULL;
}

static void test_directory_of_two_files(void)
{
    tf_diag *d = tf_diag_create();
    tf_config *cfg = load1(config_path("dir_good"), d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);

    CU_ASSERT_TRUE(cfg->redis.configured);
    CU_ASSERT_STRING_EQUAL(cfg->redis.url, "redis://127.0.0.1:6390/2");
    CU_ASSERT_STRING_EQUAL(cfg->redis.host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->redis.port, 6390);
    CU_ASSERT_EQUAL(cfg->redis.db, 2);
    CU_ASSERT_PTR_NULL(cfg->redis.user);
    CU_ASSERT_STRING_EQUAL(cfg->redis.password, "redis-pass-789");
    CU_ASSERT_STRING_EQUAL(cfg->redis.prefix, "tft");
    CU_ASSERT_EQUAL(cfg->redis.connect_timeout_ms, 500);
    CU_ASSERT_EQUAL(cfg->redis.command_timeout_ms, 1000);

    CU_ASSERT_EQUAL(cfg->http.timeout_ms, 5000);
    CU_ASSERT_EQUAL(cfg->http.connect_timeout_ms, 3000);
    CU_ASSERT_STRING_EQUAL(cfg->http.user_agent, "tickflow/" TF_VERSION_STRING);
    CU_ASSERT_EQUAL(cfg->http.max_body_bytes, 8388608);
    CU_ASSERT_EQUAL(cfg->http.breaker_failures, 5);
    CU_ASSERT_EQUAL(cfg->http.breaker_base_ms, 1000);
    CU_ASSERT_EQUAL(cfg->http.breaker_max_ms, 60000);
    CU_ASSERT_EQUAL(cfg->http.retry_after_max_ms, 300000);
    /* Written hosts override the built-in entry of the same name; others stay. */
    CU_ASSERT_EQUAL(cfg->http.n_hosts, 3);
    const tf_http_host_limit *bithumb = find_host(cfg, "api.bithumb.com");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bithumb);
    CU_ASSERT_DOUBLE_EQUAL(bithumb->rate, 5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(bithumb->burst, 2, 1e-9);
    const tf_http_host_limit *local = find_host(cfg, "127.0.0.1:8080");
    CU_ASSERT_PTR_NOT_NULL_FATAL(local);
    CU_ASSERT_DOUBLE_EQUAL(local->rate, 100, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(local->burst, 100, 1e-9);
    const tf_http_host_limit *binance = find_host(cfg, "fapi.binance.com");
    CU_ASSERT_PTR_NOT_NULL_FATAL(binance);
    CU_ASSERT_DOUBLE_EQUAL(binance->rate, 20, 1e-9);

    CU_ASSERT_EQUAL(cfg->log.level, TF_LOG_DEBUG);
    CU_ASSERT_TRUE(cfg->log.json);
    CU_ASSERT_STRING_EQUAL(cfg->metrics.listen, "127.0.0.1:0");

    CU_ASSERT_EQUAL_FATAL(cfg->n_pipelines, 3);
    const tf_pipeline_config *a = &cfg->pipelines[0];
    CU_ASSERT_STRING_EQUAL(a->name, "alpha");
    CU_ASSERT_PTR_NOT_NULL(strstr(a->file, "dir_good/20-pipelines.yaml"));
    CU_ASSERT_EQUAL(a->line, 2);
    CU_ASSERT_EQUAL(a->every_ms, 250);
    CU_ASSERT_TRUE(a->lease); /* on by default with redis: */
    CU_ASSERT_EQUAL(a->lease_ttl_ms, 2000);
    CU_ASSERT_EQUAL_FATAL(a->n_sources, 1);
    CU_ASSERT_STRING_EQUAL(a->sources[0].plugin->desc->name, "tsrc");
    CU_ASSERT_STRING_EQUAL(a->sources[0].path, "pipelines[0].sources[0]");
    CU_ASSERT_STRING_EQUAL(tf_options_string(a->sources[0].options, "symbol"), "ETH");
    CU_ASSERT_EQUAL(tf_options_duration_ms(a->sources[0].options, "timeout"), 2000);
    CU_ASSERT_EQUAL_FATAL(a->n_transforms, 1);
    CU_ASSERT_STRING_EQUAL(a->transforms[0].plugin->desc->name, "tmid");
    CU_ASSERT_EQUAL_FATAL(a->n_sinks, 1);
    CU_ASSERT_STRING_EQUAL(a->sinks[0].plugin->desc->name, "tsink");
    CU_ASSERT_PTR_NOT_NULL(a->sinks[0].options);

    const tf_pipeline_config *b = &cfg->pipelines[1];
    CU_ASSERT_STRING_EQUAL(b->name, "beta");
    CU_ASSERT_FALSE(b->lease);
    CU_ASSERT_EQUAL(b->n_transforms, 0);
    CU_ASSERT_EQUAL_FATAL(b->n_sources, 1); /* `sources: tsrc` is a one-item list */
    CU_ASSERT_STRING_EQUAL(b->sources[0].path, "pipelines[1].sources");
    CU_ASSERT_STRING_EQUAL(tf_options_string(b->sources[0].options, "symbol"), "BTC");
    const tf_pipeline_config *g = &cfg->pipelines[2];
    CU_ASSERT_TRUE(g->lease);
    CU_ASSERT_EQUAL(g->lease_ttl_ms, 5000);
    CU_ASSERT_EQUAL(g->every_ms, 10);
    CU_ASSERT_STRING_EQUAL(tf_options_string(g->sources[0].options, "url"), "http://127.0.0.1:1/x");
    tf_config_destroy(cfg);
    tf_diag_destroy(d);
}

static void test_defaults_without_runtime_sections(void)
{
    tf_diag *d = tf_diag_create();
    tf_config *cfg = load_text("minimal.yaml",
                               "pipelines:\n"
                               "  - name: m\n"
                               "    every: 1s\n"
                               "    sources: [tsrc]\n"
                               "    sinks: [tsink]\n",
                               d);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_FALSE(cfg->redis.configured);
    CU_ASSERT_STRING_EQUAL(cfg->redis.prefix, "tf");
    CU_ASSERT_EQUAL(cfg->redis.connect_timeout_ms, 500);
    CU_ASSERT_EQUAL(cfg->http.timeout_ms, 10000);
    CU_ASSERT_EQUAL(cfg->http.n_hosts, 2);
    const tf_http_host_limit *bithumb = find_host(cfg, "api.bithumb.com");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bithumb);
    CU_ASSERT_DOUBLE_EQUAL(bithumb->rate, 15, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(bithumb->burst, 15, 1e-9);
    CU_ASSERT_EQUAL(cfg->log.level, TF_LOG_INFO);
    CU_ASSERT_FALSE(cfg->log.json);
    CU_ASSERT_PTR_NULL(cfg->metrics.listen);
    CU_ASSERT_FALSE(cfg->pipelines[0].lease); /* no redis: no lease */
    tf_config_destroy(cfg);
    tf_diag_destroy(d);
}

static void test_duplicates_across_files(void)
{
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load1(config_path("dir_dup"), d));
    char needle[2048];
    snprintf(needle, sizeof needle,
             "dir_dup/b.yml:1:1: redis: the redis: section is already defined in %s/a.yaml:1:1; "
             "each runtime section may appear in one file only",
             config_path("dir_dup"));
    CU_ASSERT(has_diag(d, needle));
    snprintf(needle, sizeof needle,
             "dir_dup/b.yml:9:11: pipelines[1].name: pipeline name 'same' is already used at "
             "%s/a.yaml:4:11",
             config_path("dir_dup"));
    CU_ASSERT(has_diag(d, needle));
    CU_ASSERT_EQUAL(tf_diag_count(d), 2);
    tf_diag_destroy(d);
}

static void test_unknown_top_level_key(void)
{
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load1(config_path("bad_top.yaml"), d));
    CU_ASSERT(has_diag(d, "bad_top.yaml:2:1: pipeline: unknown key 'pipeline' in the top level; "
                          "did you mean 'pipelines'?"));
    CU_ASSERT(has_diag(d, "bad_top.yaml: pipelines: expected at least one pipeline"));
    CU_ASSERT_EQUAL(tf_diag_count(d), 2);
    tf_diag_destroy(d);

    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load_text("list.yaml", "- a\n- b\n", d));
    CU_ASSERT(has_diag(d, "list.yaml:1:1: expected a mapping with keys such as pipelines: and "
                          "redis:; found a list"));
    tf_diag_destroy(d);

    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load_text("frob.yaml", "frobnicate: 1\npipelines: []\n", d));
    CU_ASSERT(has_diag(d, "frob.yaml:1:1: frobnicate: unknown key 'frobnicate' in the top level; "
                          "expected one of: redis, http, log, metrics, pipelines"));
    CU_ASSERT(has_diag(d, "frob.yaml:2:12: pipelines: expected a non-empty list of pipelines "
                          "(- name: ...); found an empty list"));
    tf_diag_destroy(d);
}

static void test_runtime_section_errors(void)
{
    static const char *const expected[] = {
        "bad_runtime.yaml:2:8: redis.url: credentials in the URL are not allowed: set "
        "redis.user and redis.password from ${VAR} or ${file:/path} instead",
        "bad_runtime.yaml:3:3: redis.pasword: unknown option 'pasword' for redis; did you mean "
        "'password'?",
        "bad_runtime.yaml:4:9: redis.user: a secret must come from ${VAR} or ${file:/path}",
        "bad_runtime.yaml:6:13: http.max_body: expected a size in bytes above 0; found 0",
        "bad_runtime.yaml:8:16: http.breaker_max: expected breaker_max to be at least "
        "breaker_base (10000ms); found 5000ms",
        "bad_runtime.yaml:10:29: http.hosts.api.example.com.rate: expected a rate above 0 "
        "requests per second; found 0",
        "bad_runtime.yaml:11:21: http.hosts.https://bad/: expected a host such as "
        "api.bithumb.com or 127.0.0.1:8080; found \"https://bad/\"",
        "bad_runtime.yaml:13:10: log.level: expected one of error, warn, info, debug, trace; "
        "found \"verbose\"",
        "bad_runtime.yaml:14:11: log.format: expected text or json; found \"xml\"",
        "bad_runtime.yaml:16:11: metrics.listen: expected host:port such as 127.0.0.1:9464",
    };
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load1(config_path("bad_runtime.yaml"), d));
    for (size_t i = 0; i < TF_ARRAY_LEN(expected); i++)
        CU_ASSERT(has_diag(d, expected[i]));
    CU_ASSERT_EQUAL(tf_diag_count(d), TF_ARRAY_LEN(expected));
    for (size_t i = 0; i < tf_diag_count(d); i++)
        CU_ASSERT_PTR_NULL(strstr(tf_diag_message(d, i), "hunter2"));
    tf_diag_destroy(d);
}

static void test_redis_urls(void)
{
    static const struct {
        const char *url;
        const char *host;
        int port, db;
    } good[] = {
        {"redis://", "127.0.0.1", 6379, 0},
        {"redis://db.internal", "db.internal", 6379, 0},
        {"redis://:6400", "127.0.0.1", 6400, 0},
        {"redis://h:1/15", "h", 1, 15},
        {"redis://h/", "h", 6379, 0},
        {"redis://[::1]:7000/3", "::1", 7000, 3},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(good); i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "redis: {url: \"%s\"}\npipelines: [{name: p, every: 1s, sources: tsrc, sinks: "
                 "tsink}]\n",
                 good[i].url);
        tf_diag *d = tf_diag_create();
        tf_config *cfg = load_text("url.yaml", yaml, d);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
        CU_ASSERT_STRING_EQUAL(cfg->redis.host, good[i].host);
        CU_ASSERT_EQUAL(cfg->redis.port, good[i].port);
        CU_ASSERT_EQUAL(cfg->redis.db, good[i].db);
        tf_config_destroy(cfg);
        tf_diag_destroy(d);
    }
    static const struct {
        const char *url;
        const char *why;
    } bad[] = {
        {"http://h:6379", "expected a URL such as redis://127.0.0.1:6379/0; found \"http://h"},
        {"rediss://h", "(TLS is not supported)"},
        {"redis://h:0", "expected a port between 1 and 65535"},
        {"redis://h:70000", "expected a port between 1 and 65535"},
        {"redis://h:x", "expected a port between 1 and 65535"},
        {"redis://h/db", "expected a database number after /"},
        {"redis://h/1?x=y", "expected a database number after /"},
        {"redis://[::1", "expected ] after the IPv6 address"},
        {"redis://:secret@h", "credentials in the URL are not allowed"},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(bad); i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml,
                 "redis: {url: \"%s\"}\npipelines: [{name: p, every: 1s, sources: tsrc, sinks: "
                 "tsink}]\n",
                 bad[i].url);
        tf_diag *d = tf_diag_create();
        CU_ASSERT_PTR_NULL(load_text("url.yaml", yaml, d));
        CU_ASSERT(has_diag(d, "url.yaml:1:14: redis.url: "));
        CU_ASSERT(has_diag(d, bad[i].why));
        tf_diag_destroy(d);
    }
}

static void test_pipeline_errors(void)
{
    static const char *const expected[] = {
        "bad_pipelines.yaml:2:11: pipelines[0].name: expected a name of 1 to 64 characters "
        "among a-z, 0-9, _ and -; found \"Bad Name\"",
        "bad_pipelines.yaml:3:12: pipelines[0].every: expected a period of at least 10ms; found "
        "5ms",
        "bad_pipelines.yaml:6:25: pipelines[0].sources[0].with.timeout: expected a duration such "
        "as 500ms, 1s, 10m; found \"soon\"",
        "bad_pipelines.yaml:6:31: pipelines[0].sources[0].with.symbl: unknown option 'symbl' for "
        "source 'tsrc'; did you mean 'symbol'?",
        "bad_pipelines.yaml:7:14: pipelines[0].sources[1].use: unknown source plugin "
        "'nosuchsource'; available sources: treq, tsrc",
        "bad_pipelines.yaml:8:14: pipelines[0].sources[2].use: 'tsink' is a sink plugin, not a "
        "source: list it under sinks:",
        "bad_pipelines.yaml:9:9: pipelines[0].sources[3].use: missing required key 'use'",
        "bad_pipelines.yaml:10:21: pipelines[0].sources[4].wiht: unknown key 'wiht' in a source "
        "entry; did you mean 'with'?",
        "bad_pipelines.yaml:11:9: pipelines[0].sources[5].with.url: missing required option "
        "'url' for source 'treq'",
        "bad_pipelines.yaml:12:12: pipelines[0].sinks: expected at least one sink; found an "
        "empty list",
        "bad_pipelines.yaml:13:18: pipelines[0].lease.ttl: expected a lease ttl of at least "
        "100ms; found 50ms",
        "bad_pipelines.yaml:13:12: pipelines[0].lease: a lease lives in Redis, and no redis: "
        "section is configured: add one, or set lease: off",
        "bad_pipelines.yaml:14:5: pipelines[0].color: unknown key 'color' in a pipeline; "
        "expected one of: name, every, lease, sources, transforms, sinks",
        "bad_pipelines.yaml:15:5: pipelines[1].name: missing required key 'name'",
        "bad_pipelines.yaml:16:12: pipelines[1].lease: expected on, off, true, false or {ttl: "
        "2s}; found \"maybe\"",
        "bad_pipelines.yaml:18:13: pipelines[1].sinks[0].use: 'tsrc' is a source plugin, not a "
        "sink: list it under sources:",
        "bad_pipelines.yaml:21:12: pipelines[2].lease: a lease lives in Redis",
        "bad_pipelines.yaml:23:13: pipelines[2].sinks[0].use: unknown sink plugin 'tsnk'; did you "
        "mean 'tsink'? (available: tsink)",
    };
    tf_diag *d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load1(config_path("bad_pipelines.yaml"), d));
    for (size_t i = 0; i < TF_ARRAY_LEN(expected); i++)
        CU_ASSERT(has_diag(d, expected[i]));
    CU_ASSERT_EQUAL(tf_diag_count(d), TF_ARRAY_LEN(expected));
    tf_diag_destroy(d);
}

/* Lease forms, with and without a redis: section. */
static void test_lease_forms(void)
{
    static const struct {
        bool redis;
        const char *lease; /* NULL: no lease key */
        bool ok;
        bool on;
        int64_t ttl;
    } cases[] = {
        {true, NULL, true, true, 2000},     {true, "off", true, false, 2000},
        {true, "false", true, false, 2000}, {true, "on", true, true, 2000},
        {true, "true", true, true, 2000},   {true, "{ttl: 5s}", true, true, 5000},
        {true, "{}", true, true, 2000},     {false, NULL, true, false, 2000},
        {false, "off", true, false, 2000},  {false, "false", true, false, 2000},
        {false, "on", false, false, 0},     {false, "{ttl: 1s}", false, false, 0},
        {true, "[on]", false, false, 0},    {true, "{ttl: 1s, tll: 2s}", false, false, 0},
    };
    for (size_t i = 0; i < TF_ARRAY_LEN(cases); i++) {
        char yaml[512], lease[64] = "";
        if (cases[i].lease)
            snprintf(lease, sizeof lease, "    lease: %s\n", cases[i].lease);
        snprintf(yaml, sizeof yaml,
                 "%spipelines:\n  - name: p\n    every: 1s\n%s    sources: tsrc\n    sinks: "
                 "tsink\n",
                 cases[i].redis ? "redis: {url: redis://127.0.0.1}\n" : "", lease);
        tf_diag *d = tf_diag_create();
        tf_config *cfg = load_text("lease.yaml", yaml, d);
        if ((cfg != NULL) != cases[i].ok) {
            fprintf(stderr, "\ncase %zu:\n%s", i, yaml);
            tf_diag_print(d, stderr);
        }
        CU_ASSERT_EQUAL(cfg != NULL, cases[i].ok);
        if (cfg) {
            CU_ASSERT_EQUAL(cfg->pipelines[0].lease, cases[i].on);
            CU_ASSERT_EQUAL(cfg->pipelines[0].lease_ttl_ms, cases[i].ttl);
        } else {
            char needle[64];
            snprintf(needle, sizeof needle, "lease.yaml:%d:", cases[i].redis ? 5 : 4);
            CU_ASSERT(has_diag(d, needle));
            CU_ASSERT(has_diag(d, "pipelines[0].lease"));
        }
        tf_config_destroy(cfg);
        tf_diag_destroy(d);
    }
}

static void test_paths_and_files(void)
{
    tf_diag *d = tf_diag_create();
    tf_config *cfg = NULL;
    CU_ASSERT_EQUAL(tf_config_load(NULL, 0, reg, d, &cfg), TF_EINVAL);
    CU_ASSERT(has_diag(d, "expected a configuration file or directory"));
    tf_diag_destroy(d);

    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load1("/nonexistent/tickflow.yaml", d));
    CU_ASSERT(has_diag(d, "/nonexistent/tickflow.yaml: cannot read the file"));
    tf_diag_destroy(d);

    char empty[1100];
    snprintf(empty, sizeof empty, "%s/emptydir", tmp);
    char *mk = NULL;
    CU_ASSERT(asprintf(&mk, "mkdir -p '%s'", empty) > 0);
    CU_ASSERT_EQUAL(system(mk), 0);
    free(mk);
    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load1(empty, d));
    CU_ASSERT(has_diag(d, "emptydir: expected *.yaml or *.yml files in this directory"));
    tf_diag_destroy(d);

    /* Several paths: a file and a directory; the syntax error in one does not hide the other
     * file's problems. */
    char broken[1100];
    snprintf(broken, sizeof broken, "%s/broken.yaml", tmp);
    tft_write_file(broken, "pipelines: [\n");
    d = tf_diag_create();
    const char *paths[] = {broken, config_path("bad_top.yaml")};
    CU_ASSERT_EQUAL(tf_config_load(paths, 2, reg, d, &cfg), TF_EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT(has_diag(d, "broken.yaml:2:1: invalid YAML"));
    CU_ASSERT(has_diag(d, "bad_top.yaml:2:1: pipeline: unknown key"));
    tf_diag_destroy(d);

    /* An interpolation failure is reported once, at its place, and nothing else about it. */
    unsetenv("TFT_NOT_SET");
    d = tf_diag_create();
    CU_ASSERT_PTR_NULL(load_text("env.yaml",
                                 "pipelines:\n  - name: p\n    every: ${TFT_NOT_SET}\n"
                                 "    sources: tsrc\n    sinks: tsink\n",
                                 d));
    CU_ASSERT(has_diag(d, "env.yaml:3:12: pipelines[0].every: environment variable TFT_NOT_SET "
                          "is not set"));
    CU_ASSERT_EQUAL(tf_diag_count(d), 1);
    tf_diag_destroy(d);
}

static void test_option_tables_are_consistent(void)
{
    /* Each runtime table validates its own defaults: defaults-only options build cleanly. */
    const tf_option_def *tables[] = {tf_config_http_options, tf_config_log_options,
                                     tf_config_metrics_options};
    for (size_t i = 0; i < TF_ARRAY_LEN(tables); i++) {
        tf_diag *d = tf_diag_create();
        tf_options *o = tf_options_defaults(tables[i], "t", d);
        CU_ASSERT_PTR_NOT_NULL(o);
        tf_options_destroy(o);
        tf_diag_destroy(d);
    }
    CU_ASSERT_STRING_EQUAL(tf_config_redis_options[0].name, "url");
    CU_ASSERT(tf_config_redis_options[0].required);
    size_t n = 0;
    while (tf_config_pipeline_options[n].name)
        n++;
    CU_ASSERT_EQUAL(n, 6);
}

/* tf_diag: "file:line:col: path: message" with unknown parts left out, in insertion order. */
static void test_diag_format(void)
{
    tf_diag *d = tf_diag_create();
    tf_diag_add(d, "a.yaml", 7, 15, "pipelines[0].every", "bad %s", "value");
    tf_diag_add(d, "a.yaml", 7, 0, NULL, "no column");
    tf_diag_add(d, "a.yaml", 0, 0, "", "no line");
    tf_diag_add(d, NULL, 3, 4, "redis.url", "no file");
    tf_diag_add(d, NULL, 0, 0, NULL, "bare");
    tf_diag_add(NULL, "x", 1, 1, NULL, "ignored");
    CU_ASSERT_EQUAL_FATAL(tf_diag_count(d), 5);
    CU_ASSERT_STRING_EQUAL(tf_diag_message(d, 0), "a.yaml:7:15: pipelines[0].every: bad value");
    CU_ASSERT_STRING_EQUAL(tf_diag_message(d, 1), "a.yaml:7: no column");
    CU_ASSERT_STRING_EQUAL(tf_diag_message(d, 2), "a.yaml: no line");
    CU_ASSERT_STRING_EQUAL(tf_diag_message(d, 3), "redis.url: no file");
    CU_ASSERT_STRING_EQUAL(tf_diag_message(d, 4), "bare");
    CU_ASSERT_PTR_NULL(tf_diag_message(d, 5));
    CU_ASSERT_EQUAL(tf_diag_count(NULL), 0);
    char path[1100];
    snprintf(path, sizeof path, "%s/diag.txt", tmp);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    tf_diag_print(d, f);
    fclose(f);
    char *text = tft_read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_STRING_EQUAL(text, "error: a.yaml:7:15: pipelines[0].every: bad value\n"
                                 "error: a.yaml:7: no column\n"
                                 "error: a.yaml: no line\n"
                                 "error: redis.url: no file\n"
                                 "error: bare\n");
    free(text);
    tf_diag_destroy(d);
    tf_diag_destroy(NULL);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"a directory of two files", test_directory_of_two_files},
        {"defaults without runtime sections", test_defaults_without_runtime_sections},
        {"duplicates across files", test_duplicates_across_files},
        {"unknown top-level keys", test_unknown_top_level_key},
        {"runtime section errors", test_runtime_section_errors},
        {"redis URLs", test_redis_urls},
        {"pipeline errors", test_pipeline_errors},
        {"lease forms", test_lease_forms},
        {"paths and files", test_paths_and_files},
        {"option tables", test_option_tables_are_consistent},
        {"diagnostic format and order", test_diag_format},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("config", tests, setup, teardown);
}
