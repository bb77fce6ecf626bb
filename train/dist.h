// Data parallelism: one process per device, started by mpirun or srun; every process runs the same steps on its
// share of the batch and the gradients are summed across processes. A process started alone is rank 0 of 1 and
// never touches MPI; every collective is then a no-op, so single-process runs take the same code path.
//
// Memory decides the transport: on a host-memory backend (cpu) MPI reduces the buffer; on a device backend (cuda)
// NCCL does, on the backend's stream, so the reduction is queued behind the kernels that wrote the gradients.
//
// Determinism: a sum over ranks is bit-for-bit reproducible from run to run for the same world size, buffer size,
// build and (on GPUs) NCCL version and topology. What we rely on: MPI_Allreduce and ncclAllReduce pick their
// algorithm from the world and message size only (OpenMPI's "tuned" decision rules, NCCL's tuning tables), a given
// algorithm adds in a fixed order, and every rank receives the same bits (tests/train/test_dist.c checks this with 3
// ranks), so the replicas stay identical. A different world size, or forcing another algorithm
// (OMPI_MCA_coll_tuned_*, NCCL_ALGO, NCCL_PROTO), may change the last bits. With two ranks the result equals the
// serial sum whatever the algorithm (a + b == b + a in IEEE arithmetic).
//
// Failures: with more than one rank, dist_init makes avt_die/avt_fatal end the whole job (MPI_Abort) with
// "avt: rank R: <message>". A rank that dies any other way (a signal, exit without MPI_Finalize) makes mpirun kill
// the others and exit non-zero (tests/train/test_dist.c checks both).
#ifndef AVT_DIST_H
#define AVT_DIST_H

#include <stddef.h>
#include "engine/backend.h"
#include "base/common.h"

typedef struct {
    int rank, world;   // this process, and how many there are (0 of 1 when started alone)
    int local_rank;    // rank on this node (the GPU the cuda backend picked: avt_local_rank())
    int mpi;           // MPI_Init was called: dist_finalize calls MPI_Finalize
    void *nccl;        // the NCCL communicator, made by the first reduction on a device backend (collective)
    const struct DistNccl *nc; // NCCL's calls, resolved with the communicator
    void *nccl_stream; // the second stream that overlapped reductions run on (dist_allreduce_start)
} Dist;

// Rank and world from MPI when a launcher started this process (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the
// environment), else rank 0 of 1. A build without MPI started as one of several processes stops with one line.
void dist_init(Dist *d);
// Destroy the NCCL communicator, MPI_Finalize; *d is rank 0 of 1 afterwards.
void dist_finalize(Dist *d);
// Print "avt: rank R: msg" and end every process of the job (MPI_Abort; exit(1) when started alone).
AVT_NORETURN void dist_abort(Dist *d, const char *msg);

void dist_barrier(Dist *d);
// bytes of host memory from rank root to every rank.
void dist_bcast(Dist *d, void *buf, size_t bytes, int root);
// In place: x[i] = sum over ranks of x[i], for n floats in be's memory (a device backend: queued on be->stream).
void dist_allreduce_sum(Dist *d, const Backend *be, float *x, size_t n);
// In place, host memory: sums of losses and counts.
void dist_allreduce_sum_double(Dist *d, double *x, int n);

// Overlapped reduction of one contiguous range (the gradients of layers whose backward is done) while the backward
// goes on. start queues the sum and returns at once; until wait returns nothing may read or write x[0..n) (on a
// device backend: no kernel queued on be->stream after start may touch it). wait makes the sum visible: on a
// device backend work queued on be->stream after wait runs after the reduction (the host does not block); on a
// host backend the sum is in x when wait returns. Every rank starts the same ranges in the same order. Under MPI,
// progress happens mostly inside MPI calls, so the host path overlaps little; it is there to be correct. The
// non-blocking reduction may use another algorithm than dist_allreduce_sum (MPI_Iallreduce vs MPI_Allreduce): the
// same rules of determinism hold, but a run should use one or the other, not switch between them.
typedef struct DistReq DistReq;
DistReq *dist_allreduce_start(Dist *d, const Backend *be, float *x, size_t n);
void dist_allreduce_wait(Dist *d, DistReq *req); // frees req

// ---- internal: NCCL, in train/dist_nccl.cu in CUDA builds (linked in, or in the CUDA module: backend.h) ----
// Calls on the current device (the one backend_cuda_open set); streams and events are cudaStream_t/cudaEvent_t.
typedef struct DistNccl {
    size_t id_bytes;                               // sizeof(ncclUniqueId)
    void (*unique_id)(void *id);                   // rank 0 makes the id the others receive by dist_bcast
    void *(*comm_init)(const void *id, int world, int rank);
    void (*comm_destroy)(void *comm);
    void (*allreduce_sum)(void *comm, float *x, size_t n, void *stream);
    void *(*stream_create)(void);
    void (*stream_destroy)(void *stream);
    // The reduction on side_stream after the work queued on stream; returns the event that marks its end.
    void *(*allreduce_sum_start)(void *comm, float *x, size_t n, void *stream, void *side_stream);
    // Work queued on stream from now on waits for the event; destroys it.
    void (*allreduce_wait)(void *event, void *stream);
} DistNccl;
const DistNccl *dist_nccl(void);

#endif
