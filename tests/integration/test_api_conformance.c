/*
 * The HTTP API against its contract, docs/openapi.yaml, with Prism (a validating proxy, from
 * tests/clients) in front of a real API replica: `tickflow run` of an API role over a private
 * redis-server that a batch replica (pipelines/demo.yaml on the fake exchange) fills with
 * premiums, tickers, FX and history.
 *
 * Every request of `table` goes through `prism proxy --errors`, which answers a problem+json
 * error of its own instead of forwarding a request, or instead of passing on a response, that
 * violates the spec. A request that breaks the spec on purpose (REFUSED: a malformed symbol, an
 * unknown body property, no token on a write) must be refused by it, and is then sent through a
 * lenient Prism, whose sl-violations header must name the request and never the response. From
 * each operation's first request, the test derives its unknown-parameter 400, missing-token
 * 401, other-method 405, rate-limit 429, URI-length 414, header-size 431 and If-None-Match 304.
 * Every GET is also sent as HEAD, straight to the server, and must mirror the GET (RFC 9110).
 *
 * Then: every operation of the spec has requests here, every status it documents was provoked
 * (500 `internal` aside: out of memory), and every error code and status the server's source
 * (plugins/sink_http_api) can send is in the spec and docs/api.md. A new endpoint is one more
 * row in `table`.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tf_deploy.h"
#include "tf_rawhttp.h"
#include "tf_test.h"

#ifndef TF_TEST_CLIENTS_DIR
#error "TF_TEST_CLIENTS_DIR must be defined by CMake (tests/clients installed there)"
#endif

#define READ_TOKEN_TEXT  "conformance-read-token"
#define WRITE_TOKEN_TEXT "conformance-write-token"
#define READ_SHA256      "ee09ee3ecd9c284b231080880b2d05ef13cf8a23796dff1593a72f1fde0c1861"
#define WRITE_SHA256     "064bd7295288554bff076310bfca21d364ec9d284c130425896822d5169b1cd1"
#define MAX_HEADER_BYTES 4096 /* the main listener's; the 431 requests send 5000 */
#define LIMITED_BODY     48   /* the limited listener's max_body: 413 with bodies the spec allows */
#define REPEAT_MS        10000
#define MAX_PROVOKED     512
/* A request target: room for the 414 requests, whose query alone is over MAX_HEADER_BYTES. */
#define TARGET_MAX (MAX_HEADER_BYTES + 2048)

/* ---- the table ---- */

typedef enum listener { MAIN, LIMITED } listener;
typedef enum auth { NO_TOKEN, READ_TOKEN, WRITE_TOKEN, BAD_TOKEN } auth;

#define REFUSED  1u /* breaks the spec on purpose: Prism --errors refuses it, a lenient one not */
#define UNROUTED 2u /* no operation of the spec matches (an unknown path): nothing to validate */
#define DIRECT   4u /* straight to the server: Prism cannot proxy an endless event stream */
#define REPEAT   8u /* resend until the status comes (the server notices a state change) */

typedef struct call {
    const char *op;     /* the operation exercised, "GET /v1/premium/{symbol}"; NULL if UNROUTED */
    const char *method; /* sent */
    const char *path;   /* sent; {pos} becomes the id of the last position opened */
    auth auth;
    const char *body;   /* sent as application/json unless `header` sets a Content-Type */
    const char *header; /* one more "Name: value" or NULL; {etag} becomes the last ETag received */
    int status;         /* expected */
    const char *code;   /* expected error code, or NULL */
    unsigned flags;
    listener to;
    void (*before)(void); /* puts the server in the state the request needs */
    void (*after)(void);
} call;

#define OPEN_BTC    "{\"symbol\":\"BTC\",\"direction\":\"long_krw_short_global\",\"size\":0.1}"
#define EXIT_PRICES "{\"krw_price\":137000000,\"global_price\":95000,\"usdkrw\":1400}"

static void hold_stream(void);
static void release_stream(void);
static void stop_redis(void);

