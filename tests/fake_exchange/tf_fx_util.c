/* tf_fx_util: clocks, formatting and jansson helpers for the fake exchange. */
#include "tf_fx_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t tf_fx_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tf_fx_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double tf_fx_round_dp(double v, int dp)
{
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "%.*f", dp, v);
    if (len < 0 || (size_t)len >= sizeof(buf)) {
        return v;
    }
    return strtod(buf, NULL);
}

int tf_fx_fmt(char *buf, size_t n, double v, int min_dp)
{
    for (int dp = min_dp; dp <= 17; dp++) {
        int len = snprintf(buf, n, "%.*f", dp, v);
        if (len < 0 || (size_t)len >= n) {
            return -1;
        }
        if (strtod(buf, NULL) == v) {
            return 0;
        }
    }
    /* Not reachable for finite doubles of price size; %.17g always round-trips. */
    int len = snprintf(buf, n, "%.17g", v);
    return (len < 0 || (size_t)len >= n) ? -1 : 0;
}

static void tf_fx_strip_zeros(char *s)
{
    char *dot = strchr(s, '.');
    if (dot == NULL) {
        return;
    }
    char *end = s + strlen(s) - 1;
    while (end > dot && *end == '0') {
        *end-- = '\0';
    }
    if (end == dot) {
        *dot = '\0';
    }
}

int tf_fx_fmt_commas(char *buf, size_t n, double v, int max_dp)
{
    char plain[64];
    int len = snprintf(plain, sizeof(plain), "%.*f", max_dp, v);
    if (len < 0 || (size_t)len >= sizeof(plain)) {
        return -1;
    }
    tf_fx_strip_zeros(plain);
    const char *digits = plain[0] == '-' ? plain + 1 : plain;
    size_t int_len = strcspn(digits, ".");
    size_t out = 0;
    if (digits != plain) {
        if (out + 1 >= n) {
            return -1;
        }
        buf[out++] = '-';
    }
    for (size_t i = 0; digits[i] != '\0'; i++) {
        if (i > 0 && i < int_len && (int_len - i) % 3 == 0) {
            if (out + 1 >= n) {
                return -1;
            }
            buf[out++] = ',';
        }
        if (out + 1 >= n) {
            return -1;
        }
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return 0;
}

static int tf_fx_tm(int64_t ms, int offset_s, struct tm *tm)
{
    time_t t = (time_t)(ms / 1000) + offset_s;
    return gmtime_r(&t, tm) == NULL ? -1 : 0;
}

static int tf_fx_checked(int len, size_t n)
{
    return (len < 0 || (size_t)len >= n) ? -1 : 0;
}

int tf_fx_fmt_yyyymmdd(char *buf, size_t n, int64_t ms, int offset_s)
{
    struct tm tm;
    if (tf_fx_tm(ms, offset_s, &tm) != 0) {
        return -1;
    }
    return tf_fx_checked(
        snprintf(buf, n, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday), n);
}

int tf_fx_fmt_hhmmss(char *buf, size_t n, int64_t ms, int offset_s)
{
    struct tm tm;
    if (tf_fx_tm(ms, offset_s, &tm) != 0) {
        return -1;
    }
    return tf_fx_checked(snprintf(buf, n, "%02d%02d%02d", tm.tm_hour, tm.tm_min, tm.tm_sec), n);
}

int tf_fx_fmt_date_dash(char *buf, size_t n, int64_t ms, int offset_s)
{
    struct tm tm;
    if (tf_fx_tm(ms, offset_s, &tm) != 0) {
        return -1;
    }
    return tf_fx_checked(
        snprintf(buf, n, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday), n);
}

int tf_fx_fmt_time_colon(char *buf, size_t n, int64_t ms, int offset_s)
{
    struct tm tm;
    if (tf_fx_tm(ms, offset_s, &tm) != 0) {
        return -1;
    }
    return tf_fx_checked(snprintf(buf, n, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec), n);
}

int tf_fx_fmt_iso_utc(char *buf, size_t n, int64_t ms)
{
    struct tm tm;
    if (tf_fx_tm(ms, 0, &tm) != 0) {
        return -1;
    }
    int len =
        snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return tf_fx_checked(len, n);
}

int tf_fx_fmt_rfc2822(char *buf, size_t n, int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (tf_fx_tm(ms, 0, &tm) != 0) {
        return -1;
    }
    int len =
        snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return tf_fx_checked(len, n);
}

int tf_fx_weekday(const char *yyyymmdd)
{
    if (yyyymmdd == NULL || strlen(yyyymmdd) != 8 || strspn(yyyymmdd, "0123456789") != 8) {
        return -1;
    }
    long v = strtol(yyyymmdd, NULL, 10);
    struct tm tm = {0};
    tm.tm_year = (int)(v / 10000) - 1900;
    tm.tm_mon = (int)(v / 100 % 100) - 1;
    tm.tm_mday = (int)(v % 100);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31) {
        return -1;
    }
    time_t t = timegm(&tm);
    struct tm back;
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL) {
        return -1;
    }
    return back.tm_wday;
}

int tf_fx_put(json_t *o, const char *key, json_t *value)
{
    /* json_object_set_new releases value even when it fails, and refuses a NULL value. */
    return json_object_set_new(o, key, value);
}

int tf_fx_put_str(json_t *o, const char *key, const char *s)
{
    return tf_fx_put(o, key, json_string(s));
}

int tf_fx_put_px(json_t *o, const char *key, double v, int min_dp)
{
    char buf[64];
    if (tf_fx_fmt(buf, sizeof(buf), v, min_dp) != 0) {
        return -1;
    }
    return tf_fx_put_str(o, key, buf);
}

int tf_fx_put_ms_str(json_t *o, const char *key, int64_t ms)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%lld", (long long)ms);
    if (tf_fx_checked(len, sizeof(buf)) != 0) {
        return -1;
    }
    return tf_fx_put_str(o, key, buf);
}

int tf_fx_put_int(json_t *o, const char *key, int64_t v)
{
    return tf_fx_put(o, key, json_integer((json_int_t)v));
}

int tf_fx_put_real(json_t *o, const char *key, double v)
{
    return tf_fx_put(o, key, json_real(v));
}

json_t *tf_fx_num(double v)
{
    /* The fixtures write integral prices without a fraction (trade_price 136850000); keep
     * that so a client that checks json_is_integer sees what the real API sends. */
    if (isfinite(v) && fabs(v) < 9007199254740992.0 && v == floor(v)) {
        return json_integer((json_int_t)v);
    }
    return json_real(v);
}

int tf_fx_put_num(json_t *o, const char *key, double v)
{
    return tf_fx_put(o, key, tf_fx_num(v));
}

int tf_fx_streq_ci(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}
