// safetensors reader/writer: exact round trip, one test per class of bad input (each must fail with
// one line naming the file and the problem, leaving st empty), truncation at every length, failed writes.
#include <criterion/criterion.h>

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"
#include "engine/safetensors.h"

static const char *st_dir;
static void st_setup(void) { st_dir = test_tmpdir(); }
TestSuite(safetensors, .init = st_setup, .fini = test_tmpdir_remove);

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (n) cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

// A file with the given header length field, header text and data_len zero bytes of data.
static const char *write_raw_len(const char *name, uint64_t hlen_field, const char *hdr, size_t data_len) {
    const char *path = test_path(name);
    size_t h = strlen(hdr);
    size_t total = 8 + h + data_len;
    unsigned char *b = calloc(total, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen_field >> (8 * i));
    memcpy(b + 8, hdr, h);
    write_bytes(path, b, total);
    free(b);
    return path;
}

static const char *write_raw(const char *name, const char *hdr, size_t data_len) {
    return write_raw_len(name, strlen(hdr), hdr, data_len);
}

static void expect_fail(const char *path, const char *phrase) {
    SafeTensors st;
    AvtErr err = {{0}};
    memset(&st, 0x5a, sizeof st); // garbage in: st_open must not rely on it being zeroed
    int rc = st_open(&st, path, &err);
    cr_assert_eq(rc, -1, "expected failure for %s (want '%s'), got rc %d", path, phrase, rc);
    cr_assert_not_null(strstr(err.msg, path), "message lacks the path: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, phrase), "message lacks '%s': %s", phrase, err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "message is not one line: %s", err.msg);
    cr_assert(st.n == 0 && st.t == NULL && st.buf == NULL && st.n_meta == 0 && st.path == NULL,
              "st not left empty");
    st_close(&st);
    st_close(&st); // closing an empty st twice is harmless
}

static void expect_hdr_fail(const char *hdr, size_t data_len, const char *phrase) {
    expect_fail(write_raw("bad.safetensors", hdr, data_len), phrase);
}

static float *ramp(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * (float)i - 0.5f * (float)(i % 7) + 1e-7f * (float)i;
    return p;
}

// ---------------------------------------------------------------------------------------------
// Round trip

Test(safetensors, round_trip) {
    float scalar = -3.25f;
    float *vec = ramp(7, 0.5f), *mat = ramp(3 * 5, -1.5f), *col = ramp(4 * 512 * 1, 0.001f),
          *t4 = ramp(2 * 3 * 2 * 2, 7.0f);
    vec[3] = -0.0f;
    vec[4] = 1e-40f; // subnormal: bytes must survive unchanged
    StWrite w[] = {
        {"proj_a.weight", 2, {3, 5}, mat},
        {"x.scalar", 0, {0}, &scalar},
        {"layers.0.bias", 1, {7}, vec},
        {"feat", 3, {4, 512, 1}, col},
        {"four \"quoted\" \\name", 4, {2, 3, 2, 2}, t4},
    };
    const char *mk[] = {"embed_size", "n_code", "note"};
    const char *mv[] = {"240", "3", "line1\nline2 \"q\" \\ \x01"};
    const char *path = test_path("rt.safetensors");
    AvtErr err = {{0}};
    cr_assert_eq(st_write(path, w, 5, mk, mv, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(test_count_files(), 1, "temp file left behind");

    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    cr_assert_eq(st.n, 5);
    cr_assert_eq(st.n_meta, 3);
    // Header layout: metadata first, total header padded to a multiple of 8, data right after.
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | st.buf[i];
    cr_assert_eq(hl % 8, 0);
    cr_assert(strncmp((const char *)st.buf + 8, "{\"__metadata__\":{", 17) == 0);
    size_t data_bytes = (15 + 1 + 7 + 2048 + 24) * 4;
    cr_assert_eq(st.len, 8 + hl + data_bytes);

    for (int i = 0; i < 5; i++) {
        const StTensor *t = &st.t[i];
        cr_assert_str_eq(t->name, w[i].name, "header order not kept");
        cr_assert_eq(t->ndim, w[i].ndim);
        size_t numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            cr_assert_eq(t->shape[k], w[i].shape[k]);
            numel *= (size_t)w[i].shape[k];
        }
        cr_assert_eq(t->numel, numel);
        float *got = malloc(numel * sizeof *got);
        st_copy_f32(got, t);
        cr_assert(memcmp(got, w[i].data, numel * sizeof *got) == 0, "data of %s differs", t->name);
        free(got);
        cr_assert_eq(st_find(&st, w[i].name), t);
    }
    cr_assert_eq(st.t[3].shape[2], 1, "trailing 1 dim kept");
    cr_assert_null(st_find(&st, "nope"));
    cr_assert_null(st_find(&st, "proj_a"));
    for (int i = 0; i < 3; i++) cr_assert_str_eq(st_meta(&st, mk[i]), mv[i]);
    cr_assert_null(st_meta(&st, "n_heads"));
    cr_assert_null(st_meta(&st, "proj_a.weight"));
    st_close(&st);
    cr_assert_eq(st.n, 0);
    cr_assert_null(st.buf);

    // st_parse on the same bytes gives the same answer and names the buffer in messages.
    FILE *f = fopen(path, "rb");
    unsigned char *b = malloc(8 + hl + data_bytes);
    cr_assert_eq(fread(b, 1, 8 + hl + data_bytes, f), 8 + hl + data_bytes);
    fclose(f);
    cr_assert_eq(st_parse(&st, b, 8 + hl + data_bytes, "mem", &err), 0, "%s", err.msg);
    free(b); // st_parse copied it
    float got[7];
    st_copy_f32(got, st_find(&st, "layers.0.bias"));
    cr_assert(memcmp(got, vec, sizeof got) == 0);
    st_close(&st);

    free(vec);
    free(mat);
    free(col);
    free(t4);
}

Test(safetensors, empty_and_zero_size) {
    const char *path = test_path("e.safetensors");
    AvtErr err = {{0}};
    cr_assert_eq(st_write(path, NULL, 0, NULL, NULL, 0, &err), 0, "%s", err.msg);
    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    cr_assert_eq(st.n, 0);
    cr_assert_eq(st.n_meta, 0);
    st_close(&st);

    StWrite w[] = {{"z", 2, {0, 3}, NULL}, {"one", 1, {1}, (const float[]){2.0f}}};
    cr_assert_eq(st_write(path, w, 2, NULL, NULL, 0, &err), 0, "%s", err.msg); // overwrite in place
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    cr_assert_eq(st.n, 2);
    cr_assert_eq(st_find(&st, "z")->numel, 0);
    float v = 0;
    st_copy_f32(&v, st_find(&st, "one"));
    cr_assert_eq(v, 2.0f);
    st_close(&st);
}

// Whatever the header's natural length, it is space-padded so the data starts 8-byte aligned.
Test(safetensors, header_padded_to_8) {
    const char *path = test_path("pad.safetensors");
    char name[16] = "";
    float v = 1.0f;
    for (int k = 1; k <= 8; k++) {
        strcat(name, "x");
        StWrite w[] = {{name, 1, {1}, &v}};
        AvtErr err = {{0}};
        cr_assert_eq(st_write(path, w, 1, NULL, NULL, 0, &err), 0, "%s", err.msg);
        SafeTensors st;
        cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = (hl << 8) | st.buf[i];
        cr_assert_eq(hl % 8, 0, "name length %d: header length %llu", k, (unsigned long long)hl);
        const char *h = (const char *)st.buf + 8;
        size_t j = (size_t)hl;
        while (j > 0 && h[j - 1] == ' ') j--;
        cr_assert(j > 0 && h[j - 1] == '}', "padding is not spaces after the JSON");
        st_close(&st);
    }
}

// Files from other writers: padding, whitespace and key order may differ.
Test(safetensors, foreign_layout_accepted) {
    const char *hdr = "  { \"b\" : {\"data_offsets\":[4,12],\"shape\":[2],\"dtype\":\"F32\"},"
                      " \"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}, \"__metadata__\":{}}   ";
    SafeTensors st;
    AvtErr err = {{0}};
    cr_assert_eq(st_open(&st, write_raw("f.safetensors", hdr, 12), &err), 0, "%s", err.msg);
    cr_assert_eq(st.n, 2);
    cr_assert_str_eq(st.t[0].name, "b");
    cr_assert_eq(st.t[1].ndim, 0);
    cr_assert_eq(st.t[1].numel, 1);
    st_close(&st);
}

// ---------------------------------------------------------------------------------------------
// Bad input, one class per test

Test(safetensors, missing_file) {
    expect_fail(test_path("does_not_exist.safetensors"), "cannot open");
}

Test(safetensors, not_a_regular_file) {
    expect_fail(st_dir, "not a regular file");
}

Test(safetensors, shorter_than_8_bytes) {
    const char *path = test_path("short.safetensors");
    write_bytes(path, "\x02\x00\x00", 3);
    expect_fail(path, "shorter than the 8-byte");
    write_bytes(path, "", 0);
    expect_fail(path, "file is 0 bytes");
}

Test(safetensors, header_longer_than_file) {
    expect_fail(write_raw_len("h.safetensors", 100, "{}", 4), "header length 100 is larger than the 6 bytes");
}

Test(safetensors, header_absurd) {
    expect_fail(write_raw_len("h.safetensors", ((uint64_t)100 << 20) + 1, "{}", 0), "is absurd");
    expect_fail(write_raw_len("h.safetensors", UINT64_MAX, "{}", 0), "is absurd");
}

Test(safetensors, header_not_json) {
    expect_hdr_fail("{\"a\": ", 0, "not valid JSON");
    expect_hdr_fail("", 0, "not valid JSON");
    expect_hdr_fail("{} x", 0, "not valid JSON");
    expect_hdr_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}{}", 4, "not valid JSON");
}

Test(safetensors, header_nul_byte) {
    // "{}" NUL "garbage": a C-string parser would stop at the NUL and accept it.
    const char raw[] = "\x0b\0\0\0\0\0\0\0{}\0garbage!";
    const char *path = test_path("nul.safetensors");
    write_bytes(path, raw, sizeof raw - 1);
    expect_fail(path, "NUL byte");
}

Test(safetensors, header_not_object) {
    expect_hdr_fail("[1, 2]", 0, "header is an array, expected a JSON object");
    expect_hdr_fail("\"x\"", 0, "header is a string, expected a JSON object");
}

Test(safetensors, entry_not_object) {
    expect_hdr_fail("{\"fc1.weight\": 3}", 0, "tensor 'fc1.weight': entry is a number, expected an object");
    expect_hdr_fail("{\"fc1.weight\": [\"F32\"]}", 0, "tensor 'fc1.weight': entry is an array");
}

Test(safetensors, missing_fields) {
    expect_hdr_fail("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing \"dtype\"");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing \"shape\"");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'w': missing \"data_offsets\"");
}

