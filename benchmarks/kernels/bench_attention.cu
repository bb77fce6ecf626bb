// Attention kernels: forward v1 (thread per query row, benchmarks/kernels/attention_v1.cu) and v2 (a warp per four
// query rows, kernels/cuda/attention.cu: what attention_forward_cuda launches), the backward, and cuDNN's fused SDPA
// as the baseline (bf16 in and out, no dropout, no att output: a lower bound on what the fp32 kernels could reach).
// Shapes: the model's causal self-attention, B 64, T 100, at each head size. Rates count the visible (causal)
// query-key pairs only: forward 4 * pairs * HS FLOPs (q.k and att.v), backward 8 * pairs * HS.
#include "benchmarks/kernels/bench_common.cuh"

struct AttShape {
    const char *name;
    int B, NH, T, HS;
};

// B NH T HS: base d 240 (HS 24) and its 480-wide encoder (HS 48), large d 384 (HS 32) and 768 (HS 64)
static const AttShape SHAPES[] = {
    {"base d 240", 64, 10, 100, 24},
    {"base d 480", 64, 10, 100, 48},
    {"large d 384", 64, 12, 100, 32},
    {"large d 768", 64, 12, 100, 64},
};
// Under emulation: the same head sizes, fewer heads and rows (T not a multiple of the tiles).
static const AttShape EMU_SHAPES[] = {
    {"base d 240 (reduced)", 2, 2, 37, 24},
    {"base d 480 (reduced)", 2, 2, 37, 48},
    {"large d 384 (reduced)", 2, 2, 37, 32},
    {"large d 768 (reduced)", 1, 2, 37, 64},
};

// Inputs of one shape on the host.
struct AttCase {
    AttShape s;
    size_t nq, natt;
    Vec q, k, v, dout;
    explicit AttCase(const AttShape &sh)
        : s(sh), nq((size_t)sh.B * sh.T * sh.NH * sh.HS), natt((size_t)sh.B * sh.NH * sh.T * sh.T),
          q(random_vec(nq, -2.0f, 2.0f, 11)), k(random_vec(nq, -2.0f, 2.0f, 12)),
          v(random_vec(nq, -1.0f, 1.0f, 13)), dout(random_vec(nq, -1.0f, 1.0f, 14)) {}
    // Visible query-key pairs of the causal mask, over all batches and heads.
    double pairs() const { return (double)s.B * s.NH * s.T * (s.T + 1) / 2.0; }
};

// Its device copies and outputs (a device or the emulator only).
struct AttDev {
    AttShape s;
    Dev q, k, v, out, att, dout, dq, dk, dv, ws;
    explicit AttDev(const AttCase &c)
        : s(c.s), q(c.q), k(c.k), v(c.v), out(c.nq), att(c.natt), dout(c.dout), dq(c.nq), dk(c.nq), dv(c.nq),
          ws(attention_backward_ws_floats_cuda(c.s.B, c.s.T, c.s.T, c.s.NH)) {}
};

static DropoutKey att_drop(float p) { return DropoutKey{0x5eed5eed12345678ull, 1u, 2u, p}; }

static void cpu_forward(Vec &out, Vec &att, const AttCase &c, DropoutKey drop) {
    const AttShape &s = c.s;
    const int nt = kernel_threads();
    Vec ws(attention_ws_floats(s.T, s.HS, nt));
    out.assign(c.nq, 0.0f);
    att.assign(c.natt, 0.0f);
    attention_forward(out.data(), att.data(), ws.data(), c.q.data(), c.k.data(), c.v.data(), drop, 1, s.B, s.T, s.T,
                      s.NH, s.HS, nt);
}

static void cpu_backward(Vec &dq, Vec &dk, Vec &dv, const AttCase &c, const Vec &att, DropoutKey drop) {
    const AttShape &s = c.s;
    const int nt = kernel_threads();
    Vec ws(attention_ws_floats(s.T, s.HS, nt));
    dq.assign(c.nq, 0.0f);
    dk.assign(c.nq, 0.0f);
    dv.assign(c.nq, 0.0f);
    attention_backward(dq.data(), dk.data(), dv.data(), ws.data(), c.dout.data(), c.q.data(), c.k.data(), c.v.data(),
                       att.data(), drop, s.B, s.T, s.T, s.NH, s.HS, nt);
}

typedef void (*AttForward)(float *, float *, const float *, const float *, const float *, DropoutKey, int, int, int,
                           int, int, int, cudaStream_t);
static const struct {
    const char *name;
    AttForward fn;
} VERSIONS[] = {{"forward v1 (thread per row)", attention_forward_cuda_v1},
                {"forward v2 (warp per 4 rows)", attention_forward_cuda}};

static void run_forward(AttDev &d, AttForward fn, DropoutKey drop) {
    const AttShape &s = d.s;
    fn(d.out.p, d.att.p, d.q.p, d.k.p, d.v.p, drop, 1, s.B, s.T, s.T, s.NH, s.HS, 0);
}

