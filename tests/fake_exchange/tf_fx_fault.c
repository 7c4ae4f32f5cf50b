/* tf_fx_fault: fault table, fault specs and fault replies. */
#include "tf_fx_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_fx_util.h"

static const char *const tf_fx_mode_names[TF_FX_FAULT_MODE_COUNT] = {
    [TF_FX_FAULT_NONE] = "none",
    [TF_FX_FAULT_500] = "500",
    [TF_FX_FAULT_503] = "503",
    [TF_FX_FAULT_429] = "429",
    [TF_FX_FAULT_418] = "418",
    [TF_FX_FAULT_DELAY] = "delay",
    [TF_FX_FAULT_TRUNCATE] = "truncate",
    [TF_FX_FAULT_HTML] = "html",
    [TF_FX_FAULT_WRONG_TYPES] = "wrong_types",
    [TF_FX_FAULT_ERROR_OBJECT] = "error_object",
    [TF_FX_FAULT_EMPTY] = "empty",
    [TF_FX_FAULT_ZERO] = "zero",
};

/* The Cloudflare 502 page of bad_html_cloudflare_502.html, with the host and time filled in. */
#define TF_FX_HTML_FMT                                                                             \
    "<!DOCTYPE html>\n"                                                                            \
    "<html class=\"no-js\" lang=\"en-US\">\n"                                                      \
    "<head>\n"                                                                                     \
    "<title>%s | 502: Bad gateway</title>\n"                                                       \
    "<meta charset=\"UTF-8\" />\n"                                                                 \
    "<meta name=\"robots\" content=\"noindex, nofollow\" />\n"                                     \
    "</head>\n"                                                                                    \
    "<body>\n"                                                                                     \
    "<div id=\"cf-wrapper\">\n"                                                                    \
    "  <div id=\"cf-error-details\" class=\"p-0\">\n"                                              \
    "    <header class=\"mx-auto pt-10 lg:pt-6 lg:px-8 w-240 lg:w-full mb-8\">\n"                  \
    "      <h1><span class=\"inline-block\">Bad gateway</span>\n"                                  \
    "        <span class=\"code-label\">Error code 502</span></h1>\n"                              \
    "      <div>Visit <a href=\"https://www.cloudflare.com/5xx-error-landing\">cloudflare.com</a>" \
    " for more information.</div>\n"                                                               \
    "      <div class=\"mt-3\">%s %s UTC</div>\n"                                                  \
    "    </header>\n"                                                                              \
    "    <p class=\"text-13\"><span class=\"cf-footer-item\">Cloudflare Ray ID: "                  \
    "<strong class=\"font-semibold\">8e4f2a7c1b9d03e1</strong></span>\n"                           \
    "      <span class=\"cf-footer-item\">Performance &amp; security by Cloudflare</span></p>\n"   \
    "  </div>\n"                                                                                   \
    "</div>\n"                                                                                     \
    "</body>\n"                                                                                    \
    "</html>\n"

const char *tf_fx_fault_mode_name(enum tf_fx_fault_mode mode)
{
    return (mode < TF_FX_FAULT_MODE_COUNT) ? tf_fx_mode_names[mode] : "?";
}

int tf_fx_fault_mode_parse(const char *text, enum tf_fx_fault_mode *mode)
{
    for (int i = 0; text != NULL && i < TF_FX_FAULT_MODE_COUNT; i++) {
        if (strcmp(text, tf_fx_mode_names[i]) == 0) {
            *mode = (enum tf_fx_fault_mode)i;
            return 0;
        }
    }
    return -1;
}

void tf_fx_faults_set(struct tf_fx_faults *t, int ep, const struct tf_fx_fault *f)
{
    struct tf_fx_fault clean = *f;
    if (clean.mode == TF_FX_FAULT_NONE) {
        memset(&clean, 0, sizeof(clean));
    }
    if (ep >= 0 && ep < TF_FX_EP_COUNT) {
        t->ep[ep] = clean;
        return;
    }
    memset(t, 0, sizeof(*t));
    t->all = clean;
}

