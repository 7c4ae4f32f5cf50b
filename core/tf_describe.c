/*
 * Renders plugin descriptors for people and tools: `tickflow plugins list|describe` (text or
 * JSON) and the Markdown pages of docs/plugins/. All three read the same option tables, so the
 * docs cannot drift from what validation enforces.
 */
#include "tf_describe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *shown_default(const tf_option_def *o)
{
    if (!o->default_value)
        return NULL;
    /* A secret's default would be a secret written in code: never print it. */
    return o->type == TF_OPT_SECRET ? "****" : o->default_value;
}

static json_t *options_json(const tf_option_def *opts)
{
    json_t *arr = json_array();
    for (size_t i = 0; opts && opts[i].name; i++) {
        const tf_option_def *o = &opts[i];
        json_t *j = json_pack("{s:s, s:s, s:b, s:s}", "name", o->name, "type",
                              tf_option_type_name(o->type), "required", o->required != 0,
                              "description", o->description ? o->description : "");
        const char *def = shown_default(o);
        json_object_set_new(j, "default", def ? json_string(def) : json_null());
        if (o->item_type)
            json_object_set_new(j, "item_type", json_string(tf_option_type_name(o->item_type)));
        if (o->fields)
            json_object_set_new(j, "fields", options_json(o->fields));
        json_array_append_new(arr, j);
    }
    return arr;
}

json_t *tf_describe_json(const tf_plugin *p)
{
    const tf_plugin_descriptor *d = p->desc;
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "name", d->name, "kind",
                  tf_plugin_kind_name(d->kind), "description", d->description ? d->description : "",
                  "version", d->version ? d->version : "", "file", p->path, "abi_major",
                  (int)d->abi_major, "abi_minor", (int)d->abi_minor);
    json_object_set_new(j, "options", options_json(d->options));
    return j;
}

static const char *type_text(const tf_option_def *o, char *buf, size_t size)
{
    if (o->type == TF_OPT_LIST && o->item_type)
        snprintf(buf, size, "list of %s", tf_option_type_name(o->item_type));
    else if (o->type == TF_OPT_MAP && o->item_type && !o->fields)
        snprintf(buf, size, "map of %s", tf_option_type_name(o->item_type));
    else
        snprintf(buf, size, "%s", tf_option_type_name(o->type));
    return buf;
}

static void print_options_text(FILE *out, const tf_option_def *opts, int indent)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        const tf_option_def *o = &opts[i];
        char type[48];
        const char *def = shown_default(o);
        fprintf(
            out, "%*s%-18s %-16s %s%s%s\n", indent, "", o->name, type_text(o, type, sizeof type),
            o->required ? "required" : "default: ", o->required ? "" : (def ? def : "(none)"), "");
        fprintf(out, "%*s%-18s %s\n", indent, "", "", o->description ? o->description : "");
        if (o->fields) {
            fprintf(out, "%*s%-18s fields:\n", indent, "", "");
            print_options_text(out, o->fields, indent + 4);
        }
    }
}

void tf_describe_text(FILE *out, const tf_plugin *p)
{
    const tf_plugin_descriptor *d = p->desc;
    fprintf(out, "%s (%s) %s\n", d->name, tf_plugin_kind_name(d->kind),
            d->version ? d->version : "");
    fprintf(out, "  %s\n", d->description ? d->description : "");
    fprintf(out, "  file: %s (ABI %u.%u)\n\noptions:\n", p->path, (unsigned)d->abi_major,
            (unsigned)d->abi_minor);
    if (!d->options || !d->options[0].name)
        fprintf(out, "  (none)\n");
    print_options_text(out, d->options, 2);
}

void tf_describe_list_text(FILE *out, const tf_registry *reg)
{
    fprintf(out, "%-10s %-18s %-9s %s\n", "KIND", "NAME", "VERSION", "DESCRIPTION");
    for (size_t i = 0; i < tf_registry_count(reg); i++) {
        const tf_plugin_descriptor *d = tf_registry_at(reg, i)->desc;
        fprintf(out, "%-10s %-18s %-9s %s\n", tf_plugin_kind_name(d->kind), d->name,
                d->version ? d->version : "", d->description ? d->description : "");
    }
}

