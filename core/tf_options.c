/*
 * Option validation: one engine turns a YAML mapping into typed values by walking an option
 * table, for plugins and for the runtime's own sections alike. Owns the values (jansson) and
 * the secret strings, which it registers with the log masker and wipes on destroy.
 *
 * Table rules beyond plugin.h: a TF_OPT_MAP whose item_type is TF_OPT_MAP and that has
 * `fields` is a map of records (host -> {rate, burst}); like a list of records, a value written
 * as a plain scalar is shorthand for {fields[0].name: scalar}. Defaults of string and secret
 * options are taken literally; other defaults are YAML, read by the same code as the files.
 */
#include "tf_options.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_log.h"
#include "tf_yaml.h"

#define COMPONENT    "options"
#define OPT_PATH_LEN 512
#define SECRET_MASK  "****"

/* Value kinds beyond tf_option_type, for untyped items: item_type 0. */
#define VAL_ANY_SCALAR 100 /* list items: a scalar of any type */
#define VAL_ANY        101 /* map values: anything, collections included */

struct tf_options {
    const tf_option_def *table; /* borrowed: outlives the options */
    char *owner;                /* for messages about plugin bugs */
    json_t *values;             /* name -> value, for options given or defaulted */
    bool *given;                /* per table entry: written in YAML */
    json_t **secrets;           /* strings holding secrets, wiped on destroy (references held) */
    size_t n_secrets;
};

typedef struct conv {
    tf_options *o;
    tf_diag *diag;
    const char *owner;
    size_t errors;
    bool from_default; /* converting a table default: secrets need no ${...} */
} conv;

static json_t *convert(conv *c, int type, tf_option_type item_type, const tf_option_def *fields,
                       const tf_yaml_node *n, const char *path);

__attribute__((format(printf, 4, 5))) static void report(conv *c, const tf_yaml_node *n,
                                                         const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int rc = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        snprintf(msg, sizeof msg, "invalid value");
    tf_diag_add(c->diag, n ? n->file : NULL, n ? n->line : 0, n ? n->col : 0, path, "%s", msg);
    c->errors++;
}

/* ---- durations ---- */

typedef struct unit {
    const char *name;
    int64_t ms;
} unit;

/* Largest first: a compound duration must list its units in this order, each once. */
static const unit units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

static int duration_fail(const char *text, const char *reason, char *err, size_t err_size)
{
    if (err && err_size)
        snprintf(err, err_size, "expected a duration such as 500ms, 1s, 10m; found \"%.40s\"%s%s%s",
                 text ? text : "", reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
    return -1;
}

/* Reads "<digits>[.<digits>]" at *p; returns 0 and the whole and fraction parts. */
static int read_number(const char **p, int64_t *whole, int64_t *frac, int *frac_digits,
                       const char **reason)
{
    const char *s = *p;
    *whole = 0;
    *frac = 0;
    *frac_digits = 0;
    if (!isdigit((unsigned char)*s)) {
        *reason = "expected a number before each unit";
        return -1;
    }
    for (; isdigit((unsigned char)*s); s++) {
        if (*whole > (INT64_MAX - 9) / 10) {
            *reason = "too large";
            return -1;
        }
        *whole = *whole * 10 + (*s - '0');
    }
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s)) {
            *reason = "expected digits after the decimal point";
            return -1;
        }
        for (; isdigit((unsigned char)*s); s++) {
            if (*frac_digits == 9) {
                *reason = "finer than a millisecond";
                return -1;
            }
            *frac = *frac * 10 + (*s - '0');
            (*frac_digits)++;
        }
    }
    *p = s;
    return 0;
}

static int find_unit(const char **p, const char **reason, bool first, char *name, size_t name_size)
{
    const char *s = *p;
    size_t n = 0;
    name[0] = '\0';
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n == 0) {
        *reason = !*s && first ? "a number without a unit is milliseconds and must be whole"
                               : "expected a unit (ms, s, m or h) after each number";
        return -1;
    }
    snprintf(name, name_size, "%.*s", (int)(n < 8 ? n : 8), s); /* for the message */
    for (size_t i = 0; i < TF_ARRAY_LEN(units); i++) {
        if (strlen(units[i].name) == n && strncmp(units[i].name, s, n) == 0) {
            *p = s + n;
            return (int)i;
        }
    }
    *reason = "unknown unit: use ms, s, m or h";
    return -1;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
    }
    return true;
}