struct tf_fx_fault tf_fx_faults_take(struct tf_fx_faults *t, enum tf_fx_ep ep)
{
    struct tf_fx_fault *f = t->ep[ep].mode != TF_FX_FAULT_NONE ? &t->ep[ep] : &t->all;
    struct tf_fx_fault out = *f;
    if (f->mode != TF_FX_FAULT_NONE && f->remaining > 0) {
        f->remaining--;
        if (f->remaining == 0) {
            memset(f, 0, sizeof(*f));
        }
    }
    return out;
}

static int tf_fx_parse_arg(const char *text, int *out)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 0 || v > 3600000) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int tf_fx_fault_parse_spec(const char *spec, int *ep, struct tf_fx_fault *f, char *err,
                           size_t errlen)
{
    char buf[128];
    int len = snprintf(buf, sizeof(buf), "%s", spec);
    char *eq = strchr(buf, '=');
    if (len < 0 || (size_t)len >= sizeof(buf) || eq == NULL) {
        snprintf(err, errlen, "--fault: expected ENDPOINT=MODE[:ARG], got \"%s\"", spec);
        return -1;
    }
    *eq = '\0';
    char *mode_text = eq + 1;
    char *colon = strchr(mode_text, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    *ep = strcmp(buf, "*") == 0 ? -1 : tf_fx_ep_find(buf);
    if (*ep < 0 && strcmp(buf, "*") != 0) {
        snprintf(err, errlen, "--fault: unknown endpoint id \"%s\" (see --help)", buf);
        return -1;
    }
    memset(f, 0, sizeof(*f));
    f->retry_after = TF_FX_DEFAULT_RETRY_AFTER;
    f->delay_ms = TF_FX_DEFAULT_DELAY_MS;
    if (tf_fx_fault_mode_parse(mode_text, &f->mode) != 0) {
        snprintf(err, errlen, "--fault: unknown mode \"%s\" (see --help)", mode_text);
        return -1;
    }
    if (colon == NULL) {
        return 0;
    }
    int arg = 0;
    int takes_arg =
        f->mode == TF_FX_FAULT_429 || f->mode == TF_FX_FAULT_418 || f->mode == TF_FX_FAULT_DELAY;
    if (!takes_arg || tf_fx_parse_arg(colon + 1, &arg) != 0) {
        snprintf(err, errlen, "--fault: mode \"%s\" %s, got \"%s\"", mode_text,
                 takes_arg ? "expects a non-negative integer argument" : "takes no argument",
                 colon + 1);
        return -1;
    }
    if (f->mode == TF_FX_FAULT_DELAY) {
        f->delay_ms = arg;
    } else {
        f->retry_after = arg;
    }
    return 0;
}

int tf_fx_fault_replaces(enum tf_fx_fault_mode mode)
{
    switch (mode) {
    case TF_FX_FAULT_500:
    case TF_FX_FAULT_503:
    case TF_FX_FAULT_429:
    case TF_FX_FAULT_418:
    case TF_FX_FAULT_HTML:
    case TF_FX_FAULT_ERROR_OBJECT:
    case TF_FX_FAULT_EMPTY:
        return 1;
    default:
        return 0;
    }
}

/* 429 and 418 always carry Binance's bodies (fixtures binance_fapi_error_4xx_*): the brief
 * uses them as the generic rate-limit answer for every endpoint. */
static int tf_fx_fault_rate_limited(const struct tf_fx_fault *f, int64_t now_ms,
                                    struct tf_fx_reply *out)
{
    char msg[192];
    int len = 0;
    unsigned status = 429;
    if (f->mode == TF_FX_FAULT_429) {
        len = snprintf(msg, sizeof(msg), "%s",
                       "Too many requests; current limit is 2400 requests per minute. Please use "
                       "the websocket for live updates to avoid polling the API.");
    } else {
        status = 418;
        len = snprintf(msg, sizeof(msg),
                       "Way too many requests; IP banned until %lld. Please use the websocket "
                       "for live updates to avoid bans.",
                       (long long)(now_ms + (int64_t)f->retry_after * 1000));
    }
    json_t *o = json_object();
    if (o == NULL || len < 0 || (size_t)len >= sizeof(msg)) {
        json_decref(o);
        return -1;
    }
    int rc = tf_fx_put_int(o, "code", -1003);
    rc |= tf_fx_put_str(o, "msg", msg);
    if (rc != 0) {
        json_decref(o);
        return -1;
    }
    out->status = status;
    out->json = o;
    out->content_type = "application/json";
    out->retry_after = f->retry_after;
    return 0;
}

static int tf_fx_fault_html(enum tf_fx_ep ep, int64_t now_ms, struct tf_fx_reply *out)
{
    char date[16];
    char time_s[16];
    if (tf_fx_fmt_date_dash(date, sizeof(date), now_ms, 0) != 0 ||
        tf_fx_fmt_time_colon(time_s, sizeof(time_s), now_ms, 0) != 0) {
        return -1;
    }
    const char *host = tf_fx_ep_host(ep);
    int len = snprintf(NULL, 0, TF_FX_HTML_FMT, host, date, time_s);
    if (len < 0) {
        return -1;
    }
    char *page = malloc((size_t)len + 1);
    if (page == NULL) {
        return -1;
    }
    if (snprintf(page, (size_t)len + 1, TF_FX_HTML_FMT, host, date, time_s) != len) {
        free(page);
        return -1;
    }
    out->status = 502;
    out->raw = page;
    out->content_type = "text/html; charset=UTF-8";
    return 0;
}

int tf_fx_fault_reply(const struct tf_fx_fault *f, enum tf_fx_ep ep, int64_t now_ms,
                      struct tf_fx_reply *out)
{
    memset(out, 0, sizeof(*out));
    switch (f->mode) {
    case TF_FX_FAULT_500:
        return tf_fx_render_server_error(ep, 500, now_ms, out);
    case TF_FX_FAULT_503:
        return tf_fx_render_server_error(ep, 503, now_ms, out);
    case TF_FX_FAULT_429:
    case TF_FX_FAULT_418:
        return tf_fx_fault_rate_limited(f, now_ms, out);
    case TF_FX_FAULT_HTML:
        return tf_fx_fault_html(ep, now_ms, out);
    case TF_FX_FAULT_ERROR_OBJECT:
        return tf_fx_render_venue_error(ep, now_ms, out);
    case TF_FX_FAULT_EMPTY:
        out->status = 200;
        out->content_type = tf_fx_ep_content_type(ep);
        return 0;
    default:
        return -1;
    }
}

enum tf_fx_wt {
    TF_FX_WT_NULL,  /* the main price: null */
    TF_FX_WT_NAN,   /* "NaN" */
    TF_FX_WT_EMPTY, /* "" */
    TF_FX_WT_TRUE,  /* a boolean */
    TF_FX_WT_FLIP   /* numeric string <-> number */
};

/* Which field gets which wrong type; modelled on bad_bithumb_ticker_wrong_types.json and
 * bad_binance_book_ticker_non_numeric.json, extended to every venue's price keys. */
static const struct {
    const char *key;
    enum tf_fx_wt action;
} tf_fx_wrong[] = {
    {"closing_price", TF_FX_WT_NULL},
    {"opening_price", TF_FX_WT_FLIP},
    {"max_price", TF_FX_WT_TRUE},
    {"date", TF_FX_WT_FLIP},
    {"timestamp", TF_FX_WT_FLIP},
    {"trade_timestamp", TF_FX_WT_FLIP},
    {"trade_price", TF_FX_WT_NULL},
    {"price", TF_FX_WT_NULL},
    {"quantity", TF_FX_WT_FLIP},
    {"bidPrice", TF_FX_WT_NAN},
    {"askPrice", TF_FX_WT_EMPTY},
    {"time", TF_FX_WT_FLIP},
    {"markPrice", TF_FX_WT_NAN},
    {"indexPrice", TF_FX_WT_FLIP},
    {"lastPrice", TF_FX_WT_NULL},
    {"bid1Price", TF_FX_WT_NAN},
    {"ask1Price", TF_FX_WT_EMPTY},
    {"last", TF_FX_WT_NULL},
    {"bidPx", TF_FX_WT_NAN},
    {"askPx", TF_FX_WT_EMPTY},
    {"ts", TF_FX_WT_FLIP},
    {"basePrice", TF_FX_WT_FLIP},
    {"KRW", TF_FX_WT_FLIP},
    {"USDKRW", TF_FX_WT_FLIP},
    {"deal_bas_r", TF_FX_WT_NULL},
};

/* The "last price" of each layout (plus the book prices, which are all a book has). */
static const char *const tf_fx_zero_keys[] = {
    "closing_price", "trade_price", "price",  "lastPrice",  "last",     "markPrice",
    "basePrice",     "KRW",         "USDKRW", "deal_bas_r", "bidPrice", "askPrice",
};

static json_t *tf_fx_flip(const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        double d = strtod(s, &end);
        return (end != s && *end == '\0') ? tf_fx_num(d) : json_integer(0);
    }
    if (json_is_number(v)) {
        char buf[64];
        if (tf_fx_fmt(buf, sizeof(buf), json_number_value(v), 0) != 0) {
            return NULL;
        }
        return json_string(buf);
    }
    return NULL;
}

