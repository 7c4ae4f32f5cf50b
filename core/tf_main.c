/*
 * The `tickflow` command line: run, check, plugins list|describe|docs, --version, --help.
 * Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_config.h"
#include "tf_describe.h"
#include "tf_log.h"
#include "tf_metrics.h"
#include "tf_options.h"
#include "tf_plugin.h"
#include "tf_keys.h"
#include "tf_positions.h"
#include "tf_runtime.h"

#define EXIT_USAGE 2

typedef struct cli {
    const char **plugin_dirs; /* borrowed from argv */
    size_t n_plugin_dirs;
    const char **args; /* positional arguments, borrowed from argv */
    size_t n_args;
    bool json;
    bool dump;
    bool help;
    bool version;
} cli;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tickflow [--plugin-dir DIR]... COMMAND [ARGS]\n"
            "\n"
            "Runs real-time market-data pipelines described in YAML, built from plugins.\n"
            "\n"
            "commands:\n"
            "  run FILE|DIR...           run the pipelines until SIGINT/SIGTERM (SIGHUP reloads)\n"
            "  check [--dump] FILE|DIR...\n"
            "                            validate configuration without running anything;\n"
            "                            --dump prints the effective configuration (secrets\n"
            "                            masked) as JSON\n"
            "  plugins list [--json]     list the plugins found\n"
            "  plugins describe NAME [--json]\n"
            "                            show a plugin's options\n"
            "  plugins docs DIR          write Markdown pages for every plugin into DIR\n"
            "  positions open|close|list -c CONFIG ...\n"
            "                            arbitrage positions and their PnL (positions --help)\n"
            "  keys add|list|remove|rotate -c CONFIG ...\n"
            "                            encrypted exchange API keys (keys --help)\n"
            "\n"
            "options:\n"
            "  --plugin-dir DIR          also load plugins from DIR (searched first; repeatable)\n"
            "  --json                    machine-readable output for `plugins`\n"
            "  --version                 print the version and exit\n"
            "  -h, --help                print this help and exit\n"
            "\n"
            "Plugins are searched in --plugin-dir, then $TICKFLOW_PLUGIN_PATH (colon-separated),\n"
            "then %s.\n"
            "Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage.\n",
            tf_registry_builtin_dir());
}

static int parse_cli(int argc, char **argv, cli *c)
{
    c->plugin_dirs = calloc((size_t)argc, sizeof *c->plugin_dirs);
    c->args = calloc((size_t)argc, sizeof *c->args);
    if (!c->plugin_dirs || !c->args)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--plugin-dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "error: --plugin-dir needs a directory\n");
                return -1;
            }
            c->plugin_dirs[c->n_plugin_dirs++] = argv[++i];
        } else if (strncmp(a, "--plugin-dir=", 13) == 0) {
            c->plugin_dirs[c->n_plugin_dirs++] = a + 13;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strcmp(a, "--dump") == 0) {
            c->dump = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = true;
        } else if (strcmp(a, "--version") == 0) {
            c->version = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "error: unknown option '%s' (see tickflow --help)\n", a);
            return -1;
        } else {
            c->args[c->n_args++] = a;
        }
    }
    return 0;
}

/* Loads plugins; load failures are printed as warnings (a broken third-party file must not
 * take the built-in plugins down with it) and returned as a count. */
static tf_registry *load_plugins(const cli *c, int *failures)
{
    tf_registry *reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    if (!reg || !diag) {
        fprintf(stderr, "error: out of memory\n");
        tf_registry_destroy(reg);
        tf_diag_destroy(diag);
        return NULL;
    }
    *failures = tf_registry_load_default(reg, c->plugin_dirs, c->n_plugin_dirs, diag);
    for (size_t i = 0; i < tf_diag_count(diag); i++)
        fprintf(stderr, "warning: %s\n", tf_diag_message(diag, i));
    tf_diag_destroy(diag);
    return reg;
}

static json_t *stages_json(const tf_stage_config *stages, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:o}", "use", stages[i].plugin->desc->name,
                                             "with", tf_options_dump(stages[i].options)));
    return arr;
}

