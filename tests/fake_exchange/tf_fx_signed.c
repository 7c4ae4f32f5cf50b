/* tf_fx_signed: signed endpoints (see tf_fx_signed.h). Error bodies are the venues' own:
 * Binance -2015 (401), -1021 and -1022 (400); Bithumb HTTP 200 with status 5300 (unknown key)
 * or 5100 (bad auth data). */
#include "tf_fx_signed.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tf_fx_util.h"

#define TF_FX_SIGNED_QUERY_MAX 2048
#define TF_FX_RECV_WINDOW_MAX  60000
#define TF_FX_FUTURE_MS        1000 /* Binance: timestamp at most 1 s ahead of the server */

static const char *tf_fx_api_key = TF_FX_SIGNED_DEFAULT_KEY;
static const char *tf_fx_api_secret = TF_FX_SIGNED_DEFAULT_SECRET;

/* ---- command line ---- */

/* Matches argv[i] against --name or --name=V; sets *value and the number of argv slots used. */
static int tf_fx_take_one(int argc, char **argv, int i, const char *name, const char **value,
                          int *used)
{
    size_t len = strlen(name);
    if (strncmp(argv[i], name, len) != 0)
        return 0;
    if (argv[i][len] == '=') {
        *value = argv[i] + len + 1;
        *used = 1;
        return 1;
    }
    if (argv[i][len] != '\0')
        return 0;
    if (i + 1 >= argc) {
        fprintf(stderr, "%s: expected a value, found the end of the arguments\n", name);
        return -1;
    }
    *value = argv[i + 1];
    *used = 2;
    return 1;
}

int tf_fx_signed_take_args(int *argc, char **argv)
{
    int i = 1;
    while (i < *argc) {
        int used = 0;
        int r = tf_fx_take_one(*argc, argv, i, "--api-key", &tf_fx_api_key, &used);
        if (r == 0)
            r = tf_fx_take_one(*argc, argv, i, "--api-secret", &tf_fx_api_secret, &used);
        if (r < 0)
            return -1;
        if (r == 0) {
            i++;
            continue;
        }
        memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof *argv);
        *argc -= used;
    }
    if (tf_fx_api_key[0] == '\0' || tf_fx_api_secret[0] == '\0') {
        fprintf(stderr, "--api-key/--api-secret: expected non-empty values\n");
        return -1;
    }
    return 0;
}

int tf_fx_signed_match(const char *url)
{
    return strcmp(url, "/fapi/v2/positionRisk") == 0 || strcmp(url, "/info/balance") == 0;
}

/* ---- canonical query ---- */

struct tf_fx_query {
    char buf[TF_FX_SIGNED_QUERY_MAX];
    size_t len;
    int overflow;
};

/* RFC 3986 unreserved characters stay, everything else is %XX (what urlencode produces for
 * the values our clients send). */
static void tf_fx_query_put(struct tf_fx_query *q, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int keep = isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        if (q->len + 4 >= sizeof q->buf) {
            q->overflow = 1;
            return;
        }
        if (keep) {
            q->buf[q->len++] = (char)ch;
        } else {
            q->buf[q->len++] = '%';
            q->buf[q->len++] = hex[ch >> 4];
            q->buf[q->len++] = hex[ch & 15];
        }
    }
    q->buf[q->len] = '\0';
}

/* A separator ('&', '=') as is. */
static void tf_fx_query_raw(struct tf_fx_query *q, char ch)
{
    if (q->len + 2 >= sizeof q->buf) {
        q->overflow = 1;
        return;
    }
    q->buf[q->len++] = ch;
    q->buf[q->len] = '\0';
}

static enum MHD_Result tf_fx_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct tf_fx_query *q = cls;
    (void)kind;
    if (strcmp(key, "signature") == 0)
        return MHD_YES;
    if (q->len > 0)
        tf_fx_query_raw(q, '&');
    tf_fx_query_put(q, key);
    if (value != NULL) {
        tf_fx_query_raw(q, '=');
        tf_fx_query_put(q, value);
    }
    return MHD_YES;
}