static json_t *tf_fx_wrong_value(const char *key, const json_t *v)
{
    for (size_t i = 0; i < sizeof(tf_fx_wrong) / sizeof(tf_fx_wrong[0]); i++) {
        if (strcmp(key, tf_fx_wrong[i].key) != 0) {
            continue;
        }
        switch (tf_fx_wrong[i].action) {
        case TF_FX_WT_NULL:
            return json_null();
        case TF_FX_WT_NAN:
            return json_string("NaN");
        case TF_FX_WT_EMPTY:
            return json_string("");
        case TF_FX_WT_TRUE:
            return json_true();
        case TF_FX_WT_FLIP:
            return tf_fx_flip(v);
        }
    }
    return NULL;
}

static json_t *tf_fx_zero_value(const char *key, const json_t *v)
{
    for (size_t i = 0; i < sizeof(tf_fx_zero_keys) / sizeof(tf_fx_zero_keys[0]); i++) {
        if (strcmp(key, tf_fx_zero_keys[i]) != 0) {
            continue;
        }
        if (json_is_string(v)) {
            return json_string("0");
        }
        if (json_is_integer(v)) {
            return json_integer(0);
        }
        if (json_is_real(v)) {
            return json_real(0.0);
        }
    }
    return NULL;
}

static void tf_fx_mutate_walk(enum tf_fx_fault_mode mode, json_t *node)
{
    if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++) {
            tf_fx_mutate_walk(mode, json_array_get(node, i));
        }
        return;
    }
    if (!json_is_object(node)) {
        return;
    }
    for (void *it = json_object_iter(node); it != NULL; it = json_object_iter_next(node, it)) {
        const char *key = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        json_t *repl =
            mode == TF_FX_FAULT_ZERO ? tf_fx_zero_value(key, v) : tf_fx_wrong_value(key, v);
        if (repl != NULL) {
            /* Replacing a value keeps the iterator valid (jansson docs). */
            json_object_iter_set_new(node, it, repl);
        } else {
            tf_fx_mutate_walk(mode, v);
        }
    }
}

void tf_fx_fault_mutate(enum tf_fx_fault_mode mode, json_t *root)
{
    if (mode == TF_FX_FAULT_ZERO || mode == TF_FX_FAULT_WRONG_TYPES) {
        tf_fx_mutate_walk(mode, root);
    }
}

static json_t *tf_fx_fault_json(const struct tf_fx_fault *f)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = tf_fx_put_str(o, "mode", tf_fx_fault_mode_name(f->mode));
    rc |= tf_fx_put_int(o, "retry_after", f->retry_after);
    rc |= tf_fx_put_int(o, "delay_ms", f->delay_ms);
    rc |= tf_fx_put_int(o, "remaining", f->remaining);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *tf_fx_faults_json(const struct tf_fx_faults *t)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int rc = 0;
    if (t->all.mode != TF_FX_FAULT_NONE) {
        rc |= tf_fx_put(o, "*", tf_fx_fault_json(&t->all));
    }
    for (int i = 0; i < TF_FX_EP_COUNT; i++) {
        if (t->ep[i].mode != TF_FX_FAULT_NONE) {
            rc |= tf_fx_put(o, tf_fx_ep_name((enum tf_fx_ep)i), tf_fx_fault_json(&t->ep[i]));
        }
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