Test(safetensors, ill_typed_fields) {
    expect_hdr_fail("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                    "\"dtype\" is a number, expected a string");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4,
                    "\"shape\" is a string, expected an array");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", 4,
                    "\"data_offsets\" must be two non-negative integers");
}

Test(safetensors, dtype_not_f32) {
    expect_hdr_fail("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                    "tensor 'w': dtype 'BF16' is not supported (only F32 is supported)");
    expect_hdr_fail("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype 'f32'");
}

Test(safetensors, bad_dims) {
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
                    "tensor 'w': shape[1] is not a non-negative integer");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}", 4,
                    "shape[0] is not a non-negative integer");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                    "shape[0] is not a non-negative integer");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
                    "shape[0] is not a non-negative integer");
}

Test(safetensors, too_many_dims) {
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                    "shape has 9 dims, more than the 8 supported");
}

Test(safetensors, numel_overflow) {
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
                    "element count overflows");
    // 2^62 elements fit in size_t but 2^62 * 4 bytes do not.
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}", 0,
                    "element count overflows");
}

Test(safetensors, bad_offsets) {
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
                    "\"data_offsets\" must be two non-negative integers");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8,
                    "\"data_offsets\" must be two non-negative integers");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 8,
                    "\"data_offsets\" must be two non-negative integers");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                    "data_offsets [8, 4] have begin > end");
    expect_hdr_fail("{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[24],\"data_offsets\":[0,96]}}", 64,
                    "tensor 'fc1.weight': data_offsets [0, 96] exceed the 64-byte data section");
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[65,65]}}", 64,
                    "exceed the 64-byte data section");
}

