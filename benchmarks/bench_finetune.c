// Fine-tuning throughput of the avt engine on --device cpu|cuda: whole updates of the trainer (trainer_step: forward,
// OBJECTIVE_CE on the head at each clip's last valid step, backward, global clip + BertAdam, dropout on), with the
// whole model trained, as benchmarks/bench_finetune_torch.py does on the PyTorch twin. Each update takes a fresh
// batch of B random clips of random lengths (uniform in [ceil(T/2), T] steps), right-padded with zeros to --seq T,
// and random labels over --classes classes; the batch is made outside the timed region. One warm-up update, then
// --steps timed. Prints `avt_finetune_ms MEDIAN CLIPS_PER_S` (clips per second at the median update time).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train/trainer.h"
#include "tools/cli.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Batch number s: lengths, features (zero past each clip's length), labels.
static void make_batch(TrainBatch *b, const AvtConfig *cfg, int n_class, uint32_t s) {
    const int B = b->B, T = b->T, lo = (T + 1) / 2;
    memset(b->x_a, 0, (size_t)B * T * cfg->d_a * sizeof(float));
    memset(b->x_v, 0, (size_t)B * T * cfg->d_v * sizeof(float));
    for (int i = 0; i < B; i++) {
        int len = lo + (int)(philox_uniform(9, 4, s, (size_t)i) * (float)(T - lo + 1));
        len = len > T ? T : len;
        b->t_last[i] = len - 1;
        b->label[i] = (int)(philox_uniform(9, 5, s, (size_t)i) * (float)n_class) % n_class;
        for (int t = 0; t < len; t++) {
            size_t row = (size_t)i * T + t;
            for (int j = 0; j < cfg->d_a; j++)
                b->x_a[row * cfg->d_a + j] = 2.0f * philox_uniform(9, 1, s, row * cfg->d_a + j) - 1.0f;
            for (int j = 0; j < cfg->d_v; j++)
                b->x_v[row * cfg->d_v + j] = 5.0f * philox_uniform(9, 2, s, row * cfg->d_v + j);
        }
    }
}

int main(int argc, char **argv) {
    AvtConfig cfg = AVT_BASE;
    int B = 32, T = 20, steps = 10, threads = 2, n_class = 6, profile = 0;
    const char *device = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            printf("usage: bench_finetune [--config NAME] [--batch B] [--seq T] [--steps N] [--threads K]\n"
                   "                      [--classes N] [--profile] [--device cpu|cuda]\n"
                   "defaults: --config base --batch 32 --seq 20 --steps 10 --threads 2 --classes 6\n");
            return 0;
        } else if (cli_is(a, "--batch")) B = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (cli_is(a, "--seq")) T = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (cli_is(a, "--steps")) steps = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--classes")) n_class = cli_int(a, cli_value(argc, argv, &i), 2, 1 << 16);
        else if (cli_is(a, "--profile")) profile = 1;
        else if (!cli_config_flag(argc, argv, &i, &cfg) && !cli_device_flag(argc, argv, &i, &device))
            cli_unknown("bench_finetune", a);
    }
    cli_set_threads(threads);
    const Backend *be = cli_backend(device);
    cfg.n_out = n_class;
    AvtModel m;
    avt_init(&m, cfg, 1);
    params_to(&m.params, be);
    TrainBatch batch = {.B = B, .T = T};
    batch.x_a = malloc_check((size_t)B * T * cfg.d_a * sizeof(float));
    batch.x_v = malloc_check((size_t)B * T * cfg.d_v * sizeof(float));
    batch.t_last = malloc_check((size_t)B * sizeof(int));
    batch.label = malloc_check((size_t)B * sizeof(int));

    Dist d = {.rank = 0, .world = 1};
    TrainerConfig tc = {.rows = B, .seq = T, .seed = 1234, .h = BERTADAM_SPEC, .lr = 5e-5f, .warmup = 0.1,
                        .t_total = 1000, .bucket_bytes = 4 << 20};
    Trainer t;
    trainer_open(&t, &tc, &OBJECTIVE_CE, &m, &d);
    fprintf(stderr, "avt fine-tuning (%s): B %d, T %d, d %d, L %d, %d classes; arenas: activations %.0f MB, "
            "activation gradients %.0f MB\n", be->name, B, T, cfg.d, cfg.L, n_class, t.g.act.cap / 1e6,
            t.g.agrad.cap / 1e6);

    double *ms = malloc_check((size_t)steps * sizeof(double)), sum = 0.0;
    for (int s = -1; s < steps; s++) { // s = -1 warms up
        make_batch(&batch, &cfg, n_class, (uint32_t)(s + 1));
        TrainStats st;
        double t0 = avt_now();
        trainer_step(&t, &batch, &st);
        be->sync(); // the optimiser may still run on an asynchronous backend
        if (s == -1) ops_profile(profile); // profile the timed steps only
        if (s >= 0) {
            ms[s] = 1e3 * (avt_now() - t0);
            sum += ms[s];
            fprintf(stderr, "avt update %d/%d: %.0f ms (loss %.4f)\n", s + 1, steps, ms[s], st.loss);
        }
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    const double med = ms[steps / 2];
    fprintf(stderr, "avt fine-tuning: median %.1f ms, mean %.1f ms per update\n", med, sum / steps);
    printf("avt_finetune_ms %.1f %.2f\n", med, B * 1e3 / med);
    if (profile) ops_profile_report(stderr, steps);
    free(ms);
    free(batch.x_a);
    free(batch.x_v);
    free(batch.t_last);
    free(batch.label);
    trainer_close(&t);
    avt_free(&m);
    return 0;
}
