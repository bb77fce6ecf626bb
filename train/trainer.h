// The trainer owns the training step and the run's cadence, for avt pretrain, bench_train, the tests and
// fine-tuning alike:
//   step        forward + objective (train/objective.h) -> backward -> sum over the ranks (train/grad_sync.h,
//               overlapped with the backward) -> global clip + BertAdam (train/optim.h)
//   validation  the objective's weighted mean over a pass of held-out batches, summed over the ranks
//   cadence     trainer_run: a checkpoint every `every` updates (with the validation loss when there is a
//               validation set; the loss also at update 0 and at the end), keep-K pruning (train/checkpoint.h),
//               SIGINT/SIGTERM finish the step, save and stop
// Both graphs are planned once by trainer_open; a step allocates nothing. Batches come through BatchSource, so the
// trainer knows no file or dataset: the caller wires its loader to it.
//
// Randomness: dropout is keyed by (seed, update, row of the global batch), so a resumed run and any number of ranks
// draw what one uninterrupted process draws. Errors that end a run (a failed batch, a checkpoint that cannot be
// written, a diverged loss) die with one line; with several ranks that ends the whole job (train/dist.h).
#ifndef AVT_TRAINER_H
#define AVT_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/grad_sync.h"
#include "train/objective.h"
#include "train/optim.h"

typedef struct {
    int rows;            // this rank's rows per update (the global batch / the ranks)
    int val_rows;        // this rank's rows per validation batch; 0: this rank validates nothing
    int seq;             // steps per row (T)
    uint64_t seed;       // dropout
    BertAdamHyper h;
    float lr;            // peak learning rate
    double warmup;       // warmup fraction of t_total
    long t_total;        // planned updates
    size_t bucket_bytes; // data parallel: gradients are summed in buckets of about this size
    // trainer_run only
    const char *run_dir; // checkpoints go to run_dir/ckpt-<update>/
    int every;           // a checkpoint (and the validation loss) every `every` updates
    int keep;            // complete checkpoints kept
    long max_steps;      // updates in this invocation; < 0: up to t_total
} TrainerConfig;

typedef struct {
    void *ctx;
    // This rank's next batch, its arrays valid until the next call: 0, or -1 with err. Training calls it forever.
    int (*next)(void *ctx, TrainBatch *b, AvtErr *err);
    // Validation sources: start a pass over the held-out set and return this rank's batches in it (0 when the rank
    // has none), or -1 with err; end finishes the pass. Training sources leave both NULL.
    long (*begin)(void *ctx, AvtErr *err);
    void (*end)(void *ctx);
} BatchSource;

typedef struct {
    long step;       // updates done, this one included
    float loss;      // the global batch's loss
    float lr;        // the learning rate this update used
    float grad_norm; // global gradient norm before clipping
    double ms;       // wall time of the update, the wait for its batch included (trainer_run)
} TrainStats;

typedef struct {
    TrainerConfig c;
    Objective obj;
    AvtModel *m;
    Dist *d;
    Optimizer o;
    GradSync sync;
    Graph g;     // the training step: forward + backward, dropout on
    Graph gv;    // validation: forward only, no dropout (planned when c.val_rows > 0)
    long done;   // updates in this invocation
    int resumed; // trainer_resume was called: trainer_run does not save again at the update it resumed at
    int stop;    // a rank was asked to stop (signal): trainer_run saves and returns
} Trainer;

typedef struct {
    void *ctx;
    void (*meta)(void *ctx, CkptMeta *meta); // rank 0, before each checkpoint: the caller's settings to save with it
    void (*step)(void *ctx, const Trainer *t, const TrainStats *st); // every rank, after each update
    void (*validated)(void *ctx, const Trainer *t, double loss);     // every rank, after each validation pass
} TrainerHooks;

// The model's parameters must already live on the backend the step runs on (params_to). The trainer keeps m and d.
void trainer_open(Trainer *t, const TrainerConfig *c, const Objective *obj, AvtModel *m, Dist *d);
void trainer_close(Trainer *t);
// Continue from a checkpoint (ckpt_load: weights, moments, update count, schedule). 0, or -1 with err.
int trainer_resume(Trainer *t, const char *ckpt_dir, AvtErr *err);

// The gradient half of an update: forward, loss, backward, summed over the ranks into the parameters' gradients.
// Returns the global batch's loss.
float trainer_grad(Trainer *t, const TrainBatch *b);
// One update: trainer_grad, then the optimiser step. st->ms is left 0.
void trainer_step(Trainer *t, const TrainBatch *b, TrainStats *st);
// The objective's mean over one validation pass of src, over every rank's batches.
double trainer_validate(Trainer *t, const BatchSource *src);
// Up to c.max_steps updates from train, with the cadence above; val may be NULL (no validation set).
void trainer_run(Trainer *t, const BatchSource *train, const BatchSource *val, const TrainerHooks *hooks);
// From now on SIGINT and SIGTERM ask the run to stop (trainer_run calls it; a caller with its own loop does).
void trainer_catch_signals(void);
// A signal asked this process to stop, or trainer_run stopped for one on another rank.
int trainer_interrupted(const Trainer *t);

#endif