/* With Redis up, in this order (positions opened here are used further down). */
static const call table[] = {
    /* premiums */
    {"GET /v1/premium", "GET", "/v1/premium", READ_TOKEN, .status = 200},
    {"GET /v1/premium", "GET",
     "/v1/premium?symbol=btc&krw_exchange=bithumb&global_exchange=binance", WRITE_TOKEN,
     .status = 200},
    {"GET /v1/premium", "GET", "/v1/premium?symbol=B%40D", READ_TOKEN, .status = 400,
     .code = "bad_parameter", .flags = REFUSED},
    {"GET /v1/premium/{symbol}", "GET", "/v1/premium/BTC", READ_TOKEN, .status = 200},
    {"GET /v1/premium/{symbol}", "GET", "/v1/premium/NOPE", READ_TOKEN, .status = 404,
     .code = "not_found"},
    {"GET /v1/premium/{symbol}", "GET", "/v1/premium/ZZZ", READ_TOKEN, .status = 503,
     .code = "no_fresh_data"},
    {"GET /v1/premium/{symbol}", "GET", "/v1/premium/B%40D", READ_TOKEN, .status = 400,
     .code = "bad_parameter", .flags = REFUSED},
    {"GET /v1/premium/{symbol}", "GET", "/v1/premium/BTC", BAD_TOKEN, .status = 401,
     .code = "unauthorized"},
    /* history */
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/BTC/history?limit=5", READ_TOKEN,
     .status = 200},
    {"GET /v1/premium/{symbol}/history", "GET",
     "/v1/premium/BTC/history?from=1&to=9999999999999&limit=2&krw_exchange=bithumb"
     "&global_exchange=binance",
     READ_TOKEN, .status = 200},
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/ZZZ/history", READ_TOKEN,
     .status = 200},
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/NOPE/history", READ_TOKEN,
     .status = 404, .code = "not_found"},
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/BTC/history?krw_exchange=upbit",
     READ_TOKEN, .status = 404, .code = "not_found"},
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/BTC/history?from=2000&to=1000",
     READ_TOKEN, .status = 400, .code = "bad_parameter"},
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/BTC/history?limit=5000", READ_TOKEN,
     .status = 400, .code = "bad_parameter", .flags = REFUSED},
    /* tickers and fx */
    {"GET /v1/tickers", "GET", "/v1/tickers", READ_TOKEN, .status = 200},
    {"GET /v1/tickers/{exchange}/{symbol}", "GET", "/v1/tickers/bithumb/BTC", READ_TOKEN,
     .status = 200},
    {"GET /v1/tickers/{exchange}/{symbol}", "GET", "/v1/tickers/BINANCE/eth", READ_TOKEN,
     .status = 200},
    {"GET /v1/tickers/{exchange}/{symbol}", "GET", "/v1/tickers/bithumb/NOPE", READ_TOKEN,
     .status = 404, .code = "not_found"},
    {"GET /v1/tickers/{exchange}/{symbol}", "GET", "/v1/tickers/bit%24hub/BTC", READ_TOKEN,
     .status = 400, .code = "bad_parameter", .flags = REFUSED},
    {"GET /v1/fx", "GET", "/v1/fx", READ_TOKEN, .status = 200},
    {"GET /v1/fx", "GET", "/v1/fx", READ_TOKEN, .header = "If-None-Match: {etag}", .status = 304},
    /* positions */
    {"GET /v1/positions", "GET", "/v1/positions", READ_TOKEN, .status = 200},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN,
     .body = "{\"symbol\":\"ETH\",\"direction\":\"short_krw_long_global\",\"size\":0.5,"
             "\"krw_exchange\":\"bithumb\",\"global_exchange\":\"binance\","
             "\"krw_price\":5000000,\"global_price\":3500,\"usdkrw\":1400}",
     .status = 201},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN, .body = OPEN_BTC, .status = 201},
    {"GET /v1/positions/{id}", "GET", "/v1/positions/{pos}", READ_TOKEN, .status = 200},
    {"GET /v1/positions", "GET", "/v1/positions?all=true", READ_TOKEN, .status = 200},
    {"GET /v1/positions", "GET", "/v1/positions?all=maybe", READ_TOKEN, .status = 400,
     .code = "bad_parameter", .flags = REFUSED},
    {"GET /v1/positions/{id}", "GET", "/v1/positions/pos-999999", READ_TOKEN, .status = 404,
     .code = "not_found"},
    {"GET /v1/positions/{id}", "GET", "/v1/positions/a%24b", READ_TOKEN, .status = 400,
     .code = "bad_parameter", .flags = REFUSED},
    {"POST /v1/positions", "POST", "/v1/positions", READ_TOKEN, .body = OPEN_BTC, .status = 403,
     .code = "forbidden"},
    {"POST /v1/positions", "POST", "/v1/positions", BAD_TOKEN, .body = OPEN_BTC, .status = 401,
     .code = "unauthorized"},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN,
     .body = "{\"symbol\":\"BTC\",\"direction\":\"long_krw_short_global\",\"size\":0.1,"
             "\"krw_prics\":1}",
     .status = 400, .code = "bad_parameter", .flags = REFUSED},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN,
     .body = "{\"symbol\":\"BTC\",\"direction\":\"up\",\"size\":0.1}", .status = 400,
     .code = "bad_parameter", .flags = REFUSED},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN, .body = "[1]", .status = 400,
     .code = "bad_parameter", .flags = REFUSED},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN, .body = OPEN_BTC,
     .header = "Content-Type: text/plain", .status = 415, .code = "unsupported_media_type",
     .flags = REFUSED},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN,
     .body = "{\"symbol\":\"ZZZ\",\"direction\":\"long_krw_short_global\",\"size\":1}",
     .status = 503, .code = "no_fresh_data"},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN, .body = OPEN_BTC, .status = 413,
     .code = "payload_too_large", .to = LIMITED},
    /* closing: 400 for a malformed request, 409 only for a well-formed close of a closed one */
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .body = "{\"krw_price\":137000000}", .status = 400, .code = "bad_parameter"},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .body = "{\"krw_price\":137000000,\"global_price\":95000,\"usdkrw\":1400,\"zz\":1}",
     .status = 400, .code = "bad_parameter", .flags = REFUSED},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", READ_TOKEN,
     .status = 403, .code = "forbidden"},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .body = EXIT_PRICES, .header = "Content-Type: text/plain", .status = 415,
     .code = "unsupported_media_type", .flags = REFUSED},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .body = EXIT_PRICES, .status = 413, .code = "payload_too_large", .to = LIMITED},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .status = 200},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .status = 409, .code = "conflict"},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .body = EXIT_PRICES, .status = 409, .code = "conflict"},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .body = "{\"zz\":1}", .status = 400, .code = "bad_parameter", .flags = REFUSED},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/pos-999999/close", WRITE_TOKEN,
     .status = 404, .code = "not_found"},
    {"GET /v1/positions/{id}", "GET", "/v1/positions/{pos}", WRITE_TOKEN, .status = 200},
    /* the event stream: Prism cannot follow it, so its 200 goes straight to the server */
    {"GET /v1/stream", "GET", "/v1/stream", READ_TOKEN, .status = 200, .flags = DIRECT},
    {"GET /v1/stream", "GET", "/v1/stream", READ_TOKEN, .status = 503, .code = "too_many_clients",
     .to = LIMITED, .before = hold_stream, .after = release_stream},
    /* probes, public */
    {"GET /healthz", "GET", "/healthz", NO_TOKEN, .status = 200},
    {"GET /readyz", "GET", "/readyz", NO_TOKEN, .status = 200},
    {NULL, "GET", "/v1/nope", READ_TOKEN, .status = 404, .code = "not_found", .flags = UNROUTED},
};

/* After the derived requests, with Redis stopped. */
static const call redis_down[] = {
    {"GET /readyz", "GET", "/readyz", NO_TOKEN, .status = 503, .flags = REPEAT,
     .before = stop_redis},
    {"GET /v1/premium/{symbol}/history", "GET", "/v1/premium/BTC/history", READ_TOKEN,
     .status = 503, .code = "redis_unavailable"},
    {"GET /v1/positions", "GET", "/v1/positions", READ_TOKEN, .status = 503,
     .code = "redis_unavailable"},
    {"GET /v1/positions/{id}", "GET", "/v1/positions/{pos}", READ_TOKEN, .status = 503,
     .code = "redis_unavailable"},
    {"POST /v1/positions", "POST", "/v1/positions", WRITE_TOKEN, .body = OPEN_BTC, .status = 503,
     .code = "redis_unavailable"},
    {"POST /v1/positions/{id}/close", "POST", "/v1/positions/{pos}/close", WRITE_TOKEN,
     .status = 503, .code = "redis_unavailable"},
};