int tf_duration_parse(const char *text, int64_t *out_ms, char *err, size_t err_size)
{
    if (!text || !*text)
        return duration_fail(text, "empty", err, err_size);
    if (text[0] == '-')
        return duration_fail(text, "a duration cannot be negative", err, err_size);
    const char *reason = NULL;
    const char *p = text;
    int64_t total = 0;
    if (all_digits(text)) {
        int64_t frac;
        int digits;
        if (read_number(&p, &total, &frac, &digits, &reason) != 0)
            return duration_fail(text, reason, err, err_size);
        *out_ms = total;
        return 0;
    }
    int last_unit = -1;
    while (*p) {
        int64_t whole, frac;
        int digits;
        char uname[16];
        if (read_number(&p, &whole, &frac, &digits, &reason) != 0)
            /* Text that does not even start like a duration needs no further reason. */
            return duration_fail(text, isdigit((unsigned char)*text) ? reason : NULL, err,
                                 err_size);
        int u = find_unit(&p, &reason, last_unit < 0, uname, sizeof uname);
        if (u < 0 && uname[0]) {
            char why[64];
            snprintf(why, sizeof why, "unknown unit '%s': use ms, s, m or h", uname);
            return duration_fail(text, why, err, err_size);
        }
        if (u < 0)
            return duration_fail(text, reason, err, err_size);
        if (u <= last_unit)
            return duration_fail(text, "units go from largest to smallest, each once, as in 1h30m",
                                 err, err_size);
        last_unit = u;
        int64_t scale = 1;
        for (int i = 0; i < digits; i++)
            scale *= 10;
        /* frac < 10^9 and ms <= 3.6e6: the product fits in int64. */
        int64_t frac_ms = frac * units[u].ms;
        if (frac_ms % scale != 0)
            return duration_fail(text, "finer than a millisecond", err, err_size);
        if (whole > (INT64_MAX - total - frac_ms / scale) / units[u].ms)
            return duration_fail(text, "too large", err, err_size);
        total += whole * units[u].ms + frac_ms / scale;
    }
    *out_ms = total;
    return 0;
}

/* ---- scalars ---- */

/* The scalar's text, or NULL after reporting that `what` was expected. */
static const char *scalar_text(conv *c, const tf_yaml_node *n, const char *path, const char *what)
{
    if (n->kind != TF_YAML_SCALAR || tf_yaml_is_null(n)) {
        char found[160];
        tf_yaml_describe(n, found, sizeof found);
        report(c, n, path, "expected %s; found %s", what, found);
        return NULL;
    }
    return n->text;
}

static void report_found(conv *c, const tf_yaml_node *n, const char *path, const char *what,
                         const char *extra)
{
    char found[160];
    tf_yaml_describe(n, found, sizeof found);
    report(c, n, path, "expected %s; found %s%s", what, found, extra ? extra : "");
}

static int parse_int64(const char *s, int64_t *out, bool *range)
{
    *range = false;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -1;
    if (errno == ERANGE) {
        *range = true;
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s) || strpbrk(s, "xX"))
        return -1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static json_t *conv_int(conv *c, const tf_yaml_node *n, const char *path)
{
    static const char what[] = "an integer such as 15";
    const char *s = scalar_text(c, n, path, what);
    if (!s)
        return NULL;
    int64_t v;
    bool range;
    if (parse_int64(s, &v, &range) != 0) {
        report_found(c, n, path, what, range ? " (out of the 64-bit range)" : NULL);
        return NULL;
    }
    return json_integer((json_int_t)v);
}

static json_t *conv_double(conv *c, const tf_yaml_node *n, const char *path)
{
    static const char what[] = "a number such as 1.5";
    const char *s = scalar_text(c, n, path, what);
    if (!s)
        return NULL;
    double v;
    if (parse_double(s, &v) != 0) {
        report_found(c, n, path, what, NULL);
        return NULL;
    }
    return json_real(v);
}

