/*
 * `bithumb_balance` source: the account's balances from Bithumb's v1 private endpoint
 * /info/balance, signed with the v1 scheme (Api-Key, Api-Nonce, Api-Sign = base64 of the hex
 * HMAC-SHA512 of endpoint NUL params NUL nonce). One `balance` record per currency. The real
 * endpoint wants a POST of the signed form (sent with the host's http_post).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tickflow/tickflow.h>

#include "sign.h"

#define BB_ENDPOINT   "/info/balance"
#define BB_URL_MAX    768
#define BB_FORM_MAX   256
#define BB_KEY_MAX    256
#define BB_HEADER_MAX (TF_SIGN_SHA512_B64 + BB_KEY_MAX + 32)
#define BB_CUR_MAX    24
#define BB_CTX_MAX    192
#define BB_ERR_MAX    256

typedef struct bithumb_balance {
    const tf_host *host;       /* borrowed, outlives the instance */
    tf_instance *self;         /* borrowed */
    char *base_url;            /* owned, without trailing '/' */
    const char *exchange;      /* borrowed from options */
    const char *key_name;      /* borrowed from options */
    const char *opt_key;       /* borrowed secret option; NULL when unset */
    const char *opt_secret;    /* borrowed secret option; NULL when unset */
    char currency[BB_CUR_MAX]; /* order_currency: ALL or one coin, upper case */
    bool include_zero;
    int64_t timeout_ms;
} bithumb_balance;

/* The three amounts of one currency, parsed before any record is made. */
typedef struct bb_amounts {
    double total;
    double available;
    double in_use;
} bb_amounts;

/* The signed request of one tick; wiped after use (the headers hold the key). */
typedef struct bb_request {
    char url[BB_URL_MAX];
    char form[BB_FORM_MAX]; /* the signed form: the POST body (or the query on an old host) */
    bool post;
    char key_header[BB_KEY_MAX + 16];
    char nonce_header[48];
    char sign_header[TF_SIGN_SHA512_B64 + 16];
} bb_request;

static const tf_option_def options[] = {
    {"base_url", TF_OPT_STRING, "https://api.bithumb.com", 0,
     "Root of Bithumb's v1 REST API (http:// or https://), e.g. the fake exchange in tests", 0,
     NULL},
    {"exchange", TF_OPT_STRING, "bithumb", 0, "Value of the records' `exchange` field", 0, NULL},
    {"key_name", TF_OPT_STRING, "main", 0,
     "Name of the Bithumb key pair in the encrypted key store (docs/security.md)", 0, NULL},
    {"api_key", TF_OPT_SECRET, NULL, 0,
     "API key from ${VAR} or ${file:/path}, used when the key store has no such entry (e.g. a "
     "Kubernetes secret mounted as a file); requires api_secret",
     0, NULL},
    {"api_secret", TF_OPT_SECRET, NULL, 0, "API secret matching api_key", 0, NULL},
    {"currency", TF_OPT_STRING, "ALL", 0,
     "order_currency: ALL for every coin, or one coin (BTC); KRW is always included", 0, NULL},
    {"include_zero", TF_OPT_BOOL, "false", 0,
     "Also emit currencies whose total is 0 (ALL lists every listed coin)", 0, NULL},
    {"timeout", TF_OPT_DURATION, "5s", 0, "Time limit of each HTTP request", 0, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};

/* ---- instance ---- */

static void bb_destroy(void *instance)
{
    bithumb_balance *b = instance;
    if (!b)
        return;
    free(b->base_url);
    free(b);
}

static bool currency_code(const char *s, char *out)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len >= BB_CUR_MAX)
        return false;
    for (size_t k = 0; k < len; k++) {
        if (!isalnum((unsigned char)s[k]))
            return false;
        out[k] = (char)toupper((unsigned char)s[k]);
    }
    out[len] = '\0';
    return true;
}

