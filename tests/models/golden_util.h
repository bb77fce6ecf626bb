// Helpers shared by the golden tests (tests/models/test_golden.c, tests/train/test_objective_golden.c): the twin's
// files (`make golden`, tests/reference/make_golden.py), its model with a fine-tuning head, and comparisons at the
// golden tolerances.
#ifndef AVT_TESTS_GOLDEN_UTIL_H
#define AVT_TESTS_GOLDEN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "models/avt.h"

// All golden tolerances: max |c - torch| relative to the tensor's max |torch| (floor 1e-6).
enum { TOL_OUT, TOL_LOSS, TOL_GRAD };
typedef struct {
    const char *what;
    double tol;
} GoldenTol;
extern const GoldenTol GOLDEN_TOL[]; // [TOL_OUT] forward outputs, [TOL_LOSS] losses, [TOL_GRAD] parameter gradients

typedef struct {
    AvtModel m;
    SafeTensors gold;
    int B, T;
    uint64_t seed;
    uint32_t step, ft_step;
} Golden;

// The tensor (a failed assertion when it is missing), a malloc'd F32 copy of it, a metadata integer.
const StTensor *golden_need(const SafeTensors *st, const char *name);
float *golden_load_f32(const SafeTensors *st, const char *name);
uint64_t golden_meta_u64(const SafeTensors *st, const char *key);

// The config's golden file and model. head NULL: the twin's parameters alone. Else the model gets a fine-tuning
// head read from the golden file's "<head>0.weight", "<head>0.bias", "<head>2.weight", "<head>2.bias" (n_out from
// the shape of "<head>2.weight"): "head." for the classification head, "reg.head." for the regression one.
void golden_open(Golden *g, const char *cfg, const char *head);
void golden_close(Golden *g);

// The error of got against ref (relative to ref's scale), as a Criterion expectation at tolerance tol; returned.
double golden_check_ref(const char *name, const float *got, const float *ref, size_t n, int tol);
// The same against the golden tensor `name`, whose element count must be n.
double golden_check(const Golden *g, const char *name, const float *got, size_t n, int tol);

#endif
