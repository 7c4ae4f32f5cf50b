/*
 * Arbitrage positions: the PnL arithmetic, the Redis store (hash per position, set of open
 * ids, id counter, Lua close) and the `tickflow positions` command. Layout and formulas:
 * docs/positions.md.
 */
#include "tf_positions.h"

#include "tf_json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_config.h"
#include "tf_instance.h"
#include "tf_log.h"

#define POS_KEY_MAX     512
#define POS_NUM_MAX     32 /* "%.17g" of a double, or a decimal int64, with NUL */
#define POS_FIELDS_MAX  24 /* field/value pairs one HSET writes */
#define POS_MSG_MAX     512
#define POS_SCAN_COUNT  "1000"
#define POS_CONFIGS_MAX 16
#define EXIT_RUNTIME    1
#define EXIT_USAGE      2

/*
 * KEYS[1] the position hash, KEYS[2] the open set; ARGV[1] the id, ARGV[2..] the closing
 * field/value pairs. Returns 1 when closed, 0 when the position is not open, -1 when it does
 * not exist. One script so the status check, the HSET and the SREM cannot interleave with
 * another close.
 */
static const char close_script[] = "local status = redis.call('HGET', KEYS[1], 'status')\n"
                                   "if not status then return -1 end\n"
                                   "if status ~= 'open' then return 0 end\n"
                                   "redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
                                   "redis.call('SREM', KEYS[2], ARGV[1])\n"
                                   "return 1\n";

/* ---- arithmetic ---- */

const char *tf_direction_name(tf_direction d)
{
    switch (d) {
    case TF_DIRECTION_LONG_KRW:
        return "long_krw_short_global";
    case TF_DIRECTION_SHORT_KRW:
        return "short_krw_long_global";
    }
    return "?";
}

int tf_direction_parse(const char *text, tf_direction *out)
{
    if (text && strcmp(text, "long_krw_short_global") == 0) {
        *out = TF_DIRECTION_LONG_KRW;
        return TF_OK;
    }
    if (text && strcmp(text, "short_krw_long_global") == 0) {
        *out = TF_DIRECTION_SHORT_KRW;
        return TF_OK;
    }
    return TF_EINVAL;
}

static bool positive(double v)
{
    return isfinite(v) && v > 0;
}

double tf_premium_pct(double krw, double global, double usdkrw)
{
    if (!positive(krw) || !positive(global) || !positive(usdkrw))
        return NAN;
    double v = (krw / (global * usdkrw) - 1.0) * 100.0;
    return isfinite(v) ? v : NAN;
}

tf_fill tf_position_entry_fill(tf_direction d, const tf_book *b)
{
    if (d == TF_DIRECTION_SHORT_KRW)
        return (tf_fill){b->krw_bid, b->global_ask, b->usdkrw};
    return (tf_fill){b->krw_ask, b->global_bid, b->usdkrw};
}

tf_fill tf_position_exit_fill(tf_direction d, const tf_book *b)
{
    if (d == TF_DIRECTION_SHORT_KRW)
        return (tf_fill){b->krw_ask, b->global_bid, b->usdkrw};
    return (tf_fill){b->krw_bid, b->global_ask, b->usdkrw};
}

static bool fill_valid(const tf_fill *f)
{
    return positive(f->krw_price) && positive(f->global_price) && positive(f->usdkrw);
}

int tf_position_pnl(const tf_position *p, const tf_fill *exit, tf_pnl *out)
{
    if (!positive(p->size) || !fill_valid(&p->entry) || !fill_valid(exit) ||
        !isfinite(p->entry_premium_pct))
        return TF_EVALUE;
    double premium = tf_premium_pct(exit->krw_price, exit->global_price, exit->usdkrw);
    if (!isfinite(premium))
        return TF_EVALUE;
    /* Long KRW: bought KRW spot, sold the perp; the global leg is converted at today's rate. */
    double krw_leg = p->size * (exit->krw_price - p->entry.krw_price);
    double global_leg = p->size * (p->entry.global_price - exit->global_price) * exit->usdkrw;
    double points = premium - p->entry_premium_pct;
    if (p->direction == TF_DIRECTION_SHORT_KRW) {
        krw_leg = -krw_leg;
        global_leg = -global_leg;
        points = -points;
    }
    out->premium_pct = premium;
    out->pnl_pct_points = points;
    out->pnl_krw = krw_leg + global_leg;
    return isfinite(out->pnl_krw) && isfinite(points) ? TF_OK : TF_EVALUE;
}

/* ---- text helpers ---- */

bool tf_position_id_valid(const char *id)
{
    if (!id || strncmp(id, "pos-", 4) != 0)
        return false;
    const char *n = id + 4;
    size_t len = strlen(n);
    if (len == 0 || len > 19 || n[0] == '0')
        return false;
    return strspn(n, "0123456789") == len;
}

static unsigned long long id_number(const char *id)
{
    return strtoull(id + 4, NULL, 10);
}

/* The shortest text that reads back as exactly `v`. */
static void fmt_double(char *buf, size_t size, double v)
{
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* A decimal number as Redis hashes and command lines carry it: no spaces, hex, inf or nan. */
static bool parse_double(const char *s, double *out)
{
    if (!s || !*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return false;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_int64(const char *s, int64_t *out)
{
    if (!s || !*s || strspn(s, "0123456789-") != strlen(s))
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return false;
    *out = (int64_t)v;
    return true;
}

/* Joins parts with ':' into buf. false when it does not fit. */
static bool make_key(char *buf, size_t size, const char *const *parts, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ":" : "", parts[i]);
        if (w < 0 || (size_t)w >= size - used)
            return false;
        used += (size_t)w;
    }
    return true;
}

static bool position_key(char *buf, size_t size, const char *prefix, const char *id)
{
    const char *parts[] = {prefix, "position", id};
    return make_key(buf, size, parts, 3);
}

static bool open_set_key(char *buf, size_t size, const char *prefix)
{
    const char *parts[] = {prefix, "positions", "open"};
    return make_key(buf, size, parts, 3);
}

/* A coin code (BTC, 1INCH): letters and digits, stored upper case. */
static int check_symbol(const char *label, const char *s, char *out, char *err, size_t err_size)
{
    size_t len = s ? strlen(s) : 0;
    bool ok = len > 0 && len < TF_POSITION_SYMBOL_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)s[i]) != 0;
    if (!ok) {
        snprintf(err, err_size,
                 "%s: expected a coin code of 1 to %d letters or digits such as BTC, "
                 "found '%s'",
                 label, TF_POSITION_SYMBOL_MAX - 1, s ? s : "");
        return TF_EINVAL;
    }
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    return TF_OK;
}

/* An exchange name as the sources' `exchange` option writes it: it becomes a key segment, so
 * no ':' and no whitespace. */
static int check_exchange(const char *label, const char *s, char *out, char *err, size_t err_size)
{
    size_t len = s ? strlen(s) : 0;
    bool ok = len > 0 && len < TF_POSITION_EXCHANGE_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.';
    if (!ok) {
        snprintf(err, err_size,
                 "%s: expected an exchange name of 1 to %d letters, digits, '_', '-' or '.' such "
                 "as bithumb, found '%s'",
                 label, TF_POSITION_EXCHANGE_MAX - 1, s ? s : "");
        return TF_EINVAL;
    }
    memmove(out, s, len + 1);
    return TF_OK;
}

static int check_fill(const char *what, const tf_fill *f, char *err, size_t err_size)
{
    const char *names[] = {"krw_price", "global_price", "usdkrw"};
    double values[] = {f->krw_price, f->global_price, f->usdkrw};
    for (size_t i = 0; i < 3; i++) {
        if (!positive(values[i])) {
            snprintf(err, err_size, "%s %s: expected a finite number > 0, found %.17g", what,
                     names[i], values[i]);
            return TF_EINVAL;
        }
    }
    return TF_OK;
}

/* ---- hash fields ---- */

/* Field/value arguments of one HSET, with room for the formatted numbers. */
typedef struct pos_fields {
    const char *argv[2 * POS_FIELDS_MAX + 4];
    int argc;
    char nums[POS_FIELDS_MAX][POS_NUM_MAX];
    int n_nums;
} pos_fields;

static void fields_str(pos_fields *f, const char *name, const char *value)
{
    if (f->argc + 2 > (int)TF_ARRAY_LEN(f->argv))
        return; /* the fixed field lists below always fit */
    f->argv[f->argc++] = name;
    f->argv[f->argc++] = value;
}

static void fields_num(pos_fields *f, const char *name, double v)
{
    if (f->n_nums >= POS_FIELDS_MAX)
        return;
    char *buf = f->nums[f->n_nums++];
    fmt_double(buf, POS_NUM_MAX, v);
    fields_str(f, name, buf);
}

