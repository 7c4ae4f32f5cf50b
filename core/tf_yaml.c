/*
 * YAML loading with libyaml's event API into a positioned node tree. Collections are
 * attached to their parent when they end, so a value that must be dropped (duplicate key,
 * non-scalar key) is always a complete subtree. Owns the trees it returns.
 */
#include "tf_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <yaml.h>

#include "tf_config.h"

/* Nesting deeper than this is refused: every walker over the tree recurses, and no
 * configuration needs more than a handful of levels. */
#define TF_YAML_MAX_DEPTH 64
/* Configuration files are small; a larger one is almost certainly the wrong file. */
#define TF_YAML_MAX_FILE (16 * 1024 * 1024)
#define TF_YAML_PATH_MAX 512

/* ---- nodes ---- */

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void node_free(tf_yaml_node *n)
{
    if (!n)
        return;
    if (n->text != n->raw)
        wipe_free(n->text);
    wipe_free(n->raw);
    for (size_t i = 0; i < n->n_items; i++)
        node_free(n->items[i]);
    free(n->items);
    for (size_t i = 0; i < n->n_pairs; i++) {
        node_free(n->pairs[i].key);
        node_free(n->pairs[i].value);
    }
    free(n->pairs);
    free(n);
}

void tf_yaml_doc_destroy(tf_yaml_doc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->file);
    free(doc);
}

/* ---- paths ---- */

/* Marks a truncated path with "..." so nobody mistakes it for a complete one. */
static void mark_truncated(char *out, size_t size)
{
    if (size >= 4)
        memcpy(out + size - 4, "...", 4);
}

void tf_yaml_path_key(char *out, size_t size, const char *base, const char *key)
{
    if (!out || size == 0)
        return;
    int n;
    if (!base || !*base)
        n = snprintf(out, size, "%s", key ? key : "");
    else
        n = snprintf(out, size, "%s.%s", base, key ? key : "");
    if (n < 0 || (size_t)n >= size)
        mark_truncated(out, size);
}

void tf_yaml_path_index(char *out, size_t size, const char *base, size_t index)
{
    if (!out || size == 0)
        return;
    int n = snprintf(out, size, "%s[%zu]", base ? base : "", index);
    if (n < 0 || (size_t)n >= size)
        mark_truncated(out, size);
}

/* ---- building the tree from events ---- */

typedef struct frame {
    tf_yaml_node *node; /* sequence or mapping under construction (owned until attached) */
    tf_yaml_node *key;  /* mapping: the key waiting for its value (owned) */
    bool drop_value;    /* the pending key was a duplicate or not a scalar */
} frame;

typedef struct builder {
    const char *file; /* borrowed from the doc */
    tf_diag *diag;
    frame stack[TF_YAML_MAX_DEPTH];
    size_t depth;
    tf_yaml_node *root;
    int documents;
    bool nomem;
} builder;

static const char *key_text(const tf_yaml_node *key)
{
    return key && key->kind == TF_YAML_SCALAR ? key->text : "?";
}

/* The path of the spot being built: every open collection contributes the key or index of
 * the child under construction; `extra_key`, when given, is appended as a last key. */
static void builder_path(const builder *b, const char *extra_key, char *out, size_t size)
{
    char tmp[TF_YAML_PATH_MAX];
    out[0] = '\0';
    for (size_t i = 0; i < b->depth; i++) {
        const frame *f = &b->stack[i];
        snprintf(tmp, sizeof tmp, "%s", out);
        if (f->node->kind == TF_YAML_SEQUENCE)
            tf_yaml_path_index(out, size, tmp, f->node->n_items);
        else if (f->key)
            tf_yaml_path_key(out, size, tmp, key_text(f->key));
    }
    if (extra_key) {
        snprintf(tmp, sizeof tmp, "%s", out);
        tf_yaml_path_key(out, size, tmp, extra_key);
    }
}

