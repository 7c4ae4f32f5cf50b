/* test_fake_exchange: starts tickflow-fake-exchange on a free loopback port and checks it with
 * libcurl: every endpoint's layout against its fixture (same keys, order and JSON types), exact
 * fixed prices, faults, connection accounting, bad flags and a clean SIGTERM exit.
 * Usage: test_fake_exchange PATH_TO_BINARY (or TF_FAKE_EXCHANGE=PATH). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <jansson.h>

#ifndef TF_FIXTURE_DIR
#define TF_FIXTURE_DIR "tests/fixtures/exchanges"
#endif

#define TF_T_START_TIMEOUT_MS 10000
#define TF_T_STOP_TIMEOUT_MS  10000

static const char *tf_t_binary;
static const char *tf_t_fixture_dir = TF_FIXTURE_DIR;
static pid_t tf_t_pid = -1;
static char tf_t_dir[64];
static char tf_t_port_file[128];
static char tf_t_stdout_file[128];
static char tf_t_base[64];
static unsigned tf_t_port;

/* ---- small helpers ---- */

static long long tf_t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tf_t_nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads a whole small file into a NUL-terminated heap buffer; NULL if unreadable. */
static char *tf_t_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = malloc(65536);
    size_t len = buf != NULL ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

static json_t *tf_t_fixture(const char *name)
{
    char path[512];
    int len = snprintf(path, sizeof(path), "%s/%s", tf_t_fixture_dir, name);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        return NULL;
    }
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL) {
        fprintf(stderr, "fixture %s: %s\n", path, err.text);
    }
    return j;
}

/* ---- HTTP ---- */

struct tf_t_resp {
    long status;
    char *body;
    size_t len;
    curl_off_t content_length;
    char content_type[128];
    char retry_after[32];
    char weight[32];
};

static void tf_t_resp_free(struct tf_t_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static size_t tf_t_on_body(char *data, size_t size, size_t n, void *ud)
{
    struct tf_t_resp *r = ud;
    size_t add = size * n;
    char *grown = realloc(r->body, r->len + add + 1);
    if (grown == NULL) {
        return 0;
    }
    memcpy(grown + r->len, data, add);
    r->len += add;
    grown[r->len] = '\0';
    r->body = grown;
    return add;
}

static void tf_t_header_value(const char *line, size_t len, const char *name, char *out,
                              size_t outlen)
{
    size_t nlen = strlen(name);
    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':') {
        return;
    }
    const char *v = line + nlen + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n')) {
        vlen--;
    }
    snprintf(out, outlen, "%.*s", (int)vlen, v);
}

