// Tests for data/media/cascade.c, cascade_xml.c and face.c: the detector window for window against OpenCV's
// CascadeClassifier on real photos (tests/reference/face_ref.py), its AVX2 and generic evaluators against each
// other, cascade XML errors, and the face track on a synthetic moving-face sequence.
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "data/media/cascade.h"
#include "data/media/face.h"
#include "tests/testutil.h"

#define LBP_XML "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"
#define HAAR_XML "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
#define ASTRONAUT "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
#define HOPPER "/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg"
#define ICE "/usr/share/doc/facedetect/examples/640px-IceBlockNearJoekullsarlon.jpg"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(face, .init = fx_setup, .fini = test_tmpdir_remove);

// Binary PGM (P5, maxval 255) as written by face_ref.py.
static uint8_t *read_pgm(const char *path, int *w, int *h) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    int maxv;
    cr_assert_eq(fscanf(f, "P5 %d %d %d", w, h, &maxv), 3);
    fgetc(f);
    size_t n = (size_t)*w * (size_t)*h;
    uint8_t *g = malloc(n);
    cr_assert_eq(fread(g, 1, n, f), n);
    fclose(f);
    return g;
}

static int cmp_box(const void *a, const void *b) { return memcmp(a, b, 4 * sizeof(int)); }

// Boxes as sorted (x, y, w, h) rows: OpenCV's raw windows come in thread order.
static int read_boxes(const char *path, int (*r)[4], int max) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    int n = 0;
    while (n < max && fscanf(f, "%d %d %d %d", &r[n][0], &r[n][1], &r[n][2], &r[n][3]) == 4) n++;
    fclose(f);
    qsort(r, (size_t)n, sizeof *r, cmp_box);
    return n;
}

// Exactly OpenCV's boxes: every window the cascade accepts (minNeighbors 0, ungrouped) and the grouped boxes
// (minNeighbors 3), on two face photos and a face-free one.
static void compare_with_opencv(const char *xml, const char *tag) {
    const char *imgs[] = {ASTRONAUT, HOPPER, ICE};
    enum { NI = 3, MAXB = 4096 };
    cr_assert_eq(test_run("%s tests/reference/face_ref.py %s %s %s %s %s 2>/dev/null", test_python(), test_path(""),
                          xml, imgs[0], imgs[1], imgs[2]), 0);
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, xml, &err), 0, "%s", err.msg);
    int (*ref)[4] = malloc(MAXB * sizeof *ref), (*got)[4] = malloc(MAXB * sizeof *got);
    FaceBox *b = malloc(MAXB * sizeof *b);
    int n_raw = 0;
    for (int i = 0; i < NI; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%d.pgm", i);
        int w, h;
        uint8_t *g = read_pgm(test_path(name), &w, &h);
        for (int grouped = 0; grouped < 2; grouped++) {
            snprintf(name, sizeof name, "%s%d.txt", grouped ? "boxes" : "raw", i);
            int nref = read_boxes(test_path(name), ref, MAXB);
            CascadeParams p = cascade_default_params();
            p.min_neighbors = grouped ? 3 : 0;
            int n = cascade_detect(&c, g, w, h, &p, b, MAXB);
            cr_assert_leq(n, MAXB);
            for (int k = 0; k < n; k++) got[k][0] = b[k].x, got[k][1] = b[k].y, got[k][2] = b[k].w, got[k][3] = b[k].h;
            qsort(got, (size_t)n, sizeof *got, cmp_box);
            fprintf(stderr, "%s %s: %s: OpenCV %d, avt %d\n", tag, imgs[i], grouped ? "boxes" : "raw windows", nref, n);
            cr_expect_eq(n, nref, "%s %s: %d %s, OpenCV %d", tag, imgs[i], n, grouped ? "boxes" : "raw windows", nref);
            for (int k = 0; k < n && k < nref; k++)
                cr_expect(memcmp(got[k], ref[k], sizeof got[k]) == 0, "%s %s: %s %d: %d %d %d %d, OpenCV %d %d %d %d",
                          tag, imgs[i], grouped ? "box" : "raw window", k, got[k][0], got[k][1], got[k][2],
                          got[k][3], ref[k][0], ref[k][1], ref[k][2], ref[k][3]);
            if (grouped) cr_expect_eq(nref, i == 2 ? 0 : 1, "%s %s: OpenCV's face count changed", tag, imgs[i]);
            else n_raw += nref;
        }
        free(g);
    }
    cr_expect_gt(n_raw, 50, "%s: too few raw windows to compare", tag);
    free(ref);
    free(got);
    free(b);
    cascade_free(&c);
}

Test(face, lbp_matches_opencv) { compare_with_opencv(LBP_XML, "lbp"); }
Test(face, haar_matches_opencv) { compare_with_opencv(HAAR_XML, "haar"); }

