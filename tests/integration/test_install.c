/*
 * The install as a plugin author meets it: `cmake --install` of this build into a temporary
 * prefix, examples/plugin-ticker-scale copied out of the tree and built with make against that
 * prefix's pkg-config file only, and the installed tickflow loading it beside its own plugins.
 * The tests run in order; each later one needs what the earlier ones produced.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_proc.h"
#include "tf_test.h"

#define RECORDS 10 /* records compared per pipeline */

static char *tmp;                 /* owned: removed by cleanup */
static char prefix[PATH_MAX];     /* <tmp>/prefix */
static char libdir[PATH_MAX];     /* <prefix>/<CMAKE_INSTALL_LIBDIR> */
static char plugindir[PATH_MAX];  /* <libdir>/tickflow/plugins */
static char tickflow[PATH_MAX];   /* <prefix>/<bindir>/tickflow */
static char example[PATH_MAX];    /* the out-of-tree copy of the example */
static char out[PATH_MAX];        /* output of the last command */
static char pkg_config[PATH_MAX]; /* PKG_CONFIG= given to make */
static bool installed;            /* test_install passed */
static bool self_found = true;    /* the installed tickflow finds its own plugins */
static bool built;                /* the example plugin was built */

static bool fmt(char *buf, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static bool fmt(char *buf, size_t size, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, size, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        fprintf(stderr, "\ntoo long for %zu bytes: %s...\n", size, buf);
        return false;
    }
    return true;
}

static void dump(const char *path)
{
    char *text = tft_read_file(path, NULL);
    fprintf(stderr, "\n--- %s ---\n%s\n---\n", path, text ? text : "(unreadable)");
    free(text);
}

/* Runs argv[0] (an absolute path) to completion with output into `out`; the exit code, or -1
 * after a timeout or a signal. Any other code than `expect` prints the output to the log. */
static int run(const char *const *argv, const char *const *env, int timeout_ms, int expect)
{
    remove(out);
    pid_t pid = tft_spawn(argv, out, env);
    int status = 0;
    int rc = -1;
    if (pid > 0 && tft_wait_exit(pid, timeout_ms, &status))
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    else if (pid > 0)
        tft_kill_wait(pid);
    if (rc != expect) {
        fprintf(stderr, "\n%s exited with %d, expected %d\n", argv[0], rc, expect);
        dump(out);
    }
    return rc;
}

/* Fills argv with `tickflow [--plugin-dir DIR]... args...` of the install; argv holds 16. */
static void tickflow_argv(const char **argv, const char *const *args)
{
    size_t n = 0;
    argv[n++] = tickflow;
    if (built) {
        argv[n++] = "--plugin-dir";
        argv[n++] = example;
    }
    if (!self_found) {
        argv[n++] = "--plugin-dir"; /* fallback, after test_finds_own_plugins has failed */
        argv[n++] = plugindir;
    }
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
}

static int run_tickflow(const char *const *args, int timeout_ms, int expect)
{
    const char *argv[16];
    tickflow_argv(argv, args);
    return run(argv, NULL, timeout_ms, expect);
}

static bool output_has(const char *needle)
{
    bool found = tft_file_count(out, needle) > 0;
    if (!found) {
        fprintf(stderr, "\nexpected \"%s\" in %s\n", needle, out);
        dump(out);
    }
    return found;
}

static bool exists(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    struct stat st;
    bool ok =
        fmt(path, sizeof path, "%s/%s", dir, rel) && stat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (!ok)
        fprintf(stderr, "\nnot installed: %s/%s\n", dir, rel);
    return ok;
}

static bool same_file(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

static void test_install(void)
{
    CU_ASSERT_FATAL(fmt(prefix, sizeof prefix, "%s/prefix", tmp));
    CU_ASSERT_FATAL(fmt(libdir, sizeof libdir, "%s/%s", prefix, TFI_LIBDIR));
    CU_ASSERT_FATAL(fmt(plugindir, sizeof plugindir, "%s/tickflow/plugins", libdir));
    CU_ASSERT_FATAL(fmt(tickflow, sizeof tickflow, "%s/%s/tickflow", prefix, TFI_BINDIR));
    const char *argv[] = {TFI_CMAKE, "--install", TFI_BUILD_DIR, "--prefix", prefix, NULL};
    CU_ASSERT_EQUAL_FATAL(run(argv, NULL, 120000, 0), 0);

    bool ok = access(tickflow, X_OK) == 0;
    CU_ASSERT(ok);
    char inc[PATH_MAX];
    CU_ASSERT_FATAL(fmt(inc, sizeof inc, "%s/%s/tickflow", prefix, TFI_INCLUDEDIR));
    const char *headers[] = {"tickflow.h", "plugin.h", "host.h", "version.h"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        bool found = exists(inc, headers[i]);
        CU_ASSERT(found);
        ok = ok && found;
    }
    const char *libs[] = {"tickflow/plugins/source_generate.so", "tickflow/plugins/sink_stdout.so",
                          "pkgconfig/tickflow.pc"};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        bool found = exists(libdir, libs[i]);
        CU_ASSERT(found);
        ok = ok && found;
    }
    installed = ok;
}

