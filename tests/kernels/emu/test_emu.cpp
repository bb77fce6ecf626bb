// Tests of the CUDA emulator (kernels/emu): the kernels of tests/kernels/emu/emu_kernels.cu run under emulation against
// plain CPU loops (block sizes 32..1024, sizes that are not multiples of them), and the emulator catches the
// broken ones: a missing __syncthreads gives a wrong result, out-of-bounds accesses, barriers that cannot complete
// and stack overflows stop the process with one line naming the kernel (run in a forked child).
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/emu/emu.h"

extern "C" {
float emu_block_sum(const float *x, int n, int block, int second_sync);
float emu_warp_sum(const float *x, int n, int block);
void emu_reverse_blocks(float *out, const float *x, int n, int block, int smem_floats, int store);
void emu_vec4(float *out, const float *x, int n4, float scale, float shift, int raise_limit);
void emu_histogram(int *hist, float *bin_sum, int *max_val, float *min_val, const int *x, int n, int nbins,
                   int block);
void emu_warp_ops(unsigned *out, const unsigned *x, int n, int block);
void emu_index(unsigned *out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);
void emu_write_past_end(int n);
void emu_shifted_copy(int n, int shift);
void emu_broken_sync(int mode, int block, int active);
void emu_big_stack(void);
}
#define WARP_OPS 10

// Integer values in [lo, hi] (as floats their sums are exact in any order), from a fixed LCG.
static std::vector<int> random_ints(size_t n, int lo, int hi, uint32_t seed) {
    std::vector<int> v(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = lo + (int)((seed >> 8) % (uint32_t)(hi - lo + 1));
    }
    return v;
}
static std::vector<float> random_floats(size_t n, uint32_t seed) {
    std::vector<int> v = random_ints(n, -8, 8, seed);
    return std::vector<float>(v.begin(), v.end());
}
static float cpu_sum(const std::vector<float> &x) {
    double s = 0;
    for (float v : x) s += v;
    return (float)s;
}

static const int BLOCKS[] = {32, 64, 100, 128, 256, 512, 1000, 1024};
static const int SIZES[] = {1, 31, 1000, 4099, 50000};

Test(emu, block_sum_static_shared) {
    for (int n : SIZES) {
        std::vector<float> x = random_floats((size_t)n, (uint32_t)n);
        const float ref = cpu_sum(x);
        for (int block : BLOCKS) {
            const float got = emu_block_sum(x.data(), n, block, 1);
            cr_assert_eq(got, ref, "block sum n %d block %d: %g, expected %g", n, block, got, ref);
        }
    }
}

// The "done when" point of issue 4: a kernel without its second __syncthreads fails under emulation.
Test(emu, missing_syncthreads_gives_wrong_result) {
    const int n = 4099;
    std::vector<float> x = random_floats((size_t)n, 7);
    const float ref = cpu_sum(x);
    int wrong = 0, tried = 0;
    for (uint64_t seed = 0; seed <= 8; seed++) {
        for (int block : {32, 256, 1024}) {
            avt_emu_set_seed(seed);
            cr_assert_eq(emu_block_sum(x.data(), n, block, 1), ref, "correct kernel, seed %lu block %d",
                         (unsigned long)seed, block);
            avt_emu_set_seed(seed);
            const float broken = emu_block_sum(x.data(), n, block, 0);
            wrong += broken != ref;
            tried++;
            avt_emu_set_seed(seed);
            cr_assert_eq(emu_block_sum(x.data(), n, block, 0), broken, "a seed gives one schedule");
        }
    }
    cr_assert_gt(wrong, 0, "the kernel without its second __syncthreads was right under every seed");
    cr_assert_geq(4 * wrong, 3 * tried, "wrong under only %d of %d seeds and block sizes", wrong, tried);
}

Test(emu, warp_shuffle_sum) {
    for (int n : SIZES) {
        std::vector<float> x = random_floats((size_t)n, (uint32_t)n + 1);
        const float ref = cpu_sum(x);
        for (int block : {32, 64, 96, 256, 1024}) {
            const float got = emu_warp_sum(x.data(), n, block);
            cr_assert_eq(got, ref, "warp sum n %d block %d: %g, expected %g", n, block, got, ref);
        }
    }
}

