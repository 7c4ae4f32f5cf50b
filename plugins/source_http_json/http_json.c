/*
 * `http_json` source: tickers from any public JSON REST endpoint, described in YAML only (URL
 * template, success condition, where the items and the fields are), so adding an exchange needs
 * no C. Emits `ticker` records exactly like the native sources. Guide and the three shipped
 * exchanges: README.md beside this file; option reference: the table below.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tickflow/plausible.h>
#include <tickflow/tickflow.h>

#define HJ_SYMBOL_MAX 24   /* base asset, NUL included */
#define HJ_VENUE_MAX  64   /* venue symbol ("KRW-BTC", "BTC-USDT-SWAP"), NUL included */
#define HJ_URL_MAX    2048 /* an expanded URL */
#define HJ_CTX_MAX    256  /* "<exchange> <path>" prefix of messages */
#define HJ_ERR_MAX    256
#define HJ_TEXT_MAX   160 /* a venue message or a JSON value quoted in a message */
#define HJ_ONE        "{symbol}"
#define HJ_JOINED     "{symbols}"
#define HJ_EVERY      "*"

/* ---- option table ---- */

/* Record fields a YAML author can map, in the order they appear in a record. */
typedef enum hj_field_id {
    HJ_LAST,
    HJ_BID,
    HJ_ASK,
    HJ_VOLUME,
    HJ_MARK,
    HJ_INDEX,
    HJ_FUNDING,
    HJ_NEXT_FUNDING,
    HJ_TS,
    HJ_N_FIELDS
} hj_field_id;

/* How a field's value is read: sets the json_number/json_int64 flags and the record type. */
typedef enum hj_value_kind {
    HJ_PRICE,  /* > 0 */
    HJ_AMOUNT, /* >= 0 */
    HJ_RATE,   /* any sign (a funding rate) */
    HJ_TIME    /* epoch in ts_unit, stored as epoch ms */
} hj_value_kind;

static const struct {
    const char *option; /* key under `fields:` */
    const char *record; /* record field name (the ticker schema) */
    hj_value_kind kind;
} hj_fields[HJ_N_FIELDS] = {
    [HJ_LAST] = {"last", "last", HJ_PRICE},
    [HJ_BID] = {"bid", "bid", HJ_PRICE},
    [HJ_ASK] = {"ask", "ask", HJ_PRICE},
    [HJ_VOLUME] = {"volume", "volume_24h", HJ_AMOUNT},
    [HJ_MARK] = {"mark", "mark_price", HJ_PRICE},
    [HJ_INDEX] = {"index", "index_price", HJ_PRICE},
    [HJ_FUNDING] = {"funding_rate", "funding_rate", HJ_RATE},
    [HJ_NEXT_FUNDING] = {"next_funding_ts", "next_funding_ts", HJ_TIME},
    [HJ_TS] = {"ts", "ts_exchange", HJ_TIME},
};

#define HJ_POINTER_HELP                                                                            \
    "JSON pointer relative to the item (e.g. /trade_price); a leading ^ reads it from the "        \
    "document root instead (e.g. ^/time)"

