/* Fixture server for parser tests: see tf_fixture_server.h. */
#include "tf_fixture_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <CUnit/CUnit.h>

#include "tf_test.h"

#define MAX_ROUTES 64

typedef struct route {
    char *key; /* path or path?query */
    int status;
    char *headers;
    char *body;
    size_t len;
    int hits;
} route;

struct tft_server {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    pthread_mutex_t lock;
    route routes[MAX_ROUTES];
    size_t n_routes;
    int total;
    char last_url[2200];
    char last_headers[4096]; /* "name: value\n" lines of the last request */
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    char *q = cls;
    size_t n = strlen(q);
    snprintf(q + n, 1024 - n, "%s%s%s%s", n ? "&" : "", key, value ? "=" : "", value ? value : "");
    return MHD_YES;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    char *h = cls;
    size_t n = strlen(h);
    snprintf(h + n, 4096 - n, "%s: %s\n", key, value ? value : "");
    return MHD_YES;
}

static route *find_route(tft_server *s, const char *path, const char *full)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].key, full) == 0)
            return &s->routes[i];
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].key, path) == 0)
            return &s->routes[i];
    return NULL;
}

static void add_headers(struct MHD_Response *resp, const char *headers)
{
    bool has_type = false;
    char *copy = strdup(headers ? headers : "");
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        if (strcasecmp(line, "Content-Type") == 0)
            has_type = true;
        MHD_add_response_header(resp, line, value);
    }
    free(copy);
    if (!has_type)
        MHD_add_response_header(resp, "Content-Type", "application/json");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)method, (void)version, (void)upload, (void)upload_size, (void)con_cls;
    tft_server *s = cls;
    char query[1024] = "", full[2100], headers[4096] = "";
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, query);
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, headers);
    snprintf(full, sizeof full, "%s%s%s", url, query[0] ? "?" : "", query);
    pthread_mutex_lock(&s->lock);
    s->total++;
    snprintf(s->last_url, sizeof s->last_url, "%s", full);
    snprintf(s->last_headers, sizeof s->last_headers, "%s", headers);
    route *r = find_route(s, url, full);
    int status = r ? r->status : 404;
    const char *body = r ? r->body : "{\"error\":\"no route\"}";
    size_t len = r ? r->len : strlen(body);
    char *resp_headers = r && r->headers ? strdup(r->headers) : NULL;
    if (r)
        r->hits++;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    pthread_mutex_unlock(&s->lock);
    add_headers(resp, resp_headers);
    free(resp_headers);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

tft_server *tft_server_start(void)
{
    tft_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    for (int attempt = 0; attempt < 20 && !s->d; attempt++) {
        s->port = tft_free_port();
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                (uint16_t)s->port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                                &addr, MHD_OPTION_END);
    }
    if (!s->d) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return s;
}

void tft_server_stop(tft_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].key);
        free(s->routes[i].headers);
        free(s->routes[i].body);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int tft_server_port(const tft_server *s)
{
    return s->port;
}

const char *tft_server_url(const tft_server *s)
{
    return s->url;
}

void tft_server_route(tft_server *s, const char *key, int status, const char *headers,
                      const char *body, size_t body_len)
{
    pthread_mutex_lock(&s->lock);
    route *r = NULL;
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].key, key) == 0)
            r = &s->routes[i];
    if (!r && s->n_routes < MAX_ROUTES) {
        r = &s->routes[s->n_routes++];
        r->key = strdup(key);
    }
    if (r) {
        free(r->headers);
        free(r->body);
        r->status = status;
        r->headers = headers ? strdup(headers) : NULL;
        r->body = malloc(body_len + 1);
        if (r->body) {
            memcpy(r->body, body, body_len);
            r->body[body_len] = '\0';
        }
        r->len = r->body ? body_len : 0;
    }
    pthread_mutex_unlock(&s->lock);
}

bool tft_server_route_fixture(tft_server *s, const char *key, int status, const char *headers,
                              const char *fixture)
{
    size_t len = 0;
    char *body = tft_read_file(tft_fixture(fixture), &len);
    if (!body)
        return false;
    tft_server_route(s, key, status, headers, body, len);
    free(body);
    return true;
}

int tft_server_hits(tft_server *s, const char *path)
{
    int hits = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_routes; i++) {
        size_t n = strlen(path);
        if (strncmp(s->routes[i].key, path, n) == 0 &&
            (s->routes[i].key[n] == '\0' || s->routes[i].key[n] == '?'))
            hits += s->routes[i].hits;
    }
    pthread_mutex_unlock(&s->lock);
    return hits;
}

int tft_server_total_hits(tft_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->total;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void tft_server_last_request(tft_server *s, char *url, size_t url_size, const char *header,
                             char *value, size_t value_size)
{
    pthread_mutex_lock(&s->lock);
    if (url)
        snprintf(url, url_size, "%s", s->last_url);
    if (value && value_size) {
        value[0] = '\0';
        char needle[128];
        snprintf(needle, sizeof needle, "%s: ", header ? header : "");
        for (const char *line = s->last_headers; header && *line;) {
            const char *end = strchr(line, '\n');
            size_t n = end ? (size_t)(end - line) : strlen(line);
            if (strncasecmp(line, needle, strlen(needle)) == 0) {
                size_t vlen = n - strlen(needle);
                snprintf(value, value_size, "%.*s", (int)vlen, line + strlen(needle));
                break;
            }
            line += n + (end ? 1 : 0);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

void tft_server_route_json(tft_server *s, const char *path, int status, const char *headers,
                           json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    tft_server_route(s, path, status, headers, text, strlen(text));
    free(text);
    json_decref(body);
}

json_t *tft_fixture_json(const char *name)
{
    json_error_t e;
    json_t *j = json_load_file(tft_fixture(name), 0, &e);
    if (!j)
        fprintf(stderr, "fixture %s: %s\n", name, e.text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    return j;
}

char *tft_fixture_headers(const char *name)
{
    char *raw = tft_read_file(tft_fixture(name), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    size_t size = strlen(raw) + 1, used = 0;
    char *out = calloc(1, size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    char *save = NULL;
    int line_no = 0;
    for (char *line = strtok_r(raw, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (line_no++ == 0 || strncasecmp(line, "Content-Length:", 15) == 0 ||
            strncasecmp(line, "Connection:", 11) == 0)
            continue;
        used += (size_t)snprintf(out + used, size - used, "%s\n", line);
    }
    free(raw);
    return out;
}
