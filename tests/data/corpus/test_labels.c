// Tests for data/corpus/labels.c: fine-tuning targets from a store's labels.csv (classes, values, dropped rows,
// groups) and each error it refuses, one line naming the file.
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/labels.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(labels, .init = fx_setup, .fini = test_tmpdir_remove);

static const char *fx_text(const char *name, const char *text) {
    const char *p = test_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "cannot create %s", p);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    return p;
}

// A store in the test directory of n one-step utterances u1 ... un, speakers from spk (one per utterance).
static Store *fx_store(size_t n, const char *const *spk) {
    StoreWriter *w;
    AvtErr err;
    const char *dir = test_path("store");
    cr_assert_eq(store_writer_open(&w, dir, STORE_F32, 2, 1, 4, &err), 0, "%s", err.msg);
    const float a[2] = {1, 2}, v[1] = {3};
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "u%zu", i + 1);
        cr_assert_eq(store_writer_add(w, id, spk[i], 1, a, v, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(store_writer_finish(w, &err), 0, "%s", err.msg);
    Store *s;
    cr_assert_eq(store_open(&s, dir, &err), 0, "%s", err.msg);
    return s;
}

static const char *const SPK[] = {"s1", "s1", "s2", "s2", "s3", "s3"};

static void expect_strs(char *const *got, const char *const *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) cr_expect_str_eq(got[i], want[i], "%s %zu", what, i);
}

// labels_load refuses the file: one line, starting with its path, holding phrase.
static void expect_error(const char *text, size_t n_store, const char *targets, const char *group, TargetKind kind,
                         const char *phrase) {
    Store *s = fx_store(n_store, SPK);
    const char *p = fx_text("labels.csv", text);
    Labels L;
    AvtErr err;
    cr_assert_eq(labels_load(&L, p, s, targets, group, kind, &err), -1, "accepted");
    cr_expect_eq(strncmp(err.msg, p, strlen(p)), 0, "'%s' does not start with the file's path", err.msg);
    cr_expect_not_null(strstr(err.msg, phrase), "'%s' lacks '%s'", err.msg, phrase);
    cr_expect_null(strchr(err.msg, '\n'), "'%s' spans lines", err.msg);
    cr_expect_null(L.names);
    cr_expect_eq(L.n, 0);
    store_close(s);
}

