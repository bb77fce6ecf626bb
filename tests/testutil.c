#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

const char *test_tmpdir(void) {
    static char dir[64];
    strcpy(dir, "/tmp/avt-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    return dir;
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