static tf_yaml_node *new_node(builder *b, tf_yaml_kind kind, yaml_mark_t mark)
{
    tf_yaml_node *n = calloc(1, sizeof *n);
    if (!n) {
        b->nomem = true;
        return NULL;
    }
    n->kind = kind;
    n->file = b->file;
    /* libyaml marks are 0-based; editors count from 1. */
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

static int append_item(tf_yaml_node *seq, tf_yaml_node *item)
{
    tf_yaml_node **items = realloc(seq->items, (seq->n_items + 1) * sizeof *items);
    if (!items)
        return -1;
    seq->items = items;
    seq->items[seq->n_items++] = item;
    return 0;
}

static int append_pair(tf_yaml_node *map, tf_yaml_node *key, tf_yaml_node *value)
{
    tf_yaml_pair *pairs = realloc(map->pairs, (map->n_pairs + 1) * sizeof *pairs);
    if (!pairs)
        return -1;
    map->pairs = pairs;
    map->pairs[map->n_pairs++] = (tf_yaml_pair){.key = key, .value = value};
    return 0;
}

/* A new key in the mapping on top: refused when it is not a scalar or already present. */
static void accept_key(builder *b, frame *f, tf_yaml_node *key)
{
    /* f->key is still NULL here, so builder_path names the mapping that holds the key. */
    char path[TF_YAML_PATH_MAX];
    f->drop_value = false;
    if (key->kind != TF_YAML_SCALAR) {
        builder_path(b, NULL, path, sizeof path);
        tf_diag_add(b->diag, b->file, key->line, key->col, path,
                    "expected a plain key such as 'name'; found %s as a mapping key",
                    key->kind == TF_YAML_MAPPING ? "a mapping" : "a list");
        f->drop_value = true;
    } else {
        const tf_yaml_pair *first = tf_yaml_get_pair(f->node, key->text);
        if (first) {
            builder_path(b, key->text, path, sizeof path);
            tf_diag_add(b->diag, b->file, key->line, key->col, path,
                        "duplicate key '%s' (first defined at line %d, column %d)", key->text,
                        first->key->line, first->key->col);
            f->drop_value = true;
        }
    }
    f->key = key;
}

/* Hands a complete node to its parent (or makes it the root). Takes ownership of `n`. */
static void attach(builder *b, tf_yaml_node *n)
{
    if (b->depth == 0) {
        node_free(b->root);
        b->root = n;
        return;
    }
    frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == TF_YAML_SEQUENCE) {
        if (append_item(f->node, n) != 0) {
            b->nomem = true;
            node_free(n);
        }
        return;
    }
    if (!f->key) {
        accept_key(b, f, n);
        return;
    }
    tf_yaml_node *key = f->key;
    f->key = NULL;
    if (f->drop_value || append_pair(f->node, key, n) != 0) {
        b->nomem = b->nomem || !f->drop_value;
        node_free(key);
        node_free(n);
    }
}

/* Anchors and aliases would make one node appear at several places, which the line:column of
 * every message cannot express; they are refused with a way out. */
static void refuse_anchor(builder *b, const yaml_char_t *anchor, yaml_mark_t mark)
{
    if (!anchor)
        return;
    char path[TF_YAML_PATH_MAX];
    builder_path(b, NULL, path, sizeof path);
    tf_diag_add(b->diag, b->file, (int)mark.line + 1, (int)mark.column + 1, path,
                "YAML anchors (&%s) are not supported: repeat the value, or share it through "
                "${VAR}",
                (const char *)anchor);
}

static bool is_str_tag(const yaml_char_t *tag)
{
    return tag && strcmp((const char *)tag, YAML_STR_TAG) == 0;
}

static void refuse_tag(builder *b, const yaml_char_t *tag, yaml_mark_t mark)
{
    if (!tag || is_str_tag(tag))
        return;
    char path[TF_YAML_PATH_MAX];
    builder_path(b, NULL, path, sizeof path);
    tf_diag_add(b->diag, b->file, (int)mark.line + 1, (int)mark.column + 1, path,
                "YAML tags (%s) are not supported: write the value plainly, or quote it to make "
                "it a string",
                (const char *)tag);
}

