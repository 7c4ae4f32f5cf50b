/*
 * tf_config_diff: field-by-field comparison of loaded configurations, for reload (tf_runtime).
 * Every field a running pipeline or its instances read is compared; a field added to the
 * configuration structures must be added here too, or a reload would not restart for it.
 */
#include "tf_config_diff.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tf_options.h"

/* Every field of these structures is compared below. A field added to one of them usually
 * changes its size and stops the build here: compare the new field (or write here why a reload
 * may ignore it), then update the size. LP64 sizes (Debian amd64, arm64). */
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
_Static_assert(sizeof(tf_config) == 224,
               "new runtime section: decide in tf_config_diff_runtime() whether it restarts "
               "pipelines");
_Static_assert(sizeof(tf_redis_settings) == 80, "new tf_redis_settings field: see redis_same()");
_Static_assert(sizeof(tf_http_settings) == 80, "new tf_http_settings field: see http_same()");
_Static_assert(sizeof(tf_http_host_limit) == 24,
               "new tf_http_host_limit field: see host_limit_same()");
_Static_assert(sizeof(tf_keys_settings) == 32, "new tf_keys_settings field: see keys_same()");
_Static_assert(sizeof(tf_master_key) == 40, "new tf_master_key field: see keys_same()");
_Static_assert(sizeof(tf_pipeline_config) == 96,
               "new tf_pipeline_config field: see tf_config_diff_pipeline()");
_Static_assert(sizeof(tf_stage_config) == 24, "new tf_stage_config field: see first_stage_diff()");
#endif

static bool str_same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool redis_same(const tf_redis_settings *a, const tf_redis_settings *b)
{
    return a->configured == b->configured && str_same(a->url, b->url) &&
           str_same(a->host, b->host) && a->port == b->port && a->db == b->db &&
           str_same(a->user, b->user) && str_same(a->password, b->password) &&
           str_same(a->prefix, b->prefix) && a->connect_timeout_ms == b->connect_timeout_ms &&
           a->command_timeout_ms == b->command_timeout_ms;
}

static bool host_limit_same(const tf_http_host_limit *a, const tf_http_host_limit *b)
{
    return str_same(a->host, b->host) && a->rate == b->rate && a->burst == b->burst;
}

static bool http_same(const tf_http_settings *a, const tf_http_settings *b)
{
    if (!str_same(a->user_agent, b->user_agent) || a->connect_timeout_ms != b->connect_timeout_ms ||
        a->timeout_ms != b->timeout_ms || a->max_body_bytes != b->max_body_bytes ||
        a->breaker_failures != b->breaker_failures || a->breaker_base_ms != b->breaker_base_ms ||
        a->breaker_max_ms != b->breaker_max_ms || a->retry_after_max_ms != b->retry_after_max_ms ||
        a->n_hosts != b->n_hosts)
        return false;
    for (size_t i = 0; i < a->n_hosts; i++)
        if (!host_limit_same(&a->hosts[i], &b->hosts[i]))
            return false;
    return true;
}

static bool keys_same(const tf_keys_settings *a, const tf_keys_settings *b)
{
    if (a->configured != b->configured || a->store != b->store || !str_same(a->file, b->file) ||
        a->n_masters != b->n_masters)
        return false;
    for (size_t i = 0; i < a->n_masters; i++) {
        const tf_master_key *x = &a->masters[i], *y = &b->masters[i];
        if (!str_same(x->id, y->id) || memcmp(x->bytes, y->bytes, sizeof x->bytes) != 0)
            return false;
    }
    return true;
}

const char *tf_config_diff_runtime(const tf_config *cur, const tf_config *next)
{
    if (!redis_same(&cur->redis, &next->redis))
        return "redis";
    if (!http_same(&cur->http, &next->http))
        return "http";
    if (!keys_same(&cur->keys, &next->keys))
        return "keys";
    return NULL;
}

/* Index of the first stage that differs (n when none does; n_a when only the counts do). */
static size_t first_stage_diff(const tf_stage_config *a, size_t n_a, const tf_stage_config *b,
                               size_t n_b)
{
    size_t n = n_a < n_b ? n_a : n_b;
    for (size_t i = 0; i < n; i++)
        if (a[i].plugin != b[i].plugin || !tf_options_equal(a[i].options, b[i].options))
            return i;
    return n_a == n_b ? SIZE_MAX : n;
}

static bool stages_differ(const char *kind, const tf_stage_config *a, size_t n_a,
                          const tf_stage_config *b, size_t n_b, char *why, size_t why_size)
{
    size_t i = first_stage_diff(a, n_a, b, n_b);
    if (i == SIZE_MAX)
        return false;
    if (i < n_a && i < n_b)
        snprintf(why, why_size, "%s[%zu]", kind, i);
    else
        snprintf(why, why_size, "%s", kind);
    return true;
}

bool tf_config_diff_pipeline(const tf_pipeline_config *cur, const tf_pipeline_config *next,
                             char *why, size_t why_size)
{
    if (why_size)
        why[0] = '\0';
    if (cur->every_ms != next->every_ms) {
        snprintf(why, why_size, "every");
        return true;
    }
    if (cur->lease != next->lease || cur->lease_ttl_ms != next->lease_ttl_ms) {
        snprintf(why, why_size, "lease");
        return true;
    }
    return stages_differ("sources", cur->sources, cur->n_sources, next->sources, next->n_sources,
                         why, why_size) ||
           stages_differ("transforms", cur->transforms, cur->n_transforms, next->transforms,
                         next->n_transforms, why, why_size) ||
           stages_differ("sinks", cur->sinks, cur->n_sinks, next->sinks, next->n_sinks, why,
                         why_size);
}