static json_t *conv_bool(conv *c, const tf_yaml_node *n, const char *path)
{
    static const char what[] = "true or false (or yes/no, on/off)";
    const char *s = scalar_text(c, n, path, what);
    if (!s)
        return NULL;
    bool v;
    if (tf_yaml_parse_bool(s, &v) != 0) {
        report_found(c, n, path, what, NULL);
        return NULL;
    }
    return json_boolean(v);
}

static json_t *conv_duration(conv *c, const tf_yaml_node *n, const char *path)
{
    const char *s = scalar_text(c, n, path, "a duration such as 500ms, 1s, 10m");
    if (!s)
        return NULL;
    int64_t ms;
    char err[256];
    if (tf_duration_parse(s, &ms, err, sizeof err) != 0) {
        report(c, n, path, "%s", err);
        return NULL;
    }
    return json_integer((json_int_t)ms);
}

static json_t *conv_string(conv *c, const tf_yaml_node *n, const char *path)
{
    /* A quoted "" is a deliberate empty string; a bare `key:` is a forgotten value. */
    if (n->kind == TF_YAML_SCALAR && n->quoted)
        return json_string(n->text);
    const char *s = scalar_text(c, n, path, "a string");
    return s ? json_string(s) : NULL;
}

/* "${VAR}", "${VAR:-default}", "${file:/path}": exactly one reference and nothing else. */
static bool is_reference(const char *raw)
{
    size_t len = strlen(raw);
    if (len < 4 || strncmp(raw, "${", 2) != 0 || raw[len - 1] != '}')
        return false;
    return strchr(raw + 2, '}') == raw + len - 1;
}

static json_t *keep_secret(conv *c, json_t *v)
{
    if (!v)
        return NULL;
    json_t **grown = realloc(c->o->secrets, (c->o->n_secrets + 1) * sizeof *grown);
    if (!grown) {
        explicit_bzero((char *)json_string_value(v), json_string_length(v));
        json_decref(v);
        return NULL;
    }
    c->o->secrets = grown;
    c->o->secrets[c->o->n_secrets++] = json_incref(v);
    tf_log_add_secret(json_string_value(v));
    return v;
}

static json_t *conv_secret(conv *c, const tf_yaml_node *n, const char *path)
{
    if (n->kind != TF_YAML_SCALAR) {
        report_found(c, n, path, "a secret from ${VAR} or ${file:/path}", NULL);
        return NULL;
    }
    if (!c->from_default && !is_reference(n->raw)) {
        /* The value is not echoed: it is the secret. */
        report(c, n, path,
               "a secret must come from ${VAR} or ${file:/path}, not be written in the file");
        return NULL;
    }
    return keep_secret(c, json_string(n->text));
}

/* An untyped scalar: quoted -> string; plain -> null, true/false, integer, number, string. */
static json_t *infer_scalar(const tf_yaml_node *n)
{
    if (n->quoted)
        return json_string(n->text);
    if (tf_yaml_is_null(n))
        return json_null();
    if (strcmp(n->text, "true") == 0 || strcmp(n->text, "false") == 0)
        return json_boolean(n->text[0] == 't');
    int64_t i;
    bool range;
    if (parse_int64(n->text, &i, &range) == 0)
        return json_integer((json_int_t)i);
    double d;
    if (parse_double(n->text, &d) == 0)
        return json_real(d);
    return json_string(n->text);
}

/* ---- collections ---- */

static json_t *conv_any(conv *c, const tf_yaml_node *n, const char *path, bool nested)
{
    char sub[OPT_PATH_LEN];
    if (n->kind == TF_YAML_SCALAR)
        return infer_scalar(n);
    if (!nested) {
        report_found(c, n, path, "a single value (text, number or boolean)", NULL);
        return NULL;
    }
    json_t *out = n->kind == TF_YAML_SEQUENCE ? json_array() : json_object();
    for (size_t i = 0; out && i < n->n_items; i++) {
        tf_yaml_path_index(sub, sizeof sub, path, i);
        json_t *v = convert(c, VAL_ANY, 0, NULL, n->items[i], sub);
        if (v)
            json_array_append_new(out, v);
    }
    for (size_t i = 0; out && i < n->n_pairs; i++) {
        tf_yaml_path_key(sub, sizeof sub, path, n->pairs[i].key->text);
        json_t *v = convert(c, VAL_ANY, 0, NULL, n->pairs[i].value, sub);
        if (v)
            json_object_set_new(out, n->pairs[i].key->text, v);
    }
    return out;
}

