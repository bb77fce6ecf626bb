// Tests for data/corpus/features.c: the paper's TRILL / OpenFace CSVs, .npy arrays as features, alignment, pairs,
// and every bad-input error (.npy files themselves: test_npy.c).
// Fixtures are written into a fresh temporary directory per test (Criterion runs each test in its own process).
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/corpus/features.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(features, .init = fx_setup, .fini = test_tmpdir_remove);

static const char *fx_text(const char *name, const char *text) { return test_write(name, text, strlen(text)); }

// A failed read: rc -1, *out zeroed, and one line naming the file and the specific problem.
static void expect_err(int rc, const Features *out, const AvtErr *err, const char *file, const char *phrase) {
    cr_assert_eq(rc, -1, "expected failure (%s), got rc %d", phrase, rc);
    cr_assert_null(out->data, "out->data not cleared on error");
    cr_assert_eq(out->T, 0);
    cr_assert_eq(out->D, 0);
    cr_assert_not_null(strstr(err->msg, file), "error '%s' does not name '%s'", err->msg, file);
    cr_assert_not_null(strstr(err->msg, phrase), "error '%s' lacks '%s'", err->msg, phrase);
    cr_assert_null(strchr(err->msg, '\n'), "error '%s' spans lines", err->msg);
}

static Features garbage(void) {
    Features f = {.data = (float *)(uintptr_t)0x1234, .T = 77, .D = 99}; // must be overwritten, never freed
    return f;
}

// ---------------------------------------------------------------------------------------------------------------
// Audio CSV

Test(features, audio_csv_values_nan_rows_crlf_blank_lines) {
    const char *p = fx_text("a.csv",
                            "1.5, 2,3 ,-4\r\n"
                            "nan,1,2,3\r\n"
                            "\r\n"
                            "5,6,7,8e-1\r\n"
                            "1,NaN,2,3\n"
                            "   \n"
                            "9,10,11,-nan\n"
                            "\t-1.25 ,0,1e3,42"); // no final newline
    Features f = garbage();
    AvtErr err = {{0}};
    cr_assert_eq(features_read_audio(&f, p, 4, &err), 0, "%s", err.msg);
    cr_assert_eq(f.T, 3);
    cr_assert_eq(f.D, 4);
    const float want[3][4] = {{1.5f, 2, 3, -4}, {5, 6, 7, 0.8f}, {-1.25f, 0, 1000, 42}};
    for (int t = 0; t < 3; t++)
        for (int j = 0; j < 4; j++) cr_assert_eq(f.data[t * 4 + j], want[t][j], "row %d col %d", t, j);
    features_free(&f);
    cr_assert_null(f.data);
    cr_assert_eq(f.T, 0);
}

Test(features, audio_csv_512_exact_floats) {
    enum { T = 7, D = 512 };
    size_t cap = (size_t)T * D * 20 + 64, len = 0;
    char *text = malloc(cap);
    float *want = malloc(sizeof(float) * T * D);
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < D; j++) {
            float v = (float)sin(0.37 * t + 0.011 * j) * 3.1f; // arbitrary, not exactly decimal
            want[t * D + j] = v;
            len += (size_t)snprintf(text + len, cap - len, "%s%.9g", j ? "," : "", v);
        }
        len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    const char *p = test_write("trill.csv", text, len);
    Features f;
    AvtErr err = {{0}};
    cr_assert_eq(features_read_audio(&f, p, D, &err), 0, "%s", err.msg);
    cr_assert_eq(f.T, T);
    cr_assert_eq(f.D, D);
    cr_assert_eq(memcmp(f.data, want, sizeof(float) * T * D), 0, "values differ from the %%.9g-printed floats");
    features_free(&f);
    free(text);
    free(want);
}

