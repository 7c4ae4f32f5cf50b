/* The fuzz harnesses' host: see fz_host.h. */
#include "fz_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "tf_fetch.h"
#include "tf_options.h"
#include "tf_yaml.h"
#include "tf_instance.h"
#include "tf_log.h"

#define FZ_SEP     "\n@@\n"
#define FZ_MAX_HDR 8

/* A canned response; handed to the plugin as an opaque tf_http_response. */
typedef struct fz_response {
    long status;
    const char *names[FZ_MAX_HDR];
    const char *values[FZ_MAX_HDR];
    size_t n_headers;
    char *body; /* NUL-terminated copy of the part's body */
    size_t len;
    char *head; /* owned copy of the status and header lines, cut into names and values */
} fz_response;

static struct {
    const uint8_t *data;
    size_t size;
    size_t next; /* index of the part the next request gets */
} fz_in;

static tf_host fz_table;
static int fz_redis_handle; /* redis_open hands out its address: never dereferenced */

void fz_set_input(const uint8_t *data, size_t size)
{
    fz_in.data = data;
    fz_in.size = size;
    fz_in.next = 0;
}

static const uint8_t *find_sep(const uint8_t *p, size_t n)
{
    size_t k = strlen(FZ_SEP);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(p + i, FZ_SEP, k) == 0)
            return p + i;
    }
    return NULL;
}

/* The next part of the input as [*start, *start + *len). */
static void next_part(const uint8_t **start, size_t *len)
{
    size_t count = 1;
    for (const uint8_t *p = fz_in.data, *end = p + fz_in.size; (p = find_sep(p, (size_t)(end - p)));
         p += strlen(FZ_SEP))
        count++;
    size_t want = fz_in.next++ % count;
    const uint8_t *p = fz_in.data, *end = fz_in.data + fz_in.size;
    for (size_t i = 0; i < want; i++)
        p = find_sep(p, (size_t)(end - p)) + strlen(FZ_SEP);
    const uint8_t *stop = find_sep(p, (size_t)(end - p));
    *start = p;
    *len = (size_t)((stop ? stop : end) - p);
}

/* "HTTP 429\nRetry-After: 5\n\n" before the body: status and headers. */
static void parse_head(fz_response *r, const uint8_t **p, size_t *len)
{
    if (*len < 9 || memcmp(*p, "HTTP ", 5) != 0)
        return;
    const uint8_t *end = *p + *len, *blank = NULL;
    for (const uint8_t *q = *p; q + 1 < end; q++) {
        if (q[0] == '\n' && q[1] == '\n') {
            blank = q;
            break;
        }
    }
    size_t head_len = blank ? (size_t)(blank - *p) : *len;
    r->head = strndup((const char *)*p, head_len);
    if (!r->head)
        return;
    r->status = strtol(r->head + 5, NULL, 10);
    for (char *line = strchr(r->head, '\n'); line && r->n_headers < FZ_MAX_HDR;) {
        *line++ = '\0';
        char *colon = strchr(line, ':');
        char *eol = strchr(line, '\n');
        if (colon && (!eol || colon < eol)) {
            *colon = '\0';
            r->names[r->n_headers] = line;
            r->values[r->n_headers++] = colon + 1 + (colon[1] == ' ');
        }
        line = eol;
    }
    size_t skip = blank ? head_len + 2 : *len;
    *p += skip;
    *len -= skip;
}

static int fz_http_get(tf_instance *self, const tf_http_request *req, tf_http_response **out)
{
    (void)self;
    (void)req;
    *out = NULL;
    fz_response *r = calloc(1, sizeof *r);
    if (!r)
        return TF_ENOMEM;
    r->status = 200;
    const uint8_t *p;
    size_t len;
    next_part(&p, &len);
    parse_head(r, &p, &len);
    r->body = malloc(len + 1);
    if (!r->body) {
        free(r->head);
        free(r);
        return TF_ENOMEM;
    }
    memcpy(r->body, p, len);
    r->body[len] = '\0';
    r->len = len;
    *out = (tf_http_response *)r;
    return TF_OK;
}

static int fz_http_post(tf_instance *self, const tf_http_request *req, const char *body, size_t len,
                        tf_http_response **out)
{
    (void)body;
    (void)len;
    return fz_http_get(self, req, out);
}

static long fz_http_status(const tf_http_response *r)
{
    return ((const fz_response *)r)->status;
}

static const char *fz_http_body(const tf_http_response *r, size_t *len)
{
    const fz_response *f = (const fz_response *)r;
    if (len)
        *len = f->len;
    return f->body;
}

