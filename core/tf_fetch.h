/*
 * What every source plugin repeats, offered through tf_host: a JSON GET that reports transport
 * failures, empty and invalid bodies with the standard messages, the generic non-2xx report,
 * the payload freshness check and the base_url / positive duration option checks.
 */
#ifndef TF_FETCH_H
#define TF_FETCH_H

#include "tf_common.h"

/* `h` is the host table the messages go through (report_error, log, http_*). See host.h
 * fetch_json: the caller frees f->root and f->response on every path. */
int tf_fetch_json(const tf_host *h, tf_instance *self, const tf_http_request *req, tf_fetch *f);
/* See host.h fetch_http_error. */
int tf_fetch_http_error(const tf_host *h, tf_instance *self, const tf_fetch *f,
                        const char *expected_status);
/* See host.h check_fresh. */
int tf_fetch_check_fresh(const tf_host *h, tf_instance *self, const char *context,
                         const char *field, int64_t ts, int64_t received_ms, int64_t max_age_ms);
/* See host.h base_url: *out is owned by the caller. */
int tf_fetch_base_url(const tf_host *h, tf_instance *self, const char *option, const char *url,
                      size_t max_len, char **out);
/* See host.h opt_positive_duration. */
int tf_fetch_positive_duration(const tf_host *h, tf_instance *self, const tf_options *o,
                               const char *name, int64_t *out);

#endif
