/*
 * `fx` source: one KRW-per-USD record per tick from the first provider in the `providers` list
 * that answers with a sane, fresh rate. Owns the provider table (URL and parser per provider)
 * and the failover state (which provider is active, its gauge and the failover counter).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tickflow/plausible.h>
#include <tickflow/tickflow.h>

#define FX_FUTURE_SKEW_MS 5000 /* a payload stamp further ahead than this is rejected */
#define FX_DAILY_MAX_AGE  (26LL * 3600 * 1000) /* daily fixings: up to ~24 h old + margin */
#define FX_KST_OFFSET_MS  (9LL * 3600 * 1000)  /* Korea Standard Time is UTC+9, no DST */
#define FX_DAY_MS         (24LL * 3600 * 1000)
#define FX_URL_MAX        2048
#define FX_ERR_MAX        512

/* A provider's answer once parsed. */
typedef struct fx_quote {
    double rate;         /* KRW per 1 USD */
    int64_t ts_provider; /* epoch ms */
} fx_quote;

/* One kind of provider: where to ask and how to read the answer. */
typedef struct fx_kind {
    const char *name;
    const char *default_base;
    const char *endpoint; /* path shown in messages (never the query: it may hold a key) */
    bool needs_key;
    int64_t default_max_age_ms; /* 0: the source's max_age */
    /* Writes the request URL; false when it does not fit. */
    bool (*url)(const char *base, const char *key, int64_t now_ms, char *out, size_t size);
    /* The provider's own error envelope: true (and a reason in err) when `root` is one. */
    bool (*api_error)(const json_t *root, char *err, size_t err_size);
    /* Reads the rate from a success body; TF_OK or a negative status with a reason in err.
     * `asked_ms` is the wall clock when the request was made. */
    int (*parse)(const tf_host *h, const json_t *root, int64_t asked_ms, fx_quote *q, char *err,
                 size_t err_size);
} fx_kind;

/* One entry of the `providers` option. */
typedef struct fx_provider {
    const fx_kind *kind;
    char *base_url;      /* owned, without a trailing '/' */
    const char *api_key; /* borrowed from the options; NULL when not given */
    int64_t max_age_ms;
} fx_provider;

typedef struct fx {
    const tf_host *host;    /* borrowed, outlives the instance */
    tf_instance *self;      /* borrowed */
    fx_provider *providers; /* owned, n_providers entries in priority order */
    size_t n_providers;
    int64_t timeout_ms;
    int active; /* index of the provider whose rate was emitted last; -1: none */
    bool down;  /* the last tick had no rate from any provider */
    tf_metric *m_active;
    tf_metric *m_failovers;
    tf_plaus guard; /* owned: rate_min..rate_max and max_jump of the rate */
} fx;

/* ---- small helpers ---- */

static int failf(char *err, size_t err_size, int status, const char *fmt, ...) TF_PRINTF(4, 5);

/* Writes the reason into err and returns `status`, so parsers can `return failf(...)`. */
static int failf(char *err, size_t err_size, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return status;
}

/* The host's names, but "nothing" for a missing value: these messages read "found nothing". */
static const char *json_kind_name(const tf_host *h, const json_t *v)
{
    return v ? h->json_type_name(v) : "nothing";
}

/* Short text for the statuses http_get returns without a response. */
static const char *status_text(int status)
{
    switch (status) {
    case TF_ETIMEOUT:
        return "timed out";
    case TF_ECONNECT:
        return "could not connect";
    case TF_ERATELIMIT:
        return "rate limited (Retry-After in force or no rate token)";
    case TF_ECIRCUIT:
        return "circuit breaker open for the host";
    case TF_ETOOLARGE:
        return "response larger than the size cap";
    case TF_ESTOPPED:
        return "stopping";
    case TF_ENOMEM:
        return "out of memory";
    default:
        return "request failed";
    }
}

