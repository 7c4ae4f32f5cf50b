/*
 * Configuration loading: reads every file, interpolates ${...}, then validates the runtime
 * sections (with the option tables below, through the same engine as plugin options) and the
 * pipelines, collecting every problem before deciding. Owns the tf_config it returns.
 */
#include "tf_config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tf_crypto.h"
#include "tf_log.h"
#include "tf_options.h"
#include "tf_yaml.h"

#define PATH_LEN         512
#define MIN_EVERY_MS     10
#define MIN_LEASE_TTL_MS 100
#define MAX_NAME_LEN     64
#define MAX_SECRET_FILE  65536

/* ---- option tables: the single declaration of every runtime setting ---- */

const tf_option_def tf_config_redis_options[] = {
    {"url", TF_OPT_STRING, NULL, 1,
     "Redis server as redis://[host][:port][/db] (host 127.0.0.1, port 6379, db 0 when left "
     "out); credentials go in user and password, never in the URL",
     0, NULL},
    {"user", TF_OPT_SECRET, NULL, 0, "ACL user name (Redis 6+), from ${VAR} or ${file:/path}", 0,
     NULL},
    {"password", TF_OPT_SECRET, NULL, 0, "Password (AUTH), from ${VAR} or ${file:/path}", 0, NULL},
    {"prefix", TF_OPT_STRING, "tf", 0,
     "Prefix of every key tickflow writes (leases, fencing tokens, sink keys)", 0, NULL},
    {"connect_timeout", TF_OPT_DURATION, "500ms", 0, "Limit for connecting to Redis", 0, NULL},
    {"command_timeout", TF_OPT_DURATION, "1s", 0, "Limit for one Redis command", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def http_host_fields[] = {
    {"rate", TF_OPT_DOUBLE, NULL, 1, "Requests per second allowed to this host", 0, NULL},
    {"burst", TF_OPT_DOUBLE, NULL, 0,
     "Requests that may go out back to back after a quiet period (token bucket size); default: "
     "the rate",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

const tf_option_def tf_config_http_options[] = {
    {"user_agent", TF_OPT_STRING, "tickflow/" TF_VERSION_STRING, 0,
     "User-Agent header of every request", 0, NULL},
    {"connect_timeout", TF_OPT_DURATION, "3s", 0,
     "Limit for connecting (TCP and TLS), unless a plugin asks for its own", 0, NULL},
    {"timeout", TF_OPT_DURATION, "10s", 0,
     "Limit for a whole request, unless a plugin asks for its own", 0, NULL},
    {"max_body", TF_OPT_INT, "8388608", 0,
     "Largest response body accepted, in bytes (8 MiB); a larger one fails as too_large", 0, NULL},
    {"breaker_failures", TF_OPT_INT, "5", 0,
     "Consecutive failures to one host that open its circuit breaker", 0, NULL},
    {"breaker_base", TF_OPT_DURATION, "1s", 0,
     "First open period of a circuit breaker (jittered); it doubles after each failed probe", 0,
     NULL},
    {"breaker_max", TF_OPT_DURATION, "60s", 0, "Longest open period of a circuit breaker", 0, NULL},
    {"retry_after_max", TF_OPT_DURATION, "5m", 0,
     "Longest block a Retry-After answer imposes on a host; a longer one is cut to it", 0, NULL},
    {"hosts", TF_OPT_MAP, "{api.bithumb.com: {rate: 15}, fapi.binance.com: {rate: 20}}", 0,
     "Rate limits per host (or host:port, which wins over the bare host): {rate, burst}, or just "
     "the rate. Built-in entries you do not list stay in force",
     TF_OPT_MAP, http_host_fields},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

const tf_option_def tf_config_log_options[] = {
    {"level", TF_OPT_STRING, "info", 0, "error, warn, info, debug or trace", 0, NULL},
    {"format", TF_OPT_STRING, "text", 0,
     "text (one line per message) or json (one JSON object per line)", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

const tf_option_def tf_config_metrics_options[] = {
    {"listen", TF_OPT_STRING, NULL, 0,
     "host:port serving /metrics, /healthz and /readyz, e.g. 127.0.0.1:9464 ([v6addr]:port for "
     "IPv6); no listener when absent",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def keys_old_fields[] = {
    {"id", TF_OPT_STRING, NULL, 1, "The master key id that entries encrypted with this key carry",
     0, NULL},
    {"key", TF_OPT_SECRET, NULL, 1,
     "The former master key (64 hex digits or base64 of 32 bytes), from ${VAR} or ${file:/path}", 0,
     NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

const tf_option_def tf_config_keys_options[] = {
    {"store", TF_OPT_STRING, "redis", 0,
     "Where the encrypted exchange API keys live: redis (<prefix>:keys:<exchange>:<name>, needs "
     "a redis: section) or file",
     0, NULL},
    {"file", TF_OPT_STRING, NULL, 0,
     "The store file for store: file (JSON, written atomically with mode 0600)", 0, NULL},
    {"master_key", TF_OPT_SECRET, NULL, 1,
     "The 256-bit key that encrypts the entries: 64 hex digits or base64 of 32 bytes, from ${VAR} "
     "or ${file:/path}, never stored beside the data (openssl rand -hex 32)",
     0, NULL},
    {"master_key_id", TF_OPT_STRING, "k1", 0,
     "The id recorded in every entry master_key encrypts; change it with the key", 0, NULL},
    {"old_master_keys", TF_OPT_LIST, "[]", 0,
     "Former master keys {id, key}, accepted for reading while `tickflow keys rotate` "
     "re-encrypts their entries",
     TF_OPT_MAP, keys_old_fields},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def lease_fields[] = {
    {"ttl", TF_OPT_DURATION, "2s", 0,
     "How long the lease lasts without renewal: a replica that dies is replaced after at most "
     "this (at least 100ms)",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def stage_fields[] = {
    {"use", TF_OPT_STRING, NULL, 1, "Plugin name (see tickflow plugins list)", 0, NULL},
    {"with", TF_OPT_MAP, NULL, 0, "The plugin's options (see docs/plugins/)", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

const tf_option_def tf_config_pipeline_options[] = {
    {"name", TF_OPT_STRING, NULL, 1,
     "Pipeline name: [a-z0-9_-]+, at most 64 characters, unique across all files", 0, NULL},
    {"every", TF_OPT_DURATION, NULL, 1, "Tick period (at least 10ms)", 0, NULL},
    {"lease", TF_OPT_MAP, NULL, 0,
     "Run on one replica at a time through a Redis lease: on/true, off/false or {ttl: 2s}; on "
     "by default when a redis: section exists",
     0, lease_fields},
    {"sources", TF_OPT_LIST, NULL, 1,
     "Plugins that produce the tick's records: {use: NAME, with: {...}}, or just NAME", TF_OPT_MAP,
     stage_fields},
    {"transforms", TF_OPT_LIST, "[]", 0, "Plugins that derive or drop records, in order",
     TF_OPT_MAP, stage_fields},
    {"sinks", TF_OPT_LIST, NULL, 1, "Plugins that consume the tick's records", TF_OPT_MAP,
     stage_fields},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- a small string builder that leaves no copy of its contents behind ---- */

typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        /* Not realloc: the old block may hold a secret and must be wiped before it is freed. */
        char *p = malloc(cap);
        if (!p) {
            b->oom = true;
            return;
        }
        if (b->p) {
            memcpy(p, b->p, b->len);
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_wipe(sbuf *b)
{
    if (b->p) {
        explicit_bzero(b->p, b->cap);
        free(b->p);
    }
    *b = (sbuf){0};
}

/* ---- interpolation ---- */

static bool valid_var_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    }
    return true;
}

/* Reads a secret file into `b` without its trailing newlines. Returns 0, or -1 with a reason. */
static int read_secret_file(const char *path, sbuf *b, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "cannot read %.200s for ${file:...}: %s", path, strerror(errno));
        return -1;
    }
    char buf[4096];
    int rc = 0;
    size_t start = b->len;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_size, "cannot read %.200s for ${file:...}: %s", path,
                     strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (memchr(buf, '\0', (size_t)n) || b->len - start + (size_t)n > MAX_SECRET_FILE) {
            snprintf(
                err, err_size,
                "expected %.200s to hold text of at most %d bytes for ${file:...}; found binary "
                "data or a larger file",
                path, MAX_SECRET_FILE);
            rc = -1;
            break;
        }
        sb_add(b, buf, (size_t)n);
    }
    explicit_bzero(buf, sizeof buf);
    close(fd);
    /* Files written by editors and `echo` end in a newline that is no part of the secret. */
    while (rc == 0 && b->len > start && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == '\r'))
        b->p[--b->len] = '\0';
    return rc;
}

/* One ${...} reference, `expr` being what is between the braces. */
static int resolve(const char *expr, size_t len, sbuf *b, char *err, size_t err_size)
{
    const char *dflt = NULL;
    size_t name_len = len;
    for (size_t i = 0; i + 1 < len; i++) {
        if (expr[i] == ':' && expr[i + 1] == '-') {
            dflt = expr + i + 2;
            name_len = i;
            break;
        }
    }
    size_t dflt_len = dflt ? len - name_len - 2 : 0;
    if (name_len > 5 && strncmp(expr, "file:", 5) == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%.*s", (int)(name_len - 5), expr + 5);
        size_t mark = b->len;
        char why[512];
        if (read_secret_file(path, b, why, sizeof why) == 0)
            return 0;
        b->len = mark; /* drop what was read before the failure */
        if (b->p)
            explicit_bzero(b->p + mark, b->cap - mark);
        if (dflt) {
            sb_add(b, dflt, dflt_len);
            return 0;
        }
        snprintf(err, err_size, "%s", why);
        return -1;
    }
    if (!valid_var_name(expr, name_len)) {
        snprintf(err, err_size,
                 "expected ${NAME}, ${NAME:-default} or ${file:/path} with NAME made of letters, "
                 "digits and _; found ${%.*s}",
                 (int)(len > 64 ? 64 : len), expr);
        return -1;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)name_len, expr);
    const char *value = getenv(name);
    if (value && *value)
        sb_add(b, value, strlen(value));
    else if (dflt)
        sb_add(b, dflt, dflt_len);
    else if (!value) {
        snprintf(err, err_size,
                 "environment variable %s is not set (write ${%s:-default} to give a default)",
                 name, name);
        return -1;
    }
    return 0;
}

char *tf_env_interpolate(const char *text, char *err, size_t err_size)
{
    char dummy[8];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    err[0] = '\0';
    sbuf b = {0};
    sb_add(&b, "", 0);
    const char *p = text ? text : "";
    while (*p) {
        const char *dollar = strchr(p, '$');
        if (!dollar) {
            sb_add(&b, p, strlen(p));
            break;
        }
        sb_add(&b, p, (size_t)(dollar - p));
        if (dollar[1] == '$' || dollar[1] != '{') {
            /* "$$" is one literal '$'; a '$' not followed by '{' is just a '$'. */
            sb_add(&b, "$", 1);
            p = dollar + (dollar[1] == '$' ? 2 : 1);
            continue;
        }
        const char *close = strchr(dollar + 2, '}');
        if (!close) {
            snprintf(err, err_size, "unterminated ${ in \"%.40s\" (expected a closing })", dollar);
            goto fail;
        }
        if (resolve(dollar + 2, (size_t)(close - dollar - 2), &b, err, err_size) != 0)
            goto fail;
        p = close + 1;
    }
    if (b.oom) {
        snprintf(err, err_size, "out of memory while interpolating");
        goto fail;
    }
    return b.p;
fail:
    sb_wipe(&b);
    return NULL;
}

/* ---- the loader ---- */

enum { SEC_REDIS, SEC_HTTP, SEC_LOG, SEC_METRICS, SEC_KEYS, SEC_COUNT };

static const char *const section_names[SEC_COUNT] = {"redis", "http", "log", "metrics", "keys"};
/* keys last: it joined after the others, and messages listing these keep their old prefix. */
static const char *const top_level_names[] = {"redis",   "http",      "log",
                                              "metrics", "pipelines", "keys"};

typedef struct section {
    const tf_yaml_node *key; /* where it was defined */
    const tf_yaml_node *value;
} section;

typedef struct pipeline_ref {
    const tf_yaml_node *node;
    size_t index; /* in its file's pipelines: list */
} pipeline_ref;

typedef struct loader {
    const tf_registry *reg;
    tf_diag *diag;
    tf_yaml_doc **docs; /* owned */
    size_t n_docs;
    section sections[SEC_COUNT];
    pipeline_ref *pipes; /* owned array of borrowed nodes */
    size_t n_pipes;
    bool saw_pipelines;
    bool nomem;
} loader;

__attribute__((format(printf, 4, 5))) static void problem(loader *L, const tf_yaml_node *n,
                                                          const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int rc = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        snprintf(msg, sizeof msg, "invalid configuration");
    tf_diag_add(L->diag, n ? n->file : NULL, n ? n->line : 0, n ? n->col : 0, path, "%s", msg);
}

static char *dup_or_flag(loader *L, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        L->nomem = true;
    return d;
}

/* "unknown key 'x' in <where>; did you mean 'y'?" over a table's names. */
static void unknown_key(loader *L, const tf_yaml_node *key, const char *path, const char *where,
                        const char *const *names, size_t n)
{
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", names[i]);
        if (rc > 0 && (size_t)rc < sizeof known - used)
            used += (size_t)rc;
    }
    const char *hint = tf_yaml_suggest(key->text, names, n);
    if (hint)
        problem(L, key, path, "unknown key '%s' in %s; did you mean '%s'?", key->text, where, hint);
    else
        problem(L, key, path, "unknown key '%s' in %s; expected one of: %s", key->text, where,
                known);
}

/* Keys of `map` that `table` does not declare. */
static void check_keys(loader *L, const tf_yaml_node *map, const tf_option_def *table,
                       const char *path, const char *where)
{
    const char *names[16];
    size_t n = 0;
    for (size_t i = 0; table[i].name && n < TF_ARRAY_LEN(names); i++)
        names[n++] = table[i].name;
    for (size_t i = 0; i < map->n_pairs; i++) {
        const tf_yaml_node *key = map->pairs[i].key;
        bool known = false;
        for (size_t j = 0; j < n && !known; j++)
            known = strcmp(names[j], key->text) == 0;
        if (!known) {
            char sub[PATH_LEN];
            tf_yaml_path_key(sub, sizeof sub, path, key->text);
            unknown_key(L, key, sub, where, names, n);
        }
    }
}

/* ---- files ---- */

static int yaml_name_filter(const struct dirent *e)
{
    const char *n = e->d_name;
    size_t len = strlen(n);
    /* Hidden entries are skipped: editors' temporaries, and the ..data links of Kubernetes
     * ConfigMap volumes, which would load every file twice. */
    if (n[0] == '.')
        return 0;
    return (len > 5 && strcmp(n + len - 5, ".yaml") == 0) ||
           (len > 4 && strcmp(n + len - 4, ".yml") == 0);
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_one(loader *L, const char *path)
{
    tf_yaml_doc *doc = tf_yaml_load_file(path, L->diag);
    if (!doc)
        return;
    tf_yaml_doc **grown = realloc(L->docs, (L->n_docs + 1) * sizeof *grown);
    if (!grown) {
        L->nomem = true;
        tf_yaml_doc_destroy(doc);
        return;
    }
    L->docs = grown;
    L->docs[L->n_docs++] = doc;
    tf_yaml_interpolate(doc, L->diag);
}

static void load_dir(loader *L, const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, yaml_name_filter, name_order);
    if (n < 0) {
        tf_diag_add(L->diag, dir, 0, 0, NULL, "cannot read the directory: %s", strerror(errno));
        return;
    }
    if (n == 0)
        tf_diag_add(L->diag, dir, 0, 0, NULL,
                    "expected *.yaml or *.yml files in this directory; found none");
    for (int i = 0; i < n; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, list[i]->d_name) < 0)
            L->nomem = true;
        else
            load_one(L, path);
        free(path);
        free(list[i]);
    }
    free(list);
}

static void load_paths(loader *L, const char *const *paths, size_t n_paths)
{
    if (n_paths == 0)
        tf_diag_add(L->diag, NULL, 0, 0, NULL, "expected a configuration file or directory");
    for (size_t i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
            load_dir(L, paths[i]);
        else
            load_one(L, paths[i]); /* reports a missing file itself */
    }
}

/* ---- top level ---- */

static void add_pipelines(loader *L, const tf_yaml_node *key, const tf_yaml_node *v)
{
    L->saw_pipelines = true;
    char found[160];
    if (v->kind == TF_YAML_SCALAR && v->failed)
        return;
    if (v->kind != TF_YAML_SEQUENCE || v->n_items == 0) {
        tf_yaml_describe(v, found, sizeof found);
        if (v->kind == TF_YAML_SEQUENCE)
            snprintf(found, sizeof found, "an empty list");
        problem(L, v->kind == TF_YAML_SCALAR && tf_yaml_is_null(v) ? key : v, "pipelines",
                "expected a non-empty list of pipelines (- name: ...); found %s", found);
        return;
    }
    pipeline_ref *grown = realloc(L->pipes, (L->n_pipes + v->n_items) * sizeof *grown);
    if (!grown) {
        L->nomem = true;
        return;
    }
    L->pipes = grown;
    for (size_t i = 0; i < v->n_items; i++)
        L->pipes[L->n_pipes++] = (pipeline_ref){.node = v->items[i], .index = i};
}

static void add_section(loader *L, int which, const tf_yaml_node *key, const tf_yaml_node *value)
{
    section *s = &L->sections[which];
    if (s->key) {
        problem(
            L, key, section_names[which],
            "the %s: section is already defined in %s:%d:%d; each runtime section may appear in "
            "one file only",
            section_names[which], s->key->file, s->key->line, s->key->col);
        return;
    }
    s->key = key;
    s->value = value;
}

static void scan_top(loader *L, const tf_yaml_doc *doc)
{
    const tf_yaml_node *root = doc->root;
    if (!root)
        return; /* nothing but comments */
    if (root->kind != TF_YAML_MAPPING) {
        char found[160];
        tf_yaml_describe(root, found, sizeof found);
        problem(L, root, NULL,
                "expected a mapping with keys such as pipelines: and redis:; found %s", found);
        return;
    }
    for (size_t i = 0; i < root->n_pairs; i++) {
        const tf_yaml_node *key = root->pairs[i].key;
        const tf_yaml_node *value = root->pairs[i].value;
        if (strcmp(key->text, "pipelines") == 0) {
            add_pipelines(L, key, value);
            continue;
        }
        int which = -1;
        for (int s = 0; s < SEC_COUNT; s++) {
            if (strcmp(key->text, section_names[s]) == 0)
                which = s;
        }
        if (which >= 0)
            add_section(L, which, key, value);
        else
            unknown_key(L, key, key->text, "the top level", top_level_names,
                        TF_ARRAY_LEN(top_level_names));
    }
}

/* ---- runtime sections ---- */

/* The node an option's value came from (for messages about its value), else the section. */
static const tf_yaml_node *value_node(const section *s, const char *name)
{
    const tf_yaml_node *v = tf_yaml_get(s->value, name);
    return v ? v : s->value;
}

static tf_options *section_options(loader *L, const section *s, const tf_option_def *table,
                                   const char *name)
{
    if (s->value)
        return tf_options_from_yaml(table, s->value, name, name, L->diag);
    return tf_options_defaults(table, name, L->diag);
}

static void require_positive_ms(loader *L, const section *s, const tf_options *o, const char *sec,
                                const char *name, int64_t *out)
{
    *out = tf_options_duration_ms(o, name);
    if (*out > 0)
        return;
    char path[PATH_LEN];
    tf_yaml_path_key(path, sizeof path, sec, name);
    problem(L, value_node(s, name), path, "expected a duration greater than 0; found %lldms",
            (long long)*out);
}

/* Parses "redis://[host][:port][/db]"; 0, or -1 with a reason in err. */
static int parse_redis_url(const char *url, char **host, int *port, int *db, char *err,
                           size_t err_size)
{
    static const char scheme[] = "redis://";
    /* Looked at first, and the URL never echoed, since it then holds a password. */
    if (strchr(url, '@')) {
        snprintf(err, err_size,
                 "credentials in the URL are not allowed: set redis.user and redis.password "
                 "from ${VAR} or ${file:/path} instead");
        return -1;
    }
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, err_size,
                 "expected a URL such as redis://127.0.0.1:6379/0; found \"%.80s\"%s", url,
                 strncmp(url, "rediss://", 9) == 0 ? " (TLS is not supported)" : "");
        return -1;
    }
    const char *p = url + sizeof scheme - 1;
    const char *host_end;
    const char *host_start = p;
    if (*p == '[') {
        host_start = p + 1;
        host_end = strchr(p, ']');
        if (!host_end) {
            snprintf(err, err_size, "expected ] after the IPv6 address in \"%.80s\"", url);
            return -1;
        }
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    *port = 6379;
    if (*p == ':') {
        char *end = NULL;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || (*end && *end != '/') || v < 1 || v > 65535) {
            snprintf(err, err_size, "expected a port between 1 and 65535 in \"%.80s\"", url);
            return -1;
        }
        *port = (int)v;
        p = end;
    }
    *db = 0;
    if (*p == '/' && p[1]) {
        char *end = NULL;
        long v = strtol(p + 1, &end, 10);
        if (!isdigit((unsigned char)p[1]) || *end || v > INT_MAX) {
            snprintf(err, err_size,
                     "expected a database number after / in \"%.80s\" (as in redis://host:6379/0)",
                     url);
            return -1;
        }
        *db = (int)v;
    } else if (*p && strcmp(p, "/") != 0) {
        snprintf(err, err_size, "expected redis://[host][:port][/db]; found \"%.80s\"", url);
        return -1;
    }
    size_t hl = (size_t)(host_end - host_start);
    *host = hl ? strndup(host_start, hl) : strdup("127.0.0.1");
    return 0;
}

static void check_redis_url(loader *L, const char *url, const tf_yaml_node *where,
                            tf_redis_settings *r)
{
    char err[256];
    free(r->host);
    r->host = NULL;
    if (parse_redis_url(url, &r->host, &r->port, &r->db, err, sizeof err) != 0)
        problem(L, where, "redis.url", "%s", err);
    else if (!r->host)
        L->nomem = true;
}

static bool has_space_or_control(const char *s)
{
    for (; *s; s++) {
        if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
            return true;
    }
    return false;
}

/* A secret option as an owned copy; NULL when unset or empty (no credential). */
static char *secret_copy(loader *L, const tf_options *o, const char *name)
{
    const char *v = tf_options_string(o, name);
    return v && *v ? dup_or_flag(L, v) : NULL;
}

static const char *table_default(const tf_option_def *t, const char *name)
{
    for (size_t i = 0; t[i].name; i++) {
        if (strcmp(t[i].name, name) == 0)
            return t[i].default_value;
    }
    return NULL;
}

static void build_redis(loader *L, tf_config *cfg)
{
    const section *s = &L->sections[SEC_REDIS];
    tf_redis_settings *r = &cfg->redis;
    r->configured = s->value != NULL;
    if (!r->configured) {
        /* The defaults still matter without Redis: the prefix is part of every tick. */
        const tf_option_def *t = tf_config_redis_options;
        r->prefix = dup_or_flag(L, table_default(t, "prefix"));
        tf_duration_parse(table_default(t, "connect_timeout"), &r->connect_timeout_ms, NULL, 0);
        tf_duration_parse(table_default(t, "command_timeout"), &r->command_timeout_ms, NULL, 0);
        return;
    }
    tf_options *o =
        tf_options_from_yaml(tf_config_redis_options, s->value, "redis", "redis", L->diag);
    const tf_yaml_node *url_node = tf_yaml_get(s->value, "url");
    if (!o) {
        /* Other keys are wrong, but a URL holding a password is worth reporting anyway. */
        if (url_node && url_node->kind == TF_YAML_SCALAR && !url_node->failed)
            check_redis_url(L, url_node->text, url_node, r);
        return;
    }
    const char *url = tf_options_string(o, "url");
    check_redis_url(L, url, value_node(s, "url"), r);
    r->url = dup_or_flag(L, url);
    r->user = secret_copy(L, o, "user");
    r->password = secret_copy(L, o, "password");
    const char *prefix = tf_options_string(o, "prefix");
    if (!*prefix || has_space_or_control(prefix))
        problem(L, value_node(s, "prefix"), "redis.prefix",
                "expected a key prefix without spaces such as tf; found \"%.80s\"", prefix);
    r->prefix = dup_or_flag(L, prefix);
    require_positive_ms(L, s, o, "redis", "connect_timeout", &r->connect_timeout_ms);
    require_positive_ms(L, s, o, "redis", "command_timeout", &r->command_timeout_ms);
    tf_options_destroy(o);
}

/* The node of http.hosts.<host>.<field>, for messages; falls back to the host's entry. */
static const tf_yaml_node *host_node(const section *s, const char *host, const char *field)
{
    const tf_yaml_node *entry = tf_yaml_get(tf_yaml_get(s->value, "hosts"), host);
    const tf_yaml_node *v = tf_yaml_get(entry, field);
    if (v)
        return v;
    return entry ? entry : value_node(s, "hosts");
}

static bool valid_host_key(const char *h)
{
    return *h && !has_space_or_control(h) && !strchr(h, '/') && !strchr(h, '@');
}

static void add_host(loader *L, tf_http_settings *h, const section *s, const char *host,
                     const json_t *entry)
{
    char path[PATH_LEN], sub[PATH_LEN];
    tf_yaml_path_key(path, sizeof path, "http.hosts", host);
    if (!valid_host_key(host)) {
        problem(L, host_node(s, host, "rate"), path,
                "expected a host such as api.bithumb.com or 127.0.0.1:8080; found \"%.80s\"", host);
        return;
    }
    double rate = json_number_value(json_object_get(entry, "rate"));
    const json_t *burst = json_object_get(entry, "burst");
    if (!(rate > 0)) {
        tf_yaml_path_key(sub, sizeof sub, path, "rate");
        problem(L, host_node(s, host, "rate"), sub,
                "expected a rate above 0 requests per second; found %g", rate);
    }
    if (burst && !(json_number_value(burst) >= 1)) {
        tf_yaml_path_key(sub, sizeof sub, path, "burst");
        problem(L, host_node(s, host, "burst"), sub,
                "expected a burst of at least 1 request; found %g", json_number_value(burst));
    }
    tf_http_host_limit *lim = &h->hosts[h->n_hosts];
    lim->host = dup_or_flag(L, host);
    lim->rate = rate;
    lim->burst = burst ? json_number_value(burst) : rate;
    if (lim->host)
        h->n_hosts++;
}

/* http.hosts as written, plus the built-in entries (the table's default) it does not list. */
static void build_hosts(loader *L, tf_http_settings *h, const section *s, const tf_options *o)
{
    const json_t *given = tf_options_json(o, "hosts");
    tf_options *defaults = tf_options_defaults(tf_config_http_options, "http", L->diag);
    const json_t *builtin = tf_options_json(defaults, "hosts");
    size_t cap = json_object_size(given) + json_object_size(builtin);
    h->hosts = calloc(cap ? cap : 1, sizeof *h->hosts);
    if (!h->hosts) {
        L->nomem = true;
        goto out;
    }
    const char *host;
    json_t *entry;
    json_object_foreach((json_t *)given, host, entry)
    {
        add_host(L, h, s, host, entry);
    }
    if (!tf_options_is_set(o, "hosts"))
        goto out; /* `given` was the built-in list itself */
    json_object_foreach((json_t *)builtin, host, entry)
    {
        bool listed = false;
        const char *k;
        json_t *unused;
        json_object_foreach((json_t *)given, k, unused)
        {
            listed = listed || strcasecmp(k, host) == 0;
        }
        if (!listed)
            add_host(L, h, s, host, entry);
    }
out:
    tf_options_destroy(defaults);
}

static void build_http(loader *L, tf_config *cfg)
{
    const section *s = &L->sections[SEC_HTTP];
    tf_http_settings *h = &cfg->http;
    tf_options *o = section_options(L, s, tf_config_http_options, "http");
    if (!o)
        return;
    const char *ua = tf_options_string(o, "user_agent");
    if (!*ua || strpbrk(ua, "\r\n"))
        problem(L, value_node(s, "user_agent"), "http.user_agent",
                "expected a one-line, non-empty User-Agent; found \"%.80s\"", ua);
    h->user_agent = dup_or_flag(L, ua);
    require_positive_ms(L, s, o, "http", "connect_timeout", &h->connect_timeout_ms);
    require_positive_ms(L, s, o, "http", "timeout", &h->timeout_ms);
    require_positive_ms(L, s, o, "http", "breaker_base", &h->breaker_base_ms);
    require_positive_ms(L, s, o, "http", "breaker_max", &h->breaker_max_ms);
    require_positive_ms(L, s, o, "http", "retry_after_max", &h->retry_after_max_ms);
    if (h->breaker_max_ms < h->breaker_base_ms)
        problem(L, value_node(s, "breaker_max"), "http.breaker_max",
                "expected breaker_max to be at least breaker_base (%lldms); found %lldms",
                (long long)h->breaker_base_ms, (long long)h->breaker_max_ms);
    h->max_body_bytes = tf_options_int(o, "max_body");
    if (h->max_body_bytes < 1)
        problem(L, value_node(s, "max_body"), "http.max_body",
                "expected a size in bytes above 0; found %lld", (long long)h->max_body_bytes);
    int64_t failures = tf_options_int(o, "breaker_failures");
    if (failures < 1 || failures > 1000000)
        problem(L, value_node(s, "breaker_failures"), "http.breaker_failures",
                "expected a count between 1 and 1000000; found %lld", (long long)failures);
    h->breaker_failures = (int)(failures < 1 || failures > 1000000 ? 1 : failures);
    build_hosts(L, h, s, o);
    tf_options_destroy(o);
}

static void build_log(loader *L, tf_config *cfg)
{
    const section *s = &L->sections[SEC_LOG];
    cfg->log.level = TF_LOG_INFO;
    tf_options *o = section_options(L, s, tf_config_log_options, "log");
    if (!o)
        return;
    const char *level = tf_options_string(o, "level");
    if (tf_log_parse_level(level, &cfg->log.level) != 0)
        problem(L, value_node(s, "level"), "log.level",
                "expected one of error, warn, info, debug, trace; found \"%.80s\"", level);
    const char *format = tf_options_string(o, "format");
    if (strcmp(format, "json") == 0)
        cfg->log.json = true;
    else if (strcmp(format, "text") != 0)
        problem(L, value_node(s, "format"), "log.format", "expected text or json; found \"%.80s\"",
                format);
    tf_options_destroy(o);
}

/* "host:port" or "[v6addr]:port", port 0-65535 (0 picks a free one). */
static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || has_space_or_control(s))
        return false;
    if (s[0] == '[' && colon[-1] != ']')
        return false;
    if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)))
        return false; /* a bare IPv6 address needs brackets */
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    return isdigit((unsigned char)colon[1]) && !*end && port >= 0 && port <= 65535;
}

static void build_metrics(loader *L, tf_config *cfg)
{
    const section *s = &L->sections[SEC_METRICS];
    tf_options *o = section_options(L, s, tf_config_metrics_options, "metrics");
    if (!o)
        return;
    const char *listen = tf_options_string(o, "listen");
    if (listen && !valid_listen(listen))
        problem(L, value_node(s, "listen"), "metrics.listen",
                "expected host:port such as 127.0.0.1:9464 ([::1]:9464 for IPv6); found \"%.80s\"",
                listen);
    cfg->metrics.listen = dup_or_flag(L, listen);
    tf_options_destroy(o);
}

/* ---- keys: ---- */

static bool valid_key_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    }
    return true;
}

