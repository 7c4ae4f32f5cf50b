/*
 * tf_keys: sealed entries (round trip, every altered character rejected, an entry moved to
 * another name, a wrong or unknown master key, truncation), the Redis and file stores, rotation
 * while a reader decrypts in a loop, the keys: section of the configuration, and the plugins'
 * api_key_get through a real instance.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tf_config.h"
#include "tf_crypto.h"
#include "tf_instance.h"
#include "tf_keys.h"
#include "tf_log.h"
#include "tf_test.h"
#include "tf_test_plugins.h"

#define API_KEY    "AKIDabcd1234efgh"
#define N_ROTATE   100
#define API_SECRET "s3cr3t/With\"quote\\and+more"

static tf_master_key masters[3];
static tf_keys_settings ks_k1;    /* current k1 */
static tf_keys_settings ks_k2;    /* current k2, old k1 */
static tf_keys_settings ks_only2; /* k2 alone */
static tf_redis_settings redis;
static char prefix[64];
static char *tmp;

static void master(tf_master_key *m, const char *id, unsigned char fill)
{
    m->id = (char *)id;
    memset(m->bytes, fill, sizeof m->bytes);
}

static int setup(void)
{
    static tf_master_key m1[1];
    static tf_master_key m21[2];
    master(&masters[0], "k1", 0x11);
    master(&masters[1], "k2", 0x22);
    m1[0] = masters[0];
    m21[0] = masters[1];
    m21[1] = masters[0];
    ks_k1 = (tf_keys_settings){.configured = true, .masters = m1, .n_masters = 1};
    ks_k2 = (tf_keys_settings){.configured = true, .masters = m21, .n_masters = 2};
    ks_only2 = (tf_keys_settings){.configured = true, .masters = &masters[1], .n_masters = 1};
    snprintf(prefix, sizeof prefix, "tkeys%ld", (long)getpid());
    redis = (tf_redis_settings){
        .configured = true, .host = "127.0.0.1", .port = tft_shared_redis_port(), .prefix = prefix};
    tmp = tft_mkdtemp();
    return redis.port > 0 && tmp ? 0 : -1;
}

static int teardown(void)
{
    tft_rmdir(tmp);
    free(tmp);
    tf_log_shutdown();
    return 0;
}

static char *seal(const tf_keys_settings *ks, const char *name)
{
    char *entry = NULL;
    char err[256];
    CU_ASSERT_EQUAL(tf_keys_seal(ks, "binance", name, API_KEY, API_SECRET, &entry, err, sizeof err),
                    TF_OK);
    return entry;
}

static int unseal(const tf_keys_settings *ks, const char *name, const char *entry, char *err,
                  size_t err_size)
{
    char key[256];
    char secret[256];
    int rc = tf_keys_unseal(ks, "binance", name, entry, key, sizeof key, secret, sizeof secret,
                            NULL, 0, err, err_size);
    if (rc == TF_OK) {
        CU_ASSERT_STRING_EQUAL(key, API_KEY);
        CU_ASSERT_STRING_EQUAL(secret, API_SECRET);
    } else {
        CU_ASSERT_EQUAL(key[0], '\0'); /* never garbage */
        CU_ASSERT_EQUAL(secret[0], '\0');
    }
    return rc;
}

static bool has(const char *text, const char *needle)
{
    bool found = text && strstr(text, needle);
    if (!found)
        fprintf(stderr, "\nexpected \"%s\" in \"%s\"\n", needle, text ? text : "(null)");
    return found;
}

static void test_round_trip(void)
{
    char err[256];
    char *entry = seal(&ks_k1, "main");
    CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
    CU_ASSERT(has(entry, "{\"v\":1,\"kid\":\"k1\",\"nonce\":\""));
    CU_ASSERT_PTR_NULL(strstr(entry, "AKID"));
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", entry, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(unseal(&ks_k2, "main", entry, err, sizeof err), TF_OK); /* k1 as old key */
    char kid[16];
    char key[8];
    char secret[256];
    CU_ASSERT_EQUAL(tf_keys_unseal(&ks_k1, "binance", "main", entry, key, sizeof key, secret,
                                   sizeof secret, kid, sizeof kid, err, sizeof err),
                    TF_EINVAL);
    CU_ASSERT_EQUAL(key[0], '\0');
    free(entry);
    CU_ASSERT_EQUAL(
        tf_keys_seal(&ks_k1, "binance", "main", "", API_SECRET, &entry, err, sizeof err),
        TF_EINVAL);
    CU_ASSERT(has(err, "API key: expected 1 to"));
    CU_ASSERT_EQUAL(
        tf_keys_seal(&ks_k1, "Bin:ance", "main", API_KEY, API_SECRET, &entry, err, sizeof err),
        TF_EINVAL);
    CU_ASSERT(has(err, "exchange: expected 1 to 64 characters"));
    free(entry);
}