static void fields_int(pos_fields *f, const char *name, int64_t v)
{
    if (f->n_nums >= POS_FIELDS_MAX)
        return;
    char *buf = f->nums[f->n_nums++];
    snprintf(buf, POS_NUM_MAX, "%" PRId64, v);
    fields_str(f, name, buf);
}

static const char *hash_get(const redisReply *h, const char *field)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i];
        const redisReply *v = h->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, field) == 0)
            return v->str;
    }
    return NULL;
}

/* Reads fields of one stored hash, remembering the first problem. */
typedef struct hash_reader {
    const redisReply *h;
    const char *key;
    char *err;
    size_t err_size;
    int rc;
} hash_reader;

static void hash_problem(hash_reader *hr, const char *field, const char *expected, const char *v)
{
    if (hr->rc != TF_OK)
        return;
    hr->rc = TF_EVALUE;
    if (v)
        snprintf(hr->err, hr->err_size, "%s: field %s: expected %s, found '%s'", hr->key, field,
                 expected, v);
    else
        snprintf(hr->err, hr->err_size, "%s: field %s: expected %s, found nothing", hr->key, field,
                 expected);
}

static double hash_num(hash_reader *hr, const char *field, bool must_be_positive)
{
    const char *v = hash_get(hr->h, field);
    double d = 0;
    if (!parse_double(v, &d) || (must_be_positive && d <= 0)) {
        hash_problem(hr, field, must_be_positive ? "a number > 0" : "a number", v);
        return 0;
    }
    return d;
}

static int64_t hash_ms(hash_reader *hr, const char *field)
{
    const char *v = hash_get(hr->h, field);
    int64_t ms = 0;
    if (!parse_int64(v, &ms) || ms <= 0) {
        hash_problem(hr, field, "epoch milliseconds > 0", v);
        return 0;
    }
    return ms;
}

static void hash_text(hash_reader *hr, const char *field, char *out, size_t size)
{
    const char *v = hash_get(hr->h, field);
    if (!v || !*v || strlen(v) >= size) {
        hash_problem(hr, field, "a non-empty name", v);
        return;
    }
    memcpy(out, v, strlen(v) + 1);
}

static tf_fill hash_fill(hash_reader *hr, const char *krw, const char *global, const char *rate)
{
    tf_fill f;
    f.krw_price = hash_num(hr, krw, true);
    f.global_price = hash_num(hr, global, true);
    f.usdkrw = hash_num(hr, rate, true);
    return f;
}

static void hash_closing(hash_reader *hr, tf_position *p)
{
    p->closed_at = hash_ms(hr, "closed_at");
    p->exit_premium_pct = hash_num(hr, "exit_premium_pct", false);
    p->exit = hash_fill(hr, "exit_krw_price", "exit_global_price", "exit_usdkrw");
    p->realized_pnl_krw = hash_num(hr, "realized_pnl_krw", false);
    p->realized_pnl_pct_points = hash_num(hr, "realized_pnl_pct_points", false);
}

/* A position from its HGETALL reply. TF_OK, TF_ENOTFOUND (empty: no such key), TF_EVALUE. */
static int position_from_hash(const redisReply *h, const char *key, const char *id, tf_position *p,
                              char *err, size_t err_size)
{
    if (!h || h->type != REDIS_REPLY_ARRAY) {
        snprintf(err, err_size, "%s: expected a hash, found %s", key,
                 h && h->type == REDIS_REPLY_ERROR ? h->str : "another type");
        return TF_EVALUE;
    }
    if (h->elements == 0) {
        snprintf(err, err_size, "no position %s (key %s does not exist)", id, key);
        return TF_ENOTFOUND;
    }
    memset(p, 0, sizeof *p);
    hash_reader hr = {h, key, err, err_size, TF_OK};
    const char *stored_id = hash_get(h, "id");
    if (!stored_id || strcmp(stored_id, id) != 0)
        hash_problem(&hr, "id", id, stored_id);
    snprintf(p->id, sizeof p->id, "%s", id);
    hash_text(&hr, "symbol", p->symbol, sizeof p->symbol);
    hash_text(&hr, "krw_exchange", p->krw_exchange, sizeof p->krw_exchange);
    hash_text(&hr, "global_exchange", p->global_exchange, sizeof p->global_exchange);
    const char *dir = hash_get(h, "direction");
    if (tf_direction_parse(dir, &p->direction) != TF_OK)
        hash_problem(&hr, "direction", "long_krw_short_global or short_krw_long_global", dir);
    p->size = hash_num(&hr, "size", true);
    p->entry_premium_pct = hash_num(&hr, "entry_premium_pct", false);
    p->entry = hash_fill(&hr, "entry_krw_price", "entry_global_price", "entry_usdkrw");
    p->opened_at = hash_ms(&hr, "opened_at");
    const char *status = hash_get(h, "status");
    if (status && strcmp(status, "open") == 0)
        p->open = true;
    else if (status && strcmp(status, "closed") == 0)
        hash_closing(&hr, p);
    else
        hash_problem(&hr, "status", "open or closed", status);
    return hr.rc;
}

static int redis_failed(char *err, size_t err_size, const char *what, const redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ERROR)
        snprintf(err, err_size, "%s: Redis answered an error: %s", what, reply->str);
    else if (reply)
        snprintf(err, err_size, "%s: Redis answered an unexpected reply (type %d)", what,
                 reply->type);
    else
        snprintf(err, err_size, "%s: Redis is unreachable or the connection failed", what);
    return TF_EREDIS;
}

/* ---- store ---- */

static int validate_new(tf_position *p, char *err, size_t err_size)
{
    int rc = check_symbol("symbol", p->symbol, p->symbol, err, err_size);
    rc = rc ? rc : check_exchange("krw_exchange", p->krw_exchange, p->krw_exchange, err, err_size);
    rc = rc ? rc
            : check_exchange("global_exchange", p->global_exchange, p->global_exchange, err,
                             err_size);
    if (rc != TF_OK)
        return rc;
    if (p->direction != TF_DIRECTION_LONG_KRW && p->direction != TF_DIRECTION_SHORT_KRW) {
        snprintf(err, err_size,
                 "direction: expected long_krw_short_global or short_krw_long_global, found %d",
                 (int)p->direction);
        return TF_EINVAL;
    }
    if (!positive(p->size)) {
        snprintf(err, err_size, "size: expected a number of base units > 0, found %.17g", p->size);
        return TF_EINVAL;
    }
    return check_fill("entry", &p->entry, err, err_size);
}

