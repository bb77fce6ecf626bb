// Fine-tuning runs (docs/protocols.md): the paper's evaluation. A run fine-tunes the model on a labelled corpus
// store under a group K-fold protocol and tests each fold's best model on its held-out groups:
//
//   runs/NAME/settings.json        the run's settings (--resume reads them back)
//   runs/NAME/split.csv            id,group,fold,role: one row per clip per fold (role train, val, test or out)
//   runs/NAME/fold-I/              log.csv + curve.png (per epoch), best.safetensors while training, ckpt-*/
//                                  (resume points, removed when the fold ends), then model.safetensors (the best
//                                  epoch's model: upstream + head), predictions.csv and metrics.json, written last:
//                                  a fold with metrics.json is finished and is not run again
//   runs/NAME/metrics.json, summary.md, confusion.png    per fold and mean +- std over folds, once every fold is done
//
// Per fold: the model starts from a pretrained checkpoint (the head added, initialised as nn.Linear's default) or
// from scratch; every epoch trains on the fold's training clips in a seeded order, then predicts the validation
// clips; the epoch with the best validation metric (accuracy for classes, mean CCC for values) is the model the test
// clips are predicted with, once, at the end. Each fold runs in one process; under MPI the folds (avt finetune) or
// the table's (cell, fold) pairs (avt table) are dealt over the ranks.
#ifndef AVT_FINETUNE_H
#define AVT_FINETUNE_H

#include <stdint.h>
#include "data/corpus/labels.h"
#include "models/avt.h"
#include "train/dist.h"

typedef enum { FT_LOSS_AUTO = -1, FT_LOSS_CE = 0, FT_LOSS_MSE = 1, FT_LOSS_CCC = 2 } FtLoss;

typedef struct {
    // data and protocol
    char data[1024];      // the corpus store (its labels.csv beside the shards)
    char target[256];     // labels.csv columns
    char group_by[64];    // the group column (speaker, session, ...)
    TargetKind kind;      // TARGET_AUTO: from the column's values
    int folds;            // K
    int val_groups;       // per fold; 0: about 10 % of the training groups
    double fraction;      // of each fold's training and validation clips
    uint64_t split_seed;  // the folds and validation groups (the same for every seed of a table)
    // model
    char weights[1024];   // a pretrained checkpoint, or "" to train from scratch
    AvtConfig cfg;        // from scratch: the configuration (n_out is set from the target)
    int freeze;           // train the head only
    // optimisation
    FtLoss loss;          // FT_LOSS_AUTO: cross-entropy for classes, 1 - CCC for values
    int epochs, batch, seq;
    double lr, warmup, weight_decay, clip, clip_tensor, eps, beta1, beta2;
    uint64_t seed;        // initialisation, dropout, clip order, the label fraction
} FtSettings;

// The defaults (docs/protocols.md says why).
FtSettings ft_defaults(void);
// settings.json of a run folder: write atomically; read back (-1 with err naming the file).
int ft_settings_write(const FtSettings *s, const char *path, AvtErr *err);
int ft_settings_read(FtSettings *s, const char *path, AvtErr *err);
// 0 when path does not exist or holds these settings; -1 with err naming the first setting that differs.
int ft_settings_check(const FtSettings *s, const char *path, AvtErr *err);
const char *ft_loss_name(FtLoss l);

// Progress over a whole job (every fold of a run, every cell of a table): updates planned and done, for the ETA.
typedef struct {
    long total, done;     // updates
    double t0;
    int tty, line_open;
    char prefix[128];     // names the cell in a table's progress lines
    long max_updates;     // stop after this many updates in this invocation (0: no limit)
    long run_updates;     // updates in this invocation
} FtProgress;

// A prepared run: its labels and folds, and how many updates each fold takes.
typedef struct FtRun FtRun;
// Opens the store and labels.csv, checks the settings against them, makes the folds. -1 with err (one line).
int ft_open(FtRun **r, const FtSettings *s, const char *out, AvtErr *err);
void ft_close(FtRun *r);
int ft_folds(const FtRun *r);
long ft_fold_updates(const FtRun *r, int fold);
int ft_fold_done(const FtRun *r, int fold);         // fold-I/metrics.json exists
// Writes settings.json and split.csv (rank 0 of a job calls it once); -1 with err when the folder holds a run with
// other settings.
int ft_write_plan(const FtRun *r, AvtErr *err);
// Trains, selects and tests one fold on backend be, resuming its newest checkpoint when there is one. Returns 0,
// or 130 when a signal or p->max_updates stopped it (a checkpoint was written: running it again continues).
// Errors die.
int ft_fold_run(FtRun *r, int fold, const Backend *be, FtProgress *p);
// Once every fold is finished: runs/NAME/metrics.json, summary.md and confusion.png from the folds' metrics.json.
// 1 written, 0 when some fold is not finished yet, -1 with err.
int ft_summarize(const char *out, AvtErr *err);

// Helpers shared with the table: JSON files written atomically and read back; gnuplot on a script (PNGs are
// extras: a missing or failing gnuplot is one note, never an error).
struct cJSON;
int ft_write_json(const char *path, const struct cJSON *j, AvtErr *err);
struct cJSON *ft_read_json(const char *path, AvtErr *err);
// png is written atomically from the gnuplot commands in body (the terminal and output are set before them).
void ft_plot(const char *png, const char *body);

#endif