static int init_options(bithumb_balance *b, const tf_options *opts)
{
    const tf_host *h = b->host;
    const char *cur = h->opt_string(opts, "currency");
    if (sign_key_options(h, b->self, opts, &b->opt_key, &b->opt_secret) != TF_OK)
        return TF_EINVAL;
    if (!b->key_name || !b->key_name[0] || !b->exchange || !b->exchange[0]) {
        h->log(b->self, TF_LOG_ERROR, "%s: expected a non-empty name, found \"\"",
               b->exchange && b->exchange[0] ? "key_name" : "exchange");
        return TF_EINVAL;
    }
    if (!currency_code(cur, b->currency)) {
        h->log(b->self, TF_LOG_ERROR,
               "currency: expected ALL or a coin of 1 to %d letters or digits, found \"%s\"",
               BB_CUR_MAX - 1, cur ? cur : "");
        return TF_EINVAL;
    }
    b->include_zero = h->opt_bool(opts, "include_zero");
    return h->opt_positive_duration(b->self, opts, "timeout", &b->timeout_ms);
}

static int bb_init(const tf_host *host, tf_instance *self, const tf_options *opts, void **instance)
{
    bithumb_balance *b = calloc(1, sizeof *b);
    if (!b)
        return TF_ENOMEM;
    b->host = host;
    b->self = self;
    b->exchange = host->opt_string(opts, "exchange");
    b->key_name = host->opt_string(opts, "key_name");
    int rc = host->base_url(self, "base_url", host->opt_string(opts, "base_url"), BB_URL_MAX - 256,
                            &b->base_url);
    rc = rc ? rc : init_options(b, opts);
    if (rc != TF_OK) {
        bb_destroy(b);
        return rc;
    }
    *instance = b;
    return TF_OK;
}

/* ---- keys and signature ---- */

/* The key pair for this tick (sign.c: the key store, else the secret options). */
static int load_keys(bithumb_balance *b, const char *ctx, char *key, char *secret)
{
    return sign_load_keys(b->host, b->self, ctx, "bithumb", b->key_name, b->opt_key, b->opt_secret,
                          key, secret, BB_KEY_MAX);
}

/* The form (url-encoded, '/' as %2F the way Python's urlencode writes it) and the signed
 * message endpoint NUL form NUL nonce; the message length counts both NULs. */
static int sign_form(const bithumb_balance *b, const char *secret, int64_t nonce, char *form,
                     char *sig)
{
    char msg[BB_FORM_MAX + 64];
    int f = snprintf(form, BB_FORM_MAX,
                     "order_currency=%s&payment_currency=KRW&endpoint=%%2Finfo%%2Fbalance",
                     b->currency);
    if (f < 0 || f >= BB_FORM_MAX)
        return TF_EINVAL;
    int m = snprintf(msg, sizeof msg, "%s%c%s%c%" PRId64, BB_ENDPOINT, '\0', form, '\0', nonce);
    int rc = m < 0 || (size_t)m >= sizeof msg ? TF_EINVAL : TF_OK;
    if (rc == TF_OK && sign_bithumb_v1(secret, msg, (size_t)m, sig, TF_SIGN_SHA512_B64) != 0)
        rc = TF_ERR;
    explicit_bzero(msg, sizeof msg);
    return rc;
}

