/*
 * The Redis schema of docs/redis.md, held against the real product: pipelines/demo.yaml (the
 * batch role) and pipelines/api.yaml (the API role) as real processes over a private
 * redis-server and the fake exchange, plus the `tickflow positions` and `tickflow keys` CLIs.
 *  - A closed position never shows a fresh-looking live block (CLI and HTTP API), right after
 *    the close and after its live key expired.
 *  - Every key the product wrote matches a pattern of the doc's key table, every documented key
 *    was written, and each one's MEMORY USAGE is within SIZE_TOLERANCE of the table's figure.
 *  - The FX key belongs to the FX pipeline: with that pipeline idle after one run, the key
 *    expires on schedule, the 1 s pipeline publishes no events:fx, and its premiums are
 *    flagged stale, then stop, as docs/redis.md says.
 */
#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tf_deploy.h"
#include "tf_proc.h"
#include "tf_test.h"

#define SIZE_TOLERANCE 0.20 /* measured within ±20 % of the documented figure */
#define DOC_KEYS_MAX   64
#define SCAN_MAX       4096
#define HISTORY_MIN    3    /* real entries per stream before measuring */
#define STREAM_ENTRIES 1000 /* a stream's per-entry size is measured at this length */

static tft_deploy *deploy;
static char cli_cfg[1024]; /* redis: + keys: of the demo, for the CLIs */
static char out[1024];     /* output of the last CLI run */

/* ---- processes ---- */

/* Runs `tickflow <args>` (NULL-terminated) with its output in `out`; the exit code. */
static int cli(const char *const *args)
{
    return tfp_run_cli(args, out, 20000);
}

static json_t *cli_json(void)
{
    char *text = tft_read_file(out, NULL);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (!j)
        fprintf(stderr, "\nexpected JSON from the CLI, found:\n%s\n", text ? text : "(none)");
    free(text);
    return j;
}

/* ---- HTTP ---- */

/* GET the API's path; the body's "data" member (new reference) when the answer is 200 JSON. */
static json_t *api_data(const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", deploy->api_url, path);
    char *body = NULL;
    long status = tft_http_get(url, NULL, 3000, &body);
    json_t *root = status == 200 ? json_loads(body, 0, NULL) : NULL;
    free(body);
    json_t *data = json_incref(json_object_get(root, "data"));
    json_decref(root);
    return data;
}

/* ---- Redis ---- */

