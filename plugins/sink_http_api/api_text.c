/* Text helpers: see api_text.h. */
#include "api_text.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_buf_free(api_buf *b)
{
    free(b->p);
    *b = (api_buf){0};
}

bool api_buf_reserve(api_buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

bool api_buf_add(api_buf *b, const void *data, size_t len)
{
    if (!api_buf_reserve(b, len))
        return false;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return true;
}

bool api_buf_puts(api_buf *b, const char *s)
{
    return api_buf_add(b, s, strlen(s));
}

bool api_buf_printf(api_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !api_buf_reserve(b, (size_t)n)) {
        b->oom = true;
        return false;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

char *api_buf_take(api_buf *b, size_t *len)
{
    char *p = NULL;
    if (b->oom)
        free(b->p);
    else
        p = b->p ? b->p : calloc(1, 1);
    if (len)
        *len = p ? b->len : 0;
    *b = (api_buf){0};
    return p;
}

uint64_t api_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The precision every real below `v` needs to round-trip (15..17 significant digits). */
static int real_precision(const json_t *v, int precision)
{
    if (json_is_real(v)) {
        double d = json_real_value(v);
        char text[40];
        while (precision < 17) {
            snprintf(text, sizeof text, "%.*g", precision, d);
            if (strtod(text, NULL) == d)
                break;
            precision++;
        }
    } else if (json_is_object(v)) {
        const char *name;
        json_t *item;
        json_object_foreach((json_t *)v, name, item)
        {
            precision = real_precision(item, precision);
        }
        (void)name;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            precision = real_precision(item, precision);
        }
    }
    return precision;
}

char *api_json_dump(const json_t *v, size_t *len)
{
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(real_precision(v, 15));
    char *text = json_dumps(v, flags | JSON_ENCODE_ANY);
    if (text && len)
        *len = strlen(text);
    return text;
}

static bool valid_token(const char *s, size_t max, char *out, size_t size, int (*fold)(int))
{
    size_t n = strlen(s);
    if (n == 0 || n > max || n >= size)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return false;
        out[i] = fold ? (char)fold(c) : (char)c;
    }
    out[n] = '\0';
    return true;
}

bool api_valid_symbol(const char *s, char *out, size_t size)
{
    return valid_token(s, 32, out, size, toupper);
}

bool api_valid_exchange(const char *s, char *out, size_t size)
{
    return valid_token(s, 32, out, size, tolower);
}

bool api_valid_id(const char *s, char *out, size_t size)
{
    return valid_token(s, 64, out, size, NULL);
}

bool api_parse_uint(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool api_parse_stream_id(const char *s, uint64_t *ms, uint64_t *seq)
{
    const char *dash = strchr(s, '-');
    if (!dash)
        return false;
    return parse_u64(s, (size_t)(dash - s), ms) && parse_u64(dash + 1, strlen(dash + 1), seq);
}

int api_stream_id_cmp(const char *a, const char *b)
{
    uint64_t ams = 0, aseq = 0, bms = 0, bseq = 0;
    api_parse_stream_id(a, &ams, &aseq);
    api_parse_stream_id(b, &bms, &bseq);
    if (ams != bms)
        return ams < bms ? -1 : 1;
    if (aseq != bseq)
        return aseq < bseq ? -1 : 1;
    return 0;
}

/* The opaque part of an entity tag: without W/ and the quotes. */
static void opaque(const char *tag, size_t len, const char **start, size_t *n)
{
    if (len >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        len -= 2;
    }
    if (len >= 2 && tag[0] == '"' && tag[len - 1] == '"') {
        tag++;
        len -= 2;
    }
    *start = tag;
    *n = len;
}

bool api_etag_matches(const char *if_none_match, const char *etag)
{
    const char *want;
    size_t want_len;
    opaque(etag, strlen(etag), &want, &want_len);
    const char *p = if_none_match;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t len = (size_t)(end - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 1 && p[0] == '*')
            return true;
        const char *tag;
        size_t tag_len;
        opaque(p, len, &tag, &tag_len);
        if (len > 0 && tag_len == want_len && memcmp(tag, want, want_len) == 0)
            return true;
        p = end;
    }
    return false;
}
