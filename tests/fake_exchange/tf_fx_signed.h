/* tf_fx_signed: the signed (private) endpoints of the fake exchange, Binance
 * GET /fapi/v2/positionRisk (HMAC-SHA256) and Bithumb /info/balance (v1 HMAC-SHA512), which
 * verify requests against one test key pair (--api-key / --api-secret) and answer fixed
 * account data. */
#ifndef TF_FX_SIGNED_H
#define TF_FX_SIGNED_H

#include <stddef.h>

#include <microhttpd.h>

#include "tf_fx_render.h"

#define TF_FX_SIGNED_DEFAULT_KEY    "tf-test-api-key"
#define TF_FX_SIGNED_DEFAULT_SECRET "tf-test-api-secret"

/* Removes --api-key K / --api-secret S (or --api-key=K) from argv before getopt sees it and
 * keeps the values (argv must outlive the server). 0, or -1 after printing a usage error. */
int tf_fx_signed_take_args(int *argc, char **argv);

/* Non-zero when `url` is one of the signed endpoints. */
int tf_fx_signed_match(const char *url);

/* Answers one signed request into out (status and JSON body). body/len: the POST body, if
 * any (a GET carries the same form in its query). 0, or -1 on allocation failure. */
int tf_fx_signed_serve(struct MHD_Connection *c, const char *url, const char *method,
                       const char *body, size_t len, struct tf_fx_reply *out);

#endif
