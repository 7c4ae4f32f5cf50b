/*
 * docs/alerts.yaml in a real Prometheus server (Debian package prometheus, 2.42) that scrapes a
 * demo-like deployment every second: two batch replicas (pipelines/demo.yaml, sharing the
 * leases), one API replica (pipelines/api.yaml), the fake exchange and a private redis-server.
 * The rules are a copy of docs/alerts.yaml with every `for:` shortened; the test reads
 * Prometheus's /api/v1/alerts. Scenarios run back to back on the one deployment:
 *   - healthy for 60 s: no alert fires (pending ones are reported);
 *   - the live expositions match the metrics tables of docs/metrics.md and docs/api.md (type,
 *     labels, HELP), and every family is documented somewhere;
 *   - the fake exchange frozen (SIGSTOP): TickflowPremiumStale fires, and resolves after SIGCONT;
 *   - one batch replica frozen: TickflowTargetDown fires for it, and resolves after SIGCONT
 *     (and the scrapes Prometheus gave up on meanwhile leave no connection-limit storm);
 *   - both batch replicas stopped: TickflowNoLeaseHolder fires, and resolves after a restart.
 * Prometheus listens on loopback only, keeps its data in the test's temp dir, and has neither
 * remote write nor Alertmanagers.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_deploy.h"
#include "tf_test.h"

#define HEALTHY_MS       60000
#define START_TIMEOUT_MS 60000
/* Shortened rules: `for:` divided by FOR_DIVISOR, at least FOR_MIN_S (30 s -> 3 s, 1 m ->
 * 6 s), evaluated every second on scrapes every second. */
#define FOR_DIVISOR 10
#define FOR_MIN_S   3
/* An alert fires within its data's delay (a tick, a scrape, a takeover) plus its shortened
 * `for`, and resolves within a tick, a scrape and an evaluation of recovery; ASan and a loaded
 * machine are slower. */
#define FIRE_TIMEOUT_MS    45000
#define RESOLVE_TIMEOUT_MS 45000
#define HTTP_TIMEOUT_MS    3000
#define POLL_PACING_MS     500
#define MAX_REPORTED       64

static tft_deploy *deploy;
static pid_t batch[2] = {-1, -1};
static int batch_port[2];
static pid_t api = -1;
static int api_metrics_port;
static int api_port;
static pid_t prom = -1;
static int prom_port;
static char prom_log[1024];

/* --- HTTP ---------------------------------------------------------------------------------- */

static char *http_get(const char *url)
{
    char *body = NULL;
    if (tft_http_get(url, NULL, HTTP_TIMEOUT_MS, &body) != 200) {
        free(body);
        return NULL;
    }
    return body;
}

static char *scrape(int port)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    return http_get(url);
}

/* --- Prometheus's API ---------------------------------------------------------------------- */

/* data.<key> of a Prometheus API answer at `path` (new reference), or NULL. */
static json_t *prom_api(const char *path, const char *key)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", prom_port, path);
    char *text = http_get(url);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *out = json_incref(json_object_get(json_object_get(doc, "data"), key));
    json_decref(doc);
    return out;
}

/* The value of an instant query with a single-sample answer; -1 when there is none. */
static double prom_value(const char *query)
{
    char *escaped = curl_easy_escape(NULL, query, 0);
    char path[512];
    snprintf(path, sizeof path, "/api/v1/query?query=%s", escaped ? escaped : "");
    curl_free(escaped);
    json_t *result = prom_api(path, "result");
    double v = -1;
    if (json_array_size(result) == 1) {
        const char *s = json_string_value(
            json_array_get(json_object_get(json_array_get(result, 0), "value"), 1));
        v = s ? strtod(s, NULL) : -1;
    }
    json_decref(result);
    return v;
}

/* The active (pending or firing) alerts, or NULL when Prometheus did not answer. */
static json_t *prom_alerts(void)
{
    return prom_api("/api/v1/alerts", "alerts");
}

