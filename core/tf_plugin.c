/*
 * Plugin loader and registry. A plugin is refused, with a message naming its file, when it is
 * not a loadable shared object, lacks the descriptor symbol, was built for another ABI major,
 * has a descriptor shorter than this host reads, or declares an inconsistent shape.
 */
#include "tf_plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TF_INSTALL_PLUGIN_DIR
#define TF_INSTALL_PLUGIN_DIR "/usr/local/lib/tickflow/plugins"
#endif
#ifndef TF_PLUGIN_DIR_FROM_BINDIR
#define TF_PLUGIN_DIR_FROM_BINDIR "../lib/tickflow/plugins"
#endif

/* The descriptor prefix this host reads: everything up to and including `write`. A plugin
 * built against an older minor with a shorter struct is still fine if it covers this much. */
#define TF_DESCRIPTOR_MIN_SIZE (offsetof(tf_plugin_descriptor, write) + sizeof(void *))

struct tf_registry {
    tf_plugin **plugins; /* owned; each entry allocated alone so pointers stay valid */
    size_t count;
    bool sorted; /* plugins[] is in (kind, name) order: set by the first tf_registry_at */
    size_t cap;
};

tf_registry *tf_registry_create(void)
{
    return calloc(1, sizeof(tf_registry));
}

void tf_registry_destroy(tf_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->count; i++) {
        free(reg->plugins[i]->path);
        /* Under a leak checker, keep the objects mapped so its stack traces can still name
         * plugin frames; dlclose otherwise. */
        if (reg->plugins[i]->handle && !getenv("TICKFLOW_NO_DLCLOSE"))
            dlclose(reg->plugins[i]->handle);
        free(reg->plugins[i]);
    }
    free(reg->plugins);
    free(reg);
}

const char *tf_plugin_kind_name(tf_plugin_kind kind)
{
    switch (kind) {
    case TF_KIND_SOURCE:
        return "source";
    case TF_KIND_TRANSFORM:
        return "transform";
    case TF_KIND_SINK:
        return "sink";
    }
    return "unknown";
}

const char *tf_option_type_name(tf_option_type type)
{
    switch (type) {
    case TF_OPT_STRING:
        return "string";
    case TF_OPT_INT:
        return "int";
    case TF_OPT_DOUBLE:
        return "double";
    case TF_OPT_BOOL:
        return "bool";
    case TF_OPT_DURATION:
        return "duration";
    case TF_OPT_LIST:
        return "list";
    case TF_OPT_MAP:
        return "map";
    case TF_OPT_SECRET:
        return "secret";
    }
    return "any";
}

static bool valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
        if (!ok)
            return false;
    }
    return true;
}

static bool valid_option_type(tf_option_type t)
{
    return t >= TF_OPT_STRING && t <= TF_OPT_SECRET;
}

/* Checks the option table: names, types, and that nested tables are well formed. */
static int check_options(const tf_option_def *opts, const char *path, const char *where,
                         tf_diag *diag, int depth)
{
    if (!opts)
        return TF_OK;
    if (depth > 2) {
        tf_diag_add(diag, path, 0, 0, NULL, "%s: option tables nest deeper than 2 levels", where);
        return TF_EINVAL;
    }
    for (size_t i = 0; opts[i].name; i++) {
        const tf_option_def *o = &opts[i];
        if (!valid_name(o->name)) {
            tf_diag_add(diag, path, 0, 0, NULL,
                        "%s: option %zu has an invalid name (expected [a-z0-9_]+)", where, i);
            return TF_EINVAL;
        }
        if (!valid_option_type(o->type)) {
            tf_diag_add(diag, path, 0, 0, NULL, "%s: option '%s' has unknown type %d", where,
                        o->name, (int)o->type);
            return TF_EINVAL;
        }
        if (o->item_type != 0 && !valid_option_type(o->item_type)) {
            tf_diag_add(diag, path, 0, 0, NULL, "%s: option '%s' has unknown item type %d", where,
                        o->name, (int)o->item_type);
            return TF_EINVAL;
        }
        if (o->fields && check_options(o->fields, path, where, diag, depth + 1) != TF_OK)
            return TF_EINVAL;
    }
    return TF_OK;
}