/* Every single-bit change of every character of the entry text fails, without output. */
static void test_tamper_text(void)
{
    char err[256];
    char *entry = seal(&ks_k1, "main");
    CU_ASSERT_PTR_NOT_NULL_FATAL(entry);
    size_t n = strlen(entry);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 7; bit++) {
            char saved = entry[i];
            entry[i] = (char)(saved ^ (1 << bit));
            int rc = unseal(&ks_k2, "main", entry, err, sizeof err);
            entry[i] = saved;
            CU_ASSERT_EQUAL(rc, TF_EVALUE);
            if (rc != TF_EVALUE)
                fprintf(stderr, "\nflip of bit %d at %zu accepted\n", bit, i);
        }
    }
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", entry, err, sizeof err), TF_OK);
    free(entry);
}

/* Replaces field `f` of the entry with base64 of its bytes changed by `edit`. */
static char *edit_field(const char *entry, const char *f, size_t flip_at, size_t keep)
{
    json_t *e = json_loads(entry, 0, NULL);
    unsigned char *raw = NULL;
    size_t len = 0;
    char err[128];
    CU_ASSERT_EQUAL(
        tf_base64_decode(json_string_value(json_object_get(e, f)), &raw, &len, err, sizeof err),
        TF_OK);
    if (flip_at < len)
        raw[flip_at] ^= 0x01;
    char *b = tf_base64_encode(raw, keep < len ? keep : len);
    json_object_set_new(e, f, json_string(b));
    char *out = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    free(b);
    free(raw);
    json_decref(e);
    return out;
}

static void test_tamper_bytes(void)
{
    char err[256];
    char *entry = seal(&ks_k1, "main");
    static const char *const fields[] = {"nonce", "ct", "tag"};
    for (size_t f = 0; f < 3; f++) {
        for (size_t i = 0; i < 64; i++) {
            char *bad = edit_field(entry, fields[f], i, SIZE_MAX);
            err[0] = '\0';
            int rc = unseal(&ks_k1, "main", bad, err, sizeof err);
            bool unchanged = strcmp(bad, entry) == 0; /* i past the field's end */
            CU_ASSERT_EQUAL(rc, unchanged ? TF_OK : TF_EVALUE);
            if (!unchanged)
                CU_ASSERT(has(err, "authentication failed: wrong master key or tampered entry"));
            free(bad);
        }
    }
    /* The same entry under another name (or exchange): the associated data differs. */
    CU_ASSERT_EQUAL(unseal(&ks_k1, "spare", entry, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "authentication failed"));
    free(entry);
}

static void test_wrong_and_unknown_master(void)
{
    char err[256];
    char *entry = seal(&ks_k1, "main");
    tf_master_key wrong = masters[0];
    wrong.bytes[0] ^= 1;
    tf_keys_settings ks_wrong = {.configured = true, .masters = &wrong, .n_masters = 1};
    CU_ASSERT_EQUAL(unseal(&ks_wrong, "main", entry, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "authentication failed: wrong master key or tampered entry"));
    CU_ASSERT_EQUAL(unseal(&ks_only2, "main", entry, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "unknown master key id k1 (known: k2)"));
    char *k9 = seal(&ks_k2, "main");
    char *p = strstr(k9, "\"k2\"");
    p[2] = '9';
    CU_ASSERT_EQUAL(unseal(&ks_k2, "main", k9, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "unknown master key id k9 (known: k2, k1)"));
    free(k9);
    free(entry);
}

