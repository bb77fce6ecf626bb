// Tests for data/corpus/npy.c: .npy float32 files byte for byte as numpy writes them, every rank, versions 1 and 2,
// and every damaged or unsupported file refused with one line naming it.
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/npy.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(npy, .init = fx_setup, .fini = test_tmpdir_remove);

// Raw .npy with the given header dict (padded like numpy) and payload; version 1 or 2.
static const char *write_raw_npy(const char *name, int version, const char *dict, const void *data, size_t nbytes) {
    size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64;
    unsigned char *b = calloc(1, total + nbytes + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    size_t hl = total - pre;
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', total - pre - dl - 1);
    b[total - 1] = '\n';
    if (nbytes) memcpy(b + total, data, nbytes);
    const char *p = test_write(name, b, total + nbytes);
    free(b);
    return p;
}

Test(npy, write_matches_numpy_bytes) {
    const float v[6] = {0, 1, 2, 3, 4, 5};
    const int64_t shape[2] = {2, 3};
    AvtErr err = {{0}};
    const char *p = test_path("a.npy");
    cr_assert_eq(npy_write_f32(p, v, 2, shape, &err), 0, "%s", err.msg);
    size_t n;
    unsigned char *b = (unsigned char *)test_slurp(p, &n);
    // np.save(np.arange(6, dtype='<f4').reshape(2, 3)) from numpy 1.24: 128-byte header, then the data.
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    cr_assert_eq(n, 128 + sizeof v);
    cr_assert_eq(memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10), 0);
    cr_assert_eq(memcmp(b + 10, dict, strlen(dict)), 0);
    for (size_t i = 10 + strlen(dict); i < 127; i++) cr_assert_eq(b[i], ' ');
    cr_assert_eq(b[127], '\n');
    cr_assert_eq(memcmp(b + 128, v, sizeof v), 0);
    free(b);
    // Atomic write: no temporary left behind.
    cr_assert_eq(test_count_files(), 1);
}

Test(npy, round_trip_ranks) {
    AvtErr err = {{0}};
    float buf[2 * 3 * 4];
    for (int i = 0; i < 24; i++) buf[i] = (float)i * 0.5f - 3.25f;
    buf[5] = NAN; // npy_read_f32 returns raw data, NaN included
    const int64_t shapes[][8] = {{0}, {24}, {4, 6}, {2, 3, 4}, {0, 7}, {1, 1, 2, 1, 3, 1, 2, 2}};
    const int ndims[] = {0, 1, 2, 3, 2, 8};
    for (int s = 0; s < 6; s++) {
        const char *p = test_path("r.npy");
        cr_assert_eq(npy_write_f32(p, buf, ndims[s], shapes[s], &err), 0, "%s", err.msg);
        size_t n;
        unsigned char *raw = (unsigned char *)test_slurp(p, &n);
        size_t count = 1;
        for (int i = 0; i < ndims[s]; i++) count *= (size_t)shapes[s][i];
        size_t hdr = n - count * sizeof(float);
        cr_assert_eq(hdr % 64, 0, "data offset %zu not 64-aligned", hdr);
        cr_assert_eq(raw[hdr - 1], '\n');
        free(raw);

        float *data = NULL;
        int ndim = -1;
        int64_t shape[8] = {0};
        cr_assert_eq(npy_read_f32(p, &data, &ndim, shape, &err), 0, "%s", err.msg);
        cr_assert_eq(ndim, ndims[s]);
        for (int i = 0; i < ndim; i++) cr_assert_eq(shape[i], shapes[s][i]);
        cr_assert_not_null(data);
        cr_assert_eq(memcmp(data, buf, count * sizeof(float)), 0, "shape %d", s);
        free(data);
    }
}

Test(npy, reads_version_2_and_extra_header_spacing) {
    const float v[4] = {1, 2, 3, 4};
    AvtErr err = {{0}};
    const char *dict = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": ( 2 , 2 )}";
    const char *p = write_raw_npy("v2.npy", 2, dict, v, sizeof v);
    float *data;
    int ndim;
    int64_t shape[8];
    cr_assert_eq(npy_read_f32(p, &data, &ndim, shape, &err), 0, "%s", err.msg);
    cr_assert_eq(ndim, 2);
    cr_assert_eq(shape[0], 2);
    cr_assert_eq(shape[1], 2);
    cr_assert_eq(memcmp(data, v, sizeof v), 0);
    free(data);
}

// npy_read_f32 of path fails, leaves *data NULL, and says phrase in one line naming file.
static void expect_bad(const char *path, const char *file, const char *phrase) {
    float *data = (float *)(uintptr_t)0x1;
    int ndim = 3;
    int64_t shape[NPY_MAX_NDIM];
    AvtErr err = {{0}};
    cr_assert_eq(npy_read_f32(path, &data, &ndim, shape, &err), -1, "%s: read, expected '%s'", file, phrase);
    cr_assert_null(data);
    cr_expect_not_null(strstr(err.msg, file), "error '%s' does not name '%s'", err.msg, file);
    cr_expect_not_null(strstr(err.msg, phrase), "error '%s' lacks '%s'", err.msg, phrase);
    cr_expect_null(strchr(err.msg, '\n'), "error '%s' spans lines", err.msg);
}

Test(npy, bad_inputs) {
    const float v[12] = {0};
    expect_bad(test_path("nope.npy"), "nope.npy", "cannot open: No such file or directory");
    const char *p = write_raw_npy("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", v,
                                  sizeof v);
    expect_bad(p, "f8.npy", "dtype '<f8' is not supported");
    p = write_raw_npy("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }", v, 24);
    expect_bad(p, "be.npy", "dtype '>f4' is not supported");
    p = write_raw_npy("i4.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", v, 12);
    expect_bad(p, "i4.npy", "dtype '<i4' is not supported");
    p = write_raw_npy("fo.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", v, 24);
    expect_bad(p, "fo.npy", "fortran_order True is not supported");
    p = write_raw_npy("tr.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", v, 20);
    expect_bad(p, "tr.npy", "truncated data: expected 24 bytes, found 20");
    p = write_raw_npy("long.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", v, 20);
    expect_bad(p, "long.npy", "4 unexpected bytes after the data");
    p = write_raw_npy("huge.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 512), }", v, 24);
    expect_bad(p, "huge.npy", "truncated data");
    p = test_write("magic.npy", "1,2\n3,4\n", 8);
    expect_bad(p, "magic.npy", "not a .npy file");
    p = test_write("hdr.npy", "\x93NUMPY\x01\x00\x76\x00{'descr'", 17);
    expect_bad(p, "hdr.npy", "truncated .npy header");
    p = test_write("v9.npy", "\x93NUMPY\x09\x00\x76\x00", 10);
    expect_bad(p, "v9.npy", "unsupported .npy version 9.0");
}

Test(npy, write_errors) {
    AvtErr err = {{0}};
    const float v[1] = {0};
    const int64_t shape[1] = {1};
    cr_assert_eq(npy_write_f32("/nonexistent_dir_avt/x.npy", v, 1, shape, &err), -1);
    cr_assert_not_null(strstr(err.msg, "/nonexistent_dir_avt/x.npy"), "%s", err.msg);
    cr_assert_eq(npy_write_f32(test_path("x.npy"), v, 9, shape, &err), -1);
    cr_assert_not_null(strstr(err.msg, "rank-9"), "%s", err.msg);
}

