/*
 * `tickflow keys add|list|remove|rotate` as an operator runs it, against a real redis-server
 * and a store file: exit codes, what is printed (never the secret, never the whole key), what
 * lands in Redis and in the file, rotation to a new master key, and every usage error exiting
 * 2. Commands run through the tickflow binary when it dispatches `keys`, else in a forked child
 * calling tf_keys_cli (the same code); `add` from stdin always runs in a child fed by a pipe.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_keys.h"
#include "tf_log.h"
#include "tf_proc.h"
#include "tf_test.h"

#define API_KEY    "AKIDqwer5678zxcv"
#define API_SECRET "topSECRETvalue/+=42"

static char *dir;
static char out[1024];
static char cfg_k1[1024];
static char cfg_k2[1024];
static char cfg_k3[1024];
static char cfg_file[1024];
static char store_path[1024];
static char prefix[64];
static int port;
static tf_registry *reg;
static bool binary_has_keys;

static const char *PIPELINE = "pipelines:\n"
                              "  - name: kimchi\n"
                              "    every: 1s\n"
                              "    sources: [{use: generate}]\n"
                              "    sinks: [{use: stdout}]\n";

/* In a child: stdout and stderr to `out`, stdin from `input` (NULL = /dev/null). */
static int run_in_child(const char *const *argv, int argc, const char *input)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(o, 2);
        dup2(fds[0], 0);
        close(fds[1]);
        int rc = tf_keys_cli(reg, argc, argv);
        fflush(NULL);
        _exit(rc);
    }
    close(fds[0]);
    if (input && write(fds[1], input, strlen(input)) != (ssize_t)strlen(input))
        fprintf(stderr, "short write to the child\n");
    close(fds[1]);
    int status = 0;
    if (pid < 0 || !tft_wait_exit(pid, 20000, &status)) {
        tft_kill_wait(pid);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `tickflow keys <args>` (NULL-terminated); returns the exit code. */
static int run_input(const char *const *args, const char *input)
{
    const char *argv[32] = {"keys"};
    int n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (binary_has_keys && !input)
        return tfp_run_cli(argv, out, 20000);
    return run_in_child(argv, n, input);
}

static int run(const char *const *args)
{
    return run_input(args, NULL);
}

static char *output(void)
{
    return tft_read_file(out, NULL);
}

static bool contains(const char *needle)
{
    char *text = output();
    bool found = text && strstr(text, needle);
    if (!found)
        fprintf(stderr, "\nexpected \"%s\" in output:\n%s\n", needle, text ? text : "(none)");
    free(text);
    return found;
}

static bool never_secret(void)
{
    bool clean = tft_file_count(out, "topSECRET") == 0 && tft_file_count(out, API_KEY) == 0;
    if (!clean)
        fprintf(stderr, "\nthe output shows the secret or the whole key\n");
    return clean;
}

static char *redis_get(const char *exchange, const char *name)
{
    redisReply *r = tft_redis_cmd(port, "GET %s:keys:%s:%s", prefix, exchange, name);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r)
        freeReplyObject(r);
    return v;
}

static void write_config(char *path, const char *file, const char *keys)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "redis: {url: \"redis://127.0.0.1:%d\", prefix: %s}\n%s%s", port,
             prefix, keys, PIPELINE);
    snprintf(path, 1024, "%s", tfp_write_config(dir, file, yaml));
}

static int suite_init(void)
{
    dir = tft_mkdtemp();
    port = tft_shared_redis_port();
    snprintf(prefix, sizeof prefix, "tkc%ld", (long)getpid());
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(store_path, sizeof store_path, "%s/store/keys.json", dir);
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/store", dir);
    mkdir(sub, 0700);
    setenv("TKC_K1", "1111111111111111111111111111111111111111111111111111111111111111", 1);
    setenv("TKC_K2", "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=", 1);
    setenv("TKC_K3", "3333333333333333333333333333333333333333333333333333333333333333", 1);
    write_config(cfg_k1, "k1.yaml", "keys: {master_key: \"${TKC_K1}\"}\n");
    write_config(cfg_k2, "k2.yaml",
                 "keys:\n  master_key: ${TKC_K2}\n  master_key_id: k2\n"
                 "  old_master_keys: [{id: k1, key: \"${TKC_K1}\"}]\n");
    write_config(cfg_k3, "k3.yaml", "keys: {master_key: \"${TKC_K3}\", master_key_id: k3}\n");
    char keys[1200];
    snprintf(keys, sizeof keys, "keys: {store: file, file: \"%s\", master_key: \"${TKC_K1}\"}\n",
             store_path);
    write_config(cfg_file, "file.yaml", keys);
    reg = tf_registry_create();
    tf_diag *diag = tf_diag_create();
    tf_registry_load_dir(reg, tft_plugin_dir(), diag);
    tf_diag_destroy(diag);
    const char *help[] = {"keys", "--help", NULL};
    binary_has_keys =
        tfp_run_cli(help, out, 20000) == 0 && tft_file_count(out, "usage: tickflow keys") == 1;
    /* The binary dispatches `keys`: a suite that could only run the in-process fallback would
     * not be testing the command users run. */
    if (!binary_has_keys)
        fprintf(stderr, "`tickflow keys --help` did not answer: the binary lacks `keys`\n");
    return dir && port > 0 && binary_has_keys ? 0 : -1;
}