static size_t table_len(const tf_option_def *t)
{
    size_t n = 0;
    while (t && t[n].name)
        n++;
    return n;
}

static const tf_option_def *find_def(const tf_option_def *t, const char *name, size_t *index)
{
    for (size_t i = 0; t && t[i].name; i++) {
        if (strcmp(t[i].name, name) == 0) {
            if (index)
                *index = i;
            return &t[i];
        }
    }
    return NULL;
}

static void report_unknown(conv *c, const tf_option_def *t, const tf_yaml_node *key,
                           const char *path, const char *owner)
{
    const char *names[64];
    size_t n = 0;
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; t && t[i].name && n < TF_ARRAY_LEN(names); i++) {
        names[n++] = t[i].name;
        int rc = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", t[i].name);
        if (rc > 0 && (size_t)rc < sizeof known - used)
            used += (size_t)rc;
    }
    const char *what = owner ? "option" : "key";
    char whose[160] = "";
    if (owner)
        snprintf(whose, sizeof whose, " for %s", owner);
    const char *hint = tf_yaml_suggest(key->text, names, n);
    if (hint)
        report(c, key, path, "unknown %s '%s'%s; did you mean '%s'?", what, key->text, whose, hint);
    else if (n == 0)
        report(c, key, path, "unknown %s '%s'%s, which takes none", what, key->text, whose);
    else
        report(c, key, path, "unknown %s '%s'%s; expected one of: %s", what, key->text, whose,
               known);
}

static json_t *conv_default(conv *c, const tf_option_def *def, const char *path)
{
    if (def->type == TF_OPT_STRING)
        return json_string(def->default_value);
    if (def->type == TF_OPT_SECRET)
        return keep_secret(c, json_string(def->default_value));
    tf_diag *tmp = tf_diag_create();
    conv dc = {.o = c->o, .diag = tmp, .owner = c->owner, .from_default = true};
    tf_yaml_doc *doc = tf_yaml_parse_string(def->default_value, "default", tmp);
    json_t *v = NULL;
    if (doc) {
        char empty[] = "";
        const tf_yaml_node none = {.kind = TF_YAML_SCALAR, .text = empty, .raw = empty};
        const tf_yaml_node *root = doc->root ? doc->root : &none;
        v = convert(&dc, def->type, def->item_type, def->fields, root, path);
    }
    if (!v) {
        report(c, NULL, path, "the default \"%s\" of option '%s' is invalid (%s): a bug in %s",
               def->default_value, def->name,
               tf_diag_count(tmp) ? tf_diag_message(tmp, 0) : "out of memory",
               c->owner ? c->owner : "the option table");
    }
    tf_yaml_doc_destroy(doc);
    tf_diag_destroy(tmp);
    return v;
}

/* Checks a mapping against `table`: unknown keys, each value's type, required keys, defaults.
 * `map` NULL means nothing was given (no position to report). `owner` names the plugin or
 * section at the top level and is NULL for nested records; `given` (top level only) records
 * which options were written. */
static json_t *conv_fields(conv *c, const tf_option_def *table, const tf_yaml_node *map,
                           const char *path, const char *owner, bool *given)
{
    char sub[OPT_PATH_LEN];
    json_t *obj = json_object();
    if (!obj) {
        report(c, map, path, "out of memory");
        return NULL;
    }
    for (size_t i = 0; map && i < map->n_pairs; i++) {
        const tf_yaml_pair *p = &map->pairs[i];
        size_t idx = 0;
        const tf_option_def *def = find_def(table, p->key->text, &idx);
        tf_yaml_path_key(sub, sizeof sub, path, p->key->text);
        if (!def) {
            report_unknown(c, table, p->key, sub, owner);
            continue;
        }
        if (given)
            given[idx] = true;
        json_t *v = convert(c, def->type, def->item_type, def->fields, p->value, sub);
        if (v)
            json_object_set_new(obj, def->name, v);
    }
    for (size_t i = 0; table && table[i].name; i++) {
        const tf_option_def *def = &table[i];
        if (tf_yaml_get_pair(map, def->name))
            continue;
        tf_yaml_path_key(sub, sizeof sub, path, def->name);
        if (def->required) {
            if (owner)
                report(c, map, sub, "missing required option '%s' for %s", def->name, owner);
            else
                report(c, map, sub, "missing required key '%s'", def->name);
        } else if (def->default_value) {
            json_t *v = conv_default(c, def, sub);
            if (v)
                json_object_set_new(obj, def->name, v);
        }
    }
    return obj;
}