/* What no request can provoke, with the reason; the coverage checks skip these. */
static const char *const unprovokable_codes[] = {
    "internal",              /* out of memory, or a store failure outside the store's contract */
    "unavailable",           /* /v1/stream while the server shuts down */
    "positions_unavailable", /* a runtime without the positions store: not this build */
    NULL,
};
static const char *const unprovokable_statuses[] = {"500", NULL}; /* `internal` */

#define N_TABLE      (sizeof table / sizeof table[0])
#define N_REDIS_DOWN (sizeof redis_down / sizeof redis_down[0])

/* ---- the deployment ---- */

static tft_deploy *deploy;
static pid_t prism[3] = {-1, -1, -1};
static int api_port[2]; /* MAIN, LIMITED */
static int prism_port[3];
enum { PRISM_MAIN, PRISM_LENIENT, PRISM_LIMITED };
static json_t *spec; /* the bundled, dereferenced spec */
static int held_stream = -1;

/* What the requests provoked: "<op> <status>" and error codes. */
static char *provoked[MAX_PROVOKED];
static size_t n_provoked;
static char last_etag[128];
static char pos_id[72];

static void remember(const char *text)
{
    for (size_t i = 0; i < n_provoked; i++) {
        if (strcmp(provoked[i], text) == 0)
            return;
    }
    if (n_provoked < MAX_PROVOKED)
        provoked[n_provoked++] = strdup(text);
}

static bool was_provoked(const char *text)
{
    for (size_t i = 0; i < n_provoked; i++) {
        if (provoked[i] && strcmp(provoked[i], text) == 0)
            return true;
    }
    return false;
}

static bool listed(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++) {
        if (strcmp(list[i], s) == 0)
            return true;
    }
    return false;
}

/* ---- HTTP through Prism (libcurl) ---- */

typedef struct answer {
    long status;
    char *body;
    size_t len;
    char headers[16384]; /* "name: value\r\n" lines as received */
    size_t hlen;
} answer;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    answer *a = arg;
    char *grown = realloc(a->body, a->len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + a->len, p, size * n);
    a->body = grown;
    a->len += size * n;
    a->body[a->len] = '\0';
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    answer *a = arg;
    size_t take = size * n;
    if (take > sizeof a->headers - a->hlen - 1)
        take = sizeof a->headers - a->hlen - 1;
    memcpy(a->headers + a->hlen, p, take);
    a->hlen += take;
    a->headers[a->hlen] = '\0';
    return size * n;
}

/* Header `name` of the answer (case-insensitive) into out; false when absent. */
static bool answer_header(const answer *a, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *line = a->headers; *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, size, "%.*s", (int)(len - (size_t)(v - line)), v);
            return true;
        }
        line = end ? end + 2 : line + len;
    }
    return false;
}

static const char *auth_header(auth a)
{
    switch (a) {
    case READ_TOKEN:
        return "Authorization: Bearer " READ_TOKEN_TEXT;
    case WRITE_TOKEN:
        return "Authorization: Bearer " WRITE_TOKEN_TEXT;
    case BAD_TOKEN:
        return "Authorization: Bearer not-a-token-of-this-server";
    default:
        return NULL;
    }
}

/* `text` with {pos} and {etag} replaced. */
static void expand(const char *text, char *out, size_t size)
{
    out[0] = '\0';
    size_t used = 0;
    while (text && *text && used + 1 < size) {
        const char *with = NULL;
        size_t skip = 0;
        if (strncmp(text, "{pos}", 5) == 0) {
            with = pos_id;
            skip = 5;
        } else if (strncmp(text, "{etag}", 6) == 0) {
            with = last_etag;
            skip = 6;
        }
        int n = with ? snprintf(out + used, size - used, "%s", with)
                     : snprintf(out + used, size - used, "%c", *text);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
        text += with ? skip : 1;
    }
}

/* Sends c to `port` (a Prism or the server); `extra` is one more header line or NULL. */
static bool send_call(const call *c, int port, const char *extra, answer *a)
{
    memset(a, 0, sizeof *a);
    char path[TARGET_MAX], header[6000], url[TARGET_MAX + 64];
    expand(c->path, path, sizeof path);
    expand(c->header, header, sizeof header);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *curl = curl_easy_init();
    struct curl_slist *h = NULL;
    if (auth_header(c->auth))
        h = curl_slist_append(h, auth_header(c->auth));
    if (header[0])
        h = curl_slist_append(h, header);
    if (extra)
        h = curl_slist_append(h, extra);
    if (c->body && strncasecmp(header, "Content-Type:", 13) != 0)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (!c->body)
        h = curl_slist_append(h, "Content-Type:"); /* no body, no type (not libcurl's form) */
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
    if (strcmp(c->method, "POST") == 0)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body ? c->body : "");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
    else
        fprintf(stderr, "%s %s: %s\n", c->method, url, curl_easy_strerror(rc));
    curl_easy_cleanup(curl);
    curl_slist_free_all(h);
    return rc == CURLE_OK;
}