static size_t tf_t_on_header(char *line, size_t size, size_t n, void *ud)
{
    struct tf_t_resp *r = ud;
    size_t len = size * n;
    tf_t_header_value(line, len, "Content-Type", r->content_type, sizeof(r->content_type));
    tf_t_header_value(line, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
    tf_t_header_value(line, len, "X-MBX-USED-WEIGHT-1M", r->weight, sizeof(r->weight));
    return len;
}

static int tf_t_setup_handle(CURL *h, const char *method, const char *path, const char *body,
                             struct tf_t_resp *r, char *url, size_t urllen)
{
    int len = snprintf(url, urllen, "%s%s", tf_t_base, path);
    if (len < 0 || (size_t)len >= urllen) {
        fprintf(stderr, "URL too long: %s%s\n", tf_t_base, path);
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tf_t_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, tf_t_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    return 0;
}

/* One request; reuse may be NULL for a fresh connection. Returns 0 or -1 (transport error). */
static int tf_t_request(CURL *reuse, const char *method, const char *path, const char *body,
                        struct tf_t_resp *r)
{
    char url[512];
    memset(r, 0, sizeof(*r));
    CURL *h = reuse != NULL ? reuse : curl_easy_init();
    if (h == NULL) {
        return -1;
    }
    CURLcode rc = CURLE_URL_MALFORMAT;
    if (tf_t_setup_handle(h, method, path, body, r, url, sizeof(url)) == 0) {
        rc = curl_easy_perform(h);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->content_length);
    if (reuse == NULL) {
        curl_easy_cleanup(h);
    }
    if (rc != CURLE_OK) {
        fprintf(stderr, "%s %s: %s\n", method, path, curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* GET path, expect want_status and a JSON body; NULL (and a failed assertion) otherwise. */
static json_t *tf_t_get_json(const char *path, long want_status)
{
    struct tf_t_resp r;
    json_t *j = NULL;
    if (tf_t_request(NULL, "GET", path, NULL, &r) == 0) {
        if (r.status != want_status) {
            fprintf(stderr, "GET %s: expected HTTP %ld, got %ld\n", path, want_status, r.status);
        }
        CU_ASSERT_EQUAL(r.status, want_status);
        j = json_loadb(r.body != NULL ? r.body : "", r.len, 0, NULL);
    }
    CU_ASSERT_PTR_NOT_NULL(j);
    tf_t_resp_free(&r);
    return j;
}

static json_t *tf_t_post_json(const char *path, const char *body)
{
    struct tf_t_resp r;
    json_t *j = NULL;
    if (tf_t_request(NULL, "POST", path, body, &r) == 0) {
        if (r.status != 200) {
            fprintf(stderr, "POST %s %s: HTTP %ld %s\n", path, body, r.status,
                    r.body != NULL ? r.body : "");
        }
        CU_ASSERT_EQUAL(r.status, 200);
        j = json_loadb(r.body != NULL ? r.body : "", r.len, 0, NULL);
    }
    CU_ASSERT_PTR_NOT_NULL(j);
    tf_t_resp_free(&r);
    return j;
}

static void tf_t_post_ok(const char *path, const char *body)
{
    json_decref(tf_t_post_json(path, body));
}

static json_t *tf_t_body_json(const struct tf_t_resp *r)
{
    return json_loadb(r->body != NULL ? r->body : "", r->len, 0, NULL);
}

/* ---- layout comparison ---- */

static char tf_t_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return 'o';
    case JSON_ARRAY:
        return 'a';
    case JSON_STRING:
        return 's';
    case JSON_INTEGER:
    case JSON_REAL:
        return 'n'; /* JSON has one number type; integral vs fractional is not a layout change */
    case JSON_TRUE:
    case JSON_FALSE:
        return 'b';
    default:
        return 'z';
    }
}

static int tf_t_numeric_string(const char *s)
{
    char *end = NULL;
    if (s[0] == '\0') {
        return 0;
    }
    strtod(s, &end);
    return *end == '\0';
}

static int tf_t_shape(const json_t *fx, const json_t *got, const char *path, const char *map_path);

/* A map object (Bithumb ALL_KRW data, er-api rates): every fixture key must be there; keys the
 * fixture lacks are checked against the fixture's first entry. */
static int tf_t_shape_map(const json_t *fx, const json_t *got, const char *path,
                          const char *map_path)
{
    int rc = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)fx, key, v)
    {
        if (json_object_get(got, key) == NULL) {
            fprintf(stderr, "%s: key \"%s\" missing\n", path, key);
            rc = -1;
        }
    }
    const json_t *first = json_object_iter_value(json_object_iter((json_t *)fx));
    json_object_foreach((json_t *)got, key, v)
    {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.%s", path, key);
        const json_t *ref = json_object_get(fx, key) != NULL ? json_object_get(fx, key) : first;
        rc |= tf_t_shape(ref, v, sub, map_path);
    }
    return rc;
}

static int tf_t_shape_object(const json_t *fx, const json_t *got, const char *path,
                             const char *map_path)
{
    if (map_path != NULL && strcmp(path, map_path) == 0) {
        return tf_t_shape_map(fx, got, path, map_path);
    }
    void *fi = json_object_iter((json_t *)fx);
    void *gi = json_object_iter((json_t *)got);
    int rc = 0;
    while (fi != NULL || gi != NULL) {
        const char *fk = fi != NULL ? json_object_iter_key(fi) : "(end)";
        const char *gk = gi != NULL ? json_object_iter_key(gi) : "(end)";
        if (strcmp(fk, gk) != 0) {
            fprintf(stderr, "%s: key differs (name or order): fixture \"%s\", got \"%s\"\n", path,
                    fk, gk);
            return -1;
        }
        char sub[256];
        snprintf(sub, sizeof(sub), "%s.%s", path, fk);
        rc |= tf_t_shape(json_object_iter_value(fi), json_object_iter_value(gi), sub, map_path);
        fi = json_object_iter_next((json_t *)fx, fi);
        gi = json_object_iter_next((json_t *)got, gi);
    }
    return rc;
}

static int tf_t_shape(const json_t *fx, const json_t *got, const char *path, const char *map_path)
{
    char fk = tf_t_kind(fx);
    char gk = tf_t_kind(got);
    if (fk != gk) {
        fprintf(stderr, "%s: fixture type '%c', got '%c'\n", path, fk, gk);
        return -1;
    }
    if (fk == 's' && tf_t_numeric_string(json_string_value(fx)) &&
        !tf_t_numeric_string(json_string_value(got))) {
        fprintf(stderr, "%s: fixture has a numeric string, got \"%s\"\n", path,
                json_string_value(got));
        return -1;
    }
    if (fk == 'o') {
        return tf_t_shape_object(fx, got, path, map_path);
    }
    if (fk != 'a' || json_array_size(fx) == 0) {
        return 0;
    }
    if (json_array_size(got) == 0) {
        fprintf(stderr, "%s: fixture array has elements, got []\n", path);
        return -1;
    }
    /* Element i against fixture element i where the fixture has one (Korea Exim rows differ:
     * "194.53" vs "1,618.36"), else against the first. */
    int rc = 0;
    for (size_t i = 0; i < json_array_size(got); i++) {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        size_t ref = i < json_array_size(fx) ? i : 0;
        rc |= tf_t_shape(json_array_get(fx, ref), json_array_get(got, i), sub, map_path);
    }
    return rc;
}

/* GET path and compare against fixture; an array reply against an object fixture means
 * "every element has the fixture's layout" (Binance bulk calls). */
static void tf_t_check_layout(const char *path, const char *fixture, const char *map_path)
{
    json_t *fx = tf_t_fixture(fixture);
    json_t *got = tf_t_get_json(path, 200);
    CU_ASSERT_PTR_NOT_NULL(fx);
    if (fx != NULL && got != NULL) {
        int rc = 0;
        if (json_is_object(fx) && json_is_array(got)) {
            CU_ASSERT(json_array_size(got) > 0);
            for (size_t i = 0; i < json_array_size(got); i++) {
                json_t *row = json_array_get(got, i);
                const char *sym = json_string_value(json_object_get(row, "symbol"));
                /* Dated contracts have no funding ("" instead of a rate), as on Binance;
                 * test_binance_bulk_and_weight covers them. */
                if (sym != NULL && strchr(sym, '_') != NULL) {
                    continue;
                }
                rc |= tf_t_shape(fx, row, "$[]", map_path);
            }
        } else {
            rc = tf_t_shape(fx, got, "$", map_path);
        }
        if (rc != 0) {
            fprintf(stderr, "  ^ layout of GET %s differs from %s\n", path, fixture);
        }
        CU_ASSERT_EQUAL(rc, 0);
    }
    json_decref(fx);
    json_decref(got);
}

/* ---- server lifecycle ---- */

static int tf_t_read_port(void)
{
    char *text = tf_t_slurp(tf_t_port_file);
    if (text == NULL) {
        return -1;
    }
    char *end = NULL;
    long v = strtol(text, &end, 10);
    int ok = end != text && *end == '\n' && v > 0 && v < 65536;
    free(text);
    if (!ok) {
        return -1;
    }
    tf_t_port = (unsigned)v;
    return 0;
}

static void tf_t_exec_server(void)
{
    int fd = open(tf_t_stdout_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        close(fd);
    }
    execl(tf_t_binary, tf_t_binary, "--port", "0", "--port-file", tf_t_port_file, "--seed", "7",
          "--quiet", (char *)NULL);
    _exit(127);
}

static int tf_t_suite_init(void)
{
    int len = snprintf(tf_t_dir, sizeof(tf_t_dir), "/tmp/tf_fake_exchange.XXXXXX");
    if (len < 0 || (size_t)len >= sizeof(tf_t_dir) || mkdtemp(tf_t_dir) == NULL) {
        return -1;
    }
    /* tf_t_dir is 28 characters, so the two names below always fit. */
    snprintf(tf_t_port_file, sizeof(tf_t_port_file), "%s/port", tf_t_dir);
    snprintf(tf_t_stdout_file, sizeof(tf_t_stdout_file), "%s/stdout", tf_t_dir);
    tf_t_pid = fork();
    if (tf_t_pid < 0) {
        return -1;
    }
    if (tf_t_pid == 0) {
        tf_t_exec_server();
    }
    /* Poll for the port file (written atomically by the server) until a deadline. */
    long long deadline = tf_t_now_ms() + TF_T_START_TIMEOUT_MS;
    while (tf_t_now_ms() < deadline) {
        int status = 0;
        if (waitpid(tf_t_pid, &status, WNOHANG) == tf_t_pid) {
            fprintf(stderr, "fake exchange exited during start-up (status %d)\n", status);
            tf_t_pid = -1;
            return -1;
        }
        if (tf_t_read_port() == 0) {
            snprintf(tf_t_base, sizeof(tf_t_base), "http://127.0.0.1:%u", tf_t_port);
            return 0;
        }
        tf_t_nap_ms(20);
    }
    fprintf(stderr, "fake exchange did not write %s within %d ms\n", tf_t_port_file,
            TF_T_START_TIMEOUT_MS);
    return -1;
}

static int tf_t_suite_cleanup(void)
{
    if (tf_t_pid > 0) {
        kill(tf_t_pid, SIGKILL);
        waitpid(tf_t_pid, NULL, 0);
        tf_t_pid = -1;
    }
    unlink(tf_t_port_file);
    unlink(tf_t_stdout_file);
    rmdir(tf_t_dir);
    return 0;
}

/* Waits for pid with a deadline; returns the wait status or -1 on timeout. */
static int tf_t_wait_exit(pid_t pid, int timeout_ms)
{
    long long deadline = tf_t_now_ms() + timeout_ms;
    while (tf_t_now_ms() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            return status;
        }
        tf_t_nap_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Runs the binary with args (NULL-terminated, at most 6) and returns its exit code. */
static int tf_t_run_flags(const char *a1, const char *a2, const char *a3)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(tf_t_binary, tf_t_binary, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    int status = tf_t_wait_exit(pid, TF_T_STOP_TIMEOUT_MS);
    return (status >= 0 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
}

/* ---- tests ---- */

static void test_listening_line(void)
{
    char want[64];
    snprintf(want, sizeof(want), "listening on 127.0.0.1:%u\n", tf_t_port);
    char *got = tf_t_slurp(tf_t_stdout_file);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static void test_layouts_match_fixtures(void)
{
    static const struct {
        const char *path, *fixture, *map_path;
    } cases[] = {
        {"/public/ticker/BTC_KRW", "bithumb_v1_ticker_btc_krw.json", NULL},
        {"/public/ticker/USDT_KRW", "bithumb_v1_ticker_usdt_krw.json", NULL},
        {"/public/ticker/ALL_KRW", "bithumb_v1_ticker_all_krw.json", "$.data"},
        {"/public/orderbook/BTC_KRW?count=5", "bithumb_v1_orderbook_btc_krw.json", NULL},
        {"/public/orderbook/DOGE_KRW", "bithumb_v1_orderbook_btc_krw.json", NULL},
        {"/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", "binance_fapi_book_ticker_btcusdt.json",
         NULL},
        {"/fapi/v1/ticker/bookTicker", "binance_fapi_book_ticker_btcusdt.json", NULL},
        {"/fapi/v1/premiumIndex?symbol=BTCUSDT", "binance_fapi_premium_index_btcusdt.json", NULL},
        {"/fapi/v1/premiumIndex", "binance_fapi_premium_index_btcusdt.json", NULL},
        {"/fapi/v1/ticker/price?symbol=BTCUSDT", "binance_fapi_ticker_price_v1_btcusdt.json", NULL},
        {"/fapi/v1/ticker/price", "binance_fapi_ticker_price_v1_btcusdt.json", NULL},
        {"/v1/forex/recent?codes=FRX.KRWUSD", "dunamu_forex_krwusd.json", NULL},
        {"/v6/latest/USD", "er_api_latest_usd.json", "$.rates"},
        {"/live?access_key=k&source=USD&currencies=KRW", "exchangerate_host_live_usd_krw.json",
         NULL},
        {"/site/program/financial/exchangeJSON?authkey=K&searchdate=20261123&data=AP01",
         "koreaexim_exchange_ap01.json", NULL},
        {"/v1/ticker?markets=KRW-BTC", "upbit_ticker_krw_btc.json", NULL},
        {"/v1/ticker?markets=KRW-USDT", "upbit_ticker_krw_usdt.json", NULL},
        {"/v1/ticker?markets=KRW-BTC,KRW-ETH,KRW-XRP,KRW-SOL,KRW-DOGE,KRW-ADA",
         "upbit_ticker_krw_btc.json", NULL},
        {"/api/v5/market/ticker?instId=BTC-USDT", "okx_ticker_btc_usdt.json", NULL},
        {"/api/v5/market/ticker?instId=BTC-USDT-SWAP", "okx_ticker_btc_usdt.json", NULL},
        {"/api/v5/market/tickers?instType=SPOT", "okx_ticker_btc_usdt.json", NULL},
        {"/api/v5/market/tickers?instType=SWAP", "okx_ticker_btc_usdt.json", NULL},
        {"/v5/market/tickers?category=linear&symbol=BTCUSDT", "bybit_tickers_linear_btcusdt.json",
         NULL},
        {"/v5/market/tickers?category=linear", "bybit_tickers_linear_btcusdt.json", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tf_t_check_layout(cases[i].path, cases[i].fixture, cases[i].map_path);
    }
}

static void test_timestamps_are_current(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    json_t *bn = tf_t_get_json("/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", 200);
    json_t *bt = tf_t_get_json("/public/ticker/BTC_KRW", 200);
    json_t *t = json_object_get(bn, "time");
    const char *date = json_string_value(json_object_get(json_object_get(bt, "data"), "date"));
    CU_ASSERT(json_is_integer(t));
    CU_ASSERT(llabs((long long)json_integer_value(t) - now) < 10000);
    CU_ASSERT_PTR_NOT_NULL(date);
    if (date != NULL) {
        CU_ASSERT(llabs(atoll(date) - now) < 10000);
    }
    json_decref(bn);
    json_decref(bt);
}

static void test_error_bodies(void)
{
    static const struct {
        const char *path;
        long status;
        const char *fixture; /* compared with json_equal unless shape_only */
        int shape_only;
    } cases[] = {
        {"/public/ticker/FOO_KRW", 200, "bithumb_v1_error_invalid_param.json", 0},
        {"/public/orderbook/FOO_KRW", 200, "bithumb_v1_error_invalid_param.json", 0},
        {"/fapi/v1/ticker/bookTicker?symbol=FOOUSDT", 400, "binance_fapi_error_invalid_symbol.json",
         0},
        {"/fapi/v1/premiumIndex?symbol=FOOUSDT", 400, "binance_fapi_error_invalid_symbol.json", 0},
        {"/fapi/v1/ticker/price?symbol=FOOUSDT", 400, "binance_fapi_error_invalid_symbol.json", 0},
        {"/v1/ticker?markets=KRW-FOO", 404, "upbit_error_code_not_found.json", 0},
        {"/api/v5/market/ticker?instId=FOO-USDT", 200, "okx_error_instrument_not_exist.json", 0},
        {"/v5/market/tickers?category=linear&symbol=FOOUSDT", 200,
         "bybit_error_not_supported_symbols.json", 1},
        {"/v6/latest/XXX", 404, "er_api_error_unsupported_code.json", 0},
        {"/live?source=USD&currencies=KRW", 200, "exchangerate_host_error_missing_access_key.json",
         0},
        {"/site/program/financial/exchangeJSON?authkey=bad&data=AP01", 200,
         "koreaexim_error_auth.json", 0},
        {"/site/program/financial/exchangeJSON?data=AP01", 200, "koreaexim_error_auth.json", 0},
        {"/site/program/financial/exchangeJSON?authkey=K&searchdate=20261122&data=AP01", 200,
         "koreaexim_empty_non_business_day.json", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *fx = tf_t_fixture(cases[i].fixture);
        json_t *got = tf_t_get_json(cases[i].path, cases[i].status);
        int ok = fx != NULL && got != NULL &&
                 (cases[i].shape_only ? tf_t_shape(fx, got, "$", NULL) == 0 : json_equal(fx, got));
        if (!ok) {
            fprintf(stderr, "GET %s: body differs from %s\n", cases[i].path, cases[i].fixture);
        }
        CU_ASSERT(ok);
        json_decref(fx);
        json_decref(got);
    }
    struct tf_t_resp r;
    CU_ASSERT_EQUAL_FATAL(tf_t_request(NULL, "GET", "/no/such/path", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    json_t *nf = tf_t_body_json(&r);
    CU_ASSERT(json_is_object(nf));
    json_decref(nf);
    tf_t_resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(tf_t_request(NULL, "POST", "/public/ticker/BTC_KRW", "{}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 405);
    tf_t_resp_free(&r);
}

static int tf_t_array_has_symbol(const json_t *arr, const char *symbol)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_object_get(json_array_get(arr, i), "symbol"));
        if (s != NULL && strcmp(s, symbol) == 0) {
            return 1;
        }
    }
    return 0;
}

static void test_binance_bulk_and_weight(void)
{
    static const char *const paths[] = {"/fapi/v1/ticker/bookTicker", "/fapi/v1/premiumIndex",
                                        "/fapi/v1/ticker/price"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct tf_t_resp r;
        CU_ASSERT_EQUAL_FATAL(tf_t_request(NULL, "GET", paths[i], NULL, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(r.weight[0] != '\0' && atoi(r.weight) > 0);
        json_t *arr = json_loadb(r.body != NULL ? r.body : "", r.len, 0, NULL);
        CU_ASSERT(json_is_array(arr));
        CU_ASSERT(tf_t_array_has_symbol(arr, "BTCUSDT"));
        CU_ASSERT(tf_t_array_has_symbol(arr, "BTCUSDT_261225"));
        CU_ASSERT(tf_t_array_has_symbol(arr, "ETHUSDC"));
        for (size_t k = 0; k < json_array_size(arr); k++) {
            json_t *row = json_array_get(arr, k);
            CU_ASSERT(json_is_string(json_object_get(row, "symbol")));
            CU_ASSERT(json_is_integer(json_object_get(row, "time")));
        }
        json_decref(arr);
        tf_t_resp_free(&r);
    }
    struct tf_t_resp r;
    CU_ASSERT_EQUAL_FATAL(tf_t_request(NULL, "GET", "/fapi/v1/ticker/price?symbol=X", NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT(r.weight[0] != '\0');
    tf_t_resp_free(&r);
}

static double tf_t_str_num(const json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? strtod(s, NULL) : NAN;
}

static const char *tf_t_path_str(json_t *root, const char *k1, const char *k2)
{
    return json_string_value(json_object_get(json_object_get(root, k1), k2));
}

static void test_fixed_price_served_exactly(void)
{
    tf_t_post_ok("/admin/price", "{\"symbol\":\"BTC\",\"usdt\":95012.35,\"krw\":136850000,"
                                 "\"usdkrw\":1402.5,\"bid\":95012.3,\"ask\":95012.4,"
                                 "\"krw_bid\":136849000,\"krw_ask\":136850000}");
    json_t *bt = tf_t_get_json("/public/ticker/BTC_KRW", 200);
    CU_ASSERT_STRING_EQUAL(tf_t_path_str(bt, "data", "closing_price"), "136850000");
    json_decref(bt);

    json_t *ob = tf_t_get_json("/public/orderbook/BTC_KRW?count=5", 200);
    json_t *data = json_object_get(ob, "data");
    json_t *bid0 = json_array_get(json_object_get(data, "bids"), 0);
    json_t *ask0 = json_array_get(json_object_get(data, "asks"), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(bid0, "price")), "136849000");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ask0, "price")), "136850000");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(data, "bids")), 5);
    json_decref(ob);

    json_t *bk = tf_t_get_json("/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", 200);
    CU_ASSERT_EQUAL(tf_t_str_num(json_object_get(bk, "bidPrice")), 95012.3);
    CU_ASSERT_EQUAL(tf_t_str_num(json_object_get(bk, "askPrice")), 95012.4);
    double mid = (tf_t_str_num(json_object_get(bk, "bidPrice")) +
                  tf_t_str_num(json_object_get(bk, "askPrice"))) /
                 2.0;
    json_decref(bk);

    json_t *tp = tf_t_get_json("/fapi/v1/ticker/price?symbol=BTCUSDT", 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(tp, "price")), "95012.35");
    json_decref(tp);

    json_t *up = tf_t_get_json("/v1/ticker?markets=KRW-BTC", 200);
    json_t *trade = json_object_get(json_array_get(up, 0), "trade_price");
    CU_ASSERT(json_is_integer(trade) && json_integer_value(trade) == 136850000);
    json_decref(up);

    json_t *du = tf_t_get_json("/v1/forex/recent?codes=FRX.KRWUSD", 200);
    double base = json_number_value(json_object_get(json_array_get(du, 0), "basePrice"));
    CU_ASSERT_EQUAL(base, 1402.5);
    json_decref(du);

    json_t *er = tf_t_get_json("/v6/latest/USD", 200);
    CU_ASSERT_EQUAL(json_number_value(json_object_get(json_object_get(er, "rates"), "KRW")),
                    1402.5);
    json_decref(er);

    json_t *kx = tf_t_get_json("/site/program/financial/exchangeJSON?authkey=K&data=AP01", 200);
    json_t *usd = json_array_get(kx, json_array_size(kx) - 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(usd, "deal_bas_r")), "1,402.5");
    json_decref(kx);

    /* The README's worked example: Bithumb 136,850,000 vs fapi mid 95,012.35 at 1,402.50. */
    double premium = (136850000.0 / (mid * base) - 1.0) * 100.0;
    CU_ASSERT_DOUBLE_EQUAL(premium, 2.698, 0.0005);
}

static double tf_t_binance_price(const char *symbol)
{
    char path[128];
    snprintf(path, sizeof(path), "/fapi/v1/ticker/price?symbol=%s", symbol);
    json_t *j = tf_t_get_json(path, 200);
    double v = tf_t_str_num(json_object_get(j, "price"));
    json_decref(j);
    return v;
}

static void test_frozen_symbol_stays_while_others_walk(void)
{
    tf_t_post_ok("/admin/price", "{\"symbol\":\"BTC\",\"usdt\":95000.5}");
    double btc = tf_t_binance_price("BTCUSDT");
    CU_ASSERT_EQUAL(btc, 95000.5);
    /* Poll until the unfrozen ETH walk has moved (it steps every 100 ms). */
    double eth0 = tf_t_binance_price("ETHUSDT");
    double eth = eth0;
    long long deadline = tf_t_now_ms() + 5000;
    while (eth == eth0 && tf_t_now_ms() < deadline) {
        tf_t_nap_ms(50);
        eth = tf_t_binance_price("ETHUSDT");
    }
    CU_ASSERT(eth != eth0);
    CU_ASSERT_EQUAL(tf_t_binance_price("BTCUSDT"), 95000.5);
    tf_t_post_ok("/admin/unfreeze", "{\"symbol\":\"*\"}");
    json_t *state = tf_t_get_json("/admin/state", 200);
    json_t *b = json_object_get(json_object_get(state, "symbols"), "BTC");
    CU_ASSERT(json_is_false(json_object_get(b, "frozen")));
    CU_ASSERT(json_is_false(json_object_get(state, "usdkrw_frozen")));
    json_decref(state);
}

static void test_fault_applies_once_then_clears(void)
{
    const char *url = "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT";
    tf_t_post_ok("/admin/fault", "{\"endpoint\":\"binance.book_ticker\",\"mode\":\"429\","
                                 "\"retry_after\":2,\"delay_ms\":0,\"count\":1}");
    struct tf_t_resp r;
    CU_ASSERT_EQUAL_FATAL(tf_t_request(NULL, "GET", url, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_STRING_EQUAL(r.retry_after, "2");
    json_t *fx = tf_t_fixture("binance_fapi_error_429_too_many_requests.json");
    json_t *got = json_loadb(r.body != NULL ? r.body : "", r.len, 0, NULL);
    CU_ASSERT(fx != NULL && got != NULL && json_equal(fx, got));
    json_decref(fx);
    json_decref(got);
    tf_t_resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(tf_t_request(NULL, "GET", url, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    tf_t_resp_free(&r);

    /* "*" applies everywhere until cleared with mode none. */
    tf_t_post_ok("/admin/fault", "{\"endpoint\":\"*\",\"mode\":503}");
    json_decref(tf_t_get_json("/public/ticker/BTC_KRW", 503));
    json_decref(tf_t_get_json("/v1/ticker?markets=KRW-BTC", 503));
    tf_t_post_ok("/admin/fault", "{\"endpoint\":\"*\",\"mode\":\"none\"}");
    json_decref(tf_t_get_json("/public/ticker/BTC_KRW", 200));
    json_decref(tf_t_get_json(url, 200));
}

/* One count=1 fault on bithumb.ticker; returns the faulted response (caller frees). */
static void tf_t_fault_once(const char *mode, struct tf_t_resp *r)
{
    char body[160];
    snprintf(body, sizeof(body),
             "{\"endpoint\":\"bithumb.ticker\",\"mode\":\"%s\",\"retry_after\":3,\"count\":1}",
             mode);
    tf_t_post_ok("/admin/fault", body);
    CU_ASSERT_EQUAL(tf_t_request(NULL, "GET", "/public/ticker/BTC_KRW", NULL, r), 0);
}

static void test_fault_modes(void)
{
    struct tf_t_resp r;
    tf_t_fault_once("500", &r);
    CU_ASSERT_EQUAL(r.status, 500);
    tf_t_resp_free(&r);
    tf_t_fault_once("503", &r);
    CU_ASSERT_EQUAL(r.status, 503);
    tf_t_resp_free(&r);

    tf_t_fault_once("418", &r);
    json_t *j = tf_t_body_json(&r);
    CU_ASSERT_EQUAL(r.status, 418);
    CU_ASSERT_STRING_EQUAL(r.retry_after, "3");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "code")), -1003);
    json_decref(j);
    tf_t_resp_free(&r);

    tf_t_fault_once("html", &r);
    CU_ASSERT_EQUAL(r.status, 502);
    CU_ASSERT(strncmp(r.content_type, "text/html", 9) == 0);
    CU_ASSERT(r.body != NULL && strncmp(r.body, "<!DOCTYPE html>", 15) == 0);
    tf_t_resp_free(&r);

    tf_t_fault_once("error_object", &r);
    j = tf_t_body_json(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "5600");
    json_decref(j);
    tf_t_resp_free(&r);

    tf_t_fault_once("empty", &r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.len, 0);
    tf_t_resp_free(&r);

    tf_t_fault_once("zero", &r);
    j = tf_t_body_json(&r);
    CU_ASSERT_STRING_EQUAL(tf_t_path_str(j, "data", "closing_price"), "0");
    json_decref(j);
    tf_t_resp_free(&r);

    tf_t_fault_once("wrong_types", &r);
    j = tf_t_body_json(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(json_is_null(json_object_get(json_object_get(j, "data"), "closing_price")));
    json_decref(j);
    tf_t_resp_free(&r);

    tf_t_fault_once("truncate", &r);
    j = tf_t_body_json(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT(r.len > 10);
    CU_ASSERT_EQUAL(r.content_length, (curl_off_t)r.len);
    json_decref(j);
    tf_t_resp_free(&r);

    /* Every count=1 fault is gone: a normal answer again. */
    j = tf_t_get_json("/public/ticker/BTC_KRW", 200);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "status")), "0000");
    json_decref(j);
}

/* A delay fault on one endpoint must not hold up another connection (thread per connection). */
static void test_delay_does_not_block_others(void)
{
    tf_t_post_ok("/admin/fault", "{\"endpoint\":\"dunamu.forex\",\"mode\":\"delay\","
                                 "\"delay_ms\":1500,\"count\":1}");
    struct tf_t_resp slow_r;
    struct tf_t_resp fast_r;
    char slow_url[512];
    char fast_url[512];
    memset(&slow_r, 0, sizeof(slow_r));
    memset(&fast_r, 0, sizeof(fast_r));
    CURLM *multi = curl_multi_init();
    CURL *slow = curl_easy_init();
    CURL *fast = curl_easy_init();
    CU_ASSERT_FATAL(multi != NULL && slow != NULL && fast != NULL);
    CU_ASSERT_FATAL(tf_t_setup_handle(slow, "GET", "/v1/forex/recent?codes=FRX.KRWUSD", NULL,
                                      &slow_r, slow_url, sizeof(slow_url)) == 0);
    CU_ASSERT_FATAL(tf_t_setup_handle(fast, "GET", "/public/ticker/BTC_KRW", NULL, &fast_r,
                                      fast_url, sizeof(fast_url)) == 0);
    long long start = tf_t_now_ms();
    curl_multi_add_handle(multi, slow);
    tf_t_nap_ms(100); /* let the slow request reach the server first */
    curl_multi_add_handle(multi, fast);
    long long fast_done = -1;
    long long slow_done = -1;
    int running = 1;
    while (running > 0 && tf_t_now_ms() - start < 15000) {
        curl_multi_perform(multi, &running);
        int left = 0;
        CURLMsg *msg = NULL;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                long long *slot = msg->easy_handle == fast ? &fast_done : &slow_done;
                *slot = tf_t_now_ms() - start;
            }
        }
        curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
    CU_ASSERT(fast_done >= 0 && fast_done < 1200);
    CU_ASSERT(slow_done >= 1400);
    curl_multi_remove_handle(multi, slow);
    curl_multi_remove_handle(multi, fast);
    curl_easy_cleanup(slow);
    curl_easy_cleanup(fast);
    curl_multi_cleanup(multi);
    tf_t_resp_free(&slow_r);
    tf_t_resp_free(&fast_r);
}

static json_t *tf_t_stats_endpoint(json_t *stats, const char *ep, const char *field)
{
    return json_object_get(json_object_get(json_object_get(stats, "endpoints"), ep), field);
}

static void test_reused_handle_counts_one_connection(void)
{
    tf_t_post_ok("/admin/reset", "{}");
    CURL *h = curl_easy_init();
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        struct tf_t_resp r;
        if (tf_t_request(h, "GET", "/public/ticker/BTC_KRW", NULL, &r) == 0 && r.status == 200) {
            ok++;
        }
        tf_t_resp_free(&r);
    }
    curl_easy_cleanup(h);
    CU_ASSERT_EQUAL(ok, 20);

    json_t *st = tf_t_get_json("/admin/stats", 200);
    CU_ASSERT_EQUAL(json_integer_value(tf_t_stats_endpoint(st, "bithumb.ticker", "requests")), 20);
    CU_ASSERT_EQUAL(json_integer_value(tf_t_stats_endpoint(st, "bithumb.ticker", "connections")),
                    1);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(st, "market_connections_total")), 1);
    CU_ASSERT(json_integer_value(json_object_get(st, "connections_total")) >= 2);
    json_t *times = json_object_get(json_object_get(st, "request_times_ms"), "bithumb.ticker");
    CU_ASSERT_EQUAL(json_array_size(times), 20);
    json_t *per_sec = json_object_get(json_object_get(st, "per_second"), "bithumb.ticker");
    CU_ASSERT_EQUAL(json_array_size(per_sec), 10);
    json_decref(st);

    /* Fresh handles are fresh connections. */
    json_decref(tf_t_get_json("/public/ticker/BTC_KRW", 200));
    json_decref(tf_t_get_json("/public/ticker/ETH_KRW", 200));
    st = tf_t_get_json("/admin/stats", 200);
    CU_ASSERT_EQUAL(json_integer_value(tf_t_stats_endpoint(st, "bithumb.ticker", "connections")),
                    3);
    json_decref(st);
}

