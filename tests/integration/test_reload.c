/*
 * Reload without a gap, in a real runtime process against a real Redis: a storm of SIGHUPs
 * (the same file, then a change to another pipeline each time, with comments and pipeline
 * order changing too) leaves an unchanged leased pipeline alone: its lease is never released
 * (same fencing token, same holder token), its tick sequence never starts over and the gap
 * between its writes stays within its period plus a margin. The changed pipeline restarts and
 * picks up each change; a reload that removes a pipeline stops it and releases its lease, one
 * that adds a pipeline starts it; /metrics counts what the reloads did. The longest gap is
 * printed (docs/scheduling-and-leases.md quotes it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tf_proc.h"
#include "tf_test.h"

#define PERIOD_MS 100
/* Scheduling jitter of a loaded CI machine (ASan, six test processes on two cores). A restart
 * costs much more than this: the lease is released and acquired again, instances destroyed and
 * created. */
#define GAP_MARGIN_MS 250
#define STORM_HUPS    50
#define STORM_MS      5000

static char *dir;
static char prefix[64];
static char cfg_path[1024];
static int metrics_port;

/* What the configuration file holds. `version` is a field of `other`'s records; `comment` and
 * `other_first` change the text without changing any pipeline. */
typedef struct shape {
    bool other, third, other_first;
    int version, comment;
    int other_api_port; /* other also serves the HTTP API on this port (0: not) */
} shape;

static void pipeline_yaml(char *out, size_t size, const char *name, const char *symbol,
                          const char *ttl, int version)
{
    snprintf(out, size,
             "  - name: %s\n"
             "    every: %dms\n"
             "    lease: {ttl: %s}\n"
             "    sources:\n"
             "      - use: generate\n"
             "        with:\n"
             "          kind: ticker\n"
             "          fields: {exchange: demo, symbol: %s, quote: USDT, version: %d}\n"
             "          walk_field: last\n"
             "    sinks:\n"
             "      - use: redis\n"
             "        with: {history_max: 0}\n"
             "      - use: stdout\n"
             "        with: {meta: true}\n",
             name, PERIOD_MS, ttl, symbol, version);
}

static void write_config(const shape *s)
{
    char steady[768], other[1024] = "", third[768] = "", yaml[4096];
    pipeline_yaml(steady, sizeof steady, "steady", "STEADY", "1s", 1);
    /* other's lease outlives the test: its key can only go away by being released */
    if (s->other)
        pipeline_yaml(other, sizeof other, "other", "OTHER", "60s", s->version);
    if (s->other && s->other_api_port) {
        size_t len = strlen(other);
        snprintf(other + len, sizeof other - len,
                 "      - use: http_api\n"
                 "        with: {listen: \"127.0.0.1:%d\"}\n",
                 s->other_api_port);
    }
    if (s->third)
        pipeline_yaml(third, sizeof third, "third", "THIRD", "1s", 1);
    snprintf(yaml, sizeof yaml,
             "# revision %d\n"
             "redis:\n"
             "  url: redis://127.0.0.1:%d/0\n"
             "  prefix: %s\n"
             "metrics: {listen: \"127.0.0.1:%d\"}\n"
             "pipelines:\n"
             "%s%s%s",
             s->comment, tft_shared_redis_port(), prefix, metrics_port,
             s->other_first ? other : steady, s->other_first ? steady : other, third);
    CU_ASSERT_FATAL(tft_write_file(cfg_path, yaml) == 0);
}

/* GET <prefix>:<what>:<pipeline> as a string ("" when absent). */
static void lease_get(const char *what, const char *pipeline, char *out, size_t size)
{
    out[0] = '\0';
    redisReply *r = tft_redis_cmd(tft_shared_redis_port(), "GET %s:%s:%s", prefix, what, pipeline);
    if (r && r->type == REDIS_REPLY_STRING)
        snprintf(out, size, "%s", r->str);
    if (r)
        freeReplyObject(r);
}

/* An integer field of the cached ticker of `symbol` (-1 when absent). */
static long long cached_field(const char *symbol, const char *field)
{
    long long v = -1;
    redisReply *r = tft_redis_cmd(tft_shared_redis_port(), "GET %s:ticker:demo:%s", prefix, symbol);
    if (r && r->type == REDIS_REPLY_STRING) {
        json_t *j = json_loads(r->str, 0, NULL);
        json_t *f = json_object_get(j, field);
        if (json_is_integer(f))
            v = json_integer_value(f);
        json_decref(j);
    }
    if (r)
        freeReplyObject(r);
    return v;
}