/* "alertname{k=v,...}" for reports. */
static void describe_alert(const json_t *alert, char *out, size_t size)
{
    json_t *labels = json_object_get(alert, "labels");
    const char *name = json_string_value(json_object_get(labels, "alertname"));
    char pairs[512] = "";
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(labels, key, value)
    {
        if (strcmp(key, "alertname") == 0)
            continue;
        int w = snprintf(pairs + n, sizeof pairs - n, "%s%s=%s", n ? "," : "", key,
                         json_string_value(value));
        if (w < 0 || (size_t)w >= sizeof pairs - n)
            break;
        n += (size_t)w;
    }
    snprintf(out, size, "%s{%s}", name ? name : "?", pairs);
}

/* What an awaited alert must be: its name, an optional label it must carry, and its state
 * ("firing"), or NULL for "not active at all" (resolved). */
typedef struct alert_goal {
    const char *name;
    const char *label; /* e.g. "instance" or NULL */
    char value[64];
    const char *state;
} alert_goal;

static bool alert_matches(const json_t *alert, const alert_goal *g)
{
    json_t *labels = json_object_get(alert, "labels");
    const char *name = json_string_value(json_object_get(labels, "alertname"));
    if (!name || strcmp(name, g->name) != 0)
        return false;
    if (g->label) {
        const char *v = json_string_value(json_object_get(labels, g->label));
        if (!v || strcmp(v, g->value) != 0)
            return false;
    }
    return true;
}

static bool alert_reached(void *arg)
{
    const alert_goal *g = arg;
    json_t *alerts = prom_alerts();
    if (!alerts)
        return false;
    bool found = false;
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        const char *state = json_string_value(json_object_get(a, "state"));
        if (alert_matches(a, g) && (!g->state || (state && strcmp(state, g->state) == 0)))
            found = true;
    }
    json_decref(alerts);
    return g->state ? found : !found;
}

/* Waits for the goal; prints how long it took. */
static bool await_alert(alert_goal *g, int timeout_ms, const char *what)
{
    long long t0 = tft_mono_ms();
    bool ok = tft_wait_until(alert_reached, g, timeout_ms);
    fprintf(stderr, "%s %s%s%s: %s after %lld ms\n", g->name, g->label ? g->label : "",
            g->label ? "=" : "", g->label ? g->value : "", ok ? what : "NOT reached",
            tft_mono_ms() - t0);
    return ok;
}

static void print_active_alerts(const char *when)
{
    json_t *alerts = prom_alerts();
    size_t i;
    json_t *a;
    fprintf(stderr, "active alerts %s: %zu\n", when, json_array_size(alerts));
    json_array_foreach(alerts, i, a)
    {
        char line[512];
        describe_alert(a, line, sizeof line);
        fprintf(stderr, "  %s %s\n", line, json_string_value(json_object_get(a, "state")));
    }
    json_decref(alerts);
}

/* --- the deployment ------------------------------------------------------------------------ */

/* Batch replica i (0 or 1) of pipelines/demo.yaml, logging to batch-<i+1>.log, its metrics on
 * batch_port[i] (Prometheus scrapes it there). */
static pid_t start_batch(int i)
{
    char tag[32], replica[64], metrics[64];
    snprintf(tag, sizeof tag, "batch-%d", i + 1);
    snprintf(replica, sizeof replica, "TICKFLOW_REPLICA=batch-%d", i + 1);
    snprintf(metrics, sizeof metrics, "TICKFLOW_METRICS_LISTEN=127.0.0.1:%d", batch_port[i]);
    const char *env[] = {replica, metrics, NULL};
    return tft_deploy_start(deploy, "pipelines/demo.yaml", tag, env);
}

static pid_t start_api(void)
{
    char metrics[64];
    snprintf(metrics, sizeof metrics, "TICKFLOW_METRICS_LISTEN=127.0.0.1:%d", api_metrics_port);
    const char *env[] = {metrics, NULL};
    return tft_deploy_start(deploy, "pipelines/api.yaml", "api", env);
}