/* A record (a map with `fields`); a plain scalar stands for {fields[0].name: scalar}. */
static json_t *conv_record(conv *c, const tf_option_def *fields, const tf_yaml_node *n,
                           const char *path)
{
    if (n->kind == TF_YAML_MAPPING)
        return conv_fields(c, fields, n, path, NULL, NULL);
    if (tf_yaml_is_null(n)) {
        const tf_yaml_node empty = {
            .kind = TF_YAML_MAPPING, .file = n->file, .line = n->line, .col = n->col};
        return conv_fields(c, fields, &empty, path, NULL, NULL);
    }
    if (n->kind == TF_YAML_SCALAR && fields[0].name) {
        char *name = (char *)fields[0].name; /* never written through */
        tf_yaml_node key = {.kind = TF_YAML_SCALAR,
                            .file = n->file,
                            .line = n->line,
                            .col = n->col,
                            .text = name,
                            .raw = name};
        tf_yaml_pair pair = {.key = &key, .value = (tf_yaml_node *)n};
        const tf_yaml_node map = {.kind = TF_YAML_MAPPING,
                                  .file = n->file,
                                  .line = n->line,
                                  .col = n->col,
                                  .pairs = &pair,
                                  .n_pairs = 1};
        return conv_fields(c, fields, &map, path, NULL, NULL);
    }
    report_found(c, n, path, "a mapping", NULL);
    return NULL;
}

static json_t *conv_item(conv *c, tf_option_type item_type, const tf_option_def *fields,
                         const tf_yaml_node *n, const char *path)
{
    if (item_type == TF_OPT_MAP && fields)
        return conv_record(c, fields, n, path);
    return convert(c, item_type ? (int)item_type : VAL_ANY_SCALAR, 0, NULL, n, path);
}

static json_t *conv_list(conv *c, tf_option_type item_type, const tf_option_def *fields,
                         const tf_yaml_node *n, const char *path)
{
    char sub[OPT_PATH_LEN];
    json_t *arr = json_array();
    if (!arr || tf_yaml_is_null(n))
        return arr;
    if (n->kind == TF_YAML_MAPPING && item_type != TF_OPT_MAP) {
        json_decref(arr);
        report_found(c, n, path, "a list such as [a, b]", NULL);
        return NULL;
    }
    if (n->kind != TF_YAML_SEQUENCE) {
        /* One item written without the list around it. */
        json_t *v = conv_item(c, item_type, fields, n, path);
        if (!v) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, v);
        return arr;
    }
    size_t before = c->errors;
    for (size_t i = 0; i < n->n_items; i++) {
        tf_yaml_path_index(sub, sizeof sub, path, i);
        json_t *v = conv_item(c, item_type, fields, n->items[i], sub);
        if (v)
            json_array_append_new(arr, v);
    }
    if (c->errors != before) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *conv_map(conv *c, tf_option_type item_type, const tf_option_def *fields,
                        const tf_yaml_node *n, const char *path)
{
    char sub[OPT_PATH_LEN];
    bool records = fields && item_type == TF_OPT_MAP;
    if (fields && !records)
        return conv_record(c, fields, n, path);
    if (tf_yaml_is_null(n))
        return json_object();
    if (n->kind != TF_YAML_MAPPING) {
        report_found(c, n, path, "a mapping such as {key: value}", NULL);
        return NULL;
    }
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n->n_pairs; i++) {
        const tf_yaml_pair *p = &n->pairs[i];
        tf_yaml_path_key(sub, sizeof sub, path, p->key->text);
        json_t *v = records
                        ? conv_record(c, fields, p->value, sub)
                        : convert(c, item_type ? (int)item_type : VAL_ANY, 0, NULL, p->value, sub);
        if (v)
            json_object_set_new(obj, p->key->text, v);
    }
    return obj;
}