static void on_scalar(builder *b, const yaml_event_t *ev)
{
    refuse_anchor(b, ev->data.scalar.anchor, ev->start_mark);
    refuse_tag(b, ev->data.scalar.tag, ev->start_mark);
    tf_yaml_node *n = new_node(b, TF_YAML_SCALAR, ev->start_mark);
    if (!n)
        return;
    size_t len = ev->data.scalar.length;
    n->raw = malloc(len + 1);
    if (!n->raw) {
        b->nomem = true;
        node_free(n);
        return;
    }
    memcpy(n->raw, ev->data.scalar.value, len);
    n->raw[len] = '\0';
    n->text = n->raw;
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || is_str_tag(ev->data.scalar.tag);
    if (strlen(n->raw) != len) {
        char path[TF_YAML_PATH_MAX];
        builder_path(b, NULL, path, sizeof path);
        tf_diag_add(b->diag, b->file, n->line, n->col, path,
                    "expected text; found a value containing a NUL character (\\0)");
        n->failed = true;
    }
    attach(b, n);
}

static void on_alias(builder *b, const yaml_event_t *ev)
{
    char path[TF_YAML_PATH_MAX];
    builder_path(b, NULL, path, sizeof path);
    tf_diag_add(b->diag, b->file, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                path,
                "YAML aliases (*%s) are not supported: repeat the value, or share it through "
                "${VAR}",
                (const char *)ev->data.alias.anchor);
    /* Stands in for the alias as an already-reported null, so nothing else complains. */
    tf_yaml_node *n = new_node(b, TF_YAML_SCALAR, ev->start_mark);
    if (!n)
        return;
    n->raw = strdup("");
    n->text = n->raw;
    n->failed = true;
    if (!n->raw) {
        b->nomem = true;
        node_free(n);
        return;
    }
    attach(b, n);
}

/* Returns -1 when nesting is too deep (reported) or memory ran out. */
static int on_collection_start(builder *b, tf_yaml_kind kind, const yaml_event_t *ev)
{
    const yaml_char_t *anchor =
        kind == TF_YAML_MAPPING ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    const yaml_char_t *tag =
        kind == TF_YAML_MAPPING ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    refuse_anchor(b, anchor, ev->start_mark);
    refuse_tag(b, tag, ev->start_mark);
    if (b->depth == TF_YAML_MAX_DEPTH) {
        tf_diag_add(b->diag, b->file, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                    NULL, "expected at most %d levels of nesting; found more", TF_YAML_MAX_DEPTH);
        return -1;
    }
    tf_yaml_node *n = new_node(b, kind, ev->start_mark);
    if (!n)
        return -1;
    b->stack[b->depth++] = (frame){.node = n};
    return 0;
}

static void on_collection_end(builder *b)
{
    if (b->depth == 0)
        return;
    frame f = b->stack[--b->depth];
    node_free(f.key); /* only set if the mapping ended mid-pair, which libyaml never does */
    attach(b, f.node);
}

static void builder_unwind(builder *b)
{
    while (b->depth > 0) {
        frame *f = &b->stack[--b->depth];
        node_free(f->key);
        node_free(f->node);
    }
}

