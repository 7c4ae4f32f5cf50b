/* Raw HTTP/1.1 for tests: see tf_rawhttp.h. */
#include "tf_rawhttp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tf_test.h"

#define RAW_CHUNK 4096

int tft_raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_request(int fd, int port, const char *method, const char *path,
                         const char *extra_headers, bool close_after)
{
    size_t size = strlen(method) + strlen(path) + (extra_headers ? strlen(extra_headers) : 0) + 96;
    char *req = malloc(size);
    int n = req ? snprintf(req, size, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s\r\n", method,
                           path, port, close_after ? "Connection: close\r\n" : "",
                           extra_headers ? extra_headers : "")
                : -1;
    bool ok = n > 0 && (size_t)n < size && send_all(fd, req, (size_t)n);
    free(req);
    return ok;
}

/* Reads until EOF, the deadline, or (head_only) the end of the header block, into a malloc'd
 * buffer; *ended says whether the server closed. */
static char *read_answer(int fd, int timeout_ms, bool head_only, size_t *len, bool *ended)
{
    size_t cap = RAW_CHUNK, n = 0;
    char *buf = malloc(cap + 1);
    long long deadline = tft_mono_ms() + timeout_ms;
    *ended = false;
    while (buf) {
        buf[n] = '\0';
        long long left = deadline - tft_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if ((head_only && strstr(buf, "\r\n\r\n")) || left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        if (cap - n < RAW_CHUNK) {
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got <= 0) {
            *ended = got == 0;
            break;
        }
        n += (size_t)got;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Splits a raw answer (taken) into out; false when it has no status line and header block. */
static bool split_answer(char *all, size_t len, tft_raw_response *out)
{
    char *blank = all ? strstr(all, "\r\n\r\n") : NULL;
    if (!blank || sscanf(all, "HTTP/1.%*d %d", &out->status) != 1) {
        free(all);
        return false;
    }
    size_t head_len = (size_t)(blank - all) + 2;
    out->body_len = len - head_len - 2;
    out->body = malloc(out->body_len + 1);
    if (!out->body) {
        free(all);
        return false;
    }
    memcpy(out->body, blank + 4, out->body_len);
    out->body[out->body_len] = '\0';
    all[head_len] = '\0';
    out->head = all; /* the head is the buffer's start */
    return true;
}

bool tft_raw_request(int port, const char *method, const char *path, const char *extra_headers,
                     int timeout_ms, tft_raw_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = tft_raw_connect(port);
    bool ok = fd >= 0 && send_request(fd, port, method, path, extra_headers, true);
    size_t len = 0;
    char *all = ok ? read_answer(fd, timeout_ms, false, &len, &out->ended) : NULL;
    ok = ok && split_answer(all, len, out);
    if (fd >= 0)
        close(fd);
    if (!ok)
        tft_raw_free(out);
    return ok;
}

int tft_raw_open(int port, const char *method, const char *path, const char *extra_headers,
                 int timeout_ms, tft_raw_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = tft_raw_connect(port);
    bool ok = fd >= 0 && send_request(fd, port, method, path, extra_headers, false);
    size_t len = 0;
    char *all = ok ? read_answer(fd, timeout_ms, true, &len, &out->ended) : NULL;
    ok = ok && split_answer(all, len, out);
    if (!ok && fd >= 0) {
        close(fd);
        fd = -1;
    }
    if (!ok)
        tft_raw_free(out);
    return fd;
}

void tft_raw_free(tft_raw_response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Calls fn(name, name_len, value, value_len) for each header line of `head`; stops at false. */
static bool each_header(const char *head,
                        bool (*fn)(const char *, size_t, const char *, size_t, void *), void *arg)
{
    const char *line = strstr(head, "\r\n"); /* after the status line */
    while (line && line[2]) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        const char *colon = memchr(line, ':', end ? (size_t)(end - line) : strlen(line));
        if (!end || !colon)
            return true;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (!fn(line, (size_t)(colon - line), v, (size_t)(end - v), arg))
            return false;
        line = end;
    }
    return true;
}

typedef struct find_arg {
    const char *name;
    char *out;
    size_t size;
    bool found;
} find_arg;

static bool find_one(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
    find_arg *f = arg;
    if (strlen(f->name) != nlen || strncasecmp(name, f->name, nlen) != 0)
        return true;
    snprintf(f->out, f->size, "%.*s", (int)vlen, value);
    f->found = true;
    return false;
}

bool tft_raw_header(const tft_raw_response *r, const char *name, char *out, size_t size)
{
    char scratch[8];
    find_arg f = {name, out ? out : scratch, out ? size : sizeof scratch, false};
    if (r->head)
        each_header(r->head, find_one, &f);
    return f.found;
}

typedef struct compare_arg {
    const tft_raw_response *other;
    const char *const *skip; /* volatile fields */
    bool allow_missing_te;   /* the other may leave Transfer-Encoding out */
    char *why;
    size_t why_size;
} compare_arg;

static bool skipped(const char *name, size_t nlen, const char *const *skip)
{
    if (nlen == 4 && strncasecmp(name, "Date", 4) == 0)
        return true;
    for (size_t i = 0; skip && skip[i]; i++) {
        if (strlen(skip[i]) == nlen && strncasecmp(name, skip[i], nlen) == 0)
            return true;
    }
    return false;
}

/* Every field of one answer is in the other with the same value. */
static bool same_field(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
    compare_arg *c = arg;
    if (skipped(name, nlen, c->skip))
        return true;
    char field[64], theirs[512];
    snprintf(field, sizeof field, "%.*s", (int)nlen, name);
    if (!tft_raw_header(c->other, field, theirs, sizeof theirs)) {
        if (c->allow_missing_te && strcasecmp(field, "Transfer-Encoding") == 0)
            return true;
        snprintf(c->why, c->why_size, "%s: %.*s in one answer, absent from the other", field,
                 (int)vlen, value);
        return false;
    }
    if (strlen(theirs) != vlen || strncmp(theirs, value, vlen) != 0) {
        snprintf(c->why, c->why_size, "%s: '%.*s' in one answer, '%s' in the other", field,
                 (int)vlen, value, theirs);
        return false;
    }
    return true;
}

bool tft_raw_head_matches_get(int port, const char *path, const char *extra_headers,
                              const char *const *volatile_fields, char *why, size_t why_size)
{
    tft_raw_response get, head;
    /* 1.5 s: enough for any answer here; an endless stream (/v1/stream) is cut there. */
    bool ok = tft_raw_request(port, "GET", path, extra_headers, 1500, &get);
    ok = tft_raw_request(port, "HEAD", path, extra_headers, 3000, &head) && ok;
    if (!ok) {
        snprintf(why, why_size, "GET or HEAD %s: no complete answer", path);
    } else if (get.status != head.status) {
        snprintf(why, why_size, "status: GET %d, HEAD %d", get.status, head.status);
        ok = false;
    } else if (head.body_len > 0 || !head.ended) {
        snprintf(why, why_size, "HEAD: %zu bytes of content%s (expected none): %.60s",
                 head.body_len, head.ended ? "" : " and the connection left open", head.body);
        ok = false;
    } else {
        compare_arg from_get = {&head, volatile_fields, true, why, why_size};
        compare_arg from_head = {&get, volatile_fields, false, why, why_size};
        ok = each_header(get.head, same_field, &from_get) &&
             each_header(head.head, same_field, &from_head);
    }
    tft_raw_free(&get);
    tft_raw_free(&head);
    return ok;
}
