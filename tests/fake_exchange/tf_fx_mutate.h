/* tf_fx_mutate: the mutating proxy mode of the fake exchange. With a rate > 0, each numeric
 * field of a normal market body (a JSON number or a numeric string) is mutated with that
 * probability: multiplied by a random factor, replaced by an exponent-form extreme (1e+308,
 * 1e-308), negated or multiplied by 10, from a seeded generator. Not thread-safe: the caller
 * holds the app lock. */
#ifndef TF_FX_MUTATE_H
#define TF_FX_MUTATE_H

#include <stdint.h>

#include <jansson.h>

struct tf_fx_mutator {
    double rate;        /* probability per numeric field; 0 = off */
    uint64_t rng;       /* xorshift64* state, never 0 */
    uint64_t fields;    /* numeric fields mutated so far */
    uint64_t responses; /* bodies with at least one mutated field */
    uint64_t kinds[5];  /* fields per kind, in the order of tf_fx_mutate_kind_name */
};

/* rate in [0, 1]; seed 0 is allowed. */
void tf_fx_mutator_init(struct tf_fx_mutator *m, double rate, uint64_t seed);
/* Mutates root in place; returns the number of fields changed. */
int tf_fx_mutate_json(struct tf_fx_mutator *m, json_t *root);
/* {"rate","fields","responses","kinds":{...}}; new reference or NULL. */
json_t *tf_fx_mutator_json(const struct tf_fx_mutator *m);
/* Parses "RATE" or "RATE:SEED" (--mutate). 0 or -1 with a message in err. */
int tf_fx_mutate_parse_spec(const char *spec, double *rate, long long *seed, char *err,
                            size_t errlen);

#endif