static int next_id(tf_redis *r, const char *prefix, char *id, size_t size, char *err,
                   size_t err_size)
{
    char key[POS_KEY_MAX];
    const char *parts[] = {prefix, "positions", "seq"};
    if (!make_key(key, sizeof key, parts, 3)) {
        snprintf(err, err_size, "prefix: expected at most %d characters, found %zu",
                 POS_KEY_MAX - 32, strlen(prefix));
        return TF_EINVAL;
    }
    const char *argv[] = {"INCR", key};
    redisReply *reply = tf_redis_command_argv(r, 2, argv, NULL);
    int rc = TF_OK;
    if (!reply || reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0)
        rc = redis_failed(err, err_size, key, reply);
    else
        snprintf(id, size, "pos-%lld", reply->integer);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Reads one reply per appended command; true when none is missing or an error, and the last
 * one (EXEC) is an array of `n_exec` replies without errors. */
static bool transaction_ok(tf_redis *r, int n_replies, size_t n_exec, char *err, size_t err_size)
{
    bool ok = true;
    for (int i = 0; i < n_replies; i++) {
        redisReply *reply = tf_redis_get_reply(r);
        bool last = i == n_replies - 1;
        if (!reply || reply->type == REDIS_REPLY_ERROR ||
            (last && (reply->type != REDIS_REPLY_ARRAY || reply->elements != n_exec))) {
            if (ok)
                redis_failed(err, err_size, "MULTI/EXEC", reply);
            ok = false;
        }
        for (size_t k = 0; ok && last && k < reply->elements; k++) {
            if (reply->element[k]->type == REDIS_REPLY_ERROR) {
                redis_failed(err, err_size, "MULTI/EXEC", reply->element[k]);
                ok = false;
            }
        }
        if (reply)
            freeReplyObject(reply);
    }
    return ok;
}

int tf_position_open(tf_redis *r, const char *prefix, tf_position *p, char *err, size_t err_size)
{
    int rc = validate_new(p, err, err_size);
    if (rc != TF_OK)
        return rc;
    p->entry_premium_pct =
        tf_premium_pct(p->entry.krw_price, p->entry.global_price, p->entry.usdkrw);
    if (!isfinite(p->entry_premium_pct)) {
        snprintf(err, err_size,
                 "entry: expected prices giving a finite premium, found krw %.17g, "
                 "global %.17g, usdkrw %.17g",
                 p->entry.krw_price, p->entry.global_price, p->entry.usdkrw);
        return TF_EINVAL;
    }
    rc = next_id(r, prefix, p->id, sizeof p->id, err, err_size);
    if (rc != TF_OK)
        return rc;
    if (p->opened_at <= 0)
        p->opened_at = tf_now_ms();
    p->open = true;
    char key[POS_KEY_MAX];
    char set[POS_KEY_MAX];
    position_key(key, sizeof key, prefix, p->id);
    open_set_key(set, sizeof set, prefix);
    pos_fields f = {.argv = {"HSET", key}, .argc = 2};
    fields_str(&f, "id", p->id);
    fields_str(&f, "symbol", p->symbol);
    fields_str(&f, "krw_exchange", p->krw_exchange);
    fields_str(&f, "global_exchange", p->global_exchange);
    fields_str(&f, "direction", tf_direction_name(p->direction));
    fields_num(&f, "size", p->size);
    fields_num(&f, "entry_premium_pct", p->entry_premium_pct);
    fields_num(&f, "entry_krw_price", p->entry.krw_price);
    fields_num(&f, "entry_global_price", p->entry.global_price);
    fields_num(&f, "entry_usdkrw", p->entry.usdkrw);
    fields_int(&f, "opened_at", p->opened_at);
    fields_str(&f, "status", "open");
    const char *multi[] = {"MULTI"};
    const char *sadd[] = {"SADD", set, p->id};
    const char *exec[] = {"EXEC"};
    /* Appends only fail when the connection is gone, which also discards what was queued. */
    if (tf_redis_append_argv(r, 1, multi, NULL) != TF_OK ||
        tf_redis_append_argv(r, f.argc, f.argv, NULL) != TF_OK ||
        tf_redis_append_argv(r, 3, sadd, NULL) != TF_OK ||
        tf_redis_append_argv(r, 1, exec, NULL) != TF_OK)
        return redis_failed(err, err_size, key, NULL);
    return transaction_ok(r, 4, 2, err, err_size) ? TF_OK : TF_EREDIS;
}

static int check_id(const char *id, char *err, size_t err_size)
{
    if (tf_position_id_valid(id))
        return TF_OK;
    snprintf(err, err_size, "ID: expected a position id such as pos-3, found '%s'", id ? id : "");
    return TF_EINVAL;
}

int tf_position_get(tf_redis *r, const char *prefix, const char *id, tf_position *out, char *err,
                    size_t err_size)
{
    int rc = check_id(id, err, err_size);
    if (rc != TF_OK)
        return rc;
    char key[POS_KEY_MAX];
    if (!position_key(key, sizeof key, prefix, id)) {
        snprintf(err, err_size, "prefix: expected at most %d characters, found %zu",
                 POS_KEY_MAX - 32, strlen(prefix));
        return TF_EINVAL;
    }
    const char *argv[] = {"HGETALL", key};
    redisReply *reply = tf_redis_command_argv(r, 2, argv, NULL);
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        rc = redis_failed(err, err_size, key, reply);
    else
        rc = position_from_hash(reply, key, id, out, err, err_size);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

static void close_fields(pos_fields *f, const tf_position *p)
{
    fields_str(f, "status", "closed");
    fields_int(f, "closed_at", p->closed_at);
    fields_num(f, "exit_premium_pct", p->exit_premium_pct);
    fields_num(f, "exit_krw_price", p->exit.krw_price);
    fields_num(f, "exit_global_price", p->exit.global_price);
    fields_num(f, "exit_usdkrw", p->exit.usdkrw);
    fields_num(f, "realized_pnl_krw", p->realized_pnl_krw);
    fields_num(f, "realized_pnl_pct_points", p->realized_pnl_pct_points);
}

static void format_ms(char *buf, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%" PRId64, ms);
}

static int run_close(tf_redis *r, const char *prefix, const tf_position *p, char *err,
                     size_t err_size)
{
    char key[POS_KEY_MAX];
    char set[POS_KEY_MAX];
    position_key(key, sizeof key, prefix, p->id);
    open_set_key(set, sizeof set, prefix);
    pos_fields f = {.argv = {key, set, p->id}, .argc = 3};
    close_fields(&f, p);
    redisReply *reply = tf_redis_eval(r, close_script, 2, f.argc, f.argv, NULL);
    int rc = TF_OK;
    if (!reply || reply->type != REDIS_REPLY_INTEGER)
        rc = redis_failed(err, err_size, key, reply);
    else if (reply->integer == -1) {
        snprintf(err, err_size, "no position %s (key %s does not exist)", p->id, key);
        rc = TF_ENOTFOUND;
    } else if (reply->integer == 0) {
        snprintf(err, err_size,
                 "position %s: expected an open position, found it already "
                 "closed (closed meanwhile by another client)",
                 p->id);
        rc = TF_ECONFLICT;
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

int tf_position_close(tf_redis *r, const char *prefix, const char *id, const tf_fill *exit,
                      int64_t closed_at, tf_position *out, char *err, size_t err_size)
{
    int rc = check_fill("exit", exit, err, err_size);
    rc = rc ? rc : tf_position_get(r, prefix, id, out, err, err_size);
    if (rc != TF_OK)
        return rc;
    if (!out->open) {
        char when[64];
        format_ms(when, sizeof when, out->closed_at);
        snprintf(err, err_size, "position %s: expected an open position, found it closed at %s", id,
                 when);
        return TF_ECONFLICT;
    }
    tf_pnl pnl;
    if (tf_position_pnl(out, exit, &pnl) != TF_OK) {
        snprintf(err, err_size,
                 "position %s: expected a finite PnL, found none for exit krw "
                 "%.17g, global %.17g, usdkrw %.17g",
                 id, exit->krw_price, exit->global_price, exit->usdkrw);
        return TF_EVALUE;
    }
    tf_position closed = *out;
    closed.open = false;
    closed.closed_at = closed_at > 0 ? closed_at : tf_now_ms();
    closed.exit = *exit;
    closed.exit_premium_pct = pnl.premium_pct;
    closed.realized_pnl_krw = pnl.pnl_krw;
    closed.realized_pnl_pct_points = pnl.pnl_pct_points;
    rc = run_close(r, prefix, &closed, err, err_size);
    if (rc == TF_OK)
        *out = closed;
    return rc;
}

/* ---- listing ---- */

/* A growable list of position ids. */
typedef struct id_list {
    char (*ids)[TF_POSITION_ID_MAX];
    size_t n, cap;
} id_list;

static bool ids_push(id_list *l, const char *id)
{
    if (!tf_position_id_valid(id))
        return true; /* not a position id (e.g. a stray set member): nothing to list */
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->ids[i], id) == 0)
            return true; /* SCAN may return a key twice */
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char(*grown)[TF_POSITION_ID_MAX] = realloc(l->ids, cap * sizeof *grown);
        if (!grown)
            return false;
        l->ids = grown;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], TF_POSITION_ID_MAX, "%s", id);
    return true;
}

static int open_ids(tf_redis *r, const char *prefix, id_list *ids, char *err, size_t err_size)
{
    char set[POS_KEY_MAX];
    open_set_key(set, sizeof set, prefix);
    const char *argv[] = {"SMEMBERS", set};
    redisReply *reply = tf_redis_command_argv(r, 2, argv, NULL);
    int rc = TF_OK;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        rc = redis_failed(err, err_size, set, reply);
    for (size_t i = 0; rc == TF_OK && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING && !ids_push(ids, e->str))
            rc = TF_ENOMEM;
    }
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* The prefix as a SCAN MATCH pattern: glob characters escaped. */
static bool glob_escape(char *buf, size_t size, const char *text)
{
    size_t used = 0;
    for (const char *c = text; *c; c++) {
        bool special = strchr("*?[]\\", *c) != NULL;
        if (used + (special ? 2 : 1) >= size)
            return false;
        if (special)
            buf[used++] = '\\';
        buf[used++] = *c;
    }
    buf[used] = '\0';
    return true;
}