static int build_request(bithumb_balance *b, const char *ctx, bb_request *rq)
{
    char key[BB_KEY_MAX];
    char secret[BB_KEY_MAX];
    char form[BB_FORM_MAX];
    char sig[TF_SIGN_SHA512_B64];
    int64_t nonce = b->host->now_ms();
    int rc = load_keys(b, ctx, key, secret);
    if (rc != TF_OK)
        goto out;
    rc = sign_form(b, secret, nonce, form, sig);
    if (rc != TF_OK) {
        b->host->report_error(b->self, rc,
                              "%s: could not sign the request (form too long or "
                              "OpenSSL HMAC failed)",
                              ctx);
        goto out;
    }
    /* Bithumb's v1 private API takes the signed form as a POST body; a host without
     * http_post gets it in the query (the fake exchange accepts both). */
    rq->post = TF_HOST_HAS(b->host, http_post);
    snprintf(rq->form, sizeof rq->form, "%s", form);
    int u = rq->post ? snprintf(rq->url, sizeof rq->url, "%s%s", b->base_url, BB_ENDPOINT)
                     : snprintf(rq->url, sizeof rq->url, "%s%s?%s", b->base_url, BB_ENDPOINT, form);
    int k = snprintf(rq->key_header, sizeof rq->key_header, "Api-Key: %s", key);
    int n = snprintf(rq->nonce_header, sizeof rq->nonce_header, "Api-Nonce: %" PRId64, nonce);
    int s = snprintf(rq->sign_header, sizeof rq->sign_header, "Api-Sign: %s", sig);
    if (u < 0 || (size_t)u >= sizeof rq->url || k < 0 || (size_t)k >= sizeof rq->key_header ||
        n < 0 || (size_t)n >= sizeof rq->nonce_header || s < 0 ||
        (size_t)s >= sizeof rq->sign_header) {
        b->host->report_error(b->self, TF_EINVAL, "%s: URL or header too long", ctx);
        rc = TF_EINVAL;
    }
out:
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(key, sizeof key);
    explicit_bzero(sig, sizeof sig);
    return rc;
}

/* ---- reply ---- */

/* Bithumb answers HTTP 200 with {"status": "5300", "message": "Invalid Apikey"} (5100 bad auth
 * data, 5600 with a reason...): anything but "0000" is the API refusing the call. */
static int check_status(bithumb_balance *b, const char *ctx, const json_t *root)
{
    const tf_host *h = b->host;
    const json_t *st = json_object_get(root, "status");
    const char *status = json_string_value(st);
    if (status && strcmp(status, "0000") == 0)
        return TF_OK;
    if (!status) {
        h->report_error(b->self, TF_EPARSE, "%s: status: expected \"0000\", found %s", ctx,
                        h->json_type_name(st));
        return TF_EPARSE;
    }
    const char *msg = json_string_value(json_object_get(root, "message"));
    h->report_error(b->self, TF_EAPI, "%s: expected status 0000, found Bithumb error %s (%s)", ctx,
                    status, msg ? msg : "no message");
    return TF_EAPI;
}

static int fetch_balance(bithumb_balance *b, const char *ctx, json_t **root, int64_t *received)
{
    const tf_host *h = b->host;
    bb_request rq;
    tf_fetch ft = {.struct_size = sizeof ft, .context = ctx};
    int rc = build_request(b, ctx, &rq);
    if (rc != TF_OK)
        goto out;
    const char *const headers[] = {rq.key_header, rq.nonce_header, rq.sign_header,
                                   "Content-Type: application/x-www-form-urlencoded", NULL};
    if (rq.post) {
        ft.post_body = rq.form;
        ft.post_len = strlen(rq.form);
    }
    rc = h->fetch_json(b->self,
                       &(tf_http_request){.struct_size = sizeof(tf_http_request),
                                          .url = rq.url,
                                          .headers = headers,
                                          .timeout_ms = b->timeout_ms},
                       &ft);
    *received = ft.received_ms;
    if (rc != TF_OK && ft.status != 0 && (ft.status < 200 || ft.status > 299)) {
        const char *st = json_string_value(json_object_get(ft.root, "status"));
        rc = st ? check_status(b, ctx, ft.root) : h->fetch_http_error(b->self, &ft, "200");
    }
    rc = rc ? rc : check_status(b, ctx, ft.root);
    if (rc == TF_OK && !json_is_object(json_object_get(ft.root, "data"))) {
        h->report_error(b->self, TF_EPARSE, "%s: data: expected an object, found %s", ctx,
                        h->json_type_name(json_object_get(ft.root, "data")));
        rc = TF_EPARSE;
    }
    if (rc == TF_OK) {
        *root = ft.root;
        ft.root = NULL;
    }
out:
    explicit_bzero(&rq, sizeof rq);
    json_decref(ft.root);
    h->http_free(ft.response);
    return rc;
}