static long long int_reply(int port, const char *fmt, const char *arg)
{
    redisReply *r = tft_redis_cmd(port, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

typedef struct key_wait {
    int port;
    const char *key;
    bool want; /* wait for the key to exist (true) or to be gone (false) */
} key_wait;

static bool key_state(void *arg)
{
    const key_wait *w = arg;
    return (int_reply(w->port, "EXISTS %s", w->key) == 1) == w->want;
}

static bool wait_key(int port, const char *key, bool exists, int timeout_ms)
{
    key_wait w = {port, key, exists};
    return tft_wait_until(key_state, &w, timeout_ms);
}

/* ---- a closed position's live block ---- */

/* A position as a client sees it: no live block, or one marked stale. */
static void assert_no_fresh_live(const json_t *position, const char *where)
{
    const json_t *live = json_object_get(position, "live");
    if (!live || json_is_null(live))
        return;
    bool stale = json_is_true(json_object_get(live, "stale"));
    if (!stale) {
        long long ts = (long long)json_integer_value(json_object_get(live, "ts"));
        char *text = json_dumps(live, JSON_COMPACT);
        fprintf(stderr,
                "\n%s: closed position %s has a live block with stale: false (ts %lld): %s\n",
                where, json_string_value(json_object_get(position, "id")), ts, text ? text : "");
        free(text);
    }
    CU_ASSERT_TRUE(stale);
}

static const json_t *find_position(const json_t *list, const char *id)
{
    size_t i;
    const json_t *p;
    json_array_foreach(list, i, p)
    {
        const char *pid = json_string_value(json_object_get(p, "id"));
        if (pid && strcmp(pid, id) == 0)
            return p;
    }
    return NULL;
}

/* The closed pos-1 through every reader: GET /v1/positions/pos-1, GET /v1/positions?all=true,
 * and `tickflow positions list --all --json` (the core's position_list). */
static void check_closed_everywhere(const char *when)
{
    char where[128];
    json_t *one = api_data("/v1/positions/pos-1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(one, "status")), "closed");
    snprintf(where, sizeof where, "GET /v1/positions/pos-1 %s", when);
    assert_no_fresh_live(one, where);
    json_decref(one);

    json_t *all = api_data("/v1/positions?all=true");
    const json_t *p = find_position(all, "pos-1");
    CU_ASSERT_PTR_NOT_NULL(p);
    snprintf(where, sizeof where, "GET /v1/positions?all=true %s", when);
    if (p)
        assert_no_fresh_live(p, where);
    json_decref(all);

    const char *list[] = {"positions", "list", "-c", cli_cfg, "--all", "--json", NULL};
    CU_ASSERT_EQUAL(cli(list), 0);
    json_t *cl = cli_json();
    p = find_position(cl, "pos-1");
    CU_ASSERT_PTR_NOT_NULL(p);
    snprintf(where, sizeof where, "tickflow positions list --all --json %s", when);
    if (p)
        assert_no_fresh_live(p, where);
    json_decref(cl);
}

/* GET /v1/positions/<id> shows a live block with stale: false. */
static bool live_fresh(void *arg)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/positions/%s", (const char *)arg);
    json_t *p = api_data(path);
    const json_t *live = json_object_get(p, "live");
    bool fresh = json_is_object(live) && json_is_false(json_object_get(live, "stale"));
    json_decref(p);
    return fresh;
}

static void open_position(const char *direction)
{
    const char *open[] = {
        "positions",      "open",     "-c",       cli_cfg,  "--symbol",    "BTC",
        "--direction",    direction,  "--size",   "0.5",    "--krw-price", "136850000",
        "--global-price", "95012.30", "--usdkrw", "1402.5", NULL};
    CU_ASSERT_EQUAL_FATAL(cli(open), 0);
}

static void test_closed_position_live(void)
{
    open_position("long_krw_short_global"); /* pos-1, closed below */
    open_position("short_krw_long_global"); /* pos-2, stays open */
    /* The positions transform prices both every tick; the API receives them as events. */
    CU_ASSERT_FATAL(tft_wait_until(live_fresh, "pos-1", 30000));
    CU_ASSERT_FATAL(tft_wait_until(live_fresh, "pos-2", 30000));

    const char *close[] = {"positions", "close",       "-c",        cli_cfg,
                           "pos-1",     "--krw-price", "137900000", "--global-price",
                           "95100",     "--usdkrw",    "1403",      NULL};
    CU_ASSERT_EQUAL_FATAL(cli(close), 0);
    /* Right after the close its live key is still there (5 s TTL) and the API's snapshot
     * still holds its last value. */
    check_closed_everywhere("right after the close");

    /* After the live TTL: the key is gone, the snapshot's copy is not. */
    CU_ASSERT(wait_key(deploy->redis->port, "tf:position:pos-1:live", false, 20000));
    check_closed_everywhere("after its live key expired");

    /* The open one keeps its live PnL. */
    CU_ASSERT(tft_wait_until(live_fresh, "pos-2", 10000));
}

/* ---- docs/redis.md's key table ---- */

typedef struct doc_key {
    char pattern[160]; /* "<p>:ticker:<exchange>:<symbol>" */
    char type[32];     /* first word of the Type column: string, stream, hash, set */
    long size;         /* bytes per key (per entry for a stream); -1 when the row has none */
} doc_key;

/* Splits a table row into its cells (trimmed, in place); returns how many. */
static int row_cells(char *line, char **cells, int max)
{
    int n = 0;
    char *p = strchr(line, '|');
    while (p && n < max) {
        char *start = p + 1;
        char *end = strchr(start, '|');
        if (!end)
            break;
        *end = '\0';
        while (isspace((unsigned char)*start))
            start++;
        char *last = end;
        while (last > start && isspace((unsigned char)last[-1]))
            *--last = '\0';
        cells[n++] = start;
        p = end;
    }
    return n;
}

/* The first "<digits> B" of a Size cell ("712 B (a 578-byte JSON)"); -1 when none. Digits may
 * be grouped with commas. */
static long size_of_cell(const char *cell)
{
    for (const char *p = cell; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p > cell && isalnum((unsigned char)p[-1])))
            continue;
        long v = 0;
        const char *q = p;
        while (isdigit((unsigned char)*q) || (*q == ',' && isdigit((unsigned char)q[1]))) {
            if (*q != ',')
                v = v * 10 + (*q - '0');
            q++;
        }
        if (q[0] == ' ' && q[1] == 'B' && !isalnum((unsigned char)q[2]))
            return v;
        p = q - 1;
    }
    return -1;
}