/* The `for:` of a rule line ("        for: 30s"), shortened; false when `line` is not one. */
static bool shortened_for(const char *line, size_t len, char *out, size_t size)
{
    size_t indent = strspn(line, " ");
    char text[64];
    if (indent >= len || len - indent >= sizeof text || strncmp(line + indent, "for: ", 5) != 0)
        return false;
    snprintf(text, sizeof text, "%.*s", (int)(len - indent), line + indent);
    unsigned value = 0;
    char unit = 0;
    char tail = 0;
    if (sscanf(text, "for: %u%c%c", &value, &unit, &tail) != 2 || !strchr("smh", unit))
        return false;
    unsigned seconds = unit == 'h' ? value * 3600 : unit == 'm' ? value * 60 : value;
    seconds /= FOR_DIVISOR;
    if (seconds < FOR_MIN_S)
        seconds = FOR_MIN_S;
    snprintf(out, size, "%.*sfor: %us", (int)indent, line, seconds);
    return true;
}

/* "      - alert: Name" */
static bool starts_rule(const char *line, size_t len)
{
    size_t blank = strspn(line, " ");
    return blank < len && len - blank > 9 && strncmp(line + blank, "- alert: ", 9) == 0;
}

/* docs/alerts.yaml with every `for:` shortened, written to <dir>/alerts.yaml. Every rule must
 * have had one (a rule without `for:` would fire at once, untested here). */
static bool write_rules(void)
{
    char *text = tft_read_file(tft_source_path("docs/alerts.yaml"), NULL);
    if (!text)
        return false;
    size_t cap = strlen(text) + 4096;
    char *out = calloc(1, cap);
    size_t used = 0;
    int rules = 0;
    int shortened = 0;
    for (const char *at = text; out && *at;) {
        size_t len = strcspn(at, "\n");
        char line[256];
        const char *put = at;
        size_t put_len = len;
        if (shortened_for(at, len, line, sizeof line)) {
            put = line;
            put_len = strlen(line);
            shortened++;
        }
        rules += starts_rule(at, len);
        if (used + put_len + 2 >= cap)
            break;
        memcpy(out + used, put, put_len);
        used += put_len;
        out[used++] = '\n';
        at += len + (at[len] == '\n');
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/alerts.yaml", deploy->dir);
    bool ok = out && rules > 0 && rules == shortened && tft_write_file(path, out) == 0;
    if (!ok)
        fprintf(stderr, "alerts.yaml: %d rules, %d `for:` shortened\n", rules, shortened);
    free(out);
    free(text);
    return ok;
}

static bool write_prometheus_config(void)
{
    char yaml[2048];
    int n = snprintf(yaml, sizeof yaml,
                     "global:\n"
                     "  scrape_interval: 1s\n"
                     "  scrape_timeout: 800ms\n"
                     "  evaluation_interval: 1s\n"
                     "rule_files:\n"
                     "  - %s/alerts.yaml\n"
                     "scrape_configs:\n"
                     "  - job_name: batch\n"
                     "    static_configs:\n"
                     "      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']\n"
                     "  - job_name: api\n"
                     "    static_configs:\n"
                     "      - targets: ['127.0.0.1:%d']\n",
                     deploy->dir, batch_port[0], batch_port[1], api_metrics_port);
    char path[1100];
    snprintf(path, sizeof path, "%s/prometheus.yml", deploy->dir);
    return n > 0 && (size_t)n < sizeof yaml && tft_write_file(path, yaml) == 0;
}

static pid_t start_prometheus(void)
{
    char exe[1024], config[1100], data[1100], listen[64];
    if (!tft_find_in_path("prometheus", exe, sizeof exe))
        return -1;
    snprintf(config, sizeof config, "--config.file=%s/prometheus.yml", deploy->dir);
    snprintf(data, sizeof data, "--storage.tsdb.path=%s/data", deploy->dir);
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", prom_port);
    snprintf(prom_log, sizeof prom_log, "%s/prometheus.log", deploy->dir);
    const char *argv[] = {exe, config, data, listen, "--log.level=warn", NULL};
    return tft_spawn(argv, prom_log, NULL);
}

/* Every target is up, a replica holds each lease and a fresh premium is out. */
static bool deployment_ready(void *arg)
{
    (void)arg;
    return prom_value("count(up == 1)") == 3 &&
           prom_value("max(tickflow_lease_held{pipeline=\"kimchi\"})") == 1 &&
           prom_value("max(tickflow_lease_held{pipeline=\"fx\"})") == 1 &&
           prom_value("count(tickflow_premium_stale == 0)") > 0;
}

static void print_file(const char *what, const char *path)
{
    char *text = tft_read_file(path, NULL);
    size_t len = text ? strlen(text) : 0;
    const char *tail = len > 4000 ? text + len - 4000 : text;
    fprintf(stderr, "\n--- %s (%s), last 4000 bytes ---\n%s\n--- end ---\n", what, path,
            tail ? tail : "(none)");
    free(text);
}

/* --- the healthy deployment ---------------------------------------------------------------- */

static bool listed(char list[][256], int n, const char *line)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], line) == 0)
            return true;
    return false;
}