static const char *fz_http_header(const tf_http_response *r, const char *name)
{
    const fz_response *f = (const fz_response *)r;
    const char *found = NULL;
    for (size_t i = 0; i < f->n_headers; i++) {
        if (strcasecmp(f->names[i], name) == 0)
            found = f->values[i]; /* the last one, as the real client */
    }
    if (!found && !f->head && strcasecmp(name, "Content-Type") == 0)
        return "application/json";
    return found;
}

static int64_t fz_http_elapsed_ms(const tf_http_response *r)
{
    (void)r;
    return 1;
}

static void fz_http_free(tf_http_response *r)
{
    fz_response *f = (fz_response *)r;
    if (!f)
        return;
    free(f->body);
    free(f->head);
    free(f);
}

/* The real helpers, over this table (the real table's wrappers would call the real client). */
static int fz_fetch_json(tf_instance *self, const tf_http_request *req, tf_fetch *f)
{
    return tf_fetch_json(&fz_table, self, req, f);
}

static int fz_fetch_http_error(tf_instance *self, const tf_fetch *f, const char *expected)
{
    return tf_fetch_http_error(&fz_table, self, f, expected);
}

static int fz_check_fresh(tf_instance *self, const char *context, const char *field, int64_t ts,
                          int64_t received_ms, int64_t max_age_ms)
{
    return tf_fetch_check_fresh(&fz_table, self, context, field, ts, received_ms, max_age_ms);
}

static int64_t fz_now_ms(void)
{
    return FZ_NOW_MS;
}

static int fz_api_key_get(tf_instance *self, const char *exchange, const char *name, char *key,
                          size_t key_size, char *secret, size_t secret_size, char *err,
                          size_t err_size)
{
    (void)self;
    (void)exchange;
    (void)name;
    (void)err;
    (void)err_size;
    snprintf(key, key_size, "%s", "fuzz-key");
    snprintf(secret, secret_size, "%s", "fuzz-secret");
    return TF_OK;
}

/* --- Redis: MGET answers one string per key from the input's parts; SCAN finds two keys --- */

static tf_redis *fz_redis_open(tf_instance *self)
{
    (void)self;
    return (tf_redis *)&fz_redis_handle;
}

static void fz_redis_close(tf_redis *r)
{
    (void)r;
}

static void fz_reply_free(void *reply)
{
    redisReply *r = reply;
    if (!r)
        return;
    for (size_t i = 0; i < r->elements; i++)
        fz_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static redisReply *reply_new(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r)
        r->type = type;
    return r;
}