Test(safetensors, size_mismatch) {
    expect_hdr_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[3,8],\"data_offsets\":[0,92]}}", 96,
                    "tensor 'w': data_offsets [0, 92] span 92 bytes but 24 F32 elements need 96");
}

Test(safetensors, duplicate_names) {
    expect_hdr_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                    8, "duplicate tensor name 'a'");
    expect_hdr_fail("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__");
    expect_hdr_fail("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "__metadata__ has duplicate key 'k'");
}

Test(safetensors, bad_metadata) {
    expect_hdr_fail("{\"__metadata__\":3}", 0, "__metadata__ is a number, expected an object of strings");
    expect_hdr_fail("{\"__metadata__\":[\"a\"]}", 0, "__metadata__ is an array, expected an object of strings");
    expect_hdr_fail("{\"__metadata__\":{\"n_code\":3}}", 0, "__metadata__ key 'n_code' is a number, expected a string");
}

Test(safetensors, hostile_name_quoted_on_one_line) {
    expect_hdr_fail("{\"evil\\nname\": 1}", 0, "tensor 'evil\\x0aname'");
    char hdr[600];
    snprintf(hdr, sizeof hdr, "{\"%0500d\": 1}", 0);
    expect_hdr_fail(hdr, 0, "...': entry is a number");
}

Test(safetensors, parse_buffer_names_source) {
    SafeTensors st;
    AvtErr err = {{0}};
    cr_assert_eq(st_parse(&st, (const unsigned char *)"abc", 3, "membuf", &err), -1);
    cr_assert_not_null(strstr(err.msg, "membuf: file is 3 bytes"), "%s", err.msg);
    cr_assert_eq(st_parse(&st, NULL, 0, "membuf", &err), -1);
    st_close(&st);
}