/* The query string as sent, minus `signature`, rebuilt from the decoded arguments in order. */
static int tf_fx_canonical_query(struct MHD_Connection *c, struct tf_fx_query *q)
{
    memset(q, 0, sizeof *q);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, tf_fx_query_arg, q);
    return q->overflow ? -1 : 0;
}

static void tf_fx_hmac_hex(const EVP_MD *md, const char *msg, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (HMAC(md, tf_fx_api_secret, (int)strlen(tf_fx_api_secret), (const unsigned char *)msg, len,
             d, &n) == NULL)
        return;
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int tf_fx_equal(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0;
    return a != NULL && b != NULL && la == strlen(b) && la > 0 && CRYPTO_memcmp(a, b, la) == 0;
}

/* ---- Binance ---- */

static int tf_fx_binance_error(struct tf_fx_reply *out, unsigned status, int code, const char *msg)
{
    out->status = status;
    out->json = json_pack("{s:i, s:s}", "code", code, "msg", msg);
    return out->json ? 0 : -1;
}

static json_t *tf_fx_position(const char *symbol, const char *amt, const char *entry,
                              const char *mark, const char *pnl, int64_t update_ms)
{
    /* Field order and string-typed numbers as in Binance's GET /fapi/v2/positionRisk docs. */
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                     "s:I}",
                     "symbol", symbol, "positionAmt", amt, "entryPrice", entry, "markPrice", mark,
                     "unRealizedProfit", pnl, "liquidationPrice", "0", "leverage", "10",
                     "maxNotionalValue", "20000000", "marginType", "cross", "isolatedMargin",
                     "0.00000000", "isAutoAddMargin", "false", "positionSide", "BOTH", "notional",
                     "0", "isolatedWallet", "0", "updateTime", (json_int_t)update_ms);
}

static int tf_fx_positions(struct tf_fx_reply *out, int64_t now)
{
    out->status = 200;
    out->json = json_pack(
        "[o, o, o]",
        tf_fx_position("BTCUSDT", "0.500", "94000.0", "95012.35000000", "506.17500000",
                       now - 60000),
        tf_fx_position("ETHUSDT", "0.000", "0.0", "3500.15000000", "0.00000000", 0),
        tf_fx_position("SOLUSDT", "-10", "180.5", "175.25000000", "52.50000000", now - 120000));
    return out->json ? 0 : -1;
}

static int tf_fx_serve_binance(struct MHD_Connection *c, struct tf_fx_reply *out)
{
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-MBX-APIKEY");
    if (!tf_fx_equal(key, tf_fx_api_key))
        return tf_fx_binance_error(out, 401, -2015,
                                   "Invalid API-key, IP, or permissions for action.");
    const char *ts_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timestamp");
    const char *rw_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "recvWindow");
    const char *sig = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "signature");
    if (ts_s == NULL || sig == NULL)
        return tf_fx_binance_error(out, 400, -1102,
                                   "Mandatory parameter 'timestamp' or 'signature' was not sent, "
                                   "was empty/null, or malformed.");
    long long ts = strtoll(ts_s, NULL, 10);
    long long rw = rw_s != NULL ? strtoll(rw_s, NULL, 10) : 5000;
    int64_t now = tf_fx_wall_ms();
    if (rw <= 0 || rw > TF_FX_RECV_WINDOW_MAX || ts >= now + TF_FX_FUTURE_MS || now - ts > rw)
        return tf_fx_binance_error(out, 400, -1021,
                                   "Timestamp for this request is outside of the recvWindow.");
    struct tf_fx_query q;
    char expect[2 * EVP_MAX_MD_SIZE + 1];
    if (tf_fx_canonical_query(c, &q) != 0)
        return tf_fx_binance_error(out, 400, -1022, "Signature for this request is not valid.");
    tf_fx_hmac_hex(EVP_sha256(), q.buf, q.len, expect);
    if (!tf_fx_equal(sig, expect))
        return tf_fx_binance_error(out, 400, -1022, "Signature for this request is not valid.");
    return tf_fx_positions(out, now);
}