/* The mutating proxy mode: at rate 1 every numeric field of a market body changes (a Bithumb
 * price string, a Binance integer time), the same seed gives the same mutation, the counters
 * say what was done, and rate 0 serves the market unchanged again. */
static void test_mutate_mode(void)
{
    tf_t_post_ok("/admin/price", "{\"symbol\":\"BTC\",\"usdt\":95012.35,\"krw\":136850000,"
                                 "\"krw_bid\":136849000,\"krw_ask\":136850000}");
    char first[64] = "";
    for (int round = 0; round < 2; round++) {
        json_decref(tf_t_post_json("/admin/mutate", "{\"rate\":1,\"seed\":3}"));
        json_t *bt = tf_t_get_json("/public/ticker/BTC_KRW", 200);
        const char *closing = tf_t_path_str(bt, "data", "closing_price");
        CU_ASSERT_PTR_NOT_NULL_FATAL(closing);
        CU_ASSERT_STRING_NOT_EQUAL(closing, "136850000");
        CU_ASSERT_STRING_NOT_EQUAL(json_string_value(json_object_get(bt, "status")), "0000");
        if (round == 0) {
            snprintf(first, sizeof first, "%s", closing);
        } else {
            CU_ASSERT_STRING_EQUAL(closing, first); /* same seed, same mutation */
        }
        json_decref(bt);
    }
    json_t *tp = tf_t_get_json("/fapi/v1/ticker/price?symbol=BTCUSDT", 200);
    CU_ASSERT_STRING_NOT_EQUAL(json_string_value(json_object_get(tp, "price")), "95012.35");
    json_decref(tp);
    json_t *state = tf_t_get_json("/admin/state", 200);
    json_t *m = json_object_get(state, "mutate");
    CU_ASSERT_EQUAL(json_real_value(json_object_get(m, "rate")), 1.0);
    CU_ASSERT(json_integer_value(json_object_get(m, "fields")) >= 14);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "responses")), 2);
    json_decref(state);
    struct tf_t_resp r = {0};
    CU_ASSERT_EQUAL(tf_t_request(NULL, "POST", "/admin/mutate", "{\"rate\":2}", &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    tf_t_resp_free(&r);
    json_decref(tf_t_post_json("/admin/mutate", "{\"rate\":0}"));
    json_t *bt = tf_t_get_json("/public/ticker/BTC_KRW", 200);
    CU_ASSERT_STRING_EQUAL(tf_t_path_str(bt, "data", "closing_price"), "136850000");
    json_decref(bt);
}

static void test_bad_flags_exit_2(void)
{
    CU_ASSERT_EQUAL(tf_t_run_flags("--bogus", NULL, NULL), 2);
    CU_ASSERT_EQUAL(tf_t_run_flags("--port", "abc", NULL), 2);
    CU_ASSERT_EQUAL(tf_t_run_flags("--seed", "1", NULL), 2); /* --port missing */
    CU_ASSERT_EQUAL(tf_t_run_flags("--port", "0", "--fault=nope=500"), 2);
    CU_ASSERT_EQUAL(tf_t_run_flags("--port", "0", "--price=BTC=-1"), 2);
    CU_ASSERT_EQUAL(tf_t_run_flags("--port", "0", "--mutate=1.5"), 2);
    CU_ASSERT_EQUAL(tf_t_run_flags("--port", "0", "--mutate=0.1:x"), 2);
    CU_ASSERT_EQUAL(tf_t_run_flags("--help", NULL, NULL), 0);
}

/* Last: the server stops cleanly on SIGTERM and removes its port file. */
static void test_sigterm_exits_0(void)
{
    CU_ASSERT_FATAL(tf_t_pid > 0);
    CU_ASSERT_EQUAL(kill(tf_t_pid, SIGTERM), 0);
    int status = tf_t_wait_exit(tf_t_pid, TF_T_STOP_TIMEOUT_MS);
    tf_t_pid = -1;
    CU_ASSERT(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(access(tf_t_port_file, F_OK) != 0);
}

int main(int argc, char **argv)
{
    tf_t_binary = argc > 1 ? argv[1] : getenv("TF_FAKE_EXCHANGE");
    if (tf_t_binary == NULL) {
        fprintf(stderr, "usage: %s PATH_TO_tickflow-fake-exchange (or set TF_FAKE_EXCHANGE)\n",
                argv[0]);
        return 2;
    }
    if (getenv("TF_FIXTURE_DIR") != NULL) {
        tf_t_fixture_dir = getenv("TF_FIXTURE_DIR");
    }
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        CU_initialize_registry() != CUE_SUCCESS) {
        return 1;
    }
    CU_pSuite s = CU_add_suite("fake_exchange", tf_t_suite_init, tf_t_suite_cleanup);
    int rc = s == NULL ? -1 : 0;
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"listening line", test_listening_line},
        {"layouts match fixtures", test_layouts_match_fixtures},
        {"timestamps are current", test_timestamps_are_current},
        {"error bodies", test_error_bodies},
        {"binance bulk lists and weight header", test_binance_bulk_and_weight},
        {"fixed price served exactly", test_fixed_price_served_exactly},
        {"frozen symbol stays while others walk", test_frozen_symbol_stays_while_others_walk},
        {"fault applies once then clears", test_fault_applies_once_then_clears},
        {"fault modes", test_fault_modes},
        {"delay does not block others", test_delay_does_not_block_others},
        {"reused handle counts one connection", test_reused_handle_counts_one_connection},
        {"mutating proxy mode", test_mutate_mode},
        {"bad flags exit 2", test_bad_flags_exit_2},
        {"SIGTERM exits 0", test_sigterm_exits_0},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(tests) / sizeof(tests[0]); i++) {
        rc = CU_add_test(s, tests[i].name, tests[i].fn) == NULL ? -1 : 0;
    }
    if (rc == 0) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
    }
    unsigned failures = CU_get_number_of_failures();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    int error = CU_get_error() != CUE_SUCCESS;
    CU_cleanup_registry();
    curl_global_cleanup();
    return (rc != 0 || failures > 0 || suites_failed > 0 || error) ? 1 : 0;
}
