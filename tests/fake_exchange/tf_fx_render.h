/* tf_fx_render: builds each endpoint's response body from a market snapshot, in the layout of
 * the fixtures in tests/fixtures/exchanges/ (same keys, same order, same JSON types). Knows
 * nothing about HTTP transport: the server passes the query values in tf_fx_args. */
#ifndef TF_FX_RENDER_H
#define TF_FX_RENDER_H

#include <jansson.h>

#include "tf_fx_endpoint.h"
#include "tf_fx_model.h"

/* Request values an endpoint may look at; NULL when absent. Borrowed for the call only. */
struct tf_fx_args {
    const char *tail; /* path after the route prefix: "BTC_KRW", "USD" */
    const char *symbol, *markets, *inst_id, *inst_type, *category, *codes;
    const char *access_key, *source, *currencies, *authkey, *searchdate, *data, *count;
};

/* A response before it is serialised. json and raw are owned by the reply; both NULL means an
 * empty body. */
struct tf_fx_reply {
    unsigned status;
    json_t *json;
    char *raw;
    const char *content_type;
    int ok_layout;   /* json is the endpoint's normal success layout */
    int retry_after; /* > 0: send Retry-After: <seconds> */
};

void tf_fx_reply_clear(struct tf_fx_reply *r);

/* Normal handling of one request. Returns 0, or -1 on allocation failure (out is clear). */
int tf_fx_render(enum tf_fx_ep ep, const struct tf_fx_snapshot *s, const struct tf_fx_args *a,
                 struct tf_fx_reply *out);

/* The venue's own "bad request" answer with the HTTP status the venue uses (Bithumb 200 +
 * status 5600, Binance 400 -1121, ...): what the error_object fault serves. */
int tf_fx_render_venue_error(enum tf_fx_ep ep, int64_t now_ms, struct tf_fx_reply *out);

/* A venue-flavoured 500 or 503 body. */
int tf_fx_render_server_error(enum tf_fx_ep ep, unsigned status, int64_t now_ms,
                              struct tf_fx_reply *out);

#endif