static bool str_eq(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* How a provider writes a value. Each provider's layout is known, so a value of the other JSON
 * type means the layout changed under us (or a broken relay): it is rejected, not guessed. */
typedef enum fx_json_type {
    FX_NUMBER, /* a JSON number: Dunamu, open.er-api, exchangerate.host */
    FX_STRING  /* a numeric string: Bithumb v1, Korea Exim */
} fx_json_type;

/* TF_EPARSE when obj[name] is absent, TF_EVALUE when it has the wrong JSON type; else TF_OK. */
static int field_get(const json_t *obj, const char *name, fx_json_type want, const json_t **out,
                     char *err, size_t err_size)
{
    const json_t *v = json_object_get(obj, name);
    if (!v)
        return failf(err, err_size, TF_EPARSE, "%s: missing", name);
    if (want == FX_NUMBER && json_is_string(v))
        return failf(err, err_size, TF_EVALUE,
                     "%s: expected a JSON number, found the string "
                     "\"%.40s\"",
                     name, json_string_value(v));
    if (want == FX_STRING && json_is_number(v))
        return failf(err, err_size, TF_EVALUE,
                     "%s: expected a numeric string, found the "
                     "number %.17g",
                     name, json_number_value(v));
    *out = v;
    return TF_OK;
}

/* obj[name] as a strict positive number of the provider's JSON type. */
static int field_number(const tf_host *h, const json_t *obj, const char *name, fx_json_type want,
                        double *out, char *err, size_t err_size)
{
    const json_t *v = NULL;
    int rc = field_get(obj, name, want, &v, err, err_size);
    if (rc != TF_OK)
        return rc;
    char why[256];
    if (h->json_number(v, TF_NUM_POSITIVE, out, why, sizeof why) != TF_OK)
        return failf(err, err_size, TF_EVALUE, "%s: %s", name, why);
    return TF_OK;
}

/* obj[name] as a positive integer (epoch seconds or ms), same rules as field_number. */
static int field_int64(const tf_host *h, const json_t *obj, const char *name, fx_json_type want,
                       int64_t *out, char *err, size_t err_size)
{
    const json_t *v = NULL;
    int rc = field_get(obj, name, want, &v, err, err_size);
    if (rc != TF_OK)
        return rc;
    char why[256];
    if (h->json_int64(v, TF_NUM_POSITIVE, out, why, sizeof why) != TF_OK)
        return failf(err, err_size, TF_EVALUE, "%s: %s", name, why);
    return TF_OK;
}

/* Epoch seconds -> ms, refusing values that would overflow (no real stamp comes close). */
static int seconds_to_ms(int64_t s, const char *name, int64_t *out, char *err, size_t err_size)
{
    if (s > INT64_MAX / 1000)
        return failf(err, err_size, TF_EVALUE, "%s: %" PRId64 " is not epoch seconds", name, s);
    *out = s * 1000;
    return TF_OK;
}

/* Appends `key` percent-encoded (RFC 3986 unreserved characters kept). False if too long. */
static bool append_encoded(char *out, size_t size, size_t *used, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        bool plain = isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (*used + need >= size)
            return false;
        if (plain) {
            out[(*used)++] = (char)*p;
        } else {
            out[(*used)++] = '%';
            out[(*used)++] = hex[*p >> 4];
            out[(*used)++] = hex[*p & 15];
        }
    }
    out[*used] = '\0';
    return true;
}

/* out = prefix + encoded key + suffix. */
static bool url_with_key(char *out, size_t size, const char *prefix, const char *key,
                         const char *suffix)
{
    int n = snprintf(out, size, "%s", prefix);
    if (n < 0 || (size_t)n >= size)
        return false;
    size_t used = (size_t)n;
    if (!append_encoded(out, size, &used, key ? key : ""))
        return false;
    n = snprintf(out + used, size - used, "%s", suffix);
    return n >= 0 && (size_t)n < size - used;
}

/* The KST calendar day of `epoch_ms`, as midnight KST in epoch ms. */
static int64_t kst_day_start_ms(int64_t epoch_ms)
{
    int64_t local = epoch_ms + FX_KST_OFFSET_MS;
    int64_t day = local / FX_DAY_MS;
    if (local % FX_DAY_MS < 0)
        day--;
    return day * FX_DAY_MS - FX_KST_OFFSET_MS;
}

/* ---- dunamu: GET /v1/forex/recent?codes=FRX.KRWUSD (unofficial; NOTES.md §3) ---- */

static bool dunamu_url(const char *base, const char *key, int64_t now_ms, char *out, size_t size)
{
    (void)key;
    (void)now_ms;
    int n = snprintf(out, size, "%s/v1/forex/recent?codes=FRX.KRWUSD", base);
    return n >= 0 && (size_t)n < size;
}

/* Dunamu has no error envelope: an unknown code just leaves the array empty. */
static bool dunamu_api_error(const json_t *root, char *err, size_t err_size)
{
    (void)root;
    (void)err;
    (void)err_size;
    return false;
}

static int dunamu_parse(const tf_host *h, const json_t *root, int64_t asked_ms, fx_quote *q,
                        char *err, size_t err_size)
{
    (void)asked_ms;
    if (!json_is_array(root))
        return failf(err, err_size, TF_EPARSE, "expected a JSON array of quotes, found %s",
                     json_kind_name(h, root));
    /* Several codes may be asked at once and the order is not guaranteed: look it up. */
    const json_t *row = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(root, i, item)
    {
        if (json_is_object(item) && str_eq(json_object_get(item, "code"), "FRX.KRWUSD")) {
            row = item;
            break;
        }
    }
    if (!row)
        return failf(err, err_size, TF_ENOTFOUND,
                     "expected a quote with code FRX.KRWUSD, found %zu other item(s)",
                     json_array_size(root));
    double base;
    double unit;
    int rc = field_number(h, row, "basePrice", FX_NUMBER, &base, err, err_size);
    if (rc == TF_OK)
        rc = field_number(h, row, "currencyUnit", FX_NUMBER, &unit, err, err_size);
    if (rc == TF_OK)
        rc = field_int64(h, row, "timestamp", FX_NUMBER, &q->ts_provider, err, err_size);
    if (rc != TF_OK)
        return rc;
    /* basePrice is per currencyUnit units (JPY quotes are per 100); USD's unit is 1. */
    q->rate = base / unit;
    return TF_OK;
}

/* ---- er_api: GET /v6/latest/USD (open.er-api.com, daily; exchangerate-api.com/docs/free) ---- */