Test(features, audio_csv_all_nan_gives_zero_rows) {
    const char *p = fx_text("allnan.csv", "nan,1\n2,NaN\n");
    Features f;
    AvtErr err = {{0}};
    cr_assert_eq(features_read_audio(&f, p, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(f.T, 0);
    cr_assert_eq(f.D, 2);
    features_free(&f);
}

Test(features, audio_csv_wrong_column_count_names_line) {
    const char *p = fx_text("a.csv", "1,2,3,4\n\n1,2,3\n1,2,3,4\n");
    Features f = garbage();
    AvtErr err = {{0}};
    expect_err(features_read_audio(&f, p, 4, &err), &f, &err, "a.csv:3:", "expected 4 columns, got 3");
    p = fx_text("b.csv", "1,2,3,4,5\n");
    expect_err(features_read_audio(&f, p, 4, &err), &f, &err, "b.csv:1:", "expected 4 columns, got 5");
}

Test(features, audio_csv_non_numeric_cell) {
    const char *p = fx_text("a.csv", "1,2,3\r\n\r\n4,5, abc \r\n");
    Features f = garbage();
    AvtErr err = {{0}};
    expect_err(features_read_audio(&f, p, 3, &err), &f, &err, "a.csv:3:", "column 3: 'abc' is not a number");
    p = fx_text("b.csv", "1,,3\n");
    expect_err(features_read_audio(&f, p, 3, &err), &f, &err, "b.csv:1:", "column 2: '' is not a number");
    p = fx_text("c.csv", "1,2.5x,3\n");
    expect_err(features_read_audio(&f, p, 3, &err), &f, &err, "c.csv:1:", "column 2: '2.5x' is not a number");
}

Test(features, audio_csv_empty_file) {
    Features f = garbage();
    AvtErr err = {{0}};
    const char *p = fx_text("empty.csv", "");
    expect_err(features_read_audio(&f, p, 512, &err), &f, &err, "empty.csv", "empty file (no feature rows)");
    p = fx_text("blank.csv", "\n  \r\n\n");
    expect_err(features_read_audio(&f, p, 512, &err), &f, &err, "blank.csv", "empty file (no feature rows)");
}

Test(features, missing_files) {
    Features f = garbage();
    AvtErr err = {{0}};
    const char *p = test_path("nope.csv");
    expect_err(features_read_audio(&f, p, 512, &err), &f, &err, "nope.csv", "cannot open: No such file or directory");
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "nope.csv", "cannot open: No such file or directory");
    p = test_path("nope.npy");
    expect_err(features_read_audio(&f, p, 512, &err), &f, &err, "nope.npy", "cannot open: No such file or directory");
}

// ---------------------------------------------------------------------------------------------------------------
// OpenFace 2.x CSV

#define OF_MAX_COLS 720
static char of_names[OF_MAX_COLS][24];

// The real OpenFace 2.x FeatureExtraction column list (714 columns).
static int openface_columns(void) {
    int n = 0;
    const char *head[] = {"frame", "face_id", "timestamp", "confidence", "success", "gaze_0_x", "gaze_0_y",
                          "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x", "gaze_angle_y"};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++) snprintf(of_names[n++], 24, "%s", head[i]);
    const char *eye[] = {"x", "y", "X", "Y", "Z"};
    for (int a = 0; a < 5; a++)
        for (int i = 0; i < 56; i++) snprintf(of_names[n++], 24, "eye_lmk_%s_%d", eye[a], i);
    const char *pose[] = {"pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"};
    for (int i = 0; i < 6; i++) snprintf(of_names[n++], 24, "%s", pose[i]);
    for (int a = 0; a < 5; a++)
        for (int i = 0; i < 68; i++) snprintf(of_names[n++], 24, "%s_%d", eye[a], i);
    const char *pdm[] = {"p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"};
    for (int i = 0; i < 6; i++) snprintf(of_names[n++], 24, "%s", pdm[i]);
    for (int i = 0; i < 34; i++) snprintf(of_names[n++], 24, "p_%d", i);
    const char *au_r[] = {"01", "02", "04", "05", "06", "07", "09", "10", "12",
                          "14", "15", "17", "20", "23", "25", "26", "45"};
    const char *au_c[] = {"01", "02", "04", "05", "06", "07", "09", "10", "12",
                          "14", "15", "17", "20", "23", "25", "26", "28", "45"};
    for (int i = 0; i < 17; i++) snprintf(of_names[n++], 24, "AU%s_r", au_r[i]);
    for (int i = 0; i < 18; i++) snprintf(of_names[n++], 24, "AU%s_c", au_c[i]);
    return n;
}

typedef struct {
    int row, col;
    const char *text; // replaces the cell
} Cell;

static double of_value(int row, int col) { return row * 1000.0 + col; }

// OpenFace CSV with nrows data rows, cell = row*1000 + col unless overridden; sep ", " like OpenFace or ",".
static const char *write_openface(const char *name, int nrows, const char *sep, const char *eol, const Cell *over,
                                  int nover) {
    int ncols = openface_columns();
    size_t cap = (size_t)(nrows + 1) * ncols * 16 + 64, len = 0;
    char *text = malloc(cap);
    for (int c = 0; c < ncols; c++) len += (size_t)snprintf(text + len, cap - len, "%s%s", c ? sep : "", of_names[c]);
    len += (size_t)snprintf(text + len, cap - len, "%s", eol);
    for (int r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            const char *o = NULL;
            for (int k = 0; k < nover; k++)
                if (over[k].row == r && over[k].col == c) o = over[k].text;
            if (o) len += (size_t)snprintf(text + len, cap - len, "%s%s", c ? sep : "", o);
            else len += (size_t)snprintf(text + len, cap - len, "%s%g", c ? sep : "", of_value(r, c));
        }
        len += (size_t)snprintf(text + len, cap - len, "%s", eol);
    }
    const char *p = test_write(name, text, len);
    free(text);
    return p;
}

