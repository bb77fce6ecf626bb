// NCCL for train/dist.c: sums of gradients in device memory, on the backend's stream or, overlapped with the
// backward, on a second stream ordered by events. nvcc builds only: the emulator has no NCCL, so under -DAVT_EMU
// this file is empty and dist.c's weak dist_nccl() stays NULL (a device backend then cannot run multi-rank).
#ifndef AVT_EMU
#include <nccl.h>
#include <string.h>
#include "kernels/cuda/cuda_common.cuh"
extern "C" {
#include "train/dist.h"
}

// Checked NCCL call: "avt: FILE:LINE: EXPR: NCCL <error> (<last error>)".
static void nccl_check_at(ncclResult_t r, const char *expr, const char *file, int line) {
    if (r != ncclSuccess)
        avt_fatal_at(file, line, "%s: NCCL %s (%s)", expr, ncclGetErrorString(r), ncclGetLastError(nullptr));
}
#define nccl_check(expr) nccl_check_at((expr), #expr, __FILE__, __LINE__)

static void unique_id(void *id) { nccl_check(ncclGetUniqueId(static_cast<ncclUniqueId *>(id))); }

static void *comm_init(const void *id, int world, int rank) {
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclComm_t comm;
    // on the current device: the one backend_cuda_open chose by local rank (two ranks on one GPU fail here)
    nccl_check(ncclCommInitRank(&comm, world, uid, rank));
    return comm;
}

static void comm_destroy(void *comm) { nccl_check(ncclCommDestroy(static_cast<ncclComm_t>(comm))); }

static void allreduce_sum(void *comm, float *x, size_t n, void *stream) {
    nccl_check(ncclAllReduce(x, x, n, ncclFloat, ncclSum, static_cast<ncclComm_t>(comm),
                             static_cast<cudaStream_t>(stream)));
}

static void *stream_create(void) {
    cudaStream_t s;
    cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
}

static void stream_destroy(void *stream) { cuda_check(cudaStreamDestroy(static_cast<cudaStream_t>(stream))); }

static cudaEvent_t record(cudaStream_t s) {
    cudaEvent_t e;
    cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    cuda_check(cudaEventRecord(e, s));
    return e;
}

static void *allreduce_sum_start(void *comm, float *x, size_t n, void *stream, void *side_stream) {
    cudaStream_t side = static_cast<cudaStream_t>(side_stream);
    // the reduction reads x only after the kernels queued so far on the compute stream wrote it
    cudaEvent_t ready = record(static_cast<cudaStream_t>(stream));
    cuda_check(cudaStreamWaitEvent(side, ready, 0));
    cuda_check(cudaEventDestroy(ready)); // released once it has completed
    allreduce_sum(comm, x, n, side);
    return record(side);
}

static void allreduce_wait(void *event, void *stream) {
    cudaEvent_t done = static_cast<cudaEvent_t>(event);
    cuda_check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), done, 0));
    cuda_check(cudaEventDestroy(done));
}

extern "C" const DistNccl *dist_nccl(void) {
    static const DistNccl table = {
        sizeof(ncclUniqueId), unique_id,     comm_init,           comm_destroy,  allreduce_sum,
        stream_create,        stream_destroy, allreduce_sum_start, allreduce_wait,
    };
    return &table;
}
#endif