/* The rows of the first table under "## Keys" in docs/redis.md: one doc_key per `<p>:...`
 * code span of the Key column (channels are not keys). Returns how many, -1 when unreadable. */
static int parse_doc_keys(doc_key *keys, int max)
{
    char *text = tft_read_file(tft_source_path("docs/redis.md"), NULL);
    char *section = text ? strstr(text, "\n## Keys") : NULL;
    char *table = section ? strstr(section, "\n| Key") : NULL;
    if (!table) {
        free(text);
        return -1;
    }
    int n = 0;
    char *save = NULL;
    char *line = strtok_r(table + 1, "\n", &save); /* the header */
    line = strtok_r(NULL, "\n", &save);            /* |---|---| */
    for (line = strtok_r(NULL, "\n", &save); line && line[0] == '|';
         line = strtok_r(NULL, "\n", &save)) {
        char *cells[12];
        int nc = row_cells(line, cells, 12);
        if (nc < 3 || strncmp(cells[0], "channel", 7) == 0) /* Pub/Sub: stores nothing */
            continue;
        long size = size_of_cell(cells[nc - 1]);
        char type[32];
        snprintf(type, sizeof type, "%.*s", (int)strcspn(cells[1], " ,"), cells[1]);
        for (char *q = cells[0]; n < max && (q = strchr(q, '`')) != NULL;) {
            char *end = strchr(q + 1, '`');
            if (!end)
                break;
            if (strncmp(q + 1, "<p>:", 4) == 0) {
                doc_key *k = &keys[n++];
                snprintf(k->pattern, sizeof k->pattern, "%.*s", (int)(end - q - 1), q + 1);
                snprintf(k->type, sizeof k->type, "%s", type);
                k->size = size;
            }
            q = end + 1;
        }
    }
    free(text);
    return n;
}

/* Does `key` have the shape of `pattern`? Segments are ':'-separated; `<p>` is the prefix, any
 * other `<name>` one non-empty segment, everything else literal. */
static bool key_matches(const char *pattern, const char *prefix, const char *key)
{
    const char *p = pattern, *k = key;
    while (*p) {
        size_t plen = strcspn(p, ":");
        size_t klen = strcspn(k, ":");
        if (plen == 3 && strncmp(p, "<p>", 3) == 0) {
            if (klen != strlen(prefix) || strncmp(k, prefix, klen) != 0)
                return false;
        } else if (p[0] == '<' && p[plen - 1] == '>') {
            if (klen == 0)
                return false;
        } else if (plen != klen || strncmp(p, k, plen) != 0) {
            return false;
        }
        p += plen;
        k += klen;
        if ((*p == ':') != (*k == ':'))
            return false;
        if (*p == ':') {
            p++;
            k++;
        }
    }
    return *k == '\0';
}