static const tf_option_def field_options[] = {
    {"last", TF_OPT_STRING, NULL, 1, "Last trade price (> 0) -> `last`. " HJ_POINTER_HELP, 0, NULL},
    {"bid", TF_OPT_STRING, NULL, 0, "Best bid (> 0) -> `bid`; never above ask", 0, NULL},
    {"ask", TF_OPT_STRING, NULL, 0, "Best ask (> 0) -> `ask`", 0, NULL},
    {"volume", TF_OPT_STRING, NULL, 0, "24 h volume in base units (>= 0) -> `volume_24h`", 0, NULL},
    {"ts", TF_OPT_STRING, NULL, 0,
     "Exchange timestamp in ts_unit -> `ts_exchange`; checked against max_age. Without it the "
     "record has no ts_exchange",
     0, NULL},
    {"mark", TF_OPT_STRING, NULL, 0, "Mark price of a perp (> 0) -> `mark_price`", 0, NULL},
    {"index", TF_OPT_STRING, NULL, 0, "Index price of a perp (> 0) -> `index_price`", 0, NULL},
    {"funding_rate", TF_OPT_STRING, NULL, 0, "Funding rate of a perp (any sign) -> `funding_rate`",
     0, NULL},
    {"next_funding_ts", TF_OPT_STRING, NULL, 0,
     "Next funding time of a perp, in ts_unit -> `next_funding_ts`", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def options[] = {
    {"url", TF_OPT_STRING, NULL, 1,
     "http:// or https:// URL to GET. {symbol}: one request per symbol, replaced by its venue "
     "symbol (symbol_format), URL-encoded. {symbols}: one request for all, the venue symbols "
     "joined with commas (needs items). Neither: one request (a bulk endpoint with items, or a "
     "single symbol)",
     0, NULL},
    {"exchange", TF_OPT_STRING, NULL, 1, "Value of the records' `exchange` field, e.g. upbit", 0,
     NULL},
    {"market", TF_OPT_STRING, "spot", 0, "Value of the records' `market` field: spot or perp", 0,
     NULL},
    {"quote", TF_OPT_STRING, NULL, 1,
     "Value of the records' `quote` field: the currency prices are in (KRW, USDT, USD...)", 0,
     NULL},
    {"symbols", TF_OPT_LIST, "[BTC]", 0,
     "Base assets (BTC, ETH...; letters and digits, upper-cased in records). \"*\" = every item "
     "of a bulk reply whose venue symbol matches symbol_strip_prefix/suffix (needs items)",
     TF_OPT_STRING, NULL},
    {"symbol_format", TF_OPT_STRING, "{symbol}", 0,
     "The venue's symbol for a base asset, with {symbol} standing for it: KRW-{symbol}, "
     "{symbol}-USDT, {symbol}USDT",
     0, NULL},
    {"symbol_case", TF_OPT_STRING, "upper", 0,
     "Case of the venue symbol in the URL: upper (BTC-USDT) or lower (btc_krw). Replies are "
     "matched ignoring case",
     0, NULL},
    {"ok", TF_OPT_STRING, NULL, 0,
     "Success condition on the reply: `<pointer> == <JSON literal>` (types must match: /code == "
     "\"0\" is not /retCode == 0) or `<pointer> exists`. A 2xx reply failing it is an API error "
     "(TF_EAPI)",
     0, NULL},
    {"error_message", TF_OPT_STRING, NULL, 0,
     "JSON pointer to the venue's error text (/msg, /retMsg, /error/message), quoted in errors; "
     "a 4xx reply that has one is an API error (TF_EAPI) instead of an HTTP error",
     0, NULL},
    {"item", TF_OPT_STRING, NULL, 0,
     "JSON pointer to the one item of a single-market reply (/data/0, /result/list/0); default: "
     "the whole reply. Not with items",
     0, NULL},
    {"items", TF_OPT_STRING, NULL, 0,
     "JSON pointer to a bulk reply's items: an array (with symbol_field) or an object keyed by "
     "venue symbol (/data, /result/list; \"\" = the reply itself). Scalars and empty items "
     "beside them are skipped",
     0, NULL},
    {"fields", TF_OPT_MAP, NULL, 1,
     "Where each record field is, as JSON pointers relative to the item: {last: /trade_price, "
     "ts: /timestamp}. Numbers may be JSON numbers or numeric strings",
     0, field_options},
    {"ts_unit", TF_OPT_STRING, "ms", 0,
     "Unit of the epoch timestamps in fields.ts and fields.next_funding_ts: ms, s (decimals "
     "allowed), us or ns",
     0, NULL},
    {"symbol_field", TF_OPT_STRING, NULL, 0,
     "JSON pointer relative to the item to the venue symbol (/market, /instId, /symbol). Bulk: "
     "how items are matched to symbols (default: the key of an object of items). Single: "
     "checked to equal the symbol asked for",
     0, NULL},
    {"symbol_strip_prefix", TF_OPT_STRING, NULL, 0,
     "Removed from a venue symbol to get the base asset (KRW-); items without it are skipped. "
     "Default: the text before {symbol} in symbol_format",
     0, NULL},
    {"symbol_strip_suffix", TF_OPT_STRING, NULL, 0,
     "Removed from a venue symbol to get the base asset (-USDT, USDT); items without it are "
     "skipped. Default: the text after {symbol} in symbol_format",
     0, NULL},
    {"timeout", TF_OPT_DURATION, "5s", 0, "Time limit of each HTTP request", 0, NULL},
    {"max_age", TF_OPT_DURATION, "30s", 0,
     "Reject an item whose fields.ts is older than this when the reply arrives (or more than 5 s "
     "in the future)",
     0, NULL},
    {"headers", TF_OPT_LIST, "[]", 0,
     "Extra request headers, each \"Name: value\" (e.g. \"Accept-Language: en\")", TF_OPT_STRING,
     NULL},
    /* The quote is the YAML author's, so only absurd values are refused by default (1e+308,
     * 1e-308); README.md lists bounds per venue (Upbit KRW, OKX and Bybit USDT) to copy. */
    {"price_min", TF_OPT_DOUBLE, "1e-8", 0, TF_PLAUS_DOC_MIN, 0, NULL},
    {"price_max", TF_OPT_DOUBLE, "1e12", 0, TF_PLAUS_DOC_MAX, 0, NULL},
    {"price_bounds", TF_OPT_MAP, "{}", 0, TF_PLAUS_DOC_BOUNDS, TF_OPT_LIST, NULL},
    {"max_jump", TF_OPT_DOUBLE, "0.2", 0, TF_PLAUS_DOC_JUMP, 0, NULL},
    {"jump_tolerance", TF_OPT_DOUBLE, "0.02", 0, TF_PLAUS_DOC_TOLERANCE, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- instance ---- */

typedef struct hj_pointer {
    const char *path; /* borrowed from the options: RFC 6901, "" = the whole value */
    bool set;
    bool from_root; /* written with a leading '^': read from the document, not the item */
} hj_pointer;

typedef enum hj_cond_kind { HJ_COND_NONE, HJ_COND_EQUALS, HJ_COND_EXISTS } hj_cond_kind;

/* The `ok` option, parsed. */
typedef struct hj_cond {
    hj_cond_kind kind;
    char *pointer;    /* owned */
    json_t *want;     /* owned; HJ_COND_EQUALS only */
    const char *text; /* borrowed: as written, for messages */
} hj_cond;

typedef enum hj_ts_unit { HJ_TS_MS, HJ_TS_S, HJ_TS_US, HJ_TS_NS } hj_ts_unit;

/* One request of a tick and the symbols its reply serves. */
typedef struct hj_request {
    char *url;            /* owned, placeholders expanded */
    char ctx[HJ_CTX_MAX]; /* "<exchange> <url path>": prefix of every message */
    size_t first;         /* first symbol served */
    size_t count;         /* symbols served; 0 with `every` */
} hj_request;

typedef struct http_json {
    const tf_host *host; /* borrowed, outlives the instance */
    tf_instance *self;   /* borrowed */
    const char *exchange;
    const char *market;
    const char *quote;
    char (*symbols)[HJ_SYMBOL_MAX]; /* owned, upper case; none when `every` */
    char (*venue)[HJ_VENUE_MAX];    /* owned: each symbol as the venue writes it */
    bool *found;                    /* owned, per symbol: matched in the bulk reply at hand */
    size_t n_symbols;
    bool every;   /* symbols: "*" */
    char *prefix; /* owned: symbol_format before {symbol} */
    char *suffix; /* owned: symbol_format after {symbol} */
    bool lower;
    const char *strip_prefix; /* borrowed (options or prefix) */
    const char *strip_suffix; /* borrowed (options or suffix) */
    hj_request *requests;     /* owned */
    size_t n_requests;
    const char **headers; /* owned array of borrowed strings, NULL-terminated; NULL if none */
    hj_cond ok;
    hj_pointer error_message;
    hj_pointer item;
    hj_pointer items;
    hj_pointer symbol_field;
    hj_pointer fields[HJ_N_FIELDS];
    hj_ts_unit ts_unit;
    int64_t timeout_ms;
    int64_t max_age_ms;
    tf_plaus guard; /* owned: sane ranges and jumps of every price field */
} http_json;

/* Values of one item, gathered before its record is created. */
typedef struct hj_values {
    double num[HJ_N_FIELDS];
    int64_t ms[HJ_N_FIELDS];
} hj_values;

/* One parsed reply: `root` is owned. */
typedef struct hj_reply {
    json_t *root;
    int64_t received_ms;
} hj_reply;

/* Outcome of a tick: TF_OK when a record was emitted or nothing failed, otherwise the last
 * error (already reported). */
typedef struct hj_tally {
    size_t emitted;
    int last_error;
} hj_tally;

/* ---- small helpers ---- */

/* The host's names, plus "an empty array": an empty `items` is the usual surprise here. */
static const char *type_name(const http_json *h, const json_t *v)
{
    if (json_is_array(v) && json_array_size(v) == 0)
        return "an empty array";
    return h->host->json_type_name(v);
}

/* A JSON value as compact text for a message ("51001" with its quotes, 0, null), cut to fit. */
static void json_text(const json_t *v, char *out, size_t size)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(out, size, "%s", s ? s : "nothing");
    free(s);
}

static void tally(hj_tally *t, int rc)
{
    if (rc == TF_OK)
        t->emitted++;
    else
        t->last_error = rc;
}

static int tally_result(const hj_tally *t)
{
    return t->emitted > 0 || t->last_error == TF_OK ? TF_OK : t->last_error;
}

static bool is_token_char(char c)
{
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* ---- init: options ---- */

/* Logs why an option is refused; returns TF_EINVAL for init to pass on. */
static int refuse(http_json *h, const char *fmt, ...) TF_PRINTF(2, 3);

static int refuse(http_json *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    h->host->vlog(h->self, TF_LOG_ERROR, fmt, ap);
    va_end(ap);
    return TF_EINVAL;
}

/* An RFC 6901 pointer: "" or "/..." with '~' only in ~0 and ~1. */
static int check_pointer(http_json *h, const char *name, const char *p)
{
    if (p[0] != '\0' && p[0] != '/')
        return refuse(
            h,
            "%s: expected a JSON pointer starting with '/' such as /data/0 (or \"\" for the "
            "whole value), found \"%s\"",
            name, p);
    for (const char *c = strchr(p, '~'); c; c = strchr(c + 1, '~')) {
        if (c[1] != '0' && c[1] != '1')
            return refuse(h,
                          "%s: expected '~' only as ~0 ('~') or ~1 ('/') in a JSON pointer, found "
                          "\"%s\"",
                          name, p);
    }
    return TF_OK;
}

/* `text` may be NULL (option unset). `allow_root`: a leading '^' means "from the document". */
static int init_pointer(http_json *h, const char *name, const char *text, bool allow_root,
                        hj_pointer *out)
{
    if (!text)
        return TF_OK;
    out->set = true;
    out->from_root = allow_root && text[0] == '^';
    out->path = out->from_root ? text + 1 : text;
    return check_pointer(h, name, out->path);
}

static int init_url_scheme(http_json *h, const char *url)
{
    bool http = strncmp(url, "http://", 7) == 0 && url[7] != '\0' && url[7] != '/';
    bool https = strncmp(url, "https://", 8) == 0 && url[8] != '\0' && url[8] != '/';
    if (!http && !https)
        return refuse(h, "url: expected an http:// or https:// URL with a host, found \"%s\"", url);
    for (const char *c = url; *c; c++) {
        if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
            return refuse(h,
                          "url: expected no spaces or control characters (encode them as %%20...), "
                          "found \"%s\"",
                          url);
    }
    return TF_OK;
}

/* Counts the placeholders; any other brace is a typo worth refusing ({sym}, {SYMBOL}). */
static int scan_placeholders(http_json *h, const char *url, size_t *one, size_t *joined)
{
    *one = *joined = 0;
    for (const char *c = url; *c; c++) {
        if (strncmp(c, HJ_JOINED, strlen(HJ_JOINED)) == 0) {
            (*joined)++;
            c += strlen(HJ_JOINED) - 1;
        } else if (strncmp(c, HJ_ONE, strlen(HJ_ONE)) == 0) {
            (*one)++;
            c += strlen(HJ_ONE) - 1;
        } else if (*c == '{' || *c == '}') {
            char found[48];
            snprintf(found, sizeof found, "%.40s", c);
            return refuse(h,
                          "url: expected the placeholder {symbol} or {symbols}, found \"%s\" in "
                          "\"%s\"",
                          found, url);
        }
    }
    if (*one && *joined)
        return refuse(h,
                      "url: expected either {symbol} (one request per symbol) or {symbols} (one "
                      "request for all), found both in \"%s\"",
                      url);
    return TF_OK;
}

/* A base asset as written in symbols: letters and digits ("BTC", "1INCH"); kept upper case. */
static int init_symbol(http_json *h, size_t i, const json_t *item)
{
    const char *s = json_string_value(item);
    size_t len = s ? strlen(s) : 0;
    bool ok = len > 0 && len < HJ_SYMBOL_MAX;
    for (size_t k = 0; ok && k < len; k++)
        ok = isalnum((unsigned char)s[k]) != 0;
    if (!ok) {
        h->host->log(h->self, TF_LOG_ERROR,
                     "symbols[%zu]: expected a base asset of 1 to %d letters or digits (e.g. "
                     "BTC) or \"*\" alone, found \"%s\"",
                     i, HJ_SYMBOL_MAX - 1, s ? s : type_name(h, item));
        return TF_EINVAL;
    }
    for (size_t k = 0; k <= len; k++)
        h->symbols[i][k] = (char)toupper((unsigned char)s[k]);
    for (size_t k = 0; k < i; k++) {
        if (strcmp(h->symbols[k], h->symbols[i]) == 0) {
            h->host->log(h->self, TF_LOG_ERROR,
                         "symbols[%zu]: expected each symbol once, found %s again (first at "
                         "symbols[%zu])",
                         i, h->symbols[i], k);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

static int init_symbols(http_json *h, const json_t *list)
{
    size_t n = json_array_size(list);
    if (n == 0) {
        h->host->log(h->self, TF_LOG_ERROR,
                     "symbols: expected at least one symbol (or \"*\"), found an empty list");
        return TF_EINVAL;
    }
    const char *first = json_string_value(json_array_get(list, 0));
    if (n == 1 && first && strcmp(first, HJ_EVERY) == 0) {
        h->every = true;
        return TF_OK;
    }
    h->symbols = calloc(n, sizeof *h->symbols);
    h->venue = calloc(n, sizeof *h->venue);
    h->found = calloc(n, sizeof *h->found);
    if (!h->symbols || !h->venue || !h->found)
        return TF_ENOMEM;
    h->n_symbols = n;
    for (size_t i = 0; i < n; i++) {
        int rc = init_symbol(h, i, json_array_get(list, i));
        if (rc != TF_OK)
            return rc;
    }
    return TF_OK;
}

/* symbol_format: exactly one {symbol}, no other braces; split around it. */
static int init_symbol_format(http_json *h, const char *fmt, const char *symbol_case)
{
    const char *at = strstr(fmt, HJ_ONE);
    const char *after = at ? at + strlen(HJ_ONE) : NULL;
    if (!at || strstr(after, HJ_ONE) || strpbrk(after, "{}") ||
        memchr(fmt, '{', (size_t)(at - fmt)) || memchr(fmt, '}', (size_t)(at - fmt)))
        return refuse(h,
                      "symbol_format: expected {symbol} exactly once, e.g. KRW-{symbol} or "
                      "{symbol}USDT, found \"%s\"",
                      fmt);
    h->prefix = strndup(fmt, (size_t)(at - fmt));
    h->suffix = strdup(after);
    if (!h->prefix || !h->suffix)
        return TF_ENOMEM;
    if (strcmp(symbol_case, "lower") != 0 && strcmp(symbol_case, "upper") != 0)
        return refuse(h, "symbol_case: expected upper or lower, found \"%s\"", symbol_case);
    h->lower = strcmp(symbol_case, "lower") == 0;
    for (size_t i = 0; i < h->n_symbols; i++) {
        int n = snprintf(h->venue[i], HJ_VENUE_MAX, "%s%s%s", h->prefix, h->symbols[i], h->suffix);
        if (n < 0 || n >= HJ_VENUE_MAX)
            return refuse(h,
                          "symbol_format: expected a venue symbol under 64 characters, found "
                          "\"%s\" for %s",
                          fmt, h->symbols[i]);
        for (char *c = h->venue[i]; h->lower && *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    return TF_OK;
}

static int init_cond_equals(http_json *h, const char *text, const char *eq)
{
    size_t left = (size_t)(eq - text);
    while (left > 0 && isspace((unsigned char)text[left - 1]))
        left--;
    const char *lit = eq + 2;
    while (isspace((unsigned char)*lit))
        lit++;
    json_error_t e;
    h->ok.want = json_loads(lit, JSON_DECODE_ANY, &e);
    if (!h->ok.want) {
        h->host->log(h->self, TF_LOG_ERROR,
                     "ok: expected a JSON literal after == (strings in double quotes, e.g. "
                     "/code == \"0\"; numbers bare, e.g. /retCode == 0), found \"%s\" (%s)",
                     lit, e.text);
        return TF_EINVAL;
    }
    h->ok.kind = HJ_COND_EQUALS;
    h->ok.pointer = strndup(text, left);
    return h->ok.pointer ? TF_OK : TF_ENOMEM;
}

/* `ok`: "<pointer> == <JSON literal>" or "<pointer> exists". */
static int init_cond(http_json *h, const char *text)
{
    if (!text)
        return TF_OK;
    h->ok.text = text;
    while (isspace((unsigned char)*text))
        text++;
    const char *eq = strstr(text, "==");
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    const char *kw = " exists";
    size_t kw_len = strlen(kw);
    int rc = TF_OK;
    if (eq) {
        rc = init_cond_equals(h, text, eq);
    } else if (len >= kw_len && strncmp(text + len - kw_len, kw, kw_len) == 0) {
        size_t left = len - kw_len;
        while (left > 0 && isspace((unsigned char)text[left - 1]))
            left--;
        h->ok.kind = HJ_COND_EXISTS;
        h->ok.pointer = strndup(text, left);
        rc = h->ok.pointer ? TF_OK : TF_ENOMEM;
    } else {
        return refuse(h,
                      "ok: expected `<pointer> == <value>` such as /code == \"0\", or `<pointer> "
                      "exists` such as /data exists, found \"%s\"",
                      h->ok.text);
    }
    if (rc != TF_OK)
        return rc;
    if (h->ok.pointer[0] != '/')
        return refuse(h,
                      "ok: expected a JSON pointer starting with '/' before the condition, such as "
                      "/code == \"0\", found \"%s\"",
                      h->ok.text);
    return check_pointer(h, "ok", h->ok.pointer);
}

static int init_fields(http_json *h, const json_t *fields)
{
    for (int f = 0; f < HJ_N_FIELDS; f++) {
        char name[48];
        snprintf(name, sizeof name, "fields.%s", hj_fields[f].option);
        const char *text = json_string_value(json_object_get(fields, hj_fields[f].option));
        int rc = init_pointer(h, name, text, true, &h->fields[f]);
        if (rc != TF_OK)
            return rc;
    }
    if (!h->fields[HJ_LAST].set)
        return refuse(h,
                      "fields.last: expected a JSON pointer such as /trade_price, found nothing");
    return TF_OK;
}

static int init_ts_unit(http_json *h, const char *unit)
{
    static const char *const names[] = {
        [HJ_TS_MS] = "ms", [HJ_TS_S] = "s", [HJ_TS_US] = "us", [HJ_TS_NS] = "ns"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(unit, names[i]) == 0) {
            h->ts_unit = (hj_ts_unit)i;
            return TF_OK;
        }
    }
    return refuse(h, "ts_unit: expected ms, s, us or ns, found \"%s\"", unit);
}

static int init_headers(http_json *h, const json_t *list)
{
    size_t n = json_array_size(list);
    if (n == 0)
        return TF_OK;
    h->headers = calloc(n + 1, sizeof *h->headers);
    if (!h->headers)
        return TF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(list, i));
        size_t name = 0;
        while (s && is_token_char(s[name]))
            name++;
        bool ok = s && name > 0 && s[name] == ':' && !strpbrk(s, "\r\n");
        if (!ok) {
            h->host->log(h->self, TF_LOG_ERROR,
                         "headers[%zu]: expected \"Name: value\" on one line, such as "
                         "\"Accept-Language: en\", found \"%s\"",
                         i, s ? s : "");
            return TF_EINVAL;
        }
        h->headers[i] = s;
    }
    return TF_OK;
}

static int non_empty(http_json *h, const char *name, const char *value, const char *example)
{
    if (value && value[0])
        return TF_OK;
    return refuse(h, "%s: expected a value such as %s, found \"\"", name, example);
}

/* ---- init: requests ---- */

typedef struct hj_buf {
    char data[HJ_URL_MAX];
    size_t len;
    bool overflow;
} hj_buf;

static void buf_add(hj_buf *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n >= sizeof b->data) {
        b->overflow = true;
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* RFC 3986: everything but the unreserved characters is %-encoded. */
static void buf_add_encoded(hj_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            buf_add(b, s, 1);
        } else {
            char hex[4];
            snprintf(hex, sizeof hex, "%%%02X", c);
            buf_add(b, hex, 3);
        }
    }
}

/* `url` with {symbol} -> venue[first], {symbols} -> every venue symbol joined with ','. */
static char *expand_url(const http_json *h, const char *url, size_t first, bool joined)
{
    hj_buf b = {.len = 0};
    b.data[0] = '\0';
    while (*url) {
        if (strncmp(url, HJ_JOINED, strlen(HJ_JOINED)) == 0) {
            for (size_t i = 0; i < h->n_symbols; i++) {
                if (i)
                    buf_add(&b, ",", 1);
                buf_add_encoded(&b, h->venue[i]);
            }
            url += strlen(HJ_JOINED);
        } else if (strncmp(url, HJ_ONE, strlen(HJ_ONE)) == 0) {
            buf_add_encoded(&b, joined ? "" : h->venue[first]);
            url += strlen(HJ_ONE);
        } else {
            buf_add(&b, url, 1);
            url++;
        }
    }
    return b.overflow ? NULL : strdup(b.data);
}

/* "<exchange> <path>": the URL's path without its query, for messages. */
static void request_ctx(const http_json *h, hj_request *r)
{
    const char *host = strstr(r->url, "://") + 3;
    const char *path = strchr(host, '/');
    if (!path)
        path = "/";
    size_t len = strcspn(path, "?#");
    snprintf(r->ctx, sizeof r->ctx, "%s %.*s", h->exchange, (int)len, path);
}

static int init_requests(http_json *h, const char *url, size_t one, size_t joined)
{
    h->n_requests = one ? h->n_symbols : 1;
    h->requests = calloc(h->n_requests, sizeof *h->requests);
    if (!h->requests)
        return TF_ENOMEM;
    for (size_t i = 0; i < h->n_requests; i++) {
        hj_request *r = &h->requests[i];
        r->url = expand_url(h, url, i, joined > 0);
        if (!r->url) {
            h->host->log(h->self, TF_LOG_ERROR,
                         "url: expected at most %d characters once expanded, found more for "
                         "\"%s\"",
                         HJ_URL_MAX - 1, url);
            return TF_EINVAL;
        }
        r->first = one ? i : 0;
        r->count = h->every ? 0 : (one ? 1 : h->n_symbols);
        request_ctx(h, r);
    }
    return TF_OK;
}

/* The combinations of url, symbols, item and items that describe a real endpoint. */
static int check_shape(http_json *h, const char *url, size_t one, size_t joined)
{
    if (h->item.set && h->items.set)
        return refuse(h,
                      "item, items: expected one of them (item: where a single-market reply's item "
                      "is; items: where a bulk reply's items are), found both (item \"%s\", items "
                      "\"%s\")",
                      h->item.path, h->items.path);
    if (h->every && !h->items.set)
        return refuse(
            h, "symbols: \"*\" (every market) expected items (where a bulk reply lists every "
               "market, e.g. \"\" or /data), found no items");
    if (h->every && (one || joined))
        return refuse(h,
                      "url: symbols \"*\" expected a URL without {symbol} or {symbols} (a bulk "
                      "endpoint), found \"%s\"",
                      url);
    if (joined && !h->items.set)
        return refuse(
            h,
            "items: {symbols} in the url asks for several markets in one reply, so "
            "expected items (where they are, e.g. \"\" for a root array), found none; url "
            "\"%s\"",
            url);
    if (!one && !joined && !h->items.set && h->n_symbols > 1) {
        h->host->log(h->self, TF_LOG_ERROR,
                     "url: without {symbol} one request gives one item, but symbols lists %zu; "
                     "expected {symbol} in the url (one request per symbol) or items (a bulk "
                     "reply), found \"%s\"",
                     h->n_symbols, url);
        return TF_EINVAL;
    }
    return TF_OK;
}

static int init_strip(http_json *h, const tf_options *opts)
{
    const tf_host *host = h->host;
    h->strip_prefix = host->opt_is_set(opts, "symbol_strip_prefix")
                          ? host->opt_string(opts, "symbol_strip_prefix")
                          : h->prefix;
    h->strip_suffix = host->opt_is_set(opts, "symbol_strip_suffix")
                          ? host->opt_string(opts, "symbol_strip_suffix")
                          : h->suffix;
    if (!h->strip_prefix)
        h->strip_prefix = "";
    if (!h->strip_suffix)
        h->strip_suffix = "";
    return TF_OK;
}

static int init_identity(http_json *h, const tf_options *opts)
{
    const tf_host *host = h->host;
    h->exchange = host->opt_string(opts, "exchange");
    h->market = host->opt_string(opts, "market");
    h->quote = host->opt_string(opts, "quote");
    int rc = non_empty(h, "exchange", h->exchange, "upbit");
    if (rc == TF_OK)
        rc = non_empty(h, "quote", h->quote, "KRW");
    if (rc == TF_OK && strcmp(h->market, "spot") != 0 && strcmp(h->market, "perp") != 0)
        rc = refuse(h, "market: expected spot or perp, found \"%s\"", h->market);
    return rc;
}

static int init_pointers(http_json *h, const tf_options *opts)
{
    const tf_host *host = h->host;
    int rc = init_cond(h, host->opt_string(opts, "ok"));
    if (rc == TF_OK)
        rc = init_pointer(h, "error_message", host->opt_string(opts, "error_message"), false,
                          &h->error_message);
    if (rc == TF_OK)
        rc = init_pointer(h, "item", host->opt_string(opts, "item"), false, &h->item);
    if (rc == TF_OK)
        rc = init_pointer(h, "items", host->opt_string(opts, "items"), false, &h->items);
    if (rc == TF_OK)
        rc = init_pointer(h, "symbol_field", host->opt_string(opts, "symbol_field"), false,
                          &h->symbol_field);
    if (rc == TF_OK)
        rc = init_fields(h, host->opt_json(opts, "fields"));
    return rc;
}

static void hj_destroy(void *instance)
{
    http_json *h = instance;
    if (!h)
        return;
    for (size_t i = 0; h->requests && i < h->n_requests; i++)
        free(h->requests[i].url);
    free(h->requests);
    free(h->symbols);
    free(h->venue);
    free(h->found);
    free(h->prefix);
    free(h->suffix);
    free(h->headers);
    free(h->ok.pointer);
    json_decref(h->ok.want);
    tf_plaus_free(&h->guard);
    free(h);
}

static int hj_init(const tf_host *host, tf_instance *self, const tf_options *opts, void **instance)
{
    http_json *h = calloc(1, sizeof *h);
    if (!h)
        return TF_ENOMEM;
    h->host = host;
    h->self = self;
    const char *url = host->opt_string(opts, "url");
    size_t one = 0;
    size_t joined = 0;
    int rc = init_identity(h, opts);
    if (rc == TF_OK)
        rc = init_url_scheme(h, url ? url : "");
    if (rc == TF_OK)
        rc = scan_placeholders(h, url, &one, &joined);
    if (rc == TF_OK)
        rc = init_symbols(h, host->opt_json(opts, "symbols"));
    if (rc == TF_OK)
        rc = init_symbol_format(h, host->opt_string(opts, "symbol_format"),
                                host->opt_string(opts, "symbol_case"));
    if (rc == TF_OK)
        rc = init_strip(h, opts);
    if (rc == TF_OK)
        rc = init_pointers(h, opts);
    if (rc == TF_OK)
        rc = check_shape(h, url, one, joined);
    if (rc == TF_OK)
        rc = init_requests(h, url, one, joined);
    if (rc == TF_OK)
        rc = init_ts_unit(h, host->opt_string(opts, "ts_unit"));
    if (rc == TF_OK)
        rc = init_headers(h, host->opt_json(opts, "headers"));
    if (rc == TF_OK)
        rc = host->opt_positive_duration(self, opts, "timeout", &h->timeout_ms);
    if (rc == TF_OK)
        rc = host->opt_positive_duration(self, opts, "max_age", &h->max_age_ms);
    if (rc == TF_OK) {
        tf_plaus_config cfg = tf_plaus_config_from(host, opts, h->exchange);
        rc = tf_plaus_init(&h->guard, host, self, &cfg);
    }
    if (rc != TF_OK)
        goto fail;
    *instance = h;
    return TF_OK;
fail:
    hj_destroy(h);
    return rc;
}

/* ---- replies ---- */

/* The venue's own error text (error_message) as "...: <text>", or "" when there is none. */
static void venue_message(const http_json *h, const json_t *root, char *out, size_t size)
{
    out[0] = '\0';
    if (!h->error_message.set || !root)
        return;
    const json_t *v = h->host->json_pointer(root, h->error_message.path);
    char text[HJ_TEXT_MAX];
    if (json_is_string(v))
        snprintf(text, sizeof text, "%s", json_string_value(v));
    else if (v && !json_is_null(v))
        json_text(v, text, sizeof text);
    else
        return;
    if (text[0])
        snprintf(out, size, ": %s", text);
}

/* A non-2xx reply. A 4xx carrying the venue's error text is the API refusing the call. */
static int reply_http_error(http_json *h, const tf_fetch *f)
{
    if (f->status == 429 || f->status == 418)
        return h->host->fetch_http_error(h->self, f, "2xx");
    char msg[HJ_TEXT_MAX + 4];
    venue_message(h, f->root, msg, sizeof msg);
    if (!msg[0])
        return h->host->fetch_http_error(h->self, f, "2xx");
    int rc = f->status < 500 ? TF_EAPI : TF_EHTTP;
    h->host->report_error(h->self, rc, "%s: expected HTTP 2xx, found HTTP %ld%s", f->context,
                          f->status, msg);
    return rc;
}

/* The `ok` condition. A missing pointer under `==` means the reply is not this API's layout
 * (TF_EPARSE); a present but different value, or a missing `exists` pointer, is the API's own
 * error (TF_EAPI). */
static int check_ok(http_json *h, const char *ctx, const json_t *root)
{
    const tf_host *host = h->host;
    if (h->ok.kind == HJ_COND_NONE)
        return TF_OK;
    const json_t *v = host->json_pointer(root, h->ok.pointer);
    char msg[HJ_TEXT_MAX + 4];
    venue_message(h, root, msg, sizeof msg);
    if (h->ok.kind == HJ_COND_EXISTS) {
        if (v)
            return TF_OK;
        host->report_error(h->self, TF_EAPI, "%s: expected %s (ok), found no %s%s", ctx, h->ok.text,
                           h->ok.pointer, msg);
        return TF_EAPI;
    }
    if (!v) {
        host->report_error(h->self, TF_EPARSE,
                           "%s: expected %s (ok), found no %s in the reply (%s at the root)", ctx,
                           h->ok.text, h->ok.pointer, type_name(h, root));
        return TF_EPARSE;
    }
    if (json_equal(v, h->ok.want))
        return TF_OK;
    char found[HJ_TEXT_MAX];
    json_text(v, found, sizeof found);
    host->report_error(h->self, TF_EAPI, "%s: expected %s (ok), found %s%s", ctx, h->ok.text, found,
                       msg);
    return TF_EAPI;
}

/* GETs one request's URL. On failure the error is reported and returned; out->root may still
 * be set and is the caller's to free. */
static int fetch(http_json *h, const hj_request *rq, hj_reply *out)
{
    const tf_host *host = h->host;
    tf_fetch f = {.struct_size = sizeof f, .context = rq->ctx};
    int rc = host->fetch_json(h->self,
                              &(tf_http_request){.struct_size = sizeof(tf_http_request),
                                                 .url = rq->url,
                                                 .headers = h->headers,
                                                 .timeout_ms = h->timeout_ms},
                              &f);
    out->received_ms = f.received_ms;
    if (rc == TF_OK) {
        out->root = f.root;
        rc = check_ok(h, rq->ctx, out->root);
    } else {
        if (f.status != 0 && (f.status < 200 || f.status > 299))
            rc = reply_http_error(h, &f);
        json_decref(f.root);
    }
    host->http_free(f.response);
    return rc;
}

/* ---- values ---- */

static void pointer_text(const hj_pointer *p, char *out, size_t size)
{
    snprintf(out, size, "%s%s", p->from_root ? "^" : "", p->path[0] ? p->path : "\"\"");
}

/* An epoch in ts_unit, as epoch ms. */
static int read_time(const http_json *h, const json_t *v, int64_t *ms, char *err, size_t size)
{
    const tf_host *host = h->host;
    if (h->ts_unit == HJ_TS_S) {
        double s = 0;
        int rc = host->json_number(v, TF_NUM_POSITIVE, &s, err, size);
        if (rc != TF_OK)
            return rc;
        if (s > 9.0e15 / 1000.0) {
            snprintf(err, size, "expected epoch seconds, found %.17g", s);
            return TF_EVALUE;
        }
        *ms = (int64_t)(s * 1000.0 + 0.5);
        return TF_OK;
    }
    int64_t raw = 0;
    int rc = host->json_int64(v, TF_NUM_POSITIVE, &raw, err, size);
    if (rc != TF_OK)
        return rc;
    *ms = h->ts_unit == HJ_TS_US ? raw / 1000 : h->ts_unit == HJ_TS_NS ? raw / 1000000 : raw;
    return TF_OK;
}

/* One mapped field of an item into `v`. */
static int read_field(http_json *h, const char *ctx, const json_t *root, const json_t *item,
                      hj_field_id f, hj_values *v)
{
    const tf_host *host = h->host;
    const hj_pointer *p = &h->fields[f];
    char where[HJ_TEXT_MAX];
    pointer_text(p, where, sizeof where);
    const json_t *val = host->json_pointer(p->from_root ? root : item, p->path);
    if (!val) {
        host->report_error(h->self, TF_EPARSE, "%s: %s (%s): expected a value, found nothing", ctx,
                           hj_fields[f].option, where);
        return TF_EPARSE;
    }
    char err[HJ_ERR_MAX];
    int rc = TF_OK;
    switch (hj_fields[f].kind) {
    case HJ_PRICE:
        rc = host->json_number(val, TF_NUM_POSITIVE, &v->num[f], err, sizeof err);
        break;
    case HJ_AMOUNT:
        rc = host->json_number(val, TF_NUM_NONNEGATIVE, &v->num[f], err, sizeof err);
        break;
    case HJ_RATE:
        rc = host->json_number(val, 0, &v->num[f], err, sizeof err);
        break;
    case HJ_TIME:
        rc = read_time(h, val, &v->ms[f], err, sizeof err);
        break;
    }
    if (rc != TF_OK)
        host->report_error(h->self, rc, "%s: %s (%s): %s", ctx, hj_fields[f].option, where, err);
    return rc;
}

/* Every mapped field of one item, checked: nothing is emitted unless all of them parse. */
static int parse_item(http_json *h, const char *ctx, const json_t *root, const json_t *item,
                      int64_t received, hj_values *v)
{
    if (!json_is_object(item) && !json_is_array(item)) {
        h->host->report_error(h->self, TF_EPARSE, "%s: expected an item (object), found %s", ctx,
                              type_name(h, item));
        return TF_EPARSE;
    }
    for (int f = 0; f < HJ_N_FIELDS; f++) {
        if (!h->fields[f].set)
            continue;
        int rc = read_field(h, ctx, root, item, (hj_field_id)f, v);
        if (rc != TF_OK)
            return rc;
    }
    if (h->fields[HJ_BID].set && h->fields[HJ_ASK].set && v->num[HJ_BID] > v->num[HJ_ASK]) {
        h->host->report_error(h->self, TF_EVALUE,
                              "%s: crossed book: expected bid <= ask, found bid %.15g > ask %.15g",
                              ctx, v->num[HJ_BID], v->num[HJ_ASK]);
        return TF_EVALUE;
    }
    if (h->fields[HJ_TS].set)
        return h->host->check_fresh(h->self, ctx, "ts", v->ms[HJ_TS], received, h->max_age_ms);
    return TF_OK;
}

/* ---- records ---- */

/* Every mapped price field goes through the guard, even after one failed, so each keeps its
 * own last value and held jump. TF_OK, TF_EVALUE (rejected: counted and logged by the guard)
 * or TF_ENOMEM. */
static int plausible(http_json *h, const char *sym, const hj_values *v)
{
    int rc = TF_OK;
    for (int f = 0; f < HJ_N_FIELDS; f++) {
        if (!h->fields[f].set || hj_fields[f].kind != HJ_PRICE)
            continue;
        int one = tf_plaus_check(&h->guard, sym, hj_fields[f].record, v->num[f]);
        rc = rc ? rc : one;
    }
    return rc;
}

/* A quote the guard rejects is skipped, not failed: it is counted in its own metric and the
 * tick goes on (TF_OK without a record). */
static int emit(http_json *h, tf_batch *out, const char *sym, const hj_values *v, int64_t received)
{
    const tf_host *host = h->host;
    int checked = plausible(h, sym, v);
    if (checked != TF_OK)
        return checked == TF_EVALUE ? TF_OK : checked;
    tf_record *r = host->record_new(out, "ticker");
    if (!r)
        return TF_ENOMEM;
    int rc = host->record_set_string(r, "exchange", h->exchange);
    rc = rc ? rc : host->record_set_string(r, "market", h->market);
    rc = rc ? rc : host->record_set_string(r, "symbol", sym);
    rc = rc ? rc : host->record_set_string(r, "quote", h->quote);
    for (int f = 0; f < HJ_N_FIELDS && rc == TF_OK; f++) {
        if (!h->fields[f].set)
            continue;
        if (hj_fields[f].kind == HJ_TIME)
            rc = host->record_set_ts(r, hj_fields[f].record, v->ms[f]);
        else
            rc = host->record_set_double(r, hj_fields[f].record, v->num[f]);
    }
    rc = rc ? rc : host->record_set_ts(r, "ts_received", received);
    if (rc != TF_OK) /* never leave a half record behind */
        host->batch_remove(out, host->batch_count(out) - 1);
    return rc;
}

/* ---- single-market replies ---- */

static int collect_single(http_json *h, const hj_request *rq, const hj_reply *rep, tf_batch *out)
{
    const tf_host *host = h->host;
    const char *sym = h->symbols[rq->first];
    char ctx[HJ_CTX_MAX + HJ_SYMBOL_MAX];
    snprintf(ctx, sizeof ctx, "%s %s", rq->ctx, sym);
    const json_t *item = host->json_pointer(rep->root, h->item.set ? h->item.path : "");
    if (!item) {
        host->report_error(h->self, TF_EPARSE, "%s: item %s: expected an item, found nothing", ctx,
                           h->item.path);
        return TF_EPARSE;
    }
    if (h->symbol_field.set) {
        const json_t *s = host->json_pointer(item, h->symbol_field.path);
        const char *venue = json_string_value(s);
        if (!venue || strcasecmp(venue, h->venue[rq->first]) != 0) {
            char found[HJ_TEXT_MAX];
            json_text(s, found, sizeof found);
            host->report_error(h->self, TF_EVALUE, "%s: symbol_field %s: expected \"%s\", found %s",
                               ctx, h->symbol_field.path, h->venue[rq->first], found);
            return TF_EVALUE;
        }
    }
    hj_values v = {{0}, {0}};
    int rc = parse_item(h, ctx, rep->root, item, rep->received_ms, &v);
    if (rc == TF_OK)
        rc = emit(h, out, sym, &v, rep->received_ms);
    return rc;
}

/* ---- bulk replies ---- */

/* The base asset of a venue symbol (strip prefix and suffix, ignoring case), upper case, into
 * `out`; false when the symbol is another market (prefix or suffix absent, not a plain code). */
static bool base_asset(const http_json *h, const char *venue, char out[HJ_SYMBOL_MAX])
{
    size_t len = strlen(venue);
    size_t pre = strlen(h->strip_prefix);
    size_t suf = strlen(h->strip_suffix);
    if (len <= pre + suf || strncasecmp(venue, h->strip_prefix, pre) != 0 ||
        strcasecmp(venue + len - suf, h->strip_suffix) != 0)
        return false;
    size_t n = len - pre - suf;
    if (n >= HJ_SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)venue[pre + i];
        if (!isalnum(c))
            return false;
        out[i] = (char)toupper(c);
    }
    out[n] = '\0';
    return true;
}

/* Index of `sym` among the symbols this request serves, or -1. */
static long wanted(const http_json *h, const hj_request *rq, const char *sym)
{
    for (size_t i = rq->first; i < rq->first + rq->count; i++)
        if (strcmp(h->symbols[i], sym) == 0)
            return (long)i;
    return -1;
}

/* One member of the items: matched to a symbol, parsed and emitted. `key` is the member name
 * of an object of items, NULL for an array. */
static void bulk_item(http_json *h, const hj_request *rq, const hj_reply *rep, const char *key,
                      size_t index, const json_t *item, hj_tally *t, tf_batch *out)
{
    const tf_host *host = h->host;
    /* A scalar beside the items (Bithumb's "date" in ALL_KRW) or an empty one (an inactive
     * Bithumb coin is []): no market data, not an error (NOTES.md 1a). */
    if (json_is_array(item) ? json_array_size(item) == 0
                            : !json_is_object(item) || json_object_size(item) == 0)
        return;
    const char *venue = key;
    if (h->symbol_field.set) {
        const json_t *s = host->json_pointer(item, h->symbol_field.path);
        venue = json_string_value(s);
        if (!venue) {
            tally(t, TF_EPARSE);
            host->report_error(h->self, TF_EPARSE,
                               "%s: items[%zu]: symbol_field %s: expected a string, found %s",
                               rq->ctx, index, h->symbol_field.path, type_name(h, s));
            return;
        }
    }
    char sym[HJ_SYMBOL_MAX];
    if (!base_asset(h, venue, sym))
        return; /* another market (other quote, other instrument type) */
    if (!h->every) {
        long i = wanted(h, rq, sym);
        if (i < 0 || h->found[i])
            return;
        h->found[i] = true;
    }
    char ctx[HJ_CTX_MAX + HJ_SYMBOL_MAX];
    snprintf(ctx, sizeof ctx, "%s %s", rq->ctx, sym);
    hj_values v = {{0}, {0}};
    int rc = parse_item(h, ctx, rep->root, item, rep->received_ms, &v);
    if (rc == TF_OK)
        rc = emit(h, out, sym, &v, rep->received_ms);
    tally(t, rc);
}

/* The item collection of a bulk reply, or NULL after reporting why there is none. */
static const json_t *bulk_items(http_json *h, const hj_request *rq, const hj_reply *rep, int *rc)
{
    const tf_host *host = h->host;
    char where[HJ_TEXT_MAX];
    pointer_text(&h->items, where, sizeof where);
    const json_t *items = host->json_pointer(rep->root, h->items.path);
    if (!json_is_array(items) && !json_is_object(items)) {
        *rc = TF_EPARSE;
        host->report_error(h->self, *rc, "%s: items %s: expected an array or an object, found %s",
                           rq->ctx, where, type_name(h, items));
        return NULL;
    }
    if ((json_is_array(items) ? json_array_size(items) : json_object_size(items)) == 0) {
        /* Upbit answers an unknown market with 200 [] (NOTES.md 4). */
        *rc = TF_ENOTFOUND;
        host->report_error(h->self, *rc, "%s: items %s: expected at least one item, found %s",
                           rq->ctx, where,
                           json_is_array(items) ? "an empty array" : "an empty object");
        return NULL;
    }
    if (json_is_array(items) && !h->symbol_field.set) {
        *rc = TF_EPARSE;
        host->report_error(h->self, *rc,
                           "%s: items %s: an array of items needs symbol_field (where each item "
                           "names its market, e.g. /market), found none configured",
                           rq->ctx, where);
        return NULL;
    }
    return items;
}

static void collect_bulk(http_json *h, const hj_request *rq, const hj_reply *rep, hj_tally *t,
                         tf_batch *out)
{
    int rc = TF_OK;
    const json_t *items = bulk_items(h, rq, rep, &rc);
    if (!items) {
        tally(t, rc);
        return;
    }
    hj_tally mine = {0};
    for (size_t i = rq->first; i < rq->first + rq->count; i++)
        h->found[i] = false;
    if (json_is_array(items)) {
        size_t i;
        const json_t *item;
        json_array_foreach(items, i, item)
        {
            bulk_item(h, rq, rep, NULL, i, item, &mine, out);
        }
    } else {
        const char *key;
        const json_t *item;
        size_t i = 0;
        json_object_foreach((json_t *)items, key, item)
        {
            bulk_item(h, rq, rep, key, i++, item, &mine, out);
        }
    }
    for (size_t i = rq->first; i < rq->first + rq->count; i++) {
        if (h->found[i])
            continue;
        tally(&mine, TF_ENOTFOUND);
        h->host->report_error(h->self, TF_ENOTFOUND, "%s %s: expected an item for %s, found none",
                              rq->ctx, h->symbols[i], h->venue[i]);
    }
    if (h->every && mine.emitted == 0 && mine.last_error == TF_OK) {
        tally(&mine, TF_ENOTFOUND);
        h->host->report_error(h->self, TF_ENOTFOUND,
                              "%s: expected at least one item whose symbol is %s<base>%s, found "
                              "none",
                              rq->ctx, h->strip_prefix, h->strip_suffix);
    }
    t->emitted += mine.emitted;
    if (mine.last_error != TF_OK)
        t->last_error = mine.last_error;
}

static int hj_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    http_json *h = instance;
    (void)tick;
    hj_tally t = {0};
    for (size_t i = 0; i < h->n_requests; i++) {
        const hj_request *rq = &h->requests[i];
        hj_reply rep = {0};
        int rc = fetch(h, rq, &rep);
        if (rc != TF_OK)
            tally(&t, rc);
        else if (h->items.set)
            collect_bulk(h, rq, &rep, &t, out);
        else
            tally(&t, collect_single(h, rq, &rep, out));
        json_decref(rep.root);
    }
    return tally_result(&t);
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "http_json",
    .kind = TF_KIND_SOURCE,
    .description = "Tickers from any public JSON REST endpoint, mapped in YAML (URL template, "
                   "ok condition, JSON pointers to the fields)",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = hj_init,
    .destroy = hj_destroy,
    .collect = hj_collect,
};