/* Adds `line` to `list` (count `*n`) unless it is there already. */
static void remember(char list[][256], int *n, const char *line)
{
    if (!listed(list, *n, line) && *n < MAX_REPORTED)
        snprintf(list[(*n)++], 256, "%s", line);
}

/* Every rule was evaluated without error: a rule that cannot be evaluated (a bad matching, a
 * type error) never fires, which would pass this test for the wrong reason. */
static int rules_in_error(void)
{
    json_t *groups = prom_api("/api/v1/rules", "groups");
    int bad = 0;
    int rules = 0;
    size_t i, j;
    json_t *g, *r;
    json_array_foreach(groups, i, g)
    {
        json_array_foreach(json_object_get(g, "rules"), j, r)
        {
            const char *health = json_string_value(json_object_get(r, "health"));
            rules++;
            if (health && strcmp(health, "ok") == 0)
                continue;
            fprintf(stderr, "  rule %s: health %s, %s\n",
                    json_string_value(json_object_get(r, "name")), health ? health : "?",
                    json_string_value(json_object_get(r, "lastError")));
            bad++;
        }
    }
    json_decref(groups);
    return rules > 0 ? bad : -1;
}

static void test_healthy_fires_nothing(void)
{
    static char firing[MAX_REPORTED][256];
    static char pending[MAX_REPORTED][256];
    int n_firing = 0;
    int n_pending = 0;
    int polls = 0;
    int answered = 0;
    long long start = tft_mono_ms();
    while (tft_mono_ms() - start < HEALTHY_MS) {
        json_t *alerts = prom_alerts();
        polls++;
        answered += alerts != NULL;
        size_t i;
        json_t *a;
        json_array_foreach(alerts, i, a)
        {
            char line[256];
            describe_alert(a, line, sizeof line);
            const char *state = json_string_value(json_object_get(a, "state"));
            if (state && strcmp(state, "firing") == 0)
                remember(firing, &n_firing, line);
            else
                remember(pending, &n_pending, line);
        }
        json_decref(alerts);
        tft_sleep_ms(POLL_PACING_MS); /* pacing our own polls over the observed minute */
    }
    fprintf(stderr, "\nhealthy for %d ms: %d polls (%d answered), %d alert(s) fired, %d pending\n",
            HEALTHY_MS, polls, answered, n_firing, n_pending);
    for (int i = 0; i < n_firing; i++)
        fprintf(stderr, "  FIRED: %s\n", firing[i]);
    for (int i = 0; i < n_pending; i++)
        if (!listed(firing, n_firing, pending[i]))
            fprintf(stderr, "  pending, never fired: %s\n", pending[i]);
    /* What the pending ones saw, if any: failed scrapes and lease handovers in the window. */
    fprintf(stderr, "  in the window: %g failed scrape(s), %g lease acquisition(s)\n",
            prom_value("sum(count_over_time((up == 0)[1m:1s])) or vector(0)"),
            prom_value("sum(increase(tickflow_lease_acquisitions_total[1m])) or vector(0)"));
    CU_ASSERT(answered >= polls - 2);
    CU_ASSERT_EQUAL(n_firing, 0);
    CU_ASSERT_EQUAL(rules_in_error(), 0);
}

