// What the trainer optimises, and the batches it takes (train/trainer.h). A batch is this rank's rows as plain
// arrays, filled by whoever owns the data (avt pretrain wires its corpus loader), so the training layer knows no
// file or dataset. An objective builds its scalar loss on the graph from a batch and says how much of the global
// batch's loss the batch carries: the loss of a global batch is the weighted mean of its ranks' losses, and a rank
// scales its gradient by its share (graph_backward_seed), so N ranks compute what one process computes.
//
// Fine-tuning's objectives run the head (docs/model.md §4) at each row's t_last and compare it with the row's label
// or targets. 1 - CCC is not a mean over samples, so it does not split over ranks by a weight alone: fine-tuning
// runs one process per run (avt table spreads whole runs over the ranks).
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
    int *t_last;      // (B) a head objective: the last valid step of each row (the head reads h_av there)
    int *label;       // (B) classification: the class of each row
    float *y;         // (B, n_out) regression: the targets of each row
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
// Fine-tuning (docs/protocols.md): cross-entropy over the head's logits and the labels; mean squared error against
// the targets; 1 - CCC over the batch, averaged over the target columns. Each weighted by the batch's rows.
extern const Objective OBJECTIVE_CE, OBJECTIVE_MSE, OBJECTIVE_CCC;

#endif
