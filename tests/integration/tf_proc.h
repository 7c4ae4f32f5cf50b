/*
 * Helpers for integration tests that drive real `tickflow` processes: write a config, start
 * the runtime with its output in a log file, and read back the JSON records it printed.
 */
#ifndef TF_PROC_H
#define TF_PROC_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct tfp_proc {
    pid_t pid;
    char log[512]; /* stdout + stderr of the process */
} tfp_proc;

/* Writes `yaml` to <dir>/<name> and returns the path (static buffer per call: copy it). */
const char *tfp_write_config(const char *dir, const char *name, const char *yaml);
/* Starts `tickflow run <config>` with output to <dir>/<tag>.log. */
bool tfp_start(tfp_proc *p, const char *dir, const char *tag, const char *config);
/* Runs `tickflow args...` to completion (timeout_ms), output into `out_path`; returns the exit
 * code or -1 on timeout / signal. */
int tfp_run_cli(const char *const *args, const char *out_path, int timeout_ms);

/* Every JSON line (starting with '{') of the log, in order; new reference (array). */
json_t *tfp_records(const tfp_proc *p);
/* Number of JSON record lines in the log. */
size_t tfp_record_count(const tfp_proc *p);
/* Largest integer value of `field` over the records (-1 when none). */
long long tfp_max_field(const tfp_proc *p, const char *field);
/* Occurrences of `needle` in the log. */
int tfp_log_count(const tfp_proc *p, const char *needle);
/* Waits until the record count exceeds `n`; false on timeout. */
bool tfp_wait_records(const tfp_proc *p, size_t n, int timeout_ms);
/* Waits until `needle` appears in the log at least `times` times. */
bool tfp_wait_log(const tfp_proc *p, const char *needle, int times, int timeout_ms);

#endif