static void test_truncated(void)
{
    char err[256];
    char *entry = seal(&ks_k1, "main");
    char *short_nonce = edit_field(entry, "nonce", SIZE_MAX, 8);
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", short_nonce, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "truncated entry: nonce is 8 bytes, expected 12"));
    char *short_tag = edit_field(entry, "tag", SIZE_MAX, 12);
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", short_tag, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "truncated entry: tag is 12 bytes, expected 16"));
    char *short_ct = edit_field(entry, "ct", SIZE_MAX, 20);
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", short_ct, err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "authentication failed"));
    for (size_t cut = 0; cut < strlen(entry); cut += 7) {
        char *half = strndup(entry, cut);
        CU_ASSERT_EQUAL(unseal(&ks_k1, "main", half, err, sizeof err), TF_EVALUE);
        free(half);
    }
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", "{\"v\":1,\"kid\":\"k1\"}", err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "truncated entry: expected a base64 string in \"nonce\", found none"));
    CU_ASSERT_EQUAL(unseal(&ks_k1, "main", "{\"v\":2,\"kid\":\"k1\"}", err, sizeof err), TF_EVALUE);
    CU_ASSERT(has(err, "unsupported entry version: expected \"v\": 1, found 2"));
    free(short_nonce);
    free(short_tag);
    free(short_ct);
    free(entry);
}

/* ---- stores ---- */

static tf_keys_settings file_settings(const tf_keys_settings *base, const char *file)
{
    tf_keys_settings s = *base;
    s.store = TF_KEYS_STORE_FILE;
    s.file = (char *)file;
    return s;
}