/* Checks one master key (id and key text) and stores it as masters[i]. */
static void add_master(loader *L, tf_keys_settings *k, const char *id, const char *text,
                       const tf_yaml_node *id_node, const tf_yaml_node *key_node,
                       const char *id_path, const char *key_path)
{
    if (!valid_key_id(id)) {
        problem(L, id_node, id_path,
                "expected a master key id of 1 to 32 characters among A-Z, a-z, 0-9, _, - and "
                ".; found \"%.40s\"",
                id);
        return;
    }
    for (size_t i = 0; i < k->n_masters; i++) {
        if (strcmp(k->masters[i].id, id) == 0) {
            problem(L, id_node, id_path, "expected a unique master key id; found %s used twice",
                    id);
            return;
        }
    }
    tf_master_key *m = &k->masters[k->n_masters];
    char err[256];
    if (tf_crypto_parse_key(text, m->bytes, err, sizeof err) != 0) {
        problem(L, key_node, key_path, "%s", err);
        return;
    }
    m->id = dup_or_flag(L, id);
    if (m->id)
        k->n_masters++;
}

static void build_old_masters(loader *L, const section *s, const tf_options *o, tf_keys_settings *k)
{
    const json_t *old = tf_options_json(o, "old_master_keys");
    const tf_yaml_node *list = tf_yaml_get(s->value, "old_master_keys");
    size_t i;
    const json_t *item;
    json_array_foreach(old, i, item)
    {
        const tf_yaml_node *node =
            list && list->kind == TF_YAML_SEQUENCE && i < list->n_items ? list->items[i] : list;
        char path[PATH_LEN];
        char id_path[PATH_LEN];
        char key_path[PATH_LEN];
        tf_yaml_path_index(path, sizeof path, "keys.old_master_keys", i);
        tf_yaml_path_key(id_path, sizeof id_path, path, "id");
        tf_yaml_path_key(key_path, sizeof key_path, path, "key");
        const char *id = json_string_value(json_object_get(item, "id"));
        const char *key = json_string_value(json_object_get(item, "key"));
        const tf_yaml_node *id_node = node ? tf_yaml_get(node, "id") : NULL;
        const tf_yaml_node *key_node = node ? tf_yaml_get(node, "key") : NULL;
        add_master(L, k, id ? id : "", key ? key : "", id_node ? id_node : node,
                   key_node ? key_node : node, id_path, key_path);
    }
}

