/*
 * Leveled logging for the core and plugins: one line per message to stderr (text or JSON),
 * with registered secret values masked before anything is written.
 */
#ifndef TF_LOG_H
#define TF_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "tf_common.h"

void tf_log_set_level(tf_log_level level);
tf_log_level tf_log_get_level(void);
void tf_log_set_json(bool json);
/* "error", "warn", "info", "debug", "trace" -> 0 and *out; -1 otherwise. */
int tf_log_parse_level(const char *text, tf_log_level *out);
const char *tf_log_level_name(tf_log_level level);

/* `component` names the writer: "core", "lease/kimchi", "kimchi/bithumb". */
void tf_log(tf_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tf_vlog(tf_log_level level, const char *component, const char *fmt, va_list ap);

/* Every later message has each occurrence of `value` replaced by "****". Values shorter than
 * 4 bytes are ignored (masking them would garble ordinary text). Copies `value`. */
void tf_log_add_secret(const char *value);
/* Masks registered secrets and known patterns (signature=..., Authorization: ...) in place
 * of `text`, writing the result into `out` (always NUL-terminated). */
void tf_log_mask(const char *text, char *out, size_t out_size);
/* Frees the secret list (at exit, so leak checkers stay quiet). */
void tf_log_shutdown(void);

#define TF_ERROR(comp, ...) tf_log(TF_LOG_ERROR, comp, __VA_ARGS__)
#define TF_WARN(comp, ...)  tf_log(TF_LOG_WARN, comp, __VA_ARGS__)
#define TF_INFO(comp, ...)  tf_log(TF_LOG_INFO, comp, __VA_ARGS__)
#define TF_DEBUG(comp, ...) tf_log(TF_LOG_DEBUG, comp, __VA_ARGS__)

#endif
