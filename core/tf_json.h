/*
 * JSON helpers shared by every parser of exchange data: a strict number reader (a price must
 * never be zero, NaN, negative or half-parsed) and RFC 6901 JSON Pointer lookup.
 */
#ifndef TF_JSON_H
#define TF_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "tf_common.h"

/* Reads a number given as a JSON number or as a JSON string holding a plain decimal
 * ("136850000", "95012.35", "-0.00010000", "1e-5"). Rejected, with a reason in err: null,
 * booleans, other types, "", whitespace, "NaN"/"Inf", hex, thousands separators, trailing
 * garbage, out of double range. With TF_NUM_POSITIVE, zero and negatives are rejected too (a
 * price); TF_NUM_NONNEGATIVE rejects negatives only (a volume). Returns TF_OK or TF_EVALUE. */
int tf_json_number(const json_t *v, unsigned flags, double *out, char *err, size_t err_size);
/* Same rules for an integer (epoch ms as 1795428930000 or "1795428930000"). */
int tf_json_int64(const json_t *v, unsigned flags, int64_t *out, char *err, size_t err_size);
/* Same rules applied to text. */
int tf_parse_number(const char *text, unsigned flags, double *out, char *err, size_t err_size);

/* RFC 6901: "" is the whole document, "/data/0/price", "~1" is '/', "~0" is '~'. Array
 * indexes are decimal without leading zeros. NULL when the pointer is malformed or the value
 * is absent. Borrowed reference. */
json_t *tf_json_pointer(const json_t *root, const char *pointer);

/* "an object", "an array", "a string", "a number", "a boolean", "null"; "nothing (missing)"
 * for NULL. A static string. */
const char *tf_json_type_name(const json_t *v);

#endif
