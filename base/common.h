// Checked wrappers and error reporting shared by every layer of avt.
// Every fallible call goes through one of these, so a failure is one line: a user's problem names the user's file,
// an internal one names our source file and line.
#ifndef AVT_COMMON_H
#define AVT_COMMON_H

#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define AVT_NORETURN __attribute__((noreturn))
#define AVT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AVT_NORETURN
#define AVT_PRINTF(a, b)
#endif

// Print "avt: <message>" (one line) and exit(1). Used for user-facing errors.
AVT_NORETURN void avt_die(const char *fmt, ...) AVT_PRINTF(1, 2);
// Internal failures: "avt: <file>:<line>: <message>", exit(1).
AVT_NORETURN void avt_fatal_at(const char *file, int line, const char *fmt, ...) AVT_PRINTF(3, 4);
#define avt_fatal(...) avt_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

// A multi-process run (train/dist.c) sets a hook that avt_die and avt_fatal hand their formatted message to
// instead of printing it and exiting alone: it names the rank and ends the whole job, so the other ranks stop
// rather than wait forever in a collective. NULL (the default) restores the plain "avt: <message>", exit(1).
typedef void (*AvtDieHook)(const char *msg);
void avt_set_die_hook(AvtDieHook hook);
// This process's rank on its node as the launcher set it (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID),
// 0 outside a launcher: picks the process's GPU (engine/backend_cuda.cu) before any collective exists.
int avt_local_rank(void);

// Out of memory is internal (file and line); the file calls are about a user's file: they name it and the
// problem ("runs/x/log.csv: cannot open for writing: Permission denied"), not our source.
void *malloc_check_at(size_t bytes, const char *file, int line);
void *calloc_check_at(size_t n, size_t bytes, const char *file, int line);
FILE *fopen_check(const char *path, const char *mode);
void fread_check(void *ptr, size_t size, size_t n, FILE *f, const char *path);
void fwrite_check(const void *ptr, size_t size, size_t n, FILE *f, const char *path);
void fclose_check(FILE *f, const char *path);

// Seconds on the monotonic clock (for durations and deadlines).
double avt_now(void);
// A new string formatted like printf (free it); out of memory is fatal.
char *asprintf_check(const char *fmt, ...) AVT_PRINTF(1, 2);

#define malloc_check(bytes) malloc_check_at((bytes), __FILE__, __LINE__)
#define calloc_check(n, bytes) calloc_check_at((n), (bytes), __FILE__, __LINE__)
#define free_null(p) do { free(p); (p) = NULL; } while (0)

// Recoverable errors (file readers): functions return 0 on success, -1 on failure and
// leave one human-readable line in err (no trailing newline), e.g. "x.csv:12: expected 512 columns, got 511".
#define AVT_ERR_LEN 512
typedef struct { char msg[AVT_ERR_LEN]; } AvtErr;
int avt_err_set(AvtErr *err, const char *fmt, ...) AVT_PRINTF(2, 3); // always returns -1

// Write a file atomically: data goes to "<path>.tmp.<pid>", then rename(); nothing half-written keeps the final name.
// Returns 0 or -1 with err set.
typedef int (*AvtWriteFn)(FILE *f, void *ctx, AvtErr *err);
int avt_write_atomic(const char *path, AvtWriteFn fn, void *ctx, AvtErr *err);
// A whole file as a NUL-terminated string (free it); *n (may be NULL) its length. NULL with err naming the file.
char *avt_read_file(const char *path, size_t *n, AvtErr *err);

#endif
