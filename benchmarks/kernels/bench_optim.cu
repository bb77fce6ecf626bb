// Optimiser kernels (kernels/cuda/optim.cu): sum_squares (the gradient-norm reduction, two deterministic stages)
// and the BertAdam update, over the base model's parameter count as one flat tensor. Memory-bound: sum_squares
// reads n floats; the update reads p, m, v, g and writes p, m, v.
#include "benchmarks/kernels/bench_common.cuh"

#define OPT_N_BASE ((size_t)18400000)  // parameters of the base model
#define OPT_N_EMU ((size_t)100003)     // under emulation: a size that leaves partial blocks

int main(void) {
    const BenchMode mode = bench_start("optim (kernels/cuda/optim.cu)");
    const size_t n = mode == BENCH_EMU ? OPT_N_EMU : OPT_N_BASE;
    const BertAdamHyper h = {0.9, 0.999, 1e-6f, 0.01f, 1.0f, 1.0f};
    const float lr = 1e-4f;
    const Vec p0 = random_vec(n, -0.1f, 0.1f, 41), m0 = random_vec(n, -1e-3f, 1e-3f, 42),
              v0 = random_vec(n, 0.0f, 1e-5f, 43), g = random_vec(n, -1e-2f, 1e-2f, 44);
    // The update's clip inputs: this tensor's sum of squares, and a larger global one (so both clips act).
    Vec sq(1), gsq(1);
    sum_squares(sq.data(), g.data(), n);
    gsq[0] = 4.0f * sq[0];
    Vec p = p0, m = m0, v = v0;
    char t[128];
    snprintf(t, sizeof t, "one flat tensor of n %zu floats", n);
    if (mode == BENCH_CPU) {
        bench_table(t, BENCH_BYTES);
        Vec out(1);
        bench_row("cpu sum_squares", bench_cpu_us([&] { sum_squares(out.data(), g.data(), n); }), 4.0 * n, 0.0);
        bench_row("cpu bertadam_update",
                  bench_cpu_us([&] { bertadam_update(p.data(), m.data(), v.data(), g.data(), sq.data(), gsq.data(),
                                                     h, lr, n); }),
                  28.0 * n, 0.0);
        return 0;
    }
    bench_validating(t);
    Dev d_g(g), d_p(p0), d_m(m0), d_v(v0), d_sq(1), d_gsq(gsq), d_ws(sum_squares_ws_floats_cuda(n));
    auto sumsq = [&] { sum_squares_cuda(d_sq.p, d_ws.p, d_g.p, n, 0); };
    auto update = [&] { bertadam_update_cuda(d_p.p, d_m.p, d_v.p, d_g.p, d_sq.p, d_gsq.p, h, lr, n, 0); };
    sumsq();
    bench_check("sum_squares", "sum_squares", d_sq, sq);
    d_sq.put(sq);  // the CPU's sum, so the update is checked on its own
    update();
    bertadam_update(p.data(), m.data(), v.data(), g.data(), sq.data(), gsq.data(), h, lr, n);
    bench_check("bertadam", "bertadam_update: p", d_p, p);
    bench_check("bertadam", "bertadam_update: m", d_m, m);
    bench_check("bertadam", "bertadam_update: v", d_v, v);
#ifndef AVT_EMU
    bench_table(t, BENCH_BYTES);
    bench_row("sum_squares (two-stage, deterministic)", bench_gpu_us(sumsq), 4.0 * n, 0.0);
    bench_row("bertadam_update", bench_gpu_us(update), 28.0 * n, 0.0);
#endif
    return 0;
}
