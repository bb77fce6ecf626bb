// The protocol split: groups dealt to folds, validation groups held out of each training side, label fractions.
// Every draw is keyed by names (groups, ids) and seeds, never by the clips' order, so a reordered labels.csv gives
// the same split.
#include "data/corpus/folds.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/philox.h"
#include "data/corpus/masking.h"
#include "data/corpus/store.h"

// Philox sites, apart from each other and from the loader ('S'), masking ('M') and the validation split ("SPLT").
#define FOLDS_DEAL_SITE 0x464f4c44u     // "FOLD": the shuffle that deals groups to folds
#define FOLDS_VAL_SITE 0x4656414cu      // "FVAL": the shuffle that picks fold k's validation groups (step = k)
#define FOLDS_FRACTION_SITE 0x46524143u // "FRAC": a clip's rank within its stratum

typedef struct {
    const char *name;
    size_t i;
} Named;

typedef struct {
    uint64_t key;
    const char *id;
    size_t i;
} Ranked;

static int cmp_named(const void *a, const void *b) {
    const Named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int cmp_ranked(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

// A clip's fraction key: a function of (fraction_seed, id) alone, so its rank order within any stratum is the same
// for every fraction (nesting).
static uint64_t fraction_key(const char *id, uint64_t seed) {
    uint64_t h = store_fnv1a(id);
    Philox4 c = {{(uint32_t)h, (uint32_t)(h >> 32), FOLDS_FRACTION_SITE, 0}};
    Philox4 r = philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    return (uint64_t)r.v[0] << 32 | r.v[1];
}

// Philox Fisher-Yates of p (m) keyed by (seed, site, step), as the loader shuffles an epoch.
static void shuffle(size_t *p, size_t m, uint64_t seed, uint32_t site, uint32_t step) {
    for (size_t j = m; j-- > 1;) {
        size_t r = philox_below(seed, site, step, j, (uint64_t)j + 1);
        size_t t = p[j];
        p[j] = p[r];
        p[r] = t;
    }
}

// Group index of each clip (gid, n), groups numbered in strcmp order of their names; returns the group count.
static size_t number_groups(size_t n, char *const *group, size_t *gid) {
    Named *by = malloc_check(n * sizeof *by);
    for (size_t i = 0; i < n; i++) by[i] = (Named){group[i], i};
    qsort(by, n, sizeof *by, cmp_named);
    size_t g = 0;
    for (size_t j = 0; j < n; j++) {
        if (j > 0 && strcmp(by[j - 1].name, by[j].name) != 0) g++;
        gid[by[j].i] = g;
    }
    free(by);
    return n ? g + 1 : 0;
}

// Fold k's roles of the groups (grole, G): its own groups test; of the others, in name order, a shuffle keyed by
// (seed, k) puts the first n_val in validation. -1 with err when no group would be left to train.
static int fold_groups(int k, const int *gfold, size_t G, const FoldSpec *spec, unsigned char *grole, size_t *other,
                       AvtErr *err) {
    size_t m = 0;
    for (size_t g = 0; g < G; g++) {
        grole[g] = gfold[g] == k ? ROLE_TEST : ROLE_TRAIN;
        if (gfold[g] != k) other[m++] = g;
    }
    // Round half up in integers: 10 % of 5 groups is 1, of 15 is 2.
    size_t n_val = spec->val_groups > 0 ? (size_t)spec->val_groups : (m + 5) / 10;
    if (n_val < 1) n_val = 1;
    if (n_val >= m)
        return avt_err_set(err, "fold %d: validation takes %zu of the %zu groups outside the test fold, leaving none "
                                "to train", k, n_val, m);
    shuffle(other, m, spec->split_seed, FOLDS_VAL_SITE, (uint32_t)k);
    for (size_t j = 0; j < n_val; j++) grole[other[j]] = ROLE_VAL;
    return 0;
}

// Keeps, in each stratum (side x class) of fold row `role` (n), the clips whose place in the fraction order `order`
// is below max(1, round(fraction x stratum size)); the rest become ROLE_OUT. count and seen are (2, S) scratch.
static void apply_fraction(unsigned char *role, const Ranked *order, size_t n, const int *label, size_t S,
                           double fraction, size_t *count, size_t *seen) {
    memset(count, 0, 2 * S * sizeof *count);
    memset(seen, 0, 2 * S * sizeof *seen);
    for (size_t i = 0; i < n; i++)
        if (role[i] == ROLE_TRAIN || role[i] == ROLE_VAL)
            count[(size_t)(role[i] == ROLE_VAL) * S + (label ? (size_t)label[i] : 0)]++;
    for (size_t s = 0; s < 2 * S; s++) {
        size_t keep = (size_t)floor(fraction * (double)count[s] + 0.5);
        count[s] = keep < 1 ? 1 : keep; // count now holds the quota
    }
    for (size_t j = 0; j < n; j++) {
        size_t i = order[j].i;
        if (role[i] != ROLE_TRAIN && role[i] != ROLE_VAL) continue;
        size_t s = (size_t)(role[i] == ROLE_VAL) * S + (label ? (size_t)label[i] : 0);
        if (seen[s]++ >= count[s]) role[i] = ROLE_OUT;
    }
}

int folds_make(Folds *f, const FoldSpec *spec, size_t n, char *const *id, char *const *group, const int *label,
               int n_classes, char *const *class_names, AvtErr *err) {
    memset(f, 0, sizeof *f);
    const int K = spec->K;
    if (K < 2) return avt_err_set(err, "%d folds: cross-validation needs at least 2", K);
    if (spec->val_groups < 0) return avt_err_set(err, "%d validation groups: must be 0 (about 10 %%) or more",
                                                 spec->val_groups);
    if (!(spec->fraction > 0.0 && spec->fraction <= 1.0))
        return avt_err_set(err, "fraction %g: must be in (0, 1]", spec->fraction);
    const size_t S = label ? (size_t)n_classes : 1; // strata per side
    if (label)
        for (size_t i = 0; i < n; i++)
            if (label[i] < 0 || label[i] >= n_classes)
                avt_fatal("clip %s: label %d outside [0, %d)", id[i], label[i], n_classes);

    size_t *gid = malloc_check(n * sizeof *gid);
    const size_t G = number_groups(n, group, gid);
    if (G < (size_t)K) {
        free(gid);
        return avt_err_set(err, "%d folds need at least %d groups, the clips have %zu", K, K, G);
    }

    // Deal: the groups in name order, shuffled, go round-robin to the folds.
    size_t *perm = malloc_check(G * sizeof *perm);
    int *gfold = malloc_check(G * sizeof *gfold);
    for (size_t g = 0; g < G; g++) perm[g] = g;
    shuffle(perm, G, spec->split_seed, FOLDS_DEAL_SITE, 0);
    for (size_t j = 0; j < G; j++) gfold[perm[j]] = (int)(j % (size_t)K);

    // The fraction order: every clip ranked once by its (fraction_seed, id) key.
    Ranked *order = malloc_check(n * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = (Ranked){fraction_key(id[i], spec->fraction_seed), id[i], i};
    qsort(order, n, sizeof *order, cmp_ranked);

    f->K = K;
    f->n = n;
    f->n_groups = G;
    f->role = malloc_check((size_t)K * n * sizeof *f->role);
    f->test_fold = malloc_check(n * sizeof *f->test_fold);
    for (size_t i = 0; i < n; i++) f->test_fold[i] = gfold[gid[i]];
    unsigned char *grole = malloc_check(G * sizeof *grole);
    size_t *count = malloc_check(2 * S * sizeof *count), *seen = malloc_check(2 * S * sizeof *seen);
    size_t *has = calloc_check(S, sizeof *has); // clips per class over all clips
    if (label)
        for (size_t i = 0; i < n; i++) has[label[i]]++;
    int rc = 0;
    for (int k = 0; k < K && rc == 0; k++) {
        unsigned char *role = f->role + (size_t)k * n;
        rc = fold_groups(k, gfold, G, spec, grole, perm /* dealt: free for scratch */, err);
        if (rc) break;
        for (size_t i = 0; i < n; i++) role[i] = grole[gid[i]];
        apply_fraction(role, order, n, label, S, spec->fraction, count, seen);
        if (!label) continue;
        memset(seen, 0, S * sizeof *seen); // training clips per class
        for (size_t i = 0; i < n; i++) seen[label[i]] += role[i] == ROLE_TRAIN;
        for (size_t c = 0; c < S && rc == 0; c++)
            if (has[c] && !seen[c])
                rc = avt_err_set(err, "fold %d: class '%s' has no training clip", k, class_names[c]);
    }
    free(has);
    free(seen);
    free(count);
    free(grole);
    free(order);
    free(gfold);
    free(perm);
    free(gid);
    if (rc) folds_free(f);
    return rc;
}

void folds_free(Folds *f) {
    free(f->role);
    free(f->test_fold);
    memset(f, 0, sizeof *f);
}

const char *fold_role_name(FoldRole r) {
    switch (r) {
    case ROLE_TRAIN: return "train";
    case ROLE_VAL: return "val";
    case ROLE_TEST: return "test";
    case ROLE_OUT: return "out";
    }
    return "?";
}