static void build_keys(loader *L, tf_config *cfg)
{
    const section *s = &L->sections[SEC_KEYS];
    tf_keys_settings *k = &cfg->keys;
    cfg->redis.keys = k;
    if (!s->value)
        return;
    tf_options *o = tf_options_from_yaml(tf_config_keys_options, s->value, "keys", "keys", L->diag);
    if (!o)
        return;
    k->configured = true;
    const char *store = tf_options_string(o, "store");
    const char *file = tf_options_string(o, "file");
    if (strcmp(store, "file") == 0) {
        k->store = TF_KEYS_STORE_FILE;
        if (!file || !*file)
            problem(L, value_node(s, "store"), "keys.file",
                    "store: file needs the path of the store in keys.file; found none");
    } else if (strcmp(store, "redis") == 0) {
        k->store = TF_KEYS_STORE_REDIS;
        if (!cfg->redis.configured)
            problem(L, value_node(s, "store"), "keys.store",
                    "store: redis keeps the keys in Redis, and no redis: section is configured: "
                    "add one, or use store: file");
    } else {
        problem(L, value_node(s, "store"), "keys.store", "expected redis or file; found \"%.40s\"",
                store);
    }
    k->file = file && *file ? dup_or_flag(L, file) : NULL;
    size_t n_old = json_array_size(tf_options_json(o, "old_master_keys"));
    k->masters = calloc(n_old + 1, sizeof *k->masters);
    if (!k->masters) {
        L->nomem = true;
        tf_options_destroy(o);
        return;
    }
    add_master(L, k, tf_options_string(o, "master_key_id"), tf_options_string(o, "master_key"),
               value_node(s, "master_key_id"), value_node(s, "master_key"), "keys.master_key_id",
               "keys.master_key");
    if (k->n_masters == 1)
        build_old_masters(L, s, o, k);
    tf_options_destroy(o);
}

