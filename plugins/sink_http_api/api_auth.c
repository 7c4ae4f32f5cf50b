/* Bearer tokens of the http_api sink: see api_auth.h and docs/api.md "Authentication". */
#include "api_auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HASH_LEN     32
#define HEX_LEN      (2 * HASH_LEN)
#define TOKEN_MAX    4096 /* longer bearer values are refused without hashing */
#define NAME_MAX_LEN 64

typedef struct api_token {
    char name[NAME_MAX_LEN + 1];
    unsigned char hash[HASH_LEN];
    api_scope scope;
} api_token;

struct api_auth {
    api_token *tokens; /* owned */
    size_t n, cap;
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool parse_hex(const char *hex, unsigned char *out)
{
    if (strlen(hex) != HEX_LEN)
        return false;
    for (size_t i = 0; i < HASH_LEN; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* Adds one token; `where` names it in errors ("option tokens[2]", "/etc/tf/tokens:4"). */
static bool add_token(api_auth *a, const char *where, const char *name, const char *scope,
                      const char *sha256, char *err, size_t errsz)
{
    if (!name || !name[0] || strlen(name) > NAME_MAX_LEN) {
        snprintf(err, errsz, "%s.name: expected 1-%d characters, found \"%.80s\"", where,
                 NAME_MAX_LEN, name ? name : "");
        return false;
    }
    api_scope sc = API_SCOPE_NONE;
    if (scope && strcmp(scope, "read") == 0)
        sc = API_SCOPE_READ;
    else if (scope && strcmp(scope, "write") == 0)
        sc = API_SCOPE_WRITE;
    if (sc == API_SCOPE_NONE) {
        snprintf(err, errsz, "%s.scope: expected read or write, found \"%.32s\"", where,
                 scope ? scope : "");
        return false;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 8;
        api_token *t = realloc(a->tokens, cap * sizeof *t);
        if (!t) {
            snprintf(err, errsz, "out of memory");
            return false;
        }
        a->tokens = t;
        a->cap = cap;
    }
    api_token *t = &a->tokens[a->n];
    /* The hash only, never the token: say so without echoing what might be a plain token. */
    if (!sha256 || !parse_hex(sha256, t->hash)) {
        snprintf(err, errsz,
                 "%s.sha256: expected 64 hex characters (the SHA-256 of the token: printf %%s "
                 "TOKEN | sha256sum), found %zu characters%s",
                 where, sha256 ? strlen(sha256) : 0,
                 sha256 && strlen(sha256) == HEX_LEN ? " with a non-hex one" : "");
        return false;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->scope = sc;
    a->n++;
    return true;
}

static bool add_option_tokens(api_auth *a, const json_t *tokens, char *err, size_t errsz)
{
    size_t i;
    const json_t *item;
    json_array_foreach(tokens, i, item)
    {
        char where[48];
        snprintf(where, sizeof where, "option tokens[%zu]", i);
        if (!add_token(a, where, json_string_value(json_object_get(item, "name")),
                       json_string_value(json_object_get(item, "scope")),
                       json_string_value(json_object_get(item, "sha256")), err, errsz))
            return false;
    }
    return true;
}

/* One "name scope sha256hex" line; blank lines and # comments are skipped. */
static bool add_file_line(api_auth *a, const char *path, unsigned lineno, char *line, char *err,
                          size_t errsz)
{
    char *fields[4] = {NULL};
    size_t n = 0;
    char *p = line;
    while (n < 4) {
        p += strspn(p, " \t\r\n");
        if (!*p)
            break;
        fields[n++] = p;
        p += strcspn(p, " \t\r\n");
        if (*p)
            *p++ = '\0';
    }
    if (n == 0 || fields[0][0] == '#')
        return true;
    char where[320];
    snprintf(where, sizeof where, "option token_file %.240s:%u", path, lineno);
    if (n != 3) {
        snprintf(err, errsz, "%s: expected \"name scope sha256hex\" (3 fields), found %zu%s", where,
                 n, n == 4 ? " or more" : "");
        return false;
    }
    return add_token(a, where, fields[0], fields[1], fields[2], err, errsz);
}

static bool add_file_tokens(api_auth *a, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "option token_file: cannot read \"%.240s\": %s", path,
                 strerror(errno));
        return false;
    }
    char line[512];
    unsigned lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        ok = add_file_line(a, path, lineno, line, err, errsz);
    }
    fclose(f);
    return ok;
}

api_auth *api_auth_create(const json_t *tokens, const char *token_file, char *err, size_t errsz)
{
    api_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if ((tokens && !add_option_tokens(a, tokens, err, errsz)) ||
        (token_file && token_file[0] && !add_file_tokens(a, token_file, err, errsz))) {
        api_auth_destroy(a);
        return NULL;
    }
    return a;
}

size_t api_auth_count(const api_auth *a)
{
    return a ? a->n : 0;
}

/* The token of "Bearer <token>" (scheme case-insensitive, RFC 7235 section 2.1). */
static const char *bearer(const char *authorization, size_t *len)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    *len = n;
    return n > 0 && n <= TOKEN_MAX ? t : NULL;
}

api_scope api_auth_check(const api_auth *a, const char *authorization)
{
    size_t len = 0;
    const char *token = bearer(authorization, &len);
    unsigned char hash[HASH_LEN];
    unsigned int hlen = 0;
    if (!a || !token || EVP_Digest(token, len, hash, &hlen, EVP_sha256(), NULL) != 1)
        return API_SCOPE_NONE;
    /* Every hash is compared, with no early exit: the time taken does not say which token (or
     * how many) matched. */
    unsigned best = 0;
    for (size_t i = 0; i < a->n; i++) {
        unsigned match = (unsigned)(CRYPTO_memcmp(hash, a->tokens[i].hash, HASH_LEN) == 0);
        best |= (0u - match) & (unsigned)a->tokens[i].scope;
    }
    OPENSSL_cleanse(hash, sizeof hash);
    return (best & 2u) ? API_SCOPE_WRITE : (best & 1u) ? API_SCOPE_READ : API_SCOPE_NONE;
}

void api_auth_destroy(api_auth *a)
{
    if (!a)
        return;
    free(a->tokens);
    free(a);
}
