/* Test support: see tf_test.h. */
#include "tf_test.h"

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TF_TEST_BUILD_DIR
#error "TF_TEST_BUILD_DIR must be defined by CMake"
#endif
#ifndef TF_TEST_SOURCE_DIR
#error "TF_TEST_SOURCE_DIR must be defined by CMake"
#endif

extern char **environ;

int tft_run_suite(const char *suite_name, CU_TestInfo *tests, int (*init)(void),
                  int (*cleanup)(void))
{
    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_SuiteInfo suites[] = {{suite_name, init, cleanup, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "CUnit registration failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
                        CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failures ? 1 : 0;
}

const char *tft_bin(const char *name)
{
    static char buf[8][1024];
    static int slot;
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/bin/%s", TF_TEST_BUILD_DIR, name);
    return out;
}

const char *tft_plugin_dir(void)
{
    return TF_TEST_BUILD_DIR "/lib/tickflow/plugins";
}

const char *tft_source_path(const char *rel)
{
    static char buf[8][1024];
    static int slot;
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/%s", TF_TEST_SOURCE_DIR, rel);
    return out;
}

const char *tft_fixture(const char *name)
{
    static char buf[8][1024];
    static int slot;
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/tests/fixtures/exchanges/%s", TF_TEST_SOURCE_DIR, name);
    return out;
}

char *tft_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/tickflow-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char child[1024];
                snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                rm_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

void tft_rmdir(const char *dir)
{
    if (dir && getenv("TF_TEST_KEEP") == NULL)
        rm_tree(dir);
}

int tft_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *tft_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (cap - n - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int tft_file_count(const char *path, const char *needle)
{
    char *text = tft_read_file(path, NULL);
    if (!text)
        return 0;
    int count = 0;
    size_t nlen = strlen(needle);
    for (const char *p = text; nlen && (p = strstr(p, needle)) != NULL; p += nlen)
        count++;
    free(text);
    return count;
}

int tft_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &alen) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

pid_t tft_spawn(const char *const *argv, const char *log_path, const char *const *env)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child */
    int in = open("/dev/null", O_RDONLY);
    int out = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644)
                       : open("/dev/null", O_WRONLY);
    if (in < 0 || out < 0)
        _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    close(in);
    close(out);
    setpgid(0, 0);
    for (size_t i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

long long tft_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tft_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool tft_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = tft_mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return true;
        }
        if (r < 0)
            return false;
        if (tft_mono_ms() >= deadline)
            return false;
        tft_sleep_ms(5);
    }
}

void tft_kill_wait(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int tft_stop(pid_t pid, int sig, int timeout_ms)
{
    int st;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    if (tft_wait_exit(pid, timeout_ms, &st))
        return st;
    tft_kill_wait(pid);
    return -1;
}

bool tft_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    long long deadline = tft_mono_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (tft_mono_ms() >= deadline)
            return false;
        tft_sleep_ms(10);
    }
}

/* True when every thread of pid is in state T (stopped); false also when /proc cannot say. */
static bool all_threads_stopped(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (!tasks)
        return false;
    bool stopped = true;
    int seen = 0;
    struct dirent *e;
    while (stopped && (e = readdir(tasks)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char stat_path[sizeof path + sizeof e->d_name + 8];
        char line[512];
        snprintf(stat_path, sizeof stat_path, "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat_path, "r");
        if (!f)
            continue; /* the thread exited meanwhile */
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = '\0';
        /* "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
         */
        const char *close = strrchr(line, ')');
        stopped = close && close[1] == ' ' && close[2] == 'T';
        seen++;
    }
    closedir(tasks);
    return stopped && seen > 0;
}

bool tft_freeze(pid_t pid, int timeout_ms)
{
    if (kill(pid, SIGSTOP) != 0)
        return false;
    return tft_wait_until(all_threads_stopped, &pid, timeout_ms);
}

redisContext *tft_redis_connect(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

redisReply *tft_redis_cmd(int port, const char *fmt, ...)
{
    redisContext *c = tft_redis_connect(port);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

static bool redis_answers(void *arg)
{
    redisReply *r = tft_redis_cmd(*(int *)arg, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}

static int redis_spawn(tft_redis *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *argv[] = {"/usr/bin/redis-server",
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          r->dir,
                          "--daemonize",
                          "no",
                          "--protected-mode",
                          "yes",
                          NULL};
    r->pid = tft_spawn(argv, r->log, NULL);
    if (r->pid < 0)
        return -1;
    if (!tft_wait_until(redis_answers, &r->port, 10000)) {
        tft_kill_wait(r->pid);
        r->pid = -1;
        return -1;
    }
    return 0;
}

tft_redis *tft_redis_start(int port)
{
    tft_redis *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->dir = tft_mkdtemp();
    r->port = port > 0 ? port : tft_free_port();
    if (r->dir) {
        size_t n = strlen(r->dir) + 32;
        r->log = malloc(n);
        if (r->log)
            snprintf(r->log, n, "%s/redis.log", r->dir);
    }
    if (!r->dir || !r->log || redis_spawn(r) != 0) {
        tft_redis_destroy(r);
        return NULL;
    }
    return r;
}

void tft_redis_stop(tft_redis *r)
{
    if (!r || r->pid <= 0)
        return;
    tft_stop(r->pid, SIGTERM, 5000);
    r->pid = -1;
}

int tft_redis_restart(tft_redis *r)
{
    tft_redis_stop(r);
    return redis_spawn(r);
}

void tft_redis_destroy(tft_redis *r)
{
    if (!r)
        return;
    tft_redis_stop(r);
    tft_rmdir(r->dir);
    free(r->dir);
    free(r->log);
    free(r);
}

static tft_redis *shared_redis;

static void shared_redis_stop(void)
{
    tft_redis_destroy(shared_redis);
    shared_redis = NULL;
}

int tft_shared_redis_port(void)
{
    const char *env = getenv("TF_TEST_REDIS_PORT");
    if (env && *env)
        return atoi(env);
    if (!shared_redis) {
        shared_redis = tft_redis_start(0);
        if (!shared_redis)
            return -1;
        atexit(shared_redis_stop);
    }
    return shared_redis->port;
}

bool tft_find_in_path(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        int n = snprintf(out, size, "%.*s/%s", (int)len, path, name);
        if (len > 0 && n > 0 && (size_t)n < size && access(out, X_OK) == 0)
            return true;
        path += len + (colon ? 1 : 0);
    }
    return false;
}

typedef struct http_body {
    char *data; /* malloc'd, NUL-terminated */
    size_t len;
} http_body;

static size_t on_http_body(char *p, size_t size, size_t n, void *arg)
{
    http_body *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0; /* makes curl fail the transfer */
    memcpy(grown + b->len, p, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

long tft_http_get(const char *url, const char *header, int timeout_ms, char **body)
{
    if (body)
        *body = NULL;
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    http_body b = {0};
    struct curl_slist *headers = header ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_http_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (headers)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (status != 0 && !b.data)
        b.data = calloc(1, 1);
    if (status == 0 || !body) {
        free(b.data);
        return status;
    }
    *body = b.data;
    return status;
}