static bool er_api_url(const char *base, const char *key, int64_t now_ms, char *out, size_t size)
{
    (void)key;
    (void)now_ms;
    int n = snprintf(out, size, "%s/v6/latest/USD", base);
    return n >= 0 && (size_t)n < size;
}

/* {"result":"error","error-type":"unsupported-code"} (the key has a hyphen). */
static bool er_api_api_error(const json_t *root, char *err, size_t err_size)
{
    if (!json_is_object(root) || !str_eq(json_object_get(root, "result"), "error"))
        return false;
    const json_t *type = json_object_get(root, "error-type");
    snprintf(err, err_size, "result \"error\", error-type %s",
             json_is_string(type) ? json_string_value(type) : "(missing)");
    return true;
}

static int er_api_parse(const tf_host *h, const json_t *root, int64_t asked_ms, fx_quote *q,
                        char *err, size_t err_size)
{
    (void)asked_ms;
    if (!json_is_object(root))
        return failf(err, err_size, TF_EPARSE, "expected a JSON object, found %s",
                     json_kind_name(h, root));
    if (!str_eq(json_object_get(root, "result"), "success"))
        return failf(err, err_size, TF_EPARSE, "result: expected \"success\", found %s",
                     json_kind_name(h, json_object_get(root, "result")));
    const json_t *base = json_object_get(root, "base_code");
    if (base && !str_eq(base, "USD"))
        return failf(err, err_size, TF_EPARSE, "base_code: expected \"USD\", found %s",
                     json_is_string(base) ? json_string_value(base) : json_kind_name(h, base));
    const json_t *rates = json_object_get(root, "rates");
    if (!json_is_object(rates))
        return failf(err, err_size, TF_EPARSE, "rates: expected an object, found %s",
                     json_kind_name(h, rates));
    int64_t s;
    int rc = field_number(h, rates, "KRW", FX_NUMBER, &q->rate, err, err_size);
    if (rc == TF_OK)
        rc = field_int64(h, root, "time_last_update_unix", FX_NUMBER, &s, err, err_size);
    if (rc == TF_OK)
        rc = seconds_to_ms(s, "time_last_update_unix", &q->ts_provider, err, err_size);
    return rc;
}

/* ---- exchangerate_host: GET /live (APILayer; needs access_key; NOTES.md §3) ---- */

static bool xhost_url(const char *base, const char *key, int64_t now_ms, char *out, size_t size)
{
    (void)now_ms;
    char prefix[FX_URL_MAX];
    int n = snprintf(prefix, sizeof prefix, "%s/live?access_key=", base);
    if (n < 0 || (size_t)n >= sizeof prefix)
        return false;
    return url_with_key(out, size, prefix, key, "&source=USD&currencies=KRW");
}

/* {"success":false,"error":{"code":101,"type":"missing_access_key","info":"..."}}, HTTP 200. */
static bool xhost_api_error(const json_t *root, char *err, size_t err_size)
{
    if (!json_is_object(root) || !json_is_false(json_object_get(root, "success")))
        return false;
    const json_t *e = json_object_get(root, "error");
    const json_t *code = json_object_get(e, "code");
    const json_t *type = json_object_get(e, "type");
    const json_t *info = json_object_get(e, "info");
    snprintf(err, err_size, "success false, error %" JSON_INTEGER_FORMAT " %s: %s",
             json_is_integer(code) ? json_integer_value(code) : (json_int_t)0,
             json_is_string(type) ? json_string_value(type) : "(no type)",
             json_is_string(info) ? json_string_value(info) : "(no info)");
    return true;
}

static int xhost_parse(const tf_host *h, const json_t *root, int64_t asked_ms, fx_quote *q,
                       char *err, size_t err_size)
{
    (void)asked_ms;
    if (!json_is_object(root))
        return failf(err, err_size, TF_EPARSE, "expected a JSON object, found %s",
                     json_kind_name(h, root));
    if (!json_is_true(json_object_get(root, "success")))
        return failf(err, err_size, TF_EPARSE, "success: expected true, found %s",
                     json_kind_name(h, json_object_get(root, "success")));
    const json_t *quotes = json_object_get(root, "quotes");
    if (!json_is_object(quotes))
        return failf(err, err_size, TF_EPARSE, "quotes: expected an object, found %s",
                     json_kind_name(h, quotes));
    int64_t s;
    int rc = field_number(h, quotes, "USDKRW", FX_NUMBER, &q->rate, err, err_size);
    if (rc == TF_OK)
        rc = field_int64(h, root, "timestamp", FX_NUMBER, &s, err, err_size);
    if (rc == TF_OK)
        rc = seconds_to_ms(s, "timestamp", &q->ts_provider, err, err_size);
    return rc;
}

/* ---- koreaexim: GET /site/program/financial/exchangeJSON (Korea Eximbank; NOTES.md §3) ---- */

