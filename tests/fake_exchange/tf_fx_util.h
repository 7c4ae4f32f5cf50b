/* tf_fx_util: clocks, locale-free number/date formatting and small jansson helpers shared by
 * the fake exchange's modules. Nothing here holds state. */
#ifndef TF_FX_UTIL_H
#define TF_FX_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Dump flags for every body: fixture key order, no whitespace, and 15 significant digits so a
 * decimal typed by a test (<= 15 digits, DBL_DIG) comes back exactly as typed. */
#define TF_FX_DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15))

int64_t tf_fx_wall_ms(void);
int64_t tf_fx_mono_ms(void);

/* Rounds v to dp decimals and returns the double nearest to that decimal, so that later
 * formatting does not show binary noise (95012.30000000001). */
double tf_fx_round_dp(double v, int dp);

/* Shortest fixed-point text with at least min_dp decimals that parses back to exactly v.
 * Returns 0, or -1 if buf is too small. */
int tf_fx_fmt(char *buf, size_t n, double v, int min_dp);

/* Like tf_fx_fmt with min_dp 0 and trailing zeros dropped, thousands separated by commas
 * ("1,399.5"), the Korea Eximbank style. */
int tf_fx_fmt_commas(char *buf, size_t n, double v, int max_dp);

/* Calendar strings for ms since the epoch, shifted by offset_s (9 * 3600 for KST). */
int tf_fx_fmt_yyyymmdd(char *buf, size_t n, int64_t ms, int offset_s);
int tf_fx_fmt_hhmmss(char *buf, size_t n, int64_t ms, int offset_s);
int tf_fx_fmt_date_dash(char *buf, size_t n, int64_t ms, int offset_s);
int tf_fx_fmt_time_colon(char *buf, size_t n, int64_t ms, int offset_s);
int tf_fx_fmt_iso_utc(char *buf, size_t n, int64_t ms); /* 2026-11-23T10:14:58.000+00:00 */
int tf_fx_fmt_rfc2822(char *buf, size_t n, int64_t ms); /* Mon, 23 Nov 2026 00:00:02 +0000 */
int tf_fx_weekday(const char *yyyymmdd);                /* 0 = Sunday, -1 if not a date */

/* Object setters. Each steals nothing the caller keeps and returns 0 or -1, so a builder can
 * OR the results of a run of calls and check once. */
int tf_fx_put(json_t *o, const char *key, json_t *value); /* takes ownership of value */
int tf_fx_put_str(json_t *o, const char *key, const char *s);
int tf_fx_put_px(json_t *o, const char *key, double v, int min_dp); /* number as a string */
int tf_fx_put_ms_str(json_t *o, const char *key, int64_t ms);
int tf_fx_put_int(json_t *o, const char *key, int64_t v);
int tf_fx_put_real(json_t *o, const char *key, double v);
int tf_fx_put_num(json_t *o, const char *key, double v); /* integer when v is integral */
json_t *tf_fx_num(double v);

/* Case-insensitive ASCII comparison of a and b. */
int tf_fx_streq_ci(const char *a, const char *b);

#endif
