// What a fine-tuning run writes and measures (finetune/report.c): split.csv, predictions.csv, the metrics of a set
// of clips' outputs, the per-fold log's curve. Inside the finetune/ floor only.
#ifndef AVT_FT_REPORT_H
#define AVT_FT_REPORT_H

#include <stddef.h>
#include "data/corpus/folds.h"
#include "data/corpus/labels.h"
#include "finetune/finetune.h"

// split.csv: id,group,fold,role, one row per clip per fold.
int ft_write_split(const char *path, const Labels *L, const Folds *F, AvtErr *err);
// predictions.csv of clips rows (n) (indices into L) with the head's outputs out (n, n_out): id,group,fold, then
// label,pred,p_<class>... (classes: out are logits) or <dim>,pred_<dim>... (values).
int ft_write_predictions(const char *path, const Labels *L, int fold, const size_t *rows, size_t n,
                         const float *out, AvtErr *err);
// The metrics of those outputs as a JSON object: accuracy, uar, macro_f1, classes, confusion; or ccc_<dim>,
// pearson_<dim>, rmse_<dim> per dimension.
struct cJSON *ft_metrics_json(const Labels *L, const size_t *rows, size_t n, const float *out);
// Model selection's metric: accuracy (classes) or the mean CCC over the dimensions (values); higher is better.
double ft_selection_metric(const Labels *L, const size_t *rows, size_t n, const float *out);
// The objective's value over the whole set (cross-entropy, MSE or 1 - mean CCC): the validation loss of the log.
double ft_set_loss(FtLoss loss, const Labels *L, const size_t *rows, size_t n, const float *out);
// fold-I/curve.png from fold-I/log.csv.
void ft_plot_curve(const char *fold_dir, const Labels *L);

#endif