typedef struct watch {
    const tfp_proc *p;
    const char *needle;
    int times;
} watch;

static bool log_has(void *arg)
{
    const watch *w = arg;
    return tfp_log_count(w->p, w->needle) >= w->times;
}

typedef struct version_wait {
    const char *symbol;
    long long version;
} version_wait;

static bool cached_version_is(void *arg)
{
    const version_wait *v = arg;
    return cached_field(v->symbol, "version") == v->version;
}

static bool lease_gone(void *arg)
{
    char token[256];
    lease_get("lease", (const char *)arg, token, sizeof token);
    return token[0] == '\0';
}

static bool lease_held(void *arg)
{
    return !lease_gone(arg);
}

/* SIGHUPs spread over STORM_MS, each sent once the previous reload has been applied (signals
 * of one kind coalesce while pending, and every one must be a reload). `change` rewrites the
 * file before each one (NULL: the same file every time). */
static void storm(const tfp_proc *p, void (*change)(int i))
{
    const char *done = "configuration in effect";
    int base = tfp_log_count(p, done);
    long long start = tft_mono_ms();
    for (int i = 0; i < STORM_HUPS; i++) {
        long long at = start + (long long)i * STORM_MS / STORM_HUPS;
        while (tft_mono_ms() < at)
            tft_sleep_ms(5); /* pacing the storm */
        if (change)
            change(i);
        CU_ASSERT_FATAL(kill(p->pid, SIGHUP) == 0);
        watch w = {p, done, base + i + 1};
        CU_ASSERT_FATAL(tft_wait_until(log_has, &w, 10000));
    }
}

static void change_other(int i)
{
    shape s = {.other = true, .other_first = i % 2 == 0, .version = 100 + i, .comment = i};
    write_config(&s);
}

typedef struct gaps {
    long long longest_ms; /* between consecutive writes of `steady` from `since` on */
    size_t writes;        /* from `since` on */
    size_t restarts, fences;
} gaps;

/* Wall-clock ms, the clock of the records' `ts`. */
static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Walks steady's stdout records (one per tick, written by the same tick as its Redis write);
 * gaps count from `since_wall_ms` (the first ticks, which connect to Redis, come before). */
static gaps steady_gaps(const tfp_proc *p, long long since_wall_ms)
{
    gaps g = {0};
    json_t *recs = tfp_records(p);
    long long last_ts = -1, last_tick = -1, last_fence = -1;
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        const char *name = json_string_value(json_object_get(r, "_pipeline"));
        if (!name || strcmp(name, "steady") != 0)
            continue;
        long long ts = json_integer_value(json_object_get(r, "ts"));
        long long tick = json_integer_value(json_object_get(r, "_tick"));
        long long fence = json_integer_value(json_object_get(r, "_fence"));
        if (last_ts >= since_wall_ms && ts - last_ts > g.longest_ms)
            g.longest_ms = ts - last_ts;
        if (ts >= since_wall_ms)
            g.writes++;
        if (last_tick >= 0 && tick != last_tick + 1)
            g.restarts++; /* a new instance numbers its ticks from 1 again */
        if (fence != last_fence)
            g.fences++;
        last_ts = ts;
        last_tick = tick;
        last_fence = fence;
    }
    json_decref(recs);
    return g;
}

/* True when /metrics holds every line of `lines` (each missing one is printed). */
static bool metrics_have(const char *const *lines, size_t n)
{
    char url[64], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", metrics_port);
    bool all = tft_http_get(url, NULL, 5000, &body) == 200;
    for (size_t i = 0; all && i < n; i++) {
        if (!strstr(body, lines[i])) {
            fprintf(stderr, "\n/metrics lacks %s\n", lines[i]);
            all = false;
        }
    }
    free(body);
    return all;
}