Test(features, openface_column_list_is_real) {
    int n = openface_columns();
    cr_assert_eq(n, 714);
    cr_assert_str_eq(of_names[n - 35], "AU01_r");
    cr_assert_str_eq(of_names[n - 19], "AU45_r");
    cr_assert_str_eq(of_names[n - 18], "AU01_c");
}

// Expected result computed independently: rows 0, 6, 12, ... and columns [ncols-35, ncols-18).
static void check_subsampled(const Features *f, const int *rows, int nrows_kept) {
    int first = openface_columns() - 35;
    cr_assert_eq(f->T, nrows_kept);
    cr_assert_eq(f->D, 17);
    for (int t = 0; t < nrows_kept; t++)
        for (int k = 0; k < 17; k++)
            cr_assert_eq(f->data[t * 17 + k], (float)of_value(rows[t], first + k), "t %d k %d: %g", t, k,
                         f->data[t * 17 + k]);
}

Test(features, openface_every_6th_row_and_au_r_columns) {
    const int rows[] = {0, 6, 12, 18};
    Features f = garbage();
    AvtErr err = {{0}};
    const char *p = write_openface("v.csv", 20, ", ", "\n", NULL, 0);
    cr_assert_eq(features_read_video(&f, p, 17, &err), 0, "%s", err.msg);
    check_subsampled(&f, rows, 4);
    features_free(&f);

    p = write_openface("v2.csv", 19, ",", "\r\n", NULL, 0); // plain commas, CRLF; row 18 is still kept
    cr_assert_eq(features_read_video(&f, p, 17, &err), 0, "%s", err.msg);
    check_subsampled(&f, rows, 4);
    features_free(&f);

    for (int n = 1; n <= 13; n++) { // T = ceil(n / 6), as len(range(n)[::6])
        char name[32];
        snprintf(name, sizeof name, "n%d.csv", n);
        p = write_openface(name, n, ", ", "\n", NULL, 0);
        cr_assert_eq(features_read_video(&f, p, 17, &err), 0, "%s", err.msg);
        cr_assert_eq(f.T, (n + 5) / 6, "n = %d: T = %d", n, f.T);
        features_free(&f);
    }
}

Test(features, openface_nan_rows_dropped_after_subsampling) {
    int first = openface_columns() - 35;
    const Cell over[] = {
        {1, first, "nan"},        // row skipped by ::6: must not matter
        {5, first + 16, "-nan"},  // skipped too
        {6, first + 5, "nan"},    // kept row, AU*_r column: dropped
        {12, 5, "nan"},           // kept row, gaze column: not one of the 17, kept
        {18, first + 20, "NaN"},  // kept row, AU*_c column: kept
        {24, first + 16, "NaN"},  // kept row, last AU*_r (AU45_r): dropped
    };
    const int rows[] = {0, 12, 18, 30};
    const char *p = write_openface("v.csv", 31, ", ", "\n", over, (int)(sizeof over / sizeof *over));
    Features f;
    AvtErr err = {{0}};
    cr_assert_eq(features_read_video(&f, p, 17, &err), 0, "%s", err.msg);
    check_subsampled(&f, rows, 4);
    features_free(&f);
}

Test(features, openface_bad_header) {
    int first = openface_columns() - 35;
    snprintf(of_names[first + 2], 24, "AU03_r"); // write_openface re-reads the list: patch after it
    int ncols = 714;
    size_t cap = (size_t)ncols * 24, len = 0;
    char *text = malloc(cap);
    for (int c = 0; c < ncols; c++) len += (size_t)snprintf(text + len, cap - len, "%s%s", c ? ", " : "", of_names[c]);
    len += (size_t)snprintf(text + len, cap - len, "\n");
    for (int c = 0; c < ncols; c++) len += (size_t)snprintf(text + len, cap - len, "%s0", c ? ", " : "");
    const char *p = test_write("v.csv", text, len);
    free(text);
    Features f = garbage();
    AvtErr err = {{0}};
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "v.csv:1:",
               "not an OpenFace 2.x CSV: column 682 is 'AU03_r', expected 'AU04_r'");

    p = fx_text("audio_as_video.csv", "1,2,3\n4,5,6\n");
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "audio_as_video.csv:1:", "not an OpenFace 2.x CSV");

    // A headerless TRILL file read as video: 512 numbers where the names should be.
    char row[512 * 4 + 2];
    len = 0;
    for (int j = 0; j < 512; j++) len += (size_t)snprintf(row + len, sizeof row - len, "%s1", j ? "," : "");
    p = fx_text("trill.csv", row);
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "trill.csv:1:",
               "not an OpenFace 2.x CSV: column 478 is '1', expected 'AU01_r'");
}

