/* Helpers for driving real tickflow processes; see tf_proc.h. */
#include "tf_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tf_test.h"

const char *tfp_write_config(const char *dir, const char *name, const char *yaml)
{
    static char path[8][1024];
    static int slot;
    char *out = path[slot++ % 8];
    snprintf(out, sizeof path[0], "%s/%s", dir, name);
    if (tft_write_file(out, yaml) != 0)
        return NULL;
    return out;
}

bool tfp_start(tfp_proc *p, const char *dir, const char *tag, const char *config)
{
    snprintf(p->log, sizeof p->log, "%s/%s.log", dir, tag);
    const char *argv[] = {tft_bin("tickflow"), "run", config, NULL};
    p->pid = tft_spawn(argv, p->log, NULL);
    return p->pid > 0;
}

int tfp_run_cli(const char *const *args, const char *out_path, int timeout_ms)
{
    const char *argv[32] = {tft_bin("tickflow")};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    remove(out_path);
    pid_t pid = tft_spawn(argv, out_path, NULL);
    int status;
    if (pid < 0 || !tft_wait_exit(pid, timeout_ms, &status)) {
        tft_kill_wait(pid);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json_t *tfp_records(const tfp_proc *p)
{
    json_t *out = json_array();
    char *text = tft_read_file(p->log, NULL);
    if (!text)
        return out;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != '{')
            continue;
        json_t *rec = json_loads(line, 0, NULL);
        if (rec)
            json_array_append_new(out, rec);
    }
    free(text);
    return out;
}

size_t tfp_record_count(const tfp_proc *p)
{
    json_t *recs = tfp_records(p);
    size_t n = json_array_size(recs);
    json_decref(recs);
    return n;
}

long long tfp_max_field(const tfp_proc *p, const char *field)
{
    json_t *recs = tfp_records(p);
    long long best = -1;
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r)
    {
        json_t *v = json_object_get(r, field);
        if (json_is_integer(v) && json_integer_value(v) > best)
            best = json_integer_value(v);
    }
    json_decref(recs);
    return best;
}

int tfp_log_count(const tfp_proc *p, const char *needle)
{
    return tft_file_count(p->log, needle);
}

typedef struct wait_arg {
    const tfp_proc *p;
    size_t n;
    const char *needle;
    int times;
} wait_arg;

static bool more_records(void *arg)
{
    wait_arg *w = arg;
    return tfp_record_count(w->p) > w->n;
}

static bool log_has(void *arg)
{
    wait_arg *w = arg;
    return tfp_log_count(w->p, w->needle) >= w->times;
}

bool tfp_wait_records(const tfp_proc *p, size_t n, int timeout_ms)
{
    wait_arg w = {.p = p, .n = n};
    return tft_wait_until(more_records, &w, timeout_ms);
}

bool tfp_wait_log(const tfp_proc *p, const char *needle, int times, int timeout_ms)
{
    wait_arg w = {.p = p, .needle = needle, .times = times};
    return tft_wait_until(log_has, &w, timeout_ms);
}