static void test_reload_storm_leaves_unchanged_pipelines_alone(void)
{
    shape initial = {.other = true, .version = 1};
    write_config(&initial);
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "reload", cfg_path));
    version_wait steady_up = {"STEADY", 1}, other_up = {"OTHER", 1};
    CU_ASSERT_FATAL(tft_wait_until(cached_version_is, &steady_up, 15000));
    CU_ASSERT_FATAL(tft_wait_until(cached_version_is, &other_up, 15000));
    char fence[64], token[256], other_fence[64];
    lease_get("fence", "steady", fence, sizeof fence);
    lease_get("lease", "steady", token, sizeof token);
    lease_get("fence", "other", other_fence, sizeof other_fence);
    CU_ASSERT_FATAL(fence[0] && token[0] && other_fence[0]);

    /* 1. The same file 50 times: nothing restarts. */
    long long storm_start = wall_ms();
    storm(&p, NULL);
    CU_ASSERT_EQUAL(tfp_log_count(&p, "reload: 0 pipeline(s) restarted, 2 unchanged, 0 added, "
                                      "0 removed"),
                    STORM_HUPS);
    char now[256];
    lease_get("fence", "other", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, other_fence);

    /* 2. other changes each time (and the text moves around): only other restarts. */
    storm(&p, change_other);
    CU_ASSERT_EQUAL(tfp_log_count(&p, "reload: 1 pipeline(s) restarted (other), 1 unchanged"),
                    STORM_HUPS);
    version_wait other_last = {"OTHER", 100 + STORM_HUPS - 1};
    CU_ASSERT(tft_wait_until(cached_version_is, &other_last, 10000)); /* picked up the change */
    lease_get("fence", "other", now, sizeof now);
    CU_ASSERT_STRING_NOT_EQUAL(now, other_fence); /* other did restart, with a new lease */

    /* steady's lease was never released nor taken again, and it kept writing on schedule */
    lease_get("fence", "steady", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, fence);
    lease_get("lease", "steady", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, token);
    gaps g = steady_gaps(&p, storm_start);
    printf("\nreload storm (%d + %d SIGHUPs in %d ms each): longest gap between writes of an "
           "unchanged pipeline during the storms %lld ms (period %d ms), %zu writes, %zu "
           "restart(s), %zu fence(s)\n",
           STORM_HUPS, STORM_HUPS, STORM_MS, g.longest_ms, PERIOD_MS, g.writes, g.restarts,
           g.fences);
    CU_ASSERT(g.writes >= 2 * STORM_MS / PERIOD_MS * 8 / 10); /* it wrote all along */
    CU_ASSERT_EQUAL(g.restarts, 0);
    CU_ASSERT_EQUAL(g.fences, 1);
    CU_ASSERT(g.longest_ms <= PERIOD_MS + GAP_MARGIN_MS);

    /* 3. other removed, third added: other stops and releases its lease at once (its ttl is a
     * minute), third starts; steady still runs under its first lease. */
    shape last = {.third = true, .comment = 1000};
    write_config(&last);
    int applied = tfp_log_count(&p, "configuration in effect");
    CU_ASSERT_FATAL(kill(p.pid, SIGHUP) == 0);
    watch w = {&p, "configuration in effect", applied + 1};
    CU_ASSERT_FATAL(tft_wait_until(log_has, &w, 10000));
    CU_ASSERT_EQUAL(tfp_log_count(&p, "reload: 0 pipeline(s) restarted, 1 unchanged, 1 added "
                                      "(third), 1 removed (other)"),
                    1);
    CU_ASSERT(tft_wait_until(lease_gone, "other", 3000));
    CU_ASSERT(tft_wait_until(lease_held, "third", 5000));
    version_wait third_up = {"THIRD", 1};
    CU_ASSERT(tft_wait_until(cached_version_is, &third_up, 10000));
    long long other_seq = cached_field("OTHER", "seq");
    long long third_seq = cached_field("THIRD", "seq");
    watch more = {&p, "\"_pipeline\":\"third\"", (int)third_seq + 3};
    CU_ASSERT(tft_wait_until(log_has, &more, 5000));          /* third keeps ticking... */
    CU_ASSERT_EQUAL(cached_field("OTHER", "seq"), other_seq); /* ...other does not */
    lease_get("fence", "steady", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, fence);
    CU_ASSERT_EQUAL(steady_gaps(&p, 0).fences, 1);

    /* what the reloads did, counted */
    static const char *const counted[] = {
        "tickflow_config_reloads_total{result=\"applied\"} 101",
        "tickflow_config_reload_pipelines_total{action=\"unchanged\"} 151",
        "tickflow_config_reload_pipelines_total{action=\"restarted\"} 50",
        "tickflow_config_reload_pipelines_total{action=\"added\"} 1",
        "tickflow_config_reload_pipelines_total{action=\"removed\"} 1",
    };
    CU_ASSERT(metrics_have(counted, sizeof counted / sizeof *counted));

    CU_ASSERT_EQUAL(WEXITSTATUS(tft_stop(p.pid, SIGTERM, 5000)), 0);
    if (CU_get_number_of_failures() > 0) {
        char *log = tft_read_file(p.log, NULL);
        if (log) {
            size_t len = strlen(log);
            fprintf(stderr, "\n--- tail of %s ---\n%s\n", p.log,
                    log + (len > 6000 ? len - 6000 : 0));
        }
        free(log);
    }
}

