// What the trainer optimises, and the batches it takes (train/trainer.h). A batch is this rank's rows as plain
// arrays, filled by whoever owns the data (avt pretrain wires its corpus loader), so the training layer knows no
// file or dataset. An objective builds its scalar loss on the graph from a batch and says how much of the global
// batch's loss the batch carries: the loss of a global batch is the weighted mean of its ranks' losses, and a rank
// scales its gradient by its share (graph_backward_seed), so N ranks compute what one process computes.
//
// Fine-tuning adds its objectives here (a head with CE / MSE / 1 - CCC on labels the batch then carries). A loss
// that is not a mean over samples (1 - CCC of a whole batch) does not split over ranks by a weight alone.
#ifndef AVT_OBJECTIVE_H
#define AVT_OBJECTIVE_H

#include "models/avt.h"

typedef struct {
    int B, T;         // this rank's rows, steps per row
    float *x_a;       // (B, T, d_a) the model's inputs
    float *x_v;       // (B, T, d_v)
    float *target_a;  // (B, T, d_a) what a reconstruction objective compares with
    float *target_v;  // (B, T, d_v)
    float *mask;      // (B, T) 1 at the steps a reconstruction objective counts
} TrainBatch;         // while the trainer plans its graphs: B and T only, every array NULL

typedef struct {
    // The scalar loss of batch b, built on g (dropout follows g->training).
    Tensor *(*loss)(Graph *g, const AvtModel *m, const TrainBatch *b);
    // The batch's weight in the global batch's mean (> 0 unless it holds nothing the loss counts).
    double (*weight)(const TrainBatch *b);
} Objective;

// Pretraining (docs/model.md §3.3): L1 between the reconstructions and the targets on the masked steps, weighted by
// the masked steps.
extern const Objective OBJECTIVE_MASKED_L1;

#endif