/* The effective configuration after interpolation and defaults; secret values are "****". */
static json_t *config_json(const tf_config *cfg)
{
    const tf_redis_settings *r = &cfg->redis;
    json_t *root = json_object();
    if (r->configured)
        json_object_set_new(root, "redis",
                            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "url", r->url ? r->url : "",
                                      "user", r->user ? "****" : "", "password",
                                      r->password ? "****" : "", "prefix",
                                      r->prefix ? r->prefix : "", "connect_timeout_ms",
                                      (json_int_t)r->connect_timeout_ms, "command_timeout_ms",
                                      (json_int_t)r->command_timeout_ms));
    json_object_set_new(
        root, "log",
        json_pack("{s:s, s:b}", "level", tf_log_level_name(cfg->log.level), "json", cfg->log.json));
    if (cfg->metrics.listen)
        json_object_set_new(root, "metrics", json_pack("{s:s}", "listen", cfg->metrics.listen));
    json_t *pipes = json_array();
    for (size_t i = 0; i < cfg->n_pipelines; i++) {
        const tf_pipeline_config *p = &cfg->pipelines[i];
        json_array_append_new(pipes,
                              json_pack("{s:s, s:I, s:b, s:I, s:o, s:o, s:o}", "name", p->name,
                                        "every_ms", (json_int_t)p->every_ms, "lease", p->lease,
                                        "lease_ttl_ms", (json_int_t)p->lease_ttl_ms, "sources",
                                        stages_json(p->sources, p->n_sources), "transforms",
                                        stages_json(p->transforms, p->n_transforms), "sinks",
                                        stages_json(p->sinks, p->n_sinks)));
    }
    json_object_set_new(root, "pipelines", pipes);
    return root;
}

static int cmd_check(const cli *c, const tf_registry *reg)
{
    if (c->n_args < 2) {
        fprintf(stderr, "error: check needs at least one FILE or DIR\n");
        return EXIT_USAGE;
    }
    tf_diag *diag = tf_diag_create();
    tf_config *cfg = NULL;
    int rc = tf_config_load(c->args + 1, c->n_args - 1, reg, diag, &cfg);
    if (rc != TF_OK) {
        tf_diag_print(diag, stderr);
        fprintf(stderr, "%zu error(s); nothing was started\n", tf_diag_count(diag));
        tf_diag_destroy(diag);
        return EXIT_USAGE;
    }
    if (c->dump) {
        json_t *j = config_json(cfg);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
        tf_config_destroy(cfg);
        tf_diag_destroy(diag);
        return 0;
    }
    printf("ok: %zu pipeline(s)", cfg->n_pipelines);
    for (size_t i = 0; i < cfg->n_pipelines; i++)
        printf("%s%s (every %lld ms%s)", i ? ", " : ": ", cfg->pipelines[i].name,
               (long long)cfg->pipelines[i].every_ms, cfg->pipelines[i].lease ? ", leased" : "");
    printf("\n");
    tf_config_destroy(cfg);
    tf_diag_destroy(diag);
    return 0;
}

static int cmd_run(const cli *c, const tf_registry *reg)
{
    if (c->n_args < 2) {
        fprintf(stderr, "error: run needs at least one FILE or DIR\n");
        return EXIT_USAGE;
    }
    return tf_runtime_run(reg, c->args + 1, c->n_args - 1);
}

static int plugins_list(const cli *c, const tf_registry *reg)
{
    if (!c->json) {
        tf_describe_list_text(stdout, reg);
        return 0;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < tf_registry_count(reg); i++)
        json_array_append_new(arr, tf_describe_json(tf_registry_at(reg, i)));
    json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(arr);
    return 0;
}

