// Tests for data/corpus/folds.c, as properties over several seeds and corpus sizes: folds are group-disjoint (test,
// val and train sides share no group), every clip is tested exactly once, the default validation holds round(10 %)
// of the other groups (at least 1); fractions are stratified per side and class and nested for one fraction_seed,
// and never touch the test side; the split depends on the seeds and names only (not on the clips' order); errors
// are one line.
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/folds.h"

TestSuite(folds, .timeout = 60);

#define N_CLASSES 3
static char *const class_names[N_CLASSES] = {"ang", "hap", "sad"};

// A corpus of G groups "spk-<g>" with `per` clips each, ids "spk-<g>/utt-<j>", class (g + j) % N_CLASSES: each
// group with per >= N_CLASSES holds every class.
typedef struct {
    size_t n, G;
    char **id, **group;
    int *label;
} Corpus;

static Corpus corpus(size_t G, size_t per) {
    Corpus c = {G * per, G, malloc(G * per * sizeof(char *)), malloc(G * per * sizeof(char *)),
                malloc(G * per * sizeof(int))};
    for (size_t g = 0; g < G; g++)
        for (size_t j = 0; j < per; j++) {
            size_t i = g * per + j;
            char buf[64];
            snprintf(buf, sizeof buf, "spk-%02zu/utt-%03zu", g, j);
            c.id[i] = strdup(buf);
            snprintf(buf, sizeof buf, "spk-%02zu", g);
            c.group[i] = strdup(buf);
            c.label[i] = (int)((g + j) % N_CLASSES);
        }
    return c;
}

static void corpus_free(Corpus *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->id[i]);
        free(c->group[i]);
    }
    free(c->id);
    free(c->group);
    free(c->label);
}

// The group index of clip i ("spk-<g>/..." names group g).
static size_t group_of(const Corpus *c, size_t i) { return (size_t)strtoul(c->group[i] + 4, NULL, 10); }

static void make(Folds *f, const FoldSpec *spec, const Corpus *c, int with_labels) {
    AvtErr err = {{0}};
    cr_assert_eq(folds_make(f, spec, c->n, c->id, c->group, with_labels ? c->label : NULL, N_CLASSES, class_names,
                            &err),
                 0, "%s", err.msg);
    cr_assert_eq(f->K, spec->K);
    cr_assert_eq(f->n, c->n);
    cr_assert_eq(f->n_groups, c->G);
}

static unsigned char role(const Folds *f, int k, size_t i) { return f->role[(size_t)k * f->n + i]; }