// Every prefix of a valid file must fail cleanly (no crash, st empty); only the full file succeeds.
Test(safetensors, truncated_at_every_length) {
    StWrite w[] = {{"a", 2, {2, 3}, (const float[]){1, 2, 3, 4, 5, 6}}, {"b", 1, {2}, (const float[]){7, 8}}};
    const char *mk[] = {"embed_size"};
    const char *mv[] = {"240"};
    const char *full = test_path("full.safetensors");
    AvtErr err = {{0}};
    cr_assert_eq(st_write(full, w, 2, mk, mv, 1, &err), 0, "%s", err.msg);
    FILE *f = fopen(full, "rb");
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert(len > 40 && len < sizeof buf);
    const char *cut = test_path("cut.safetensors");
    for (size_t n = 0; n <= len; n++) {
        write_bytes(cut, buf, n);
        SafeTensors st;
        memset(&st, 0x5a, sizeof st);
        err.msg[0] = '\0';
        int rc = st_open(&st, cut, &err);
        if (n < len) {
            cr_assert_eq(rc, -1, "prefix of %zu/%zu bytes accepted", n, len);
            cr_assert_not_null(strstr(err.msg, cut), "length %zu: %s", n, err.msg);
            cr_assert(st.n == 0 && st.buf == NULL && st.t == NULL);
        } else {
            cr_assert_eq(rc, 0, "%s", err.msg);
            cr_assert_eq(st.n, 2);
        }
        st_close(&st);
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

Test(safetensors, write_rejects_bad_input) {
    float d[2] = {1, 2};
    AvtErr err = {{0}};
    const char *path = test_path("w.safetensors");
    StWrite dup[] = {{"a", 1, {1}, d}, {"a", 1, {1}, d}};
    cr_assert_eq(st_write(path, dup, 2, NULL, NULL, 0, &err), -1);
    cr_assert_not_null(strstr(err.msg, "duplicate tensor name 'a'"), "%s", err.msg);
    StWrite neg[] = {{"n", 1, {-2}, d}};
    cr_assert_eq(st_write(path, neg, 1, NULL, NULL, 0, &err), -1);
    cr_assert_not_null(strstr(err.msg, "shape[0] = -2"), "%s", err.msg);
    StWrite many[] = {{"m", 9, {1}, d}};
    cr_assert_eq(st_write(path, many, 1, NULL, NULL, 0, &err), -1);
    cr_assert_not_null(strstr(err.msg, "ndim 9"), "%s", err.msg);
    StWrite res[] = {{"__metadata__", 1, {1}, d}};
    cr_assert_eq(st_write(path, res, 1, NULL, NULL, 0, &err), -1);
    cr_assert_not_null(strstr(err.msg, "reserved"), "%s", err.msg);
    const char *k[] = {"x", "x"}, *v[] = {"1", "2"};
    cr_assert_eq(st_write(path, NULL, 0, k, v, 2, &err), -1);
    cr_assert_not_null(strstr(err.msg, "duplicate metadata key 'x'"), "%s", err.msg);
    cr_assert_eq(test_count_files(), 0, "a rejected write left a file");
}

Test(safetensors, write_to_missing_dir_fails) {
    float d[1] = {1};
    StWrite w[] = {{"a", 1, {1}, d}};
    AvtErr err = {{0}};
    const char *path = test_path("no_such_dir/w.safetensors");
    cr_assert_eq(st_write(path, w, 1, NULL, NULL, 0, &err), -1);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "cannot create"), "%s", err.msg);
}

// A write that fails part way (file size limit hit) leaves neither the final file nor the temp file.
Test(safetensors, failed_write_leaves_nothing) {
    size_t n = 64 * 1024;
    float *d = ramp(n, 1.0f);
    StWrite w[] = {{"big", 1, {(int64_t)n}, d}};
    AvtErr err = {{0}};
    const char *path = test_path("big.safetensors");
    // An old good file must survive a failed overwrite untouched.
    StWrite small[] = {{"s", 1, {1}, d}};
    cr_assert_eq(st_write(path, small, 1, NULL, NULL, 0, &err), 0, "%s", err.msg);

    signal(SIGXFSZ, SIG_IGN); // get EFBIG from write() instead of being killed
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = st_write(path, w, 1, NULL, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_eq(rc, -1, "write past the size limit reported success");
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "write failed"), "%s", err.msg);
    cr_assert_eq(test_count_files(), 1, "temp file left behind");

    SafeTensors st;
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    cr_assert_eq(st.n, 1);
    cr_assert_not_null(st_find(&st, "s"));
    st_close(&st);
    free(d);
}
