/* Plugin harness: see tf_plugin_harness.h. */
#include "tf_plugin_harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_http.h"
#include "tf_instance.h"
#include "tf_metrics.h"
#include "tf_record.h"
#include "tf_fake.h"
#include "tf_test.h"

struct tfh {
    tf_registry *reg;
    tf_config *cfg;
    tf_http *http;
    tf_instance *inst;
    const tf_stage_config *stage;
    atomic_bool stop;
    uint64_t seq;
    char *dir;
    uint64_t fence;
    char fence_key[256]; /* "" = none */
    tf_interest *interest;
};

/* A one-pipeline configuration with the plugin under test in its place and generate/stdout
 * filling the other roles a pipeline needs. */
static char *pipeline_yaml(const char *kind, const char *plugin, const char *with,
                           const char *runtime)
{
    char stage[4096];
    snprintf(stage, sizeof stage, "{use: %s%s%s}", plugin, with ? ", with: " : "",
             with ? with : "");
    bool src = strcmp(kind, "source") == 0, tr = strcmp(kind, "transform") == 0;
    bool sink = strcmp(kind, "sink") == 0;
    size_t size = 16384;
    char *yaml = malloc(size);
    if (!yaml)
        return NULL;
    snprintf(yaml, size,
             "%s"
             "pipelines:\n"
             "  - name: harness\n"
             "    every: 1s\n"
             "    lease: off\n"
             "    sources: [%s]\n"
             "    transforms: [%s]\n"
             "    sinks: [%s]\n",
             runtime ? runtime : "", src ? stage : "{use: generate}", tr ? stage : "",
             sink ? stage : "{use: stdout}");
    return yaml;
}

static int load(tfh *h, const char *kind, const char *plugin, const char *with, const char *runtime,
                tf_diag *diag)
{
    h->reg = tf_registry_create();
    h->dir = tft_mkdtemp();
    if (!h->reg || !h->dir)
        return -1;
    /* The build's plugin directory is the built-in one for binaries in <build>/tests. */
    tf_registry_load_dir(h->reg, tft_plugin_dir(), diag);
    char *yaml = pipeline_yaml(kind, plugin, with, runtime);
    char path[1024];
    snprintf(path, sizeof path, "%s/harness.yaml", h->dir);
    int rc = yaml ? tft_write_file(path, yaml) : -1;
    free(yaml);
    if (rc != 0)
        return -1;
    const char *paths[] = {path};
    size_t before = tf_diag_count(diag);
    rc = tf_config_load(paths, 1, h->reg, diag, &h->cfg);
    (void)before;
    return rc == TF_OK ? 0 : -1;
}

static const tf_stage_config *stage_of(const tf_pipeline_config *p, const char *kind)
{
    if (strcmp(kind, "source") == 0)
        return &p->sources[0];
    if (strcmp(kind, "transform") == 0)
        return &p->transforms[0];
    return &p->sinks[0];
}

tfh *tfh_open(const char *kind, const char *plugin, const char *with, const char *runtime)
{
    tfh *h = calloc(1, sizeof *h);
    tf_diag *diag = tf_diag_create();
    if (!h || !diag)
        goto fail;
    atomic_init(&h->stop, false);
    if (load(h, kind, plugin, with, runtime, diag) != 0) {
        fprintf(stderr, "tfh_open(%s %s): configuration rejected:\n", kind, plugin);
        tf_diag_print(diag, stderr);
        goto fail;
    }
    h->stage = stage_of(&h->cfg->pipelines[0], kind);
    h->http = tf_http_create(&h->cfg->http);
    if (!h->http)
        goto fail;
    h->interest = tf_interest_create();
    h->inst =
        tf_instance_create(h->stage, "harness", h->http, &h->cfg->redis, h->interest, &h->stop);
    if (!h->inst) {
        fprintf(stderr, "tfh_open(%s %s): init failed\n", kind, plugin);
        goto fail;
    }
    tf_diag_destroy(diag);
    return h;
fail:
    tf_diag_destroy(diag);
    tfh_close(h);
    return NULL;
}

bool tfh_rejects(const char *kind, const char *plugin, const char *with, char *msg, size_t msg_size)
{
    tfh h = {0};
    tf_diag *diag = tf_diag_create();
    bool rejected = load(&h, kind, plugin, with, NULL, diag) != 0;
    size_t used = 0;
    msg[0] = '\0';
    for (size_t i = 0; i < tf_diag_count(diag) && used < msg_size; i++) {
        int n = snprintf(msg + used, msg_size - used, "%s\n", tf_diag_message(diag, i));
        if (n < 0)
            break;
        used += (size_t)n;
    }
    tf_diag_destroy(diag);
    tf_config_destroy(h.cfg);
    tf_registry_destroy(h.reg);
    tft_rmdir(h.dir);
    free(h.dir);
    return rejected;
}