// Classes: the distinct values sorted by strcmp, each clip's index and the counts; rows in any order come out in
// store order; quoted fields are read as written.
Test(labels, classes_sorted_and_counted) {
    Store *s = fx_store(5, SPK);
    const char *p = fx_text("labels.csv", "id,speaker,emotion,level\n"
                                          "u3,s2,SAD,1\n"
                                          "u1,s1,ANG,2\n"
                                          "\"u2\",s1,\"HAP\",1\n"
                                          "u5,s3,ANG,1\n"
                                          "u4,s2,ANG,2\n");
    Labels L;
    AvtErr err;
    cr_assert_eq(labels_load(&L, p, s, "emotion", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    cr_expect_eq(L.kind, TARGET_CLASSES);
    cr_assert_eq(L.n_out, 3);
    expect_strs(L.names, (const char *[]){"ANG", "HAP", "SAD"}, 3, "class");
    cr_assert_eq(L.n, 5);
    const int label[] = {0, 1, 2, 0, 0};
    for (size_t i = 0; i < L.n; i++) {
        cr_expect_eq(L.item[i], i);
        cr_expect_eq(L.label[i], label[i], "clip %zu", i);
    }
    expect_strs(L.id, (const char *[]){"u1", "u2", "u3", "u4", "u5"}, 5, "id");
    expect_strs(L.group, (const char *[]){"s1", "s1", "s2", "s2", "s3"}, 5, "group");
    cr_expect_eq(L.count[0], 3);
    cr_expect_eq(L.count[1], 1);
    cr_expect_eq(L.count[2], 1);
    cr_expect_null(L.y);
    cr_expect_eq(L.n_dropped, 0);
    labels_free(&L);
    // A numeric column is values unless classes are asked for: then its fields are the class names.
    cr_assert_eq(labels_load(&L, p, s, "level", "speaker", TARGET_CLASSES, &err), 0, "%s", err.msg);
    cr_expect_eq(L.kind, TARGET_CLASSES);
    cr_assert_eq(L.n_out, 2);
    expect_strs(L.names, (const char *[]){"1", "2"}, 2, "class");
    labels_free(&L);
    store_close(s);
}

// Values: one output per target column, in the order asked; numbers with blanks, exponents and signs.
Test(labels, values_from_several_columns) {
    Store *s = fx_store(3, SPK);
    const char *p = fx_text("labels.csv", "id,arousal,valence,category\n"
                                          "u1,1.5,-2,A\n"
                                          "u2,\" 2.5 \",1e-1,H\n"
                                          "u3,+3,4.25,A\n");
    Labels L;
    AvtErr err;
    cr_assert_eq(labels_load(&L, p, s, "valence,arousal", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    cr_expect_eq(L.kind, TARGET_VALUES);
    cr_assert_eq(L.n_out, 2);
    expect_strs(L.names, (const char *[]){"valence", "arousal"}, 2, "target");
    cr_assert_eq(L.n, 3);
    const float want[] = {-2.0f, 1.5f, 0.1f, 2.5f, 4.25f, 3.0f};
    for (size_t k = 0; k < 6; k++) cr_expect_float_eq(L.y[k], want[k], 1e-7f, "y[%zu] = %g", k, (double)L.y[k]);
    cr_expect_null(L.label);
    cr_expect_null(L.count);
    expect_strs(L.group, (const char *[]){"s1", "s1", "s2"}, 3, "group from the store's speakers");
    labels_free(&L);
    cr_assert_eq(labels_load(&L, p, s, "arousal", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    cr_expect_eq(L.kind, TARGET_VALUES, "one numeric column: a regression target");
    cr_expect_eq(L.n_out, 1);
    labels_free(&L);
    store_close(s);
}

// Rows whose target is empty, or for values not a finite number, are dropped and counted.
Test(labels, empty_and_nan_targets_dropped) {
    Store *s = fx_store(6, SPK);
    const char *p = fx_text("labels.csv", "id,speaker,category,arousal,valence\n"
                                          "u1,s1,A,1,2\n"
                                          "u2,s1,,nan,2\n"
                                          "u3,s2,H,2,\n"
                                          "u4,s2,A,inf,3\n"
                                          "u5,s3,,3,-inf\n"
                                          "u6,s3,N,4,5\n");
    Labels L;
    AvtErr err;
    cr_assert_eq(labels_load(&L, p, s, "arousal,valence", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    cr_expect_eq(L.n_dropped, 4);
    cr_assert_eq(L.n, 2);
    cr_expect_eq(L.item[0], 0);
    cr_expect_eq(L.item[1], 5);
    cr_expect_float_eq(L.y[2], 4.0f, 0.0f);
    cr_expect_float_eq(L.y[3], 5.0f, 0.0f);
    labels_free(&L);
    cr_assert_eq(labels_load(&L, p, s, "category", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    cr_expect_eq(L.kind, TARGET_CLASSES);
    cr_expect_eq(L.n_dropped, 2);
    cr_assert_eq(L.n, 4);
    expect_strs(L.id, (const char *[]){"u1", "u3", "u4", "u6"}, 4, "id");
    labels_free(&L);
    // "nan" alone in a column: still numbers, so values, and that row dropped.
    cr_assert_eq(labels_load(&L, p, s, "arousal", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    cr_expect_eq(L.kind, TARGET_VALUES);
    cr_expect_eq(L.n_dropped, 2);
    labels_free(&L);
    store_close(s);
}

// The group from a column of labels.csv, or for "speaker" without such a column the store's speaker table.
Test(labels, group_from_column_or_store_speakers) {
    Store *s = fx_store(4, SPK);
    const char *p = fx_text("labels.csv", "id,session,emotion\n"
                                          "u1,S01,ANG\n"
                                          "u2,S02,HAP\n"
                                          "u3,S01,ANG\n"
                                          "u4,S03,HAP\n");
    Labels L;
    AvtErr err;
    cr_assert_eq(labels_load(&L, p, s, "emotion", "session", TARGET_AUTO, &err), 0, "%s", err.msg);
    expect_strs(L.group, (const char *[]){"S01", "S02", "S01", "S03"}, 4, "group");
    labels_free(&L);
    cr_assert_eq(labels_load(&L, p, s, "emotion", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    expect_strs(L.group, (const char *[]){"s1", "s1", "s2", "s2"}, 4, "group");
    labels_free(&L);
    // A speaker column wins over the store's table.
    p = fx_text("labels.csv", "id,speaker,emotion\nu1,x,ANG\nu2,y,HAP\nu3,x,ANG\nu4,y,HAP\n");
    cr_assert_eq(labels_load(&L, p, s, "emotion", "speaker", TARGET_AUTO, &err), 0, "%s", err.msg);
    expect_strs(L.group, (const char *[]){"x", "y", "x", "y"}, 4, "group");
    labels_free(&L);
    store_close(s);
}

// ---- errors: one line naming the file ----

static const char *CREMAD = "id,speaker,sentence,emotion,level\n"
                            "u1,s1,DFA,ANG,XX\n"
                            "u2,s1,IEO,HAP,HI\n"
                            "u3,s2,DFA,SAD,LO\n";

Test(labels, error_missing_file) {
    Store *s = fx_store(1, SPK);
    Labels L;
    AvtErr err;
    cr_assert_eq(labels_load(&L, test_path("none.csv"), s, "emotion", "speaker", TARGET_AUTO, &err), -1);
    cr_expect_not_null(strstr(err.msg, "none.csv: cannot open: No such file or directory"), "%s", err.msg);
    store_close(s);
}

Test(labels, error_unknown_target_column) {
    char want[640];
    snprintf(want, sizeof want, "%s: no column 'emotoin' (columns: id, speaker, sentence, emotion, level)",
             test_path("labels.csv"));
    expect_error(CREMAD, 3, "emotoin", "speaker", TARGET_AUTO, want);
}

Test(labels, error_unknown_group_column) {
    expect_error(CREMAD, 3, "emotion", "sesion", TARGET_AUTO,
                 ": no column 'sesion' (columns: id, speaker, sentence, emotion, level)");
}

Test(labels, error_target_column_named_twice) {
    expect_error("id,a,b\nu1,1,2\n", 1, "a,b,a", "speaker", TARGET_AUTO, ": target column 'a' named twice");
}

Test(labels, error_several_columns_as_classes) {
    expect_error("id,a,b\nu1,1,2\n", 1, "a,b", "speaker", TARGET_CLASSES,
                 ": classes come from one target column, not 2 ('a,b')");
}

Test(labels, error_non_numeric_value) {
    const char *text = "id,arousal,valence\nu1,1,2\nu2,3,high\n";
    expect_error(text, 2, "arousal,valence", "speaker", TARGET_AUTO, ":3: column 'valence': 'high' is not a number");
    expect_error("id,emotion\nu1,1\nu2,HAP\n", 2, "emotion", "speaker", TARGET_VALUES,
                 ":3: column 'emotion': 'HAP' is not a number");
}

Test(labels, error_id_missing_from_store) {
    expect_error("id,emotion\nu1,ANG\nx9,HAP\nu2,SAD\ny7,HAP\n", 2, "emotion", "speaker", TARGET_AUTO,
                 ":3: id 'x9' is not in the store (2 rows with ids it lacks)");
}

Test(labels, error_store_utterance_not_listed) {
    expect_error("id,emotion\nu1,ANG\nu3,SAD\n", 4, "emotion", "speaker", TARGET_AUTO,
                 ": utterance 'u2' of the store is not listed (2 of its 4 utterances are not)");
}

Test(labels, error_duplicate_id) {
    expect_error("id,emotion\nu1,ANG\nu2,HAP\nu1,SAD\n", 2, "emotion", "speaker", TARGET_AUTO,
                 ":4: duplicate id 'u1' (first on line 2)");
}

Test(labels, error_fewer_than_two_classes) {
    expect_error("id,emotion\nu1,ANG\nu2,ANG\nu3,\n", 3, "emotion", "speaker", TARGET_AUTO,
                 ": column 'emotion' holds fewer than two classes ('ANG' only)");
}

Test(labels, error_no_usable_row) {
    expect_error("id,arousal\nu1,nan\nu2,\n", 2, "arousal", "speaker", TARGET_AUTO,
                 ": no row has a usable target ('arousal'; 2 dropped)");
}

Test(labels, error_empty_group) {
    expect_error("id,session,emotion\nu1,S1,ANG\nu2,,HAP\n", 2, "emotion", "session", TARGET_AUTO,
                 ":3: id 'u2' has an empty group ('session')");
}

Test(labels, error_malformed_row) {
    expect_error("id,emotion\nu1,ANG\nu2,HAP,extra\n", 2, "emotion", "speaker", TARGET_AUTO,
                 ":3: expected 2 fields as the header, got 3");
    expect_error("id,emotion\nu1,ANG\nu2,\"HAP\"x\n", 2, "emotion", "speaker", TARGET_AUTO, ":3: malformed quoting");
    expect_error("name,emotion\nu1,ANG\n", 1, "emotion", "speaker", TARGET_AUTO,
                 ":1: the first column is 'name', not 'id'");
    expect_error("", 1, "emotion", "speaker", TARGET_AUTO, ": empty (no header)");
}