static void run_backward(AttDev &d, DropoutKey drop) {
    const AttShape &s = d.s;
    attention_backward_cuda(d.dq.p, d.dk.p, d.dv.p, d.ws.p, d.dout.p, d.q.p, d.k.p, d.v.p, d.att.p, drop, s.B, s.T,
                            s.T, s.NH, s.HS, 0);
}

// The cuDNN baseline; returns 0, or -1 with the reason in err.
static int run_cudnn(AttDev &d, Dev &ws, AvtErr *err) {
    const AttShape &s = d.s;
    return attention_forward_cudnn(d.out.p, ws.p, d.q.p, d.k.p, d.v.p, 1, s.B, s.T, s.T, s.NH, s.HS, 0, err);
}

static void title(char *buf, size_t n, const AttShape &s) {
    snprintf(buf, n, "%s: B %d NH %d T %d HS %d causal", s.name, s.B, s.NH, s.T, s.HS);
}

// Every version against the CPU, without and with dropout; the backward from the CPU's att.
static void validate(const AttCase &c, AttDev &d) {
    const AttShape &s = c.s;
    char what[128];
    title(what, sizeof what, s);
    bench_validating(what);
    for (float p : {0.0f, 0.1f}) {
        Vec out, att;
        cpu_forward(out, att, c, att_drop(p));
        for (const auto &ver : VERSIONS) {
            run_forward(d, ver.fn, att_drop(p));
            snprintf(what, sizeof what, "%s p %.1f: att", ver.name, (double)p);
            bench_check("attention", what, d.att, att);
            snprintf(what, sizeof what, "%s p %.1f: out", ver.name, (double)p);
            bench_check("attention", what, d.out, out);
        }
        if (p == 0.0f) {
            Dev ws(attention_cudnn_ws_floats(s.B, s.T, s.T, s.NH, s.HS));
            AvtErr err;
            if (run_cudnn(d, ws, &err) == 0)
                bench_check("attention_cudnn", "cuDNN SDPA p 0.0: out", d.out, out);
            else
                printf("  cuDNN SDPA not validated: %s\n", err.msg);
        } else {
            Vec dq, dk, dv;
            cpu_backward(dq, dk, dv, c, att, att_drop(p));
            d.att.put(att);
            for (Dev *g : {&d.dq, &d.dk, &d.dv}) g->put(Vec(c.nq, 0.0f));
            run_backward(d, att_drop(p));
            bench_check("attention", "backward p 0.1: dq", d.dq, dq);
            bench_check("attention", "backward p 0.1: dk", d.dk, dk);
            bench_check("attention", "backward p 0.1: dv", d.dv, dv);
        }
    }
}

static void time_cpu(const AttCase &c) {
    char t[128];
    title(t, sizeof t, c.s);
    bench_table(t, BENCH_FLOPS);
    Vec out, att, dq, dk, dv;
    for (float p : {0.0f, 0.1f}) {
        const double us = bench_cpu_us([&] { cpu_forward(out, att, c, att_drop(p)); });
        bench_row(p > 0.0f ? "cpu forward p 0.1" : "cpu forward p 0.0", us, 4.0 * c.pairs() * c.s.HS, 0.0);
    }
    const double us = bench_cpu_us([&] { cpu_backward(dq, dk, dv, c, att, att_drop(0.1f)); });
    bench_row("cpu backward p 0.1", us, 8.0 * c.pairs() * c.s.HS, 0.0);
}

#ifndef AVT_EMU
static void time_gpu(const AttCase &c, AttDev &d) {
    const AttShape &s = c.s;
    char t[128], row[96];
    title(t, sizeof t, s);
    bench_table(t, BENCH_FLOPS);
    const double flops = 4.0 * c.pairs() * s.HS;
    Dev ws(attention_cudnn_ws_floats(s.B, s.T, s.T, s.NH, s.HS));
    AvtErr err;
    double base = 0.0;
    if (run_cudnn(d, ws, &err) == 0) {
        base = bench_gpu_us([&] { run_cudnn(d, ws, &err); });
        bench_row("cuDNN SDPA, bf16 (baseline)", base, flops, base);
    } else {
        printf("  %-44s baseline unavailable: %s\n", "cuDNN SDPA", err.msg);
    }
    for (float p : {0.0f, 0.1f})
        for (const auto &ver : VERSIONS) {
            const double us = bench_gpu_us([&] { run_forward(d, ver.fn, att_drop(p)); });
            snprintf(row, sizeof row, "%s p %.1f", ver.name, (double)p);
            bench_row(row, us, flops, base);
        }
    const double us = bench_gpu_us([&] { run_backward(d, att_drop(0.1f)); });
    bench_row("backward p 0.1", us, 2.0 * flops, 0.0);
}
#endif

int main(void) {
    const BenchMode mode = bench_start("attention (kernels/cuda/attention.cu)");
    for (const AttShape &s : mode == BENCH_EMU ? EMU_SHAPES : SHAPES) {
        const AttCase c(s);
        if (mode == BENCH_CPU) {
            time_cpu(c);
            continue;
        }
        AttDev d(c);
        validate(c, d);
#ifndef AVT_EMU
        time_gpu(c, d);
#endif
    }
    return 0;
}