/* A listening socket on a free loopback port, so that a plugin binding it fails; -1 on error. */
static int occupy_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static bool other_seq_grows(void *arg)
{
    return cached_field("OTHER", "seq") > *(const long long *)arg;
}

/* A reload whose changed pipeline cannot be created (its new sink's port is taken) brings the
 * previous one back, leaves the unchanged one alone and counts a failed reload; once the port
 * is free, the same file reloads. */
static void test_failed_reload_restores_the_stopped_pipeline(void)
{
    snprintf(prefix, sizeof prefix, "tftreload%db", (int)getpid()); /* keys of its own */
    shape initial = {.other = true, .version = 1};
    write_config(&initial);
    tfp_proc p;
    CU_ASSERT_FATAL(tfp_start(&p, dir, "restore", cfg_path));
    version_wait steady_up = {"STEADY", 1}, other_up = {"OTHER", 1};
    CU_ASSERT_FATAL(tft_wait_until(cached_version_is, &steady_up, 15000));
    CU_ASSERT_FATAL(tft_wait_until(cached_version_is, &other_up, 15000));
    char fence[64], now[64];
    lease_get("fence", "steady", fence, sizeof fence);

    int port = 0;
    int fd = occupy_port(&port);
    CU_ASSERT_FATAL(fd >= 0);
    shape taken = {.other = true, .version = 2, .other_api_port = port};
    write_config(&taken);
    CU_ASSERT_FATAL(kill(p.pid, SIGHUP) == 0);
    watch restoring = {&p, "new configuration failed to start; restoring", 1};
    CU_ASSERT_FATAL(tft_wait_until(log_has, &restoring, 10000));
    /* other runs again as it was (version 1), steady never stopped */
    long long seq = cached_field("OTHER", "seq");
    CU_ASSERT(tft_wait_until(other_seq_grows, &seq, 5000));
    CU_ASSERT_EQUAL(cached_field("OTHER", "version"), 1);
    lease_get("fence", "steady", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, fence);
    static const char *const failed[] = {"tickflow_config_reloads_total{result=\"failed\"} 1"};
    CU_ASSERT(metrics_have(failed, 1));

    close(fd);
    int applied = tfp_log_count(&p, "configuration in effect");
    CU_ASSERT_FATAL(kill(p.pid, SIGHUP) == 0);
    watch done = {&p, "configuration in effect", applied + 1};
    CU_ASSERT_FATAL(tft_wait_until(log_has, &done, 10000));
    version_wait other_v2 = {"OTHER", 2};
    CU_ASSERT(tft_wait_until(cached_version_is, &other_v2, 10000));
    lease_get("fence", "steady", now, sizeof now);
    CU_ASSERT_STRING_EQUAL(now, fence);
    CU_ASSERT_EQUAL(WEXITSTATUS(tft_stop(p.pid, SIGTERM, 5000)), 0);
}

static int setup(void)
{
    dir = tft_mkdtemp();
    snprintf(prefix, sizeof prefix, "tftreload%d", (int)getpid());
    metrics_port = tft_free_port();
    if (dir)
        snprintf(cfg_path, sizeof cfg_path, "%s/reload.yaml", dir);
    return dir && tft_shared_redis_port() > 0 ? 0 : 1;
}

static int teardown(void)
{
    tft_rmdir(dir);
    free(dir);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"a reload storm leaves unchanged pipelines alone",
         test_reload_storm_leaves_unchanged_pipelines_alone},
        {"a failed reload restores the stopped pipeline",
         test_failed_reload_restores_the_stopped_pipeline},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("reload", tests, setup, teardown);
}
