/*
 * Leveled logging: formats a message, masks secrets and credential-looking patterns, escapes
 * what could forge a line, and writes the whole line with one write(2) to stderr.
 * Owns the process-wide secret list and the level / JSON settings.
 */
#include "tf_log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Longest message kept (bytes, after masking); the rest is replaced by an ellipsis. */
#define TF_LOG_MAX_MSG    8192
#define TF_LOG_ELLIPSIS   "\xe2\x80\xa6" /* U+2026 */
#define TF_LOG_MASK       "****"
#define TF_LOG_MIN_SECRET 4

static atomic_int g_level = TF_LOG_INFO;
static atomic_bool g_json = false;

/* Secrets: longest first, so a secret containing another one is masked whole. */
static pthread_mutex_t g_secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **g_secrets;
static size_t g_n_secrets;

/* Serializes the write(2) loop so a line longer than PIPE_BUF is still never interleaved with
 * another thread's line. */
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;

/* A growable string; `oom` makes every later append a no-op so callers check once. */
typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->p[b->len] = '\0';
    b->cap = cap;
}

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_addc(sbuf *b, char c)
{
    sb_addn(b, &c, 1);
}

void tf_log_set_level(tf_log_level level)
{
    atomic_store(&g_level, (int)level);
}

tf_log_level tf_log_get_level(void)
{
    return (tf_log_level)atomic_load(&g_level);
}

void tf_log_set_json(bool json)
{
    atomic_store(&g_json, json);
}

