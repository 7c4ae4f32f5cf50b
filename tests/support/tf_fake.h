/*
 * The fake exchange (build/bin/tickflow-fake-exchange) as a child process of a test, and its
 * admin API (/admin/price, /admin/fault, /admin/stats, /admin/reset) over loopback HTTP.
 */
#ifndef TF_FAKE_H
#define TF_FAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct tft_fake {
    pid_t pid;
    int port;
    char *dir;
    char base[64]; /* "http://127.0.0.1:PORT" */
    long status;   /* HTTP status of the last admin call; 0 when none arrived */
    bool strict;   /* every admin call asserts (CUnit) an HTTP 200 */
} tft_fake;

/* Starts it on a free port (extra_args: more flags, NULL-terminated, may be NULL) and waits
 * for its port file. NULL on failure. */
tft_fake *tft_fake_start(const char *const *extra_args);
/* SIGTERM, wait, free. */
void tft_fake_stop(tft_fake *f);
/* GET (body NULL) or POST `path`; the JSON reply (new reference) or NULL on any failure
 * (HTTP status other than 200 included, printed to stderr). */
json_t *tft_fake_admin(tft_fake *f, const char *path, const char *body);
/* POST, asserting success; returns true when the reply was 200. */
bool tft_fake_post(tft_fake *f, const char *path, const char *body);
/* POSTs `body` (NULL: "{}"); the HTTP status, 0 when no response arrived. */
long tft_fake_send(tft_fake *f, const char *path, const char *body);
/* endpoints.<id>.<what> of /admin/stats ("requests", "connections"); -1 when absent. */
long long tft_fake_stat(tft_fake *f, const char *endpoint, const char *what);

#endif