/* --- docs against the live exposition ------------------------------------------------------ */

/* Backticks out, runs of blanks as one space, no trailing period or blanks. */
static void normalize(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool blank = false;
    for (const char *p = in; *p && n + 1 < size; p++) {
        if (*p == '`')
            continue;
        if (isspace((unsigned char)*p)) {
            blank = n > 0;
            continue;
        }
        if (blank && n + 2 < size)
            out[n++] = ' ';
        blank = false;
        out[n++] = *p;
    }
    while (n > 0 && (out[n - 1] == '.' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
}

/* `label` names of a sample line's {...} (values may hold escaped quotes and commas). */
static void add_sample_labels(const char *p, json_t *labels)
{
    if (*p != '{')
        return;
    p++;
    while (*p && *p != '}') {
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - p), p);
        if (strcmp(name, "le") != 0)
            json_object_set_new(labels, name, json_true());
        p = eq + 2;
        while (*p && *p != '"')
            p += *p == '\\' && p[1] ? 2 : 1;
        if (*p == '"')
            p++;
        if (*p == ',')
            p++;
    }
}

/* The family a sample name belongs to: itself, or a histogram's without _bucket/_sum/_count. */
static json_t *family_of(json_t *families, const char *sample, size_t len)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)len, sample);
    json_t *f = json_object_get(families, name);
    for (size_t i = 0; !f && i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && strcmp(name + len - sl, suffixes[i]) == 0) {
            name[len - sl] = '\0';
            f = json_object_get(families, name);
        }
    }
    return f;
}

/* One "# HELP" / "# TYPE" / sample line of an exposition, into `families`:
 * {name: {help, type, labels: {name: true}, samples: n}}. */
static void parse_line(const char *line, json_t *families)
{
    char name[256];
    if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
        const char *p = line + 7;
        size_t len = strcspn(p, " ");
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        json_t *f = json_object_get(families, name);
        if (!f) {
            f = json_pack("{s:s,s:s,s:{},s:i}", "help", "", "type", "", "labels", "samples", 0);
            json_object_set_new(families, name, f);
        }
        const char *text = p[len] ? p + len + 1 : "";
        json_object_set_new(f, line[2] == 'H' ? "help" : "type", json_string(text));
        return;
    }
    if (line[0] == '#' || !line[0])
        return;
    size_t len = strcspn(line, "{ ");
    json_t *f = family_of(families, line, len);
    if (!f)
        return;
    add_sample_labels(line + len, json_object_get(f, "labels"));
    json_object_set_new(f, "samples",
                        json_integer(json_integer_value(json_object_get(f, "samples")) + 1));
}

static void parse_exposition(const char *text, json_t *families)
{
    for (const char *at = text; at && *at;) {
        size_t len = strcspn(at, "\n");
        char line[2048];
        if (len < sizeof line) {
            memcpy(line, at, len);
            line[len] = '\0';
            parse_line(line, families);
        }
        at += len + (at[len] == '\n');
    }
}

/* The `backticked` names of a table cell, as a set {name: true}. */
static json_t *backticked_names(const char *cell)
{
    json_t *names = json_object();
    for (const char *q = cell; (q = strchr(q, '`')) != NULL;) {
        const char *end = strchr(q + 1, '`');
        if (!end)
            break;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(end - q - 1), q + 1);
        json_object_set_new(names, name, json_true());
        q = end + 1;
    }
    return names;
}

/* One row "| `tickflow_x` | type | `a`, `b` | meaning |" (modified in place), into `docs`:
 * {name: {type, labels: {name: true}, meaning, file}}. */
static void parse_doc_row(char *row, const char *rel, json_t *docs)
{
    char *cells[4] = {"", "", "", ""};
    int n = 0;
    for (char *p = row + 1; n < 4 && p && *p;) {
        char *bar = strchr(p, '|');
        if (bar)
            *bar = '\0';
        cells[n++] = p;
        p = bar ? bar + 1 : NULL;
    }
    char name[256], type[64], meaning[1024];
    normalize(cells[0], name, sizeof name);
    normalize(cells[1], type, sizeof type);
    normalize(cells[3], meaning, sizeof meaning);
    json_object_set_new(docs, name,
                        json_pack("{s:s,s:o,s:s,s:s}", "type", type, "labels",
                                  backticked_names(cells[2]), "meaning", meaning, "file", rel));
}

