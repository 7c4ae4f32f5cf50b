/*
 * A loopback HTTP server for parser tests that answers chosen paths with fixture files,
 * byte for byte, with a chosen status and headers. It counts requests per path. Runs in the
 * test process (libmicrohttpd internal thread).
 */
#ifndef TF_FIXTURE_SERVER_H
#define TF_FIXTURE_SERVER_H

#include <stdbool.h>
#include <jansson.h>
#include <stddef.h>

typedef struct tft_server tft_server;

/* Starts on 127.0.0.1 with a free port. NULL on failure. */
tft_server *tft_server_start(void);
void tft_server_stop(tft_server *s);
int tft_server_port(const tft_server *s);
/* "http://127.0.0.1:PORT" (borrowed). */
const char *tft_server_url(const tft_server *s);

/* Routes `path_and_query` (exact match on the URL path plus "?query" as received, or on the
 * path alone when `path_and_query` has no '?') to `body` with `status`. `headers` is
 * "Name: value\n..." (may be NULL). Content-Type defaults to application/json. Replaces an
 * earlier route for the same path. Copies everything. */
void tft_server_route(tft_server *s, const char *path_and_query, int status, const char *headers,
                      const char *body, size_t body_len);
/* Same, with the body read from tests/fixtures/exchanges/<fixture>. false if unreadable. */
bool tft_server_route_fixture(tft_server *s, const char *path_and_query, int status,
                              const char *headers, const char *fixture);
/* Routes `path` to the compact JSON of `body` (takes the reference). */
void tft_server_route_json(tft_server *s, const char *path, int status, const char *headers,
                           json_t *body);
/* A fixture file parsed as JSON (new reference); fails the current test if unreadable. */
json_t *tft_fixture_json(const char *name);
/* The "Name: value\n" lines of a raw *.headers.txt fixture, without its status line and the
 * framing headers the server sets itself (Content-Length, Connection). malloc'd. */
char *tft_fixture_headers(const char *name);

/* Requests received for a path (path alone, without query), and in total. */
int tft_server_hits(tft_server *s, const char *path);
int tft_server_total_hits(tft_server *s);
/* The last request's full URL (path?query) and a header value from it ("" if absent);
 * copied into buf. */
void tft_server_last_request(tft_server *s, char *url, size_t url_size, const char *header,
                             char *value, size_t value_size);

#endif