static void report_syntax(builder *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        tf_diag_add(b->diag, b->file, 0, 0, NULL, "out of memory while reading YAML");
        return;
    }
    const char *problem = p->problem ? p->problem : "unknown problem";
    int line = (int)p->problem_mark.line + 1;
    int col = (int)p->problem_mark.column + 1;
    if (p->context) {
        tf_diag_add(b->diag, b->file, line, col, NULL,
                    "invalid YAML: %s (%s that starts at line %d, column %d)", problem, p->context,
                    (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    } else {
        tf_diag_add(b->diag, b->file, line, col, NULL, "invalid YAML: %s", problem);
    }
}

/* Handles one event; returns 1 at the end of the stream, 0 to go on, -1 to stop. */
static int on_event(builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            tf_diag_add(b->diag, b->file, (int)ev->start_mark.line + 1,
                        (int)ev->start_mark.column + 1, NULL,
                        "expected one YAML document per file; found a second one (---) here: "
                        "put it in a file of its own");
            return 1;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        on_scalar(b, ev);
        break;
    case YAML_ALIAS_EVENT:
        on_alias(b, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        return on_collection_start(b, TF_YAML_SEQUENCE, ev);
    case YAML_MAPPING_START_EVENT:
        return on_collection_start(b, TF_YAML_MAPPING, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_collection_end(b);
        break;
    default:
        break;
    }
    return b->nomem ? -1 : 0;
}

/* Parses `len` bytes into doc->root. Returns 0, or -1 after a diagnostic. */
static int parse_into(tf_yaml_doc *doc, const char *text, size_t len, tf_diag *diag)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        tf_diag_add(diag, doc->file, 0, 0, NULL, "out of memory while reading YAML");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    builder b = {.file = doc->file, .diag = diag};
    int rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            report_syntax(&b, &parser);
            rc = -1;
            break;
        }
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    if (b.nomem)
        tf_diag_add(diag, doc->file, 0, 0, NULL, "out of memory while reading YAML");
    builder_unwind(&b);
    yaml_parser_delete(&parser);
    if (rc < 0) {
        node_free(b.root);
        return -1;
    }
    doc->root = b.root;
    return 0;
}

static tf_yaml_doc *doc_new(const char *name, tf_diag *diag)
{
    tf_yaml_doc *doc = calloc(1, sizeof *doc);
    char *file = strdup(name ? name : "(string)");
    if (!doc || !file) {
        tf_diag_add(diag, name, 0, 0, NULL, "out of memory");
        free(doc);
        free(file);
        return NULL;
    }
    doc->file = file;
    return doc;
}

tf_yaml_doc *tf_yaml_parse_string(const char *text, const char *name, tf_diag *diag)
{
    tf_yaml_doc *doc = doc_new(name, diag);
    if (!doc)
        return NULL;
    if (parse_into(doc, text ? text : "", text ? strlen(text) : 0, diag) != 0) {
        tf_yaml_doc_destroy(doc);
        return NULL;
    }
    return doc;
}

/* The whole file, malloc'd (NUL-terminated) with its length; NULL after a diagnostic. */
static char *read_file(const char *path, size_t *len, tf_diag *diag)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        tf_diag_add(diag, path, 0, 0, NULL, "cannot read the file: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        tf_diag_add(diag, path, 0, 0, NULL, "expected a regular file; found something else");
        goto out;
    }
    if (st.st_size > TF_YAML_MAX_FILE) {
        tf_diag_add(diag, path, 0, 0, NULL,
                    "expected a configuration file of at most %d MiB; found %lld bytes",
                    TF_YAML_MAX_FILE / (1024 * 1024), (long long)st.st_size);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        tf_diag_add(diag, path, 0, 0, NULL, "out of memory");
        goto out;
    }
    *len = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        tf_diag_add(diag, path, 0, 0, NULL, "cannot read the file: %s", strerror(errno));
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[*len] = '\0';
out:
    fclose(f);
    return buf;
}

tf_yaml_doc *tf_yaml_load_file(const char *path, tf_diag *diag)
{
    size_t len = 0;
    char *text = read_file(path, &len, diag);
    if (!text)
        return NULL;
    tf_yaml_doc *doc = doc_new(path, diag);
    if (doc && parse_into(doc, text, len, diag) != 0) {
        tf_yaml_doc_destroy(doc);
        doc = NULL;
    }
    explicit_bzero(text, len);
    free(text);
    return doc;
}

/* ---- interpolation ---- */

