/*
 * The API key store. An entry is {"v":1,"kid":..,"nonce":..,"ct":..,"tag":..} (base64 fields)
 * holding the AES-256-GCM encryption of {"key":..,"secret":..}; the associated data binds the
 * master key id, exchange and name, so an entry copied under another name does not decrypt.
 * Plaintext is written and parsed here, by hand, into buffers that are wiped: handing it to
 * jansson would leave copies in freed memory.
 */
#include "tf_keys.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "tf_crypto.h"
#include "tf_diag.h"
#include "tf_log.h"
#include "tf_redis.h"

#define AAD_LABEL      "tickflow-key-v1"
#define MAX_FIELD      64   /* exchange and name */
#define MAX_VALUE      1024 /* an API key or secret */
#define MAX_STORE_FILE (16 * 1024 * 1024)
#define MSG_LEN        512

struct tf_keys {
    const tf_keys_settings *ks;
    const tf_redis_settings *redis;
    tf_redis *conn; /* store: redis, connected on first use */
    char *who;
};

/* ---- names and values ---- */

static int check_field(const char *what, const char *v, char *err, size_t err_size)
{
    size_t n = v ? strlen(v) : 0;
    bool ok = n > 0 && n <= MAX_FIELD;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '_' ||
             v[i] == '-';
    if (ok)
        return TF_OK;
    snprintf(err, err_size,
             "%s: expected 1 to %d characters among a-z, 0-9, _ and -; found \"%.80s\"", what,
             MAX_FIELD, v ? v : "");
    return TF_EINVAL;
}

/* The secret values themselves are never echoed, only what is wrong with them. */
static int check_value(const char *what, const char *v, char *err, size_t err_size)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > MAX_VALUE) {
        snprintf(err, err_size, "%s: expected 1 to %d characters; found %zu", what, MAX_VALUE, n);
        return TF_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (iscntrl((unsigned char)v[i]) || v[i] == ' ') {
            snprintf(err, err_size,
                     "%s: expected printable characters without spaces; found a space or control "
                     "character at position %zu",
                     what, i + 1);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

/* "tickflow-key-v1\0<kid>\0<exchange>\0<name>": the NULs keep ("a","bc") apart from ("ab","c"). */
static size_t build_aad(char *out, size_t size, const char *kid, const char *exchange,
                        const char *name)
{
    const char *parts[] = {AAD_LABEL, kid, exchange, name};
    size_t used = 0;
    for (size_t i = 0; i < TF_ARRAY_LEN(parts); i++) {
        size_t n = strlen(parts[i]) + 1;
        if (used + n > size)
            return 0;
        memcpy(out + used, parts[i], n);
        used += n;
    }
    return used - 1; /* without the final NUL */
}

static const tf_master_key *find_master(const tf_keys_settings *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n_masters; i++) {
        if (strcmp(ks->masters[i].id, kid) == 0)
            return &ks->masters[i];
    }
    return NULL;
}

/* ---- the plaintext {"key":"..","secret":".."} ---- */

static size_t escaped_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '"' || *s == '\\' ? 2 : 1;
    return n;
}

static char *put_escaped(char *p, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    return p;
}

/* A wipeable buffer holding the plaintext; *len set. Caller wipes and frees. */
static char *plaintext_build(const char *key, const char *secret, size_t *len)
{
    static const char a[] = "{\"key\":\"";
    static const char b[] = "\",\"secret\":\"";
    static const char c[] = "\"}";
    size_t n = sizeof a - 1 + escaped_len(key) + sizeof b - 1 + escaped_len(secret) + sizeof c - 1;
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    char *p = buf;
    memcpy(p, a, sizeof a - 1);
    p = put_escaped(p + sizeof a - 1, key);
    memcpy(p, b, sizeof b - 1);
    p = put_escaped(p + sizeof b - 1, secret);
    memcpy(p, c, sizeof c);
    *len = n;
    return buf;
}

/* Reads a string body up to its closing quote into out; returns the position after the quote,
 * NULL when malformed, and sets *small when `out` cannot hold it. */
static const char *take_string(const char *p, const char *end, char *out, size_t size, bool *small)
{
    size_t n = 0;
    while (p < end && *p != '"') {
        char ch = *p++;
        if (ch == '\\') {
            if (p >= end || (*p != '"' && *p != '\\'))
                return NULL;
            ch = *p++;
        }
        if (n + 1 >= size)
            *small = true;
        else
            out[n++] = ch;
    }
    if (n < size)
        out[n] = '\0';
    return p < end ? p + 1 : NULL;
}

static int plaintext_parse(const char *pt, size_t len, char *key, size_t key_size, char *secret,
                           size_t secret_size, char *err, size_t err_size)
{
    static const char a[] = "{\"key\":\"";
    static const char b[] = ",\"secret\":\"";
    const char *end = pt + len;
    bool small = false;
    const char *p = NULL;
    if (len > sizeof a && memcmp(pt, a, sizeof a - 1) == 0)
        p = take_string(pt + sizeof a - 1, end, key, key_size, &small);
    if (p && (size_t)(end - p) > sizeof b && memcmp(p, b, sizeof b - 1) == 0)
        p = take_string(p + sizeof b - 1, end, secret, secret_size, &small);
    else
        p = NULL;
    if (!p || end - p != 1 || *p != '}') {
        snprintf(err, err_size,
                 "expected the decrypted entry to be {\"key\", \"secret\"}; found "
                 "another layout");
        return TF_EVALUE;
    }
    if (small) {
        snprintf(err, err_size, "expected buffers of at least %zu bytes for the key and secret",
                 len);
        return TF_EINVAL;
    }
    return TF_OK;
}

