/*
 * The fuzz harnesses' view of the host: the real host table (tf_host_table) with the services
 * that would leave the process replaced by ones that answer from the fuzz input. Everything a
 * plugin does with the answer (JSON parsing, numbers, records, reporting) runs the real code.
 *
 * The input is split into parts at every "\n@@\n"; the i-th HTTP request or Redis value of a
 * run gets part i (modulo their count). A part that starts with "HTTP <status>\n" is answered
 * with that status, then the "Name: value" header lines up to an empty line; any other part is
 * a 200 with Content-Type application/json whose body is the whole part. Redis: MGET answers
 * one part per key (an empty part is a missing key); SCAN finds two keys per pattern.
 */
#ifndef FZ_HOST_H
#define FZ_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "tf_common.h"
#include "tf_config.h"

/* The fixtures' reference instant (tests/fixtures/exchanges/README.md): the fake host's wall
 * clock, so the timestamps in the seeds are fresh and a run does not depend on today's date. */
#define FZ_NOW_MS 1795428930000LL

/* The fake host table (built on first use). */
const tf_host *fz_host(void);
/* The input of the run that starts now (borrowed until the next call). */
void fz_set_input(const uint8_t *data, size_t size);
/* A host instance (`self`) for `desc`, with its options validated from `with` (a YAML flow
 * mapping, through the real YAML loader and option table; ${VAR} interpolated) into *options.
 * The instance wraps a stand-in descriptor whose callbacks do nothing, so the plugin itself is
 * initialised only by the harness, with whichever host table it chooses. `redis` may be NULL
 * (no redis: section). Aborts, after saying why, when the options are refused. */
tf_instance *fz_instance(const tf_plugin_descriptor *desc, const char *with,
                         const tf_redis_settings *redis, tf_options **options);
/* Called once by every harness: logs errors only (a fuzzer reports thousands of bad payloads a
 * second), and sets FZ_KEY for options that need a secret through ${FZ_KEY}. */
void fz_setup(void);

#endif
