#include "tests/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

const char *golden_path(const char *file) {
    static char buf[4096];
    const char *dir = getenv("AVT_GOLDEN");
    snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : "build/golden", file);
    return buf;
}

const char *test_python(void) {
    const char *p = getenv("AVT_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

const char *test_avt_bin(void) {
    const char *p = getenv("AVT_BIN");
    return p && *p ? p : "build/avt";
}

static char tmp_dir[64];

const char *test_tmpdir(void) {
    strcpy(tmp_dir, "/tmp/avt-test-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        abort();
    }
    return tmp_dir;
}

void test_tmpdir_remove(void) {
    DIR *d = opendir(tmp_dir);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", tmp_dir, e->d_name);
        if (unlink(p) != 0) test_run("rm -rf '%s'", p); // a subdirectory (e.g. embed --list output)
    }
    closedir(d);
    rmdir(tmp_dir);
}

const char *test_path(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp_dir, name);
    return b;
}

int test_count_files(void) {
    DIR *d = opendir(tmp_dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

const char *test_write(const char *name, const void *bytes, size_t n) {
    const char *p = test_path(name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot create %s", p);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    return p;
}

char *test_slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    cr_assert(len >= 0);
    rewind(f);
    char *b = malloc((size_t)len + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    b[len] = '\0';
    if (n) *n = (size_t)len;
    return b;
}

int test_run(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

double rel_err(const float *got, const float *ref, size_t n, double floor) {
    double scale = floor, err = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)ref[i]);
        if (r > scale) scale = r;
    }
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        if (!(e <= err)) err = e; // NaN counts as the worst error
    }
    return err / scale;
}

void test_expect_avt_error(const char *args, const char *phrase) {
    const char *log = test_path("err.log");
    int rc = test_run("%s %s >/dev/null 2>%s", test_avt_bin(), args, log);
    cr_expect_eq(rc, 1, "'avt %s' must exit with status 1, got %d", args, rc);
    cr_expect_eq(test_run("test $(wc -l < %s) -eq 1", log), 0, "'avt %s': stderr must be one line", args);
    cr_expect_eq(test_run("grep -qF -- \"%s\" %s", phrase, log), 0, "'avt %s': stderr lacks '%s'", args, phrase);
}