/* Validates a descriptor's ABI and shape; one diagnostic on failure. */
static int check_descriptor(const tf_plugin_descriptor *d, const char *path, tf_diag *diag)
{
    if (d->abi_major != TF_ABI_MAJOR) {
        tf_diag_add(diag, path, 0, 0, NULL,
                    "plugin ABI %u.%u is not supported by this tickflow (ABI %d.%d): rebuild the "
                    "plugin against this SDK",
                    (unsigned)d->abi_major, (unsigned)d->abi_minor, TF_ABI_MAJOR, TF_ABI_MINOR);
        return TF_EINVAL;
    }
    if (d->struct_size < TF_DESCRIPTOR_MIN_SIZE) {
        tf_diag_add(diag, path, 0, 0, NULL,
                    "plugin descriptor is %u bytes, this tickflow needs at least %zu (ABI %d.%d)",
                    (unsigned)d->struct_size, (size_t)TF_DESCRIPTOR_MIN_SIZE, TF_ABI_MAJOR,
                    TF_ABI_MINOR);
        return TF_EINVAL;
    }
    const char *where = d->name ? d->name : "(unnamed)";
    if (!valid_name(d->name)) {
        tf_diag_add(diag, path, 0, 0, NULL,
                    "plugin name '%s' is invalid (expected 1-64 characters of [a-z0-9_])", where);
        return TF_EINVAL;
    }
    if (!d->init || !d->destroy) {
        tf_diag_add(diag, path, 0, 0, NULL, "plugin '%s' lacks its init or destroy callback",
                    where);
        return TF_EINVAL;
    }
    bool shape_ok = (d->kind == TF_KIND_SOURCE && d->collect) ||
                    (d->kind == TF_KIND_TRANSFORM && d->process) ||
                    (d->kind == TF_KIND_SINK && d->write);
    if (!shape_ok) {
        tf_diag_add(diag, path, 0, 0, NULL,
                    "plugin '%s' has kind %d without its callback (source needs collect, "
                    "transform needs process, sink needs write)",
                    where, (int)d->kind);
        return TF_EINVAL;
    }
    return check_options(d->options, path, where, diag, 0);
}

static int append(tf_registry *reg, const tf_plugin_descriptor *d, const char *path, void *h)
{
    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        tf_plugin **grown = realloc(reg->plugins, cap * sizeof *grown);
        if (!grown)
            return TF_ENOMEM;
        reg->plugins = grown;
        reg->cap = cap;
    }
    tf_plugin *p = calloc(1, sizeof *p);
    char *copy = strdup(path ? path : "(built in)");
    if (!p || !copy) {
        free(p);
        free(copy);
        return TF_ENOMEM;
    }
    *p = (tf_plugin){.desc = d, .path = copy, .handle = h};
    reg->plugins[reg->count++] = p;
    reg->sorted = false;
    return TF_OK;
}

static int add_checked(tf_registry *reg, const tf_plugin_descriptor *d, const char *path,
                       void *handle, tf_diag *diag)
{
    if (check_descriptor(d, path, diag) != TF_OK)
        return TF_EINVAL;
    const tf_plugin *dup = tf_registry_find(reg, d->kind, d->name);
    if (dup) {
        tf_diag_add(diag, path, 0, 0, NULL, "duplicate %s plugin '%s': already loaded from %s",
                    tf_plugin_kind_name(d->kind), d->name, dup->path);
        return TF_EINVAL;
    }
    return append(reg, d, path, handle);
}

int tf_registry_add(tf_registry *reg, const tf_plugin_descriptor *desc, const char *path,
                    tf_diag *diag)
{
    return add_checked(reg, desc, path, NULL, diag);
}

int tf_registry_load_file(tf_registry *reg, const char *path, tf_diag *diag)
{
    /* RTLD_LOCAL keeps plugins' own symbols from colliding with each other. */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        tf_diag_add(diag, path, 0, 0, NULL, "cannot load plugin: %s",
                    why ? why : "not a loadable shared object");
        return TF_EINVAL;
    }
    dlerror();
    const tf_plugin_descriptor *d = dlsym(handle, TF_PLUGIN_SYMBOL);
    if (!d) {
        tf_diag_add(diag, path, 0, 0, NULL,
                    "not a tickflow plugin: no '%s' descriptor symbol (export it with "
                    "TF_PLUGIN_EXPORT)",
                    TF_PLUGIN_SYMBOL);
        dlclose(handle);
        return TF_EINVAL;
    }
    int rc = add_checked(reg, d, path, handle, diag);
    if (rc != TF_OK)
        dlclose(handle);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_so_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