/* ---- pipelines ---- */

static const char *kind_key(tf_plugin_kind kind)
{
    return kind == TF_KIND_SOURCE ? "sources" : kind == TF_KIND_TRANSFORM ? "transforms" : "sinks";
}

static void unknown_plugin(loader *L, const tf_yaml_node *use, const char *path,
                           tf_plugin_kind kind)
{
    static const tf_plugin_kind kinds[] = {TF_KIND_SOURCE, TF_KIND_TRANSFORM, TF_KIND_SINK};
    for (size_t i = 0; i < TF_ARRAY_LEN(kinds); i++) {
        if (kinds[i] != kind && tf_registry_find(L->reg, kinds[i], use->text)) {
            problem(L, use, path, "'%s' is a %s plugin, not a %s: list it under %s:", use->text,
                    tf_plugin_kind_name(kinds[i]), tf_plugin_kind_name(kind), kind_key(kinds[i]));
            return;
        }
    }
    const char *names[128];
    size_t n = 0;
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < tf_registry_count(L->reg) && n < TF_ARRAY_LEN(names); i++) {
        const tf_plugin *p = tf_registry_at(L->reg, i);
        if (p->desc->kind != kind)
            continue;
        names[n++] = p->desc->name;
        int rc = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", p->desc->name);
        if (rc > 0 && (size_t)rc < sizeof list - used)
            used += (size_t)rc;
    }
    const char *hint = tf_yaml_suggest(use->text, names, n);
    if (n == 0)
        problem(L, use, path,
                "unknown %s plugin '%s': no %s plugins are loaded (see tickflow plugins "
                "list)",
                tf_plugin_kind_name(kind), use->text, tf_plugin_kind_name(kind));
    else if (hint)
        problem(L, use, path, "unknown %s plugin '%s'; did you mean '%s'? (available: %s)",
                tf_plugin_kind_name(kind), use->text, hint, list);
    else
        problem(L, use, path, "unknown %s plugin '%s'; available %ss: %s",
                tf_plugin_kind_name(kind), use->text, tf_plugin_kind_name(kind), list);
}

