// Fully connected layer on top of OpenBLAS. cblas_sgemm is only ever called here, outside any OpenMP region.
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "base/common.h"

// cblas takes int dimensions; a larger tensor would silently wrap.
static int blas_dim(size_t n, const char *what) {
    if (n > (size_t)INT_MAX) avt_fatal("linear: %s = %zu exceeds the BLAS int range", what, n);
    return (int)n;
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C, int OC) {
    // out (N, OC), inp (N, C), weight (OC, C), bias (OC) or NULL
    if (N == 0 || OC <= 0) return;
    int n = blas_dim(N, "N");
#pragma omp parallel for if (N * (size_t)OC > 65536)
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * OC;
        if (bias) memcpy(o, bias, (size_t)OC * sizeof(float));
        else memset(o, 0, (size_t)OC * sizeof(float));
    }
    if (C <= 0) return;
    // Bias already sits in out, so beta = 1 adds the product to it.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, OC, C, 1.0f, inp, C, weight, C, 1.0f, out, OC);
}

// Columns are summed in blocks so each thread walks rows in order: the result does not depend on the thread count.
#define DBIAS_COLS 64

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, size_t N, int C, int OC) {
    // dinp (N, C), dweight (OC, C), dbias (OC); dout (N, OC), inp (N, C), weight (OC, C)
    if (N == 0 || OC <= 0) return;
    int n = blas_dim(N, "N");
    if (dinp && C > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight && C > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, n, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        int nblk = (OC + DBIAS_COLS - 1) / DBIAS_COLS;
#pragma omp parallel for if (N * (size_t)OC > 65536)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * DBIAS_COLS;
            int nc = OC - c0 < DBIAS_COLS ? OC - c0 : DBIAS_COLS;
            double acc[DBIAS_COLS] = {0};
            for (size_t r = 0; r < N; r++) {
                const float *d = dout + r * OC + c0;
                for (int c = 0; c < nc; c++) acc[c] += d[c];
            }
            for (int c = 0; c < nc; c++) dbias[c0 + c] += (float)acc[c];
        }
    }
}