static void exercise_store(const tf_keys_settings *ks)
{
    char err[256];
    char key[256];
    char secret[256];
    tf_keys *k = tf_keys_open(ks, &redis, "test");
    CU_ASSERT_EQUAL(
        tf_keys_get(k, "binance", "main", key, sizeof key, secret, sizeof secret, err, sizeof err),
        TF_ENOTFOUND);
    CU_ASSERT(has(err, "no API key stored as binance/main"));
    CU_ASSERT_EQUAL(tf_keys_put(k, "binance", "main", API_KEY, API_SECRET, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(tf_keys_put(k, "bithumb", "trade", "BTHMkey99", "x", err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(
        tf_keys_get(k, "binance", "main", key, sizeof key, secret, sizeof secret, err, sizeof err),
        TF_OK);
    CU_ASSERT_STRING_EQUAL(key, API_KEY);
    CU_ASSERT_STRING_EQUAL(secret, API_SECRET);
    json_t *list = NULL;
    CU_ASSERT_EQUAL_FATAL(tf_keys_list(k, &list, err, sizeof err), TF_OK);
    char *text = json_dumps(list, JSON_COMPACT);
    CU_ASSERT(has(text, "{\"exchange\":\"binance\",\"name\":\"main\",\"kid\":\"k1\",\"hint\":"
                        "\"AKID****\"},{\"exchange\":\"bithumb\",\"name\":\"trade\",\"kid\":"
                        "\"k1\",\"hint\":\"BTHM****\"}"));
    CU_ASSERT_PTR_NULL(strstr(text, "s3cr3t"));
    free(text);
    json_decref(list);
    CU_ASSERT_EQUAL(tf_keys_remove(k, "bithumb", "trade", err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(tf_keys_remove(k, "bithumb", "trade", err, sizeof err), TF_ENOTFOUND);
    if (ks->store == TF_KEYS_STORE_REDIS)
        CU_ASSERT_EQUAL(tf_keys_remove(k, "binance", "main", err, sizeof err), TF_OK);
    tf_keys_close(k);
}

static void test_redis_store(void)
{
    exercise_store(&ks_k1);
}

static void test_file_store(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/keys.json", tmp);
    tf_keys_settings s = file_settings(&ks_k1, path);
    exercise_store(&s);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(tft_file_count(path, "s3cr3t"), 0);
    CU_ASSERT_EQUAL(tft_file_count(path, "AKID"), 0);
    CU_ASSERT_EQUAL(tft_file_count(path, "\"kid\": \"k1\""), 1);
}

/* ---- rotation under a reader ---- */

typedef struct reader {
    const tf_keys_settings *ks;
    atomic_bool stop;
    atomic_ulong reads;
    atomic_ulong failures;
    char last_error[256];
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    tf_keys *k = tf_keys_open(r->ks, &redis, "reader");
    char key[256];
    char secret[256];
    char err[256];
    char name[16];
    for (unsigned long i = 0; !atomic_load(&r->stop); i++) {
        snprintf(name, sizeof name, "n%lu", i % N_ROTATE);
        int rc = tf_keys_get(k, "binance", name, key, sizeof key, secret, sizeof secret, err,
                             sizeof err);
        bool ok = rc == TF_OK && strcmp(key, API_KEY) == 0 && strcmp(secret, API_SECRET) == 0;
        if (!ok) {
            atomic_fetch_add(&r->failures, 1);
            snprintf(r->last_error, sizeof r->last_error, "%.15s: %.200s", name, err);
        }
        atomic_fetch_add(&r->reads, 1);
    }
    tf_keys_close(k);
    return NULL;
}

static bool enough_reads(void *arg)
{
    return atomic_load(&((reader *)arg)->reads) >= 200;
}

static void rotate_under_reader(const tf_keys_settings *old, const tf_keys_settings *cur)
{
    char err[256];
    char name[16];
    tf_keys *w = tf_keys_open(old, &redis, "writer");
    for (int i = 0; i < N_ROTATE; i++) {
        snprintf(name, sizeof name, "n%d", i);
        CU_ASSERT_EQUAL(tf_keys_put(w, "binance", name, API_KEY, API_SECRET, err, sizeof err),
                        TF_OK);
    }
    tf_keys_close(w);
    reader r = {.ks = cur};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, read_loop, &r), 0);
    CU_ASSERT(tft_wait_until(enough_reads, &r, 10000));
    tf_keys *k = tf_keys_open(cur, &redis, "rotate");
    tf_keys_rotation rot;
    unsigned long at_start = atomic_load(&r.reads);
    CU_ASSERT_EQUAL(tf_keys_rotate(k, &rot, err, sizeof err), TF_OK);
    /* The reader really ran while entries were being replaced. */
    CU_ASSERT(atomic_load(&r.reads) > at_start);
    CU_ASSERT_EQUAL(rot.rotated, N_ROTATE);
    CU_ASSERT_EQUAL(rot.current, 0);
    CU_ASSERT_EQUAL(json_array_size(rot.failed), 0);
    json_decref(rot.failed);
    unsigned long before = atomic_load(&r.reads);
    r.reads = 0;
    CU_ASSERT(tft_wait_until(enough_reads, &r, 10000));
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    CU_ASSERT(before >= 200);
    CU_ASSERT_EQUAL(atomic_load(&r.failures), 0);
    if (r.failures)
        fprintf(stderr, "\nreader failed: %s\n", r.last_error);
    /* Everything is under k2 now: k1 is no longer needed, and a second rotation has no work. */
    CU_ASSERT_EQUAL(tf_keys_rotate(k, &rot, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(rot.rotated, 0);
    CU_ASSERT_EQUAL(rot.current, N_ROTATE);
    json_decref(rot.failed);
    tf_keys_close(k);
    tf_keys_settings only2 = ks_only2;
    only2.store = cur->store;
    only2.file = cur->file;
    tf_keys *k2 = tf_keys_open(&only2, &redis, "k2");
    json_t *list = NULL;
    CU_ASSERT_EQUAL(tf_keys_list(k2, &list, err, sizeof err), TF_OK);
    char *text = json_dumps(list, JSON_COMPACT);
    CU_ASSERT_PTR_NULL(strstr(text, "error"));
    CU_ASSERT_PTR_NULL(strstr(text, "\"k1\""));
    free(text);
    json_decref(list);
    for (int i = 0; i < N_ROTATE; i++) {
        snprintf(name, sizeof name, "n%d", i);
        CU_ASSERT_EQUAL(tf_keys_remove(k2, "binance", name, err, sizeof err), TF_OK);
    }
    tf_keys_close(k2);
}

static void test_rotate_redis(void)
{
    rotate_under_reader(&ks_k1, &ks_k2);
}

static void test_rotate_file(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/rotate.json", tmp);
    tf_keys_settings old = file_settings(&ks_k1, path);
    tf_keys_settings cur = file_settings(&ks_k2, path);
    rotate_under_reader(&old, &cur);
}

static void test_rotate_reports_failures(void)
{
    char err[256];
    tf_keys *w = tf_keys_open(&ks_k1, &redis, "writer");
    CU_ASSERT_EQUAL(tf_keys_put(w, "binance", "lost", API_KEY, API_SECRET, err, sizeof err), TF_OK);
    tf_keys_close(w);
    tf_keys *k = tf_keys_open(&ks_only2, &redis, "rotate");
    tf_keys_rotation rot;
    CU_ASSERT_EQUAL(tf_keys_rotate(k, &rot, err, sizeof err), TF_OK);
    CU_ASSERT_EQUAL(json_array_size(rot.failed), 1);
    const json_t *f = json_array_get(rot.failed, 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(f, "name")), "lost");
    CU_ASSERT(has(json_string_value(json_object_get(f, "error")), "unknown master key id k1"));
    json_decref(rot.failed);
    CU_ASSERT_EQUAL(tf_keys_remove(k, "binance", "lost", err, sizeof err), TF_OK);
    tf_keys_close(k);
}

/* ---- configuration and the host service ---- */

static int t_init(const tf_host *host, tf_instance *self, const tf_options *options,
                  void **instance);
static const tf_plugin_descriptor tsrc = {
    TF_PLUGIN_HEADER,
    .name = "tsrc",
    .kind = TF_KIND_SOURCE,
    .description = "test",
    .version = "1",
    .options = NULL,
    .init = t_init,
    .destroy = tft_noop_destroy,
    .collect = tft_noop_collect,
};
static const tf_plugin_descriptor tsink = {
    TF_PLUGIN_HEADER,        .name = "tsink", .kind = TF_KIND_SINK, .description = "test",
    .version = "1",          .options = NULL, .init = t_init,       .destroy = tft_noop_destroy,
    .write = tft_noop_write,
};

static int got_rc;
static char got_key[64];
static char got_err[256];

static int t_init(const tf_host *host, tf_instance *self, const tf_options *options,
                  void **instance)
{
    TF_UNUSED(options);
    *instance = NULL;
    char secret[64];
    got_rc = TF_ERR;
    if (TF_HOST_HAS(host, api_key_get))
        got_rc = host->api_key_get(self, "binance", "main", got_key, sizeof got_key, secret,
                                   sizeof secret, got_err, sizeof got_err);
    explicit_bzero(secret, sizeof secret);
    return TF_OK;
}

static tf_config *load_yaml(tf_registry *reg, const char *yaml, tf_diag *diag)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/c.yaml", tmp);
    CU_ASSERT_EQUAL(tft_write_file(path, yaml), 0);
    const char *paths[] = {path};
    tf_config *cfg = NULL;
    tf_config_load(paths, 1, reg, diag, &cfg);
    return cfg;
}

static const char PIPE[] = "pipelines:\n"
                           "  - name: p\n"
                           "    every: 1s\n"
                           "    sources: [tsrc]\n"
                           "    sinks: [tsink]\n";

static void test_config_and_host(void)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    tf_registry_add(reg, &tsrc, "(test)", diag);
    tf_registry_add(reg, &tsink, "(test)", diag);
    setenv("TKEYS_MASTER", "2222222222222222222222222222222222222222222222222222222222222222", 1);
    setenv("TKEYS_OLD", "ERERERERERERERERERERERERERERERERERERERERERE=", 1);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "redis: {url: \"redis://127.0.0.1:%d\", prefix: %s}\n"
             "keys:\n"
             "  master_key: ${TKEYS_MASTER}\n"
             "  master_key_id: k2\n"
             "  old_master_keys: [{id: k1, key: \"${TKEYS_OLD}\"}]\n%s",
             redis.port, prefix, PIPE);
    tf_config *cfg = load_yaml(reg, yaml, diag);
    if (!cfg)
        tf_diag_print(diag, stderr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT(cfg->keys.configured);
    CU_ASSERT_EQUAL(cfg->keys.store, TF_KEYS_STORE_REDIS);
    CU_ASSERT_EQUAL_FATAL(cfg->keys.n_masters, 2);
    CU_ASSERT_STRING_EQUAL(cfg->keys.masters[1].id, "k1");
    CU_ASSERT_EQUAL(memcmp(cfg->keys.masters[0].bytes, masters[1].bytes, 32), 0);
    CU_ASSERT_EQUAL(memcmp(cfg->keys.masters[1].bytes, masters[0].bytes, 32), 0);
    CU_ASSERT_PTR_EQUAL(cfg->redis.keys, &cfg->keys);

    /* A plugin reads an entry written under k1 with the old key still configured. */
    char err[256];
    tf_keys *w = tf_keys_open(&ks_k1, &redis, "writer");
    CU_ASSERT_EQUAL(tf_keys_put(w, "binance", "main", API_KEY, API_SECRET, err, sizeof err), TF_OK);
    tf_keys_close(w);
    tf_instance *inst =
        tf_instance_create(&cfg->pipelines[0].sources[0], "p", NULL, &cfg->redis, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL(inst);
    CU_ASSERT_EQUAL(got_rc, TF_OK);
    CU_ASSERT_STRING_EQUAL(got_key, API_KEY);
    char masked[256];
    tf_log_mask("key=" API_KEY " secret=" API_SECRET, masked, sizeof masked);
    CU_ASSERT_PTR_NULL(strstr(masked, API_KEY));
    CU_ASSERT_PTR_NULL(strstr(masked, "s3cr3t"));
    /* A reload restarts the pipeline when the entry read at init changed, and only then: a
     * re-encryption (new nonce, rotation) of the same pair is no change. */
    CU_ASSERT_FALSE(tf_instance_keys_changed(inst));
    w = tf_keys_open(&ks_k1, &redis, "writer");
    CU_ASSERT_EQUAL(tf_keys_put(w, "binance", "main", API_KEY, "an0ther", err, sizeof err), TF_OK);
    CU_ASSERT(tf_instance_keys_changed(inst));
    CU_ASSERT_EQUAL(tf_keys_remove(w, "binance", "main", err, sizeof err), TF_OK);
    CU_ASSERT(tf_instance_keys_changed(inst));
    CU_ASSERT_EQUAL(tf_keys_put(w, "binance", "main", API_KEY, API_SECRET, err, sizeof err), TF_OK);
    CU_ASSERT_FALSE(tf_instance_keys_changed(inst));
    tf_keys_close(w);
    tf_instance_destroy(inst);
    tf_keys *k = tf_keys_open(&cfg->keys, &cfg->redis, "rm");
    CU_ASSERT_EQUAL(tf_keys_remove(k, "binance", "main", err, sizeof err), TF_OK);
    tf_keys_close(k);
    tf_config_destroy(cfg);

    /* Without a keys: section, the service says so. */
    snprintf(yaml, sizeof yaml, "%s", PIPE);
    cfg = load_yaml(reg, yaml, diag);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    inst = tf_instance_create(&cfg->pipelines[0].sources[0], "p", NULL, &cfg->redis, NULL, NULL);
    CU_ASSERT_EQUAL(got_rc, TF_ENOTFOUND);
    CU_ASSERT(has(got_err, "no keys: section is configured"));
    tf_instance_destroy(inst);
    tf_config_destroy(cfg);

    /* Problems are reported where they are written, without the secret. */
    setenv("TKEYS_SHORT", "0011", 1);
    snprintf(yaml, sizeof yaml,
             "keys:\n"
             "  store: file\n"
             "  master_key: ${TKEYS_SHORT}\n"
             "  old_master_keys: [{id: \"bad id\", key: \"${TKEYS_OLD}\"}]\n%s",
             PIPE);
    tf_diag *d2 = tf_diag_create();
    cfg = load_yaml(reg, yaml, d2);
    CU_ASSERT_PTR_NULL(cfg);
    char *all = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&all, &len);
    tf_diag_print(d2, mem);
    fclose(mem);
    CU_ASSERT(has(all, "c.yaml:2:10: keys.file: store: file needs the path"));
    CU_ASSERT(has(all, "c.yaml:3:15: keys.master_key: expected a 256-bit key"));
    CU_ASSERT(has(all, "found base64 of 3 bytes"));
    CU_ASSERT_PTR_NULL(strstr(all, "0011"));
    CU_ASSERT_PTR_NULL(strstr(all, "ERERER"));
    free(all);
    tf_diag_destroy(d2);
    tf_config_destroy(cfg);
    tf_diag_destroy(diag);
    tf_registry_destroy(reg);
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"seal and unseal round trip", test_round_trip},
        {"every flipped bit of the entry text fails", test_tamper_text},
        {"every flipped byte of nonce, ct, tag, and a renamed entry fail", test_tamper_bytes},
        {"wrong or unknown master key", test_wrong_and_unknown_master},
        {"truncated entries", test_truncated},
        {"Redis store", test_redis_store},
        {"file store: mode 0600, no plaintext", test_file_store},
        {"rotation (Redis) under a reader", test_rotate_redis},
        {"rotation (file) under a reader", test_rotate_file},
        {"rotation names the entries it could not read", test_rotate_reports_failures},
        {"keys: section and api_key_get", test_config_and_host},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("tf_keys", tests, setup, teardown);
}