/* One entry of sources:/transforms:/sinks: ({use, with} or just the plugin name). */
static void build_stage(loader *L, const tf_yaml_node *item, tf_plugin_kind kind, const char *path,
                        tf_stage_config *out)
{
    char sub[PATH_LEN];
    char where[64];
    out->path = dup_or_flag(L, path);
    snprintf(where, sizeof where, "a %s entry", tf_plugin_kind_name(kind));
    const tf_yaml_node *use = NULL;
    const tf_yaml_node *with = NULL;
    if (item->kind == TF_YAML_MAPPING) {
        check_keys(L, item, stage_fields, path, where);
        use = tf_yaml_get(item, "use");
        with = tf_yaml_get(item, "with");
    } else if (item->kind == TF_YAML_SCALAR && !tf_yaml_is_null(item)) {
        use = item;
    } else {
        char found[160];
        tf_yaml_describe(item, found, sizeof found);
        problem(L, item, path, "expected {use: NAME, with: {...}} or a plugin name; found %s",
                found);
        return;
    }
    tf_yaml_path_key(sub, sizeof sub, path, "use");
    if (!use) {
        problem(L, item, sub, "missing required key 'use' (the %s plugin's name)",
                tf_plugin_kind_name(kind));
        return;
    }
    if (use->kind == TF_YAML_SCALAR && use->failed)
        return;
    if (use->kind != TF_YAML_SCALAR || tf_yaml_is_null(use)) {
        char found[160];
        tf_yaml_describe(use, found, sizeof found);
        problem(L, use, sub, "expected a plugin name; found %s", found);
        return;
    }
    out->plugin = tf_registry_find(L->reg, kind, use->text);
    if (!out->plugin) {
        unknown_plugin(L, use, sub, kind);
        return;
    }
    char owner[128];
    snprintf(owner, sizeof owner, "%s '%s'", tf_plugin_kind_name(kind), use->text);
    tf_yaml_path_key(sub, sizeof sub, path, "with");
    /* Without `with:`, missing required options are reported at the entry itself. */
    const tf_yaml_node empty = {
        .kind = TF_YAML_MAPPING, .file = item->file, .line = item->line, .col = item->col};
    out->options =
        tf_options_from_yaml(out->plugin->desc->options, with ? with : &empty, sub, owner, L->diag);
}