/* Every key of the db (SCAN to the end); returns how many, -1 on a Redis failure. */
static int scan_all(int port, char **keys, int max)
{
    int n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = tft_redis_cmd(port, "SCAN %s COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements && n < max; i++)
            keys[n++] = strdup(r->element[1]->element[i]->str);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* Per entry of a long stream made of `key`'s entries. A stream is allocated in nodes of about
 * 4 KiB, so usage / XLEN of the few entries the demo wrote swings by half with the length; a
 * day's stream is full nodes. The demo cannot run for STREAM_ENTRIES seconds: its entries are
 * copied, fields and all, into a scratch stream with ids 1 s apart as the sink's are, measured
 * at STREAM_ENTRIES, and the scratch stream deleted. */
static double stream_entry_size(int port, const char *key)
{
    const char *scratch = "tf-measure:stream"; /* outside the prefix, deleted below */
    redisReply *x = tft_redis_cmd(port, "XRANGE %s - + COUNT 100", key);
    double size = -1;
    if (!x || x->type != REDIS_REPLY_ARRAY || x->elements == 0)
        goto out;
    redisContext *c = tft_redis_connect(port);
    if (!c)
        goto out;
    long long ms = 1795428930000LL;
    for (int i = 0; i < STREAM_ENTRIES; i++) {
        const redisReply *fields = x->element[(size_t)i % x->elements]->element[1];
        char id[32];
        snprintf(id, sizeof id, "%lld-0", ms + 1000LL * i);
        const char *argv[64] = {"XADD", scratch, id};
        size_t lens[64] = {4, strlen(scratch), strlen(id)};
        int argc = 3;
        for (size_t f = 0; f < fields->elements && argc < 64; f++) {
            argv[argc] = fields->element[f]->str;
            lens[argc] = fields->element[f]->len;
            argc++;
        }
        redisAppendCommandArgv(c, argc, argv, lens);
    }
    bool ok = true;
    for (int i = 0; i < STREAM_ENTRIES; i++) {
        void *reply = NULL;
        ok = redisGetReply(c, &reply) == REDIS_OK && ok;
        freeReplyObject(reply);
    }
    redisFree(c);
    long long len = int_reply(port, "XLEN %s", scratch);
    if (ok && len == STREAM_ENTRIES)
        size = (double)int_reply(port, "MEMORY USAGE %s SAMPLES 0", scratch) / STREAM_ENTRIES;
    int_reply(port, "DEL %s", scratch);
out:
    if (x)
        freeReplyObject(x);
    return size;
}

/* MEMORY USAGE of `key` (per entry for a stream). */
static double measured_size(int port, const char *key, bool stream)
{
    if (stream)
        return stream_entry_size(port, key);
    return (double)int_reply(port, "MEMORY USAGE %s SAMPLES 0", key);
}

/* Checks one documented key against the keyspace; marks the keys it matches. */
static void check_doc_key(const doc_key *d, char **keys, int n, bool *matched)
{
    bool stream = strcmp(d->type, "stream") == 0;
    double largest = -1;
    const char *largest_key = NULL;
    for (int i = 0; i < n; i++) {
        if (!key_matches(d->pattern, "tf", keys[i]))
            continue;
        matched[i] = true;
        double m = measured_size(deploy->redis->port, keys[i], stream);
        if (m > largest) {
            largest = m;
            largest_key = keys[i];
        }
    }
    if (!largest_key) {
        fprintf(stderr, "\ndocs/redis.md: key %s: documented, but the demo run wrote no such key\n",
                d->pattern);
        CU_FAIL("a documented key was not written");
        return;
    }
    long long json = strncmp(d->type, "string", 6) == 0
                         ? int_reply(deploy->redis->port, "STRLEN %s", largest_key)
                         : -1; /* the value's length, for the doc's notes */
    printf("\n    %-58s documented %5ld B, measured %6.0f B%s (%s, value %lld B)", d->pattern,
           d->size, largest, stream ? " per entry" : "", largest_key, json);
    if (d->size <= 0) {
        fprintf(stderr, "\ndocs/redis.md: key %s: no size in the Size column (measured %.0f B)\n",
                d->pattern, largest);
        CU_FAIL("a documented key has no size");
        return;
    }
    double off = (largest - (double)d->size) / (double)d->size;
    if (off > SIZE_TOLERANCE || off < -SIZE_TOLERANCE) {
        fprintf(stderr,
                "\ndocs/redis.md: key %s: documented %ld B, measured %.0f B%s (MEMORY USAGE of "
                "%s), %+.0f %%, outside ±%.0f %%\n",
                d->pattern, d->size, largest, stream ? " per entry" : "", largest_key, off * 100,
                SIZE_TOLERANCE * 100);
        CU_FAIL("a documented size does not match MEMORY USAGE");
    }
}

static bool history_long_enough(void *arg)
{
    (void)arg;
    return int_reply(deploy->redis->port, "XLEN %s", "tf:history:premium:bithumb:binance:BTC") >=
           HISTORY_MIN;
}

/* Runs after test_closed_position_live, whose positions (one closed, one open) it inventories
 * too; the API key stored at set-up is the key store's entry. */
static void test_doc_key_table(void)
{
    doc_key docs[DOC_KEYS_MAX];
    int nd = parse_doc_keys(docs, DOC_KEYS_MAX);
    CU_ASSERT_FATAL(nd > 0);
    /* The live value of the open position, and a stream spanning several nodes. */
    CU_ASSERT(wait_key(deploy->redis->port, "tf:position:pos-2:live", true, 20000));
    CU_ASSERT(tft_wait_until(history_long_enough, NULL, 60000));

    static char *keys[SCAN_MAX];
    int n = scan_all(deploy->redis->port, keys, SCAN_MAX);
    CU_ASSERT_FATAL(n > 0);
    bool *matched = calloc((size_t)n, sizeof *matched);
    CU_ASSERT_PTR_NOT_NULL_FATAL(matched);
    for (int d = 0; d < nd; d++)
        check_doc_key(&docs[d], keys, n, matched);
    printf("\n");
    for (int i = 0; i < n; i++) {
        if (!matched[i]) {
            fprintf(stderr,
                    "\nkey %s is written by the product but matches no key of docs/redis.md's "
                    "key table\n",
                    keys[i]);
            CU_FAIL("an undocumented key");
        }
        free(keys[i]);
    }
    free(matched);
}

/* ---- the FX key belongs to the FX pipeline ---- */

#define FX_TTL_MS       5000
#define FORGET_AFTER_MS 2000
#define PREMIUM_TTL_MS  2000
#define EVENTS_MAX      1024

/* Events seen on <p>:events:* by a subscriber thread. */
typedef struct ev_log {
    pthread_mutex_t lock;
    redisContext *sub;
    int fx;
    int premiums;
    long long premium_ms[EVENTS_MAX];  /* monotonic arrival */
    bool premium_fx_stale[EVENTS_MAX]; /* stale with fx_age among its reasons */
} ev_log;

static void ev_record(ev_log *e, const char *channel, const char *payload, size_t len)
{
    const char *kind = strrchr(channel, ':');
    kind = kind ? kind + 1 : channel;
    pthread_mutex_lock(&e->lock);
    if (strcmp(kind, "fx") == 0) {
        e->fx++;
    } else if (strcmp(kind, "premium") == 0 && e->premiums < EVENTS_MAX) {
        json_t *j = json_loadb(payload, len, 0, NULL);
        const char *reason = json_string_value(json_object_get(j, "stale_reason"));
        e->premium_ms[e->premiums] = tft_mono_ms();
        e->premium_fx_stale[e->premiums] =
            json_is_true(json_object_get(j, "stale")) && reason && strstr(reason, "fx_age");
        e->premiums++;
        json_decref(j);
    }
    pthread_mutex_unlock(&e->lock);
}

static void *ev_main(void *arg)
{
    ev_log *e = arg;
    void *reply = NULL;
    while (redisGetReply(e->sub, &reply) == REDIS_OK && reply) {
        redisReply *r = reply;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            strcmp(r->element[0]->str, "pmessage") == 0)
            ev_record(e, r->element[2]->str, r->element[3]->str, r->element[3]->len);
        freeReplyObject(r);
        reply = NULL;
    }
    return NULL;
}

typedef struct pttl_wait {
    long long pttl;
    int port;
} pttl_wait;

static bool fx_key_seen(void *arg)
{
    pttl_wait *w = arg;
    w->pttl = int_reply(w->port, "PTTL %s", "tf:fx:USDKRW");
    return w->pttl > 0;
}

static void test_fx_key_expires_with_fx_pipeline_idle(void)
{
    tft_redis *r2 = tft_redis_start(0); /* its own keyspace: only this pipeline writes it */
    CU_ASSERT_PTR_NOT_NULL_FATAL(r2);
    static ev_log ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.lock, NULL);
    ev.sub = tft_redis_connect(r2->port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev.sub);
    redisSetTimeout(ev.sub, (struct timeval){0, 0}); /* block until a message or shutdown */
    redisReply *ok = redisCommand(ev.sub, "PSUBSCRIBE %s", "tf:events:*");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ok);
    freeReplyObject(ok);
    pthread_t thread;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, ev_main, &ev), 0);

    /* demo.yaml's two batch pipelines, scaled down: the FX pipeline runs once (every 10m) with
     * a 5 s fx_ttl; the 1 s pipeline (at 500 ms) reads the rate back from the cache; its
     * premium transform's windows are short so the test sees the whole story in seconds. */
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "redis: {url: 'redis://127.0.0.1:%d/0'}\n"
             "metrics: {listen: '127.0.0.1:0'}\n"
             "pipelines:\n"
             "  - name: fx\n"
             "    every: 10m\n"
             "    lease: {ttl: 2s}\n"
             "    sources:\n"
             "      - use: fx\n"
             "        with: {providers: [{name: dunamu, base_url: '%s'}]}\n"
             "    sinks:\n"
             "      - {use: redis, with: {fx_ttl: %dms}}\n"
             "  - name: kimchi\n"
             "    every: 500ms\n"
             "    lease: {ttl: 2s}\n"
             "    sources:\n"
             "      - {use: bithumb, with: {base_url: '%s', symbols: [BTC]}}\n"
             "      - {use: binance_futures, with: {base_url: '%s', symbols: [BTC]}}\n"
             "      - {use: redis, with: {keys: ['fx:USDKRW']}}\n"
             "    transforms:\n"
             "      - use: premium\n"
             "        with: {max_fx_age: %dms, forget_after: %dms, max_ticker_age: 30s, "
             "max_skew: 30s}\n"
             "      - use: positions\n"
             "    sinks:\n"
             "      - {use: redis, with: {premium_ttl: %dms}}\n",
             r2->port, deploy->fake->base, FX_TTL_MS, deploy->fake->base, deploy->fake->base,
             FX_TTL_MS, FORGET_AFTER_MS, PREMIUM_TTL_MS);
    tfp_proc p;
    CU_ASSERT_FATAL(
        tfp_start(&p, deploy->dir, "fx-ttl", tfp_write_config(deploy->dir, "fx-ttl.yaml", yaml)));

    /* The FX pipeline's one write, and when it is due to expire. */
    pttl_wait w = {0, r2->port};
    CU_ASSERT_FATAL(tft_wait_until(fx_key_seen, &w, 20000));
    long long expires = tft_mono_ms() + w.pttl;
    CU_ASSERT(w.pttl <= FX_TTL_MS);
    /* The 1 s pipeline used it: a premium exists before the rate expires. */
    const char *premium = "tf:premium:bithumb:binance:BTC";
    CU_ASSERT(wait_key(r2->port, premium, true, (int)(expires - tft_mono_ms())));

    /* The key expires on schedule: nothing renews it. */
    long long slack = 1500;
    bool expired =
        wait_key(r2->port, "tf:fx:USDKRW", false, (int)(expires + slack - tft_mono_ms()));
    if (!expired)
        fprintf(stderr,
                "\ntf:fx:USDKRW still there %lld ms after its TTL (PTTL now %lld ms): "
                "something re-writes it\n",
                slack, int_reply(r2->port, "PTTL %s", "tf:fx:USDKRW"));
    CU_ASSERT(expired);
    long long gone_at = tft_mono_ms();

    /* The premiums: flagged stale (fx_age) once the rate is older than max_fx_age, then no
     * more of them forget_after after the last rate read; their key then expires. */
    bool stopped =
        expired && wait_key(r2->port, premium, false, FORGET_AFTER_MS + PREMIUM_TTL_MS + 5000);
    CU_ASSERT(stopped);

    shutdown(ev.sub->fd, SHUT_RDWR);
    pthread_join(thread, NULL);
    redisFree(ev.sub);
    pthread_mutex_destroy(&ev.lock);
    /* One tick after the expiry was noticed, every premium is stale for its FX age. */
    int after = 0, stale_after = 0;
    for (int i = 0; i < ev.premiums; i++) {
        if (ev.premium_ms[i] <= gone_at + 600)
            continue;
        after++;
        stale_after += ev.premium_fx_stale[i];
    }
    printf("\n    events: fx %d, premium %d (%d after the rate expired, %d stale for fx_age)\n",
           ev.fx, ev.premiums, after, stale_after);
    CU_ASSERT_EQUAL(ev.fx, 1); /* the FX pipeline's one write; none from the 1 s pipeline */
    if (expired) {
        CU_ASSERT(after >= 1);
        CU_ASSERT_EQUAL(stale_after, after);
    }
    CU_ASSERT_EQUAL(tft_stop(p.pid, SIGTERM, 10000), 0);
    tft_redis_destroy(r2);
}

