/* The fake exchange as a test child process: see tf_fake.h. */
#include "tf_fake.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_test.h"

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, p, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

static bool port_written(void *arg)
{
    return access((const char *)arg, R_OK) == 0;
}

tft_fake *tft_fake_start(const char *const *extra_args)
{
    tft_fake *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->dir = tft_mkdtemp();
    char port_file[600], log[600];
    snprintf(port_file, sizeof port_file, "%s/port", f->dir ? f->dir : "/tmp");
    snprintf(log, sizeof log, "%s/fake.log", f->dir ? f->dir : "/tmp");
    const char *argv[32] = {
        tft_bin("tickflow-fake-exchange"), "--port", "0", "--port-file", port_file, "--quiet"};
    size_t n = 6;
    for (size_t i = 0; extra_args && extra_args[i] && n < 31; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    f->pid = f->dir ? tft_spawn(argv, log, NULL) : -1;
    if (f->pid < 0 || !tft_wait_until(port_written, port_file, 10000))
        goto fail;
    char *text = tft_read_file(port_file, NULL);
    f->port = text ? atoi(text) : 0;
    free(text);
    if (f->port <= 0)
        goto fail;
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    return f;
fail:
    fprintf(stderr, "the fake exchange did not start (log: %s)\n", log);
    tft_fake_stop(f);
    return NULL;
}

void tft_fake_stop(tft_fake *f)
{
    if (!f)
        return;
    if (f->pid > 0)
        tft_stop(f->pid, SIGTERM, 5000);
    tft_rmdir(f->dir);
    free(f->dir);
    free(f);
}

json_t *tft_fake_admin(tft_fake *f, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    f->status = cc == CURLE_OK ? status : 0;
    if (f->strict)
        CU_ASSERT_EQUAL(status, 200);
    json_t *j = cc == CURLE_OK && status == 200 && b.data ? json_loads(b.data, 0, NULL) : NULL;
    if (status != 200)
        fprintf(stderr, "%s %s: HTTP %ld %s\n", body ? "POST" : "GET", path, status,
                b.data ? b.data : curl_easy_strerror(cc));
    free(b.data);
    return j;
}

bool tft_fake_post(tft_fake *f, const char *path, const char *body)
{
    json_t *j = tft_fake_admin(f, path, body ? body : "{}");
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

long tft_fake_send(tft_fake *f, const char *path, const char *body)
{
    json_decref(tft_fake_admin(f, path, body ? body : "{}"));
    return f->status;
}

long long tft_fake_stat(tft_fake *f, const char *endpoint, const char *what)
{
    json_t *s = tft_fake_admin(f, "/admin/stats", NULL);
    json_t *v = json_object_get(json_object_get(json_object_get(s, "endpoints"), endpoint), what);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(s);
    return n;
}
