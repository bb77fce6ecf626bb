// LayerNorm (kernels/cuda/layernorm.cu): the forward (a warp per row) and the backward (dinp by a warp per row,
// dweight/dbias by per-chunk partials and a fixed-order pass). Memory-bound: the rates count the tensors each call
// must read and write once (forward: inp, out, mean, rstd; backward: dout, inp, dinp read and written, mean, rstd).
#include "benchmarks/kernels/bench_common.cuh"

struct LnShape {
    const char *name;
    size_t N;
    int C;
};

// N = B * T = 64 * 100 rows at every model width
static const LnShape SHAPES[] = {
    {"base d 240", 6400, 240}, {"base d 480", 6400, 480}, {"large d 384", 6400, 384}, {"large d 768", 6400, 768}};
static const LnShape EMU_SHAPES[] = {
    {"base d 240 (reduced)", 37, 240}, {"base d 480 (reduced)", 37, 480},
    {"large d 384 (reduced)", 37, 384}, {"large d 768 (reduced)", 37, 768}};

struct LnCase {
    LnShape s;
    size_t n;
    Vec inp, weight, bias, dout, dinp0;
    explicit LnCase(const LnShape &sh)
        : s(sh), n(sh.N * (size_t)sh.C), inp(random_vec(n, -3.0f, 5.0f, 21)),
          weight(random_vec((size_t)sh.C, 0.5f, 1.5f, 22)), bias(random_vec((size_t)sh.C, -0.5f, 0.5f, 23)),
          dout(random_vec(n, -1.0f, 1.0f, 24)), dinp0(random_vec(n, -0.5f, 0.5f, 25)) {}
    double fwd_bytes() const { return 4.0 * (2.0 * (double)n + 2.0 * (double)s.N); }
    double bwd_bytes() const { return 4.0 * (4.0 * (double)n + 2.0 * (double)s.N); }
};

// CPU forward (out, mean, rstd) and backward into dinp0, dweight, dbias (the backward accumulates).
static void cpu_forward(Vec &out, Vec &mean, Vec &rstd, const LnCase &c) {
    out.resize(c.n);
    mean.resize(c.s.N);
    rstd.resize(c.s.N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), c.inp.data(), c.weight.data(), c.bias.data(), c.s.N,
                      c.s.C);
}
static void cpu_backward(Vec &dinp, Vec &dw, Vec &db, Vec &ws, const LnCase &c, const Vec &mean, const Vec &rstd) {
    dinp = c.dinp0;
    dw.assign((size_t)c.s.C, 0.0f);
    db.assign((size_t)c.s.C, 0.0f);
    ws.resize(layernorm_backward_ws_floats(c.s.N, c.s.C));
    layernorm_backward(dinp.data(), dw.data(), db.data(), ws.data(), c.dout.data(), c.inp.data(), c.weight.data(),
                       mean.data(), rstd.data(), c.s.N, c.s.C);
}

static void title(char *buf, size_t n, const LnShape &s) { snprintf(buf, n, "%s: N %zu C %d", s.name, s.N, s.C); }

int main(void) {
    const BenchMode mode = bench_start("layernorm (kernels/cuda/layernorm.cu)");
    for (const LnShape &s : mode == BENCH_EMU ? EMU_SHAPES : SHAPES) {
        const LnCase c(s);
        char t[128];
        title(t, sizeof t, s);
        Vec out, mean, rstd, dinp, dw, db, ws;
        if (mode == BENCH_CPU) {
            bench_table(t, BENCH_BYTES);
            bench_row("cpu forward", bench_cpu_us([&] { cpu_forward(out, mean, rstd, c); }), c.fwd_bytes(), 0.0);
            bench_row("cpu backward", bench_cpu_us([&] { cpu_backward(dinp, dw, db, ws, c, mean, rstd); }),
                      c.bwd_bytes(), 0.0);
            continue;
        }
        bench_validating(t);
        cpu_forward(out, mean, rstd, c);
        cpu_backward(dinp, dw, db, ws, c, mean, rstd);
        Dev d_inp(c.inp), d_w(c.weight), d_b(c.bias), d_dout(c.dout), d_out(c.n), d_mean(s.N), d_rstd(s.N),
            d_dinp(c.dinp0), d_dw(Vec((size_t)s.C, 0.0f)), d_db(Vec((size_t)s.C, 0.0f)),
            d_ws(layernorm_backward_ws_floats_cuda(s.N, s.C));
        auto fwd = [&] { layernorm_forward_cuda(d_out.p, d_mean.p, d_rstd.p, d_inp.p, d_w.p, d_b.p, s.N, s.C, 0); };
        auto bwd = [&] {
            layernorm_backward_cuda(d_dinp.p, d_dw.p, d_db.p, d_ws.p, d_dout.p, d_inp.p, d_w.p, d_mean.p, d_rstd.p,
                                    s.N, s.C, 0);
        };
        fwd();
        bench_check("layernorm_forward", "forward: out", d_out, out);
        bench_check("layernorm_forward", "forward: mean", d_mean, mean);
        bench_check("layernorm_forward", "forward: rstd", d_rstd, rstd);
        bwd();
        bench_check("layernorm_backward", "backward: dinp", d_dinp, dinp);
        bench_check("layernorm_backward", "backward: dweight", d_dw, dw);
        bench_check("layernorm_backward", "backward: dbias", d_db, db);
#ifndef AVT_EMU
        bench_table(t, BENCH_BYTES);
        bench_row("forward (warp per row)", bench_gpu_us(fwd), c.fwd_bytes(), 0.0);
        bench_row("backward (warp per row + partials)", bench_gpu_us(bwd), c.bwd_bytes(), 0.0);
#endif
    }
    return 0;
}