/* ---- suite ---- */

static const char *const API_KEY =
    "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
static const char *const API_SECRET =
    "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

static int setup(void)
{
    deploy = tft_deploy_create();
    if (!deploy)
        return 1;
    snprintf(out, sizeof out, "%s/cli.out", deploy->dir);
    /* The CLIs' view of the demo: its Redis (default prefix tf) and a Redis key store. */
    setenv("TF_SCHEMA_MASTER_KEY",
           "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 1);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "redis: {url: 'redis://127.0.0.1:%d/0'}\n"
             "keys: {store: redis, master_key: \"${TF_SCHEMA_MASTER_KEY}\"}\n"
             "pipelines:\n"
             "  - {name: cli, every: 1s, sources: [{use: generate}], sinks: [{use: stdout}]}\n",
             deploy->redis->port);
    const char *cfg = tfp_write_config(deploy->dir, "cli.yaml", yaml);
    if (!cfg)
        return 1;
    snprintf(cli_cfg, sizeof cli_cfg, "%s", cfg);
    /* A Binance-sized API key pair in the key store: the store's key is one the product writes. */
    setenv("TICKFLOW_NEW_API_KEY", API_KEY, 1);
    setenv("TICKFLOW_NEW_API_SECRET", API_SECRET, 1);
    const char *add[] = {"keys",    "add",    "-c",   cli_cfg, "--exchange",
                         "binance", "--name", "main", NULL};
    int rc = cli(add);
    unsetenv("TICKFLOW_NEW_API_KEY");
    unsetenv("TICKFLOW_NEW_API_SECRET");
    if (rc != 0) {
        fprintf(stderr, "tickflow keys add exited %d\n", rc);
        return 1;
    }
    return tft_deploy_start(deploy, "pipelines/demo.yaml", "batch", NULL) > 0 &&
                   tft_deploy_start(deploy, "pipelines/api.yaml", "api", NULL) > 0
               ? 0
               : 1;
}

static int teardown(void)
{
    tft_deploy_destroy(deploy);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"a closed position shows no fresh live block", test_closed_position_live},
        {"docs/redis.md lists every key, sizes match MEMORY USAGE", test_doc_key_table},
        {"the FX key expires with the FX pipeline idle; premiums go stale, then stop",
         test_fx_key_expires_with_fx_pipeline_idle},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("redis schema", tests, setup, teardown);
}