static void build_stages(loader *L, const tf_yaml_node *pipe, const char *base, tf_plugin_kind kind,
                         bool required, tf_stage_config **out, size_t *n_out)
{
    const char *key = kind_key(kind);
    char path[PATH_LEN];
    tf_yaml_path_key(path, sizeof path, base, key);
    const tf_yaml_node *v = tf_yaml_get(pipe, key);
    if (!v) {
        if (required)
            problem(L, pipe, path, "missing required key '%s' (at least one %s)", key,
                    tf_plugin_kind_name(kind));
        return;
    }
    if (v->kind == TF_YAML_SCALAR && v->failed)
        return;
    bool list = v->kind == TF_YAML_SEQUENCE;
    size_t n = list ? v->n_items : tf_yaml_is_null(v) ? 0 : 1;
    if (n == 0) {
        if (required)
            problem(L, v, path, "expected at least one %s; found %s", tf_plugin_kind_name(kind),
                    list ? "an empty list" : "nothing");
        return;
    }
    *out = calloc(n, sizeof **out);
    if (!*out) {
        L->nomem = true;
        return;
    }
    *n_out = n;
    char sub[PATH_LEN];
    for (size_t i = 0; i < n; i++) {
        /* A single entry written without a list keeps the path the user wrote. */
        if (list)
            tf_yaml_path_index(sub, sizeof sub, path, i);
        else
            snprintf(sub, sizeof sub, "%s", path);
        build_stage(L, list ? v->items[i] : v, kind, sub, &(*out)[i]);
    }
}

