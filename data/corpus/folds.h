// The protocol split of a fine-tuning run (docs/protocols.md): group K-fold cross-validation with validation groups
// held out of each training side, and the low-resource label fraction.
//
//   folds       the distinct groups, sorted by name, are shuffled by Philox Fisher-Yates keyed by split_seed and
//               dealt round-robin: the group at shuffled position j goes to fold j mod K. Fold k's test clips are
//               those of its groups: every clip is tested exactly once.
//   validation  of the groups of the other folds, val_groups (0: round(10 %) of them, at least 1) are held out for
//               model selection, chosen by a second shuffle keyed by (split_seed, k); the rest train. At least one
//               group must be left to train.
//   fraction    of fold k's training clips and, separately, of its validation clips, each clip is kept when its rank
//               in its stratum (the clips of one class, or all of them for values) by a Philox key of (fraction_seed,
//               id) is below max(1, round(fraction x stratum size)): so for one fraction_seed a smaller fraction keeps
//               a subset of what a larger one keeps (nested), and every class keeps at least one clip. The test side
//               is never reduced.
#ifndef AVT_FOLDS_H
#define AVT_FOLDS_H

#include <stddef.h>
#include <stdint.h>
#include "base/common.h"

typedef enum { ROLE_OUT = 0, ROLE_TRAIN = 1, ROLE_VAL = 2, ROLE_TEST = 3 } FoldRole; // OUT: left out by fraction

typedef struct {
    int K;                 // folds, >= 2
    uint64_t split_seed;   // folds and validation groups
    int val_groups;        // groups held out for validation per fold; 0: about 10 % of the training groups (>= 1)
    double fraction;       // (0, 1] of each fold's training and validation clips
    uint64_t fraction_seed;
} FoldSpec;

typedef struct {
    int K;
    size_t n;              // clips
    unsigned char *role;   // (K, n) role[k * n + i]: FoldRole of clip i in fold k
    int *test_fold;        // (n) the fold that tests clip i
    size_t n_groups;
} Folds;

// n clips with ids (n, unique) and group names (n); label (n, in [0, n_classes)) and n_classes for stratification,
// or label NULL (values; n_classes and class_names unused). Folds are numbered from 0, as in test_fold and in the
// messages. -1 with err (one line; f left empty) when K < 2, val_groups < 0 or fraction is outside (0, 1], there are
// fewer groups than folds ("5 folds need at least 5 groups, the clips have 3"), no group is left to train in some
// fold (too many val_groups), or a fold's training side lacks a class that the clips hold ("fold 3: class 'SAD'
// has no training clip").
int folds_make(Folds *f, const FoldSpec *spec, size_t n, char *const *id, char *const *group, const int *label,
               int n_classes, char *const *class_names, AvtErr *err);
void folds_free(Folds *f);
// The role name for split.csv: "train", "val", "test", or "out".
const char *fold_role_name(FoldRole r);

#endif
