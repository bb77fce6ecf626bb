// Data parallelism across real processes: build/dist_check (tests/mpi/dist_check.c, built when MPI is found) run
// by mpirun. The sums must equal the serial sums exactly, and a rank that fails in any way must end the whole job,
// non-zero and within seconds, instead of leaving the others waiting in a collective.
#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tests/testutil.h"

static char check_bin[4096];

// $AVT_DIST_CHECK, else dist_check next to $AVT_BIN (make test sets AVT_BIN=$(BUILD)/avt).
static void setup(void) {
    const char *p = getenv("AVT_DIST_CHECK");
    if (p && *p) {
        snprintf(check_bin, sizeof check_bin, "%s", p);
    } else {
        char bin[4096];
        snprintf(bin, sizeof bin, "%s", test_avt_bin());
        snprintf(check_bin, sizeof check_bin, "%s/dist_check", dirname(bin));
    }
    test_tmpdir();
}
TestSuite(dist, .init = setup, .fini = test_tmpdir_remove, .timeout = 180);

static void need_check_bin(void) {
    if (access(check_bin, X_OK) != 0) cr_skip("%s not built (MPI not found at build time)", check_bin);
    if (test_run("command -v mpirun >/dev/null") != 0) cr_skip("mpirun not found");
}

// mpirun np ranks of dist_check MODE (stdout, stderr to files in the test directory); the exit status and the
// seconds it took. The options keep OpenMPI working in containers: shared memory between the ranks, no binding to
// cores, no single-copy (CMA needs ptrace rights), root allowed. timeout turns a hang into status 124.
static int mpirun(int np, const char *mode, double *seconds) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int rc = test_run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 mpirun -np %d "
                            "--oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader "
                            "--mca btl_vader_single_copy_mechanism none '%s' %s >'%s' 2>'%s'",
                            np, check_bin, mode, test_path("out"), test_path("err"));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return rc;
}

static int file_has(const char *path, const char *text) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    static char buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

// Alone (no launcher): rank 0 of 1, MPI untouched, every collective a no-op.
Test(dist, single_process) {
    need_check_bin();
    cr_assert_eq(test_run("'%s' sum >'%s' 2>&1", check_bin, test_path("out")), 0);
    cr_assert(file_has(test_path("out"), "dist_check: ok (world 1)"));
}

// Sizes 0, 1, 1000 and 3M+7 floats: blocking and overlapped sums exactly the serial sums; doubles; bcast.
Test(dist, collectives_two_ranks) {
    need_check_bin();
    double s;
    const int rc = mpirun(2, "sum", &s);
    cr_assert_eq(rc, 0, "mpirun exited %d after %.1f s", rc, s);
    cr_assert(file_has(test_path("out"), "dist_check: ok (world 2)"));
}

// Three ranks: the order of the additions is MPI's; every rank must hold the same bits.
Test(dist, collectives_three_ranks) {
    need_check_bin();
    double s;
    const int rc = mpirun(3, "sum", &s);
    cr_assert_eq(rc, 0, "mpirun exited %d after %.1f s", rc, s);
    cr_assert(file_has(test_path("out"), "dist_check: ok (world 3)"));
}

// Rank 1 fails while rank 0 waits in an allreduce: the job must end non-zero within seconds (60 s would be a hang),
// with the rank's message on stderr where there is one.
static void expect_job_ends(const char *mode, int want_rc, const char *message) {
    need_check_bin();
    double s;
    const int rc = mpirun(2, mode, &s);
    cr_assert_neq(rc, 124, "%s: mpirun still running after 60 s (a hang)", mode);
    // a rank killed by a signal: OpenMPI 4.1's mpirun exits 137 (128 + 9); other versions may differ
    if (want_rc == 137) cr_assert_neq(rc, 0, "%s: mpirun exited 0", mode);
    else cr_assert_eq(rc, want_rc, "%s: mpirun exited %d", mode, rc);
    cr_assert_lt(s, 20.0, "%s: the job took %.1f s to end", mode, s);
    cr_assert(file_has(test_path("err"), message), "%s: stderr lacks \"%s\"", mode, message);
}

Test(dist, abort_ends_job) { expect_job_ends("abort", 1, "avt: rank 1: dist_check: aborting on purpose"); }
Test(dist, die_ends_job) { expect_job_ends("die", 1, "avt: rank 1: dist_check: dying on purpose"); }
Test(dist, exit_without_finalize_ends_job) { expect_job_ends("exit", 3, "non-zero status"); }
Test(dist, killed_rank_ends_job) { expect_job_ends("kill", 137, "signal 9"); }
