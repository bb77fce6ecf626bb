// Pretraining batches (docs/model.md §3.1, §3.2, §3.5): shuffled, drop_last, truncated / right zero-padded to T,
// dynamically masked, prepared by a prefetch thread while the caller trains.
//
// Reproducible from LoaderState alone: epoch e's order is a Philox Fisher-Yates permutation of the dataset keyed
// by (seed, LOADER_SHUFFLE_SITE, step = e, index = i): for i = n-1 .. 1 swap i with philox_below(.., i, i + 1);
// a sample's mask is keyed by (seed, epoch, utterance) (data/corpus/masking.h). So every rank of a data-parallel run and
// every resumed run derives the same batches; rank r of world takes rows [r*B, (r+1)*B) of each global batch.
#ifndef AVT_LOADER_H
#define AVT_LOADER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "data/corpus/masking.h"

#define LOADER_SHUFFLE_SITE 0x53000000u // 'S': apart from masking and dropout

// Where utterances come from. Both functions are called from the prefetch thread while the caller may use the
// source too: they must be thread-safe.
typedef struct {
    void *ctx;
    int d_a, d_v;
    int (*len)(void *ctx, size_t i);  // steps of utterance i
    // steps [t0, t0 + n) of utterance i; 0, or -1 with err set
    int (*read)(void *ctx, size_t i, int t0, int n, float *audio /* (n, d_a) */, float *video /* (n, d_v) */,
                AvtErr *err);
} UttSource;

typedef struct {
    uint64_t seed;
    uint32_t epoch;
    uint64_t batch; // index within the epoch
} LoaderState;      // names one batch

typedef struct {
    float *x_a;        // (B, T, d_a) masked input
    float *x_v;        // (B, T, d_v)
    float *target_a;   // (B, T, d_a) original features, zero in padding
    float *target_v;   // (B, T, d_v)
    float *mask;       // (B, T) 1 at masked steps
    int *len;          // (B) steps before padding (after truncation to T)
    size_t *item;      // (B) utterance ids
    LoaderState state; // which batch this is
    int B, T, d_a, d_v;
} LoaderBatch;

// One prepared batch and how its preparation went.
typedef struct {
    LoaderBatch b;
    float *frame;    // (d_a + d_v) the current sample's random frame
    int rc;          // 0, or -1 with err
    AvtErr err;
} LoaderSlot;

typedef struct {
    UttSource src;
    size_t *items;   // (n_items) the dataset: utterance ids
    size_t *perm;    // (n_items) positions into items in the order of perm_epoch
    size_t n_items;
    int global_batch, B, rank, world, T, shuffle;
    uint64_t batches_per_epoch;
    LoaderState next;       // the next batch loader_next returns
    // prefetch thread: fills slot[fill] with batch `filling`; the caller holds slot[1 - fill]
    LoaderSlot slot[2];
    int fill, filled, want, quit;
    LoaderState filling;
    uint32_t perm_epoch;
    int perm_valid;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} Loader;

// items (n_items): the dataset's utterance ids (copied). global_batch rows per step across world ranks, this rank
// takes B = global_batch / world of them. shuffle 0 keeps the items' order every epoch (validation).
// start: the first batch to produce (from loader_state of an earlier run to resume; {seed, 0, 0} to begin).
// Returns 0, or -1 with err set (nothing to close then).
int loader_open(Loader *L, UttSource src, const size_t *items, size_t n_items, int global_batch, int rank, int world,
                int T, int shuffle, LoaderState start, AvtErr *err);
// *b: the next batch, valid until the next call. After the last batch of an epoch comes the next epoch's first.
// -1 with err naming the utterance when a read failed; that batch is skipped (loader_state moves past it).
int loader_next(Loader *L, const LoaderBatch **b, AvtErr *err);
// The batch the next loader_next returns: a checkpoint taken after training on a batch resumes right after it.
LoaderState loader_state(const Loader *L);
uint64_t loader_batches_per_epoch(const Loader *L);
void loader_close(Loader *L);

#endif