// Group-disjoint folds, each clip tested once by the fold test_fold names, every fold with test and train groups.
// The validation groups of each fold (counted only where no fraction dropped a whole group) are round(10 %) of the
// others, at least 1, with expect_val_default; val_groups with val_groups > 0.
static void check_sides(const Folds *f, const Corpus *c, int expect_val_default, int val_groups) {
    int *tested = calloc(c->n, sizeof(int));
    unsigned *gmask = malloc(c->G * sizeof(unsigned));
    for (int k = 0; k < f->K; k++) {
        memset(gmask, 0, c->G * sizeof(unsigned));
        for (size_t i = 0; i < c->n; i++) {
            unsigned char r = role(f, k, i);
            cr_assert(r <= ROLE_TEST, "fold %d clip %zu: role %d", k, i, r);
            cr_assert_eq(r == ROLE_TEST, f->test_fold[i] == k, "fold %d clip %zu: role %s, test_fold %d", k, i,
                         fold_role_name(r), f->test_fold[i]);
            tested[i] += r == ROLE_TEST;
            if (r != ROLE_OUT) gmask[group_of(c, i)] |= 1u << r;
        }
        size_t n_val = 0, n_test = 0, n_train = 0;
        for (size_t g = 0; g < c->G; g++) {
            unsigned m = gmask[g];
            cr_assert(m == 0 || (m & (m - 1)) == 0, "fold %d: group %zu on several sides (mask %x)", k, g, m);
            n_val += m == 1u << ROLE_VAL;
            n_test += m == 1u << ROLE_TEST;
            n_train += m == 1u << ROLE_TRAIN;
        }
        cr_assert_gt(n_test, 0, "fold %d tests no group", k);
        cr_assert_gt(n_train, 0, "fold %d trains on no group", k);
        size_t other = c->G - n_test;
        if (expect_val_default) {
            size_t want = (size_t)floor(0.1 * (double)other + 0.5);
            if (want < 1) want = 1;
            cr_assert_eq(n_val, want, "fold %d: %zu val groups of %zu, want %zu", k, n_val, other, want);
        } else if (val_groups > 0) {
            cr_assert_eq(n_val, (size_t)val_groups, "fold %d: %zu val groups", k, n_val);
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        cr_assert_eq(tested[i], 1, "clip %zu tested %d times", i, tested[i]);
        cr_assert(f->test_fold[i] >= 0 && f->test_fold[i] < f->K);
    }
    // Round-robin deal: fold sizes in groups differ by at most one.
    size_t *per_fold = calloc((size_t)f->K, sizeof(size_t));
    for (size_t g = 0; g < c->G; g++)
        for (size_t i = 0; i < c->n; i++)
            if (group_of(c, i) == g) {
                per_fold[f->test_fold[i]]++;
                break;
            }
    for (int k = 0; k < f->K; k++)
        cr_assert(per_fold[k] == c->G / (size_t)f->K || per_fold[k] == (c->G + (size_t)f->K - 1) / (size_t)f->K,
                  "fold %d holds %zu of %zu groups", k, per_fold[k], c->G);
    free(per_fold);
    free(gmask);
    free(tested);
}

typedef struct {
    size_t G, per;
    int K;
} Size;

static const Size sizes[] = {{5, 3, 5}, {12, 4, 5}, {20, 3, 4}, {23, 7, 4}, {40, 3, 10}, {7, 5, 2}};
static const uint64_t seeds[] = {1, 7, 42, 0x123456789abcdefull};
#define N_SIZES (sizeof sizes / sizeof *sizes)
#define N_SEEDS (sizeof seeds / sizeof *seeds)

Test(folds, group_disjoint_and_tested_once) {
    for (size_t a = 0; a < N_SIZES; a++) {
        Corpus c = corpus(sizes[a].G, sizes[a].per);
        for (size_t b = 0; b < N_SEEDS; b++) {
            FoldSpec spec = {sizes[a].K, seeds[b], 0, 1.0, seeds[b] + 1};
            Folds f;
            make(&f, &spec, &c, 1);
            check_sides(&f, &c, 1, 0);
            for (size_t i = 0; i < c.n * (size_t)f.K; i++) cr_assert_neq(f.role[i], ROLE_OUT, "fraction 1 drops");
            folds_free(&f);
            cr_assert_null(f.role);
            cr_assert_null(f.test_fold);
            // A fraction drops training and validation clips but no group changes side.
            spec.fraction = 0.3;
            make(&f, &spec, &c, 1);
            check_sides(&f, &c, 0, 0);
            folds_free(&f);
        }
        corpus_free(&c);
    }
}

Test(folds, explicit_val_groups) {
    Corpus c = corpus(23, 4);
    for (int v = 1; v <= 3; v++) {
        FoldSpec spec = {5, 9, v, 1.0, 3};
        Folds f;
        make(&f, &spec, &c, 1);
        check_sides(&f, &c, 0, v);
        folds_free(&f);
    }
    corpus_free(&c);
}

// Fraction `fr` of fold k against fraction 1 (the same split_seed): the test side is the same, every kept clip was
// on the same side, and each (side, class) stratum keeps max(1, round(fr x size)) clips.
static void check_fraction(const Folds *full, const Folds *part, const Corpus *c, double fr, int with_labels) {
    for (int k = 0; k < full->K; k++) {
        size_t size[2][N_CLASSES] = {{0}}, kept[2][N_CLASSES] = {{0}};
        for (size_t i = 0; i < c->n; i++) {
            unsigned char r1 = role(full, k, i), r = role(part, k, i);
            cr_assert_eq(r1 == ROLE_TEST, r == ROLE_TEST, "fold %d clip %zu: test side changed by the fraction", k, i);
            cr_assert(r == ROLE_OUT || r == r1, "fold %d clip %zu: %s at fraction 1, %s at %g", k, i,
                      fold_role_name(r1), fold_role_name(r), fr);
            if (r1 == ROLE_TEST) continue;
            int side = r1 == ROLE_VAL, cls = with_labels ? c->label[i] : 0;
            size[side][cls]++;
            kept[side][cls] += r != ROLE_OUT;
        }
        for (int side = 0; side < 2; side++)
            for (int cls = 0; cls < N_CLASSES; cls++) {
                if (!size[side][cls]) continue;
                double want = fr * (double)size[side][cls];
                cr_assert(fabs((double)kept[side][cls] - want) <= 0.5 + 1e-9 || (kept[side][cls] == 1 && want < 1),
                          "fold %d side %d class %d: kept %zu of %zu at %g", k, side, cls, kept[side][cls],
                          size[side][cls], fr);
            }
    }
}

// Kept (non-OUT) clips of a are kept in b too.
static void check_subset(const Folds *a, const Folds *b, const char *what) {
    for (size_t i = 0; i < a->n * (size_t)a->K; i++)
        cr_assert(a->role[i] == ROLE_OUT || b->role[i] == a->role[i], "%s: role %zu", what, i);
}

Test(folds, fractions_stratified_and_nested) {
    const double fr[] = {0.1, 0.25, 0.5, 1.0};
    for (size_t a = 0; a < N_SIZES; a++) {
        Corpus c = corpus(sizes[a].G, sizes[a].per * 4);
        for (size_t b = 0; b < N_SEEDS; b++)
            for (int with_labels = 0; with_labels < 2; with_labels++) {
                Folds f[4];
                for (int j = 0; j < 4; j++) {
                    FoldSpec spec = {sizes[a].K, seeds[b], 0, fr[j], seeds[b] ^ 0x5555};
                    make(&f[j], &spec, &c, with_labels);
                }
                for (int j = 0; j < 4; j++) check_fraction(&f[3], &f[j], &c, fr[j], with_labels);
                check_subset(&f[0], &f[1], "0.1 in 0.25");
                check_subset(&f[1], &f[2], "0.25 in 0.5");
                check_subset(&f[2], &f[3], "0.5 in 1");
                for (int j = 0; j < 4; j++) {
                    cr_assert_arr_eq(f[j].test_fold, f[3].test_fold, c.n * sizeof(int), "test folds by fraction");
                    folds_free(&f[j]);
                }
            }
        corpus_free(&c);
    }
}

Test(folds, deterministic_per_seed) {
    Corpus c = corpus(23, 6);
    FoldSpec spec = {5, 42, 0, 0.5, 7};
    Folds a, b;
    make(&a, &spec, &c, 1);
    make(&b, &spec, &c, 1);
    cr_assert_arr_eq(a.role, b.role, c.n * 5, "same seeds, same roles");
    cr_assert_arr_eq(a.test_fold, b.test_fold, c.n * sizeof(int));
    folds_free(&b);
    // Another split_seed deals the groups differently.
    spec.split_seed = 43;
    make(&b, &spec, &c, 1);
    cr_assert_arr_neq(a.test_fold, b.test_fold, c.n * sizeof(int), "split_seed 42 and 43 deal the same folds");
    folds_free(&b);
    // Another fraction_seed keeps other clips on the same sides.
    spec.split_seed = 42;
    spec.fraction_seed = 8;
    make(&b, &spec, &c, 1);
    cr_assert_arr_eq(a.test_fold, b.test_fold, c.n * sizeof(int), "fraction_seed moved a test clip");
    cr_assert_arr_neq(a.role, b.role, c.n * 5, "fraction_seed 7 and 8 keep the same clips");
    folds_free(&b);
    folds_free(&a);
    corpus_free(&c);
}

Test(folds, independent_of_clip_order) {
    Corpus c = corpus(17, 5);
    // A fixed pseudo-random permutation of the clips (and so of the groups' first appearances).
    size_t *perm = malloc(c.n * sizeof(size_t));
    for (size_t i = 0; i < c.n; i++) perm[i] = i;
    uint64_t s = 88172645463325252ull;
    for (size_t i = c.n; i-- > 1;) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t j = (size_t)(s % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    Corpus d = {c.n, c.G, malloc(c.n * sizeof(char *)), malloc(c.n * sizeof(char *)), malloc(c.n * sizeof(int))};
    for (size_t i = 0; i < c.n; i++) {
        d.id[i] = c.id[perm[i]];
        d.group[i] = c.group[perm[i]];
        d.label[i] = c.label[perm[i]];
    }
    for (size_t b = 0; b < N_SEEDS; b++)
        for (int with_labels = 0; with_labels < 2; with_labels++) {
            FoldSpec spec = {4, seeds[b], 0, 0.4, seeds[b] * 3};
            Folds f, g;
            make(&f, &spec, &c, with_labels);
            make(&g, &spec, &d, with_labels);
            for (size_t i = 0; i < c.n; i++) {
                cr_assert_eq(g.test_fold[i], f.test_fold[perm[i]], "%s: test fold", d.id[i]);
                for (int k = 0; k < 4; k++)
                    cr_assert_eq(role(&g, k, i), role(&f, k, perm[i]), "%s: fold %d role", d.id[i], k);
            }
            folds_free(&g);
            folds_free(&f);
        }
    free(d.id);
    free(d.group);
    free(d.label);
    free(perm);
    corpus_free(&c);
}

// folds_make fails with one line containing phrase, and leaves f empty.
static void expect_error(const FoldSpec *spec, const Corpus *c, const char *phrase) {
    Folds f;
    AvtErr err = {{0}};
    cr_assert_eq(folds_make(&f, spec, c->n, c->id, c->group, c->label, N_CLASSES, class_names, &err), -1,
                 "no error, want '%s'", phrase);
    cr_assert(strstr(err.msg, phrase), "error '%s', want '%s'", err.msg, phrase);
    cr_assert_null(strchr(err.msg, '\n'), "one line: '%s'", err.msg);
    cr_assert_null(f.role);
    cr_assert_null(f.test_fold);
}

Test(folds, errors) {
    Corpus c = corpus(3, 4);
    expect_error(&(FoldSpec){5, 1, 0, 1.0, 1}, &c, "5 folds need at least 5 groups, the clips have 3");
    expect_error(&(FoldSpec){1, 1, 0, 1.0, 1}, &c, "1 folds: cross-validation needs at least 2");
    expect_error(&(FoldSpec){2, 1, -1, 1.0, 1}, &c, "-1 validation groups");
    expect_error(&(FoldSpec){2, 1, 0, 0.0, 1}, &c, "fraction 0: must be in (0, 1]");
    expect_error(&(FoldSpec){2, 1, 0, 1.5, 1}, &c, "fraction 1.5: must be in (0, 1]");
    corpus_free(&c);

    // 6 groups in 3 folds: 4 groups outside each test fold, so 4 validation groups leave none to train.
    c = corpus(6, 4);
    expect_error(&(FoldSpec){3, 1, 4, 1.0, 1}, &c,
                 "validation takes 4 of the 4 groups outside the test fold, leaving none to train");
    // 3 groups in 3 folds: the default single validation group leaves one to train.
    corpus_free(&c);
    c = corpus(3, 4);
    Folds f;
    FoldSpec ok = {3, 1, 0, 1.0, 1};
    make(&f, &ok, &c, 1);
    check_sides(&f, &c, 1, 0);
    folds_free(&f);
    // ... but 2 groups in 2 folds leave one group outside the test fold, taken by validation.
    corpus_free(&c);
    c = corpus(2, 4);
    expect_error(&(FoldSpec){2, 1, 0, 1.0, 1}, &c, "fold 0: validation takes 1 of the 1 groups");
    corpus_free(&c);

    // Class "sad" only in group spk-00: the fold that tests it (or holds it out for validation) trains without it.
    c = corpus(8, 4);
    for (size_t i = 0; i < c.n; i++) c.label[i] = group_of(&c, i) == 0 ? 2 : (int)(i % 2);
    expect_error(&(FoldSpec){4, 3, 0, 1.0, 1}, &c, "class 'sad' has no training clip");
    // A fraction never removes a class: every stratum keeps at least one clip.
    for (size_t i = 0; i < c.n; i++) c.label[i] = i % 4 == 0 ? 2 : (int)(i % 2); // one 'sad' clip per group
    FoldSpec tiny = {2, 3, 0, 0.01, 1};
    make(&f, &tiny, &c, 1);
    for (int k = 0; k < 2; k++) {
        int has[N_CLASSES] = {0};
        for (size_t i = 0; i < c.n; i++) has[c.label[i]] += role(&f, k, i) == ROLE_TRAIN;
        for (int cls = 0; cls < N_CLASSES; cls++)
            cr_assert_eq(has[cls], 1, "fold %d class %d: %d kept", k, cls, has[cls]);
    }
    folds_free(&f);
    corpus_free(&c);
}

Test(folds, role_names) {
    cr_assert_str_eq(fold_role_name(ROLE_TRAIN), "train");
    cr_assert_str_eq(fold_role_name(ROLE_VAL), "val");
    cr_assert_str_eq(fold_role_name(ROLE_TEST), "test");
    cr_assert_str_eq(fold_role_name(ROLE_OUT), "out");
}