static int suite_cleanup(void)
{
    tf_registry_destroy(reg);
    tft_rmdir(dir);
    free(dir);
    tf_log_shutdown();
    return 0;
}

static void test_add_list_rotate_remove(void)
{
    setenv("TICKFLOW_NEW_API_KEY", API_KEY, 1);
    setenv("TICKFLOW_NEW_API_SECRET", API_SECRET, 1);
    const char *add[] = {"add", "-c", cfg_k1, "--exchange", "binance", "--name", "main", NULL};
    CU_ASSERT_EQUAL(run(add), 0);
    CU_ASSERT(contains("stored binance/main (key AKID****, master key id k1)"));
    CU_ASSERT(never_secret());
    const char *add2[] = {"add", "-c", cfg_k1, "--exchange", "bithumb", "--name", "trade", NULL};
    CU_ASSERT_EQUAL(run(add2), 0);
    unsetenv("TICKFLOW_NEW_API_KEY");
    unsetenv("TICKFLOW_NEW_API_SECRET");
    char *stored = redis_get("binance", "main");
    CU_ASSERT_PTR_NOT_NULL_FATAL(stored);
    CU_ASSERT_PTR_NOT_NULL(strstr(stored, "{\"v\":1,\"kid\":\"k1\",\"nonce\":"));
    CU_ASSERT_PTR_NULL(strstr(stored, "topSECRET"));
    CU_ASSERT_PTR_NULL(strstr(stored, "AKID"));
    free(stored);

    const char *list[] = {"list", "-c", cfg_k1, NULL};
    CU_ASSERT_EQUAL(run(list), 0);
    CU_ASSERT(contains("binance          main             k1       AKID****"));
    CU_ASSERT(contains("bithumb          trade            k1       AKID****"));
    CU_ASSERT(never_secret());
    const char *list_json[] = {"list", "-c", cfg_k1, "--json", NULL};
    CU_ASSERT_EQUAL(run(list_json), 0);
    CU_ASSERT(contains("\"exchange\": \"binance\",\n    \"name\": \"main\",\n    \"kid\": \"k1\","
                       "\n    \"hint\": \"AKID****\""));
    CU_ASSERT(never_secret());

    /* Rotation to k2; a config knowing only k3 can read nothing and says which entries. */
    const char *rotate[] = {"rotate", "-c", cfg_k2, NULL};
    CU_ASSERT_EQUAL(run(rotate), 0);
    CU_ASSERT(contains("rotated 2 entries to master key id k2, 0 already current, 0 failed"));
    CU_ASSERT_EQUAL(run(rotate), 0);
    CU_ASSERT(contains("rotated 0 entries to master key id k2, 2 already current, 0 failed"));
    const char *list2[] = {"list", "-c", cfg_k2, NULL};
    CU_ASSERT_EQUAL(run(list2), 0);
    CU_ASSERT(contains("binance          main             k2       AKID****"));
    /* k1 alone can no longer read them. */
    CU_ASSERT_EQUAL(run(list), 1);
    CU_ASSERT(contains("error: binance/main: unknown master key id k2 (known: k1)"));
    const char *rotate3[] = {"rotate", "-c", cfg_k3, NULL};
    CU_ASSERT_EQUAL(run(rotate3), 1);
    CU_ASSERT(contains("error: bithumb/trade: unknown master key id k2 (known: k3)"));
    CU_ASSERT(contains("rotated 0 entries to master key id k3, 0 already current, 2 failed"));

    /* A tampered entry is named, never printed as garbage. */
    redisReply *r = tft_redis_cmd(port, "SET %s:keys:binance:copy %s", prefix, "{\"v\":1}");
    freeReplyObject(r);
    char *moved = redis_get("bithumb", "trade");
    r = tft_redis_cmd(port, "SET %s:keys:binance:moved %s", prefix, moved);
    freeReplyObject(r);
    free(moved);
    CU_ASSERT_EQUAL(run(list2), 1);
    CU_ASSERT(contains("error: binance/moved: authentication failed: wrong master key or "
                       "tampered entry"));
    CU_ASSERT(
        contains("error: binance/copy: truncated entry: expected a master key id in \"kid\""));

    const char *rm[] = {"remove", "-c", cfg_k2, "--exchange", "binance", "--name", "main", NULL};
    CU_ASSERT_EQUAL(run(rm), 0);
    CU_ASSERT(contains("removed binance/main"));
    CU_ASSERT_PTR_NULL(redis_get("binance", "main"));
    CU_ASSERT_EQUAL(run(rm), 1);
    CU_ASSERT(contains("no API key stored as binance/main"));
}