Test(features, openface_expected_D_must_be_17) {
    const char *p = write_openface("v.csv", 3, ", ", "\n", NULL, 0);
    Features f = garbage();
    AvtErr err = {{0}};
    expect_err(features_read_video(&f, p, 16, &err), &f, &err, "v.csv", "expected_D is 16");
}

Test(features, openface_row_errors_name_line) {
    Features f = garbage();
    AvtErr err = {{0}};
    // Data row r sits on line r + 2. A short row that ::6 skips (row 3) is still an error.
    const char *p = write_openface("short.csv", 8, ", ", "\n", NULL, 0);
    FILE *fp = fopen(p, "ab");
    fputs("1, 2, 3\n", fp); // row 8, line 10
    fclose(fp);
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "short.csv:10:", "expected 714 columns");

    const Cell bad[] = {{6, 2, "abc"}}; // kept row, timestamp column: line 8, column 3
    p = write_openface("nonnum.csv", 8, ", ", "\n", bad, 1);
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "nonnum.csv:8:", "column 3: 'abc' is not a number");

    const Cell empty_au[] = {{0, 690, ""}};
    p = write_openface("emptycell.csv", 2, ", ", "\n", empty_au, 1);
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "emptycell.csv:2:", "column 691: '' is not a number");
}

Test(features, openface_empty) {
    Features f = garbage();
    AvtErr err = {{0}};
    const char *p = write_openface("hdr_only.csv", 0, ", ", "\n", NULL, 0);
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "hdr_only.csv", "empty file (no feature rows)");
    p = fx_text("zero.csv", "");
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "zero.csv", "empty file");
}

// ---------------------------------------------------------------------------------------------------------------
// .npy arrays as features

