/*
 * Strict numbers and JSON Pointer. Exchanges send prices as JSON strings (Bithumb, Binance,
 * OKX) or numbers (Upbit, Dunamu); both go through one strict reader so that "", "NaN",
 * "1,399.5" or "0" can never become a published price.
 */
#include "tf_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes "<what>, found <found>" into err. */
static int fail(char *err, size_t err_size, const char *what, const char *found)
{
    if (err && err_size)
        snprintf(err, err_size, "%s, found %s", what, found);
    return TF_EVALUE;
}

/* A plain decimal: optional '-', digits, optional fraction, optional exponent. strtod would
 * also take hex, "inf", "nan" and leading spaces, so the shape is checked first. */
static bool plain_decimal(const char *s)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t int_digits = strspn(p, "0123456789");
    p += int_digits;
    size_t frac_digits = 0;
    if (*p == '.') {
        p++;
        frac_digits = strspn(p, "0123456789");
        p += frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        size_t exp_digits = strspn(p, "0123456789");
        if (exp_digits == 0)
            return false;
        p += exp_digits;
    }
    return *p == '\0';
}

static int check_sign(double v, unsigned flags, const char *shown, char *err, size_t err_size)
{
    if ((flags & TF_NUM_POSITIVE) && !(v > 0))
        return fail(err, err_size, "expected a number > 0", shown);
    if ((flags & TF_NUM_NONNEGATIVE) && v < 0)
        return fail(err, err_size, "expected a number >= 0", shown);
    return TF_OK;
}

int tf_parse_number(const char *text, unsigned flags, double *out, char *err, size_t err_size)
{
    char shown[64];
    snprintf(shown, sizeof shown, "\"%.40s\"", text ? text : "");
    if (!text || !*text)
        return fail(err, err_size, "expected a decimal number", "an empty string");
    if (!plain_decimal(text))
        return fail(err, err_size, "expected a decimal number", shown);
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno == ERANGE || !isfinite(v) || !end || *end)
        return fail(err, err_size, "number out of range", shown);
    int rc = check_sign(v, flags, shown, err, err_size);
    if (rc == TF_OK)
        *out = v;
    return rc;
}

int tf_json_number(const json_t *v, unsigned flags, double *out, char *err, size_t err_size)
{
    if (json_is_string(v))
        return tf_parse_number(json_string_value(v), flags, out, err, err_size);
    if (json_is_integer(v) || json_is_real(v)) {
        double d = json_number_value(v);
        char shown[64];
        snprintf(shown, sizeof shown, "%.17g", d);
        if (!isfinite(d))
            return fail(err, err_size, "expected a finite number", shown);
        int rc = check_sign(d, flags, shown, err, err_size);
        if (rc == TF_OK)
            *out = d;
        return rc;
    }
    const char *type = !v                   ? "nothing (missing)"
                       : json_is_null(v)    ? "null"
                       : json_is_boolean(v) ? "a boolean"
                       : json_is_array(v)   ? "an array"
                                            : "an object";
    return fail(err, err_size, "expected a number or a numeric string", type);
}

int tf_json_int64(const json_t *v, unsigned flags, int64_t *out, char *err, size_t err_size)
{
    if (json_is_integer(v)) {
        int64_t i = json_integer_value(v);
        char shown[32];
        snprintf(shown, sizeof shown, "%lld", (long long)i);
        int rc = check_sign((double)i, flags, shown, err, err_size);
        if (rc == TF_OK)
            *out = i;
        return rc;
    }
    if (!json_is_string(v))
        return fail(err, err_size, "expected an integer or an integer string",
                    !v                ? "nothing (missing)"
                    : json_is_null(v) ? "null"
                                      : "another type");
    const char *s = json_string_value(v);
    char shown[64];
    snprintf(shown, sizeof shown, "\"%.40s\"", s);
    const char *digits = (*s == '-') ? s + 1 : s;
    if (!*digits || strspn(digits, "0123456789") != strlen(digits))
        return fail(err, err_size, "expected an integer", shown);
    errno = 0;
    long long i = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return fail(err, err_size, "integer out of range", shown);
    int rc = check_sign((double)i, flags, shown, err, err_size);
    if (rc == TF_OK)
        *out = i;
    return rc;
}

/* Decodes one reference token (up to the next '/') into buf; false when malformed. */
static bool next_token(const char **p, char *buf, size_t size)
{
    size_t n = 0;
    const char *s = *p;
    while (*s && *s != '/') {
        char c = *s++;
        if (c == '~') {
            if (*s == '0')
                c = '~';
            else if (*s == '1')
                c = '/';
            else
                return false;
            s++;
        }
        if (n + 1 >= size)
            return false;
        buf[n++] = c;
    }
    buf[n] = '\0';
    *p = s;
    return true;
}

static bool array_index(const char *token, size_t *out)
{
    size_t len = strlen(token);
    if (len == 0 || len > 9 || strspn(token, "0123456789") != len)
        return false;
    if (len > 1 && token[0] == '0')
        return false;
    *out = (size_t)strtoul(token, NULL, 10);
    return true;
}

json_t *tf_json_pointer(const json_t *root, const char *pointer)
{
    if (!root || !pointer)
        return NULL;
    const json_t *cur = root;
    const char *p = pointer;
    char token[256];
    while (*p) {
        if (*p != '/')
            return NULL;
        p++;
        if (!next_token(&p, token, sizeof token))
            return NULL;
        size_t idx;
        if (json_is_object(cur))
            cur = json_object_get(cur, token);
        else if (json_is_array(cur) && array_index(token, &idx))
            cur = json_array_get(cur, idx);
        else
            return NULL;
        if (!cur)
            return NULL;
    }
    return (json_t *)cur;
}

const char *tf_json_type_name(const json_t *v)
{
    if (!v)
        return "nothing (missing)";
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}