static redisReply *reply_string(const uint8_t *p, size_t len)
{
    redisReply *r = reply_new(REDIS_REPLY_STRING);
    if (!r)
        return NULL;
    r->str = malloc(len + 1);
    if (!r->str) {
        free(r);
        return NULL;
    }
    memcpy(r->str, p, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

/* An array of n empty slots; NULL when an allocation fails. */
static redisReply *reply_array(size_t n)
{
    redisReply *r = reply_new(REDIS_REPLY_ARRAY);
    if (!r)
        return NULL;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    if (!r->element) {
        free(r);
        return NULL;
    }
    r->elements = n;
    return r;
}

static redisReply *mget_reply(int argc)
{
    size_t n = argc > 1 ? (size_t)argc - 1 : 0;
    redisReply *r = reply_array(n);
    for (size_t i = 0; r && i < n; i++) {
        const uint8_t *p;
        size_t len;
        next_part(&p, &len);
        r->element[i] = len == 0 ? reply_new(REDIS_REPLY_NIL) : reply_string(p, len);
        if (!r->element[i]) {
            fz_reply_free(r);
            return NULL;
        }
    }
    return r;
}

/* One page that ends the scan, with two keys under the pattern's prefix: the values come
 * from the MGET that follows. */
static redisReply *scan_reply(const char *pattern)
{
    size_t plen = strcspn(pattern, "*?[");
    redisReply *r = reply_array(2);
    redisReply *keys = r ? reply_array(2) : NULL;
    if (!r || !keys) {
        fz_reply_free(r);
        fz_reply_free(keys);
        return NULL;
    }
    r->element[0] = reply_string((const uint8_t *)"0", 1);
    r->element[1] = keys;
    char key[128];
    for (size_t i = 0; i < 2; i++) {
        int n = snprintf(key, sizeof key, "%.*sfuzz%zu", (int)(plen < 96 ? plen : 96), pattern, i);
        keys->element[i] = reply_string((const uint8_t *)key, (size_t)n);
    }
    if (!r->element[0] || !keys->element[0] || !keys->element[1]) {
        fz_reply_free(r);
        return NULL;
    }
    return r;
}

static void *fz_redis_command(tf_redis *rd, int argc, const char **argv, const size_t *lens)
{
    (void)rd;
    (void)lens;
    if (argc >= 1 && strcasecmp(argv[0], "MGET") == 0)
        return mget_reply(argc);
    if (argc >= 4 && strcasecmp(argv[0], "SCAN") == 0)
        return scan_reply(argv[3]); /* SCAN cursor MATCH pattern ... */
    return reply_new(REDIS_REPLY_NIL);
}

const tf_host *fz_host(void)
{
    if (fz_table.struct_size)
        return &fz_table;
    fz_table = *tf_host_table();
    fz_table.http_get = fz_http_get;
    fz_table.http_post = fz_http_post;
    fz_table.http_status = fz_http_status;
    fz_table.http_body = fz_http_body;
    fz_table.http_header = fz_http_header;
    fz_table.http_elapsed_ms = fz_http_elapsed_ms;
    fz_table.http_free = fz_http_free;
    fz_table.fetch_json = fz_fetch_json;
    fz_table.fetch_http_error = fz_fetch_http_error;
    fz_table.check_fresh = fz_check_fresh;
    fz_table.now_ms = fz_now_ms;
    fz_table.api_key_get = fz_api_key_get;
    fz_table.redis_open = fz_redis_open;
    fz_table.redis_close = fz_redis_close;
    fz_table.redis_command = fz_redis_command;
    fz_table.redis_reply_free = fz_reply_free;
    return &fz_table;
}

/* The host needs a tf_instance for `self` (logging, errors, metrics); it is created around a
 * stand-in descriptor whose init does nothing, so the plugin itself is initialised only by
 * the harness. */
static int stub_init(const tf_host *host, tf_instance *self, const tf_options *options,
                     void **instance)
{
    (void)host;
    (void)self;
    (void)options;
    *instance = NULL;
    return TF_OK;
}

static void stub_destroy(void *instance)
{
    (void)instance;
}

static int stub_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    (void)instance;
    (void)tick;
    (void)out;
    return TF_OK;
}

static int stub_process(void *instance, const tf_tick *tick, tf_batch *batch)
{
    (void)instance;
    (void)tick;
    (void)batch;
    return TF_OK;
}

static int stub_write(void *instance, const tf_tick *tick, const tf_batch *batch)
{
    (void)instance;
    (void)tick;
    (void)batch;
    return TF_OK;
}

static tf_plugin_descriptor stub_desc;
static tf_plugin stub_plugin;
static tf_stage_config stage;
static tf_interest *interest;
static atomic_bool stopping;

/* The plugin's options from `with`, through the YAML loader and the option table. */
static tf_options *load_options(const tf_plugin_descriptor *desc, const char *with)
{
    tf_diag *diag = tf_diag_create();
    tf_yaml_doc *doc = diag ? tf_yaml_parse_string(with, "with", diag) : NULL;
    tf_options *o = NULL;
    if (doc && tf_yaml_interpolate(doc, diag) == 0)
        o = tf_options_from_yaml(desc->options, doc->root, "with", desc->name, diag);
    if (!o && diag)
        tf_diag_print(diag, stderr);
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(diag);
    return o;
}

tf_instance *fz_instance(const tf_plugin_descriptor *desc, const char *with,
                         const tf_redis_settings *redis, tf_options **options)
{
    *options = load_options(desc, with);
    stub_desc = *desc;
    stub_desc.init = stub_init;
    stub_desc.destroy = stub_destroy;
    stub_desc.collect = desc->collect ? stub_collect : NULL;
    stub_desc.process = desc->process ? stub_process : NULL;
    stub_desc.write = desc->write ? stub_write : NULL;
    stub_plugin.desc = &stub_desc;
    stub_plugin.path = (char *)"fuzz";
    stage.plugin = &stub_plugin;
    stage.options = *options;
    stage.path = (char *)"fuzz.stage";
    interest = tf_interest_create();
    tf_instance *self = *options && interest
                            ? tf_instance_create(&stage, "fuzz", NULL, redis, interest, &stopping)
                            : NULL;
    if (!self) {
        fprintf(stderr, "fuzz: cannot set up %s with %s\n", desc->name, with);
        abort();
    }
    return self;
}

void fz_setup(void)
{
    tf_log_set_level(TF_LOG_ERROR);
    setenv("FZ_KEY", "fuzz-key", 1);
}