Test(features, npy_as_features_no_subsampling_nan_rows_dropped) {
    float a[4 * 3] = {1, 2, 3, 4, NAN, 6, 7, 8, 9, 10, 11, 12};
    const int64_t sa[2] = {4, 3};
    AvtErr err = {{0}};
    const char *p = test_path("audio.NPY"); // extension is case-insensitive
    cr_assert_eq(npy_write_f32(p, a, 2, sa, &err), 0, "%s", err.msg);
    Features f = garbage();
    cr_assert_eq(features_read_audio(&f, p, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(f.T, 3);
    cr_assert_eq(f.D, 3);
    const float want[9] = {1, 2, 3, 7, 8, 9, 10, 11, 12};
    cr_assert_eq(memcmp(f.data, want, sizeof want), 0);
    features_free(&f);

    float v[10 * 17];
    for (int i = 0; i < 10 * 17; i++) v[i] = (float)i;
    const int64_t sv[2] = {10, 17};
    p = test_path("video.npy");
    cr_assert_eq(npy_write_f32(p, v, 2, sv, &err), 0, "%s", err.msg);
    cr_assert_eq(features_read_video(&f, p, 17, &err), 0, "%s", err.msg);
    cr_assert_eq(f.T, 10); // no ::6 for .npy
    cr_assert_eq(memcmp(f.data, v, sizeof v), 0);
    features_free(&f);
}

// A .npy of another width or rank than the stream's is refused naming the file and its shape.
Test(features, npy_wrong_shape) {
    const float v[6] = {0};
    const int64_t s2[2] = {3, 2}, s3[3] = {1, 3, 2}, s1[1] = {6};
    Features f = garbage();
    AvtErr err = {{0}};
    const char *p = test_path("wd.npy");
    cr_assert_eq(npy_write_f32(p, v, 2, s2, &err), 0, "%s", err.msg);
    expect_err(features_read_audio(&f, p, 512, &err), &f, &err, "wd.npy", "expected 512 columns, got shape (3, 2)");
    expect_err(features_read_video(&f, p, 17, &err), &f, &err, "wd.npy", "expected 17 columns");
    p = test_path("r3.npy");
    cr_assert_eq(npy_write_f32(p, v, 3, s3, &err), 0, "%s", err.msg);
    expect_err(features_read_audio(&f, p, 2, &err), &f, &err, "r3.npy",
               "expected a 2-D (T, 2) array, got shape (1, 3, 2)");
    p = test_path("r1.npy");
    cr_assert_eq(npy_write_f32(p, v, 1, s1, &err), 0, "%s", err.msg);
    expect_err(features_read_audio(&f, p, 2, &err), &f, &err, "r1.npy", "got shape (6,)");
    p = fx_text("magic.npy", "1,2\n3,4\n"); // a reader error comes through as is
    expect_err(features_read_audio(&f, p, 2, &err), &f, &err, "magic.npy", "not a .npy file");
}

// ---------------------------------------------------------------------------------------------------------------
// One utterance: both files, cut to the common length

Test(features, pair_cut_to_common_length) {
    float a[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8}, v[3 * 17] = {0};
    for (int i = 0; i < 3 * 17; i++) v[i] = (float)i;
    const int64_t sa[2] = {4, 2}, sv[2] = {3, 17};
    AvtErr err = {{0}};
    const char *pa = test_path("a.npy"), *pv = test_path("v.npy");
    cr_assert_eq(npy_write_f32(pa, a, 2, sa, &err), 0, "%s", err.msg);
    cr_assert_eq(npy_write_f32(pv, v, 2, sv, &err), 0, "%s", err.msg);
    Features fa = garbage(), fv = garbage();
    cr_assert_eq(features_read_pair(&fa, &fv, pa, pv, 2, 17, &err), 0, "%s", err.msg);
    cr_expect(fa.T == 3 && fv.T == 3 && fa.D == 2 && fv.D == 17, "T %d, %d", fa.T, fv.T);
    cr_expect_eq(memcmp(fa.data, a, 3 * 2 * sizeof(float)), 0);
    cr_expect_eq(memcmp(fv.data, v, sizeof v), 0);
    features_free(&fa);
    features_free(&fv);
}

Test(features, pair_errors_name_the_file) {
    float a[2 * 2] = {NAN, 1, 2, NAN}, v[2 * 17] = {0};
    const int64_t sa[2] = {2, 2}, sv[2] = {2, 17};
    AvtErr err = {{0}};
    const char *pa = test_path("a.npy"), *pv = test_path("v.npy");
    cr_assert_eq(npy_write_f32(pa, a, 2, sa, &err), 0, "%s", err.msg);
    cr_assert_eq(npy_write_f32(pv, v, 2, sv, &err), 0, "%s", err.msg);
    Features fa = garbage(), fv = garbage();
    // Every audio row holds a NaN: nothing in common, an error naming both files.
    expect_err(features_read_pair(&fa, &fv, pa, pv, 2, 17, &err), &fa, &err, "a.npy + ",
               "v.npy: no common steps left after dropping NaN rows");
    cr_expect_null(fv.data);
    fa = garbage(), fv = garbage();
    expect_err(features_read_pair(&fa, &fv, pa, test_path("none.csv"), 2, 17, &err), &fv, &err, "none.csv",
               "cannot open");
    cr_expect_null(fa.data, "the audio read first is freed when the video fails");
    fa = garbage(), fv = garbage();
    expect_err(features_read_pair(&fa, &fv, test_path("none.npy"), pv, 2, 17, &err), &fa, &err, "none.npy",
               "cannot open");
    cr_expect_null(fv.data);
}

// ---------------------------------------------------------------------------------------------------------------

static Features make_features(int T, int D, float base) {
    Features f = {.data = malloc(sizeof(float) * (size_t)(T ? T : 1) * (size_t)D), .T = T, .D = D};
    for (int i = 0; i < T * D; i++) f.data[i] = base + (float)i;
    return f;
}

Test(features, align_cuts_to_shorter_keeping_first_rows) {
    Features a = make_features(5, 4, 0), v = make_features(3, 17, 100);
    features_align(&a, &v);
    cr_assert_eq(a.T, 3);
    cr_assert_eq(v.T, 3);
    cr_assert_eq(a.D, 4);
    cr_assert_eq(v.D, 17);
    for (int i = 0; i < 3 * 4; i++) cr_assert_eq(a.data[i], (float)i);
    for (int i = 0; i < 3 * 17; i++) cr_assert_eq(v.data[i], 100.0f + (float)i);
    features_free(&a);
    features_free(&v);

    a = make_features(2, 4, 0);
    v = make_features(6, 17, 0);
    features_align(&a, &v);
    cr_assert_eq(a.T, 2);
    cr_assert_eq(v.T, 2);
    features_free(&a);
    features_free(&v);

    a = make_features(0, 4, 0);
    v = make_features(6, 17, 0);
    features_align(&a, &v);
    cr_assert_eq(v.T, 0);
    features_free(&a);
    features_free(&v);
}