/* One SCAN step: adds the position ids of the keys found, sets *cursor to the next one. */
static int scan_step(tf_redis *r, const char *pattern, size_t head, char *cursor, size_t size,
                     id_list *ids, char *err, size_t err_size)
{
    const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", POS_SCAN_COUNT};
    redisReply *reply = tf_redis_command_argv(r, 6, argv, NULL);
    int rc = TF_OK;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        rc = redis_failed(err, err_size, "SCAN", reply);
        goto out;
    }
    snprintf(cursor, size, "%s", reply->element[0]->str);
    const redisReply *keys = reply->element[1];
    for (size_t i = 0; rc == TF_OK && i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        /* <prefix>:position:<id> only; <prefix>:position:<id>:live fails the id check. */
        if (k->type == REDIS_REPLY_STRING && k->len > head && !ids_push(ids, k->str + head))
            rc = TF_ENOMEM;
    }
out:
    if (reply)
        freeReplyObject(reply);
    return rc;
}

static int all_ids(tf_redis *r, const char *prefix, id_list *ids, char *err, size_t err_size)
{
    char escaped[POS_KEY_MAX];
    char pattern[POS_KEY_MAX];
    if (!glob_escape(escaped, sizeof escaped, prefix) ||
        snprintf(pattern, sizeof pattern, "%s:position:pos-*", escaped) >= (int)sizeof pattern) {
        snprintf(err, err_size, "prefix: expected at most %d characters, found %zu",
                 POS_KEY_MAX / 2 - 32, strlen(prefix));
        return TF_EINVAL;
    }
    size_t head = strlen(prefix) + strlen(":position:");
    char cursor[POS_NUM_MAX] = "0";
    int rc = TF_OK;
    do {
        rc = scan_step(r, pattern, head, cursor, sizeof cursor, ids, err, err_size);
    } while (rc == TF_OK && strcmp(cursor, "0") != 0);
    return rc;
}

static int cmp_position(const void *a, const void *b)
{
    unsigned long long x = id_number(((const tf_position *)a)->id);
    unsigned long long y = id_number(((const tf_position *)b)->id);
    return x < y ? -1 : x > y;
}

/* One pipelined HGETALL per id; keeps the positions that parse (and are open unless `all`). */
static int load_hashes(tf_redis *r, const char *prefix, bool all, const id_list *ids,
                       tf_position *out, size_t *n, tf_diag *warnings, char *err, size_t err_size)
{
    char key[POS_KEY_MAX];
    for (size_t i = 0; i < ids->n; i++) {
        position_key(key, sizeof key, prefix, ids->ids[i]);
        const char *argv[] = {"HGETALL", key};
        if (tf_redis_append_argv(r, 2, argv, NULL) != TF_OK)
            return redis_failed(err, err_size, key, NULL);
    }
    int rc = TF_OK;
    *n = 0;
    /* Every reply is read, even after a failure, so none is left for the next command. */
    for (size_t i = 0; i < ids->n; i++) {
        redisReply *reply = tf_redis_get_reply(r);
        position_key(key, sizeof key, prefix, ids->ids[i]);
        char msg[POS_MSG_MAX];
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            if (rc == TF_OK)
                rc = redis_failed(err, err_size, key, reply);
        } else if (rc == TF_OK) {
            int prc = position_from_hash(reply, key, ids->ids[i], &out[*n], msg, sizeof msg);
            if (prc == TF_OK && (all || out[*n].open))
                (*n)++;
            else if (prc != TF_OK && warnings)
                tf_diag_add(warnings, NULL, 0, 0, NULL, "%s (skipped)", msg);
        }
        if (reply)
            freeReplyObject(reply);
    }
    return rc;
}

int tf_position_list(tf_redis *r, const char *prefix, bool all, tf_position **out, size_t *n,
                     tf_diag *warnings, char *err, size_t err_size)
{
    id_list ids = {0};
    tf_position *ps = NULL;
    *out = NULL;
    *n = 0;
    int rc =
        all ? all_ids(r, prefix, &ids, err, err_size) : open_ids(r, prefix, &ids, err, err_size);
    if (rc != TF_OK || ids.n == 0)
        goto out;
    ps = calloc(ids.n, sizeof *ps);
    if (!ps) {
        rc = TF_ENOMEM;
        goto out;
    }
    size_t count = 0;
    rc = load_hashes(r, prefix, all, &ids, ps, &count, warnings, err, err_size);
    if (rc != TF_OK || count == 0)
        goto out;
    qsort(ps, count, sizeof *ps, cmp_position);
    *out = ps;
    *n = count;
    ps = NULL;
out:
    if (rc == TF_ENOMEM)
        snprintf(err, err_size, "out of memory while listing positions");
    free(ps);
    free(ids.ids);
    return rc;
}

int tf_position_live(tf_redis *r, const char *prefix, const tf_position *ps, size_t n,
                     json_t **live)
{
    char key[POS_KEY_MAX];
    for (size_t i = 0; i < n; i++)
        live[i] = NULL;
    /* A closed position has no live value. Its key outlives the close by the sink's TTL (and
     * the positions transform writes it until its next refresh), so reading it would show
     * stale: false PnL of a position that no longer exists. */
    for (size_t i = 0; i < n; i++) {
        if (!ps[i].open)
            continue;
        const char *parts[] = {prefix, "position", ps[i].id, "live"};
        make_key(key, sizeof key, parts, 4);
        const char *argv[] = {"GET", key};
        if (tf_redis_append_argv(r, 2, argv, NULL) != TF_OK)
            return TF_EREDIS;
    }
    int rc = TF_OK;
    for (size_t i = 0; i < n; i++) {
        if (!ps[i].open)
            continue;
        redisReply *reply = tf_redis_get_reply(r);
        if (!reply)
            rc = TF_EREDIS;
        else if (reply->type == REDIS_REPLY_STRING && rc == TF_OK)
            live[i] = json_loadb(reply->str, reply->len, 0, NULL);
        if (reply)
            freeReplyObject(reply);
    }
    if (rc != TF_OK) {
        for (size_t i = 0; i < n; i++) {
            json_decref(live[i]);
            live[i] = NULL;
        }
    }
    return rc;
}

/* ---- the premium the CLI takes prices from ---- */

static int book_number(const json_t *root, const char *key, const char *field, double *out,
                       char *err, size_t err_size)
{
    const json_t *v = json_object_get(root, field);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    if (!positive(d)) {
        snprintf(err, err_size,
                 "%s: %s: expected a number > 0, found %s (the premium needs bid and ask on both "
                 "sides: the sources must publish their order books)",
                 key, field,
                 v ? (json_is_number(v) ? "a number <= 0" : "another type") : "nothing");
        return TF_EVALUE;
    }
    *out = d;
    return TF_OK;
}

static int book_from_json(const json_t *root, const char *key, tf_book *out, char *err,
                          size_t err_size)
{
    const json_t *stale = json_object_get(root, "stale");
    if (!json_is_boolean(stale)) {
        snprintf(err, err_size, "%s: stale: expected false, found %s", key,
                 stale ? "another type" : "nothing");
        return TF_EVALUE;
    }
    if (json_is_true(stale)) {
        const char *reason = json_string_value(json_object_get(root, "stale_reason"));
        snprintf(err, err_size,
                 "%s: expected a fresh premium, found it stale (stale_reason: %s); retry when "
                 "the sources recover, or give the prices explicitly",
                 key, reason ? reason : "unknown");
        return TF_EVALUE;
    }
    /* A suspect premium (outside the transform's band: a broken price upstream) would open or
     * close at an absurd price; absent means a premium written before the flag existed. */
    if (json_is_true(json_object_get(root, "suspect"))) {
        const char *reason = json_string_value(json_object_get(root, "suspect_reason"));
        snprintf(err, err_size,
                 "%s: expected a plausible premium, found it suspect (suspect_reason: %s); retry "
                 "when the sources recover, or give the prices explicitly",
                 key, reason ? reason : "unknown");
        return TF_EVALUE;
    }
    int rc = book_number(root, key, "krw_bid", &out->krw_bid, err, err_size);
    rc = rc ? rc : book_number(root, key, "krw_ask", &out->krw_ask, err, err_size);
    rc = rc ? rc : book_number(root, key, "global_bid", &out->global_bid, err, err_size);
    rc = rc ? rc : book_number(root, key, "global_ask", &out->global_ask, err, err_size);
    rc = rc ? rc : book_number(root, key, "usdkrw", &out->usdkrw, err, err_size);
    return rc;
}