static int get_amount(bithumb_balance *b, const char *ctx, const json_t *data, const char *prefix,
                      const char *cur, double *out)
{
    char key[BB_CUR_MAX + 16];
    char err[BB_ERR_MAX];
    snprintf(key, sizeof key, "%s%s", prefix, cur);
    int rc =
        b->host->json_number(json_object_get(data, key), TF_NUM_NONNEGATIVE, out, err, sizeof err);
    if (rc != TF_OK)
        b->host->report_error(b->self, rc, "%s: %s: %s", ctx, key, err);
    return rc;
}

static int emit(bithumb_balance *b, tf_batch *out, const char *cur, const bb_amounts *a, int64_t ts)
{
    const tf_host *h = b->host;
    char upper[BB_CUR_MAX];
    currency_code(cur, upper);
    tf_record *r = h->record_new(out, "balance");
    if (!r)
        return TF_ENOMEM;
    int rc = h->record_set_string(r, "exchange", b->exchange);
    rc = rc ? rc : h->record_set_string(r, "currency", upper);
    rc = rc ? rc : h->record_set_double(r, "total", a->total);
    rc = rc ? rc : h->record_set_double(r, "available", a->available);
    rc = rc ? rc : h->record_set_double(r, "in_use", a->in_use);
    rc = rc ? rc : h->record_set_ts(r, "ts", ts);
    if (rc != TF_OK) /* never leave a half record behind */
        h->batch_remove(out, h->batch_count(out) - 1);
    return rc;
}

/* One currency: the data object has total_<c>, in_use_<c>, available_<c> (lower case). */
static int collect_currency(bithumb_balance *b, const json_t *data, const char *cur, int64_t ts,
                            tf_batch *out)
{
    char ctx[BB_CTX_MAX];
    bb_amounts a = {0};
    snprintf(ctx, sizeof ctx, "%s %s %s", b->exchange, BB_ENDPOINT, cur);
    int rc = get_amount(b, ctx, data, "total_", cur, &a.total);
    rc = rc ? rc : get_amount(b, ctx, data, "available_", cur, &a.available);
    rc = rc ? rc : get_amount(b, ctx, data, "in_use_", cur, &a.in_use);
    if (rc != TF_OK)
        return rc;
    if (a.total == 0.0 && !b->include_zero && strcmp(cur, "krw") != 0)
        return TF_OK;
    return emit(b, out, cur, &a, ts);
}

static int bb_collect(void *instance, const tf_tick *tick, tf_batch *out)
{
    bithumb_balance *b = instance;
    (void)tick;
    char ctx[BB_CTX_MAX];
    snprintf(ctx, sizeof ctx, "%s %s", b->exchange, BB_ENDPOINT);
    json_t *root = NULL;
    int64_t received = 0;
    int rc = fetch_balance(b, ctx, &root, &received);
    if (rc != TF_OK)
        return rc;
    const json_t *data = json_object_get(root, "data");
    size_t before = b->host->batch_count(out);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)data, key, v)
    {
        if (strncmp(key, "total_", 6) != 0 || strlen(key + 6) >= BB_CUR_MAX)
            continue;
        int crc = collect_currency(b, data, key + 6, received, out);
        rc = crc ? crc : rc;
    }
    if (rc == TF_OK && b->host->batch_count(out) == before) {
        b->host->report_error(b->self, TF_EPARSE,
                              "%s: data: expected total_<currency> members, found none", ctx);
        rc = TF_EPARSE;
    }
    /* Bad currencies were reported one by one; the tick is good when it produced records. */
    if (rc != TF_OK && rc != TF_ENOMEM && b->host->batch_count(out) > before)
        rc = TF_OK;
    json_decref(root);
    return rc;
}

TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,
    .name = "bithumb_balance",
    .kind = TF_KIND_SOURCE,
    .description = "Bithumb account balances (signed v1 /info/balance)",
    .version = TF_VERSION_STRING,
    .options = options,
    .init = bb_init,
    .destroy = bb_destroy,
    .collect = bb_collect,
};
