// Fine-tuning targets from a store's labels.csv (written by avt prepare: the --layout readers, or a --from-csv
// metadata file with a header): header "id,<columns>", then one row per utterance of the store, keyed by id.
//
// A target is one or more columns. Auto kind: one column whose non-empty values are not all numbers is a class
// label (the classes are its distinct values, sorted by strcmp); numeric columns are regression targets, one output
// per column. Rows whose target is empty (or, for values, not a finite number: "nan", "inf") are dropped and
// counted, as MSP-IMPROV turns without ratings. The group column (speaker, session, ...) names each clip's group
// for the protocol split (data/corpus/folds.h); "speaker" falls back to the store's speaker table when labels.csv
// has no such column.
#ifndef AVT_LABELS_H
#define AVT_LABELS_H

#include <stddef.h>
#include "base/common.h"
#include "data/corpus/store.h"

typedef enum { TARGET_AUTO = -1, TARGET_CLASSES = 0, TARGET_VALUES = 1 } TargetKind;

typedef struct {
    TargetKind kind;  // TARGET_CLASSES or TARGET_VALUES
    int n_out;        // classes: how many; values: target columns
    char **names;     // (n_out) class names (sorted) or target column names
    size_t n;         // clips with a usable target (every one of them in the store)
    size_t *item;     // (n) store index of each clip, ascending
    char **id;        // (n) its id
    char **group;     // (n) its group's name
    int *label;       // (n) classes: class index in names; NULL for values
    float *y;         // (n, n_out) values; NULL for classes
    size_t n_dropped; // rows of labels.csv with an empty or non-finite target
    size_t *count;    // (n_out) classes: clips per class; NULL for values
} Labels;

// Reads path (DIR/labels.csv of the store s) for targets (comma-separated column names) and group_col. kind forces
// classes or values, or TARGET_AUTO. -1 with err, one line naming the file, on: a missing, unreadable or empty file,
// a malformed header (first column not id, a column named twice) or row (field count, quoting), a duplicate id, an
// unknown target or group column (the line lists the columns there are), a target column named twice, classes asked
// of several target columns, several target columns or TARGET_VALUES with a value that is not a number (naming the
// line, column and value), an id of labels.csv that the store does not hold or an utterance of the store that
// labels.csv does not list (naming the first and counting them), fewer than two classes, no usable row at all, an
// empty group name (of a clip kept).
int labels_load(Labels *L, const char *path, const Store *s, const char *targets, const char *group_col,
                TargetKind kind, AvtErr *err);
void labels_free(Labels *L);

#endif