int tf_position_book(tf_redis *r, const char *prefix, const char *krw_exchange,
                     const char *global_exchange, const char *symbol, tf_book *out, char *err,
                     size_t err_size)
{
    char key[POS_KEY_MAX];
    const char *parts[] = {prefix, "premium", krw_exchange, global_exchange, symbol};
    if (!make_key(key, sizeof key, parts, 5)) {
        snprintf(err, err_size, "premium key: expected at most %d characters", POS_KEY_MAX - 1);
        return TF_EINVAL;
    }
    const char *argv[] = {"GET", key};
    redisReply *reply = tf_redis_command_argv(r, 2, argv, NULL);
    json_t *root = NULL;
    int rc = TF_OK;
    if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        rc = redis_failed(err, err_size, key, reply);
        goto out;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        snprintf(err, err_size,
                 "expected a premium at %s, found no such key (absent or expired): is the "
                 "pipeline with the premium transform and the redis sink running? Otherwise "
                 "give --krw-price, --global-price and --usdkrw",
                 key);
        rc = TF_ENOTFOUND;
        goto out;
    }
    json_error_t je;
    root = json_loadb(reply->str, reply->len, 0, &je);
    if (!json_is_object(root)) {
        snprintf(err, err_size, "%s: expected a JSON object, found %s", key,
                 root ? "another JSON type" : je.text);
        rc = TF_EVALUE;
        goto out;
    }
    rc = book_from_json(root, key, out, err, err_size);
out:
    json_decref(root);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

json_t *tf_position_to_json(const tf_position *p)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:I, s:s}", "id", p->id,
                  "symbol", p->symbol, "krw_exchange", p->krw_exchange, "global_exchange",
                  p->global_exchange, "direction", tf_direction_name(p->direction), "size", p->size,
                  "entry_premium_pct", p->entry_premium_pct, "entry_krw_price", p->entry.krw_price,
                  "entry_global_price", p->entry.global_price, "entry_usdkrw", p->entry.usdkrw,
                  "opened_at", (json_int_t)p->opened_at, "status", p->open ? "open" : "closed");
    if (!o || p->open)
        return o;
    json_t *c =
        json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "closed_at", (json_int_t)p->closed_at,
                  "exit_premium_pct", p->exit_premium_pct, "exit_krw_price", p->exit.krw_price,
                  "exit_global_price", p->exit.global_price, "exit_usdkrw", p->exit.usdkrw,
                  "realized_pnl_krw", p->realized_pnl_krw, "realized_pnl_pct_points",
                  p->realized_pnl_pct_points);
    if (!c || json_object_update(o, c) != 0) {
        json_decref(c);
        json_decref(o);
        return NULL;
    }
    json_decref(c);
    return o;
}

/* ---- JSON requests (the HTTP API through the host table) ---- */

/* Every key of `request` is one of `allowed` (a misspelt "krw_prics" must not be ignored). */
static int check_keys(const json_t *request, const char *const *allowed, char *err, size_t err_size)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)request, key, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known)
            continue;
        size_t used = (size_t)snprintf(err, err_size, "%s: expected one of", key);
        for (size_t i = 0; allowed[i] && used < err_size; i++)
            used +=
                (size_t)snprintf(err + used, err_size - used, "%s %s", i ? "," : "", allowed[i]);
        if (used < err_size)
            snprintf(err + used, err_size - used, ", found an unknown field");
        return TF_EINVAL;
    }
    return TF_OK;
}

/* A string field; `fallback` when absent (NULL: required). */
static int json_text(const json_t *request, const char *field, const char *fallback,
                     const char **out, char *err, size_t err_size)
{
    const json_t *v = json_object_get(request, field);
    if (!v && fallback) {
        *out = fallback;
        return TF_OK;
    }
    if (!json_is_string(v)) {
        snprintf(err, err_size, "%s: expected a string, found %s", field,
                 v ? tf_json_type_name(v) : "nothing");
        return TF_EINVAL;
    }
    *out = json_string_value(v);
    return TF_OK;
}

/* A number > 0. *given tells whether the field was there. */
static int json_positive(const json_t *request, const char *field, double *out, bool *given,
                         char *err, size_t err_size)
{
    const json_t *v = json_object_get(request, field);
    *given = v != NULL;
    if (!v)
        return TF_OK;
    double d = json_is_number(v) ? json_number_value(v) : 0;
    if (!positive(d)) {
        if (json_is_number(v))
            snprintf(err, err_size, "%s: expected a number > 0, found %.17g", field, d);
        else
            snprintf(err, err_size, "%s: expected a number > 0, found %s", field,
                     tf_json_type_name(v));
        return TF_EINVAL;
    }
    *out = d;
    return TF_OK;
}

/* krw_price, global_price and usdkrw: all three (*given) or none. */
static int json_fill(const json_t *request, tf_fill *f, bool *given, char *err, size_t err_size)
{
    const char *names[] = {"krw_price", "global_price", "usdkrw"};
    double *slots[] = {&f->krw_price, &f->global_price, &f->usdkrw};
    size_t n = 0;
    const char *missing = NULL;
    for (size_t i = 0; i < 3; i++) {
        bool here = false;
        int rc = json_positive(request, names[i], slots[i], &here, err, err_size);
        if (rc != TF_OK)
            return rc;
        n += here;
        if (!here && !missing)
            missing = names[i];
    }
    *given = n == 3;
    if (n == 0 || n == 3)
        return TF_OK;
    snprintf(err, err_size,
             "%s: expected krw_price, global_price and usdkrw together (or none), found no %s",
             missing, missing);
    return TF_EINVAL;
}

/* The executable book of p's pair; a missing premium is "no fresh data" here (TF_EVALUE), not
 * a missing position. */
static int json_book(tf_redis *r, const char *prefix, const tf_position *p, tf_book *b, char *err,
                     size_t err_size)
{
    int rc = tf_position_book(r, prefix, p->krw_exchange, p->global_exchange, p->symbol, b, err,
                              err_size);
    return rc == TF_ENOTFOUND ? TF_EVALUE : rc;
}

static int open_request(const json_t *request, tf_position *p, tf_fill *f, bool *given, char *err,
                        size_t err_size)
{
    static const char *const allowed[] = {"symbol",       "direction",       "size",
                                          "krw_exchange", "global_exchange", "krw_price",
                                          "global_price", "usdkrw",          NULL};
    if (!json_is_object(request)) {
        snprintf(err, err_size, "body: expected a JSON object, found %s",
                 request ? tf_json_type_name(request) : "nothing");
        return TF_EINVAL;
    }
    const char *symbol = NULL;
    const char *direction = NULL;
    const char *krw = NULL;
    const char *global = NULL;
    bool sized = false;
    int rc = check_keys(request, allowed, err, err_size);
    rc = rc ? rc : json_text(request, "symbol", NULL, &symbol, err, err_size);
    rc = rc ? rc : json_text(request, "direction", NULL, &direction, err, err_size);
    rc = rc ? rc : json_text(request, "krw_exchange", "bithumb", &krw, err, err_size);
    rc = rc ? rc : json_text(request, "global_exchange", "binance", &global, err, err_size);
    rc = rc ? rc : json_positive(request, "size", &p->size, &sized, err, err_size);
    if (rc == TF_OK && !sized) {
        snprintf(err, err_size, "size: expected a number of base units > 0, found nothing");
        rc = TF_EINVAL;
    }
    rc = rc ? rc : check_symbol("symbol", symbol, p->symbol, err, err_size);
    rc = rc ? rc : check_exchange("krw_exchange", krw, p->krw_exchange, err, err_size);
    rc = rc ? rc : check_exchange("global_exchange", global, p->global_exchange, err, err_size);
    if (rc == TF_OK && tf_direction_parse(direction, &p->direction) != TF_OK) {
        snprintf(err, err_size,
                 "direction: expected long_krw_short_global or short_krw_long_global, found '%s'",
                 direction);
        rc = TF_EINVAL;
    }
    return rc ? rc : json_fill(request, f, given, err, err_size);
}

int tf_position_open_json(tf_redis *r, const char *prefix, const json_t *request, json_t **out,
                          char *err, size_t err_size)
{
    tf_position p = {0};
    tf_fill f = {0};
    bool given = false;
    *out = NULL;
    int rc = open_request(request, &p, &f, &given, err, err_size);
    if (rc == TF_OK && !given) {
        tf_book b;
        rc = json_book(r, prefix, &p, &b, err, err_size);
        f = tf_position_entry_fill(p.direction, &b);
    }
    if (rc != TF_OK)
        return rc;
    p.entry = f;
    rc = tf_position_open(r, prefix, &p, err, err_size);
    if (rc != TF_OK)
        return rc;
    *out = tf_position_to_json(&p);
    return *out ? TF_OK : TF_ENOMEM;
}

static int close_request(const json_t *request, tf_fill *f, bool *given, char *err, size_t err_size)
{
    static const char *const allowed[] = {"krw_price", "global_price", "usdkrw", NULL};
    *given = false;
    if (!request)
        return TF_OK;
    if (!json_is_object(request)) {
        snprintf(err, err_size, "body: expected a JSON object or nothing, found %s",
                 tf_json_type_name(request));
        return TF_EINVAL;
    }
    int rc = check_keys(request, allowed, err, err_size);
    return rc ? rc : json_fill(request, f, given, err, err_size);
}

