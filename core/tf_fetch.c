/*
 * Source helpers behind tf_host: fetch_json, fetch_http_error, check_fresh, base_url and
 * opt_positive_duration. The messages are the ones the exchange sources printed before they
 * shared this code; tests assert some of them.
 */
#include "tf_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_FETCH_FUTURE_SLACK_MS 5000 /* a payload clock may run ahead of ours by this much */

static void report_no_response(const tf_host *h, tf_instance *self, const char *ctx, int rc,
                               int64_t timeout_ms)
{
    switch (rc) {
    case TF_ERATELIMIT:
        h->report_error(self, rc,
                        "%s: no request made: rate limited (an earlier Retry-After from this host "
                        "is in force, or no rate-limit token before the timeout)",
                        ctx);
        break;
    case TF_ECIRCUIT:
        h->report_error(self, rc,
                        "%s: no request made: the circuit breaker for this host is open after "
                        "repeated failures",
                        ctx);
        break;
    case TF_ETIMEOUT:
        h->report_error(self, rc, "%s: expected a response within %lld ms, found none", ctx,
                        (long long)timeout_ms);
        break;
    case TF_ESTOPPED:
        break; /* shutting down: not an error worth counting */
    case TF_ECONNECT:
        h->report_error(self, rc, "%s: expected a connection, found none (DNS, TCP or TLS)", ctx);
        break;
    case TF_ETOOLARGE:
        h->report_error(self, rc, "%s: response larger than the HTTP size cap", ctx);
        break;
    default:
        h->report_error(self, rc, "%s: request failed (status %d)", ctx, rc);
        break;
    }
}

static bool reports_no_response(unsigned flags, int rc)
{
    if (flags & TF_FETCH_QUIET)
        return false;
    if ((flags & TF_FETCH_OWN_LIMITS) && (rc == TF_ERATELIMIT || rc == TF_ECIRCUIT))
        return false;
    return true;
}

/* A 2xx body: JSON or a reported TF_EPARSE. */
static int parse_ok_body(const tf_host *h, tf_instance *self, const char *body, tf_fetch *f)
{
    bool quiet = (f->flags & TF_FETCH_QUIET) != 0;
    if (f->body_len == 0) {
        if (!quiet)
            h->report_error(self, TF_EPARSE, "%s: expected %s, found an empty body", f->context,
                            f->expected ? f->expected : "JSON");
        return TF_EPARSE;
    }
    f->root = h->json_parse(body, f->body_len, f->error, sizeof f->error);
    if (f->root)
        return TF_OK;
    if (!quiet) {
        const char *type = h->http_header(f->response, "Content-Type");
        h->report_error(self, TF_EPARSE, "%s: expected JSON, found invalid JSON (%s): %s",
                        f->context, type ? type : "no Content-Type", f->error);
    }
    return TF_EPARSE;
}

int tf_fetch_json(const tf_host *h, tf_instance *self, const tf_http_request *req, tf_fetch *f)
{
    f->status = 0;
    f->body_len = 0;
    f->root = NULL;
    f->response = NULL;
    f->error[0] = '\0';
    bool post = f->struct_size >= offsetof(tf_fetch, post_len) + sizeof f->post_len &&
                f->post_body && TF_HOST_HAS(h, http_post);
    int rc = post ? h->http_post(self, req, f->post_body, f->post_len, &f->response)
                  : h->http_get(self, req, &f->response);
    f->received_ms = h->now_ms();
    if (rc != TF_OK) {
        if (reports_no_response(f->flags, rc))
            report_no_response(h, self, f->context, rc, req->timeout_ms);
        return rc;
    }
    f->status = h->http_status(f->response);
    const char *body = h->http_body(f->response, &f->body_len);
    if (f->status >= 200 && f->status <= 299)
        return parse_ok_body(h, self, body, f);
    /* Parsed only so the caller can quote its venue's error object. */
    f->root = f->body_len ? h->json_parse(body, f->body_len, f->error, sizeof f->error) : NULL;
    return f->status == 429 || f->status == 418 ? TF_ERATELIMIT : TF_EHTTP;
}

