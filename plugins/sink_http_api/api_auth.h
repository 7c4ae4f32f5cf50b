/*
 * Bearer tokens of the http_api sink: the SHA-256 hashes from the `tokens` option or a
 * token_file, each with a scope, and the constant-time check of a request's Authorization
 * header against all of them.
 */
#ifndef API_AUTH_H
#define API_AUTH_H

#include <stddef.h>

#include <jansson.h>

/* Bit sets: a write token may also read. */
typedef enum api_scope {
    API_SCOPE_NONE = 0,
    API_SCOPE_READ = 1,
    API_SCOPE_WRITE = 3,
} api_scope;

typedef struct api_auth api_auth;

/* `tokens` is the option's array of {name, sha256, scope} (borrowed, may be NULL);
 * `token_file` a path of "name scope sha256hex" lines or NULL. NULL on failure with what was
 * expected and what was found in err. */
api_auth *api_auth_create(const json_t *tokens, const char *token_file, char *err, size_t errsz);
size_t api_auth_count(const api_auth *a);
/* The scope of the bearer token in an Authorization header value (NULL: none given);
 * API_SCOPE_NONE when missing, malformed or unknown. Every hash is compared, in constant time. */
api_scope api_auth_check(const api_auth *a, const char *authorization);
void api_auth_destroy(api_auth *a);

#endif