int tf_position_close_json(tf_redis *r, const char *prefix, const char *id, const json_t *request,
                           json_t **out, char *err, size_t err_size)
{
    *out = NULL;
    if (!tf_position_id_valid(id)) {
        snprintf(err, err_size, "no position %s (ids look like pos-3)", id ? id : "");
        return TF_ENOTFOUND;
    }
    tf_fill f = {0};
    bool given = false;
    tf_position p;
    int rc = close_request(request, &f, &given, err, err_size);
    rc = rc ? rc : tf_position_get(r, prefix, id, &p, err, err_size);
    if (rc == TF_OK && !p.open) {
        char when[64];
        format_ms(when, sizeof when, p.closed_at);
        snprintf(err, err_size, "position %s: expected an open position, found it closed at %s", id,
                 when);
        rc = TF_ECONFLICT;
    }
    if (rc == TF_OK && !given) {
        tf_book b;
        rc = json_book(r, prefix, &p, &b, err, err_size);
        f = tf_position_exit_fill(p.direction, &b);
    }
    rc = rc ? rc : tf_position_close(r, prefix, id, &f, 0, &p, err, err_size);
    if (rc != TF_OK)
        return rc;
    *out = tf_position_to_json(&p);
    return *out ? TF_OK : TF_ENOMEM;
}

/* p as JSON with its live value under "live" when there is one. */
static json_t *with_live(const tf_position *p, json_t *live)
{
    json_t *o = tf_position_to_json(p);
    if (o && live)
        json_object_set(o, "live", live);
    return o;
}

int tf_position_get_json(tf_redis *r, const char *prefix, const char *id, json_t **out)
{
    char err[POS_MSG_MAX];
    tf_position p;
    *out = NULL;
    int rc = tf_position_get(r, prefix, id, &p, err, sizeof err);
    if (rc == TF_EINVAL)
        return TF_ENOTFOUND; /* not an id: no such position */
    if (rc != TF_OK)
        return rc;
    json_t *live = NULL;
    tf_position_live(r, prefix, &p, 1, &live); /* without it the position is still right */
    *out = with_live(&p, live);
    json_decref(live);
    return *out ? TF_OK : TF_ENOMEM;
}

int tf_position_list_json(tf_redis *r, const char *prefix, bool all, json_t **out)
{
    char err[POS_MSG_MAX];
    tf_position *ps = NULL;
    size_t n = 0;
    json_t **live = NULL;
    *out = NULL;
    int rc = tf_position_list(r, prefix, all, &ps, &n, NULL, err, sizeof err);
    if (rc != TF_OK)
        return rc;
    json_t *arr = json_array();
    live = n ? calloc(n, sizeof *live) : NULL;
    if (!arr || (n && !live)) {
        rc = TF_ENOMEM;
        goto out;
    }
    tf_position_live(r, prefix, ps, n, live);
    for (size_t i = 0; i < n; i++) {
        json_t *o = with_live(&ps[i], live[i]);
        if (!o || json_array_append_new(arr, o) != 0) {
            rc = TF_ENOMEM;
            goto out;
        }
    }
    *out = arr;
    arr = NULL;
out:
    for (size_t i = 0; live && i < n; i++)
        json_decref(live[i]);
    free(live);
    free(ps);
    json_decref(arr);
    return rc;
}

static const char *instance_prefix(tf_instance *self)
{
    const char *p = tf_host_table()->redis_prefix(self);
    return p && *p ? p : "tf";
}

int tf_positions_host_open(tf_instance *self, tf_redis *r, const json_t *request, json_t **out,
                           char *err, size_t err_size)
{
    return tf_position_open_json(r, instance_prefix(self), request, out, err, err_size);
}

int tf_positions_host_close(tf_instance *self, tf_redis *r, const char *id, const json_t *request,
                            json_t **out, char *err, size_t err_size)
{
    return tf_position_close_json(r, instance_prefix(self), id, request, out, err, err_size);
}

int tf_positions_host_get(tf_instance *self, tf_redis *r, const char *id, json_t **out)
{
    return tf_position_get_json(r, instance_prefix(self), id, out);
}

int tf_positions_host_list(tf_instance *self, tf_redis *r, bool all, json_t **out)
{
    return tf_position_list_json(r, instance_prefix(self), all, out);
}

/* ---- the command line ---- */

typedef enum pos_cmd { CMD_OPEN = 1, CMD_CLOSE = 2, CMD_LIST = 4 } pos_cmd;

typedef enum pos_opt {
    OPT_CONFIG,
    OPT_SYMBOL,
    OPT_DIRECTION,
    OPT_SIZE,
    OPT_KRW_EXCHANGE,
    OPT_GLOBAL_EXCHANGE,
    OPT_KRW_PRICE,
    OPT_GLOBAL_PRICE,
    OPT_USDKRW,
    OPT_ALL,
    OPT_JSON,
    OPT_HELP,
    OPT_COUNT
} pos_opt;

typedef struct pos_opt_def {
    const char *name;
    const char *alias;
    const char *value; /* what the value should be; NULL for a flag */
    unsigned cmds;     /* pos_cmd bits that accept it */
} pos_opt_def;

static const pos_opt_def opt_defs[OPT_COUNT] = {
    [OPT_CONFIG] = {"--config", "-c", "a YAML file or directory with a redis: section",
                    CMD_OPEN | CMD_CLOSE | CMD_LIST},
    [OPT_SYMBOL] = {"--symbol", NULL, "a coin code such as BTC", CMD_OPEN},
    [OPT_DIRECTION] = {"--direction", NULL, "long_krw_short_global or short_krw_long_global",
                       CMD_OPEN},
    [OPT_SIZE] = {"--size", NULL, "a number of base units > 0 such as 0.1", CMD_OPEN},
    [OPT_KRW_EXCHANGE] = {"--krw-exchange", NULL, "an exchange name such as bithumb", CMD_OPEN},
    [OPT_GLOBAL_EXCHANGE] = {"--global-exchange", NULL, "an exchange name such as binance",
                             CMD_OPEN},
    [OPT_KRW_PRICE] = {"--krw-price", NULL, "a KRW price > 0 such as 136850000",
                       CMD_OPEN | CMD_CLOSE},
    [OPT_GLOBAL_PRICE] = {"--global-price", NULL, "a USDT price > 0 such as 95012.3",
                          CMD_OPEN | CMD_CLOSE},
    [OPT_USDKRW] = {"--usdkrw", NULL, "a USD/KRW rate > 0 such as 1402.5", CMD_OPEN | CMD_CLOSE},
    [OPT_ALL] = {"--all", NULL, NULL, CMD_LIST},
    [OPT_JSON] = {"--json", NULL, NULL, CMD_OPEN | CMD_CLOSE | CMD_LIST},
    [OPT_HELP] = {"--help", "-h", NULL, CMD_OPEN | CMD_CLOSE | CMD_LIST},
};

typedef struct pos_cli {
    pos_cmd cmd;
    const char *cmd_name;
    const char *value[OPT_COUNT]; /* borrowed from argv; flags hold "" when given */
    const char *configs[POS_CONFIGS_MAX];
    size_t n_configs;
    const char *id; /* close */
} pos_cli;

/* The state of one run: the configuration and its Redis connection. */
typedef struct pos_run {
    tf_config *cfg;
    tf_redis *redis;
    const char *prefix; /* borrowed from cfg */
} pos_run;

static void cli_usage(FILE *out)
{
    fprintf(out,
            "usage: tickflow positions open -c CONFIG --symbol SYM --direction DIR --size N\n"
            "                               [--krw-exchange X] [--global-exchange X]\n"
            "                               [--krw-price P --global-price P --usdkrw R] [--json]\n"
            "       tickflow positions close -c CONFIG ID [--krw-price P --global-price P "
            "--usdkrw R] [--json]\n"
            "       tickflow positions list -c CONFIG [--all] [--json]\n"
            "\n"
            "Arbitrage positions in the Redis of CONFIG's redis: section (docs/positions.md).\n"
            "DIR is long_krw_short_global (bought KRW spot, sold the global perp) or\n"
            "short_krw_long_global. Exchanges default to bithumb and binance. Without prices,\n"
            "open and close take the executable prices of the current premium in Redis\n"
            "(<prefix>:premium:<krw>:<global>:<symbol>) and refuse a missing or stale one.\n"
            "Exit codes: 0 success, 1 runtime failure, 2 invalid arguments or configuration.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see tickflow positions --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static void accepted_options(unsigned cmd, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < OPT_COUNT; i++) {
        if (!(opt_defs[i].cmds & cmd))
            continue;
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", opt_defs[i].name);
        if (w < 0 || (size_t)w >= size - used)
            return;
        used += (size_t)w;
    }
}