/* The metric tables of a markdown file (rows starting "| `tickflow_"), into `docs`. */
static void parse_doc_tables(const char *rel, json_t *docs)
{
    char *text = tft_read_file(tft_source_path(rel), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    for (const char *at = text; *at;) {
        size_t len = strcspn(at, "\n");
        char row[2048];
        if (strncmp(at, "| `tickflow_", 12) == 0 && len < sizeof row) {
            snprintf(row, sizeof row, "%.*s", (int)len, at);
            parse_doc_row(row, rel, docs);
        }
        at += len + (at[len] == '\n');
    }
    free(text);
}

/* Every markdown file a family may be documented in: docs/, docs/plugins/, plugins/<p>/. */
static void append_markdown(char **all, const char *rel_dir, bool one_level_down)
{
    DIR *d = opendir(tft_source_path(rel_dir));
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char rel[512];
        if (one_level_down)
            snprintf(rel, sizeof rel, "%s/%s/README.md", rel_dir, e->d_name);
        else if (strstr(e->d_name, ".md"))
            snprintf(rel, sizeof rel, "%s/%s", rel_dir, e->d_name);
        else
            continue;
        char *text = tft_read_file(tft_source_path(rel), NULL);
        if (!text)
            continue;
        size_t had = *all ? strlen(*all) : 0;
        char *grown = realloc(*all, had + strlen(text) + 2);
        if (grown) {
            snprintf(grown + had, strlen(text) + 2, "%s\n", text);
            *all = grown;
        }
        free(text);
    }
    closedir(d);
}

static bool same_keys(json_t *a, json_t *b)
{
    const char *key;
    json_t *v;
    json_object_foreach(a, key, v)
    {
        if (!json_object_get(b, key))
            return false;
    }
    return json_object_size(a) == json_object_size(b);
}

static void keys_text(json_t *obj, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int w = snprintf(out + n, size - n, "%s%s", n ? "," : "", key);
        if (w < 0 || (size_t)w >= size - n)
            break;
        n += (size_t)w;
    }
}

/* One live family against its documented row; returns the number of mismatches. */
static int check_family(const char *name, json_t *live, json_t *doc)
{
    int bad = 0;
    const char *type = json_string_value(json_object_get(live, "type"));
    const char *doc_type = json_string_value(json_object_get(doc, "type"));
    const char *file = json_string_value(json_object_get(doc, "file"));
    if (strcmp(type, doc_type) != 0) {
        fprintf(stderr, "  %s: type %s, %s says %s\n", name, type, file, doc_type);
        bad++;
    }
    json_t *labels = json_object_get(live, "labels");
    if (json_integer_value(json_object_get(live, "samples")) > 0 &&
        !same_keys(labels, json_object_get(doc, "labels"))) {
        char got[256], want[256];
        keys_text(labels, got, sizeof got);
        keys_text(json_object_get(doc, "labels"), want, sizeof want);
        fprintf(stderr, "  %s: labels {%s}, %s says {%s}\n", name, got, file, want);
        bad++;
    }
    char help[1024];
    normalize(json_string_value(json_object_get(live, "help")), help, sizeof help);
    const char *meaning = json_string_value(json_object_get(doc, "meaning"));
    if (!help[0] || strncmp(meaning, help, strlen(help)) != 0) {
        fprintf(stderr, "  %s: HELP \"%s\", %s's meaning starts \"%.*s\"\n", name, help, file,
                (int)strlen(help) + 10, meaning);
        bad++;
    }
    return bad;
}