Test(emu, dynamic_shared_memory) {
    for (int n : {1, 1000, 4099}) {
        std::vector<float> x = random_floats((size_t)n, 3), out((size_t)n);
        for (int block : {32, 100, 256, 1024}) {
            emu_reverse_blocks(out.data(), x.data(), n, block, block, 1);
            for (int base = 0; base < n; base += block) {
                const int count = n - base < block ? n - base : block;
                for (int t = 0; t < count; t++)
                    cr_assert_eq(out[(size_t)(base + t)], x[(size_t)(base + count - 1 - t)], "n %d block %d i %d", n,
                                 block, base + t);
            }
        }
    }
    // Dynamic shared memory starts as 0xff bytes in every block: a tile read without being written gives NaN.
    std::vector<float> x = random_floats(300, 4), out(300);
    emu_reverse_blocks(out.data(), x.data(), 300, 128, 128, 0);
    for (float v : out) cr_assert(isnan(v), "unwritten shared memory read %g", v);
}

static float squash(float v) { return 1.0f / (1.0f + expf(-v)) / sqrtf(fmaxf(v * v, 1.0f)); }

Test(emu, constant_memory_float4_intrinsics) {
    const int n4 = 1000, block = 256;
    std::vector<float> x(4 * (size_t)n4), out(4 * (size_t)n4);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((int)(i * 37 % 101) - 50) * 0.1f;
    emu_vec4(out.data(), x.data(), n4, 0.5f, 0.25f, 1);
    for (int i = 0; i < n4; i++) {
        const int base = i - i % block, count = n4 - base < block ? n4 - base : block, t = i - base;
        const int j = base + (block - 1 - t < count ? block - 1 - t : t);
        for (int k = 0; k < 4; k++) {
            const float ref = squash(x[(size_t)(4 * j + k)] * 0.5f + 0.25f), got = out[(size_t)(4 * i + k)];
            cr_assert(fabsf(got - ref) <= 1e-5f * fabsf(ref), "element %d: %g, expected %g", 4 * i + k, got, ref);
        }
    }
}

Test(emu, atomics_histogram) {
    const int n = 10000, nbins = 37;
    std::vector<int> x = random_ints((size_t)n, 0, 63, 11);
    std::vector<int> ref_hist(nbins, 0);
    std::vector<float> ref_sum(nbins, 0.0f);
    int ref_max = 0;
    for (int v : x) {
        ref_hist[(size_t)(v % nbins)]++;
        ref_sum[(size_t)(v % nbins)] += (float)v;
        ref_max = v > ref_max ? v : ref_max;
    }
    int ref_min = 64;
    for (int v : x) ref_min = v < ref_min ? v : ref_min;
    for (int block : {32, 256, 1024}) {
        std::vector<int> hist(nbins);
        std::vector<float> sum(nbins);
        int max_val = -1;
        float min_val = 0;
        emu_histogram(hist.data(), sum.data(), &max_val, &min_val, x.data(), n, nbins, block);
        for (int b = 0; b < nbins; b++) {
            cr_assert_eq(hist[(size_t)b], ref_hist[(size_t)b], "block %d bin %d", block, b);
            cr_assert_eq(sum[(size_t)b], ref_sum[(size_t)b], "block %d bin %d sum", block, b);
        }
        cr_assert_eq(max_val, ref_max, "atomicMax");
        cr_assert_eq(min_val, (float)ref_min - 0.5f, "atomicCAS min");
    }
}

// The CUDA semantics of each warp operation, written out lane by lane.
Test(emu, warp_operations) {
    for (int block : {32, 64, 256}) {
        const int n = 4 * block;
        std::vector<int> xi = random_ints((size_t)n, 0, 99, (uint32_t)block);
        std::vector<unsigned> x(xi.begin(), xi.end()), out((size_t)n * WARP_OPS);
        emu_warp_ops(out.data(), x.data(), n, block);
        for (int i = 0; i < n; i++) {
            const int lane = i % 32, w = i - lane, b0 = i - i % block;
            const unsigned v = x[(size_t)i], *o = &out[(size_t)i * WARP_OPS];
            unsigned ballot = 0, any = 0, all = 1, scan = 0, count = 0;
            for (int j = 0; j < 32; j++) {
                const unsigned u = x[(size_t)(w + j)];
                ballot |= (u & 1u) << j;
                any |= u == 7;
                all &= u < 90;
                if (j <= lane) scan += u;
            }
            for (int j = 0; j < block; j++) count += x[(size_t)(b0 + j)] & 1u;
            const unsigned expect[WARP_OPS] = {
                x[(size_t)(w + (lane * 7 + 3) % 32)],
                x[(size_t)(w + (lane & ~7) + ((lane + 1) & 7))],
                lane >= 3 ? x[(size_t)(i - 3)] : v,
                (lane & 15) + 5 < 16 ? x[(size_t)(i + 5)] : v,
                x[(size_t)(w + (lane ^ 6))],
                ballot,
                any | all << 1,
                scan,
                x[(size_t)(w + (lane < 16 ? lane ^ 1 : lane ^ 2))],
                count,
            };
            for (int k = 0; k < WARP_OPS; k++)
                cr_assert_eq(o[k], expect[k], "block %d thread %d op %d: %u, expected %u", block, i, k, o[k],
                             expect[k]);
        }
    }
}