static void test_file_store_from_stdin(void)
{
    const char *add[] = {"add", "-c", cfg_file, "--exchange", "binance", "--name", "main", NULL};
    CU_ASSERT_EQUAL(run_input(add, API_KEY "\n" API_SECRET "\n"), 0);
    CU_ASSERT(contains("stored binance/main (key AKID****, master key id k1)"));
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(store_path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(tft_file_count(store_path, "topSECRET"), 0);
    CU_ASSERT_EQUAL(tft_file_count(store_path, "AKID"), 0);
    const char *list[] = {"list", "-c", cfg_file, NULL};
    CU_ASSERT_EQUAL(run(list), 0);
    CU_ASSERT(contains("binance          main             k1       AKID****"));
    CU_ASSERT(never_secret());
    /* One line only: the secret is missing. */
    CU_ASSERT_EQUAL(run_input(add, API_KEY "\n"), 2);
    CU_ASSERT(contains("expected the API key and the secret as two lines on stdin"));
    const char *rm[] = {"remove", "-c", cfg_file, "--exchange", "binance", "--name", "main", NULL};
    CU_ASSERT_EQUAL(run(rm), 0);
    CU_ASSERT_EQUAL(tft_file_count(store_path, "binance"), 0);
}

static void test_usage_errors(void)
{
    const char *none[] = {NULL};
    CU_ASSERT_EQUAL(run(none), 2);
    CU_ASSERT(contains("expected a subcommand add, list, remove or rotate, found nothing"));
    const char *argv_secret[] = {"add",    "-c",   cfg_k1,  "--exchange", "binance",
                                 "--name", "main", "mykey", NULL};
    CU_ASSERT_EQUAL(run(argv_secret), 2);
    CU_ASSERT(contains("API keys are never taken from arguments"));
    const char *no_name[] = {"add", "-c", cfg_k1, "--exchange", "binance", NULL};
    CU_ASSERT_EQUAL(run(no_name), 2);
    CU_ASSERT(contains("--name: expected a key name such as main, found no --name"));
    const char *bad_ex[] = {"remove", "-c", cfg_k1, "--exchange", "Bin:ance", "--name", "x", NULL};
    CU_ASSERT_EQUAL(run(bad_ex), 2);
    CU_ASSERT(contains("exchange: expected 1 to 64 characters among a-z, 0-9, _ and -"));
    const char *add[] = {"add", "-c", cfg_k1, "--exchange", "binance", "--name", "main", NULL};
    setenv("TICKFLOW_NEW_API_KEY", API_KEY, 1);
    CU_ASSERT_EQUAL(run(add), 2);
    CU_ASSERT(contains("found only TICKFLOW_NEW_API_KEY"));
    unsetenv("TICKFLOW_NEW_API_KEY");
    char plain[1024];
    snprintf(plain, sizeof plain, "%s", tfp_write_config(dir, "plain.yaml", PIPELINE));
    const char *list[] = {"list", "-c", plain, NULL};
    CU_ASSERT_EQUAL(run(list), 2);
    CU_ASSERT(contains("expected a keys: section (store, master_key)"));
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"add, list, rotate, remove (Redis)", test_add_list_rotate_remove},
        {"file store, add from stdin", test_file_store_from_stdin},
        {"usage errors exit 2", test_usage_errors},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("keys CLI", tests, suite_init, suite_cleanup);
}