static void test_exposition_matches_docs(void)
{
    /* Touch the API so that its request families have series. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/premium/BTC", api_port);
    free(http_get(url));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", api_port);
    free(http_get(url));
    json_t *families = json_object();
    int ports[] = {batch_port[0], batch_port[1], api_metrics_port};
    for (size_t i = 0; i < sizeof ports / sizeof *ports; i++) {
        char *text = scrape(ports[i]);
        CU_ASSERT_PTR_NOT_NULL(text);
        if (text)
            parse_exposition(text, families);
        free(text);
    }
    json_t *docs = json_object();
    parse_doc_tables("docs/metrics.md", docs);
    parse_doc_tables("docs/api.md", docs);
    char *all_docs = NULL;
    append_markdown(&all_docs, "docs", false);
    append_markdown(&all_docs, "docs/plugins", false);
    append_markdown(&all_docs, "plugins", true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all_docs);

    int bad = 0;
    int checked = 0;
    const char *name;
    json_t *live;
    fprintf(stderr, "\nlive families against docs/metrics.md and docs/api.md:\n");
    json_object_foreach(families, name, live)
    {
        json_t *doc = json_object_get(docs, name);
        if (doc) {
            bad += check_family(name, live, doc);
            checked++;
        } else if (!strstr(all_docs, name)) {
            fprintf(stderr, "  %s: not documented anywhere in docs/ or plugins/*/README.md\n",
                    name);
            bad++;
        }
    }
    json_t *doc;
    json_object_foreach(docs, name, doc)
    {
        if (!json_object_get(families, name))
            fprintf(stderr, "  (%s: documented, not exported by this deployment)\n", name);
    }
    fprintf(stderr, "%zu live families, %d checked against a table, %d mismatch(es)\n",
            json_object_size(families), checked, bad);
    CU_ASSERT(checked >= 20);
    CU_ASSERT_EQUAL(bad, 0);
    free(all_docs);
    json_decref(docs);
    json_decref(families);
}

/* --- failures ------------------------------------------------------------------------------ */

static void test_frozen_exchange_fires_premium_stale(void)
{
    alert_goal fired = {.name = "TickflowPremiumStale", .state = "firing"};
    alert_goal resolved = {.name = "TickflowPremiumStale"};
    CU_ASSERT_EQUAL_FATAL(kill(deploy->fake->pid, SIGSTOP), 0);
    CU_ASSERT(await_alert(&fired, FIRE_TIMEOUT_MS, "firing"));
    CU_ASSERT_EQUAL_FATAL(kill(deploy->fake->pid, SIGCONT), 0);
    CU_ASSERT(await_alert(&resolved, RESOLVE_TIMEOUT_MS, "resolved"));
    print_active_alerts("after the exchange came back");
}

/* The batch replica holding the kimchi lease (0 or 1); -1 when none. */
static int kimchi_holder(void)
{
    redisReply *r = tft_redis_cmd(deploy->redis->port, "GET tf:lease:kimchi");
    int holder = -1;
    if (r && r->type == REDIS_REPLY_STRING)
        holder = strncmp(r->str, "batch-2/", 8) == 0   ? 1
                 : strncmp(r->str, "batch-1/", 8) == 0 ? 0
                                                       : -1;
    if (r)
        freeReplyObject(r);
    return holder;
}

static void test_frozen_replica_fires_target_down(void)
{
    int i = kimchi_holder();
    CU_ASSERT_FATAL(i >= 0);
    char log[1024];
    snprintf(log, sizeof log, "%s/batch-%d.log", deploy->dir, i + 1);
    int limit_lines = tft_file_count(log, "connection limit");
    alert_goal fired = {.name = "TickflowTargetDown", .label = "instance", .state = "firing"};
    snprintf(fired.value, sizeof fired.value, "127.0.0.1:%d", batch_port[i]);
    alert_goal resolved = fired;
    resolved.state = NULL;
    CU_ASSERT_EQUAL_FATAL(kill(batch[i], SIGSTOP), 0);
    CU_ASSERT(await_alert(&fired, FIRE_TIMEOUT_MS, "firing"));
    CU_ASSERT_EQUAL_FATAL(kill(batch[i], SIGCONT), 0);
    CU_ASSERT(await_alert(&resolved, RESOLVE_TIMEOUT_MS, "resolved"));
    /* Prometheus gave up on a scrape a second while the replica was stopped. */
    int storm = tft_file_count(log, "connection limit") - limit_lines;
    fprintf(stderr, "batch-%d resumed: %d connection-limit line(s)\n", i + 1, storm);
    CU_ASSERT_EQUAL(storm, 0);
    print_active_alerts("after the replica came back");
}