static bool koreaexim_url(const char *base, const char *key, int64_t now_ms, char *out, size_t size)
{
    /* The fixing is published per KST business day, so the date asked is today in Korea. */
    time_t t = (time_t)((now_ms + FX_KST_OFFSET_MS) / 1000);
    struct tm tm;
    char date[16];
    if (!gmtime_r(&t, &tm) || strftime(date, sizeof date, "%Y%m%d", &tm) != 8)
        return false;
    char prefix[FX_URL_MAX];
    char suffix[64];
    int n =
        snprintf(prefix, sizeof prefix, "%s/site/program/financial/exchangeJSON?authkey=", base);
    int m = snprintf(suffix, sizeof suffix, "&searchdate=%s&data=AP01", date);
    if (n < 0 || (size_t)n >= sizeof prefix || m < 0 || (size_t)m >= sizeof suffix)
        return false;
    return url_with_key(out, size, prefix, key, suffix);
}

static const char *koreaexim_result_text(json_int_t result)
{
    switch (result) {
    case 2:
        return "invalid data code";
    case 3:
        return "invalid authkey";
    case 4:
        return "daily request limit exhausted";
    default:
        return "unknown result code";
    }
}

/* Errors arrive as HTTP 200: one row whose `result` is not 1 (3 = bad key) and null fields. */
static bool koreaexim_api_error(const json_t *root, char *err, size_t err_size)
{
    if (!json_is_array(root))
        return false;
    size_t i;
    json_t *row;
    json_array_foreach(root, i, row)
    {
        const json_t *result = json_object_get(row, "result");
        if (json_is_integer(result) && json_integer_value(result) != 1) {
            snprintf(err, err_size, "result %" JSON_INTEGER_FORMAT " (%s)",
                     json_integer_value(result), koreaexim_result_text(json_integer_value(result)));
            return true;
        }
    }
    return false;
}

/* Korea Exim writes rates with thousands separators ("1,399.5"). A comma is dropped only where
 * it follows a digit and precedes exactly three digits of the integer part, so anything else
 * ("1,39", ",5", "1.2,345") reaches the strict parser unchanged and is rejected there. */
