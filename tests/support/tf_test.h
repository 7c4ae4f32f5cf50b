/*
 * Test support shared by unit and integration tests: process spawning, waiting on conditions
 * with a deadline (never a bare sleep), private redis-server instances, temp files, and a
 * CUnit runner that exits non-zero on any failure.
 */
#ifndef TF_TEST_H
#define TF_TEST_H

#include <CUnit/CUnit.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Runs one suite of tests (array ended by CU_TEST_INFO_NULL); returns the process exit code:
 * 0 when everything passed, 1 otherwise. Prints CUnit's summary. */
int tft_run_suite(const char *suite_name, CU_TestInfo *tests, int (*init)(void),
                  int (*cleanup)(void));

/* Absolute path of a build output: tft_bin("tickflow") -> <build>/bin/tickflow. Borrowed. */
const char *tft_bin(const char *name);
/* <build>/lib/tickflow/plugins. Borrowed. */
const char *tft_plugin_dir(void);
/* <source>/tests/fixtures/exchanges/<name>. Borrowed (static buffer per call: copy it). */
const char *tft_fixture(const char *name);
/* <source>/<rel>. Borrowed (static buffer per call). */
const char *tft_source_path(const char *rel);

/* A fresh directory under $TMPDIR (removed by tft_rmdir). malloc'd. */
char *tft_mkdtemp(void);
void tft_rmdir(const char *dir);
/* Writes `text` to `path` (truncating). 0 on success. */
int tft_write_file(const char *path, const char *text);
/* Whole file, NUL-terminated, malloc'd; NULL if unreadable. */
char *tft_read_file(const char *path, size_t *len);
/* Number of occurrences of `needle` in the file (0 if unreadable). */
int tft_file_count(const char *path, const char *needle);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tft_free_port(void);

/* fork + exec argv[0] with stdout and stderr appended to `log_path` (or /dev/null when NULL),
 * stdin from /dev/null, and `env` ("NAME=value", NULL-terminated, may be NULL) added to the
 * environment. Returns the pid, or -1. */
pid_t tft_spawn(const char *const *argv, const char *log_path, const char *const *env);
/* Waits up to timeout_ms for the child to exit; returns true and sets *status if it did. */
bool tft_wait_exit(pid_t pid, int timeout_ms, int *status);
/* Sends SIGKILL and reaps. */
void tft_kill_wait(pid_t pid);
/* Sends `sig` (SIGTERM), waits up to timeout_ms, then SIGKILL. Returns the exit status
 * (as from waitpid) or -1 when it had to be killed. */
int tft_stop(pid_t pid, int sig, int timeout_ms);

/* Sends SIGSTOP and waits up to timeout_ms until every thread of `pid` is stopped (state T in
 * /proc/<pid>/task/<tid>/stat). kill() returns before the threads stop: a thread still running
 * meanwhile can accept connections or finish a tick the test means to freeze. */
bool tft_freeze(pid_t pid, int timeout_ms);

/* Polls cond(arg) every 10 ms until it is true or timeout_ms passes. */
bool tft_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);
/* Milliseconds on the monotonic clock. */
long long tft_mono_ms(void);
/* Sleeps for ms. Only for pacing a test's own actions, never to wait for a condition. */
void tft_sleep_ms(int ms);

/* The absolute path of the executable `name` found in $PATH, as a shell would (tft_spawn
 * execs a path). False when there is none. */
bool tft_find_in_path(const char *name, char *out, size_t size);

/* One HTTP GET with libcurl (no proxy; `header` "Name: value" may be NULL): the status, 0 when
 * no response came within timeout_ms. *body (when body is not NULL) receives the body,
 * malloc'd and NUL-terminated, or NULL when no response came; the caller frees it. */
long tft_http_get(const char *url, const char *header, int timeout_ms, char **body);

/* A private redis-server on 127.0.0.1 (no persistence) in its own temp dir. */
typedef struct tft_redis {
    pid_t pid;
    int port;
    char *dir;
    char *log;
} tft_redis;
/* Starts one on `port` (0 = a free one) and waits until it answers PING. NULL on failure. */
tft_redis *tft_redis_start(int port);
/* Stops it (SHUTDOWN NOSAVE / SIGKILL); keeps the struct so it can be restarted. */
void tft_redis_stop(tft_redis *r);
/* Starts it again on the same port. 0 on success. */
int tft_redis_restart(tft_redis *r);
void tft_redis_destroy(tft_redis *r); /* stops if running, removes the directory */
/* A connection to 127.0.0.1:port; NULL on failure. */
redisContext *tft_redis_connect(int port);
/* The suite-wide Redis: $TF_TEST_REDIS_PORT when set (scripts/test starts one), otherwise a
 * private instance started on first use and stopped at exit. */
int tft_shared_redis_port(void);
/* Runs a command and returns its reply (caller frees); NULL on error. */
redisReply *tft_redis_cmd(int port, const char *fmt, ...);

#endif
