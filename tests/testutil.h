// Helpers shared by the Criterion tests: where the golden files are, and tensor comparison.
#ifndef AVT_TESTUTIL_H
#define AVT_TESTUTIL_H

#include <stddef.h>

// $AVT_GOLDEN (set by `make test`) or build/golden; path of "<dir>/<file>" in a static buffer.
const char *golden_path(const char *file);
// $AVT_PYTHON or /usr/bin/python3; $AVT_BIN or build/avt.
const char *test_python(void);
const char *test_avt_bin(void);
// A fresh directory under /tmp for this test process; test_tmpdir_remove deletes it and its files.
// Criterion runs each test in its own process, so suites call these from .init / .fini.
const char *test_tmpdir(void);
void test_tmpdir_remove(void);
// "<tmpdir>/<name>" in one of 8 rotating buffers, so a test can hold several paths at once.
const char *test_path(const char *name);
// Plain files in the test directory (a check that nothing but the expected files was left behind).
int test_count_files(void);
// Writes n bytes to "<tmpdir>/<name>" and returns its path (test_path's buffers); a failure fails the test.
const char *test_write(const char *name, const void *bytes, size_t n);
// The whole file, NUL-terminated (free it); *n (if not NULL) gets its length. A failure fails the test.
char *test_slurp(const char *path, size_t *n);
// Run a shell command; returns its exit status (-1 if it did not exit normally).
int test_run(const char *fmt, ...);

// Runs `avt ARGS` (the binary of test_avt_bin): expects exit status 1 and exactly one line on stderr containing
// phrase (Criterion expectations).
void test_expect_avt_error(const char *args, const char *phrase);

// max |a - b| / max(max |ref|, floor): the error relative to the tensor's scale.
double rel_err(const float *got, const float *ref, size_t n, double floor);

#endif