static bool strip_thousands(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool fraction = false;
    for (size_t i = 0; in[i]; i++) {
        char c = in[i];
        if (c == '.')
            fraction = true;
        bool grouping = c == ',' && !fraction && i > 0 && isdigit((unsigned char)in[i - 1]) &&
                        strspn(in + i + 1, "0123456789") == 3;
        if (grouping)
            continue;
        if (n + 1 >= size)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

static int koreaexim_rate(const tf_host *h, const json_t *row, double *out, char *err,
                          size_t err_size)
{
    const json_t *v = NULL;
    int rc = field_get(row, "deal_bas_r", FX_STRING, &v, err, err_size);
    if (rc != TF_OK)
        return rc;
    char why[256] = "expected a decimal number, found a string too long for a rate";
    if (json_is_string(v)) {
        char plain[64];
        json_t *tmp = NULL;
        if (strip_thousands(json_string_value(v), plain, sizeof plain))
            tmp = json_string(plain);
        rc = tmp ? h->json_number(tmp, TF_NUM_POSITIVE, out, why, sizeof why) : TF_EVALUE;
        json_decref(tmp);
    } else {
        rc = h->json_number(v, TF_NUM_POSITIVE, out, why, sizeof why); /* null: says so */
    }
    if (rc != TF_OK)
        return failf(err, err_size, TF_EVALUE, "USD deal_bas_r: %s", why);
    return TF_OK;
}

static int koreaexim_parse(const tf_host *h, const json_t *root, int64_t asked_ms, fx_quote *q,
                           char *err, size_t err_size)
{
    if (!json_is_array(root))
        return failf(err, err_size, TF_EPARSE, "expected a JSON array of currencies, found %s",
                     json_kind_name(h, root));
    /* [] = no fixing for that day yet: weekend, holiday, or before the ~11:00 KST update. */
    if (json_array_size(root) == 0)
        return failf(err, err_size, TF_ENOTFOUND,
                     "no fixing for today (KST) yet: empty array (weekend, holiday or before "
                     "~11:00 KST)");
    const json_t *usd = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(root, i, row)
    {
        if (str_eq(json_object_get(row, "cur_unit"), "USD")) {
            usd = row;
            break;
        }
    }
    if (!usd)
        return failf(err, err_size, TF_ENOTFOUND,
                     "expected a row with cur_unit USD, found %zu "
                     "other row(s)",
                     json_array_size(root));
    int rc = koreaexim_rate(h, usd, &q->rate, err, err_size);
    if (rc != TF_OK)
        return rc;
    /* The payload has no time: stamp the fixing at 11:00 KST of the day asked (its usual
     * publication time), or now if it was published earlier than that. */
    int64_t stamp = kst_day_start_ms(asked_ms) + 11LL * 3600 * 1000;
    q->ts_provider = stamp < asked_ms ? stamp : asked_ms;
    return TF_OK;
}

/* ---- bithumb_usdt: GET /public/ticker/USDT_KRW (crypto rate, carries the tether premium) ---- */

static bool bithumb_url(const char *base, const char *key, int64_t now_ms, char *out, size_t size)
{
    (void)key;
    (void)now_ms;
    int n = snprintf(out, size, "%s/public/ticker/USDT_KRW", base);
    return n >= 0 && (size_t)n < size;
}

/* Bithumb v1 errors come with HTTP 200 and status != "0000" (fixtures README). */
static bool bithumb_api_error(const json_t *root, char *err, size_t err_size)
{
    const json_t *status = json_object_get(root, "status");
    if (!json_is_string(status) || strcmp(json_string_value(status), "0000") == 0)
        return false;
    const json_t *msg = json_object_get(root, "message");
    snprintf(err, err_size, "status %s: %s", json_string_value(status),
             json_is_string(msg) ? json_string_value(msg) : "(no message)");
    return true;
}

static int bithumb_parse(const tf_host *h, const json_t *root, int64_t asked_ms, fx_quote *q,
                         char *err, size_t err_size)
{
    (void)asked_ms;
    if (!json_is_object(root) || !str_eq(json_object_get(root, "status"), "0000"))
        return failf(err, err_size, TF_EPARSE, "expected an object with status \"0000\", found %s",
                     json_kind_name(h, root));
    const json_t *data = json_object_get(root, "data");
    if (!json_is_object(data))
        return failf(err, err_size, TF_EPARSE, "data: expected an object, found %s",
                     json_kind_name(h, data));
    int rc = field_number(h, data, "closing_price", FX_STRING, &q->rate, err, err_size);
    if (rc == TF_OK)
        rc = field_int64(h, data, "date", FX_STRING, &q->ts_provider, err, err_size);
    return rc;
}

static const fx_kind fx_kinds[] = {
    {"dunamu", "https://quotation-api-cdn.dunamu.com", "/v1/forex/recent", false, 0, dunamu_url,
     dunamu_api_error, dunamu_parse},
    {"er_api", "https://open.er-api.com", "/v6/latest/USD", false, FX_DAILY_MAX_AGE, er_api_url,
     er_api_api_error, er_api_parse},
    {"exchangerate_host", "https://api.exchangerate.host", "/live", true, 0, xhost_url,
     xhost_api_error, xhost_parse},
    {"koreaexim", "https://oapi.koreaexim.go.kr", "/site/program/financial/exchangeJSON", true,
     FX_DAILY_MAX_AGE, koreaexim_url, koreaexim_api_error, koreaexim_parse},
    {"bithumb_usdt", "https://api.bithumb.com", "/public/ticker/USDT_KRW", false, 0, bithumb_url,
     bithumb_api_error, bithumb_parse},
};

#define FX_KIND_NAMES "dunamu, er_api, exchangerate_host, koreaexim, bithumb_usdt"

/* ---- options ---- */

static const tf_option_def provider_fields[] = {
    {"name", TF_OPT_STRING, NULL, 1, "Provider: " FX_KIND_NAMES, 0, NULL},
    {"base_url", TF_OPT_STRING, NULL, 0,
     "API root replacing the provider's public one (a proxy, a test server)", 0, NULL},
    {"api_key", TF_OPT_SECRET, NULL, 0,
     "Key of exchangerate_host (access_key) or koreaexim (authkey), from ${VAR} or ${file:...}", 0,
     NULL},
    {"max_age", TF_OPT_DURATION, NULL, 0,
     "Oldest rate taken from this provider (default: the source's max_age when set, else 26h "
     "for the daily er_api and koreaexim and 1h for the others)",
     0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

static const tf_option_def options[] = {
    {"providers", TF_OPT_LIST, "[dunamu, er_api]", 0,
     "Providers tried in this order on every tick; the first sane, fresh rate wins. An item is "
     "a name (" FX_KIND_NAMES ") or a map {name, base_url, api_key, max_age}",
     TF_OPT_MAP, provider_fields},
    {"timeout", TF_OPT_DURATION, "5s", 0, "Time limit of each provider request", 0, NULL},
    {"max_age", TF_OPT_DURATION, "1h", 0,
     "A rate whose provider timestamp is older than this is not used (per-provider override "
     "in the providers item)",
     0, NULL},
    {"pair", TF_OPT_STRING, "USDKRW", 0, "Currency pair; only USDKRW (KRW per 1 USD) for now", 0,
     NULL},
    /* USD/KRW: 1,995 at the 1997 crisis peak, ~900 at its 2007 low, 1,100-1,500 since 2010.
     * The 1997 crisis moved it ~10 % in a day at worst; a provider 10 % away from the last rate
     * is asked to agree with the next provider (or the next tick) first. */
    {"rate_min", TF_OPT_DOUBLE, "500", 0,
     "Lowest sane rate (KRW per USD); a lower one is rejected "
     "(tickflow_source_rejected_total{reason=\"range\"}) and the next provider is asked",
     0, NULL},
    {"rate_max", TF_OPT_DOUBLE, "3000", 0, "Highest sane rate (KRW per USD)", 0, NULL},
    {"max_jump", TF_OPT_DOUBLE, "0.1", 0,
     "Largest move from the last accepted rate taken at once (0.1 = 10 %); a larger one is "
     "rejected (reason=\"jump\") and the next provider asked, and accepted when the next rate "
     "(another provider's or the next tick's) agrees with it within jump_tolerance. 0 = no jump "
     "check",
     0, NULL},
    {"jump_tolerance", TF_OPT_DOUBLE, "0.01", 0, TF_PLAUS_DOC_TOLERANCE, 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- init ---- */

static const fx_kind *kind_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof fx_kinds / sizeof fx_kinds[0]; i++) {
        if (strcmp(fx_kinds[i].name, name) == 0)
            return &fx_kinds[i];
    }
    return NULL;
}

static bool is_http_url(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

/* A duration field of a providers item: the loader hands durations over as integer ms. */
static int item_duration(fx *f, const json_t *v, size_t idx, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return TF_OK;
    }
    f->host->log(f->self, TF_LOG_ERROR,
                 "providers[%zu].max_age: expected a positive duration such as 30m or 26h, "
                 "found %s",
                 idx, json_kind_name(f->host, v));
    return TF_EINVAL;
}

static int configure_provider(fx *f, const tf_options *opts, const json_t *item, size_t idx,
                              fx_provider *p)
{
    const tf_host *h = f->host;
    /* The loader turns a plain `- dunamu` into {name: dunamu}; accept both anyway. */
    const json_t *name = json_is_string(item) ? item : json_object_get(item, "name");
    if (!json_is_string(name)) {
        h->log(f->self, TF_LOG_ERROR, "providers[%zu].name: expected one of %s, found %s", idx,
               FX_KIND_NAMES, json_kind_name(f->host, name));
        return TF_EINVAL;
    }
    p->kind = kind_by_name(json_string_value(name));
    if (!p->kind) {
        h->log(f->self, TF_LOG_ERROR, "providers[%zu].name: expected one of %s, found \"%s\"", idx,
               FX_KIND_NAMES, json_string_value(name));
        return TF_EINVAL;
    }
    const json_t *base = json_object_get(item, "base_url");
    const char *url = json_is_string(base) ? json_string_value(base) : p->kind->default_base;
    if (!is_http_url(url)) {
        h->log(f->self, TF_LOG_ERROR,
               "providers[%zu].base_url (%s): expected a URL starting with http:// or https://, "
               "found \"%s\"",
               idx, p->kind->name, url);
        return TF_EINVAL;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    p->base_url = strndup(url, len);
    if (!p->base_url)
        return TF_ENOMEM;
    const json_t *key = json_object_get(item, "api_key");
    p->api_key = json_is_string(key) && *json_string_value(key) ? json_string_value(key) : NULL;
    if (p->kind->needs_key && !p->api_key) {
        h->log(f->self, TF_LOG_ERROR,
               "providers[%zu] (%s): expected an api_key (api_key: ${SOME_VAR}), found none; "
               "%s refuses requests without a key",
               idx, p->kind->name, p->kind->name);
        return TF_EINVAL;
    }
    /* Precedence: the item's max_age, then the source's max_age if the YAML sets it, then the
     * provider's own default (daily fixings), then the source's default. */
    const json_t *age = json_object_get(item, "max_age");
    if (age)
        return item_duration(f, age, idx, &p->max_age_ms);
    p->max_age_ms = h->opt_duration_ms(opts, "max_age");
    if (!h->opt_is_set(opts, "max_age") && p->kind->default_max_age_ms > 0)
        p->max_age_ms = p->kind->default_max_age_ms;
    return TF_OK;
}

static int configure_providers(fx *f, const tf_options *opts)
{
    const json_t *list = f->host->opt_json(opts, "providers");
    size_t n = json_array_size(list);
    if (n == 0) {
        f->host->log(f->self, TF_LOG_ERROR,
                     "providers: expected at least one of %s, found an empty list", FX_KIND_NAMES);
        return TF_EINVAL;
    }
    f->providers = calloc(n, sizeof *f->providers);
    if (!f->providers)
        return TF_ENOMEM;
    f->n_providers = n;
    for (size_t i = 0; i < n; i++) {
        int rc = configure_provider(f, opts, json_array_get(list, i), i, &f->providers[i]);
        if (rc != TF_OK)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (f->providers[j].kind == f->providers[i].kind) {
                f->host->log(f->self, TF_LOG_ERROR,
                             "providers[%zu]: expected each provider once, found %s again "
                             "(first at providers[%zu])",
                             i, f->providers[i].kind->name, j);
                return TF_EINVAL;
            }
        }
    }
    return TF_OK;
}

static void fx_destroy(void *instance)
{
    fx *f = instance;
    if (!f)
        return;
    for (size_t i = 0; i < f->n_providers; i++)
        free(f->providers[i].base_url);
    free(f->providers);
    tf_plaus_free(&f->guard);
    free(f);
}

static int check_scalars(const tf_host *h, tf_instance *self, const tf_options *opts)
{
    const char *pair = h->opt_string(opts, "pair");
    if (!pair || strcmp(pair, "USDKRW") != 0) {
        h->log(self, TF_LOG_ERROR,
               "pair: expected \"USDKRW\" (the only pair for now), found \"%s\"", pair ? pair : "");
        return TF_EINVAL;
    }
    if (h->opt_duration_ms(opts, "timeout") <= 0 || h->opt_duration_ms(opts, "max_age") <= 0) {
        h->log(self, TF_LOG_ERROR,
               "timeout and max_age: expected durations > 0, found %lld ms "
               "and %lld ms",
               (long long)h->opt_duration_ms(opts, "timeout"),
               (long long)h->opt_duration_ms(opts, "max_age"));
        return TF_EINVAL;
    }
    return TF_OK;
}

static void publish_active(fx *f, int active)
{
    for (size_t i = 0; i < f->n_providers; i++) {
        const char *labels[] = {f->providers[i].kind->name};
        f->host->metric_set(f->m_active, f->self, labels, (int)i == active ? 1.0 : 0.0);
    }
}

static int fx_init(const tf_host *host, tf_instance *self, const tf_options *opts, void **instance)
{
    int rc = check_scalars(host, self, opts);
    if (rc != TF_OK)
        return rc;
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return TF_ENOMEM;
    f->host = host;
    f->self = self;
    f->active = -1;
    f->timeout_ms = host->opt_duration_ms(opts, "timeout");
    rc = configure_providers(f, opts);
    if (rc == TF_OK) {
        tf_plaus_config cfg = {.exchange = "fx",
                               .prefix = "rate",
                               .min = host->opt_double(opts, "rate_min"),
                               .max = host->opt_double(opts, "rate_max"),
                               .max_jump = host->opt_double(opts, "max_jump"),
                               .tolerance = host->opt_double(opts, "jump_tolerance")};
        rc = tf_plaus_init(&f->guard, host, self, &cfg);
    }
    if (rc != TF_OK)
        goto fail;
    static const char *const provider_label[] = {"provider", NULL};
    f->m_active = host->metric_register(
        self, TF_METRIC_GAUGE, "tickflow_fx_provider_active",
        "1 for the FX provider whose rate the fx source emitted last, 0 for the others",
        provider_label, NULL, 0);
    f->m_failovers = host->metric_register(
        self, TF_METRIC_COUNTER, "tickflow_fx_failovers_total",
        "Switches of the fx source to a provider other than the first of its list", NULL, NULL, 0);
    if (!f->m_active || !f->m_failovers) {
        host->log(self, TF_LOG_ERROR, "could not register the fx metrics");
        rc = TF_ERR;
        goto fail;
    }
    publish_active(f, -1);
    *instance = f;
    return TF_OK;
fail:
    fx_destroy(f);
    return rc;
}

/* ---- one provider, one request ---- */

static bool http_ok(long status)
{
    return status >= 200 && status < 300;
}

/* Classifies a response: rate limiting, the provider's own error object, then the HTTP status,
 * then the layout. Fills q on TF_OK. */
static int read_response(fx *f, const fx_provider *p, const tf_fetch *ft, int64_t asked_ms,
                         fx_quote *q, char *err, size_t err_size)
{
    long status = ft->status;
    if (status == 429 || status == 418)
        return failf(err, err_size, TF_ERATELIMIT,
                     "HTTP %ld (rate limited; the client honours Retry-After)", status);
    const json_t *root = ft->root;
    int rc;
    if (!root && !http_ok(status))
        rc = failf(err, err_size, TF_EHTTP, "HTTP %ld with a body that is not JSON", status);
    else if (!root && ft->body_len == 0)
        rc = failf(err, err_size, TF_EPARSE, "expected a JSON body, found an empty body");
    else if (!root)
        rc = failf(err, err_size, TF_EPARSE, "expected a JSON body, found invalid JSON (%s)",
                   ft->error);
    else if (p->kind->api_error(root, err, err_size))
        rc = TF_EAPI;
    else if (!http_ok(status))
        rc = failf(err, err_size, TF_EHTTP, "HTTP %ld", status);
    else
        rc = p->kind->parse(f->host, root, asked_ms, q, err, err_size);
    /* An error object with a 4xx/5xx (er_api's 404) keeps the status for the reader. */
    if (rc == TF_EAPI && !http_ok(status)) {
        size_t used = strlen(err);
        snprintf(err + used, err_size - used, " (HTTP %ld)", status);
    }
    return rc;
}

/* Freshness of a parsed quote (its range and jump are the guard's: plausible). */
static int check_quote(const fx_provider *p, const fx_quote *q, int64_t received_ms, char *err,
                       size_t err_size)
{
    int64_t age = received_ms - q->ts_provider;
    if (age > p->max_age_ms)
        return failf(err, err_size, TF_EVALUE,
                     "stale: expected a rate at most %" PRId64
                     " s old (max_age), found one %" PRId64 " s old (ts_provider %" PRId64 ")",
                     p->max_age_ms / 1000, age / 1000, q->ts_provider);
    if (-age > FX_FUTURE_SKEW_MS)
        return failf(err, err_size, TF_EVALUE,
                     "stale: expected a timestamp at most %d s ahead of the local clock, found "
                     "one %" PRId64 " s ahead (ts_provider %" PRId64 ")",
                     FX_FUTURE_SKEW_MS / 1000, -age / 1000, q->ts_provider);
    return TF_OK;
}

/* The guard's verdict on a fresh rate; a rejection (counted and logged by the guard) becomes
 * this provider's failure, so the next provider is asked and may confirm a held jump. */
static int plausible(fx *f, const fx_quote *q, char *err, size_t err_size)
{
    int rc = tf_plaus_check(&f->guard, "USDKRW", "rate", q->rate);
    if (rc != TF_EVALUE)
        return rc;
    if (f->guard.last_verdict == TF_PLAUS_RANGE)
        return failf(err, err_size, TF_EVALUE,
                     "rate: expected %.6g to %.6g KRW per USD, found %.6g", f->guard.cfg.min,
                     f->guard.cfg.max, q->rate);
    return failf(err, err_size, TF_EVALUE,
                 "rate: expected at most %.3g %% from the last accepted %.6g, found %.6g "
                 "(held until another rate confirms it)",
                 f->guard.cfg.max_jump * 100, f->guard.series[0].state.last, q->rate);
}

/* Asks one provider. TF_OK with q and *received_ms set, or a negative status with the reason
 * in err. */
static int ask_provider(fx *f, const fx_provider *p, fx_quote *q, int64_t *received_ms, char *err,
                        size_t err_size)
{
    const tf_host *h = f->host;
    int64_t asked_ms = h->now_ms();
    char url[FX_URL_MAX];
    if (!p->kind->url(p->base_url, p->api_key, asked_ms, url, sizeof url))
        return failf(err, err_size, TF_EINVAL, "request URL longer than %d bytes", FX_URL_MAX);
    static const char *const headers[] = {"Accept: application/json", NULL};
    tf_http_request req = {.struct_size = sizeof(tf_http_request),
                           .url = url,
                           .headers = headers,
                           .timeout_ms = f->timeout_ms};
    /* Quiet: every failure becomes one reason in the failover summary, not a report. */
    tf_fetch ft = {.struct_size = sizeof ft, .context = p->kind->name, .flags = TF_FETCH_QUIET};
    int rc = h->fetch_json(f->self, &req, &ft);
    *received_ms = ft.received_ms;
    if (ft.status == 0)
        rc = failf(err, err_size, rc, "%s", status_text(rc));
    else
        rc = read_response(f, p, &ft, asked_ms, q, err, err_size);
    json_decref(ft.root);
    h->http_free(ft.response);
    if (rc == TF_OK)
        rc = check_quote(p, q, *received_ms, err, err_size);
    if (rc == TF_OK)
        rc = plausible(f, q, err, err_size);
    return rc;
}

/* ---- failover bookkeeping and the record ---- */

/* Logs and counts a change of the winning provider (once per change, not once per tick). */
static void note_winner(fx *f, int winner, const char *failures)
{
    const tf_host *h = f->host;
    const char *name = f->providers[winner].kind->name;
    if (winner != f->active && winner > 0) {
        h->log(f->self, TF_LOG_WARN, "fx: using %s (%s)", name, failures);
        h->metric_add(f->m_failovers, f->self, NULL, 1);
    } else if (winner != f->active && (f->active > 0 || f->down)) {
        h->log(f->self, TF_LOG_INFO, "fx: using %s again (first provider recovered)", name);
    }
    f->active = winner;
    f->down = false;
    publish_active(f, winner);
}

static void note_all_failed(fx *f, const char *failures)
{
    if (!f->down)
        f->host->log(f->self, TF_LOG_ERROR, "fx: no provider gave a usable rate (%s)", failures);
    f->down = true;
    f->active = -1;
    publish_active(f, -1);
}

static int emit(fx *f, tf_batch *out, const fx_provider *p, const fx_quote *q, int64_t received_ms)
{
    const tf_host *h = f->host;
    tf_record *r = h->record_new(out, "fx");
    if (!r)
        return TF_ENOMEM;
    int rc = h->record_set_string(r, "pair", "USDKRW");
    if (rc == TF_OK)
        rc = h->record_set_double(r, "rate", q->rate);
    if (rc == TF_OK)
        rc = h->record_set_string(r, "provider", p->kind->name);
    if (rc == TF_OK)
        rc = h->record_set_ts(r, "ts_provider", q->ts_provider);
    if (rc == TF_OK)
        rc = h->record_set_ts(r, "ts_received", received_ms);
    if (rc != TF_OK)
        h->batch_remove(out, h->batch_count(out) - 1); /* never leave a half record */
    return rc;
}

/* Appends "<name> failed: <reason>" to the tick's failure list (truncated if long). */
static void add_failure(char *list, size_t size, const char *name, const char *reason)
{
    size_t used = strlen(list);
    if (used + 1 < size)
        snprintf(list + used, size - used, "%s%s failed: %s", used ? "; " : "", name, reason);
}

static int fx_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    (void)tick;
    fx *f = instance;
    char failures[2048] = "";
    int last_rc = TF_ERR;
    for (size_t i = 0; i < f->n_providers; i++) {
        const fx_provider *p = &f->providers[i];
        fx_quote q = {0};
        int64_t received_ms = 0;
        char err[FX_ERR_MAX];
        int rc = ask_provider(f, p, &q, &received_ms, err, sizeof err);
        if (rc == TF_ESTOPPED)
            return rc;
        if (rc == TF_OK) {
            rc = emit(f, out, p, &q, received_ms);
            if (rc == TF_OK)
                note_winner(f, (int)i, failures);
            return rc;
        }
        f->host->report_error(f->self, (tf_status)rc, "fx %s %s: %s", p->kind->name,
                              p->kind->endpoint, err);
        add_failure(failures, sizeof failures, p->kind->name, err);
        last_rc = rc;
    }
    note_all_failed(f, failures);
    return last_rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "fx",
    .kind = TF_KIND_SOURCE,
    .description = "KRW per USD from a prioritised list of FX providers, with failover",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = fx_init,
    .destroy = fx_destroy,
    .collect = fx_collect,
};
