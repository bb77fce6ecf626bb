#include "base/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static AvtDieHook die_hook;

void avt_set_die_hook(AvtDieHook hook) { die_hook = hook; }

// Messages are formatted first so that the hook gets the whole line (4 KiB is more than any of ours).
AVT_NORETURN static void die_with(const char *msg) {
    if (die_hook) die_hook(msg);
    fprintf(stderr, "avt: %s\n", msg);
    exit(1);
}

void avt_die(const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die_with(msg);
}

void avt_fatal_at(const char *file, int line, const char *fmt, ...) {
    char msg[4096];
    const int n = snprintf(msg, sizeof msg, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    die_with(msg);
}

int avt_local_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

void *malloc_check_at(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) avt_fatal_at(file, line, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *calloc_check_at(size_t n, size_t bytes, const char *file, int line) {
    void *p = calloc(n ? n : 1, bytes ? bytes : 1);
    if (!p) avt_fatal_at(file, line, "out of memory allocating %zu x %zu bytes", n, bytes);
    return p;
}

double avt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *asprintf_check(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) avt_fatal("out of memory formatting a string");
    return s;
}

static const char *mode_name(const char *mode) {
    return mode[0] == 'r' ? (strchr(mode, '+') ? "for reading and writing" : "for reading")
                          : mode[0] == 'a' ? "for appending" : "for writing";
}

FILE *fopen_check(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) avt_die("%s: cannot open %s: %s", path, mode_name(mode), strerror(errno));
    return f;
}

void fread_check(void *ptr, size_t size, size_t n, FILE *f, const char *path) {
    if (fread(ptr, size, n, f) != n)
        avt_die("%s: short read (%s)", path, feof(f) ? "end of file" : strerror(errno));
}

void fwrite_check(const void *ptr, size_t size, size_t n, FILE *f, const char *path) {
    if (fwrite(ptr, size, n, f) != n) avt_die("%s: write failed: %s", path, strerror(errno));
}

void fclose_check(FILE *f, const char *path) {
    if (fclose(f) != 0) avt_die("%s: close failed: %s", path, strerror(errno));
}

int avt_err_set(AvtErr *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int avt_write_atomic(const char *path, AvtWriteFn fn, void *ctx, AvtErr *err) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc_check(n);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        avt_err_set(err, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = fn(f, ctx, err);
    if (fclose(f) != 0 && rc == 0) rc = avt_err_set(err, "%s: write failed: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = avt_err_set(err, "%s: rename failed: %s", path, strerror(errno));
    if (rc != 0) remove(tmp);
    free(tmp);
    return rc;
}

char *avt_read_file(const char *path, size_t *n, AvtErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc_check(cap);
    for (size_t got; (got = fread(buf + len, 1, cap - 1 - len, f)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            cap *= 2;
            char *more = realloc(buf, cap);
            if (!more) avt_fatal("out of memory reading %s", path);
            buf = more;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        avt_err_set(err, "%s: read failed", path);
        return NULL;
    }
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}
