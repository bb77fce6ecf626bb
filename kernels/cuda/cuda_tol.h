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
    {"gather_rows", 0.0, 0.0},          {"cross_entropy", 1e-7, 1e-6},
    {"mse", 1e-7, 1e-6},                {"sum_squares", 0.0, 1e-6},
    {"bertadam", 1e-7, 1e-6},           {"ccc", 1e-7, 1e-6},
    // GEMMs: bit-identical under emulation (cblas_sgemm as the CPU); a GPU sums k in tiles and split-k pieces in
    // its own order. dbias (float partials of 64 rows): measured 2 ulp of max|cpu| (3.8e-6 at 22).
    {"linear_forward", 1e-6, 1e-5},     {"linear_backward", 1e-6, 1e-5},
    {"attention_cudnn", 2e-2, 2e-2},  // bf16 inputs and output (fp32 softmax inside cuDNN)
    // The whole model (tests/cuda/test_cuda_model.cpp): the kernels' rounding differences compound over the layers.
    // Measured under emulation: outputs 3.7e-7, gradients 8.7e-7 of max|cpu|.
    {"model_out", 1e-6, 1e-5},        {"model_grad", 1e-7, 1e-4},
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