/* The installed tickflow, given no --plugin-dir, loads the plugins installed beside it (not
 * those of the build tree, nor of a configured prefix that was never installed to). */
static void test_finds_own_plugins(void)
{
    CU_ASSERT_FATAL(installed);
    const char *args[] = {"plugins", "describe", "generate", "--json", NULL};
    int rc = run_tickflow(args, 30000, 0);
    char *text = tft_read_file(out, NULL);
    json_t *j = rc == 0 && text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    const char *file = json_string_value(json_object_get(j, "file"));
    char want[PATH_MAX];
    CU_ASSERT_FATAL(fmt(want, sizeof want, "%s/source_generate.so", plugindir));
    self_found = file && same_file(file, want);
    if (!self_found)
        fprintf(stderr,
                "\nthe installed %s did not load its own plugins from %s (loaded: %s); it looks "
                "in <exe dir>/../lib/tickflow/plugins, then the configured install directory. "
                "Later tests pass --plugin-dir %s\n",
                tickflow, plugindir, file ? file : "nothing", plugindir);
    CU_ASSERT(self_found);
    json_decref(j);
}

/* The installed tickflow.pc must describe the prefix it was installed to: `cmake --install
 * --prefix` and package managers relocate an install after configuration. */
static bool pc_is_relocated(const char *pc_path_env)
{
    const char *argv[] = {TFI_PKG_CONFIG, "--variable=includedir", "tickflow", NULL};
    const char *env[] = {pc_path_env, NULL};
    if (run(argv, env, 30000, 0) != 0)
        return false;
    char *text = tft_read_file(out, NULL);
    if (!text)
        return false;
    text[strcspn(text, "\n")] = '\0';
    char want[PATH_MAX];
    bool ok = fmt(want, sizeof want, "%s/%s", prefix, TFI_INCLUDEDIR) && same_file(text, want);
    if (!ok)
        fprintf(stderr,
                "\ninstalled tickflow.pc gives includedir %s, expected %s: its prefix is fixed "
                "at configure time; write it relative to ${pcfiledir}. Building with "
                "--define-variable=prefix as a fallback.\n",
                text, want);
    free(text);
    return ok;
}

