// Linear layers (kernels/cuda/linear.cu): the forward (one cuBLASLt matmul with the bias epilogue, fp32 compute)
// and the backward (two matmuls plus the deterministic bias-gradient reduction), at the model's GEMM shapes.
// The kernel IS cuBLASLt, so the baseline is the plain legacy cuBLAS call for the same GEMMs (cublasSgemm, fp32,
// no bias: forward one GEMM, backward the dinp and dweight GEMMs). Rates: forward 2 N C OC FLOPs, backward 4 N C OC.
#include "benchmarks/kernels/bench_common.cuh"

#ifndef AVT_EMU
#include <cublas_v2.h>
#endif

struct LinShape {
    const char *name;
    size_t N;
    int C, OC;
};

// N = B * T = 6400 rows: q/k/v/out projections (d -> d), feed-forward (d -> 4d, 4d -> d), the fused proj (2d -> 2d)
static const LinShape SHAPES[] = {
    {"base proj d->d", 6400, 240, 240},      {"base fc1 d->4d", 6400, 240, 960},
    {"base fc2 4d->d", 6400, 960, 240},      {"base fused 2d->2d", 6400, 480, 480},
    {"large fc1 d->4d", 6400, 384, 1536},    {"large fc2 4d->d", 6400, 1536, 384},
};
static const LinShape EMU_SHAPES[] = {
    {"proj (reduced)", 37, 24, 24},       {"fc1 (reduced)", 37, 24, 96},       {"fc2 (reduced)", 37, 96, 24},
    {"fused (reduced)", 19, 48, 48},      {"odd (reduced)", 13, 17, 33},       {"odd rows (reduced)", 65, 40, 8},
};

#ifndef AVT_EMU
static cublasHandle_t lin_base_handle;

static void cublas_ok(cublasStatus_t st, const char *what) {
    if (st != CUBLAS_STATUS_SUCCESS) avt_fatal("%s: cuBLAS status %d", what, (int)st);
}

// Row-major (R, K) arrays are column-major K x R matrices, so out = inp . W^T is out^T = W . inp^T (as linear.cu).
static void sgemm_forward(float *out, const float *inp, const float *w, const LinShape &s) {
    const float one = 1.0f, zero = 0.0f;
    cublas_ok(cublasSgemm(lin_base_handle, CUBLAS_OP_T, CUBLAS_OP_N, s.OC, (int)s.N, s.C, &one, w, s.C, inp, s.C,
                          &zero, out, s.OC),
              "cublasSgemm forward");
}

// dinp += dout . W; dweight += dout^T . inp
static void sgemm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                           const LinShape &s) {
    const float one = 1.0f;
    cublas_ok(cublasSgemm(lin_base_handle, CUBLAS_OP_N, CUBLAS_OP_N, s.C, (int)s.N, s.OC, &one, w, s.C, dout, s.OC,
                          &one, dinp, s.C),
              "cublasSgemm dinp");
    cublas_ok(cublasSgemm(lin_base_handle, CUBLAS_OP_N, CUBLAS_OP_T, s.C, s.OC, (int)s.N, &one, inp, s.C, dout, s.OC,
                          &one, dw, s.C),
              "cublasSgemm dweight");
}
#endif

int main(void) {
    const BenchMode mode = bench_start("linear (kernels/cuda/linear.cu, cuBLASLt)");
    for (const LinShape &s : mode == BENCH_EMU ? EMU_SHAPES : SHAPES) {
        const size_t ni = s.N * (size_t)s.C, no = s.N * (size_t)s.OC, nw = (size_t)s.OC * s.C;
        const double flops = 2.0 * (double)s.N * s.C * s.OC;
        const Vec inp = random_vec(ni, -1.0f, 1.0f, 51), w = random_vec(nw, -0.1f, 0.1f, 52),
                  bias = random_vec((size_t)s.OC, -0.1f, 0.1f, 53), dout = random_vec(no, -1.0f, 1.0f, 54),
                  dinp0 = random_vec(ni, -0.5f, 0.5f, 55), dw0 = random_vec(nw, -0.5f, 0.5f, 56),
                  db0 = random_vec((size_t)s.OC, -0.5f, 0.5f, 57);
        Vec out(no), dinp = dinp0, dw = dw0, db = db0;
        char t[128];
        snprintf(t, sizeof t, "%s: N %zu C %d OC %d", s.name, s.N, s.C, s.OC);
        if (mode == BENCH_CPU) {
            bench_table(t, BENCH_FLOPS);
            bench_row("cpu forward (OpenBLAS)",
                      bench_cpu_us([&] { linear_forward(out.data(), inp.data(), w.data(), bias.data(), s.N, s.C,
                                                        s.OC); }),
                      flops, 0.0);
            bench_row("cpu backward (OpenBLAS)",
                      bench_cpu_us([&] { linear_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(),
                                                         w.data(), s.N, s.C, s.OC); }),
                      2.0 * flops, 0.0);
            continue;
        }
        bench_validating(t);
        Dev d_inp(inp), d_w(w), d_bias(bias), d_dout(dout), d_out(no), d_dinp(dinp0), d_dw(dw0), d_db(db0),
            d_ws(linear_backward_ws_floats_cuda(s.N, s.OC));
        auto fwd = [&] { linear_forward_cuda(d_out.p, d_inp.p, d_w.p, d_bias.p, s.N, s.C, s.OC, 0); };
        auto bwd = [&] {
            linear_backward_cuda(d_dinp.p, d_dw.p, d_db.p, d_ws.p, d_dout.p, d_inp.p, d_w.p, s.N, s.C, s.OC, 0);
        };
        linear_forward(out.data(), inp.data(), w.data(), bias.data(), s.N, s.C, s.OC);
        fwd();
        bench_check("linear_forward", "forward: out", d_out, out);
        linear_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), s.N, s.C, s.OC);
        bwd();
        bench_check("linear_backward", "backward: dinp", d_dinp, dinp);
        bench_check("linear_backward", "backward: dweight", d_dw, dw);
        bench_check("linear_backward", "backward: dbias", d_db, db);
#ifndef AVT_EMU
        if (!lin_base_handle) cublas_ok(cublasCreate(&lin_base_handle), "cublasCreate");
        bench_table(t, BENCH_FLOPS);
        const double base_f = bench_gpu_us([&] { sgemm_forward(d_out.p, d_inp.p, d_w.p, s); });
        bench_row("cublasSgemm forward, no bias (baseline)", base_f, flops, base_f);
        bench_row("forward (cuBLASLt, bias epilogue)", bench_gpu_us(fwd), flops, base_f);
        const double base_b = bench_gpu_us([&] { sgemm_backward(d_dinp.p, d_dw.p, d_dout.p, d_inp.p, d_w.p, s); });
        bench_row("cublasSgemm dinp + dweight (baseline)", base_b, 2.0 * flops, base_b);
        bench_row("backward (cuBLASLt + dbias reduction)", bench_gpu_us(bwd), 2.0 * flops, base_b);
#endif
    }
    return 0;
}