/* ---- Bithumb ---- */

static int tf_fx_bithumb_status(struct tf_fx_reply *out, const char *status, const char *msg)
{
    out->status = 200;
    out->json = json_pack("{s:s, s:s}", "status", status, "message", msg);
    return out->json ? 0 : -1;
}

static int tf_fx_balance(struct tf_fx_reply *out)
{
    /* Layout of Bithumb's v1 /info/balance docs: total_/in_use_/available_ per currency plus
     * xcoin_last_<coin>, every number a string. */
    out->status = 200;
    out->json = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
                          "status", "0000", "data", "total_krw", "1000000", "in_use_krw", "250000",
                          "available_krw", "750000", "total_btc", "0.50000000", "in_use_btc",
                          "0.10000000", "available_btc", "0.40000000", "xcoin_last_btc",
                          "136850000", "total_eth", "0.00000000", "in_use_eth", "0.00000000",
                          "available_eth", "0.00000000", "xcoin_last_eth", "5040000");
    return out->json ? 0 : -1;
}

static int tf_fx_serve_bithumb(struct MHD_Connection *c, const char *body, size_t len,
                               struct tf_fx_reply *out)
{
    const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Api-Key");
    const char *nonce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Api-Nonce");
    const char *sign = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Api-Sign");
    if (!tf_fx_equal(key, tf_fx_api_key))
        return tf_fx_bithumb_status(out, "5300", "Invalid Apikey");
    if (nonce == NULL || sign == NULL)
        return tf_fx_bithumb_status(out, "5100", "Bad Request.(Auth Data)");
    struct tf_fx_query q;
    if (body != NULL && len > 0 && len < sizeof q.buf) {
        memcpy(q.buf, body, len);
        q.buf[len] = '\0';
        q.len = len;
    } else if (tf_fx_canonical_query(c, &q) != 0) {
        return tf_fx_bithumb_status(out, "5100", "Bad Request.(Auth Data)");
    }
    /* endpoint NUL form NUL nonce; the signature is base64 of the hex digest (v1 docs). */
    char msg[TF_FX_SIGNED_QUERY_MAX + 128];
    int n = snprintf(msg, sizeof msg, "/info/balance%c%s%c%s", '\0', q.buf, '\0', nonce);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    unsigned char b64[4 * sizeof hex / 3 + 4];
    if (n < 0 || (size_t)n >= sizeof msg)
        return tf_fx_bithumb_status(out, "5100", "Bad Request.(Auth Data)");
    tf_fx_hmac_hex(EVP_sha512(), msg, (size_t)n, hex);
    EVP_EncodeBlock(b64, (const unsigned char *)hex, (int)strlen(hex));
    if (!tf_fx_equal(sign, (const char *)b64))
        return tf_fx_bithumb_status(out, "5100", "Bad Request.(Auth Data)");
    return tf_fx_balance(out);
}

int tf_fx_signed_serve(struct MHD_Connection *c, const char *url, const char *method,
                       const char *body, size_t len, struct tf_fx_reply *out)
{
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (strcmp(url, "/fapi/v2/positionRisk") == 0) {
        if (!is_get)
            return tf_fx_binance_error(out, 405, -1000, "Method not allowed: use GET.");
        return tf_fx_serve_binance(c, out);
    }
    /* Bithumb v1 private calls are POSTs; GET with the form in the query is accepted too, for
     * hosts without http_post (plugins/source_bithumb_balance/README.md). */
    if (!is_get && strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return tf_fx_bithumb_status(out, "5302", "Method Not Allowed.(Access Method)");
    return tf_fx_serve_bithumb(c, is_get ? NULL : body, len, out);
}