Test(emu, indices_3d) {
    const unsigned shapes[][6] = {{3, 2, 2, 8, 4, 2}, {2, 1, 3, 32, 1, 1}, {1, 1, 1, 4, 16, 16}, {5, 1, 1, 1024, 1, 1}};
    for (const auto &s : shapes) {
        const size_t nt = (size_t)s[3] * s[4] * s[5], n = (size_t)s[0] * s[1] * s[2] * nt;
        std::vector<unsigned> out(4 * n);
        emu_index(out.data(), s[0], s[1], s[2], s[3], s[4], s[5]);
        for (size_t g = 0; g < n; g++) {
            const unsigned b = (unsigned)(g / nt), t = (unsigned)(g % nt);
            const unsigned tx = t % s[3], ty = t / s[3] % s[4], tz = t / (s[3] * s[4]);
            const unsigned bx = b % s[0], by = b / s[0] % s[1], bz = b / (s[0] * s[1]);
            unsigned ballot = 0;
            for (unsigned j = 0; j < 32; j++) ballot |= (unsigned)((t - t % 32 + j) % 3 == 0) << j;
            cr_assert_eq(out[4 * g], tx | ty << 10 | tz << 20, "threadIdx of %zu", g);
            cr_assert_eq(out[4 * g + 1], bx | by << 10 | bz << 20, "blockIdx of %zu", g);
            cr_assert_eq(out[4 * g + 2], t - t % 32, "warps are formed from linear thread ids");
            cr_assert_eq(out[4 * g + 3], ballot, "ballot of %zu", g);
        }
    }
}