static json_t *convert(conv *c, int type, tf_option_type item_type, const tf_option_def *fields,
                       const tf_yaml_node *n, const char *path)
{
    if (n->kind == TF_YAML_SCALAR && n->failed) {
        c->errors++; /* already reported where it failed */
        return NULL;
    }
    switch (type) {
    case TF_OPT_STRING:
        return conv_string(c, n, path);
    case TF_OPT_SECRET:
        return conv_secret(c, n, path);
    case TF_OPT_INT:
        return conv_int(c, n, path);
    case TF_OPT_DOUBLE:
        return conv_double(c, n, path);
    case TF_OPT_BOOL:
        return conv_bool(c, n, path);
    case TF_OPT_DURATION:
        return conv_duration(c, n, path);
    case TF_OPT_LIST:
        return conv_list(c, item_type, fields, n, path);
    case TF_OPT_MAP:
        return conv_map(c, item_type, fields, n, path);
    case VAL_ANY_SCALAR:
        return conv_any(c, n, path, false);
    default:
        return conv_any(c, n, path, true);
    }
}

/* ---- building and destroying ---- */

static tf_options *options_new(const tf_option_def *table, const char *owner)
{
    tf_options *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->table = table;
    o->given = calloc(table_len(table) + 1, sizeof *o->given);
    o->owner = strdup(owner ? owner : "options");
    if (!o->given || !o->owner) {
        tf_options_destroy(o);
        return NULL;
    }
    return o;
}

void tf_options_destroy(tf_options *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_secrets; i++) {
        /* jansson owns the buffer; wiping it in place is the only way to clear it. */
        explicit_bzero((char *)json_string_value(o->secrets[i]), json_string_length(o->secrets[i]));
        json_decref(o->secrets[i]);
    }
    free(o->secrets);
    json_decref(o->values);
    free(o->given);
    free(o->owner);
    free(o);
}

static tf_options *build(const tf_option_def *table, const tf_yaml_node *node, const char *path,
                         const char *owner, tf_diag *diag)
{
    const char *who = owner ? owner : (path && *path ? path : "these options");
    tf_options *o = options_new(table, who);
    if (!o) {
        tf_diag_add(diag, node ? node->file : NULL, node ? node->line : 0, node ? node->col : 0,
                    path, "out of memory");
        return NULL;
    }
    conv c = {.o = o, .diag = diag, .owner = who};
    const char *base = path ? path : "";
    const tf_yaml_node empty = {.kind = TF_YAML_MAPPING,
                                .file = node ? node->file : NULL,
                                .line = node ? node->line : 0,
                                .col = node ? node->col : 0};
    if (node && node->kind == TF_YAML_SCALAR && node->failed) {
        c.errors++;
    } else if (node && tf_yaml_is_null(node)) {
        o->values = conv_fields(&c, table, &empty, base, who, o->given);
    } else if (node && node->kind != TF_YAML_MAPPING) {
        char found[160];
        tf_yaml_describe(node, found, sizeof found);
        report(&c, node, base, "expected a mapping of options for %s; found %s", who, found);
    } else {
        o->values = conv_fields(&c, table, node, base, who, o->given);
    }
    if (c.errors || !o->values) {
        tf_options_destroy(o);
        return NULL;
    }
    return o;
}

tf_options *tf_options_from_yaml(const tf_option_def *table, const struct tf_yaml_node *node,
                                 const char *path, const char *owner, tf_diag *diag)
{
    return build(table, node, path, owner, diag);
}

tf_options *tf_options_defaults(const tf_option_def *table, const char *path, tf_diag *diag)
{
    return build(table, NULL, path, NULL, diag);
}

/* ---- reading ---- */

/* The value of a declared option, or NULL (unset). Asking for an undeclared name is a bug in
 * the caller: logged, and read as unset. */
static const json_t *lookup(const tf_options *o, const char *name)
{
    if (!o || !name)
        return NULL;
    if (!find_def(o->table, name, NULL)) {
        TF_WARN(COMPONENT, "%s asked for option '%s', which its option table does not declare",
                o->owner, name);
        return NULL;
    }
    return json_object_get(o->values, name);
}

static void wrong_type(const tf_options *o, const char *name, const char *want)
{
    TF_WARN(COMPONENT, "%s read option '%s' as %s, which is not its declared type", o->owner, name,
            want);
}