/* ---- entries ---- */

int tf_keys_seal(const tf_keys_settings *ks, const char *exchange, const char *name,
                 const char *api_key, const char *secret, char **entry, char *err, size_t err_size)
{
    *entry = NULL;
    int rc = check_field("exchange", exchange, err, err_size);
    rc = rc ? rc : check_field("name", name, err, err_size);
    rc = rc ? rc : check_value("API key", api_key, err, err_size);
    rc = rc ? rc : check_value("API secret", secret, err, err_size);
    if (rc)
        return rc;
    if (!ks || ks->n_masters == 0) {
        snprintf(err, err_size, "expected a keys: section with a master_key; found none");
        return TF_EINVAL;
    }
    const tf_master_key *m = &ks->masters[0];
    char aad[256];
    size_t aad_len = build_aad(aad, sizeof aad, m->id, exchange, name);
    size_t pt_len = 0;
    char *pt = plaintext_build(api_key, secret, &pt_len);
    unsigned char *ct = malloc(pt_len + 1);
    char *b_nonce = NULL;
    char *b_ct = NULL;
    char *b_tag = NULL;
    json_t *j = NULL;
    rc = TF_ENOMEM;
    if (!pt || !ct)
        goto out;
    unsigned char nonce[TF_CRYPTO_NONCE_LEN];
    unsigned char tag[TF_CRYPTO_TAG_LEN];
    if (tf_crypto_seal(m->bytes, aad, aad_len, pt, pt_len, nonce, ct, tag) != TF_OK) {
        snprintf(err, err_size, "encryption failed (OpenSSL)");
        rc = TF_ERR;
        goto out;
    }
    b_nonce = tf_base64_encode(nonce, sizeof nonce);
    b_ct = tf_base64_encode(ct, pt_len);
    b_tag = tf_base64_encode(tag, sizeof tag);
    if (b_nonce && b_ct && b_tag)
        j = json_pack("{s:i, s:s, s:s, s:s, s:s}", "v", TF_KEYS_ENTRY_VERSION, "kid", m->id,
                      "nonce", b_nonce, "ct", b_ct, "tag", b_tag);
    *entry = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    rc = *entry ? TF_OK : TF_ENOMEM;
out:
    if (pt) {
        tf_crypto_wipe(pt, pt_len);
        free(pt);
    }
    free(ct);
    free(b_nonce);
    free(b_ct);
    free(b_tag);
    json_decref(j);
    return rc;
}

/* One base64 field of an entry, decoded and checked for its length (0 = any non-empty). */
static int entry_field(const json_t *e, const char *field, size_t want, unsigned char **out,
                       size_t *len, char *err, size_t err_size)
{
    const char *text = json_string_value(json_object_get(e, field));
    if (!text) {
        snprintf(err, err_size, "truncated entry: expected a base64 string in \"%s\", found %s",
                 field, json_object_get(e, field) ? "another type" : "none");
        return TF_EVALUE;
    }
    char why[160];
    int rc = tf_base64_decode(text, out, len, why, sizeof why);
    if (rc != TF_OK) {
        snprintf(err, err_size, "entry field \"%s\": %s", field,
                 rc == TF_ENOMEM ? "out of memory" : why);
        return rc;
    }
    if ((want && *len != want) || *len == 0) {
        if (want)
            snprintf(err, err_size, "truncated entry: %s is %zu bytes, expected %zu", field, *len,
                     want);
        else
            snprintf(err, err_size, "truncated entry: %s is empty", field);
        return TF_EVALUE;
    }
    return TF_OK;
}

