// Data parallelism over MPI (host memory) and NCCL (device memory); see dist.h.
#include "train/dist.h"

#include <stdlib.h>
#ifdef AVT_HAVE_MPI
#include <mpi.h>
#endif

// Linked in where the CUDA code is (see backend.c); a native avt resolves it in the CUDA module.
extern const DistNccl *dist_nccl(void) __attribute__((weak));

// MPI counts are int: larger buffers go in pieces of this many elements.
#define DIST_CHUNK ((size_t)1 << 30)

#ifdef AVT_HAVE_MPI
// Checked MPI call: "avt: rank R: FILE:LINE: EXPR: <MPI error string>", then the job ends (the die hook).
static void mpi_check_at(int rc, const char *expr, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    avt_fatal_at(file, line, "%s: %s", expr, s);
}
#define mpi_check(expr) mpi_check_at((expr), #expr, __FILE__, __LINE__)

static int hook_rank;
AVT_NORETURN static void abort_job(const char *msg) {
    fprintf(stderr, "avt: rank %d: %s\n", hook_rank, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1); // MPI_Abort does not return; this keeps the function noreturn for the compiler
}
#else
static int env_int(const char *name) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}
#endif

void dist_init(Dist *d) {
    *d = (Dist){.rank = 0, .world = 1};
    // OpenMPI's mpirun sets OMPI_*, Slurm's srun PMI_* (--mpi=pmi2) or PMIX_* (--mpi=pmix).
    const int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
    if (!launched) return;
#ifdef AVT_HAVE_MPI
    mpi_check(MPI_Init(NULL, NULL));
    d->mpi = 1;
    // errors come back to mpi_check, which names the call, instead of MPI's own abort
    mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    d->local_rank = avt_local_rank();
    if (d->world > 1) {
        hook_rank = d->rank;
        avt_set_die_hook(abort_job);
    }
#else
    // PMIx alone does not say the size; srun's task count does.
    const int world = env_int("OMPI_COMM_WORLD_SIZE") ? env_int("OMPI_COMM_WORLD_SIZE")
                    : env_int("PMI_SIZE")            ? env_int("PMI_SIZE")
                                                     : env_int("SLURM_NTASKS");
    if (world > 1 || env_int("PMIX_RANK") > 0)
        avt_die("started as one of %d processes (mpirun/srun), but this avt was built without MPI "
                "(apt-get install libopenmpi-dev, then rebuild)", world);
#endif
}

void dist_finalize(Dist *d) {
    if (d->nccl) d->nc->comm_destroy(d->nccl);
    if (d->nccl_stream) d->nc->stream_destroy(d->nccl_stream);
#ifdef AVT_HAVE_MPI
    if (d->mpi) {
        avt_set_die_hook(NULL);
        mpi_check(MPI_Finalize());
    }
#endif
    *d = (Dist){.rank = 0, .world = 1};
}

void dist_abort(Dist *d, const char *msg) {
    fprintf(stderr, "avt: rank %d: %s\n", d->rank, msg);
    fflush(stderr);
#ifdef AVT_HAVE_MPI
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}

void dist_barrier(Dist *d) {
    if (d->world == 1) return;
#ifdef AVT_HAVE_MPI
    mpi_check(MPI_Barrier(MPI_COMM_WORLD));
#endif
}

void dist_bcast(Dist *d, void *buf, size_t bytes, int root) {
    if (d->world == 1) return;
#ifdef AVT_HAVE_MPI
    for (size_t off = 0; off < bytes; off += DIST_CHUNK) {
        const size_t k = bytes - off < DIST_CHUNK ? bytes - off : DIST_CHUNK;
        mpi_check(MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, MPI_COMM_WORLD));
    }
#else
    (void)buf, (void)bytes, (void)root;
#endif
}

void dist_allreduce_sum_double(Dist *d, double *x, int n) {
    if (d->world == 1 || n == 0) return;
#ifdef AVT_HAVE_MPI
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
#else
    (void)x;
#endif
}

// The NCCL table of this build, and the communicator (collective: every rank gets here at the same reduction).
static const DistNccl *nccl_comm(Dist *d, const Backend *be) {
    if (!d->nc) {
        const DistNccl *(*nccl_fn)(void) = dist_nccl;
        AvtErr err;
        if (!nccl_fn) *(void **)&nccl_fn = backend_cuda_symbol("dist_nccl", &err);
        if (!nccl_fn) avt_die("%d processes on --device %s need NCCL: %s", d->world, be->name, err.msg);
        d->nc = nccl_fn();
    }
    const DistNccl *nc = d->nc;
    if (!d->nccl) {
        unsigned char id[512];
        if (nc->id_bytes > sizeof id) avt_fatal("ncclUniqueId is %zu bytes, more than %zu", nc->id_bytes, sizeof id);
        if (d->rank == 0) nc->unique_id(id);
        dist_bcast(d, id, nc->id_bytes, 0);
        d->nccl = nc->comm_init(id, d->world, d->rank);
    }
    return nc;
}

void dist_allreduce_sum(Dist *d, const Backend *be, float *x, size_t n) {
    if (d->world == 1 || n == 0) return;
    if (!be->host_memory) {
        nccl_comm(d, be)->allreduce_sum(d->nccl, x, n, be->stream);
        return;
    }
#ifdef AVT_HAVE_MPI
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        const size_t k = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, x + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
#else
    (void)x;
#endif
}

struct DistReq {
    void *event;    // device backend: the end of the NCCL reduction
    void *stream;   // device backend: the stream that waits for it
#ifdef AVT_HAVE_MPI
    int n;          // host backend: the pieces in flight
    MPI_Request r[];
#endif
};

DistReq *dist_allreduce_start(Dist *d, const Backend *be, float *x, size_t n) {
    if (d->world == 1 || n == 0) return NULL;
    if (!be->host_memory) {
        const DistNccl *nc = nccl_comm(d, be);
        if (!d->nccl_stream) d->nccl_stream = nc->stream_create();
        DistReq *req = calloc_check(1, sizeof *req);
        req->stream = be->stream;
        req->event = nc->allreduce_sum_start(d->nccl, x, n, be->stream, d->nccl_stream);
        return req;
    }
#ifdef AVT_HAVE_MPI
    const size_t pieces = (n + DIST_CHUNK - 1) / DIST_CHUNK;
    DistReq *req = calloc_check(1, sizeof *req + pieces * sizeof(MPI_Request));
    req->n = (int)pieces;
    for (size_t i = 0; i < pieces; i++) {
        const size_t off = i * DIST_CHUNK, k = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        mpi_check(MPI_Iallreduce(MPI_IN_PLACE, x + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req->r[i]));
    }
    return req;
#else
    (void)x;
    return NULL; // not reached: dist_init refuses world > 1 without MPI
#endif
}

void dist_allreduce_wait(Dist *d, DistReq *req) {
    if (!req) return;
    if (req->event) {
        d->nc->allreduce_wait(req->event, req->stream);
    } else {
#ifdef AVT_HAVE_MPI
        mpi_check(MPI_Waitall(req->n, req->r, MPI_STATUSES_IGNORE));
#endif
    }
    free(req);
}