static void build_lease(loader *L, const tf_yaml_node *pipe, const char *base,
                        tf_pipeline_config *p, bool redis)
{
    char path[PATH_LEN];
    tf_yaml_path_key(path, sizeof path, base, "lease");
    tf_duration_parse(table_default(lease_fields, "ttl"), &p->lease_ttl_ms, NULL, 0);
    p->lease = redis;
    const tf_yaml_node *v = tf_yaml_get(pipe, "lease");
    if (!v || (v->kind == TF_YAML_SCALAR && v->failed))
        return;
    bool wanted = false;
    if (v->kind == TF_YAML_MAPPING) {
        tf_options *o = tf_options_from_yaml(lease_fields, v, path, "lease", L->diag);
        if (o) {
            p->lease_ttl_ms = tf_options_duration_ms(o, "ttl");
            char sub[PATH_LEN];
            tf_yaml_path_key(sub, sizeof sub, path, "ttl");
            if (p->lease_ttl_ms < MIN_LEASE_TTL_MS)
                problem(L, tf_yaml_get(v, "ttl"), sub,
                        "expected a lease ttl of at least %dms; found %lldms", MIN_LEASE_TTL_MS,
                        (long long)p->lease_ttl_ms);
        }
        tf_options_destroy(o);
        wanted = true;
    } else if (v->kind != TF_YAML_SCALAR || tf_yaml_parse_bool(v->text, &wanted) != 0) {
        char found[160];
        tf_yaml_describe(v, found, sizeof found);
        problem(L, v, path, "expected on, off, true, false or {ttl: 2s}; found %s", found);
        return;
    }
    p->lease = wanted;
    if (wanted && !redis)
        problem(L, v, path,
                "a lease lives in Redis, and no redis: section is configured: add one, or set "
                "lease: off");
}

