// The whole model on the cuda backend against the cpu backend: the same parameters, inputs and dropout stream, the
// pretraining loss with its backward (every parameter gradient), inference (h_av) and the fine-tuning head with
// cross-entropy and MSE. Under the emulator in CI, natively with `make test-gpu`. Tolerances: the model_* rows of
// kernels/cuda/cuda_tol.h.
#include <criterion/criterion.h>

#include <string>

#include "tests/cuda/cuda_test.h"
extern "C" {
#include "engine/backend.h"
#include "models/avt.h"
#include "tests/testutil.h"
}

static const Backend *cuda_backend(void) {
    AvtErr err;
    const Backend *be = backend_open("cuda", &err);
    cr_assert(be, "%s", err.msg);
    return be;
}

// File-local types: every test file is linked into one binary (one definition rule).
namespace {

// A batch with right padding (sample 1 ends 2 steps early: zero rows, the embedding's zero-step rule) and
// masked steps in both samples.
struct Batch {
    int B, T;
    Vec x_a, x_v, target_a, target_v, mask;
    std::vector<int> t_last, labels;
    Vec y; // regression targets (B, n_out)
    Batch(const AvtConfig &c, int batch, int steps) : B(batch), T(steps) {
        x_a = random_vec((size_t)B * T * c.d_a, -1.0f, 1.0f, 1);
        x_v = random_vec((size_t)B * T * c.d_v, 0.0f, 3.0f, 2);
        target_a = random_vec(x_a.size(), -1.0f, 1.0f, 3);
        target_v = random_vec(x_v.size(), 0.0f, 3.0f, 4);
        mask.assign((size_t)B * T, 0.0f);
        for (int i = 0; i < B; i++) {
            const int len = i == 1 ? T - 2 : T;
            for (int t = len; t < T; t++) {
                memset(&x_a[((size_t)i * T + t) * c.d_a], 0, (size_t)c.d_a * sizeof(float));
                memset(&x_v[((size_t)i * T + t) * c.d_v], 0, (size_t)c.d_v * sizeof(float));
            }
            for (int t = i; t < len; t += 3) mask[(size_t)i * T + t] = 1.0f;
            t_last.push_back(len - 1);
            labels.push_back(i % c.n_out);
        }
        y = random_vec((size_t)B * c.n_out, -1.0f, 1.0f, 5);
    }
};

enum Task { PRETRAIN, EMBED, FINETUNE };

// What one backend computed: named host copies of outputs and every parameter gradient.
struct Result {
    std::vector<std::string> names;
    std::vector<Vec> values;
    std::vector<bool> is_grad;
    void add(const char *name, Vec v, bool grad = false) {
        names.push_back(name);
        values.push_back(std::move(v));
        is_grad.push_back(grad);
    }
};
}  // namespace

static Vec read(const Graph *g, const Tensor *t) {
    Vec v(t->size);
    tensor_read(g, t, v.data());
    return v;
}

// Builds the task's graph on g (planning first), runs it, backward where there is a loss.
static Result run(const Backend *be, const AvtConfig &cfg, const Batch &in, Task task) {
    AvtModel m;
    avt_init(&m, cfg, 11);
    params_to(&m.params, be);
    Graph g;
    graph_init(&g, 4096, be);
    g.training = task != EMBED;
    g.no_grad = task == EMBED;
    g.seed = 0x5eed;
    g.step = 3;
    Batch b = in; // graph_input takes non-const host data
    int sa[3] = {b.B, b.T, cfg.d_a}, sv[3] = {b.B, b.T, cfg.d_v};
    Result r;
    Tensor *loss = nullptr, *out = nullptr, *out_v = nullptr, *logits = nullptr;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) graph_plan_begin(&g);
        else graph_reset(&g);
        Tensor *xa = graph_input(&g, pass ? b.x_a.data() : nullptr, 3, sa);
        Tensor *xv = graph_input(&g, pass ? b.x_v.data() : nullptr, 3, sv);
        if (task == PRETRAIN) {
            loss = avt_pretrain_loss(&g, &m, xa, xv, pass ? b.target_a.data() : nullptr,
                                     pass ? b.target_v.data() : nullptr, pass ? b.mask.data() : nullptr, &out,
                                     &out_v);
        } else if (task == EMBED) {
            out = avt_fuse(&g, &m, xa, xv);
        } else {
            logits = avt_head(&g, &m, avt_fuse(&g, &m, xa, xv), b.t_last.data());
            loss = op_add(&g, op_cross_entropy(&g, logits, b.labels.data()),
                          op_mse(&g, logits, pass ? b.y.data() : nullptr));
        }
        if (loss) {
            params_zero_grad(&m.params);
            graph_backward(&g, loss);
        }
        if (pass == 0) graph_plan_end(&g);
    }
    if (loss) r.add("loss", read(&g, loss));
    if (out) r.add(task == EMBED ? "h_av" : "out_a", read(&g, out));
    if (out_v) r.add("out_v", read(&g, out_v));
    if (logits) r.add("logits", read(&g, logits));
    if (loss) {
        Vec grads(m.params.grad.used / sizeof(float));
        be->download(grads.data(), m.params.grad.base, m.params.grad.used);
        for (int i = 0; i < m.params.n; i++) {
            const Param *p = &m.params.p[i];
            if (p->buffer || !p->t.grad) continue;
            const size_t off = (size_t)(p->t.grad - (float *)(void *)m.params.grad.base);
            r.add(p->name, Vec(grads.begin() + (ptrdiff_t)off, grads.begin() + (ptrdiff_t)(off + p->t.size)), true);
        }
    }
    graph_free(&g);
    avt_free(&m);
    return r;
}