const char *tf_options_string(const tf_options *o, const char *name)
{
    const json_t *v = lookup(o, name);
    if (v && !json_is_string(v)) {
        wrong_type(o, name, "a string");
        return NULL;
    }
    return v ? json_string_value(v) : NULL;
}

int64_t tf_options_int(const tf_options *o, const char *name)
{
    const json_t *v = lookup(o, name);
    if (v && !json_is_integer(v)) {
        wrong_type(o, name, "an integer");
        return 0;
    }
    return v ? (int64_t)json_integer_value(v) : 0;
}

double tf_options_double(const tf_options *o, const char *name)
{
    const json_t *v = lookup(o, name);
    if (v && !json_is_number(v)) {
        wrong_type(o, name, "a number");
        return 0;
    }
    return v ? json_number_value(v) : 0;
}

bool tf_options_bool(const tf_options *o, const char *name)
{
    const json_t *v = lookup(o, name);
    if (v && !json_is_boolean(v)) {
        wrong_type(o, name, "a boolean");
        return false;
    }
    return v ? json_is_true(v) : false;
}

int64_t tf_options_duration_ms(const tf_options *o, const char *name)
{
    size_t idx = 0;
    const tf_option_def *def = o ? find_def(o->table, name, &idx) : NULL;
    const json_t *v = lookup(o, name);
    if (v && (!def || def->type != TF_OPT_DURATION || !json_is_integer(v))) {
        wrong_type(o, name, "a duration");
        return 0;
    }
    return v ? (int64_t)json_integer_value(v) : 0;
}

const json_t *tf_options_json(const tf_options *o, const char *name)
{
    return lookup(o, name);
}

bool tf_options_is_set(const tf_options *o, const char *name)
{
    size_t idx = 0;
    if (!o || !name || !find_def(o->table, name, &idx))
        return false;
    return o->given[idx];
}

bool tf_options_equal(const tf_options *a, const tf_options *b)
{
    if (!a || !b)
        return a == b;
    if (a->table != b->table || !json_equal(a->values, b->values))
        return false;
    /* "given" decides tf_options_is_set, which plugins use to fall back on runtime settings
     * (sink_redis's prefix): an option written with its default value is not the same. */
    size_t n = table_len(a->table);
    return memcmp(a->given, b->given, n * sizeof *a->given) == 0;
}

/* ---- dump ---- */

static json_t *masked(int type, tf_option_type item_type, const tf_option_def *fields,
                      const json_t *v);

static json_t *masked_record(const tf_option_def *fields, const json_t *v)
{
    json_t *out = json_object();
    const char *key;
    json_t *el;
    json_object_foreach((json_t *)v, key, el)
    {
        const tf_option_def *def = find_def(fields, key, NULL);
        json_object_set_new(out, key,
                            def ? masked(def->type, def->item_type, def->fields, el)
                                : json_deep_copy(el));
    }
    return out;
}

static json_t *masked(int type, tf_option_type item_type, const tf_option_def *fields,
                      const json_t *v)
{
    if (type == TF_OPT_SECRET)
        return json_string(SECRET_MASK);
    if (type == TF_OPT_LIST && json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el)
        {
            json_array_append_new(out, item_type == TF_OPT_MAP && fields
                                           ? masked_record(fields, el)
                                           : masked((int)item_type, 0, NULL, el));
        }
        return out;
    }
    if (type == TF_OPT_MAP && json_is_object(v)) {
        if (fields && item_type != TF_OPT_MAP)
            return masked_record(fields, v);
        json_t *out = json_object();
        const char *key;
        json_t *el;
        json_object_foreach((json_t *)v, key, el)
        {
            json_object_set_new(
                out, key, fields ? masked_record(fields, el) : masked((int)item_type, 0, NULL, el));
        }
        return out;
    }
    return json_deep_copy(v);
}

json_t *tf_options_dump(const tf_options *o)
{
    json_t *out = json_object();
    for (size_t i = 0; o && out && o->table && o->table[i].name; i++) {
        const tf_option_def *def = &o->table[i];
        const json_t *v = json_object_get(o->values, def->name);
        json_object_set_new(out, def->name,
                            v ? masked(def->type, def->item_type, def->fields, v) : json_null());
    }
    return out;
}
