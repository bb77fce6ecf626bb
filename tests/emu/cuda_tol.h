// Tolerances of the CUDA-vs-CPU kernel tests (run under emulation in CI, natively with a GPU), all in one table:
// a CUDA result passes when max |cuda - cpu| <= atol + rtol * max |cpu| over the tensor.
#ifndef AVT_CUDA_TOL_H
#define AVT_CUDA_TOL_H

typedef struct {
    const char *op;
    double atol, rtol;
} CudaTol;

static const CudaTol CUDA_TOL[] = {
    {"layernorm_forward", 1e-6, 1e-5},  {"layernorm_backward", 1e-6, 1e-4},
    {"relu", 0.0, 0.0},                 {"add", 0.0, 0.0},
    {"concat", 0.0, 0.0},               {"dropout", 0.0, 0.0},
    {"sinusoid_table", 1e-6, 1e-6},     {"embed", 1e-6, 1e-6},
    {"l1_masked", 1e-7, 1e-6},          {"attention", 1e-6, 1e-5},
};

static inline const CudaTol *cuda_tol(const char *op) {
    for (size_t i = 0; i < sizeof CUDA_TOL / sizeof *CUDA_TOL; i++) {
        const char *a = CUDA_TOL[i].op, *b = op;
        while (*a && *a == *b) a++, b++;
        if (*a == *b) return &CUDA_TOL[i];
    }
    return 0;
}

#endif