static void answer_free(answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* Sends a GET straight to the server and keeps what came within 1.5 s: an event stream's
 * status, headers and first events. */
static bool send_direct(const call *c, answer *a)
{
    memset(a, 0, sizeof *a);
    char path[TARGET_MAX];
    expand(c->path, path, sizeof path);
    char lines[256] = "";
    if (auth_header(c->auth))
        snprintf(lines, sizeof lines, "%s\r\n", auth_header(c->auth));
    tft_raw_response r;
    if (!tft_raw_request(api_port[c->to], c->method, path, lines, 1500, &r))
        return false;
    a->status = r.status;
    a->body = r.body; /* taken */
    a->len = r.body_len;
    r.body = NULL;
    const char *first = strstr(r.head, "\r\n"); /* answer_header reads the lines after it */
    snprintf(a->headers, sizeof a->headers, "%s", first ? first + 2 : "");
    a->hlen = strlen(a->headers);
    tft_raw_free(&r);
    return true;
}

/* ---- judging an answer ---- */

static void describe(const call *c, const char *how, const char *what, const answer *a)
{
    char path[1024];
    expand(c->path, path, sizeof path);
    fprintf(stderr, "\n%s %s (%s): %s\n  got %ld %.600s\n  headers: %s\n", c->method, path, how,
            what, a->status, a->body ? a->body : "", a->headers);
}

/* The sl-violations of an answer: how many name the request and the response. False when
 * the header is there but not a JSON array. */
static bool violations(const answer *a, int *request, int *response, bool *route_not_found)
{
    *request = *response = 0;
    *route_not_found = false;
    char text[8192];
    if (!answer_header(a, "sl-violations", text, sizeof text))
        return true;
    json_t *list = json_loads(text, 0, NULL);
    if (!json_is_array(list)) {
        json_decref(list);
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *where = json_string_value(json_array_get(json_object_get(v, "location"), 0));
        const char *msg = json_string_value(json_object_get(v, "message"));
        if (where && strcmp(where, "response") == 0)
            (*response)++;
        else
            (*request)++;
        if (msg && strstr(msg, "route not found"))
            *route_not_found = true;
    }
    json_decref(list);
    return true;
}

static bool is_problem(const answer *a)
{
    char ct[128] = "";
    answer_header(a, "Content-Type", ct, sizeof ct);
    return strncasecmp(ct, "application/problem+json", 24) == 0;
}

/* The status, error code and headers the call expects; records what it provoked. */
static bool expected_answer(const call *c, const char *how, const answer *a)
{
    if (a->status != c->status) {
        describe(c, how, "unexpected status", a);
        return false;
    }
    if (c->code) {
        json_t *j = a->body ? json_loads(a->body, 0, NULL) : NULL;
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        bool same = code && strcmp(code, c->code) == 0;
        json_decref(j);
        if (!same) {
            describe(c, how, "unexpected error code", a);
            return false;
        }
        remember(c->code);
    }
    char text[256];
    if (c->flags & DIRECT) { /* no Prism: the event stream's type is checked here */
        bool sse = answer_header(a, "Content-Type", text, sizeof text) &&
                   strcmp(text, "text/event-stream") == 0 && a->body && strstr(a->body, "retry: ");
        if (!sse) {
            describe(c, how, "expected an event stream", a);
            return false;
        }
    }
    if (c->op) {
        snprintf(text, sizeof text, "%s %d", c->op, c->status);
        remember(text);
    }
    answer_header(a, "ETag", last_etag, sizeof last_etag);
    if (c->status == 201 && answer_header(a, "Location", text, sizeof text) &&
        strncmp(text, "/v1/positions/", 14) == 0)
        snprintf(pos_id, sizeof pos_id, "%.*s", (int)sizeof pos_id - 1, text + 14);
    return true;
}

/* Prism --errors passed the request on and found nothing wrong with the answer. */
static bool clean_through_prism(const call *c, const answer *a)
{
    int req = 0, resp = 0;
    bool not_found = false;
    bool parsed = violations(a, &req, &resp, &not_found);
    if (!parsed || req || resp || is_problem(a)) {
        describe(c, "prism --errors", "the spec and the server disagree", a);
        return false;
    }
    return true;
}

/* A request that breaks the spec on purpose: Prism --errors must refuse it (its own answer,
 * not a response violation); the lenient Prism forwards it and must name only the request. */
static bool refused_then_clean(const call *c, answer *a)
{
    if (!is_problem(a) || (a->body && strstr(a->body, "#VIOLATIONS"))) {
        describe(c, "prism --errors", "expected Prism to refuse the request (it breaks the spec)",
                 a);
        return false;
    }
    answer_free(a);
    if (c->to != MAIN || !send_call(c, prism_port[PRISM_LENIENT], NULL, a))
        return false;
    int req = 0, resp = 0;
    bool not_found = false;
    if (!violations(a, &req, &resp, &not_found) || req == 0 || resp > 0) {
        describe(c, "prism lenient", "expected violations of the request only", a);
        return false;
    }
    return expected_answer(c, "prism lenient", a);
}

/* No operation matches: the lenient Prism forwards it unvalidated, and says so. */
static bool unrouted(const call *c, answer *a)
{
    int req = 0, resp = 0;
    bool not_found = false;
    if (!violations(a, &req, &resp, &not_found) || !not_found || resp > 0) {
        describe(c, "prism lenient", "expected Prism to find no operation for it", a);
        return false;
    }
    return expected_answer(c, "prism lenient", a);
}

/* HEAD, straight to the server, mirrors the GET just checked. */
static bool head_mirrors_get(const call *c, const char *extra)
{
    char path[TARGET_MAX], header[6000], lines[6400] = "";
    expand(c->path, path, sizeof path);
    expand(c->header, header, sizeof header);
    const char *authz = auth_header(c->auth);
    snprintf(lines, sizeof lines, "%s%s%s%s%s%s", authz ? authz : "", authz ? "\r\n" : "", header,
             header[0] ? "\r\n" : "", extra ? extra : "", extra ? "\r\n" : "");
    /* Premiums, tickers and positions move on every tick: their length and tag may too. */
    const char *const moving[] = {"ETag", "Content-Length", NULL};
    char why[512] = "";
    if (tft_raw_head_matches_get(api_port[c->to], path, lines, moving, why, sizeof why))
        return true;
    fprintf(stderr, "\nHEAD %s: does not mirror GET: %s\n", path, why);
    return false;
}

/* Sends one call the way its flags say and judges the answer. */
static bool run_call(const call *c, const char *extra)
{
    if (c->before)
        c->before();
    answer a = {0};
    bool ok = false;
    long long deadline = tft_mono_ms() + REPEAT_MS;
    /* The limited listener answers 429 until its bucket refills (one request a second). */
    bool repeat = (c->flags & REPEAT) || c->to == LIMITED;
    for (;;) {
        int port = prism_port[c->to == LIMITED ? PRISM_LIMITED : PRISM_MAIN];
        if (c->flags & DIRECT)
            port = api_port[c->to];
        else if (c->flags & UNROUTED)
            port = prism_port[PRISM_LENIENT];
        answer_free(&a);
        if (!((c->flags & DIRECT) ? send_direct(c, &a) : send_call(c, port, extra, &a)))
            break;
        if (!repeat || a.status == c->status || tft_mono_ms() > deadline)
            break;
        tft_sleep_ms(100); /* pacing the retries of a condition polled by request */
    }
    if (a.status == 0)
        describe(c, "send", "no answer", &a);
    else if (c->flags & UNROUTED)
        ok = unrouted(c, &a);
    else if (c->flags & REFUSED)
        ok = refused_then_clean(c, &a);
    else if (c->flags & DIRECT)
        ok = expected_answer(c, "direct", &a);
    else
        ok = clean_through_prism(c, &a) && expected_answer(c, "prism --errors", &a);
    answer_free(&a);
    if (c->after)
        c->after();
    if (ok && strcmp(c->method, "GET") == 0 && c->to == MAIN && !(c->flags & REPEAT))
        ok = head_mirrors_get(c, extra);
    return ok;
}

/* ---- state changes ---- */

/* Holds a stream open on the limited listener (sse_max_clients 1). */
static void hold_stream(void)
{
    int fd = -1;
    for (long long until = tft_mono_ms() + REPEAT_MS; fd < 0 && tft_mono_ms() < until;) {
        tft_raw_response head;
        fd = tft_raw_open(api_port[LIMITED], "GET", "/v1/stream", NULL, 3000, &head);
        if (fd >= 0 && head.status != 200) {
            close(fd); /* 429: the bucket gives one request a second */
            fd = -1;
            tft_sleep_ms(200);
        }
        tft_raw_free(&head);
    }
    CU_ASSERT(fd >= 0);
    held_stream = fd;
}

static void release_stream(void)
{
    if (held_stream >= 0)
        close(held_stream);
    held_stream = -1;
}

static void stop_redis(void)
{
    tft_redis_stop(deploy->redis);
}

/* ---- the spec ---- */

/* "GET /v1/premium" -> the operation object, or NULL. */
static json_t *spec_op(const char *op)
{
    char method[8] = "", path[256] = "";
    if (!op || sscanf(op, "%7s %255s", method, path) != 2)
        return NULL;
    for (char *p = method; *p; p++)
        *p = (char)(*p - 'A' + 'a');
    return json_object_get(json_object_get(json_object_get(spec, "paths"), path), method);
}

/* The first call of `table` for op: its example request, from which others are derived. */
static const call *example_of(const char *op)
{
    for (size_t i = 0; i < N_TABLE; i++) {
        if (table[i].op && strcmp(table[i].op, op) == 0 && table[i].status < 300)
            return &table[i];
    }
    return NULL;
}

/* ---- tests ---- */

static void test_table(void)
{
    for (size_t i = 0; i < N_TABLE; i++) {
        if (table[i].op)
            CU_ASSERT_PTR_NOT_NULL(spec_op(table[i].op)); /* the row names a real operation */
        CU_ASSERT(run_call(&table[i], NULL));
    }
}

static char padding[MAX_HEADER_BYTES + 1000];

/* Every operation: from its example request, the statuses every route can answer. */
static void test_derived(void)
{
    const char *key;
    json_t *item;
    json_object_foreach(json_object_get(spec, "paths"), key, item)
    {
        const char *method;
        json_t *op_obj;
        json_object_foreach(item, method, op_obj)
        {
            char op[300], upper[8];
            snprintf(upper, sizeof upper, "%s", method);
            for (char *p = upper; *p; p++)
                *p = (char)(*p - 'a' + 'A');
            snprintf(op, sizeof op, "%s %s", upper, key);
            const call *ex = example_of(op);
            CU_ASSERT_PTR_NOT_NULL(ex);
            if (!ex) {
                fprintf(stderr, "\n%s: no request in the table\n", op);
                continue;
            }
            bool probe = strcmp(key, "/healthz") == 0 || strcmp(key, "/readyz") == 0;
            bool write = strcmp(upper, "POST") == 0;
            char path[1024];
            snprintf(path, sizeof path, "%s%szz=1", ex->path, strchr(ex->path, '?') ? "&" : "?");
            call c = *ex;
            c.flags &= ~(unsigned)DIRECT; /* the stream's 400, 401, 405 and 431 are answers */
            c.before = c.after = NULL;
            call bad_param = c;
            bad_param.path = path;
            bad_param.status = 400;
            bad_param.code = "bad_parameter";
            CU_ASSERT(run_call(&bad_param, NULL));
            if (!probe) {
                call no_token = c;
                no_token.auth = NO_TOKEN;
                no_token.status = 401;
                no_token.code = "unauthorized";
                no_token.flags |= write ? REFUSED : 0; /* the spec requires the token */
                CU_ASSERT(run_call(&no_token, NULL));
            }
            call other_method = c; /* DELETE: no route of the API takes it */
            other_method.method = "DELETE";
            other_method.flags |= UNROUTED;
            other_method.status = 405;
            other_method.code = "method_not_allowed";
            CU_ASSERT(run_call(&other_method, NULL));
            call big = c;
            big.status = 431;
            big.code = "header_too_large";
            CU_ASSERT(run_call(&big, padding));
            char long_path[sizeof path + sizeof padding];
            snprintf(long_path, sizeof long_path, "%s%szz=%s", ex->path,
                     strchr(ex->path, '?') ? "&" : "?", padding + strlen("X-Padding: "));
            call long_uri = c;
            long_uri.path = long_path;
            long_uri.status = 414;
            long_uri.code = "uri_too_long";
            CU_ASSERT(run_call(&long_uri, NULL));
            /* With the unknown parameter, a request the bucket lets through is a 400 with no
             * effect (no stream, no write); the next one is refused. */
            call limited = bad_param;
            limited.to = LIMITED;
            limited.status = 429;
            limited.code = "rate_limited";
            limited.flags |= REPEAT;
            CU_ASSERT(run_call(&limited, NULL));
            json_t *ok = json_object_get(json_object_get(op_obj, "responses"), "200");
            if (json_object_get(json_object_get(ok, "headers"), "ETag")) {
                /* The data may move between the two requests: try again until it holds still. */
                bool seen = false;
                for (int i = 0; i < 10 && !seen; i++) {
                    answer a;
                    if (!send_call(&c, prism_port[PRISM_MAIN], NULL, &a))
                        break;
                    bool tagged =
                        a.status == 200 && answer_header(&a, "ETag", last_etag, sizeof last_etag);
                    answer_free(&a);
                    call again = c;
                    again.header = "If-None-Match: {etag}";
                    if (tagged && send_call(&again, prism_port[PRISM_MAIN], NULL, &a)) {
                        again.status = 304;
                        seen = a.status == 304 && clean_through_prism(&again, &a) &&
                               expected_answer(&again, "prism --errors", &a);
                        answer_free(&a);
                    }
                }
                CU_ASSERT(seen);
                if (!seen)
                    fprintf(stderr, "\n%s: never answered 304 to If-None-Match\n", op);
            }
        }
    }
}

static void test_redis_down(void)
{
    for (size_t i = 0; i < N_REDIS_DOWN; i++)
        CU_ASSERT(run_call(&redis_down[i], NULL));
}

/* Every documented status of every operation was provoked (or cannot be). */
static void test_coverage(void)
{
    const char *key;
    json_t *item;
    json_object_foreach(json_object_get(spec, "paths"), key, item)
    {
        const char *method;
        json_t *op_obj;
        json_object_foreach(item, method, op_obj)
        {
            const char *status;
            json_t *resp;
            json_object_foreach(json_object_get(op_obj, "responses"), status, resp)
            {
                char upper[8], text[320];
                snprintf(upper, sizeof upper, "%s", method);
                for (char *p = upper; *p; p++)
                    *p = (char)(*p - 'a' + 'A');
                snprintf(text, sizeof text, "%s %s %s", upper, key, status);
                if (listed(unprovokable_statuses, status))
                    continue;
                CU_ASSERT(was_provoked(text));
                if (!was_provoked(text))
                    fprintf(stderr, "\n%s: documented, never provoked by a request here\n", text);
            }
        }
    }
}

/* ---- the server's source ---- */

typedef struct status_name {
    const char *macro;
    const char *status;
} status_name;

static const status_name statuses[] = {
    {"MHD_HTTP_OK", "200"},
    {"MHD_HTTP_CREATED", "201"},
    {"MHD_HTTP_NO_CONTENT", "204"},
    {"MHD_HTTP_NOT_MODIFIED", "304"},
    {"MHD_HTTP_BAD_REQUEST", "400"},
    {"MHD_HTTP_UNAUTHORIZED", "401"},
    {"MHD_HTTP_FORBIDDEN", "403"},
    {"MHD_HTTP_NOT_FOUND", "404"},
    {"MHD_HTTP_METHOD_NOT_ALLOWED", "405"},
    {"MHD_HTTP_CONFLICT", "409"},
    {"MHD_HTTP_CONTENT_TOO_LARGE", "413"},
    {"MHD_HTTP_UNSUPPORTED_MEDIA_TYPE", "415"},
    {"MHD_HTTP_TOO_MANY_REQUESTS", "429"},
    {"MHD_HTTP_URI_TOO_LONG", "414"},
    {"MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE", "431"},
    {"MHD_HTTP_INTERNAL_SERVER_ERROR", "500"},
    {"MHD_HTTP_SERVICE_UNAVAILABLE", "503"},
};

/* The CORS preflight's 204 answers OPTIONS, which is CORS, not an operation of the spec (its
 * info.description documents it). */
static const char *const undocumented_statuses[] = {"204", NULL};

/* Every string literal in the third argument of each reply_error( call of `src`. */
static void error_codes_in(const char *src, json_t *codes)
{
    for (const char *p = src; (p = strstr(p, "reply_error(")) != NULL;) {
        p += strlen("reply_error(");
        int depth = 0, arg = 0;
        for (; *p && depth >= 0 && arg < 3; p++) {
            if (*p == '"') {
                const char *end = p + 1;
                while (*end && *end != '"')
                    end += end[0] == '\\' ? 2 : 1;
                if (arg == 2)
                    json_array_append_new(codes, json_stringn(p + 1, (size_t)(end - p - 1)));
                p = end;
            } else if (*p == '(') {
                depth++;
            } else if (*p == ')') {
                depth--;
            } else if (*p == ',' && depth == 0) {
                arg++;
            }
        }
    }
}

/* Every MHD_HTTP_<status> macro of `src` (not the header or method names). */
static void statuses_in(const char *src, json_t *found)
{
    for (const char *p = src; (p = strstr(p, "MHD_HTTP_")) != NULL; p++) {
        size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        if (strncmp(p, "MHD_HTTP_HEADER_", 16) == 0 || strncmp(p, "MHD_HTTP_METHOD_", 16) == 0 ||
            strncmp(p, "MHD_HTTP_VERSION", 16) == 0)
            continue;
        json_array_append_new(found, json_stringn(p, n));
    }
}

static json_t *documented_statuses(void)
{
    json_t *all = json_object();
    const char *key, *method, *status;
    json_t *item, *op_obj, *resp;
    json_object_foreach(json_object_get(spec, "paths"), key, item)
    {
        json_object_foreach(item, method, op_obj)
        {
            json_object_foreach(json_object_get(op_obj, "responses"), status, resp)
            {
                json_object_set_new(all, status, json_true());
            }
        }
    }
    return all;
}

static void test_source_codes_in_spec(void)
{
    json_t *codes = json_array(), *macros = json_array();
    const char *plugin = tft_source_path("plugins/sink_http_api");
    DIR *d = opendir(plugin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 3 || strcmp(e->d_name + n - 2, ".c") != 0 || strncmp(e->d_name, "test_", 5) == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", plugin, e->d_name);
        char *src = tft_read_file(path, NULL);
        CU_ASSERT_PTR_NOT_NULL(src);
        if (src) {
            error_codes_in(src, codes);
            statuses_in(src, macros);
        }
        free(src);
    }
    closedir(d);
    CU_ASSERT(json_array_size(codes) >= 10); /* the scan finds reply_error's codes */

    json_t *schema = json_object_get(json_object_get(spec, "components"), "schemas");
    json_t *enumeration = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(schema, "Error"), "properties"),
                                "error"),
                "properties"),
            "code"),
        "enum");
    CU_ASSERT_FATAL(json_is_array(enumeration));
    char *guide = tft_read_file(tft_source_path("docs/api.md"), NULL);
    size_t i;
    json_t *v;
    /* Source -> spec: each code the server can send is documented and was provoked. */
    json_array_foreach(codes, i, v)
    {
        const char *code = json_string_value(v);
        bool in_enum = false;
        size_t j;
        json_t *w;
        json_array_foreach(enumeration, j, w)
        {
            in_enum = in_enum || strcmp(json_string_value(w), code) == 0;
        }
        CU_ASSERT(in_enum);
        if (!in_enum)
            fprintf(stderr, "\nerror code %s: sent by the server, missing from Error.code\n", code);
        bool seen = was_provoked(code) || listed(unprovokable_codes, code);
        CU_ASSERT(seen);
        if (!seen)
            fprintf(stderr, "\nerror code %s: no request of the test provokes it\n", code);
    }
    /* Spec -> source: no code is documented that nothing sends; each is in the guide. */
    json_array_foreach(enumeration, i, v)
    {
        const char *code = json_string_value(v);
        bool sent = false;
        size_t j;
        json_t *w;
        json_array_foreach(codes, j, w)
        {
            sent = sent || strcmp(json_string_value(w), code) == 0;
        }
        CU_ASSERT(sent);
        if (!sent)
            fprintf(stderr, "\nerror code %s: in Error.code, sent by nothing\n", code);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "`%s`", code);
        CU_ASSERT(guide && strstr(guide, quoted));
        if (!guide || !strstr(guide, quoted))
            fprintf(stderr, "\nerror code %s: missing from docs/api.md\n", code);
    }
    free(guide);
    /* Each status the source can answer is documented by some operation. */
    json_t *documented = documented_statuses();
    json_array_foreach(macros, i, v)
    {
        const char *macro = json_string_value(v);
        const char *status = NULL;
        for (size_t j = 0; j < sizeof statuses / sizeof statuses[0] && !status; j++) {
            if (strcmp(statuses[j].macro, macro) == 0)
                status = statuses[j].status;
        }
        CU_ASSERT_PTR_NOT_NULL(status);
        if (!status) {
            fprintf(stderr, "\n%s: a status the test does not know; add it to `statuses`\n", macro);
            continue;
        }
        bool ok = json_object_get(documented, status) || listed(undocumented_statuses, status);
        CU_ASSERT(ok);
        if (!ok)
            fprintf(stderr, "\nstatus %s (%s): sent by the server, documented nowhere\n", status,
                    macro);
    }
    json_decref(documented);
    json_decref(codes);
    json_decref(macros);
}

