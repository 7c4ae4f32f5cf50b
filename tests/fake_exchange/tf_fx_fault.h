/* tf_fx_fault: injected failures. Owns the per-endpoint fault table (plus the "*" entry), the
 * parsing of fault specs, and turning a fault into a reply or a mutation of a normal body. */
#ifndef TF_FX_FAULT_H
#define TF_FX_FAULT_H

#include <stddef.h>

#include "tf_fx_endpoint.h"
#include "tf_fx_render.h"

enum tf_fx_fault_mode {
    TF_FX_FAULT_NONE,
    TF_FX_FAULT_500,
    TF_FX_FAULT_503,
    TF_FX_FAULT_429,
    TF_FX_FAULT_418,
    TF_FX_FAULT_DELAY,
    TF_FX_FAULT_TRUNCATE,
    TF_FX_FAULT_HTML,
    TF_FX_FAULT_WRONG_TYPES,
    TF_FX_FAULT_ERROR_OBJECT,
    TF_FX_FAULT_EMPTY,
    TF_FX_FAULT_ZERO,
    TF_FX_FAULT_MODE_COUNT
};

#define TF_FX_DEFAULT_RETRY_AFTER 1
#define TF_FX_DEFAULT_DELAY_MS    3000

struct tf_fx_fault {
    enum tf_fx_fault_mode mode;
    int retry_after; /* seconds, for 429/418 */
    int delay_ms;    /* for delay */
    int remaining;   /* requests left; 0 = until cleared */
};

struct tf_fx_faults {
    struct tf_fx_fault ep[TF_FX_EP_COUNT];
    struct tf_fx_fault all; /* "*": applies where no endpoint fault is set */
};

const char *tf_fx_fault_mode_name(enum tf_fx_fault_mode mode);
int tf_fx_fault_mode_parse(const char *text, enum tf_fx_fault_mode *mode); /* 0 or -1 */

/* ep < 0 means "*": it replaces every endpoint fault, so "*"=none clears everything. */
void tf_fx_faults_set(struct tf_fx_faults *t, int ep, const struct tf_fx_fault *f);

/* The fault that applies to one request to ep, consuming one use of a counted fault. */
struct tf_fx_fault tf_fx_faults_take(struct tf_fx_faults *t, enum tf_fx_ep ep);

/* Parses "ID=MODE[:ARG]" (ARG: retry seconds for 429/418, milliseconds for delay).
 * Returns 0, or -1 with a message in err. */
int tf_fx_fault_parse_spec(const char *spec, int *ep, struct tf_fx_fault *f, char *err,
                           size_t errlen);

/* 1 when the mode replaces the whole response (no normal rendering needed). */
int tf_fx_fault_replaces(enum tf_fx_fault_mode mode);

/* Builds the replacing reply for 500/503/429/418/html/error_object/empty. */
int tf_fx_fault_reply(const struct tf_fx_fault *f, enum tf_fx_ep ep, int64_t now_ms,
                      struct tf_fx_reply *out);

/* The active faults as {"<endpoint id or *>": {mode, retry_after, delay_ms, remaining}}. */
json_t *tf_fx_faults_json(const struct tf_fx_faults *t);

/* wrong_types / zero: rewrites a normal body in place. */
void tf_fx_fault_mutate(enum tf_fx_fault_mode mode, json_t *root);

#endif