static void known_ids(const tf_keys_settings *ks, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ks->n_masters; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", ks->masters[i].id);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

/* Parses the outer entry: version, kid (a configured one). */
static int entry_parse(const tf_keys_settings *ks, const char *entry, json_t **out,
                       const tf_master_key **m, char *err, size_t err_size)
{
    json_error_t je;
    json_t *e = json_loads(entry, JSON_REJECT_DUPLICATES, &je);
    *out = e;
    if (!json_is_object(e)) {
        snprintf(err, err_size,
                 "expected an entry {\"v\", \"kid\", \"nonce\", \"ct\", \"tag\"}; found %s",
                 e ? "another JSON value" : "text that is not JSON (truncated?)");
        return TF_EVALUE;
    }
    const json_t *v = json_object_get(e, "v");
    if (!json_is_integer(v) || json_integer_value(v) != TF_KEYS_ENTRY_VERSION) {
        snprintf(err, err_size, "unsupported entry version: expected \"v\": %d, found %s%lld",
                 TF_KEYS_ENTRY_VERSION, json_is_integer(v) ? "" : "none or not an integer ",
                 json_is_integer(v) ? (long long)json_integer_value(v) : 0LL);
        return TF_EVALUE;
    }
    const char *kid = json_string_value(json_object_get(e, "kid"));
    if (!kid) {
        snprintf(err, err_size, "truncated entry: expected a master key id in \"kid\", found none");
        return TF_EVALUE;
    }
    *m = find_master(ks, kid);
    if (!*m) {
        char known[256];
        known_ids(ks, known, sizeof known);
        snprintf(err, err_size, "unknown master key id %.40s (known: %s)", kid, known);
        return TF_EVALUE;
    }
    return TF_OK;
}

int tf_keys_unseal(const tf_keys_settings *ks, const char *exchange, const char *name,
                   const char *entry, char *key, size_t key_size, char *secret, size_t secret_size,
                   char *kid, size_t kid_size, char *err, size_t err_size)
{
    json_t *e = NULL;
    const tf_master_key *m = NULL;
    unsigned char *nonce = NULL;
    unsigned char *ct = NULL;
    unsigned char *tag = NULL;
    unsigned char *pt = NULL;
    size_t n_nonce = 0;
    size_t n_ct = 0;
    size_t n_tag = 0;
    if (key_size)
        key[0] = '\0';
    if (secret_size)
        secret[0] = '\0';
    int rc = check_field("exchange", exchange, err, err_size);
    rc = rc ? rc : check_field("name", name, err, err_size);
    if (rc)
        goto out;
    if (!ks || ks->n_masters == 0) {
        snprintf(err, err_size, "expected a keys: section with a master_key; found none");
        rc = TF_ENOTFOUND;
        goto out;
    }
    rc = entry_parse(ks, entry, &e, &m, err, err_size);
    rc = rc ? rc : entry_field(e, "nonce", TF_CRYPTO_NONCE_LEN, &nonce, &n_nonce, err, err_size);
    rc = rc ? rc : entry_field(e, "ct", 0, &ct, &n_ct, err, err_size);
    rc = rc ? rc : entry_field(e, "tag", TF_CRYPTO_TAG_LEN, &tag, &n_tag, err, err_size);
    if (rc)
        goto out;
    if (kid && kid_size)
        snprintf(kid, kid_size, "%s", m->id);
    char aad[256];
    size_t aad_len = build_aad(aad, sizeof aad, m->id, exchange, name);
    pt = malloc(n_ct);
    if (!pt) {
        rc = TF_ENOMEM;
        goto out;
    }
    rc = tf_crypto_open(m->bytes, aad, aad_len, nonce, ct, n_ct, tag, pt);
    if (rc != TF_OK) {
        snprintf(err, err_size,
                 "authentication failed: wrong master key or tampered entry (master key id %s, "
                 "entry %s/%s)",
                 m->id, exchange, name);
        rc = TF_EVALUE;
        goto out;
    }
    rc = plaintext_parse((const char *)pt, n_ct, key, key_size, secret, secret_size, err, err_size);
out:
    if (rc != TF_OK) {
        tf_crypto_wipe(key, key_size);
        tf_crypto_wipe(secret, secret_size);
    }
    if (pt) {
        tf_crypto_wipe(pt, n_ct);
        free(pt);
    }
    free(nonce);
    free(ct);
    free(tag);
    json_decref(e);
    return rc;
}

/* ---- Redis storage ---- */

/* Replaces the entry only if it still holds what rotation read: a writer in between wins. */
static const char CAS_SCRIPT[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0";

static const char *prefix_of(const tf_keys *k)
{
    return k->redis && k->redis->prefix ? k->redis->prefix : "tf";
}

static int redis_key(const tf_keys *k, const char *exchange, const char *name, char *out,
                     size_t size)
{
    int n = snprintf(out, size, "%s:keys:%s:%s", prefix_of(k), exchange, name);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static tf_redis *conn(tf_keys *k, char *err, size_t err_size)
{
    if (!k->redis || !k->redis->configured) {
        snprintf(err, err_size, "store: redis needs a redis: section; found none");
        return NULL;
    }
    if (!k->conn)
        k->conn = tf_redis_create(k->redis, k->who);
    if (!k->conn)
        snprintf(err, err_size, "out of memory");
    return k->conn;
}

static int redis_failed(const tf_keys *k, redisReply *r, char *err, size_t err_size)
{
    if (!r)
        snprintf(err, err_size, "Redis at %s:%d is unreachable",
                 k->redis->host ? k->redis->host : "", k->redis->port);
    else
        snprintf(err, err_size, "Redis replied: %.200s", r->str ? r->str : "an unexpected reply");
    return TF_EREDIS;
}

static int redis_read(tf_keys *k, const char *exchange, const char *name, char **entry, char *err,
                      size_t err_size)
{
    char key[512];
    tf_redis *c = conn(k, err, err_size);
    if (!c)
        return TF_EREDIS;
    if (redis_key(k, exchange, name, key, sizeof key) != 0)
        return TF_EINVAL;
    const char *argv[] = {"GET", key};
    redisReply *r = tf_redis_command_argv(c, 2, argv, NULL);
    int rc = TF_OK;
    if (r && r->type == REDIS_REPLY_NIL)
        rc = TF_ENOTFOUND;
    else if (!r || r->type != REDIS_REPLY_STRING)
        rc = redis_failed(k, r, err, err_size);
    else if (!(*entry = strndup(r->str, r->len)))
        rc = TF_ENOMEM;
    if (rc == TF_ENOTFOUND)
        snprintf(err, err_size, "no API key stored as %s/%s (Redis key %s)", exchange, name, key);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* SET (old == NULL) or compare-and-set; *swapped false when the entry changed meanwhile. */
static int redis_write(tf_keys *k, const char *exchange, const char *name, const char *old,
                       const char *entry, bool *swapped, char *err, size_t err_size)
{
    char key[512];
    tf_redis *c = conn(k, err, err_size);
    if (!c)
        return TF_EREDIS;
    if (redis_key(k, exchange, name, key, sizeof key) != 0)
        return TF_EINVAL;
    redisReply *r;
    if (old) {
        const char *argv[] = {key, old, entry};
        r = tf_redis_eval(c, CAS_SCRIPT, 1, 3, argv, NULL);
    } else {
        const char *argv[] = {"SET", key, entry};
        r = tf_redis_command_argv(c, 3, argv, NULL);
    }
    int rc = TF_OK;
    if (r && r->type == REDIS_REPLY_INTEGER)
        *swapped = r->integer == 1;
    else if (r && r->type == REDIS_REPLY_STATUS)
        *swapped = true;
    else
        rc = redis_failed(k, r, err, err_size);
    if (r)
        freeReplyObject(r);
    return rc;
}

static int redis_delete(tf_keys *k, const char *exchange, const char *name, char *err,
                        size_t err_size)
{
    char key[512];
    tf_redis *c = conn(k, err, err_size);
    if (!c)
        return TF_EREDIS;
    if (redis_key(k, exchange, name, key, sizeof key) != 0)
        return TF_EINVAL;
    const char *argv[] = {"DEL", key};
    redisReply *r = tf_redis_command_argv(c, 2, argv, NULL);
    int rc = TF_OK;
    if (!r || r->type != REDIS_REPLY_INTEGER)
        rc = redis_failed(k, r, err, err_size);
    else if (r->integer == 0) {
        snprintf(err, err_size, "no API key stored as %s/%s (Redis key %s)", exchange, name, key);
        rc = TF_ENOTFOUND;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

/* The SCAN pattern: the prefix with glob characters escaped, then ":keys:*". */
static int scan_pattern(const tf_keys *k, char *out, size_t size)
{
    size_t used = 0;
    for (const char *p = prefix_of(k); *p; p++) {
        if (used + 3 >= size)
            return -1;
        if (strchr("*?[]\\", *p))
            out[used++] = '\\';
        out[used++] = *p;
    }
    int n = snprintf(out + used, size - used, ":keys:*");
    return n > 0 && (size_t)n < size - used ? 0 : -1;
}

/* Adds [exchange, name] of one Redis key to `names` when it has the store's shape. */
static void add_redis_name(const tf_keys *k, const char *key, json_t *names)
{
    size_t plen = strlen(prefix_of(k));
    const char *rest = key + plen + strlen(":keys:");
    const char *colon = strchr(rest, ':');
    if (!colon)
        return;
    char exchange[MAX_FIELD + 1];
    char name[MAX_FIELD + 1];
    int n = snprintf(exchange, sizeof exchange, "%.*s", (int)(colon - rest), rest);
    if (n < 0 || (size_t)n >= sizeof exchange || snprintf(name, sizeof name, "%s", colon + 1) < 0)
        return;
    char ignored[MSG_LEN];
    if (check_field("exchange", exchange, ignored, sizeof ignored) == TF_OK &&
        check_field("name", name, ignored, sizeof ignored) == TF_OK)
        json_array_append_new(names, json_pack("[s, s]", exchange, name));
}

static int redis_names(tf_keys *k, json_t *names, char *err, size_t err_size)
{
    char pattern[256];
    tf_redis *c = conn(k, err, err_size);
    if (!c)
        return TF_EREDIS;
    if (scan_pattern(k, pattern, sizeof pattern) != 0)
        return TF_EINVAL;
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "200"};
        redisReply *r = tf_redis_command_argv(c, 6, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            int rc = redis_failed(k, r, err, err_size);
            if (r)
                freeReplyObject(r);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
            if (keys->element[i]->type == REDIS_REPLY_STRING)
                add_redis_name(k, keys->element[i]->str, names);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return TF_OK;
}

/* ---- file storage: {"version": 1, "entries": {"<exchange>:<name>": <entry>}} ---- */

static json_t *file_load(const tf_keys *k, char *err, size_t err_size)
{
    json_error_t je;
    FILE *f = fopen(k->ks->file, "re");
    if (!f && errno == ENOENT)
        return json_pack("{s:i, s:{}}", "version", 1, "entries");
    if (!f) {
        snprintf(err, err_size, "cannot read the key store %.200s: %s", k->ks->file,
                 strerror(errno));
        return NULL;
    }
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root || !json_is_object(json_object_get(root, "entries"))) {
        snprintf(err, err_size,
                 "%.200s:%d:%d: expected a key store {\"version\": 1, \"entries\": {...}}; "
                 "found %.120s",
                 k->ks->file, je.line, je.column, root ? "another layout" : je.text);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Writes beside the store, then renames over it: a reader sees the old or the new file. */
static int file_save(const tf_keys *k, const json_t *root, char *err, size_t err_size)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", k->ks->file, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        snprintf(err, err_size, "key store path too long: %.200s", k->ks->file);
        return TF_EINVAL;
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return TF_ENOMEM;
    int rc = TF_ERR;
    size_t len = strlen(text);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    bool ok = done == len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, k->ks->file) == 0)
        rc = TF_OK;
out:
    if (rc != TF_OK) {
        snprintf(err, err_size, "cannot write the key store %.200s: %s", k->ks->file,
                 strerror(errno));
        unlink(tmp);
    }
    free(text);
    return rc;
}

/* Writers of the file serialise on <file>.lock (the store itself is replaced by rename, so it
 * cannot carry the lock). Returns the descriptor, or -1 with err set. */
static int file_lock(const tf_keys *k, char *err, size_t err_size)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s.lock", k->ks->file);
    int fd = n > 0 && (size_t)n < sizeof path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd >= 0 && flock(fd, LOCK_EX) == 0)
        return fd;
    snprintf(err, err_size, "cannot lock the key store %.200s.lock: %s", k->ks->file,
             strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static int file_entry_id(char *out, size_t size, const char *exchange, const char *name)
{
    int n = snprintf(out, size, "%s:%s", exchange, name);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int file_read(tf_keys *k, const char *exchange, const char *name, char **entry, char *err,
                     size_t err_size)
{
    char id[2 * MAX_FIELD + 2];
    if (file_entry_id(id, sizeof id, exchange, name) != 0)
        return TF_EINVAL;
    json_t *root = file_load(k, err, err_size);
    if (!root)
        return TF_ERR;
    const json_t *e = json_object_get(json_object_get(root, "entries"), id);
    int rc = TF_OK;
    if (!e) {
        snprintf(err, err_size, "no API key stored as %s/%s in %.200s", exchange, name,
                 k->ks->file);
        rc = TF_ENOTFOUND;
    } else if (!(*entry = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY))) {
        rc = TF_ENOMEM;
    }
    json_decref(root);
    return rc;
}

/* Set (entry != NULL; compare with `old` when given) or delete (entry == NULL). */
static int file_write(tf_keys *k, const char *exchange, const char *name, const char *old,
                      const char *entry, bool *swapped, char *err, size_t err_size)
{
    char id[2 * MAX_FIELD + 2];
    if (file_entry_id(id, sizeof id, exchange, name) != 0)
        return TF_EINVAL;
    int lock = file_lock(k, err, err_size);
    if (lock < 0)
        return TF_ERR;
    json_t *value = NULL;
    json_t *root = file_load(k, err, err_size);
    int rc = root ? TF_OK : TF_ERR;
    json_t *entries = json_object_get(root, "entries");
    const json_t *cur = json_object_get(entries, id);
    char *cur_text = cur ? json_dumps(cur, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    *swapped = !old || (cur_text && strcmp(cur_text, old) == 0);
    if (rc == TF_OK && !entry && !cur) {
        snprintf(err, err_size, "no API key stored as %s/%s in %.200s", exchange, name,
                 k->ks->file);
        rc = TF_ENOTFOUND;
    }
    if (rc == TF_OK && *swapped) {
        json_error_t je;
        value = entry ? json_loads(entry, 0, &je) : NULL;
        if (entry && (!value || json_object_set(entries, id, value) != 0))
            rc = TF_ENOMEM;
        else if (!entry)
            json_object_del(entries, id);
        if (rc == TF_OK)
            rc = file_save(k, root, err, err_size);
    }
    free(cur_text);
    json_decref(value);
    json_decref(root);
    close(lock); /* releases the flock */
    return rc;
}

static int file_names(tf_keys *k, json_t *names, char *err, size_t err_size)
{
    json_t *root = file_load(k, err, err_size);
    if (!root)
        return TF_ERR;
    const char *id;
    json_t *v;
    json_object_foreach(json_object_get(root, "entries"), id, v)
    {
        const char *colon = strchr(id, ':');
        if (colon)
            json_array_append_new(names, json_pack("[s%, s]", id, (size_t)(colon - id), colon + 1));
    }
    json_decref(root);
    return TF_OK;
}

/* ---- the store ---- */

tf_keys *tf_keys_open(const tf_keys_settings *ks, const tf_redis_settings *redis, const char *who)
{
    tf_keys *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->ks = ks;
    k->redis = redis;
    k->who = strdup(who ? who : "keys");
    if (!k->who) {
        free(k);
        return NULL;
    }
    return k;
}

void tf_keys_close(tf_keys *k)
{
    if (!k)
        return;
    tf_redis_destroy(k->conn);
    free(k->who);
    free(k);
}

static bool file_store(const tf_keys *k)
{
    return k->ks->store == TF_KEYS_STORE_FILE;
}

static int store_read(tf_keys *k, const char *exchange, const char *name, char **entry, char *err,
                      size_t err_size)
{
    *entry = NULL;
    return file_store(k) ? file_read(k, exchange, name, entry, err, err_size)
                         : redis_read(k, exchange, name, entry, err, err_size);
}

static int store_write(tf_keys *k, const char *exchange, const char *name, const char *old,
                       const char *entry, bool *swapped, char *err, size_t err_size)
{
    return file_store(k) ? file_write(k, exchange, name, old, entry, swapped, err, err_size)
                         : redis_write(k, exchange, name, old, entry, swapped, err, err_size);
}

static int need_store(const tf_keys *k, char *err, size_t err_size)
{
    if (k && k->ks && k->ks->configured && k->ks->n_masters > 0)
        return TF_OK;
    snprintf(err, err_size, "no keys: section is configured (see docs/keys.md)");
    return TF_ENOTFOUND;
}

int tf_keys_put(tf_keys *k, const char *exchange, const char *name, const char *api_key,
                const char *secret, char *err, size_t err_size)
{
    int rc = need_store(k, err, err_size);
    if (rc)
        return rc;
    char *entry = NULL;
    rc = tf_keys_seal(k->ks, exchange, name, api_key, secret, &entry, err, err_size);
    bool swapped = false;
    if (rc == TF_OK)
        rc = store_write(k, exchange, name, NULL, entry, &swapped, err, err_size);
    free(entry);
    return rc;
}

int tf_keys_get(tf_keys *k, const char *exchange, const char *name, char *key, size_t key_size,
                char *secret, size_t secret_size, char *err, size_t err_size)
{
    int rc = need_store(k, err, err_size);
    rc = rc ? rc : check_field("exchange", exchange, err, err_size);
    rc = rc ? rc : check_field("name", name, err, err_size);
    if (rc)
        return rc;
    char *entry = NULL;
    rc = store_read(k, exchange, name, &entry, err, err_size);
    if (rc == TF_OK)
        rc = tf_keys_unseal(k->ks, exchange, name, entry, key, key_size, secret, secret_size, NULL,
                            0, err, err_size);
    free(entry);
    return rc;
}

int tf_keys_remove(tf_keys *k, const char *exchange, const char *name, char *err, size_t err_size)
{
    int rc = need_store(k, err, err_size);
    rc = rc ? rc : check_field("exchange", exchange, err, err_size);
    rc = rc ? rc : check_field("name", name, err, err_size);
    if (rc)
        return rc;
    bool swapped = false;
    return file_store(k) ? file_write(k, exchange, name, NULL, NULL, &swapped, err, err_size)
                         : redis_delete(k, exchange, name, err, err_size);
}

static int name_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a;
    const json_t *y = *(json_t *const *)b;
    for (size_t i = 0; i < 2; i++) {
        int c = strcmp(json_string_value(json_array_get(x, i)),
                       json_string_value(json_array_get(y, i)));
        if (c)
            return c;
    }
    return 0;
}

/* Every (exchange, name) in the store, sorted; new reference. */
static int store_names(tf_keys *k, json_t **out, char *err, size_t err_size)
{
    json_t *names = json_array();
    *out = NULL;
    if (!names)
        return TF_ENOMEM;
    int rc =
        file_store(k) ? file_names(k, names, err, err_size) : redis_names(k, names, err, err_size);
    if (rc != TF_OK) {
        json_decref(names);
        return rc;
    }
    size_t n = json_array_size(names);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    json_t *sorted = json_array();
    if (!items || !sorted) {
        free(items);
        json_decref(sorted);
        json_decref(names);
        return TF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(names, i);
    qsort(items, n, sizeof *items, name_order);
    for (size_t i = 0; i < n; i++) {
        /* SCAN may return a key twice while Redis rehashes. */
        if (i == 0 || name_order(&items[i - 1], &items[i]) != 0)
            json_array_append(sorted, items[i]);
    }
    free(items);
    json_decref(names);
    *out = sorted;
    return TF_OK;
}

/* "abcd****": enough to tell keys apart, too little to use one. */
static void key_hint(const char *key, char *out, size_t size)
{
    if (strlen(key) >= 8)
        snprintf(out, size, "%.4s****", key);
    else
        snprintf(out, size, "****");
}

static json_t *list_item(tf_keys *k, const char *exchange, const char *name)
{
    char key[MAX_VALUE + 1];
    char secret[MAX_VALUE + 1];
    char kid[64] = "";
    char err[MSG_LEN] = "";
    char *entry = NULL;
    int rc = store_read(k, exchange, name, &entry, err, sizeof err);
    if (rc == TF_OK)
        rc = tf_keys_unseal(k->ks, exchange, name, entry, key, sizeof key, secret, sizeof secret,
                            kid, sizeof kid, err, sizeof err);
    json_t *item;
    if (rc == TF_OK) {
        char hint[16];
        key_hint(key, hint, sizeof hint);
        item = json_pack("{s:s, s:s, s:s, s:s}", "exchange", exchange, "name", name, "kid", kid,
                         "hint", hint);
    } else {
        item = json_pack("{s:s, s:s, s:s}", "exchange", exchange, "name", name, "error", err);
    }
    tf_crypto_wipe(key, sizeof key);
    tf_crypto_wipe(secret, sizeof secret);
    free(entry);
    return item;
}

int tf_keys_list(tf_keys *k, json_t **out, char *err, size_t err_size)
{
    *out = NULL;
    json_t *names = NULL;
    int rc = need_store(k, err, err_size);
    rc = rc ? rc : store_names(k, &names, err, err_size);
    if (rc)
        return rc;
    json_t *list = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        json_t *item = list_item(k, json_string_value(json_array_get(n, 0)),
                                 json_string_value(json_array_get(n, 1)));
        if (item)
            json_array_append_new(list, item);
    }
    json_decref(names);
    *out = list;
    return list ? TF_OK : TF_ENOMEM;
}

/* Re-encrypts one entry; 1 when it was already current, 0 when rotated, else a status. */
static int rotate_one(tf_keys *k, const char *exchange, const char *name, char *err,
                      size_t err_size)
{
    char key[MAX_VALUE + 1];
    char secret[MAX_VALUE + 1];
    char kid[64];
    int rc = TF_OK;
    char *old = NULL;
    char *fresh = NULL;
    /* A writer that replaced the entry meanwhile (keys add) wins; read it again then. */
    for (int attempt = 0; attempt < 5; attempt++) {
        free(old);
        free(fresh);
        old = fresh = NULL;
        rc = store_read(k, exchange, name, &old, err, err_size);
        if (rc == TF_ENOTFOUND)
            rc = 1; /* removed meanwhile: nothing to rotate */
        if (rc == TF_OK)
            rc = tf_keys_unseal(k->ks, exchange, name, old, key, sizeof key, secret, sizeof secret,
                                kid, sizeof kid, err, err_size);
        if (rc == TF_OK && strcmp(kid, k->ks->masters[0].id) == 0)
            rc = 1;
        if (rc != TF_OK)
            break;
        rc = tf_keys_seal(k->ks, exchange, name, key, secret, &fresh, err, err_size);
        bool swapped = false;
        if (rc == TF_OK)
            rc = store_write(k, exchange, name, old, fresh, &swapped, err, err_size);
        if (rc != TF_OK || swapped)
            break;
        snprintf(err, err_size, "the entry kept changing during rotation; run rotate again");
        rc = TF_ERR;
    }
    tf_crypto_wipe(key, sizeof key);
    tf_crypto_wipe(secret, sizeof secret);
    free(old);
    free(fresh);
    return rc;
}

int tf_keys_rotate(tf_keys *k, tf_keys_rotation *out, char *err, size_t err_size)
{
    *out = (tf_keys_rotation){0};
    json_t *names = NULL;
    int rc = need_store(k, err, err_size);
    rc = rc ? rc : store_names(k, &names, err, err_size);
    if (rc)
        return rc;
    out->failed = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        const char *exchange = json_string_value(json_array_get(n, 0));
        const char *name = json_string_value(json_array_get(n, 1));
        char why[MSG_LEN];
        int one = rotate_one(k, exchange, name, why, sizeof why);
        if (one == 1)
            out->current++;
        else if (one == TF_OK)
            out->rotated++;
        else
            json_array_append_new(out->failed, json_pack("{s:s, s:s, s:s}", "exchange", exchange,
                                                         "name", name, "error", why));
    }
    json_decref(names);
    return TF_OK;
}

/* ---- tickflow keys ---- */

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2
#define MAX_CONFIGS  16

typedef struct keys_cli {
    const char *cmd;
    const char *configs[MAX_CONFIGS];
    size_t n_configs;
    const char *exchange;
    const char *name;
    bool json;
    bool help;
} keys_cli;

static void cli_usage(FILE *out)
{
    fputs("usage: tickflow keys COMMAND -c CONFIG [options]\n"
          "\n"
          "The encrypted exchange API key store of the keys: section (docs/keys.md).\n"
          "\n"
          "  add -c CONFIG --exchange EX --name NAME\n"
          "        store an API key and secret, read from TICKFLOW_NEW_API_KEY and\n"
          "        TICKFLOW_NEW_API_SECRET, or else as two lines on stdin (never from arguments)\n"
          "  list -c CONFIG [--json]   exchange, name, master key id and a key hint; no secret\n"
          "  remove -c CONFIG --exchange EX --name NAME\n"
          "  rotate -c CONFIG          re-encrypt every entry under master_key\n"
          "\n"
          "-c may be given more than once (files or directories, as for tickflow run).\n"
          "Exit status: 0 done, 1 a store failure (Redis, an entry that failed), 2 usage or\n"
          "configuration error.\n",
          out);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see tickflow keys --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* The value of an option taking one; NULL after reporting when it is missing. */
static const char *option_value(int argc, const char *const *argv, int *i, const char *what)
{
    if (*i + 1 >= argc || argv[*i + 1][0] == '-') {
        usage_error("keys: %s: expected %s, found %s", argv[*i], what,
                    *i + 1 >= argc ? "nothing" : argv[*i + 1]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(keys_cli *c, int argc, const char *const *argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *what = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (c->n_configs == MAX_CONFIGS)
                return usage_error("keys: -c: expected at most %d configuration paths",
                                   MAX_CONFIGS);
            slot = &c->configs[c->n_configs++];
            what = "a configuration file or directory";
        } else if (strcmp(a, "--exchange") == 0) {
            slot = &c->exchange;
            what = "an exchange name such as binance";
        } else if (strcmp(a, "--name") == 0) {
            slot = &c->name;
            what = "a key name such as main";
        } else {
            return usage_error("keys %s: expected -c, --exchange, --name or --json; found '%s'%s",
                               c->cmd, a,
                               a[0] == '-' ? ""
                                           : " (API keys are never taken from arguments, which "
                                             "other users can read in ps: use stdin or "
                                             "TICKFLOW_NEW_API_KEY / TICKFLOW_NEW_API_SECRET)");
        }
        *slot = option_value(argc, argv, &i, what);
        if (!*slot)
            return EXIT_USAGE;
    }
    return 0;
}

static int parse_cli(keys_cli *c, int argc, const char *const *argv)
{
    static const char *const cmds[] = {"add", "list", "remove", "rotate"};
    const char *sub = argc >= 2 ? argv[1] : NULL;
    if (sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        c->help = true;
        return 0;
    }
    for (size_t i = 0; sub && i < TF_ARRAY_LEN(cmds); i++) {
        if (strcmp(sub, cmds[i]) == 0)
            c->cmd = cmds[i];
    }
    if (!c->cmd)
        return usage_error("keys: expected a subcommand add, list, remove or rotate, found %s%s%s",
                           sub ? "'" : "nothing", sub ? sub : "", sub ? "'" : "");
    return parse_args(c, argc, argv);
}

static int load(const keys_cli *c, const tf_registry *reg, tf_config **cfg)
{
    if (c->n_configs == 0)
        return usage_error("keys %s: -c: expected a configuration file, found no -c", c->cmd);
    tf_diag *diag = tf_diag_create();
    if (!diag) {
        fprintf(stderr, "error: out of memory\n");
        return EXIT_RUNTIME;
    }
    int rc = tf_config_load(c->configs, c->n_configs, reg, diag, cfg);
    if (rc != TF_OK) {
        tf_diag_print(diag, stderr);
        fprintf(stderr, "%zu error(s) in the configuration\n", tf_diag_count(diag));
        tf_diag_destroy(diag);
        return EXIT_USAGE;
    }
    tf_diag_destroy(diag);
    if (!(*cfg)->keys.configured) {
        fprintf(stderr,
                "error: %s: expected a keys: section (store, master_key) describing the key "
                "store, found none (see docs/keys.md)\n",
                c->configs[0]);
        return EXIT_USAGE;
    }
    return 0;
}

static int store_error(int rc, const char *err)
{
    fprintf(stderr, "error: %s\n", err);
    return rc == TF_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
}

/* One line of stdin without its line ending; the echo is off on a terminal. */
static int read_line(const char *prompt, char *buf, size_t size)
{
    struct termios saved;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        struct termios quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fprintf(stderr, "%s: ", prompt);
    }
    bool ok = fgets(buf, (int)size, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (!ok)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* The new pair, from the environment (both variables) or stdin. */
static int read_pair(char *key, char *secret, size_t size)
{
    const char *ek = getenv("TICKFLOW_NEW_API_KEY");
    const char *es = getenv("TICKFLOW_NEW_API_SECRET");
    if (ek || es) {
        if (!ek || !es)
            return usage_error("keys add: expected both TICKFLOW_NEW_API_KEY and "
                               "TICKFLOW_NEW_API_SECRET, found only %s",
                               ek ? "TICKFLOW_NEW_API_KEY" : "TICKFLOW_NEW_API_SECRET");
        snprintf(key, size, "%s", ek);
        snprintf(secret, size, "%s", es);
        return 0;
    }
    if (read_line("API key", key, size) != 0 || read_line("API secret", secret, size) != 0)
        return usage_error("keys add: expected the API key and the secret as two lines on stdin "
                           "(or TICKFLOW_NEW_API_KEY / TICKFLOW_NEW_API_SECRET), found %s",
                           key[0] ? "one line" : "nothing");
    return 0;
}

static int need_entry_args(const keys_cli *c)
{
    if (!c->exchange)
        return usage_error("keys %s: --exchange: expected an exchange name such as binance, "
                           "found no --exchange",
                           c->cmd);
    if (!c->name)
        return usage_error("keys %s: --name: expected a key name such as main, found no --name",
                           c->cmd);
    return 0;
}

static int cmd_add(const keys_cli *c, tf_keys *k, const tf_config *cfg)
{
    char key[MAX_VALUE + 2] = "";
    char secret[MAX_VALUE + 2] = "";
    char err[MSG_LEN];
    int rc = read_pair(key, secret, sizeof key);
    if (rc == 0) {
        int src = tf_keys_put(k, c->exchange, c->name, key, secret, err, sizeof err);
        if (src != TF_OK)
            rc = store_error(src, err);
    }
    if (rc == 0) {
        char hint[16];
        key_hint(key, hint, sizeof hint);
        printf("stored %s/%s (key %s, master key id %s)\n", c->exchange, c->name, hint,
               cfg->keys.masters[0].id);
    }
    tf_crypto_wipe(key, sizeof key);
    tf_crypto_wipe(secret, sizeof secret);
    return rc;
}

static int cmd_list(const keys_cli *c, tf_keys *k)
{
    json_t *list = NULL;
    char err[MSG_LEN];
    int rc = tf_keys_list(k, &list, err, sizeof err);
    if (rc != TF_OK)
        return store_error(rc, err);
    int exit_code = 0;
    if (c->json) {
        json_dumpf(list, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else {
        printf("%-16s %-16s %-8s %s\n", "EXCHANGE", "NAME", "KID", "KEY");
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *error = json_string_value(json_object_get(item, "error"));
        const char *ex = json_string_value(json_object_get(item, "exchange"));
        const char *name = json_string_value(json_object_get(item, "name"));
        if (error) {
            fprintf(stderr, "error: %s/%s: %s\n", ex, name, error);
            exit_code = EXIT_RUNTIME;
        }
        if (!c->json)
            printf("%-16s %-16s %-8s %s\n", ex, name,
                   error ? "-" : json_string_value(json_object_get(item, "kid")),
                   error ? "(unreadable)" : json_string_value(json_object_get(item, "hint")));
    }
    json_decref(list);
    return exit_code;
}

static int cmd_remove(const keys_cli *c, tf_keys *k)
{
    char err[MSG_LEN];
    int rc = tf_keys_remove(k, c->exchange, c->name, err, sizeof err);
    if (rc != TF_OK)
        return store_error(rc, err);
    printf("removed %s/%s\n", c->exchange, c->name);
    return 0;
}

static int cmd_rotate(tf_keys *k, const tf_config *cfg)
{
    tf_keys_rotation r;
    char err[MSG_LEN];
    int rc = tf_keys_rotate(k, &r, err, sizeof err);
    if (rc != TF_OK)
        return store_error(rc, err);
    size_t i;
    json_t *f;
    json_array_foreach(r.failed, i, f)
    {
        fprintf(stderr, "error: %s/%s: %s\n", json_string_value(json_object_get(f, "exchange")),
                json_string_value(json_object_get(f, "name")),
                json_string_value(json_object_get(f, "error")));
    }
    size_t failed = json_array_size(r.failed);
    printf("rotated %zu entr%s to master key id %s, %zu already current, %zu failed\n", r.rotated,
           r.rotated == 1 ? "y" : "ies", cfg->keys.masters[0].id, r.current, failed);
    json_decref(r.failed);
    return failed ? EXIT_RUNTIME : 0;
}

int tf_keys_cli(const tf_registry *reg, int argc, const char *const *argv)
{
    keys_cli c = {0};
    tf_config *cfg = NULL;
    tf_keys *k = NULL;
    int rc = parse_cli(&c, argc, argv);
    if (rc || c.help) {
        if (c.help)
            cli_usage(stdout);
        return rc;
    }
    /* A command's output is its result: connection chatter stays out unless it is a problem. */
    if (tf_log_get_level() > TF_LOG_WARN)
        tf_log_set_level(TF_LOG_WARN);
    bool entry = strcmp(c.cmd, "add") == 0 || strcmp(c.cmd, "remove") == 0;
    rc = entry ? need_entry_args(&c) : 0;
    rc = rc ? rc : load(&c, reg, &cfg);
    if (rc)
        goto out;
    k = tf_keys_open(&cfg->keys, &cfg->redis, "keys");
    if (!k) {
        fprintf(stderr, "error: out of memory\n");
        rc = EXIT_RUNTIME;
        goto out;
    }
    if (strcmp(c.cmd, "add") == 0)
        rc = cmd_add(&c, k, cfg);
    else if (strcmp(c.cmd, "remove") == 0)
        rc = cmd_remove(&c, k);
    else if (strcmp(c.cmd, "list") == 0)
        rc = cmd_list(&c, k);
    else
        rc = cmd_rotate(k, cfg);
out:
    tf_keys_close(k);
    tf_config_destroy(cfg);
    return rc;
}
