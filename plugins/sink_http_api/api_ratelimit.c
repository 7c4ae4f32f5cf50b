/* Per-IP token buckets of the http_api sink: see api_ratelimit.h. */
#include "api_ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_text.h"

#define NIL UINT32_MAX

typedef struct bucket {
    unsigned char key[API_RATELIMIT_KEY_MAX];
    uint8_t keylen;
    double tokens;
    int64_t last_ms;
    uint32_t chain;        /* next in the hash slot */
    uint32_t newer, older; /* LRU list */
} bucket;

struct api_ratelimit {
    pthread_mutex_t lock;
    double rate, burst;
    bucket *b; /* owned, max entries */
    uint32_t used, max;
    uint32_t *slots; /* owned, nslots heads */
    uint32_t nslots; /* a power of two */
    uint32_t newest, oldest;
};

api_ratelimit *api_ratelimit_create(double rate, double burst, size_t max_clients)
{
    if (max_clients == 0 || max_clients > (1u << 24))
        return NULL;
    api_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    rl->max = (uint32_t)max_clients;
    rl->nslots = 1;
    while (rl->nslots < 2 * rl->max)
        rl->nslots <<= 1;
    rl->b = calloc(rl->max, sizeof *rl->b);
    rl->slots = malloc(rl->nslots * sizeof *rl->slots);
    if (!rl->b || !rl->slots || pthread_mutex_init(&rl->lock, NULL) != 0) {
        free(rl->b);
        free(rl->slots);
        free(rl);
        return NULL;
    }
    memset(rl->slots, 0xff, rl->nslots * sizeof *rl->slots);
    rl->newest = rl->oldest = NIL;
    return rl;
}

static uint32_t slot_of(const api_ratelimit *rl, const void *key, size_t keylen)
{
    return (uint32_t)api_hash(API_HASH_SEED, key, keylen) & (rl->nslots - 1);
}

static void lru_unlink(api_ratelimit *rl, uint32_t i)
{
    bucket *e = &rl->b[i];
    if (e->newer != NIL)
        rl->b[e->newer].older = e->older;
    else
        rl->newest = e->older;
    if (e->older != NIL)
        rl->b[e->older].newer = e->newer;
    else
        rl->oldest = e->newer;
}

static void lru_push(api_ratelimit *rl, uint32_t i)
{
    bucket *e = &rl->b[i];
    e->newer = NIL;
    e->older = rl->newest;
    if (rl->newest != NIL)
        rl->b[rl->newest].newer = i;
    rl->newest = i;
    if (rl->oldest == NIL)
        rl->oldest = i;
}

static void chain_remove(api_ratelimit *rl, uint32_t i)
{
    uint32_t *link = &rl->slots[slot_of(rl, rl->b[i].key, rl->b[i].keylen)];
    while (*link != NIL && *link != i)
        link = &rl->b[*link].chain;
    if (*link == i)
        *link = rl->b[i].chain;
}

/* The bucket of `key`, created full (reusing the least recently seen one when the table is
 * full: an address idle that long has a full bucket anyway, or close to it). */
static bucket *lookup(api_ratelimit *rl, const void *key, size_t keylen, int64_t now_ms)
{
    uint32_t s = slot_of(rl, key, keylen);
    for (uint32_t i = rl->slots[s]; i != NIL; i = rl->b[i].chain) {
        bucket *e = &rl->b[i];
        if (e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
            lru_unlink(rl, i);
            lru_push(rl, i);
            return e;
        }
    }
    uint32_t i;
    if (rl->used < rl->max) {
        i = rl->used++;
    } else {
        i = rl->oldest;
        lru_unlink(rl, i);
        chain_remove(rl, i);
    }
    bucket *e = &rl->b[i];
    memcpy(e->key, key, keylen);
    e->keylen = (uint8_t)keylen;
    e->tokens = rl->burst;
    e->last_ms = now_ms;
    e->chain = rl->slots[s];
    rl->slots[s] = i;
    lru_push(rl, i);
    return e;
}

bool api_ratelimit_take(api_ratelimit *rl, const void *key, size_t keylen, int64_t now_ms,
                        unsigned *retry_after_s)
{
    if (keylen == 0 || keylen > API_RATELIMIT_KEY_MAX)
        return true; /* not an IP address (a UNIX socket): nothing to key on */
    pthread_mutex_lock(&rl->lock);
    bucket *e = lookup(rl, key, keylen, now_ms);
    if (now_ms > e->last_ms) {
        e->tokens = fmin(rl->burst, e->tokens + (double)(now_ms - e->last_ms) * rl->rate / 1000.0);
        e->last_ms = now_ms;
    }
    bool ok = e->tokens >= 1.0;
    if (ok)
        e->tokens -= 1.0;
    else
        *retry_after_s = (unsigned)fmax(1.0, ceil((1.0 - e->tokens) / rl->rate));
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

void api_ratelimit_destroy(api_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->b);
    free(rl->slots);
    free(rl);
}
