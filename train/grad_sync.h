// Data-parallel gradient summing overlapped with the backward pass. The parameter-gradient arena is cut into
// buckets of whole tensors (in table order, about bucket_bytes each). A bucket is complete once the backward has
// passed the first forward node that reads any of its tensors (no node before it in the tape adds to them), so
// its sum over ranks starts right there (dist_allreduce_start: NCCL on a second stream on the GPU) while the
// backward goes on through the earlier layers; grad_sync_end waits for every bucket before the optimiser runs.
#ifndef AVT_GRAD_SYNC_H
#define AVT_GRAD_SYNC_H

#include "train/dist.h"
#include "engine/graph.h"
#include "engine/param.h"

typedef struct {
    Dist *d;
    const Backend *be;
    float *base;          // the gradient arena
    int n;                // buckets
    size_t *lo, *hi;      // (n) float offsets [lo, hi) of each bucket in the arena
    int *ready_at;        // (n) the node after whose backward the bucket is complete; INT_MAX: no node reads it
    DistReq **req;        // (n) reductions in flight
} GradSync;

void grad_sync_init(GradSync *s, Dist *d, const Backend *be, const ParamTable *pt, size_t bucket_bytes);
void grad_sync_free(GradSync *s);
// After the forward of a step, before graph_backward: find each bucket's last contributor and hook the graph.
void grad_sync_begin(GradSync *s, Graph *g);
// After graph_backward: start the buckets no node touched, wait for all; unhooks the graph.
void grad_sync_end(GradSync *s, Graph *g);

#endif