/* The option named by `arg` ("--size", "-c", "--size=0.1"); -1 when unknown. Sets *inline_value
 * to the text after '=' when there is one. */
static int find_option(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (int i = 0; i < OPT_COUNT; i++) {
        const pos_opt_def *d = &opt_defs[i];
        bool named = strlen(d->name) == len && strncmp(arg, d->name, len) == 0;
        bool aliased = d->alias && strlen(d->alias) == len && strncmp(arg, d->alias, len) == 0;
        if (named || aliased) {
            *inline_value = eq ? eq + 1 : NULL;
            return i;
        }
    }
    return -1;
}

static int take_option(pos_cli *c, int opt, const char *value)
{
    const pos_opt_def *d = &opt_defs[opt];
    if (opt == OPT_CONFIG) {
        if (c->n_configs == POS_CONFIGS_MAX)
            return usage_error("%s: expected at most %d configuration paths", d->name,
                               POS_CONFIGS_MAX);
        c->configs[c->n_configs++] = value;
        c->value[opt] = value;
        return 0;
    }
    if (c->value[opt])
        return usage_error("%s: expected once, found it given twice", d->name);
    c->value[opt] = value;
    return 0;
}

static int parse_args(pos_cli *c, int argc, const char *const *argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (c->cmd != CMD_CLOSE)
                return usage_error("positions %s: unexpected argument '%s' (%s takes options only)",
                                   c->cmd_name, a, c->cmd_name);
            if (c->id)
                return usage_error("positions close: expected one position ID, found '%s' after "
                                   "'%s'",
                                   a, c->id);
            c->id = a;
            continue;
        }
        const char *inline_value = NULL;
        int opt = find_option(a, &inline_value);
        if (opt < 0 || !(opt_defs[opt].cmds & c->cmd)) {
            char list[POS_MSG_MAX];
            accepted_options(c->cmd, list, sizeof list);
            return usage_error("positions %s: unknown option '%s' (expected one of %s)",
                               c->cmd_name, a, list);
        }
        const pos_opt_def *d = &opt_defs[opt];
        const char *value = "";
        if (d->value && inline_value) {
            value = inline_value;
        } else if (d->value) {
            if (i + 1 >= argc)
                return usage_error("%s: expected %s after it, found the end of the arguments", a,
                                   d->value);
            value = argv[++i];
        } else if (inline_value) {
            return usage_error("%s: expected no value, found '%s'", d->name, inline_value);
        }
        if (take_option(c, opt, value) != 0)
            return EXIT_USAGE;
    }
    return 0;
}

static int parse_cli(pos_cli *c, int argc, const char *const *argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;
    if (sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        c->value[OPT_HELP] = "";
        return 0;
    }
    if (!sub)
        return usage_error("positions: expected a subcommand open, close or list, found nothing");
    c->cmd_name = sub;
    if (strcmp(sub, "open") == 0)
        c->cmd = CMD_OPEN;
    else if (strcmp(sub, "close") == 0)
        c->cmd = CMD_CLOSE;
    else if (strcmp(sub, "list") == 0)
        c->cmd = CMD_LIST;
    else
        return usage_error("positions: expected a subcommand open, close or list, found '%s'", sub);
    return parse_args(c, argc, argv);
}

static int require(const pos_cli *c, pos_opt opt)
{
    if (c->value[opt])
        return 0;
    return usage_error("positions %s: %s: expected %s, found no %s", c->cmd_name,
                       opt_defs[opt].name, opt_defs[opt].value, opt_defs[opt].name);
}

static int cli_number(const pos_cli *c, pos_opt opt, double *out)
{
    double v = 0;
    if (parse_double(c->value[opt], &v) && v > 0) {
        *out = v;
        return 0;
    }
    return usage_error("%s: expected %s, found '%s'", opt_defs[opt].name, opt_defs[opt].value,
                       c->value[opt]);
}

/* --krw-price, --global-price and --usdkrw: all three or none. 0 with *given set, or exit 2. */
static int cli_fill(const pos_cli *c, tf_fill *f, bool *given)
{
    const pos_opt opts[] = {OPT_KRW_PRICE, OPT_GLOBAL_PRICE, OPT_USDKRW};
    size_t n = 0;
    for (size_t i = 0; i < 3; i++)
        n += c->value[opts[i]] != NULL;
    *given = n == 3;
    if (n == 0)
        return 0;
    if (n != 3) {
        const char *missing = !c->value[OPT_KRW_PRICE]      ? "--krw-price"
                              : !c->value[OPT_GLOBAL_PRICE] ? "--global-price"
                                                            : "--usdkrw";
        return usage_error("positions %s: expected --krw-price, --global-price and --usdkrw "
                           "together, found no %s",
                           c->cmd_name, missing);
    }
    if (cli_number(c, OPT_KRW_PRICE, &f->krw_price) ||
        cli_number(c, OPT_GLOBAL_PRICE, &f->global_price) || cli_number(c, OPT_USDKRW, &f->usdkrw))
        return EXIT_USAGE;
    return 0;
}

static int load_config(const pos_cli *c, const tf_registry *reg, pos_run *run)
{
    if (c->n_configs == 0)
        return usage_error("positions %s: -c: expected %s, found no -c", c->cmd_name,
                           opt_defs[OPT_CONFIG].value);
    tf_diag *diag = tf_diag_create();
    if (!diag) {
        fprintf(stderr, "error: out of memory\n");
        return EXIT_RUNTIME;
    }
    int rc = tf_config_load(c->configs, c->n_configs, reg, diag, &run->cfg);
    if (rc != TF_OK) {
        tf_diag_print(diag, stderr);
        fprintf(stderr, "%zu error(s) in the configuration\n", tf_diag_count(diag));
        tf_diag_destroy(diag);
        return EXIT_USAGE;
    }
    tf_diag_destroy(diag);
    if (!run->cfg->redis.configured) {
        fprintf(stderr,
                "error: %s: expected a redis: section (url, prefix) holding the positions, "
                "found none\n",
                c->configs[0]);
        return EXIT_USAGE;
    }
    run->prefix = run->cfg->redis.prefix ? run->cfg->redis.prefix : "tf";
    run->redis = tf_redis_create(&run->cfg->redis, "positions");
    if (!run->redis) {
        fprintf(stderr, "error: out of memory\n");
        return EXIT_RUNTIME;
    }
    return 0;
}

/* Exit code of a store failure: Redis or a missing / closed position is a runtime failure. */
static int store_failed(const pos_run *run, int rc, const char *err)
{
    if (rc == TF_EREDIS)
        fprintf(stderr, "error: Redis at %s: %s\n", run->cfg->redis.url ? run->cfg->redis.url : "",
                err);
    else
        fprintf(stderr, "error: %s\n", err);
    return EXIT_RUNTIME;
}

static void print_json(json_t *j)
{
    if (!j) {
        fprintf(stderr, "error: out of memory\n");
        return;
    }
    /* 15 significant digits: jansson's default of 17 prints 95012.3 as 95012.300000000003.
     * The exact values are in Redis. */
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
    json_decref(j);
}

/* Fills *f from the premium in Redis when no prices were given. 0 or an exit code. */
static int resolve_fill(const pos_run *run, const tf_position *p, bool entry, bool given,
                        tf_fill *f)
{
    if (given)
        return 0;
    char err[POS_MSG_MAX];
    tf_book book;
    int rc = tf_position_book(run->redis, run->prefix, p->krw_exchange, p->global_exchange,
                              p->symbol, &book, err, sizeof err);
    if (rc != TF_OK)
        return store_failed(run, rc, err);
    *f = entry ? tf_position_entry_fill(p->direction, &book)
               : tf_position_exit_fill(p->direction, &book);
    return 0;
}

static int open_args(const pos_cli *c, tf_position *p, tf_fill *f, bool *given)
{
    int rc = require(c, OPT_SYMBOL);
    rc = rc ? rc : require(c, OPT_DIRECTION);
    rc = rc ? rc : require(c, OPT_SIZE);
    if (rc)
        return rc;
    char err[POS_MSG_MAX];
    const char *krw = c->value[OPT_KRW_EXCHANGE] ? c->value[OPT_KRW_EXCHANGE] : "bithumb";
    const char *global = c->value[OPT_GLOBAL_EXCHANGE] ? c->value[OPT_GLOBAL_EXCHANGE] : "binance";
    if (check_symbol("--symbol", c->value[OPT_SYMBOL], p->symbol, err, sizeof err) ||
        check_exchange("--krw-exchange", krw, p->krw_exchange, err, sizeof err) ||
        check_exchange("--global-exchange", global, p->global_exchange, err, sizeof err))
        return usage_error("%s", err);
    if (tf_direction_parse(c->value[OPT_DIRECTION], &p->direction) != TF_OK)
        return usage_error("--direction: expected %s, found '%s'", opt_defs[OPT_DIRECTION].value,
                           c->value[OPT_DIRECTION]);
    if (cli_number(c, OPT_SIZE, &p->size))
        return EXIT_USAGE;
    return cli_fill(c, f, given);
}