int tf_registry_load_dir(tf_registry *reg, const char *dir, tf_diag *diag)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int failures = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_so_suffix(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, cap * sizeof *grown);
            if (!grown) {
                failures++;
                goto out;
            }
            names = grown;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            failures++;
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (len < 0 || (size_t)len >= sizeof path) {
            tf_diag_add(diag, dir, 0, 0, NULL, "plugin path too long: %s", names[i]);
            failures++;
            continue;
        }
        if (tf_registry_load_file(reg, path, diag) != TF_OK)
            failures++;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return failures;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <exe dir>/<rel> into dir when that directory exists. */
static bool beside_exe(char *dir, size_t size, const char *exe_dir, const char *rel)
{
    int len = snprintf(dir, size, "%s/%s", exe_dir, rel);
    return len > 0 && (size_t)len < size && is_dir(dir);
}

const char *tf_registry_builtin_dir(void)
{
    static char dir[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            /* The build tree keeps plugins in lib/ whatever CMAKE_INSTALL_LIBDIR says; an
             * install, relocated or not, keeps them at the configured path from bin/. */
            if (beside_exe(dir, sizeof dir, exe, "../lib/tickflow/plugins") ||
                beside_exe(dir, sizeof dir, exe, TF_PLUGIN_DIR_FROM_BINDIR))
                return dir;
        }
    }
    snprintf(dir, sizeof dir, "%s", TF_INSTALL_PLUGIN_DIR);
    return dir;
}

/* Loads one search directory; "first found wins" is applied by the duplicate check, which
 * reports a later copy of the same plugin instead of replacing the earlier one. */
static int load_search_dir(tf_registry *reg, const char *dir, tf_diag *diag)
{
    if (!dir || !*dir)
        return 0;
    if (!is_dir(dir)) {
        tf_diag_add(diag, dir, 0, 0, NULL, "plugin directory does not exist");
        return 1;
    }
    return tf_registry_load_dir(reg, dir, diag);
}

int tf_registry_load_default(tf_registry *reg, const char *const *extra_dirs, size_t n_extra,
                             tf_diag *diag)
{
    int failures = 0;
    for (size_t i = 0; i < n_extra; i++)
        failures += load_search_dir(reg, extra_dirs[i], diag);
    const char *env = getenv("TICKFLOW_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env);
        if (!copy)
            return failures + 1;
        char *save = NULL;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
            failures += load_search_dir(reg, dir, diag);
        free(copy);
    }
    const char *builtin = tf_registry_builtin_dir();
    if (is_dir(builtin))
        failures += tf_registry_load_dir(reg, builtin, diag);
    return failures;
}

const tf_plugin *tf_registry_find(const tf_registry *reg, tf_plugin_kind kind, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < reg->count; i++) {
        const tf_plugin_descriptor *d = reg->plugins[i]->desc;
        if (d->kind == kind && strcmp(d->name, name) == 0)
            return reg->plugins[i];
    }
    return NULL;
}

size_t tf_registry_count(const tf_registry *reg)
{
    return reg->count;
}

static int cmp_plugin(const void *a, const void *b)
{
    const tf_plugin *x = *(tf_plugin *const *)a, *y = *(tf_plugin *const *)b;
    if (x->desc->kind != y->desc->kind)
        return (int)x->desc->kind - (int)y->desc->kind;
    return strcmp(x->desc->name, y->desc->name);
}

const tf_plugin *tf_registry_at(const tf_registry *reg, size_t i)
{
    if (i >= reg->count)
        return NULL;
    /* Sorted once after the last load, not on every call of a listing loop. Sorting the pointer
     * array leaves every tf_plugin where it is. */
    if (!reg->sorted) {
        qsort(reg->plugins, reg->count, sizeof *reg->plugins, cmp_plugin);
        ((tf_registry *)reg)->sorted = true;
    }
    return reg->plugins[i];
}