/* NAME, or KIND/NAME when a source and a sink share a name (e.g. redis). */
static int plugins_describe(const cli *c, const tf_registry *reg)
{
    if (c->n_args < 3) {
        fprintf(stderr, "error: plugins describe needs a plugin NAME (or KIND/NAME)\n");
        return EXIT_USAGE;
    }
    const char *want = c->args[2];
    const char *slash = strchr(want, '/');
    json_t *arr = json_array();
    size_t found = 0;
    for (size_t i = 0; i < tf_registry_count(reg); i++) {
        const tf_plugin *p = tf_registry_at(reg, i);
        const char *kind = tf_plugin_kind_name(p->desc->kind);
        bool match = slash ? (strncmp(want, kind, (size_t)(slash - want)) == 0 &&
                              kind[slash - want] == '\0' && strcmp(slash + 1, p->desc->name) == 0)
                           : strcmp(want, p->desc->name) == 0;
        if (!match)
            continue;
        if (c->json)
            json_array_append_new(arr, tf_describe_json(p));
        else
            tf_describe_text(stdout, p);
        if (!c->json)
            fputc('\n', stdout);
        found++;
    }
    if (c->json && found) {
        json_t *out = found == 1 ? json_array_get(arr, 0) : arr;
        json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    }
    json_decref(arr);
    if (!found) {
        fprintf(stderr, "error: no plugin named '%s' (see tickflow plugins list)\n", want);
        return 1;
    }
    return 0;
}

static int cmd_plugins(const cli *c, const tf_registry *reg, int load_failures)
{
    const char *sub = c->n_args >= 2 ? c->args[1] : NULL;
    if (sub && strcmp(sub, "list") == 0) {
        int rc = plugins_list(c, reg);
        return rc ? rc : (load_failures ? 1 : 0);
    }
    if (sub && strcmp(sub, "describe") == 0)
        return plugins_describe(c, reg);
    if (sub && strcmp(sub, "docs") == 0) {
        if (c->n_args < 3) {
            fprintf(stderr, "error: plugins docs needs an output DIR\n");
            return EXIT_USAGE;
        }
        return tf_describe_write_docs(reg, c->args[2], stderr) == 0 ? 0 : 1;
    }
    fprintf(stderr, "error: expected `plugins list`, `plugins describe NAME` or "
                    "`plugins docs DIR`\n");
    return EXIT_USAGE;
}

/* Index of a `positions` or `keys` command word, 0 if none. They take their own options (-c,
 * --symbol...), so only the global options before them go through parse_cli. */
static int positions_index(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plugin-dir") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-')
            continue;
        return strcmp(argv[i], "positions") == 0 || strcmp(argv[i], "keys") == 0 ? i : 0;
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* Before any thread exists, so every thread inherits the blocked set. */
    tf_runtime_block_signals();
    cli c = {0};
    int rc = EXIT_USAGE;
    tf_registry *reg = NULL;
    int positions = positions_index(argc, argv);
    if (parse_cli(positions ? positions : argc, argv, &c) != 0)
        goto out;
    if (positions && !c.help && !c.version) {
        int load_failures = 0;
        reg = load_plugins(&c, &load_failures);
        const char *const *sub = (const char *const *)(argv + positions);
        if (!reg)
            rc = 1;
        else if (strcmp(sub[0], "keys") == 0)
            rc = tf_keys_cli(reg, argc - positions, sub);
        else
            rc = tf_positions_cli(reg, argc - positions, sub);
        goto out;
    }
    if (c.help) {
        usage(stdout);
        rc = 0;
        goto out;
    }
    if (c.version) {
        printf("tickflow %s (plugin ABI %d.%d)\n", TF_VERSION_STRING, TF_ABI_MAJOR, TF_ABI_MINOR);
        rc = 0;
        goto out;
    }
    if (c.n_args == 0) {
        usage(stderr);
        goto out;
    }
    const char *cmd = c.args[0];
    if (strcmp(cmd, "run") && strcmp(cmd, "check") && strcmp(cmd, "plugins")) {
        fprintf(stderr, "error: unknown command '%s' (see tickflow --help)\n", cmd);
        goto out;
    }
    int load_failures = 0;
    reg = load_plugins(&c, &load_failures);
    if (!reg) {
        rc = 1;
        goto out;
    }
    if (strcmp(cmd, "run") == 0)
        rc = cmd_run(&c, reg);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(&c, reg);
    else
        rc = cmd_plugins(&c, reg, load_failures);
out:
    tf_registry_destroy(reg);
    tf_metrics_shutdown();
    tf_log_shutdown();
    free(c.plugin_dirs);
    free(c.args);
    return rc;
}
