/*
 * A Redis connection that heals itself (hiredis 0.14, synchronous). A context that returned
 * an error is never reused: it is freed and the next call reconnects, no sooner than the
 * current backoff allows (full-jitter exponential, 100 ms .. 5 s). AUTH (user + password for
 * Redis 6 ACLs, or password alone) and SELECT run on every new connection. Not thread-safe:
 * one tf_redis per thread.
 */
#ifndef TF_REDIS_H
#define TF_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tf_config.h"

typedef struct tf_redis tf_redis;

/* `who` names the owner in logs and in the `who` label ("lease/kimchi"). Copies the settings;
 * does not connect. The connection is idle (tickflow_redis_idle 1, no tickflow_redis_up
 * series) until its first command; from then on tickflow_redis_up says whether it is
 * established. */
tf_redis *tf_redis_create(const tf_redis_settings *settings, const char *who);
/* The same, for a plugin of `pipeline` (copied): tf_redis_idle_pipeline reaches it. */
tf_redis *tf_redis_create_for(const tf_redis_settings *settings, const char *who,
                              const char *pipeline);
void tf_redis_destroy(tf_redis *r);

/* `pipeline` went on standby on this replica: its plugins' connections are idle again until
 * their next command, so a connection that failed while the pipeline ran here (or that it
 * never needed) is not exported as down. Any thread. */
void tf_redis_idle_pipeline(const char *pipeline);

/* Did the latest command on any in-use connection of `pipeline`'s plugins get a reply? A
 * connection whose plugin stopped using it after a failure (a pooled one) does not outvote one
 * that succeeded since. True when none was used. Any thread. */
bool tf_redis_pipeline_reachable(const char *pipeline);

/* Runs one command, connecting first if needed. Returns the reply (caller frees it with
 * freeReplyObject) or NULL when Redis is unreachable or the connection failed (the context is
 * dropped). A REDIS_REPLY_ERROR reply is returned as a reply: the connection is fine. When an
 * established connection turns out to have been closed by the server (Redis `timeout`, a
 * restart: EOF, EPIPE, ECONNRESET), the command is sent once more on a new connection, so send
 * only commands that are safe to repeat (idempotent or fenced). Not after a timeout. */
redisReply *tf_redis_command(tf_redis *r, const char *fmt, ...);
redisReply *tf_redis_command_argv(tf_redis *r, int argc, const char **argv, const size_t *lens);
/* Pipelining (never retried): append commands, then read each reply in order. append returns TF_OK
 * or TF_EREDIS (not connected and could not connect). get_reply returns NULL on failure. */
int tf_redis_append_argv(tf_redis *r, int argc, const char **argv, const size_t *lens);
redisReply *tf_redis_get_reply(tf_redis *r);
/* For a connection that receives replies nobody asked for (SUBSCRIBE): waits up to timeout_ms
 * for the next one. TF_OK and *out set (caller frees); TF_ETIMEOUT when none arrived, the
 * connection staying up (unlike the command timeout, silence is normal here); TF_EREDIS when
 * not connected or the connection failed (it is dropped; the next command reconnects). */
int tf_redis_read_reply(tf_redis *r, int64_t timeout_ms, redisReply **out);

/* EVALSHA with the script's SHA1, loading it with EVAL on NOSCRIPT (e.g. after a restart of
 * Redis). `script` must stay valid while `r` exists. */
redisReply *tf_redis_eval(tf_redis *r, const char *script, int numkeys, int argc, const char **argv,
                          const size_t *lens);

bool tf_redis_is_connected(const tf_redis *r);
/* Forces a reconnect on the next call (e.g. after a protocol surprise). */
void tf_redis_drop(tf_redis *r);
/* Reconnections made so far (for metrics and tests). */
unsigned long tf_redis_reconnects(const tf_redis *r);

#endif