static int cmd_open(const pos_cli *c, const tf_registry *reg, pos_run *run)
{
    tf_position p = {0};
    tf_fill f = {0};
    bool given = false;
    int rc = open_args(c, &p, &f, &given);
    rc = rc ? rc : load_config(c, reg, run);
    rc = rc ? rc : resolve_fill(run, &p, true, given, &f);
    if (rc)
        return rc;
    p.entry = f;
    char err[POS_MSG_MAX];
    int src = tf_position_open(run->redis, run->prefix, &p, err, sizeof err);
    if (src != TF_OK)
        return src == TF_EINVAL ? usage_error("%s", err) : store_failed(run, src, err);
    if (c->value[OPT_JSON]) {
        print_json(tf_position_to_json(&p));
        return 0;
    }
    printf("opened %s: %s %.10g %s on %s/%s at krw %.10g, global %.10g, usdkrw %.10g "
           "(premium %.4f%%)\n",
           p.id, tf_direction_name(p.direction), p.size, p.symbol, p.krw_exchange,
           p.global_exchange, p.entry.krw_price, p.entry.global_price, p.entry.usdkrw,
           p.entry_premium_pct);
    return 0;
}

static int cmd_close(const pos_cli *c, const tf_registry *reg, pos_run *run)
{
    if (!c->id)
        return usage_error("positions close: expected a position ID such as pos-3, found nothing");
    if (!tf_position_id_valid(c->id))
        return usage_error("positions close: ID: expected a position id such as pos-3, found "
                           "'%s'",
                           c->id);
    tf_fill f = {0};
    bool given = false;
    int rc = cli_fill(c, &f, &given);
    rc = rc ? rc : load_config(c, reg, run);
    if (rc)
        return rc;
    char err[POS_MSG_MAX];
    tf_position p;
    int src = tf_position_get(run->redis, run->prefix, c->id, &p, err, sizeof err);
    if (src != TF_OK)
        return store_failed(run, src, err);
    rc = resolve_fill(run, &p, false, given, &f);
    if (rc)
        return rc;
    src = tf_position_close(run->redis, run->prefix, c->id, &f, 0, &p, err, sizeof err);
    if (src != TF_OK)
        return store_failed(run, src, err);
    if (c->value[OPT_JSON]) {
        print_json(tf_position_to_json(&p));
        return 0;
    }
    printf("closed %s: %s %.10g %s on %s/%s at krw %.10g, global %.10g, usdkrw %.10g "
           "(premium %.4f%%, entry %.4f%%): realized %+.4f pp, %+.0f KRW\n",
           p.id, tf_direction_name(p.direction), p.size, p.symbol, p.krw_exchange,
           p.global_exchange, p.exit.krw_price, p.exit.global_price, p.exit.usdkrw,
           p.exit_premium_pct, p.entry_premium_pct, p.realized_pnl_pct_points, p.realized_pnl_krw);
    return 0;
}

static bool live_number(const json_t *live, const char *field, double *out)
{
    const json_t *v = json_object_get(live, field);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* One table row; `live` may be NULL. Sets *stale_seen when the row's live value is stale. */
static void print_row(const tf_position *p, const json_t *live, bool *stale_seen)
{
    char pair[2 * TF_POSITION_EXCHANGE_MAX];
    char opened[64];
    char now[32] = "-";
    char points[32] = "-";
    char krw[40] = "-";
    snprintf(pair, sizeof pair, "%s/%s", p->krw_exchange, p->global_exchange);
    format_ms(opened, sizeof opened, p->opened_at);
    double cur = 0;
    double pp = 0;
    double pnl = 0;
    if (!p->open) {
        snprintf(now, sizeof now, "%.4f", p->exit_premium_pct);
        snprintf(points, sizeof points, "%+.4f", p->realized_pnl_pct_points);
        snprintf(krw, sizeof krw, "%+.0f", p->realized_pnl_krw);
    } else if (live && live_number(live, "current_premium_pct", &cur) &&
               live_number(live, "pnl_pct_points", &pp) && live_number(live, "pnl_krw", &pnl)) {
        bool stale = json_is_true(json_object_get(live, "stale"));
        *stale_seen = *stale_seen || stale;
        snprintf(now, sizeof now, "%.4f%s", cur, stale ? "*" : "");
        snprintf(points, sizeof points, "%+.4f", pp);
        snprintf(krw, sizeof krw, "%+.0f", pnl);
    }
    printf("%-8s %-6s %-8s %-20s %-22s %12.10g %10.4f %10s %10s %14s  %s\n", p->id,
           p->open ? "open" : "closed", p->symbol, pair, tf_direction_name(p->direction), p->size,
           p->entry_premium_pct, now, points, krw, opened);
}

static void print_table(const tf_position *ps, size_t n, json_t *const *live, bool all)
{
    if (n == 0) {
        printf("no %spositions\n", all ? "" : "open ");
        return;
    }
    printf("%-8s %-6s %-8s %-20s %-22s %12s %10s %10s %10s %14s  %s\n", "ID", "STATUS", "SYMBOL",
           "KRW/GLOBAL", "DIRECTION", "SIZE", "ENTRY%", "NOW%", "PNL_PP", "PNL_KRW", "OPENED");
    bool stale_seen = false;
    for (size_t i = 0; i < n; i++)
        print_row(&ps[i], live ? live[i] : NULL, &stale_seen);
    printf("NOW%%/PNL: open positions: live (exit-side prices, last 5 s; '-' = no live value); "
           "closed: at exit\n");
    if (stale_seen)
        printf("* stale premium: an input is late (see the premium's stale_reason)\n");
}

static json_t *list_json(const tf_position *ps, size_t n, json_t *const *live)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = tf_position_to_json(&ps[i]);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
        json_t *l = live && live[i] ? json_incref(live[i]) : json_null();
        json_object_set_new(o, "live", l);
    }
    return arr;
}

static int cmd_list(const pos_cli *c, const tf_registry *reg, pos_run *run)
{
    int rc = load_config(c, reg, run);
    if (rc)
        return rc;
    bool all = c->value[OPT_ALL] != NULL;
    tf_position *ps = NULL;
    size_t n = 0;
    json_t **live = NULL;
    char err[POS_MSG_MAX];
    tf_diag *warnings = tf_diag_create();
    int src = tf_position_list(run->redis, run->prefix, all, &ps, &n, warnings, err, sizeof err);
    if (src != TF_OK) {
        rc = store_failed(run, src, err);
        goto out;
    }
    for (size_t i = 0; warnings && i < tf_diag_count(warnings); i++)
        fprintf(stderr, "warning: %s\n", tf_diag_message(warnings, i));
    live = n ? calloc(n, sizeof *live) : NULL;
    if (live && tf_position_live(run->redis, run->prefix, ps, n, live) != TF_OK)
        fprintf(stderr, "warning: live values unavailable: Redis failed while reading them\n");
    if (c->value[OPT_JSON])
        print_json(list_json(ps, n, live));
    else
        print_table(ps, n, live, all);
out:
    for (size_t i = 0; live && i < n; i++)
        json_decref(live[i]);
    free(live);
    free(ps);
    tf_diag_destroy(warnings);
    return rc;
}

int tf_positions_cli(const tf_registry *reg, int argc, const char *const *argv)
{
    pos_cli c = {0};
    pos_run run = {0};
    int rc = parse_cli(&c, argc, argv);
    if (rc)
        return rc;
    if (c.value[OPT_HELP]) {
        cli_usage(stdout);
        return 0;
    }
    /* A command's output is its result: connection chatter stays out unless it is a problem. */
    if (tf_log_get_level() > TF_LOG_WARN)
        tf_log_set_level(TF_LOG_WARN);
    if (c.cmd == CMD_OPEN)
        rc = cmd_open(&c, reg, &run);
    else if (c.cmd == CMD_CLOSE)
        rc = cmd_close(&c, reg, &run);
    else
        rc = cmd_list(&c, reg, &run);
    tf_redis_destroy(run.redis);
    tf_config_destroy(run.cfg);
    return rc;
}
