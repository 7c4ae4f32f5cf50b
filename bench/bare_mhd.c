/*
 * The floor bench/api compares the http_api sink with: a libmicrohttpd server that answers
 * every request with one fixed buffer, using the sink's thread model (internal polling
 * threads, epoll, a pool of N threads). Whatever the sink costs above this is its own code.
 *
 *   bare_mhd --port N --threads N --body FILE [--header 'Name: value']... [--first-call 1]
 *
 * --first-call 1 queues the response on the first call of the request callback, which costs
 * keep-alive (see on_request): bench/api uses it to tell that cost apart from the sink's own.
 *
 * Binds 127.0.0.1 only (port 0 picks a free one), prints "listening on 127.0.0.1:PORT" and
 * runs until SIGINT or SIGTERM. Built by bench/api, not by CMake.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define BARE_MAX_HEADERS 16
#define BARE_MAX_BODY    (1024 * 1024)

typedef struct bare_args {
    unsigned port;
    unsigned threads;
    const char *body_path;                 /* borrowed from argv */
    const char *headers[BARE_MAX_HEADERS]; /* borrowed from argv: "Name: value" */
    size_t n_headers;
    unsigned first_call; /* 1: queue on the first callback (libmicrohttpd then closes) */
} bare_args;

static int usage(const char *why)
{
    fprintf(stderr,
            "bare_mhd: %s\nusage: bare_mhd --port N --threads N --body FILE "
            "[--header 'Name: value']... [--first-call 0|1]\n",
            why);
    return 2;
}

static int parse_unsigned(const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_args(int argc, char **argv, bare_args *a)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            return usage("every option takes a value");
        }
        const char *opt = argv[i];
        const char *val = argv[++i];
        if (strcmp(opt, "--port") == 0 && parse_unsigned(val, 65535, &a->port) == 0) {
            continue;
        }
        if (strcmp(opt, "--threads") == 0 && parse_unsigned(val, 1024, &a->threads) == 0 &&
            a->threads > 0) {
            continue;
        }
        if (strcmp(opt, "--first-call") == 0 && parse_unsigned(val, 1, &a->first_call) == 0) {
            continue;
        }
        if (strcmp(opt, "--body") == 0) {
            a->body_path = val;
            continue;
        }
        if (strcmp(opt, "--header") == 0 && a->n_headers < BARE_MAX_HEADERS &&
            strchr(val, ':') != NULL) {
            a->headers[a->n_headers++] = val;
            continue;
        }
        fprintf(stderr, "bare_mhd: bad option or value: %s %s\n", opt, val);
        return usage("expected --port 0..65535, --threads 1..1024, --body FILE, "
                     "--header 'Name: value' (at most 16), --first-call 0|1");
    }
    if (a->body_path == NULL || a->threads == 0) {
        return usage("--body and --threads are required");
    }
    return 0;
}

/* Reads the whole file into a malloc'd buffer the caller owns. */
static char *read_file(const char *path, size_t *len)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bare_mhd: cannot open %s: %s\n", path, strerror(errno));
        goto fail;
    }
    buf = malloc(BARE_MAX_BODY);
    if (buf == NULL) {
        goto fail;
    }
    *len = fread(buf, 1, BARE_MAX_BODY, f);
    if (ferror(f) || *len == BARE_MAX_BODY) {
        fprintf(stderr, "bare_mhd: %s: expected a readable file under 1 MiB\n", path);
        goto fail;
    }
    fclose(f);
    return buf;
fail:
    free(buf);
    if (f != NULL) {
        fclose(f);
    }
    return NULL;
}

/* Adds "Name: value" to the response; the name is copied out because MHD wants two strings. */
static int add_header(struct MHD_Response *r, const char *line)
{
    char name[128];
    size_t n = (size_t)(strchr(line, ':') - line);
    if (n == 0 || n >= sizeof name) {
        fprintf(stderr, "bare_mhd: header name of 1-127 bytes expected in \"%s\"\n", line);
        return -1;
    }
    memcpy(name, line, n);
    name[n] = '\0';
    const char *value = line + n + 1;
    value += strspn(value, " \t");
    if (MHD_add_response_header(r, name, value) != MHD_YES) {
        fprintf(stderr, "bare_mhd: libmicrohttpd refused header \"%s\"\n", line);
        return -1;
    }
    return 0;
}

/* What the request callback needs: the one response and when to queue it. */
typedef struct bare_server {
    struct MHD_Response *resp; /* owned by main */
    bool first_call;
} bare_server;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    /* libmicrohttpd 0.9.75 answers "Connection: close" to a response queued on the first call,
     * before it has seen the end of the request; queueing on the second call keeps the
     * connection alive, as any real server (and wrk) expects. */
    const bare_server *srv = cls;
    if (*state == NULL && !srv->first_call) {
        *state = c;
        return MHD_YES;
    }
    /* One shared response: MHD reference-counts it, so every thread can queue it. */
    return MHD_queue_response(c, MHD_HTTP_OK, srv->resp);
}

static struct MHD_Daemon *start_daemon(const bare_args *a, bare_server *srv)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)a->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, (uint16_t)a->port, NULL, NULL, on_request, srv,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_THREAD_POOL_SIZE, a->threads, MHD_OPTION_CONNECTION_LIMIT,
                            10000u, MHD_OPTION_END);
}

int main(int argc, char **argv)
{
    int rc = 1;
    bare_args a = {0};
    char *body = NULL;
    struct MHD_Response *resp = NULL;
    struct MHD_Daemon *d = NULL;

    if (parse_args(argc, argv, &a) != 0) {
        return 2;
    }
    /* Block the stop signals before any thread exists so only sigwait sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t len = 0;
    body = read_file(a.body_path, &len);
    if (body == NULL) {
        goto out;
    }
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        goto out;
    }
    for (size_t i = 0; i < a.n_headers; i++) {
        if (add_header(resp, a.headers[i]) != 0) {
            goto out;
        }
    }
    bare_server srv = {.resp = resp, .first_call = a.first_call == 1};
    d = start_daemon(&a, &srv);
    if (d == NULL) {
        fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%u\n", a.port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on 127.0.0.1:%u\n", info != NULL ? (unsigned)info->port : a.port);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    rc = 0;
out:
    if (d != NULL) {
        MHD_stop_daemon(d);
    }
    if (resp != NULL) {
        MHD_destroy_response(resp);
    }
    free(body);
    return rc;
}