static void test_no_batch_replica_fires_no_lease_holder(void)
{
    alert_goal fired = {
        .name = "TickflowNoLeaseHolder", .label = "pipeline", .value = "kimchi", .state = "firing"};
    alert_goal resolved = fired;
    resolved.state = NULL;
    for (int i = 0; i < 2; i++) {
        tft_deploy_stop(deploy, i == 0 ? "batch-1" : "batch-2");
        batch[i] = -1;
    }
    CU_ASSERT(await_alert(&fired, FIRE_TIMEOUT_MS, "firing"));
    print_active_alerts("with both batch replicas stopped");
    for (int i = 0; i < 2; i++) {
        batch[i] = start_batch(i);
        CU_ASSERT_FATAL(batch[i] > 0);
    }
    CU_ASSERT(await_alert(&resolved, RESOLVE_TIMEOUT_MS, "resolved"));
    alert_goal targets_back = {.name = "TickflowTargetDown"};
    CU_ASSERT(await_alert(&targets_back, RESOLVE_TIMEOUT_MS, "resolved"));
    print_active_alerts("after the restart");
}

/* --- suite --------------------------------------------------------------------------------- */

static int suite_init(void)
{
    char exe[1024];
    if (!tft_find_in_path("prometheus", exe, sizeof exe)) {
        fprintf(stderr, "prometheus not found in PATH: install the Debian package prometheus\n");
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    deploy = tft_deploy_create();
    if (!deploy)
        return 1;
    batch_port[0] = tft_free_port();
    batch_port[1] = tft_free_port();
    api_metrics_port = tft_free_port();
    api_port = deploy->api_port;
    prom_port = tft_free_port();
    if (!write_rules() || !write_prometheus_config())
        return 1;
    batch[0] = start_batch(0);
    batch[1] = start_batch(1);
    api = start_api();
    prom = start_prometheus();
    if (batch[0] < 0 || batch[1] < 0 || api < 0 || prom < 0)
        return 1;
    long long t0 = tft_mono_ms();
    if (!tft_wait_until(deployment_ready, NULL, START_TIMEOUT_MS)) {
        fprintf(stderr, "the deployment was not up in Prometheus within %d ms\n", START_TIMEOUT_MS);
        print_file("prometheus", prom_log);
        return 1;
    }
    fprintf(stderr, "deployment up in Prometheus after %lld ms\n", tft_mono_ms() - t0);
    return 0;
}

static int suite_cleanup(void)
{
    if (CU_get_number_of_failures() > 0 && deploy) {
        print_file("prometheus", prom_log);
        tft_deploy_print_log(deploy, "batch-1");
        tft_deploy_print_log(deploy, "batch-2");
        tft_deploy_print_log(deploy, "api");
    }
    if (prom > 0)
        tft_stop(prom, SIGTERM, 10000);
    /* In case a failed assertion left them stopped: SIGTERM must reach them. */
    for (int i = 0; i < 2; i++) {
        if (batch[i] > 0)
            kill(batch[i], SIGCONT);
    }
    if (deploy && deploy->fake)
        kill(deploy->fake->pid, SIGCONT);
    tft_deploy_destroy(deploy);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"healthy deployment for 60 s: no alert fires", test_healthy_fires_nothing},
        {"live metrics match docs/metrics.md and docs/api.md", test_exposition_matches_docs},
        {"fake exchange frozen: TickflowPremiumStale fires and resolves",
         test_frozen_exchange_fires_premium_stale},
        {"a batch replica frozen: TickflowTargetDown fires and resolves",
         test_frozen_replica_fires_target_down},
        {"both batch replicas stopped: TickflowNoLeaseHolder fires and resolves",
         test_no_batch_replica_fires_no_lease_holder},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("prometheus", tests, suite_init, suite_cleanup);
}