/* The <title> of an HTML error page (a CDN's 502 names the host and the error), so the log
 * says who answered instead of just "not JSON". "" when there is none. */
static void html_title(const char *body, char *out, size_t size)
{
    out[0] = '\0';
    const char *start = body ? strstr(body, "<title>") : NULL;
    const char *end = start ? strstr(start, "</title>") : NULL;
    if (!end)
        return;
    start += strlen("<title>");
    size_t n = (size_t)(end - start) < size - 1 ? (size_t)(end - start) : size - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

int tf_fetch_http_error(const tf_host *h, tf_instance *self, const tf_fetch *f,
                        const char *expected_status)
{
    if (f->status == 429 || f->status == 418) {
        const char *retry = h->http_header(f->response, "Retry-After");
        h->report_error(self, TF_ERATELIMIT,
                        "%s: rate limited: HTTP %ld, %s%s%s; the core sends no request to this "
                        "host until then",
                        f->context, f->status,
                        retry ? "Retry-After " : "no Retry-After (default backoff)",
                        retry ? retry : "", retry ? " s" : "");
        return TF_ERATELIMIT;
    }
    size_t len = 0;
    const char *body = h->http_body(f->response, &len);
    const char *type = h->http_header(f->response, "Content-Type");
    char title[96];
    html_title(body, title, sizeof title);
    h->report_error(self, TF_EHTTP,
                    "%s: expected HTTP %s with JSON, found HTTP %ld (%s, %zu bytes%s%s%s)",
                    f->context, expected_status, f->status, type ? type : "no Content-Type", len,
                    title[0] ? ", title \"" : "", title, title[0] ? "\"" : "");
    return TF_EHTTP;
}

int tf_fetch_check_fresh(const tf_host *h, tf_instance *self, const char *context,
                         const char *field, int64_t ts, int64_t received_ms, int64_t max_age_ms)
{
    if (ts < received_ms - max_age_ms) {
        h->report_error(self, TF_EVALUE,
                        "%s: %s: stale: expected at most %lld ms (max_age) before receipt, found "
                        "%lld ms (%lld)",
                        context, field, (long long)max_age_ms, (long long)(received_ms - ts),
                        (long long)ts);
        return TF_EVALUE;
    }
    if (ts > received_ms + TF_FETCH_FUTURE_SLACK_MS) {
        h->report_error(
            self, TF_EVALUE, "%s: %s: expected at most %d ms in the future, found %lld ms (%lld)",
            context, field, TF_FETCH_FUTURE_SLACK_MS, (long long)(ts - received_ms), (long long)ts);
        return TF_EVALUE;
    }
    return TF_OK;
}

static bool has_host(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncmp(url, scheme, n) == 0 && url[n] != '\0' && url[n] != '/';
}

int tf_fetch_base_url(const tf_host *h, tf_instance *self, const char *option, const char *url,
                      size_t max_len, char **out)
{
    if (!url || (!has_host(url, "http://") && !has_host(url, "https://"))) {
        h->log(self, TF_LOG_ERROR,
               "%s: expected an http:// or https:// URL with a host, found \"%s\"", option,
               url ? url : "");
        return TF_EINVAL;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len > max_len) {
        h->log(self, TF_LOG_ERROR, "%s: expected at most %zu characters, found %zu", option,
               max_len, len);
        return TF_EINVAL;
    }
    *out = strndup(url, len);
    return *out ? TF_OK : TF_ENOMEM;
}

int tf_fetch_positive_duration(const tf_host *h, tf_instance *self, const tf_options *o,
                               const char *name, int64_t *out)
{
    *out = h->opt_duration_ms(o, name);
    if (*out > 0)
        return TF_OK;
    h->log(self, TF_LOG_ERROR, "%s: expected a duration > 0 such as 5s, found %lld ms", name,
           (long long)*out);
    return TF_EINVAL;
}
