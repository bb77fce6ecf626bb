// Shared pieces of the kernel benchmarks (benchmarks/kernels/bench_*.cu): the run mode, inputs, device buffers,
// validation against the CPU twin under the tests' tolerance table, timers and the result table.
//
// Modes, picked at run time (bench_start):
//   BENCH_GPU  a CUDA device: validate every version on the benchmark shapes, then time it with cudaEvents (warm-up,
//              then the median of BENCH_GPU_REPS runs, L2 flushed before each by writing a buffer twice its size);
//   BENCH_CPU  a native build without a usable device: time the CPU twins on the same shapes (wall clock, median);
//   BENCH_EMU  built against the emulator (-DAVT_EMU): validation on reduced shapes only (emulation is ~1000x
//              slower and its timings mean nothing), so the GPU timers are not compiled there.
// A mismatch prints the worst element and exits with status 1.
#ifndef AVT_BENCH_COMMON_CUH
#define AVT_BENCH_COMMON_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_buf.h"
#include "kernels/cuda/cuda_tol.h"
extern "C" {
#include "kernels/cpu/kernels.h"
}

// Earlier kernel versions, kept for comparison (benchmarks/kernels/*_v1.cu); same arguments as the current ones.
extern "C" void attention_forward_cuda_v1(float *out, float *att, const float *q, const float *k, const float *v,
                                          DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS,
                                          cudaStream_t stream);

#define BENCH_GPU_WARMUP 5
#define BENCH_GPU_REPS 50
#define BENCH_CPU_MIN_REPS 3
#define BENCH_CPU_MAX_REPS 11
#define BENCH_CPU_BUDGET_US 1e6  // CPU: stop adding repetitions (past the minimum) after this much time

enum BenchMode { BENCH_GPU, BENCH_CPU, BENCH_EMU };
enum BenchUnit { BENCH_BYTES, BENCH_FLOPS };  // what a row's amount counts: GB/s or FLOP/s

inline BenchMode bench_mode_now;  // set by bench_start

// Prints the program's banner and the mode line; returns the mode.
static inline BenchMode bench_start(const char *family) {
    printf("== kernel benchmark: %s ==\n", family);
#ifdef AVT_EMU
    bench_mode_now = BENCH_EMU;
    printf("emulated build (AVT_EMU): validation on reduced shapes only; timings are not meaningful under emulation\n");
#else
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        bench_mode_now = BENCH_CPU;
        printf("no CUDA device: CPU kernel times only (%s; %d threads)\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", kernel_threads());
    } else {
        bench_mode_now = BENCH_GPU;
        cudaDeviceProp prop;
        cuda_check(cudaGetDeviceProperties(&prop, 0));
        printf("device: %s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
    }
#endif
    return bench_mode_now;
}


// got (device) against ref (CPU) under the op's CUDA_TOL row: max |got - ref| <= atol + rtol * max |ref|, NaN only
// where the CPU has NaN. Prints one line; exits 1 on a mismatch.
static inline void bench_check(const char *op, const char *what, const Dev &got_dev, const Vec &ref) {
    const CudaTol *tol = cuda_tol(op);
    if (!tol) avt_fatal("no CUDA_TOL row for %s (kernels/cuda/cuda_tol.h)", op);
    const Vec got = got_dev.get();
    if (got.size() != ref.size()) avt_fatal("%s (%s): %zu values, CPU %zu", op, what, got.size(), ref.size());
    double err = 0.0, mag = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        if (isnan(got[i]) != isnan(ref[i])) {
            printf("  check %-44s MISMATCH: item %zu is %.9g, CPU %.9g\n", what, i, (double)got[i], (double)ref[i]);
            exit(1);
        }
        if (isnan(ref[i])) continue;
        const double e = fabs((double)got[i] - (double)ref[i]);
        if (e > err) err = e, worst = i;
        mag = fmax(mag, fabs((double)ref[i]));
    }
    const double bound = tol->atol + tol->rtol * mag;
    printf("  check %-44s max err %9.3g  bound %9.3g  %s\n", what, err, bound, err <= bound ? "ok" : "MISMATCH");
    if (err > bound) {
        printf("  worst: item %zu is %.9g, CPU %.9g\n", worst, (double)got[worst], (double)ref[worst]);
        exit(1);
    }
}

static inline double bench_median(std::vector<double> t) {
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

static inline double bench_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

// Median wall time of fn() in microseconds, after one warm-up call.
template <class F> static inline double bench_cpu_us(F fn) {
    fn();
    std::vector<double> t;
    double total = 0.0;
    while ((int)t.size() < BENCH_CPU_MIN_REPS || ((int)t.size() < BENCH_CPU_MAX_REPS && total < BENCH_CPU_BUDGET_US)) {
        const double t0 = bench_now_us();
        fn();
        t.push_back(bench_now_us() - t0);
        total += t.back();
    }
    return bench_median(t);
}

#ifndef AVT_EMU
// Median time of fn() (launches on stream 0) in microseconds by cudaEvents. Before each timed run a memset over a
// buffer of twice the L2 size evicts the previous run's data, so every run starts from DRAM as in a training step
// (where other layers' tensors pass through L2 in between).
template <class F> static inline double bench_gpu_us(F fn) {
    static void *flush;
    static size_t flush_bytes;
    static cudaEvent_t e0, e1;
    if (!flush) {
        cudaDeviceProp prop;
        cuda_check(cudaGetDeviceProperties(&prop, 0));
        flush_bytes = 2 * (size_t)prop.l2CacheSize;
        cuda_check(cudaMalloc(&flush, flush_bytes));
        cuda_check(cudaEventCreate(&e0));
        cuda_check(cudaEventCreate(&e1));
    }
    for (int r = 0; r < BENCH_GPU_WARMUP; r++) fn();
    std::vector<double> t;
    for (int r = 0; r < BENCH_GPU_REPS; r++) {
        cuda_check(cudaMemsetAsync(flush, r & 0xff, flush_bytes, 0));
        cuda_check(cudaEventRecord(e0, 0));
        fn();
        cuda_check(cudaEventRecord(e1, 0));
        cuda_check(cudaEventSynchronize(e1));
        float ms = 0.0f;
        cuda_check(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(1e3 * (double)ms);
    }
    return bench_median(t);
}
#endif

// ---- the result table: one header per shape, one row per kernel version ----
inline BenchUnit bench_unit_now;  // set by bench_table

static inline void bench_table(const char *title, BenchUnit unit) {
    bench_unit_now = unit;
    const char *rate = unit == BENCH_BYTES ? "GB/s" : bench_mode_now == BENCH_GPU ? "TFLOP/s" : "GFLOP/s";
    printf("\n%s\n  %-44s %12s %10s %9s\n", title, "version", "time (us)", rate, "vs base");
}

// amount: bytes moved or floating-point operations done by one call; base_us: the baseline's time (the ratio is
// base_us / us, > 1 is faster than the baseline), or 0 for none.
static inline void bench_row(const char *version, double us, double amount, double base_us) {
    const double scale = bench_unit_now == BENCH_FLOPS && bench_mode_now == BENCH_GPU ? 1e6 : 1e3;
    char ratio[32] = "-";
    if (base_us > 0.0) snprintf(ratio, sizeof ratio, "%.2fx", base_us / us);
    printf("  %-44s %12.1f %10.2f %9s\n", version, us, amount / us / scale, ratio);
}

// The validation banner of a shape.
static inline void bench_validating(const char *shape) { printf("\nvalidate against the CPU twin: %s\n", shape); }

#endif
