// Pointwise kernels (kernels/cuda/elementwise.cu, embed.cu): relu, add, dropout, concat and the encoder input
// embedding, forward and backward (backwards accumulate), at the shapes the model runs them: relu and dropout on
// the feed-forward hidden layer (N, 4d), add and embed on (N, d), concat of two (N, d) streams. Memory-bound: the
// rates count every tensor element read or written once (an accumulated gradient is read and written).
#include <functional>
#include <memory>

#include "benchmarks/kernels/bench_common.cuh"

struct EwShape {
    const char *name;
    int B, T, d;
};

static const EwShape SHAPES[] = {{"base d 240", 64, 100, 240}, {"large d 384", 64, 100, 384}};
static const EwShape EMU_SHAPES[] = {{"base d 240 (reduced)", 2, 19, 240}, {"large d 384 (reduced)", 1, 37, 384}};

// One kernel: its CPU twin and its launch, the output(s) to compare and the bytes one call moves.
struct EwOp {
    const char *name, *tol;
    double bytes;
    std::function<void()> cpu, gpu;
    std::vector<std::pair<const Vec *, const Dev *>> outputs;
};

int main(void) {
    const BenchMode mode = bench_start("elementwise (kernels/cuda/elementwise.cu, embed.cu)");
    const bool dev = mode != BENCH_CPU;
    for (const EwShape &s : mode == BENCH_EMU ? EMU_SHAPES : SHAPES) {
        const size_t N = (size_t)s.B * s.T, n = N * (size_t)s.d, nh = 4 * n;  // nh: the hidden layer (N, 4d)
        const DropoutKey drop{0xfeedfacecafebeefull, 5u, 9u, 0.1f};
        // Host inputs, CPU outputs (h_*), and their device twins (d_*), allocated only with a device.
        const Vec x = random_vec(nh, -1.0f, 1.0f, 31), g = random_vec(nh, -1.0f, 1.0f, 32),
                  a = random_vec(n, -1.0f, 1.0f, 33), b = random_vec(n, -1.0f, 1.0f, 34),
                  g2 = random_vec(2 * n, -1.0f, 1.0f, 35), acc = random_vec(nh, -0.5f, 0.5f, 36);
        Vec pe((size_t)(s.T + 1) * s.d);
        sinusoid_table(pe.data(), s.T, s.d);
        Vec h_relu(nh), h_drelu, h_add(n), h_drop(nh), h_ddrop, h_cat(2 * n), h_da, h_db, h_emb(n), h_demb;
        auto make = [&](const Vec &h) { return dev ? new Dev(h) : nullptr; };
        std::unique_ptr<Dev> d_x(make(x)), d_g(make(g)), d_a(make(a)), d_b(make(b)), d_g2(make(g2)),
            d_pe(make(pe)), d_relu(make(h_relu)), d_drelu(make(acc)), d_add(make(h_add)), d_drop(make(h_drop)),
            d_ddrop(make(acc)), d_cat(make(h_cat)), d_da(make(a)), d_db(make(b)), d_emb(make(h_emb)),
            d_demb(make(a));
        const std::vector<EwOp> ops = {
            {"relu forward (N, 4d)", "relu", 8.0 * nh, [&] { relu_forward(h_relu.data(), x.data(), nh); },
             [&] { relu_forward_cuda(d_relu->p, d_x->p, nh, 0); }, {{&h_relu, d_relu.get()}}},
            {"relu backward (N, 4d)", "relu", 16.0 * nh,
             [&] { h_drelu = acc, relu_backward(h_drelu.data(), g.data(), h_relu.data(), nh); },
             [&] { relu_backward_cuda(d_drelu->p, d_g->p, d_relu->p, nh, 0); }, {{&h_drelu, d_drelu.get()}}},
            {"add (N, d)", "add", 12.0 * n, [&] { add_forward(h_add.data(), a.data(), b.data(), n); },
             [&] { add_forward_cuda(d_add->p, d_a->p, d_b->p, n, 0); }, {{&h_add, d_add.get()}}},
            {"dropout forward p 0.1 (N, 4d)", "dropout", 8.0 * nh,
             [&] { dropout_forward(h_drop.data(), x.data(), drop, nh); },
             [&] { dropout_forward_cuda(d_drop->p, d_x->p, drop, nh, 0); }, {{&h_drop, d_drop.get()}}},
            {"dropout backward p 0.1 (N, 4d)", "dropout", 12.0 * nh,
             [&] { h_ddrop = acc, dropout_backward(h_ddrop.data(), g.data(), drop, nh); },
             [&] { dropout_backward_cuda(d_ddrop->p, d_g->p, drop, nh, 0); }, {{&h_ddrop, d_ddrop.get()}}},
            {"concat forward (N, d | d)", "concat", 16.0 * n,
             [&] { concat_forward(h_cat.data(), a.data(), b.data(), N, s.d, s.d); },
             [&] { concat_forward_cuda(d_cat->p, d_a->p, d_b->p, N, s.d, s.d, 0); }, {{&h_cat, d_cat.get()}}},
            {"concat backward (N, d | d)", "concat", 24.0 * n,
             [&] { h_da = a, h_db = b, concat_backward(h_da.data(), h_db.data(), g2.data(), N, s.d, s.d); },
             [&] { concat_backward_cuda(d_da->p, d_db->p, d_g2->p, N, s.d, s.d, 0); },
             {{&h_da, d_da.get()}, {&h_db, d_db.get()}}},
            {"embed forward (B, T, d)", "embed", 8.0 * n,
             [&] { embed_forward(h_emb.data(), a.data(), pe.data(), s.B, s.T, s.d); },
             [&] { embed_forward_cuda(d_emb->p, d_a->p, d_pe->p, s.B, s.T, s.d, 0); }, {{&h_emb, d_emb.get()}}},
            {"embed backward (B, T, d)", "embed", 12.0 * n,
             [&] { h_demb = a, embed_backward(h_demb.data(), b.data(), s.B, s.T, s.d); },
             [&] { embed_backward_cuda(d_demb->p, d_b->p, s.B, s.T, s.d, 0); }, {{&h_demb, d_demb.get()}}},
        };
        char t[128];
        snprintf(t, sizeof t, "%s: B %d T %d d %d", s.name, s.B, s.T, s.d);
        if (mode == BENCH_CPU) {
            bench_table(t, BENCH_BYTES);
            for (const EwOp &op : ops) bench_row(op.name, bench_cpu_us(op.cpu), op.bytes, 0.0);
            continue;
        }
        // In list order: each backward starts from its forward's output and the fresh accumulators above.
        bench_validating(t);
        for (const EwOp &op : ops) {
            op.cpu();
            op.gpu();
            for (const auto &o : op.outputs) bench_check(op.tol, op.name, *o.second, *o.first);
        }
#ifndef AVT_EMU
        bench_table(t, BENCH_BYTES);
        for (const EwOp &op : ops) bench_row(op.name, bench_gpu_us(op.gpu), op.bytes, 0.0);
#endif
    }
    return 0;
}