static void print_log(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", deploy->dir, name);
    char *text = tft_read_file(path, NULL);
    size_t len = text ? strlen(text) : 0;
    fprintf(stderr, "\n--- %s (last 3000 bytes)\n%s\n", name,
            text ? text + (len > 3000 ? len - 3000 : 0) : "");
    free(text);
}

/* After all that (HEAD streams, refused bodies, Redis gone), the replica stops cleanly: exit 0,
 * which under the sanitizers also means no leak or error report. */
static void test_clean_stop(void)
{
    int status = tft_deploy_stop(deploy, "api");
    CU_ASSERT(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0))
        print_log("api.log");
}

/* ---- setup ---- */

/* The API role with two listeners: MAIN (tokens, read_auth, max_header_bytes) and LIMITED (one
 * request a second, one stream, a tiny max_body) for the 429, 503 and 413 a validated request
 * can reach. */
static bool start_api(void)
{
    char yaml[4096], path[1024];
    const char *tokens = "[{name: reader, scope: read, sha256: " READ_SHA256 "},"
                         " {name: writer, scope: write, sha256: " WRITE_SHA256 "}]";
    int n = snprintf(yaml, sizeof yaml,
                     "redis:\n  url: redis://127.0.0.1:%d/0\n"
                     "metrics:\n  listen: 127.0.0.1:%d\n"
                     "pipelines:\n"
                     "  - name: api\n    every: 100ms\n    lease: off\n"
                     "    sources:\n"
                     "      - use: redis\n"
                     "        with: {subscribe: [premium, ticker, fx, position_live]}\n"
                     "    sinks:\n"
                     "      - use: http_api\n"
                     "        with:\n"
                     "          listen: 127.0.0.1:%d\n"
                     "          tokens: %s\n"
                     "          read_auth: token\n"
                     "          rate_limit: 0\n"
                     "          max_header_bytes: %d\n"
                     "      - use: http_api\n"
                     "        with:\n"
                     "          listen: 127.0.0.1:%d\n"
                     "          tokens: %s\n"
                     "          rate_limit: 1\n"
                     "          rate_burst: 1\n"
                     "          sse_max_clients: 1\n"
                     "          max_body: %d\n",
                     deploy->redis->port, tft_free_port(), api_port[MAIN], tokens, MAX_HEADER_BYTES,
                     api_port[LIMITED], tokens, LIMITED_BODY);
    snprintf(path, sizeof path, "%s/api.yaml", deploy->dir);
    if (n < 0 || (size_t)n >= sizeof yaml || tft_write_file(path, yaml) != 0)
        return false;
    return tft_deploy_start(deploy, path, "api", NULL) > 0;
}