// The AVX2 evaluator (eight LBP windows at a time) accepts exactly the windows the one-window evaluator does: every
// raw window (no grouping), at OpenCV's step rule and at steps 1, 2 and 3, on the three photos and on crops of
// them whose widths leave partial blocks of eight at the row ends. Both paths run in this process, chosen as a
// portable build chooses them at run time (base/cpu.h).
Test(face, lbp_simd_equals_scalar) {
    if (!avt_cpu_avx2()) cr_skip_test("no AVX2 on this CPU (or AVT_CPU=generic): one evaluator only");
    const char *imgs[] = {ASTRONAUT, HOPPER, ICE};
    cr_assert_eq(test_run("%s tests/reference/face_ref.py %s %s %s %s %s 2>/dev/null", test_python(), test_path(""),
                          LBP_XML, imgs[0], imgs[1], imgs[2]), 0);
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, LBP_XML, &err), 0, "%s", err.msg);
    enum { MAXB = 20000 };
    FaceBox *a = malloc(MAXB * sizeof *a), *b = malloc(MAXB * sizeof *b);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "img%d.pgm", i);
        int w, h;
        uint8_t *g = read_pgm(test_path(name), &w, &h);
        for (int crop = 0; crop < 3; crop++) {
            int cw = w - 13 * crop, ch = h - 7 * crop; // the top-left part, rows keep the image's stride
            uint8_t *sub = malloc((size_t)cw * (size_t)ch);
            for (int y = 0; y < ch; y++) memcpy(sub + (size_t)y * cw, g + (size_t)y * w, (size_t)cw);
            for (int step = 0; step <= 3; step++) {
                CascadeParams p = cascade_default_params();
                p.min_neighbors = 0;
                p.step = step;
                avt_cpu_force_generic(0);
                int na = cascade_detect(&c, sub, cw, ch, &p, a, MAXB);
                avt_cpu_force_generic(1);
                int nb = cascade_detect(&c, sub, cw, ch, &p, b, MAXB);
                cr_assert_eq(na, nb, "image %d crop %d step %d: %d windows, generic %d", i, crop, step, na, nb);
                cr_assert_leq(na, MAXB);
                for (int k = 0; k < na; k++)
                    cr_assert(a[k].x == b[k].x && a[k].y == b[k].y && a[k].w == b[k].w && a[k].h == b[k].h,
                              "image %d crop %d step %d: window %d differs", i, crop, step, k);
                total += na;
            }
            free(sub);
        }
        free(g);
    }
    avt_cpu_force_generic(0);
    cr_expect_gt(total, 100, "too few windows to compare");
    free(a);
    free(b);
    cascade_free(&c);
}

static void expect_load_error(const char *path, const char *phrase) {
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, path, &err), -1, "%s loaded", path);
    cr_expect_not_null(strstr(err.msg, path), "error does not name the file: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, phrase), "want '%s' in: %s", phrase, err.msg);
    cr_expect_null(strchr(err.msg, '\n'), "more than one line: %s", err.msg);
}

Test(face, xml_errors) {
    expect_load_error(test_path("missing.xml"), "cannot open");
    // truncated: the first half of the real file
    cr_assert_eq(test_run("head -c $(( $(stat -c %%s %s) / 2 )) %s > %s", LBP_XML, LBP_XML, test_path("trunc.xml")), 0);
    expect_load_error(test_path("trunc.xml"), "truncated XML");
    FILE *f = fopen(test_path("other.xml"), "w");
    cr_assert_not_null(f);
    fputs("<?xml version=\"1.0\"?>\n<opencv_storage><camera_matrix>1 2 3</camera_matrix></opencv_storage>\n", f);
    fclose(f);
    expect_load_error(test_path("other.xml"), "not an OpenCV cascade");
    expect_load_error("/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml", "only stump cascades");
}

// Frames of a synthetic video: gray background, the face pasted at x = 40 + 3 i, y = 60 + i; blank frames in
// [10, 13) (bridged) and [30, 42) (longer than the bridge limit).
enum { FW = 480, FH = 360, FS = 150 };
static int blank_frame(int i) { return (i >= 10 && i < 13) || (i >= 30 && i < 42); }
static void make_frame(uint8_t *fr, const uint8_t *face, int i) {
    memset(fr, 128, (size_t)FW * FH);
    if (blank_frame(i)) return;
    int x0 = 40 + 3 * i, y0 = 60 + i;
    for (int y = 0; y < FS; y++) memcpy(fr + (size_t)(y0 + y) * FW + x0, face + (size_t)y * FS, FS);
}