static const char *const g_level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const g_level_upper[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int tf_log_parse_level(const char *text, tf_log_level *out)
{
    for (size_t i = 0; text && i < TF_ARRAY_LEN(g_level_names); i++) {
        if (strcmp(text, g_level_names[i]) == 0) {
            *out = (tf_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *tf_log_level_name(tf_log_level level)
{
    if ((int)level < 0 || (size_t)level >= TF_ARRAY_LEN(g_level_names))
        return "unknown";
    return g_level_names[level];
}

void tf_log_add_secret(const char *value)
{
    if (!value || strlen(value) < TF_LOG_MIN_SECRET)
        return;
    char *copy = strdup(value);
    if (!copy)
        return;
    pthread_mutex_lock(&g_secrets_lock);
    for (size_t i = 0; i < g_n_secrets; i++) {
        if (strcmp(g_secrets[i], copy) == 0) {
            free(copy);
            goto out;
        }
    }
    char **grown = realloc(g_secrets, (g_n_secrets + 1) * sizeof *grown);
    if (!grown) {
        free(copy);
        goto out;
    }
    g_secrets = grown;
    size_t at = 0;
    size_t len = strlen(copy);
    while (at < g_n_secrets && strlen(g_secrets[at]) >= len)
        at++;
    memmove(&g_secrets[at + 1], &g_secrets[at], (g_n_secrets - at) * sizeof *g_secrets);
    g_secrets[at] = copy;
    g_n_secrets++;
out:
    pthread_mutex_unlock(&g_secrets_lock);
}

void tf_log_shutdown(void)
{
    pthread_mutex_lock(&g_secrets_lock);
    for (size_t i = 0; i < g_n_secrets; i++) {
        explicit_bzero(g_secrets[i], strlen(g_secrets[i]));
        free(g_secrets[i]);
    }
    free(g_secrets);
    g_secrets = NULL;
    g_n_secrets = 0;
    pthread_mutex_unlock(&g_secrets_lock);
}

/* --- masking ------------------------------------------------------------------------------ */

/* Credentials that appear in URLs, headers and request dumps. Names match case-insensitively
 * (HTTP header names are case-insensitive; over-masking a query parameter is harmless). */
typedef enum pattern_kind { PAT_QUERY, PAT_HEADER, PAT_AUTH } pattern_kind;

typedef struct pattern {
    const char *name;
    pattern_kind kind;
} pattern;

static const pattern g_patterns[] = {
    {"signature=", PAT_QUERY},  {"apiKey=", PAT_QUERY},       {"api_key=", PAT_QUERY},
    {"access_key=", PAT_QUERY}, {"authkey=", PAT_QUERY},      {"X-MBX-APIKEY:", PAT_HEADER},
    {"Api-Key:", PAT_HEADER},   {"Authorization:", PAT_AUTH},
};

/* Where a query value ends: the next parameter, whitespace, or the quote around the URL. */
static bool query_value_end(char c)
{
    return c == '\0' || c == '&' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' ||
           c == '\'' || c == '#';
}

/* Where a header credential ends: the end of the line, whitespace, or a quote/comma when the
 * header was dumped inside JSON or a list. */
static bool header_value_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' ||
           c == ',' || c == ';';
}

static size_t skip_blanks(const char *s, size_t i)
{
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    return i;
}

/* Length of an auth scheme word ("Bearer", "Basic") followed by a blank, else 0: the scheme
 * stays readable, only the credential is masked. */
static size_t auth_scheme_len(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
        n++;
    if (n == 0 || (s[n] != ' ' && s[n] != '\t'))
        return 0;
    return n;
}

/* If a pattern starts at `s`, appends the masked form and returns the bytes consumed. */
static size_t mask_pattern_at(const char *s, sbuf *out)
{
    /* Every pattern starts with s, a or x: skip the table for all other bytes. */
    char c = (char)(s[0] | 0x20);
    if (c != 's' && c != 'a' && c != 'x')
        return 0;
    for (size_t p = 0; p < TF_ARRAY_LEN(g_patterns); p++) {
        const pattern *pat = &g_patterns[p];
        size_t nlen = strlen(pat->name);
        if (strncasecmp(s, pat->name, nlen) != 0)
            continue;
        size_t i = nlen;
        if (pat->kind != PAT_QUERY)
            i = skip_blanks(s, i);
        if (pat->kind == PAT_AUTH) {
            size_t scheme = auth_scheme_len(s + i);
            if (scheme)
                i = skip_blanks(s, i + scheme);
        }
        size_t v = i;
        if (pat->kind == PAT_QUERY) {
            while (!query_value_end(s[v]))
                v++;
        } else {
            while (!header_value_end(s[v]))
                v++;
        }
        if (v == i)
            continue;
        sb_addn(out, s, i);
        sb_add(out, TF_LOG_MASK);
        return v;
    }
    return 0;
}

/* Caller holds g_secrets_lock. */
static size_t mask_secret_at(const char *s, sbuf *out)
{
    for (size_t k = 0; k < g_n_secrets; k++) {
        const char *sec = g_secrets[k];
        if (sec[0] != s[0])
            continue;
        size_t n = strlen(sec);
        if (strncmp(s, sec, n) == 0) {
            sb_add(out, TF_LOG_MASK);
            return n;
        }
    }
    return 0;
}

static void mask_into(const char *text, sbuf *out)
{
    sb_reserve(out, strlen(text));
    pthread_mutex_lock(&g_secrets_lock);
    size_t i = 0;
    while (text[i]) {
        size_t used = mask_secret_at(text + i, out);
        if (!used)
            used = mask_pattern_at(text + i, out);
        if (used) {
            i += used;
            continue;
        }
        sb_addc(out, text[i]);
        i++;
    }
    pthread_mutex_unlock(&g_secrets_lock);
}

void tf_log_mask(const char *text, char *out, size_t out_size)
{
    if (!out || out_size == 0)
        return;
    sbuf b = {0};
    mask_into(text ? text : "", &b);
    if (b.oom || !b.p) {
        /* Never hand back the unmasked text. */
        snprintf(out, out_size, "%s", b.oom ? "(masking failed: out of memory)" : "");
        goto out;
    }
    snprintf(out, out_size, "%s", b.p);
out:
    free(b.p);
}

/* --- escaping ----------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = 4;
    unsigned min = 0x10000;
    unsigned cp = s[0] & 0x07;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) != 0xf0) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void add_hex_escape(sbuf *out, unsigned char c)
{
    char hex[8];
    snprintf(hex, sizeof hex, "\\x%02x", c);
    sb_add(out, hex);
}

/* Makes `s` safe for one log line: invalid UTF-8 becomes \xNN; in text mode control
 * characters become \n, \r, \t or \xNN so an exchange body cannot start a forged line. In JSON
 * mode control characters stay: jansson escapes them. */
static void escape_into(const char *s, bool keep_controls, sbuf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (u[i]) {
        size_t n = utf8_len(u + i);
        if (n == 0) {
            add_hex_escape(out, u[i]);
            i++;
            continue;
        }
        unsigned char c = u[i];
        if (n > 1 || keep_controls || (c >= 0x20 && c != 0x7f)) {
            sb_addn(out, s + i, n);
        } else if (c == '\n') {
            sb_add(out, "\\n");
        } else if (c == '\r') {
            sb_add(out, "\\r");
        } else if (c == '\t') {
            sb_add(out, "\\t");
        } else {
            add_hex_escape(out, c);
        }
        i += n;
    }
}

/* Cuts `b` to at most TF_LOG_MAX_MSG bytes on a UTF-8 boundary and marks the cut. */
static void truncate_message(sbuf *b)
{
    if (b->oom || b->len <= TF_LOG_MAX_MSG)
        return;
    size_t cut = TF_LOG_MAX_MSG;
    while (cut > 0 && ((unsigned char)b->p[cut] & 0xc0) == 0x80)
        cut--;
    b->len = cut;
    b->p[cut] = '\0';
    sb_add(b, TF_LOG_ELLIPSIS);
}

/* --- output ------------------------------------------------------------------------------- */

static void format_timestamp(char *buf, size_t size)
{
    int64_t ms = tf_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[32];
    if (strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    snprintf(buf, size, "%s.%03dZ", date, (int)(ms % 1000));
}

static void write_all(const char *p, size_t len)
{
    pthread_mutex_lock(&g_write_lock);
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&g_write_lock);
}

static void build_text_line(sbuf *line, const char *ts, tf_log_level level, const char *comp,
                            const char *msg)
{
    char head[96];
    int lvl = (int)level;
    const char *name =
        lvl >= 0 && (size_t)lvl < TF_ARRAY_LEN(g_level_upper) ? g_level_upper[lvl] : "?";
    snprintf(head, sizeof head, "%s %-5s [", ts, name);
    sb_add(line, head);
    sb_add(line, comp);
    sb_add(line, "] ");
    sb_add(line, msg);
    sb_addc(line, '\n');
}

static void build_json_line(sbuf *line, const char *ts, tf_log_level level, const char *comp,
                            const char *msg)
{
    json_t *obj = json_object();
    char *text = NULL;
    if (!obj)
        goto out;
    /* escape_into() produced valid UTF-8, so json_string cannot fail on the content. */
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(tf_log_level_name(level)));
    json_object_set_new(obj, "component", json_string(comp));
    json_object_set_new(obj, "msg", json_string(msg));
    text = json_dumps(obj, JSON_COMPACT);
    if (!text)
        goto out;
    sb_add(line, text);
    sb_addc(line, '\n');
out:
    free(text);
    json_decref(obj);
}

/* vsnprintf into a malloc'd buffer, so masking sees the whole message before truncation
 * (a cut could otherwise leave half a secret unmasked). */
static char *format_message(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return strdup("(unformattable log message)");
    char *msg = malloc((size_t)n + 1);
    if (!msg)
        return NULL;
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    return msg;
}

void tf_vlog(tf_log_level level, const char *component, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load(&g_level))
        return;
    bool json = atomic_load(&g_json);
    sbuf masked = {0};
    sbuf msg = {0};
    sbuf comp = {0};
    sbuf line = {0};
    char *raw = format_message(fmt ? fmt : "", ap);
    if (!raw)
        goto out;
    mask_into(raw, &masked);
    truncate_message(&masked);
    escape_into(masked.p ? masked.p : "", json, &msg);
    escape_into(component ? component : "-", false, &comp);
    if (masked.oom || msg.oom || comp.oom)
        goto out;
    char ts[40];
    format_timestamp(ts, sizeof ts);
    const char *m = msg.p ? msg.p : "";
    const char *c = comp.p ? comp.p : "";
    if (json)
        build_json_line(&line, ts, level, c, m);
    else
        build_text_line(&line, ts, level, c, m);
    if (!line.oom && line.p)
        write_all(line.p, line.len);
out:
    if (raw) {
        explicit_bzero(raw, strlen(raw));
        free(raw);
    }
    free(masked.p);
    free(msg.p);
    free(comp.p);
    free(line.p);
}

void tf_log(tf_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_vlog(level, component, fmt, ap);
    va_end(ap);
}
