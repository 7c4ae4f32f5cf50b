/* tf_fx_mutate: the mutating proxy mode (see tf_fx_mutate.h). */
#include "tf_fx_mutate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tf_fx_mut_kind {
    TF_FX_MUT_SCALE,  /* x a random factor */
    TF_FX_MUT_HUGE,   /* 1e+308 */
    TF_FX_MUT_TINY,   /* 1e-308 */
    TF_FX_MUT_NEGATE, /* sign flip */
    TF_FX_MUT_X10,    /* the x10 jump */
    TF_FX_MUT_COUNT
};

static const char *const tf_fx_mut_names[TF_FX_MUT_COUNT] = {"scale", "1e+308", "1e-308", "negate",
                                                             "x10"};

/* Factors of TF_FX_MUT_SCALE: small drifts a jump check must hold back, and large ones a range
 * check must refuse. */
static const double tf_fx_mut_factors[] = {1000.0, 100.0, 3.0, 1.5, 0.5, 0.1, 0.001};

static uint64_t tf_fx_mut_next(struct tf_fx_mutator *m)
{
    /* xorshift64* (Vigna): enough for test noise, reproducible per seed. */
    uint64_t x = m->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    m->rng = x;
    return x * 2685821657736338717ULL;
}

static double tf_fx_mut_uniform(struct tf_fx_mutator *m)
{
    return (double)(tf_fx_mut_next(m) >> 11) / 9007199254740992.0;
}

void tf_fx_mutator_init(struct tf_fx_mutator *m, double rate, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    m->rate = rate;
    m->rng = seed ^ 0x9E3779B97F4A7C15ULL;
    if (m->rng == 0) {
        m->rng = 1;
    }
}

/* A string holding a decimal number, as venues write prices ("136850000", "0.0001"). Status
 * codes such as Bithumb's "0000" are numeric too and are mutated like the rest: the attack
 * did not know which fields mattered either. */
static int tf_fx_mut_numeric(const char *s, double *out)
{
    if (s[0] == '\0' || !(s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) {
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || errno != 0 || !isfinite(v)) {
        return 0;
    }
    *out = v;
    return 1;
}

static double tf_fx_mut_value(struct tf_fx_mutator *m, enum tf_fx_mut_kind kind, double v)
{
    size_t n = sizeof(tf_fx_mut_factors) / sizeof(tf_fx_mut_factors[0]);
    switch (kind) {
    case TF_FX_MUT_SCALE:
        return v * tf_fx_mut_factors[tf_fx_mut_next(m) % n];
    case TF_FX_MUT_HUGE:
        return 1e308;
    case TF_FX_MUT_TINY:
        return 1e-308;
    case TF_FX_MUT_NEGATE:
        return -v;
    default:
        return v * 10.0;
    }
}

/* The replacement of one value, keeping its JSON type: numeric strings stay strings (in
 * exponent form for the extremes, as the attack sent them), integers stay integers when the
 * result is one. New reference or NULL. */
static json_t *tf_fx_mut_replace(struct tf_fx_mutator *m, const json_t *old, double v)
{
    enum tf_fx_mut_kind kind = (enum tf_fx_mut_kind)(tf_fx_mut_next(m) % TF_FX_MUT_COUNT);
    double nv = tf_fx_mut_value(m, kind, v);
    m->kinds[kind]++;
    if (json_is_string(old)) {
        char buf[64];
        if (kind == TF_FX_MUT_HUGE || kind == TF_FX_MUT_TINY) {
            snprintf(buf, sizeof(buf), "%s", tf_fx_mut_names[kind]);
        } else {
            snprintf(buf, sizeof(buf), "%.15g", nv);
        }
        return json_string(buf);
    }
    if (json_is_integer(old) && nv == floor(nv) && fabs(nv) < 9e18) {
        return json_integer((json_int_t)nv);
    }
    return json_real(nv);
}

/* Returns the replacement of v (new reference) when it is mutated, NULL otherwise. */
static json_t *tf_fx_mut_leaf(struct tf_fx_mutator *m, const json_t *v)
{
    double d = 0.0;
    int numeric =
        json_is_number(v) || (json_is_string(v) && tf_fx_mut_numeric(json_string_value(v), &d));
    if (!numeric || tf_fx_mut_uniform(m) >= m->rate) {
        return NULL;
    }
    if (json_is_number(v)) {
        d = json_number_value(v);
    }
    return tf_fx_mut_replace(m, v, d);
}

static int tf_fx_mut_walk(struct tf_fx_mutator *m, json_t *node)
{
    int changed = 0;
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(node, tmp, key, v)
        {
            json_t *nv = tf_fx_mut_leaf(m, v);
            if (nv != NULL) {
                changed += json_object_set_new(node, key, nv) == 0;
            } else {
                changed += tf_fx_mut_walk(m, v);
            }
        }
    } else if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++) {
            json_t *nv = tf_fx_mut_leaf(m, json_array_get(node, i));
            if (nv != NULL) {
                changed += json_array_set_new(node, i, nv) == 0;
            } else {
                changed += tf_fx_mut_walk(m, json_array_get(node, i));
            }
        }
    }
    return changed;
}

int tf_fx_mutate_json(struct tf_fx_mutator *m, json_t *root)
{
    if (m->rate <= 0.0 || root == NULL) {
        return 0;
    }
    int changed = tf_fx_mut_walk(m, root);
    m->fields += (uint64_t)changed;
    m->responses += changed > 0;
    return changed;
}

json_t *tf_fx_mutator_json(const struct tf_fx_mutator *m)
{
    json_t *kinds = json_object();
    if (kinds == NULL) {
        return NULL;
    }
    for (int i = 0; i < TF_FX_MUT_COUNT; i++) {
        json_object_set_new(kinds, tf_fx_mut_names[i], json_integer((json_int_t)m->kinds[i]));
    }
    return json_pack("{s:f, s:I, s:I, s:o}", "rate", m->rate, "fields", (json_int_t)m->fields,
                     "responses", (json_int_t)m->responses, "kinds", kinds);
}

int tf_fx_mutate_parse_spec(const char *spec, double *rate, long long *seed, char *err,
                            size_t errlen)
{
    char *end = NULL;
    errno = 0;
    double r = strtod(spec, &end);
    if (end == spec || errno != 0 || !(r >= 0.0 && r <= 1.0) || (*end != '\0' && *end != ':')) {
        snprintf(err, errlen, "--mutate: expected RATE[:SEED] with 0 <= RATE <= 1, got \"%s\"",
                 spec);
        return -1;
    }
    *rate = r;
    if (*end == ':') {
        const char *s = end + 1;
        char *send = NULL;
        errno = 0;
        long long v = strtoll(s, &send, 10);
        if (send == s || *send != '\0' || errno != 0 || v < 0) {
            snprintf(err, errlen, "--mutate: expected a non-negative SEED after ':', got \"%s\"",
                     s);
            return -1;
        }
        *seed = v;
    }
    return 0;
}