/* Copies the example's regular files (not a plugin an in-tree `make` may have left). */
static bool copy_example(const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (!d || mkdir(to, 0755) != 0) {
        fprintf(stderr, "\ncannot copy %s to %s\n", from, to);
        if (d)
            closedir(d);
        return false;
    }
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        char src[PATH_MAX], dst[PATH_MAX];
        struct stat st;
        if (strstr(e->d_name, ".so"))
            continue;
        ok = fmt(src, sizeof src, "%s/%s", from, e->d_name) &&
             fmt(dst, sizeof dst, "%s/%s", to, e->d_name);
        if (!ok || stat(src, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        char *text = tft_read_file(src, NULL);
        ok = text && tft_write_file(dst, text) == 0;
        free(text);
    }
    closedir(d);
    return ok;
}

static void test_build_example_out_of_tree(void)
{
    CU_ASSERT_FATAL(installed);
    char pc_path_env[PATH_MAX + 32];
    CU_ASSERT_FATAL(fmt(pc_path_env, sizeof pc_path_env, "PKG_CONFIG_PATH=%s/pkgconfig", libdir));
    bool relocated = pc_is_relocated(pc_path_env);
    CU_ASSERT(relocated);
    /* Fallback after the failure above, so the rest of the install is still exercised. */
    bool ok = relocated ? fmt(pkg_config, sizeof pkg_config, "PKG_CONFIG=%s", TFI_PKG_CONFIG)
                        : fmt(pkg_config, sizeof pkg_config,
                              "PKG_CONFIG=%s --define-variable=prefix=%s", TFI_PKG_CONFIG, prefix);
    CU_ASSERT_FATAL(ok);

    CU_ASSERT_FATAL(fmt(example, sizeof example, "%s/plugin-ticker-scale", tmp));
    CU_ASSERT_FATAL(copy_example(tft_source_path("examples/plugin-ticker-scale"), example));
    char cc[PATH_MAX + 8];
    CU_ASSERT_FATAL(fmt(cc, sizeof cc, "CC=%s", TFI_CC));
    /* A sanitized host loads a sanitized plugin, so ASan sees the plugin's memory too. */
    const char *cflags = TFI_SANITIZE ? "CFLAGS=-O1 -g -fno-omit-frame-pointer "
                                        "-fsanitize=address,undefined -fno-sanitize-recover=all"
                                      : "CFLAGS=-O2 -g";
    const char *argv[] = {TFI_MAKE, "-C", example, cc, cflags, pkg_config, NULL};
    const char *env[] = {pc_path_env, NULL};
    CU_ASSERT_EQUAL_FATAL(run(argv, env, 120000, 0), 0);
    CU_ASSERT(exists(example, "transform_scale.so"));
    /* The compile line: the project's warnings, the prefix's headers, nothing of the tree. */
    CU_ASSERT(output_has("-Wall -Wextra -Werror"));
    CU_ASSERT(output_has(prefix));
    CU_ASSERT_EQUAL(tft_file_count(out, tft_source_path("sdk")), 0);
    built = true;
}

static void test_describe_scale(void)
{
    CU_ASSERT_FATAL(built);
    const char *text[] = {"plugins", "describe", "scale", NULL};
    CU_ASSERT_EQUAL_FATAL(run_tickflow(text, 30000, 0), 0);
    CU_ASSERT(output_has("scale (transform) 1.0.0"));
    CU_ASSERT(output_has("list of string"));
    CU_ASSERT(output_has("default: []"));
    CU_ASSERT(output_has("Multiplier applied to every listed field"));

    const char *args[] = {"plugins", "describe", "scale", "--json", NULL};
    CU_ASSERT_EQUAL_FATAL(run_tickflow(args, 30000, 0), 0);
    char *body = tft_read_file(out, NULL);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "kind")), "transform");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "abi_major")), 1);
    char so[PATH_MAX];
    CU_ASSERT_FATAL(fmt(so, sizeof so, "%s/transform_scale.so", example));
    const char *file = json_string_value(json_object_get(j, "file"));
    CU_ASSERT(file && same_file(file, so));
    json_t *opts = json_object_get(j, "options");
    CU_ASSERT_EQUAL(json_array_size(opts), 3);
    /* name, type, item type, required, default: the table as scale.c declares it */
    const char *want[][5] = {{"fields", "list", "string", "1", NULL},
                             {"factor", "double", NULL, "0", "1"},
                             {"kinds", "list", "string", "0", "[]"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_array_get(opts, i);
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *item = json_string_value(json_object_get(o, "item_type"));
        const char *def = json_string_value(json_object_get(o, "default"));
        CU_ASSERT(name && strcmp(name, want[i][0]) == 0);
        CU_ASSERT(type && strcmp(type, want[i][1]) == 0);
        CU_ASSERT(want[i][2] ? item && strcmp(item, want[i][2]) == 0 : item == NULL);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(o, "required")), want[i][3][0] == '1');
        CU_ASSERT(want[i][4] ? def && strcmp(def, want[i][4]) == 0 : def == NULL);
    }
    json_decref(j);
}

static void test_check_rejects_missing_fields(void)
{
    CU_ASSERT_FATAL(built);
    const char *cfg = tfp_write_config(tmp, "nofields.yaml",
                                       "pipelines:\n"
                                       "  - name: walk\n"
                                       "    every: 100ms\n"
                                       "    sources: [{use: generate}]\n"
                                       "    transforms:\n"
                                       "      - use: scale\n"
                                       "        with: {factor: 2}\n"
                                       "    sinks: [{use: stdout}]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const char *args[] = {"check", cfg, NULL};
    CU_ASSERT_EQUAL(run_tickflow(args, 30000, 2), 2);
    /* Validated by the host from scale's table: the plugin's code never ran. */
    CU_ASSERT(output_has("nofields.yaml:7:"));
    CU_ASSERT(output_has("pipelines[0].transforms[0].with.fields"));
}

/* Records printed by one pipeline (from the `_pipeline` meta field), in order; new ref. */
static json_t *records_of(const tfp_proc *p, const char *pipeline)
{
    json_t *all = tfp_records(p), *mine = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *name = json_string_value(json_object_get(r, "_pipeline"));
        if (name && strcmp(name, pipeline) == 0)
            json_array_append(mine, r);
    }
    json_decref(all);
    return mine;
}

/* Runs the installed tickflow on `yaml` until it printed more than `n` records, then stops it
 * with SIGTERM, which must end it cleanly. */