Test(face, track_synthetic_sequence) {
    cr_assert_eq(test_run("%s tests/reference/face_ref.py --face %s %s %d 2>/dev/null", test_python(), test_path(""),
                          HOPPER, FS), 0);
    int fw, fh;
    uint8_t *face = read_pgm(test_path("face.pgm"), &fw, &fh);
    cr_assert_eq(fw, FS);
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, LBP_XML, &err), 0, "%s", err.msg);
    // where the detector puts the face in a still frame: the reference for the track's centre
    uint8_t *fr = malloc((size_t)FW * FH);
    make_frame(fr, face, 0);
    CascadeParams p = cascade_default_params();
    FaceBox b[8];
    cr_assert_eq(cascade_detect(&c, fr, FW, FH, &p, b, 8), 1);
    double off_x = b[0].x + 0.5 * b[0].w - 40, off_y = b[0].y + 0.5 * b[0].h - 60, sz = b[0].w;

    FaceTrack t;
    face_track_init(&t, &c);
    enum { NF = 60 }; // 2.4 s at 25 fps
    double prev_x = 0;
    int present[NF], detected[NF];
    for (int i = 0; i < NF; i++) {
        make_frame(fr, face, i);
        cr_assert_eq(face_track_push(&t, fr, FW, FH, i / 25.0), 0);
        present[i] = t.alive;
        detected[i] = t.detected;
        // smooth: a few px per frame while detected; after the 3 bridged frames, alpha 0.5 x the 12 px the face
        // moved over the gap plus the lag
        if (t.alive && i > 0 && present[i - 1])
            cr_expect_leq(fabs(t.cx - prev_x), detected[i - 1] ? 6.0 : 10.0, "frame %d jumps %.1f px", i,
                          t.cx - prev_x);
        if (t.alive && !blank_frame(i) && i > 3) {
            // within a few frames of lag (alpha 0.5 trails a 3 px/frame motion by 3 px) of the true position
            cr_expect_leq(fabs(t.cx - (40 + 3 * i + off_x)), 0.15 * sz, "frame %d: cx %.1f", i, t.cx);
            cr_expect_leq(fabs(t.cy - (60 + i + off_y)), 0.15 * sz, "frame %d: cy %.1f", i, t.cy);
        }
        prev_x = t.cx;
    }
    // scans: the whole frame at frame 0 (no track), on each blank frame while the track lives (30 .. 35: the 6th
    // miss ends it), on the blank frames without a track (36 .. 41) and at frame 42 (a new track); everything else
    // is found in the region around the moving track (frames 1 .. 35 and 43 .. 59)
    cr_expect_eq(t.n_scan_full, 1 + 3 + 6 + 6 + 1);
    cr_expect_eq(t.n_scan_roi, 35 + 17);
    cr_assert_eq(face_track_push(&t, fr, FW, FH, 1.0), -1, "time going back accepted");
    for (int i = 0; i < NF; i++) {
        int want = !(i >= 30 + 5 && i < 42); // 3 blank frames bridged; of 12, the first 5 bridged
        cr_expect_eq(present[i], want, "frame %d present %d", i, present[i]);
    }
    const float *d;
    const uint8_t *pr, *cr;
    int S = face_track_steps(&t, &d, &pr, &cr);
    cr_assert_eq(S, 12); // t_k = 0.2 k <= 2.36 s
    for (int k = 0; k < S; k++) {
        int i = 5 * k; // at 25 fps step k is frame 5k
        cr_expect_eq(pr[k], present[i], "step %d", k);
        double s = 0;
        for (int j = 0; j < FACE_D; j++) {
            cr_expect(d[k * FACE_D + j] >= 0 && d[k * FACE_D + j] <= 5);
            s += d[k * FACE_D + j];
        }
        if (pr[k]) cr_expect_gt(d[k * FACE_D + 16], 0);
        else cr_expect_eq(s, 0, "no-face step %d not all zero", k);
    }
    cr_expect_eq(pr[7], 0); // frame 35: past the bridge
    cr_expect_float_eq(d[2 * FACE_D + 16], 5.f * (1.f - 1.f / 6.f), 1e-6); // frame 10: first bridged frame
    face_track_free(&t);
    cascade_free(&c);
    free(fr);
    free(face);
}

static int steps_for(double fps, double seconds) {
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, LBP_XML, &err), 0, "%s", err.msg);
    uint8_t fr[48 * 64] = {0};
    FaceTrack t;
    face_track_init(&t, &c);
    int nf = (int)lrint(fps * seconds);
    for (int i = 0; i < nf; i++) cr_assert_eq(face_track_push(&t, fr, 64, 48, i / fps), 0);
    const uint8_t *pr;
    int S = face_track_steps(&t, NULL, &pr, NULL);
    for (int k = 0; k < S; k++) cr_expect_eq(pr[k], 0);
    face_track_free(&t);
    cascade_free(&c);
    return S;
}

Test(face, five_steps_per_second) {
    cr_expect_eq(steps_for(25, 3.0), 15);
    cr_expect_eq(steps_for(30, 3.0), 15);
    cr_expect_eq(steps_for(29.97, 3.0), 15);
    cr_expect_eq(steps_for(25, 0.04), 1);
    cr_expect_eq(steps_for(25, 0.24), 2); // frames 0 .. 0.2 s
}
