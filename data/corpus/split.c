// The validation split: rank the items (speakers, or a lone speaker's utterances) by hash and hold out a prefix.
#include "data/corpus/split.h"

#include <stdlib.h>
#include <string.h>

#include "base/philox.h"

// Philox sites: "SPLT" ranks speakers (the split of every store with two or more speakers), "SPLU" utterances.
#define SPEAKER_SITE 0x53504c54u
#define UTTERANCE_SITE 0x53504c55u

typedef struct {
    uint64_t rank;
    const char *name;
    size_t count; // utterances in the item
    size_t k;     // speaker or utterance index
} Item;

static int cmp_rank(const void *a, const void *b) {
    const Item *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->k > y->k) - (x->k < y->k);
}

static uint64_t item_rank(const char *name, uint32_t site, uint64_t seed) {
    uint64_t h = store_fnv1a(name);
    Philox4 c = {{(uint32_t)h, (uint32_t)(h >> 32), site, 0}};
    Philox4 r = philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    return (uint64_t)r.v[0] << 32 | r.v[1];
}

// Sorts the n items by rank and marks them held out (in_val[item.k] = 1) in that order until they hold >= target
// utterances or one item is left; returns the items held out.
static size_t hold_out(Item *it, size_t n, double target, unsigned char *in_val) {
    qsort(it, n, sizeof *it, cmp_rank);
    size_t taken = 0, j = 0;
    for (; j + 1 < n && (double)taken < target; j++) {
        in_val[it[j].k] = 1;
        taken += it[j].count;
    }
    return j;
}

void store_split(const Store *s, double val_fraction, uint64_t seed, StoreSplit *sp) {
    const size_t n = store_size(s);
    const uint32_t ns = store_n_speakers(s);
    const int by_utt = ns == 1;
    const size_t n_items = by_utt ? n : ns;
    Item *it = calloc_check(n_items, sizeof *it);
    unsigned char *in_val = calloc_check(n_items, 1); // (n_items)
    if (by_utt) {
        for (size_t i = 0; i < n; i++)
            it[i] = (Item){item_rank(store_id(s, i), UTTERANCE_SITE, seed), store_id(s, i), 1, i};
    } else {
        for (uint32_t k = 0; k < ns; k++)
            it[k] = (Item){item_rank(store_speaker_name(s, k), SPEAKER_SITE, seed), store_speaker_name(s, k), 0, k};
        for (size_t i = 0; i < n; i++) it[store_speaker(s, i)].count++;
    }
    const size_t held = hold_out(it, n_items, val_fraction * (double)n, in_val);
    memset(sp, 0, sizeof *sp);
    for (size_t i = 0; i < n; i++) sp->n_val += in_val[by_utt ? i : store_speaker(s, i)];
    sp->n_train = n - sp->n_val;
    sp->val_speakers = by_utt ? 0 : (uint32_t)held;
    sp->by_utterance = by_utt && held > 0;
    sp->train = malloc_check(sp->n_train * sizeof *sp->train);
    sp->val = malloc_check(sp->n_val * sizeof *sp->val);
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_val[by_utt ? i : store_speaker(s, i)]) sp->val[b++] = i;
        else sp->train[a++] = i;
    }
    free(in_val);
    free(it);
}

void store_split_free(StoreSplit *sp) {
    free(sp->train);
    free(sp->val);
    memset(sp, 0, sizeof *sp);
}
