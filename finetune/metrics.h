// Evaluation metrics of fine-tuning (docs/protocols.md): formulas over one fold's test clips, and the statistics of
// a table over folds and seeds.
#ifndef AVT_METRICS_H
#define AVT_METRICS_H

#include <stddef.h>

// conf (C, C): conf[t * C + p] counts clips of true class t predicted as p. label, pred (n) in [0, C).
void metrics_confusion(long *conf, const int *label, const int *pred, size_t n, int C);
double metrics_accuracy(const long *conf, int C);  // correct / all (weighted accuracy, WAR); 0 without clips
double metrics_uar(const long *conf, int C);       // mean recall over the classes with at least one clip; 0 without
// Mean F1 over the classes that occur as a label or a prediction (0 without clips); F1 = 2 TP / (2 TP + FP + FN).
double metrics_macro_f1(const long *conf, int C);

// Column c of x and y, both (n, stride), n >= 1, with population (1/n) moments, in double.
// CCC = 2 cov / (var x + var y + (mean x - mean y)^2); 1 when both columns are the same constant.
double metrics_ccc(const float *x, const float *y, size_t n, size_t stride, int c);
// Pearson's r; 0 when either column is constant.
double metrics_pearson(const float *x, const float *y, size_t n, size_t stride, int c);
double metrics_rmse(const float *x, const float *y, size_t n, size_t stride, int c);

// Mean and sample standard deviation (n - 1; 0 for n < 2) of v (n).
void metrics_mean_std(const double *v, int n, double *mean, double *std);
// The two-sided 95 % quantile of Student's t with df degrees of freedom (df >= 1; NaN below): 12.706 for 1, 1.96 as
// df grows. Computed by bisection on the t distribution's tail (regularized incomplete beta), not a table.
double metrics_t95(int df);
// Paired differences d = a - b (n): mean and its 95 % interval mean -+ t95(n - 1) sd / sqrt(n) (lo = hi = mean
// for n < 2).
void metrics_paired_ci95(const double *a, const double *b, int n, double *mean, double *lo, double *hi);

#endif