static void compare(const AvtConfig &cfg, int B, int T, Task task, const char *what) {
    const Batch in(cfg, B, T);
    const Result cpu = run(&BACKEND_CPU, cfg, in, task), gpu = run(cuda_backend(), cfg, in, task);
    cr_assert_eq(cpu.names.size(), gpu.names.size());
    cr_assert_gt(cpu.names.size(), task == EMBED ? 0u : 20u, "too few tensors compared");
    for (size_t i = 0; i < cpu.names.size(); i++) {
        char name[160];
        snprintf(name, sizeof name, "%s: %s", what, cpu.names[i].c_str());
        expect_close(gpu.values[i], cpu.values[i], cpu.is_grad[i] ? "model_grad" : "model_out", name);
    }
}

// d 16, 2 layers, 2 heads (HS 8 and 16), a 3-way head.
static const AvtConfig TINY = {12, 5, 16, 2, 2, 3};
// The base model's widths and heads (HS 24 and 48) with one layer per encoder.
static const AvtConfig BASE_1 = {512, 17, 240, 1, 10, 6};

Test(cuda_model, pretrain_tiny) { compare(TINY, 2, 9, PRETRAIN, "pretrain tiny"); }
Test(cuda_model, pretrain_base_widths) { compare(BASE_1, 2, 7, PRETRAIN, "pretrain base widths"); }
Test(cuda_model, embed_tiny) { compare(TINY, 2, 9, EMBED, "embed tiny"); }
Test(cuda_model, finetune_tiny) { compare(TINY, 2, 9, FINETUNE, "finetune tiny"); }

// Two schedules of the emulator (or two runs on a GPU) give the same bits for the loss and every gradient.
Test(cuda_model, pretrain_deterministic) {
    const Batch in(TINY, 2, 9);
    expect_schedule_independent(
        [&] {
            const Result r = run(cuda_backend(), TINY, in, PRETRAIN);
            Vec all;
            for (const Vec &v : r.values) all.insert(all.end(), v.begin(), v.end());
            return all;
        },
        "pretraining loss and gradients");
}

// A checkpoint written from parameters on the device is the file the CPU writes.
Test(cuda_model, save_from_device, .init = [] { test_tmpdir(); }, .fini = test_tmpdir_remove) {
    AvtModel a, b;
    avt_init(&a, TINY, 3);
    avt_init(&b, TINY, 3);
    params_to(&b.params, cuda_backend());
    AvtErr err;
    cr_assert_eq(avt_save(&a, test_path("cpu.safetensors"), &err), 0, "%s", err.msg);
    cr_assert_eq(avt_save(&b, test_path("cuda.safetensors"), &err), 0, "%s", err.msg);
    cr_assert_eq(test_run("cmp -s %s %s", test_path("cpu.safetensors"), test_path("cuda.safetensors")), 0,
                 "the checkpoints differ");
    params_to(&b.params, &BACKEND_CPU); // and back: the values survive the round trip
    cr_assert_eq(memcmp(a.params.data.base, b.params.data.base, a.params.data.used), 0);
    avt_free(&a);
    avt_free(&b);
}