void tfh_close(tfh *h)
{
    if (!h)
        return;
    tf_instance_destroy(h->inst);
    tf_interest_destroy(h->interest);
    tf_http_destroy(h->http);
    tf_config_destroy(h->cfg);
    tf_registry_destroy(h->reg);
    tft_rmdir(h->dir);
    free(h->dir);
    free(h);
}

static tf_tick tick_of(tfh *h)
{
    h->seq++;
    return (tf_tick){.struct_size = sizeof(tf_tick),
                     .pipeline = "harness",
                     .seq = h->seq,
                     .scheduled_ms = tf_now_ms(),
                     .deadline_ms = tf_mono_ms() + 1000,
                     .fence = h->fence,
                     .fence_key = h->fence_key[0] ? h->fence_key : NULL,
                     .key_prefix = h->cfg->redis.prefix ? h->cfg->redis.prefix : "tf"};
}

int tfh_collect(tfh *h, tf_batch *out)
{
    tf_tick t = tick_of(h);
    return tf_instance_collect(h->inst, &t, out);
}

int tfh_process(tfh *h, tf_batch *batch)
{
    tf_tick t = tick_of(h);
    return tf_instance_process(h->inst, &t, batch);
}

int tfh_write(tfh *h, const tf_batch *batch)
{
    tf_tick t = tick_of(h);
    return tf_instance_write(h->inst, &t, batch);
}

void tfh_set_fence(tfh *h, uint64_t fence, const char *fence_key)
{
    h->fence = fence;
    snprintf(h->fence_key, sizeof h->fence_key, "%s", fence_key ? fence_key : "");
}

void tfh_set_interest(tfh *h, const char *const *symbols, size_t n)
{
    tf_host_table()->interest_set(h->inst, symbols, n);
}

json_t *tfh_interest(tfh *h)
{
    return tf_host_table()->interest_get(h->inst);
}

const tf_host *tfh_host(void)
{
    return tf_host_table();
}

tf_record *tfh_find(const tf_batch *b, const char *kind, const char *key, const char *value)
{
    for (size_t i = 0; i < tf_batch_count(b); i++) {
        tf_record *r = tf_batch_at(b, i);
        if (kind && strcmp(tf_record_kind(r), kind) != 0)
            continue;
        if (!key)
            return r;
        const char *v = tf_record_get_string(r, key);
        if (v && value && strcmp(v, value) == 0)
            return r;
    }
    return NULL;
}

double tfh_double(const tf_record *r, const char *field)
{
    double v;
    return r && tf_record_get_double(r, field, &v) == TF_OK ? v : NAN;
}

int64_t tfh_int(const tf_record *r, const char *field)
{
    int64_t v;
    return r && tf_record_get_int(r, field, &v) == TF_OK ? v : INT64_MIN;
}

const char *tfh_string(const tf_record *r, const char *field)
{
    return r ? tf_record_get_string(r, field) : NULL;
}

int tfh_collect_count(tfh *h, size_t *count)
{
    tf_batch *b = tf_batch_create();
    int rc = tfh_collect(h, b);
    *count = tf_batch_count(b);
    tf_batch_destroy(b);
    return rc;
}

double tfh_errors(const char *pipeline, const char *plugin, const char *cls)
{
    static const char *const labels[] = {"pipeline", "plugin", "class", NULL};
    tf_metric *m = tf_metrics_register(TF_METRIC_COUNTER, "tickflow_plugin_errors_total",
                                       "Errors reported by plugins, by class", labels, NULL, 0);
    const char *values[] = {pipeline, plugin, cls};
    return m ? tf_metric_value(m, values) : -1;
}

typedef struct recovery {
    tfh *h;
    size_t want;
} recovery;

static bool tick_recovered(void *arg)
{
    recovery *r = arg;
    size_t n = 0;
    return tfh_collect_count(r->h, &n) == TF_OK && n == r->want;
}

void tfh_check_live_fault(tfh *h, struct tft_fake *fake, const char *plugin, const char *endpoint,
                          const char *mode, int want, size_t records_after)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"endpoint\":\"%s\",\"mode\":\"%s\",\"retry_after\":1,\"delay_ms\":1500,"
             "\"count\":1}",
             endpoint, mode);
    tft_fake_post(fake, "/admin/fault", body);
    const char *cls = tf_status_name(want);
    double before = tfh_errors("harness", plugin, cls);
    size_t n = 99;
    int rc = tfh_collect_count(h, &n);
    if (rc != want)
        fprintf(stderr, "fault %s on %s: expected %s, found %s\n", mode, endpoint, cls,
                tf_status_name(rc));
    CU_ASSERT_EQUAL(rc, want);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_TRUE(tfh_errors("harness", plugin, cls) >= before + 1);
    /* After 429/418 the host stays blocked for Retry-After (1 s): recovery takes that long. */
    recovery r = {.h = h, .want = records_after};
    CU_ASSERT_TRUE(tft_wait_until(tick_recovered, &r, 5000));
}