static size_t interpolate_node(tf_yaml_node *n, const char *path, tf_diag *diag)
{
    char sub[TF_YAML_PATH_MAX];
    size_t failures = 0;
    if (n->kind == TF_YAML_SEQUENCE) {
        for (size_t i = 0; i < n->n_items; i++) {
            tf_yaml_path_index(sub, sizeof sub, path, i);
            failures += interpolate_node(n->items[i], sub, diag);
        }
        return failures;
    }
    if (n->kind == TF_YAML_MAPPING) {
        for (size_t i = 0; i < n->n_pairs; i++) {
            tf_yaml_path_key(sub, sizeof sub, path, key_text(n->pairs[i].key));
            failures += interpolate_node(n->pairs[i].value, sub, diag);
        }
        return failures;
    }
    if (n->failed || !strchr(n->raw, '$'))
        return 0;
    char err[512];
    char *value = tf_env_interpolate(n->raw, err, sizeof err);
    if (!value) {
        tf_diag_add(diag, n->file, n->line, n->col, path, "%s", err);
        n->failed = true;
        return 1;
    }
    if (n->text != n->raw)
        wipe_free(n->text);
    n->text = value;
    return 0;
}

size_t tf_yaml_interpolate(tf_yaml_doc *doc, tf_diag *diag)
{
    if (!doc || !doc->root)
        return 0;
    return interpolate_node(doc->root, "", diag);
}

/* ---- readers ---- */

const tf_yaml_pair *tf_yaml_get_pair(const tf_yaml_node *map, const char *key)
{
    if (!map || map->kind != TF_YAML_MAPPING || !key)
        return NULL;
    for (size_t i = 0; i < map->n_pairs; i++) {
        const tf_yaml_node *k = map->pairs[i].key;
        if (k->kind == TF_YAML_SCALAR && strcmp(k->text, key) == 0)
            return &map->pairs[i];
    }
    return NULL;
}

const tf_yaml_node *tf_yaml_get(const tf_yaml_node *map, const char *key)
{
    const tf_yaml_pair *p = tf_yaml_get_pair(map, key);
    return p ? p->value : NULL;
}

bool tf_yaml_is_null(const tf_yaml_node *n)
{
    if (!n || n->kind != TF_YAML_SCALAR || n->quoted)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        if (strcmp(n->text, nulls[i]) == 0)
            return true;
    }
    return false;
}

int tf_yaml_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    if (!text)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Copies `s` into `out` as a double-quoted, escaped string of at most ~60 characters. */
static void quote_text(const char *s, char *out, size_t size)
{
    size_t o = 0;
    const size_t limit = size < 72 ? size : 72;
    if (limit < 12) {
        out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Room for the longest escape (4) plus "...", the quote and the NUL. */
        if (o + 10 >= limit) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            int n = snprintf(out + o, limit - o, "\\x%02x", *p);
            o += n > 0 ? (size_t)n : 0;
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

void tf_yaml_describe(const tf_yaml_node *n, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    if (!n || tf_yaml_is_null(n)) {
        snprintf(buf, size, "nothing");
        return;
    }
    if (n->kind != TF_YAML_SCALAR) {
        snprintf(buf, size, "%s", n->kind == TF_YAML_MAPPING ? "a mapping" : "a list");
        return;
    }
    quote_text(n->text, buf, size);
    if (n->text == n->raw)
        return;
    char raw[80];
    quote_text(n->raw, raw, sizeof raw);
    size_t used = strlen(buf);
    int rc = snprintf(buf + used, size - used, " (from %s)", raw);
    if (rc < 0 || (size_t)rc >= size - used)
        buf[used] = '\0';
}

/* Edit distance counting a swap of neighbours as one edit ("wiht" -> "with"), ignoring ASCII
 * case (optimal string alignment); names are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t rows[3][65]; /* i-2, i-1 and i, rotating */
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *prev2 = rows[(i + 1) % 3];
        size_t *prev = rows[(i + 2) % 3];
        size_t *cur = rows[i % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]);
            int cb = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ca == cb ? 0 : 1);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

const char *tf_yaml_suggest(const char *word, const char *const *names, size_t n_names)
{
    if (!word || !*word)
        return NULL;
    /* A third of the word may be wrong (one slip in a short word): "timout" -> "timeout". */
    size_t limit = strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n_names; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best_d <= limit ? best : NULL;
}
