// The gradient of one pretraining step (the trainer's trainer_grad: forward of the masked-reconstruction objective +
// backward, dropout on, no optimizer, like benchmarks/bench_torch.py) of the avt engine on --device cpu|cuda,
// timed over --steps steps after one warm-up step. Prints `avt_step_ms MEDIAN MEAN`.
#include <stdio.h>
#include <stdlib.h>
#include "train/trainer.h"
#include "tools/cli.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    AvtConfig cfg = AVT_BASE;
    int B = 64, T = 100, steps = 10, threads = 0, profile = 0;
    const char *device = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            printf("usage: bench_train [--config NAME] [--batch B] [--seq T] [--steps N] [--threads K] [--profile]\n"
                   "                   [--device cpu|cuda]\n");
            return 0;
        } else if (cli_is(a, "--batch")) B = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (cli_is(a, "--seq")) T = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (cli_is(a, "--steps")) steps = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (cli_is(a, "--profile")) profile = 1;
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (!cli_config_flag(argc, argv, &i, &cfg) && !cli_device_flag(argc, argv, &i, &device))
            cli_unknown("bench_train", a);
    }
    cli_set_threads(threads);
    const Backend *be = cli_backend(device);
    AvtModel m;
    avt_init(&m, cfg, 1);
    params_to(&m.params, be);
    size_t na = (size_t)B * T * cfg.d_a, nv = (size_t)B * T * cfg.d_v;
    float *xa = malloc_check(na * sizeof(float)), *xv = malloc_check(nv * sizeof(float));
    float *ta = malloc_check(na * sizeof(float)), *tv = malloc_check(nv * sizeof(float));
    float *mask = malloc_check((size_t)B * T * sizeof(float));
    for (size_t i = 0; i < na; i++) ta[i] = xa[i] = 2.0f * philox_uniform(9, 1, 0, i) - 1.0f;
    for (size_t i = 0; i < nv; i++) tv[i] = xv[i] = 5.0f * philox_uniform(9, 2, 0, i);
    for (size_t i = 0; i < (size_t)B * T; i++) mask[i] = philox_uniform(9, 3, 0, i) < 0.15f;

    Dist d = {.rank = 0, .world = 1};
    TrainerConfig tc = {.rows = B, .seq = T, .seed = 1234, .h = BERTADAM_SPEC, .lr = 1e-4f, .warmup = 0.1,
                        .t_total = 1, .bucket_bytes = 4 << 20};
    Trainer t;
    trainer_open(&t, &tc, &OBJECTIVE_MASKED_L1, &m, &d);
    fprintf(stderr, "avt (%s): B %d, T %d, d %d, L %d; arenas: activations %.0f MB, activation gradients %.0f MB\n",
            be->name, B, T, cfg.d, cfg.L, t.g.act.cap / 1e6, t.g.agrad.cap / 1e6);
    const TrainBatch batch = {.B = B, .T = T, .x_a = xa, .x_v = xv, .target_a = ta, .target_v = tv, .mask = mask};

    double *ms = malloc_check((size_t)steps * sizeof(double)), sum = 0.0;
    for (int s = -1; s < steps; s++) { // s = -1 warms up
        double t0 = avt_now();
        float loss = trainer_grad(&t, &batch);
        be->sync(); // the backward may still run on an asynchronous backend
        if (s == -1) ops_profile(profile); // profile the timed steps only
        if (s >= 0) {
            ms[s] = 1e3 * (avt_now() - t0);
            sum += ms[s];
            fprintf(stderr, "avt step %d/%d: %.0f ms (loss %.4f)\n", s + 1, steps, ms[s], loss);
        }
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    printf("avt_step_ms %.1f %.1f\n", ms[steps / 2], sum / steps);
    if (profile) ops_profile_report(stderr, steps);
    free(ms);
    free(xa);
    free(xv);
    free(ta);
    free(tv);
    free(mask);
    trainer_close(&t);
    avt_free(&m);
    return 0;
}