Test(emu, runtime_api) {
    float host[4] = {1, 2, 3, 4}, back[4];
    float *d;
    const unsigned long long launches = avt_emu_launch_count();
    cr_assert_eq(cudaMalloc(&d, sizeof host), cudaSuccess);
    cr_assert_eq(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
    for (float v : back) cr_assert(isnan(v), "fresh device memory is filled with 0xff bytes");
    cr_assert_eq(cudaMemcpy(d, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
    cr_assert_eq(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
    cr_assert_eq(memcmp(host, back, sizeof host), 0);
    // misuse is an error with a specific message, as cuda_check prints it
    cr_assert_eq(cudaMemcpy(d, host, 2 * sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    cr_assert(strstr(cudaGetErrorString(cudaErrorInvalidValue), "is not inside one cudaMalloc buffer"), "%s",
              cudaGetErrorString(cudaErrorInvalidValue));
    cr_assert_eq(cudaGetLastError(), cudaErrorInvalidValue);
    cr_assert_eq(cudaGetLastError(), cudaSuccess, "cudaGetLastError resets the error");
    cr_assert_eq(cudaMemcpy(host, d, sizeof host, cudaMemcpyHostToDevice), cudaErrorInvalidValue, "swapped pointers");
    cr_assert_eq(cudaFree(host), cudaErrorInvalidDevicePointer);
    cudaEvent_t a, b;
    float ms = -1;
    cr_assert_eq(cudaEventCreate(&a), cudaSuccess);
    cr_assert_eq(cudaEventCreate(&b), cudaSuccess);
    cr_assert_eq(cudaEventRecord(a), cudaSuccess);
    std::vector<float> x = random_floats(1000, 5);
    cr_assert_eq(emu_warp_sum(x.data(), 1000, 128), cpu_sum(x));
    cr_assert_eq(cudaEventRecord(b), cudaSuccess);
    cr_assert_eq(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
    cr_assert(ms >= 0.0f);
    cr_assert_eq(cudaEventDestroy(a), cudaSuccess);
    cr_assert_eq(cudaEventDestroy(b), cudaSuccess);
    cr_assert_eq(avt_emu_launch_count(), launches + 1);
    cr_assert_eq(cudaFree(d), cudaSuccess);
}

// ---- errors the emulator must catch: run in a child, which must abort with one line on stderr ----
struct Child {
    int sig;  // terminating signal, 0 if it exited
    std::string err;
};

static Child in_child(const std::function<void()> &fn) {
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    const pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        const struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        fn();
        _exit(0);
    }
    close(fd[1]);
    Child c = {0, ""};
    char buf[512];
    ssize_t k;
    while ((k = read(fd[0], buf, sizeof buf)) > 0) c.err.append(buf, (size_t)k);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    c.sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return c;
}

static void expect_abort(const Child &c, const char *what) {
    cr_assert_eq(c.sig, SIGABRT, "expected an abort, got signal %d; stderr: %s", c.sig, c.err.c_str());
    cr_assert(strstr(c.err.c_str(), what), "stderr lacks \"%s\": %s", what, c.err.c_str());
    cr_assert_eq(strncmp(c.err.c_str(), "avt: ", 5), 0, "%s", c.err.c_str());
    cr_assert_eq(c.err.find('\n'), c.err.size() - 1, "one line: %s", c.err.c_str());
}

Test(emu, write_past_end_is_caught) {
    // 4096 bytes: p[n] is the first byte of the guard page
    expect_abort(in_child([] { emu_write_past_end(1024); }),
                 "kernel write_past_end_kernel: out-of-bounds access 0 bytes past the end of a 4096-byte cudaMalloc "
                 "buffer in block (8,0,0) thread (0,0,0)");
    expect_abort(in_child([] { emu_write_past_end(1000); }), "tests/kernels/emu/emu_kernels.cu:");
    // 4004 bytes is not a multiple of 16: p[n] falls in the alignment slack, whose canaries are checked after launch
    expect_abort(in_child([] { emu_write_past_end(1001); }),
                 "kernel write_past_end_kernel: wrote 4 bytes past the end of a 4004-byte cudaMalloc buffer");
}

Test(emu, read_out_of_bounds_is_caught) {
    expect_abort(in_child([] { emu_shifted_copy(1024, -1); }),
                 "kernel shifted_copy_kernel: out-of-bounds access 4 bytes before the start of a 4096-byte cudaMalloc "
                 "buffer in block (0,0,0) thread (0,0,0)");
    expect_abort(in_child([] { emu_shifted_copy(1000, 1); }),
                 "kernel shifted_copy_kernel: out-of-bounds access 0 bytes past the end of a 4000-byte cudaMalloc "
                 "buffer in block (15,0,0) thread (39,0,0)");
}

Test(emu, shared_memory_limit_is_enforced) {
    std::vector<float> x(1024, 1.0f), out(1024);
    expect_abort(in_child([&] { emu_vec4(out.data(), x.data(), 256, 1.0f, 0.0f, 0); }),
                 "kernel vec4_kernel: 65536 bytes of dynamic shared memory exceed its limit 49152 (raise it with "
                 "cudaFuncSetAttribute)");
}

Test(emu, dynamic_shared_overrun_is_caught) {
    std::vector<float> x(256, 1.0f), out(256);
    expect_abort(in_child([&] { emu_reverse_blocks(out.data(), x.data(), 256, 128, 64, 1); }),
                 "kernel reverse_kernel: out-of-bounds dynamic shared memory access (256 bytes requested at launch)");
}

Test(emu, syncthreads_deadlock_is_caught) {
    expect_abort(in_child([] { emu_broken_sync(0, 64, 40); }),
                 "kernel broken_sync_kernel: __syncthreads not reached by all threads of block (0,0,0): 40 of 64 "
                 "threads wait here, 24 exited");
    expect_abort(in_child([] { emu_broken_sync(2, 64, 64); }),
                 "kernel broken_sync_kernel: threads of block (0,0,0) wait at different __syncthreads");
}

Test(emu, warp_op_deadlock_is_caught) {
    expect_abort(in_child([] { emu_broken_sync(1, 64, 64); }),
                 "kernel broken_sync_kernel: __shfl_xor_sync in block (0,0,0) warp 0: lane 0 waits for lane 16 (mask "
                 "0xffffffff), which exited");
}

Test(emu, stack_overflow_is_caught) {
    expect_abort(in_child([] { emu_big_stack(); }),
                 "kernel big_stack_kernel: stack overflow of a 64 KiB thread stack (set AVT_EMU_STACK_KB)");
    Child c = in_child([] {
        setenv("AVT_EMU_STACK_KB", "256", 1);
        emu_big_stack();
    });
    cr_assert_eq(c.sig, 0, "with 256 KiB stacks: %s", c.err.c_str());
}