static pid_t start_prism(int which, bool errors, int upstream)
{
    char port[16], url[64], log[1024];
    snprintf(port, sizeof port, "%d", prism_port[which]);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", upstream);
    snprintf(log, sizeof log, "%s/prism-%d.log", deploy->dir, which);
    const char *bin = TF_TEST_CLIENTS_DIR "/node_modules/.bin/prism";
    const char *spec_path = tft_source_path("docs/openapi.yaml");
    const char *argv[] = {
        bin, "proxy", "--no-cors", "-p", port, spec_path, url, errors ? "--errors" : NULL, NULL};
    return tft_spawn(argv, log, NULL);
}

static bool listening(void *arg)
{
    int fd = tft_raw_connect(*(int *)arg);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* A fresh BTC premium, history, tickers and FX: what the table reads. */
static bool data_ready(void *arg)
{
    (void)arg;
    const char *authz = "Authorization: Bearer " READ_TOKEN_TEXT "\r\n";
    tft_raw_response r;
    bool ok = tft_raw_request(api_port[MAIN], "GET", "/v1/premium/BTC", authz, 2000, &r) &&
              r.status == 200 && strstr(r.body, "\"stale\":false");
    tft_raw_free(&r);
    ok = ok &&
         tft_raw_request(api_port[MAIN], "GET", "/v1/premium/BTC/history?limit=1", authz, 2000,
                         &r) &&
         r.status == 200 && strstr(r.body, "\"count\":1");
    tft_raw_free(&r);
    ok = ok && tft_raw_request(api_port[MAIN], "GET", "/v1/fx", authz, 2000, &r) &&
         r.status == 200 && strstr(r.body, "USDKRW");
    tft_raw_free(&r);
    return ok;
}

static bool stale_seen(void *arg)
{
    (void)arg;
    tft_raw_response r;
    bool ok = tft_raw_request(api_port[MAIN], "GET", "/v1/premium/ZZZ",
                              "Authorization: Bearer " READ_TOKEN_TEXT "\r\n", 2000, &r) &&
              r.status == 503;
    tft_raw_free(&r);
    return ok;
}

/* A premium of symbol ZZZ whose every value is stale (the batch's BTC premium, an hour old and
 * flagged by the transform), as the redis sink writes it: the 503 no_fresh_data of a known
 * symbol, and of a position priced from it. */
static bool seed_stale_premium(void)
{
    redisReply *r = tft_redis_cmd(deploy->redis->port, "GET tf:premium:bithumb:binance:BTC");
    json_t *p = r && r->type == REDIS_REPLY_STRING ? json_loads(r->str, 0, NULL) : NULL;
    if (r)
        freeReplyObject(r);
    if (!p)
        return false;
    json_int_t ts = json_integer_value(json_object_get(p, "ts")) - 3600 * 1000;
    json_object_set_new(p, "symbol", json_string("ZZZ"));
    json_object_set_new(p, "ts", json_integer(ts));
    json_object_set_new(p, "stale", json_true());
    json_object_set_new(p, "stale_reason", json_string("ticker_age"));
    json_object_del(p, "history_id");
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    redisReply *set =
        tft_redis_cmd(deploy->redis->port, "SET tf:premium:bithumb:binance:ZZZ %s", text);
    redisReply *pub = tft_redis_cmd(deploy->redis->port, "PUBLISH tf:events:premium %s", text);
    free(text);
    bool ok = set && pub;
    if (set)
        freeReplyObject(set);
    if (pub)
        freeReplyObject(pub);
    return ok && tft_wait_until(stale_seen, NULL, 15000);
}

static bool bundle_spec(void)
{
    char out[1024], log[1024];
    snprintf(out, sizeof out, "%s/openapi.json", deploy->dir);
    snprintf(log, sizeof log, "%s/bundle.log", deploy->dir);
    const char *argv[] = {TF_TEST_CLIENTS_DIR "/node_modules/.bin/redocly",
                          "bundle",
                          tft_source_path("docs/openapi.yaml"),
                          "--dereferenced",
                          "--ext",
                          "json",
                          "-o",
                          out,
                          NULL};
    int status = -1;
    pid_t pid = tft_spawn(argv, log, NULL);
    if (pid < 0 || !tft_wait_exit(pid, 60000, &status) || status != 0) {
        print_log("bundle.log");
        return false;
    }
    spec = json_load_file(out, 0, NULL);
    return json_is_object(spec);
}

static int setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    memset(padding, 'a', sizeof padding - 1);
    memcpy(padding, "X-Padding: ", 11);
    deploy = tft_deploy_create();
    if (!deploy || !bundle_spec())
        return 1;
    api_port[MAIN] = tft_free_port();
    api_port[LIMITED] = tft_free_port();
    for (int i = 0; i < 3; i++)
        prism_port[i] = tft_free_port();
    bool up = tft_deploy_start(deploy, "pipelines/demo.yaml", "batch", NULL) > 0 && start_api();
    prism[PRISM_MAIN] = start_prism(PRISM_MAIN, true, api_port[MAIN]);
    prism[PRISM_LENIENT] = start_prism(PRISM_LENIENT, false, api_port[MAIN]);
    prism[PRISM_LIMITED] = start_prism(PRISM_LIMITED, true, api_port[LIMITED]);
    for (int i = 0; i < 3 && up; i++)
        up = prism[i] > 0 && tft_wait_until(listening, &prism_port[i], 60000);
    up = up && tft_wait_until(data_ready, NULL, 30000) && seed_stale_premium();
    if (!up) {
        print_log("batch.log");
        print_log("api.log");
        print_log("prism-0.log");
    }
    return up ? 0 : 1;
}

static int teardown(void)
{
    if (CU_get_number_of_failures()) {
        print_log("api.log");
        print_log("prism-0.log");
        print_log("prism-1.log");
        print_log("prism-2.log");
    }
    release_stream();
    for (int i = 0; i < 3; i++) {
        if (prism[i] > 0)
            tft_stop(prism[i], SIGTERM, 5000);
    }
    tft_deploy_destroy(deploy);
    json_decref(spec);
    for (size_t i = 0; i < n_provoked; i++)
        free(provoked[i]);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    CU_TestInfo tests[] = {
        {"every request of the table through Prism; HEAD mirrors GET", test_table},
        {"per operation: 400, 401, 405, 414, 429, 431 and 304 from its first request",
         test_derived},
        {"Redis down: 503s through Prism", test_redis_down},
        {"every operation has requests; every documented status was provoked", test_coverage},
        {"every code and status the server can send is in the spec", test_source_codes_in_spec},
        {"the API replica stops cleanly", test_clean_stop},
        CU_TEST_INFO_NULL,
    };
    return tft_run_suite("api conformance", tests, setup, teardown);
}
