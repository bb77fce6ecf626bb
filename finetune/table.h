// The paper's comparison as one job (docs/protocols.md, "Tables"): fine-tuning from scratch and from a pretrained
// checkpoint, at each label fraction, for each seed, over the same folds. Each cell is a fine-tuning run of its own
// (finetune/finetune.h) in runs/T/<init>-f<fraction>-s<seed>/, so a killed table continues where it stopped and a
// finished one renders again at once:
//   runs/T/table.md, table.csv   mean +- std over folds x seeds per init and fraction, the gain pretrained - scratch
//                                with its paired 95 % interval over (fold, seed), and the abstract's claimed gain
//   runs/T/table.png             bars with their spread
// The folds are the same in every cell (one split seed), so the gain is paired fold by fold.
#ifndef AVT_TABLE_H
#define AVT_TABLE_H

#include "finetune/finetune.h"
#include "train/dist.h"

#define TABLE_MAX_FRACTIONS 8

typedef struct {
    FtSettings base;           // every cell's settings; weights "" (the scratch cells), cfg the architecture
    char pretrained[1024];     // the pretrained cells' checkpoint
    double fractions[TABLE_MAX_FRACTIONS];
    int n_fractions;
    int seeds;                 // cells use seeds base.seed, base.seed + 1, ...
    char out[1024];
} TableSpec;

// Runs this rank's share of the (cell, fold) pairs that are not finished (fold >= 0: that fold of every cell
// only), then rank 0 summarises the cells and renders the table when every cell is finished. Returns 0, or 130
// when a signal stopped it. Errors die.
int table_run(const TableSpec *t, int fold, Dist *d, const Backend *be);
// table.md, table.csv and table.png from the cells' results: 1 written, 0 when some cell is not finished, -1 with
// err.
int table_render(const TableSpec *t, AvtErr *err);

#endif