static bool run_pipelines(tfp_proc *p, const char *tag, const char *yaml, size_t n)
{
    char name[64];
    if (!fmt(name, sizeof name, "%s.yaml", tag) ||
        !fmt(p->log, sizeof p->log, "%s/%s.log", tmp, tag))
        return false;
    const char *cfg = tfp_write_config(tmp, name, yaml);
    if (!cfg)
        return false;
    const char *args[] = {"run", cfg, NULL};
    const char *argv[16];
    tickflow_argv(argv, args);
    p->pid = tft_spawn(argv, p->log, NULL);
    if (p->pid <= 0)
        return false;
    bool ok = tfp_wait_records(p, n, 30000);
    int status = tft_stop(p->pid, SIGTERM, 10000);
    ok = ok && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok)
        dump(p->log);
    return ok;
}

#define GENERATE                                                                                   \
    "    every: 100ms\n"                                                                           \
    "    sources:\n"                                                                               \
    "      - use: generate\n"                                                                      \
    "        with: {kind: ticker, walk_field: last, start: 100, seed: 7, fields: {size: 1.5}}\n"

static double field(const json_t *records, size_t i, const char *name)
{
    return json_number_value(json_object_get(json_array_get(records, i), name));
}

static void test_scale_doubles_the_walk(void)
{
    CU_ASSERT_FATAL(built);
    tfp_proc plain, scaled;
    CU_ASSERT_FATAL(run_pipelines(&plain, "plain",
                                  "pipelines:\n"
                                  "  - name: walk\n" GENERATE
                                  "    sinks: [{use: stdout, with: {meta: true}}]\n",
                                  RECORDS));
    /* `walk` scales `last` (and `bid`, which the records lack: skipped, not an error);
     * `other` scales only kind `trade`, so its tickers pass unchanged. */
    CU_ASSERT_FATAL(run_pipelines(&scaled, "scaled",
                                  "pipelines:\n"
                                  "  - name: walk\n" GENERATE "    transforms:\n"
                                  "      - use: scale\n"
                                  "        with: {fields: [last, bid], factor: 2}\n"
                                  "    sinks: [{use: stdout, with: {meta: true}}]\n"
                                  "  - name: other\n" GENERATE "    transforms:\n"
                                  "      - use: scale\n"
                                  "        with: {fields: [last], factor: 2, kinds: [trade]}\n"
                                  "    sinks: [{use: stdout, with: {meta: true}}]\n",
                                  3 * RECORDS));
    json_t *base = records_of(&plain, "walk");
    json_t *twice = records_of(&scaled, "walk");
    json_t *same = records_of(&scaled, "other");
    CU_ASSERT_FATAL(json_array_size(base) >= RECORDS);
    CU_ASSERT_FATAL(json_array_size(twice) >= RECORDS);
    CU_ASSERT_FATAL(json_array_size(same) >= RECORDS);
    /* The walk advances once per record, so the i-th records of two runs with one seed hold
     * the same step even if a slow machine made one run skip a tick (a gap in `seq`). x2 is
     * exact in binary floating point and jansson prints doubles round-trip, so compare ==. */
    for (size_t i = 0; i < RECORDS; i++) {
        double want = field(base, i, "last");
        CU_ASSERT(want > 0);
        CU_ASSERT_DOUBLE_EQUAL(field(twice, i, "last"), 2 * want, 0);
        if (field(twice, i, "last") != 2 * want)
            fprintf(stderr, "\nrecord %zu (seq %lld): last %.17g, expected 2 x %.17g\n", i,
                    (long long)field(twice, i, "seq"), field(twice, i, "last"), want);
        CU_ASSERT(field(same, i, "last") == want);
        CU_ASSERT(field(twice, i, "size") == 1.5);
        CU_ASSERT_PTR_NULL(json_object_get(json_array_get(twice, i), "bid"));
    }
    CU_ASSERT_EQUAL(tfp_log_count(&scaled, "expected a double"), 0);
    json_decref(base);
    json_decref(twice);
    json_decref(same);
}

static int init(void)
{
    /* Only --plugin-dir and the install's own directory may supply plugins here. */
    unsetenv("TICKFLOW_PLUGIN_PATH");
    tmp = tft_mkdtemp();
    if (!tmp || !fmt(out, sizeof out, "%s/out.log", tmp))
        return 1;
    return 0;
}

static int cleanup(void)
{
    tft_rmdir(tmp);
    free(tmp);
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"cmake --install puts the binary, SDK, plugins and tickflow.pc in the prefix",
         test_install},
        {"the installed tickflow loads its installed plugins by itself", test_finds_own_plugins},
        {"the example builds out of tree against the installed SDK only",
         test_build_example_out_of_tree},
        {"plugins describe scale prints its option table", test_describe_scale},
        {"check rejects scale without its required fields", test_check_rejects_missing_fields},
        {"scale x2 doubles `last` of the same seeded walk, other kinds untouched",
         test_scale_doubles_the_walk},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("integration_install", tests, init, cleanup);
}