/* Markdown table cells must not contain a raw pipe or newline. */
static void md_cell(FILE *out, const char *text)
{
    for (const char *c = text ? text : ""; *c; c++) {
        if (*c == '|')
            fputs("\\|", out);
        else if (*c == '\n')
            fputc(' ', out);
        else
            fputc(*c, out);
    }
}

static void md_options(FILE *out, const tf_option_def *opts, const char *prefix)
{
    for (size_t i = 0; opts && opts[i].name; i++) {
        const tf_option_def *o = &opts[i];
        char type[48];
        const char *def = shown_default(o);
        fprintf(out, "| `%s%s` | %s | %s | ", prefix, o->name, type_text(o, type, sizeof type),
                o->required ? "yes" : "no");
        if (def) {
            fputc('`', out);
            md_cell(out, def);
            fputc('`', out);
        }
        fputs(" | ", out);
        md_cell(out, o->description);
        fputs(" |\n", out);
        if (o->fields) {
            char sub[128];
            /* A list of maps reads `providers[].name`; a map of records `hosts.<key>.rate`;
             * a plain map `fields.last`. */
            const char *shape = o->type == TF_OPT_LIST                                  ? "[]."
                                : (o->type == TF_OPT_MAP && o->item_type == TF_OPT_MAP) ? ".<key>."
                                                                                        : ".";
            snprintf(sub, sizeof sub, "%s%s%s", prefix, o->name, shape);
            md_options(out, o->fields, sub);
        }
    }
}

void tf_describe_markdown(FILE *out, const tf_plugin *p)
{
    const tf_plugin_descriptor *d = p->desc;
    fprintf(out, "<!-- Generated by `tickflow plugins docs` from the plugin's option table. "
                 "Do not edit. -->\n");
    fprintf(out, "# `%s` (%s)\n\n", d->name, tf_plugin_kind_name(d->kind));
    md_cell(out, d->description);
    fprintf(out, "\n\nVersion %s, plugin ABI %u.%u.\n\n", d->version ? d->version : "",
            (unsigned)d->abi_major, (unsigned)d->abi_minor);
    fprintf(out, "Use it in a pipeline under `%ss:` as `{use: %s, with: {...}}`.\n\n",
            tf_plugin_kind_name(d->kind), d->name);
    if (!d->options || !d->options[0].name) {
        fprintf(out, "It takes no options.\n");
        return;
    }
    fprintf(out, "| option | type | required | default | description |\n");
    fprintf(out, "|---|---|---|---|---|\n");
    md_options(out, d->options, "");
}

int tf_describe_write_docs(const tf_registry *reg, const char *dir, FILE *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(err, "error: %s: cannot create directory: %s\n", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/README.md", dir);
    FILE *index = fopen(path, "w");
    if (!index) {
        fprintf(err, "error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(index, "<!-- Generated by `tickflow plugins docs`. Do not edit. -->\n"
                   "# Plugins\n\nEach page is generated from the plugin's option table, the "
                   "same table that validates YAML and drives `tickflow plugins describe`.\n\n"
                   "| kind | plugin | description |\n|---|---|---|\n");
    int rc = 0;
    for (size_t i = 0; i < tf_registry_count(reg); i++) {
        const tf_plugin *p = tf_registry_at(reg, i);
        const char *kind = tf_plugin_kind_name(p->desc->kind);
        fprintf(index, "| %s | [`%s`](%s_%s.md) | ", kind, p->desc->name, kind, p->desc->name);
        md_cell(index, p->desc->description);
        fprintf(index, " |\n");
        snprintf(path, sizeof path, "%s/%s_%s.md", dir, kind, p->desc->name);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(err, "error: %s: %s\n", path, strerror(errno));
            rc = -1;
            continue;
        }
        tf_describe_markdown(f, p);
        if (fclose(f) != 0)
            rc = -1;
    }
    if (fclose(index) != 0)
        rc = -1;
    return rc;
}