static bool valid_pipeline_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME_LEN)
        return false;
    for (; *s; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* name: checked, and unique against the pipelines before this one (any file). */
static void build_name(loader *L, const tf_yaml_node *pipe, const char *base, tf_pipeline_config *p,
                       const tf_yaml_node **names, size_t index)
{
    char path[PATH_LEN];
    tf_yaml_path_key(path, sizeof path, base, "name");
    const tf_yaml_node *v = tf_yaml_get(pipe, "name");
    if (!v) {
        problem(L, pipe, path, "missing required key 'name'");
        return;
    }
    if (v->kind == TF_YAML_SCALAR && v->failed)
        return;
    if (v->kind != TF_YAML_SCALAR || !valid_pipeline_name(v->text)) {
        char found[160];
        tf_yaml_describe(v, found, sizeof found);
        problem(L, v, path,
                "expected a name of 1 to %d characters among a-z, 0-9, _ and -; found %s",
                MAX_NAME_LEN, found);
        return;
    }
    for (size_t i = 0; i < index; i++) {
        if (names[i] && strcmp(names[i]->text, v->text) == 0) {
            problem(L, v, path, "pipeline name '%s' is already used at %s:%d:%d", v->text,
                    names[i]->file, names[i]->line, names[i]->col);
            return;
        }
    }
    names[index] = v;
    p->name = dup_or_flag(L, v->text);
}

static void build_every(loader *L, const tf_yaml_node *pipe, const char *base,
                        tf_pipeline_config *p)
{
    char path[PATH_LEN];
    tf_yaml_path_key(path, sizeof path, base, "every");
    const tf_yaml_node *v = tf_yaml_get(pipe, "every");
    if (!v) {
        problem(L, pipe, path, "missing required key 'every' (the tick period, e.g. 1s)");
        return;
    }
    if (v->kind == TF_YAML_SCALAR && v->failed)
        return;
    char err[256];
    if (v->kind != TF_YAML_SCALAR ||
        tf_duration_parse(v->text, &p->every_ms, err, sizeof err) != 0) {
        if (v->kind != TF_YAML_SCALAR) {
            char found[160];
            tf_yaml_describe(v, found, sizeof found);
            snprintf(err, sizeof err, "expected a duration such as 500ms, 1s, 10m; found %s",
                     found);
        }
        problem(L, v, path, "%s", err);
        return;
    }
    if (p->every_ms < MIN_EVERY_MS)
        problem(L, v, path, "expected a period of at least %dms; found %lldms", MIN_EVERY_MS,
                (long long)p->every_ms);
}

static void build_pipeline(loader *L, const pipeline_ref *ref, tf_pipeline_config *p,
                           const tf_yaml_node **names, size_t index, bool redis)
{
    const tf_yaml_node *n = ref->node;
    char base[PATH_LEN];
    tf_yaml_path_index(base, sizeof base, "pipelines", ref->index);
    p->file = dup_or_flag(L, n->file);
    p->line = n->line;
    if (n->kind != TF_YAML_MAPPING) {
        char found[160];
        tf_yaml_describe(n, found, sizeof found);
        problem(L, n, base, "expected a pipeline (name:, every:, sources:, sinks:); found %s",
                found);
        return;
    }
    check_keys(L, n, tf_config_pipeline_options, base, "a pipeline");
    build_name(L, n, base, p, names, index);
    build_every(L, n, base, p);
    build_lease(L, n, base, p, redis);
    build_stages(L, n, base, TF_KIND_SOURCE, true, &p->sources, &p->n_sources);
    build_stages(L, n, base, TF_KIND_TRANSFORM, false, &p->transforms, &p->n_transforms);
    build_stages(L, n, base, TF_KIND_SINK, true, &p->sinks, &p->n_sinks);
}

static void build_pipelines(loader *L, tf_config *cfg)
{
    if (L->n_pipes == 0) {
        if (!L->saw_pipelines && L->n_docs > 0)
            tf_diag_add(L->diag, L->docs[0]->file, 0, 0, "pipelines",
                        "expected at least one pipeline; found no pipelines: section in %zu "
                        "file(s)",
                        L->n_docs);
        return;
    }
    cfg->pipelines = calloc(L->n_pipes, sizeof *cfg->pipelines);
    const tf_yaml_node **names = calloc(L->n_pipes, sizeof *names);
    if (!cfg->pipelines || !names) {
        L->nomem = true;
        free(names);
        return;
    }
    cfg->n_pipelines = L->n_pipes;
    for (size_t i = 0; i < L->n_pipes; i++)
        build_pipeline(L, &L->pipes[i], &cfg->pipelines[i], names, i, cfg->redis.configured);
    free(names);
}

/* ---- entry points ---- */

static void loader_free(loader *L)
{
    for (size_t i = 0; i < L->n_docs; i++)
        tf_yaml_doc_destroy(L->docs[i]);
    free(L->docs);
    free(L->pipes);
}

int tf_config_load(const char *const *paths, size_t n_paths, const tf_registry *reg, tf_diag *diag,
                   tf_config **out)
{
    *out = NULL;
    tf_diag *own = diag ? NULL : tf_diag_create();
    loader L = {.reg = reg, .diag = diag ? diag : own};
    size_t before = tf_diag_count(L.diag);
    tf_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        tf_diag_add(L.diag, NULL, 0, 0, NULL, "out of memory");
        tf_diag_destroy(own);
        return TF_ENOMEM;
    }
    load_paths(&L, paths, n_paths);
    for (size_t i = 0; i < L.n_docs; i++)
        scan_top(&L, L.docs[i]);
    build_redis(&L, cfg);
    build_http(&L, cfg);
    build_log(&L, cfg);
    build_metrics(&L, cfg);
    build_keys(&L, cfg);
    build_pipelines(&L, cfg);
    if (L.nomem)
        tf_diag_add(L.diag, NULL, 0, 0, NULL, "out of memory while loading the configuration");
    int rc = TF_OK;
    if (tf_diag_count(L.diag) > before) {
        tf_config_destroy(cfg);
        rc = L.nomem ? TF_ENOMEM : TF_EINVAL;
    } else {
        *out = cfg;
    }
    loader_free(&L);
    tf_diag_destroy(own);
    return rc;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void stages_free(tf_stage_config *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tf_options_destroy(s[i].options);
        free(s[i].path);
    }
    free(s);
}

void tf_config_destroy(tf_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->redis.url);
    free(cfg->redis.host);
    wipe_free(cfg->redis.user);
    wipe_free(cfg->redis.password);
    free(cfg->redis.prefix);
    free(cfg->http.user_agent);
    for (size_t i = 0; i < cfg->http.n_hosts; i++)
        free(cfg->http.hosts[i].host);
    free(cfg->http.hosts);
    free(cfg->metrics.listen);
    free(cfg->keys.file);
    for (size_t i = 0; i < cfg->keys.n_masters; i++) {
        free(cfg->keys.masters[i].id);
        tf_crypto_wipe(cfg->keys.masters[i].bytes, sizeof cfg->keys.masters[i].bytes);
    }
    free(cfg->keys.masters);
    for (size_t i = 0; i < cfg->n_pipelines; i++) {
        tf_pipeline_config *p = &cfg->pipelines[i];
        free(p->name);
        free(p->file);
        stages_free(p->sources, p->n_sources);
        stages_free(p->transforms, p->n_transforms);
        stages_free(p->sinks, p->n_sinks);
    }
    free(cfg->pipelines);
    free(cfg);
}
