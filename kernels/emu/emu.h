// CPU emulation of the CUDA execution model: the .cu sources are compiled by the host C++ compiler
// (g++ -std=c++17 -x c++ -DAVT_EMU, through kernels/cuda/cuda_common.cuh) against this header, and their kernels
// run on the CPU in kernels/emu/emu.cpp. It exists to execute and check CUDA kernels on machines without a GPU.
//
// Execution model
// - A launch runs its blocks one after another, in a shuffled order. The threads of a block are cooperative fibers
//   on the calling OS thread: a thread runs until it reaches a barrier (__syncthreads*, a warp operation) or exits,
//   and between barriers the runnable threads are resumed in a fresh shuffled order (seed: AVT_EMU_SEED or
//   avt_emu_set_seed, 0 = no shuffling). A missing __syncthreads or a wrong shared index changes the result.
// - Static __shared__ variables are function-level statics, shared by the block's fibers (blocks run one at a
//   time). Unlike a GPU they start zeroed and keep their values from block to block. Dynamic shared memory
//   (DYNAMIC_SHARED) is filled with 0xff bytes (NaN floats, -1 ints) before every block and ends at a guard page.
// - Warp operations (__shfl*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp) are barriers of the lanes
//   named in the mask: every named lane must reach one with the same mask and kind. A shuffle from a lane outside
//   the mask returns 0xff bytes, as the value is undefined on a GPU.
// - Global memory: a cudaMalloc buffer is 16-byte aligned and ends within 16 bytes of a PROT_NONE guard page, with
//   another guard page before it; it starts filled with 0xff bytes. Copies must stay inside one buffer.
// - Errors stop the process with one line "avt: FILE:LINE: kernel K: ..." and abort(): a __syncthreads not reached
//   by every thread of the block (some exited, or wait at another __syncthreads call), warp operations that cannot
//   complete or whose lanes disagree, accesses past either end of a cudaMalloc buffer (the guard pages, caught by a
//   SIGSEGV handler; writes into the alignment slack by canaries checked after every launch), dynamic shared memory
//   overruns, more than 48 KiB of dynamic shared memory without cudaFuncSetAttribute, fiber stack overflow (stack
//   size AVT_EMU_STACK_KB, default 64). For a fault FILE:LINE is the launch's.
// - Not emulated: asynchrony (every call completes before it returns; streams and events are bookkeeping),
//   races on global memory without atomics (a fiber is never interrupted between barriers, so atomics are plain
//   read-modify-writes), communication between blocks of one launch, cooperative groups, half precision.
//   One OS thread at a time may use the runtime.
#ifndef AVT_EMU_H
#define AVT_EMU_H

#ifndef __cplusplus
#error "kernels/emu/emu.h is C++: compile .cu files with g++ -x c++ -DAVT_EMU"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static  // one copy per kernel, reused by every block (see above)
// __restrict__ is a GNU C++ keyword already.

// ---- built-in variables ----
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
// Set by the scheduler before it resumes a fiber.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// ---- vector types ----
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned x, y; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
struct __align__(16) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline dim3 make_dim3(unsigned x, unsigned y, unsigned z) { return dim3(x, y, z); }

// ---- math intrinsics (device functions that are not plain C99 math) ----
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline float __int2float_rn(int x) { return (float)x; }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
inline float __uint_as_float(unsigned i) { float x; memcpy(&x, &i, 4); return x; }
inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
inline double __longlong_as_double(long long i) { double x; memcpy(&x, &i, 8); return x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline int __mulhi(int x, int y) { return (int)(((long long)x * y) >> 32); }
inline unsigned __umulhi(unsigned x, unsigned y) { return (unsigned)(((unsigned long long)x * y) >> 32); }
inline int __mul24(int x, int y) { return x * y; }
inline unsigned __umul24(unsigned x, unsigned y) { return x * y; }
template <class T> inline T __ldg(const T *p) { return *p; }
// min/max: the overloads of CUDA's math headers, mixed signedness going unsigned as there
#define AVT_EMU_MINMAX(R, A, B)                                                  \
    inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; }                  \
    inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
AVT_EMU_MINMAX(int, int, int)
AVT_EMU_MINMAX(unsigned, unsigned, unsigned)
AVT_EMU_MINMAX(unsigned, int, unsigned)
AVT_EMU_MINMAX(unsigned, unsigned, int)
AVT_EMU_MINMAX(long long, long long, long long)
AVT_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
AVT_EMU_MINMAX(unsigned long long, long long, unsigned long long)
AVT_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef AVT_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }
long long clock64(void);  // nanoseconds of a monotonic clock
inline void __threadfence(void) { __asm__ __volatile__("" ::: "memory"); }
inline void __threadfence_block(void) { __asm__ __volatile__("" ::: "memory"); }

// ---- atomics: fibers are never interrupted, so a read-modify-write is atomic ----
#define AVT_EMU_RMW(name, T, expr) \
    inline T name(T *p, T v) { T old = *p; *p = (expr); return old; }
#define AVT_EMU_RMW_INT(name, expr)               \
    AVT_EMU_RMW(name, int, expr)                  \
    AVT_EMU_RMW(name, unsigned, expr)             \
    AVT_EMU_RMW(name, unsigned long long, expr)
AVT_EMU_RMW_INT(atomicAdd, old + v)
AVT_EMU_RMW(atomicAdd, float, old + v)
AVT_EMU_RMW(atomicAdd, double, old + v)
AVT_EMU_RMW(atomicSub, int, old - v)
AVT_EMU_RMW(atomicSub, unsigned, old - v)
AVT_EMU_RMW_INT(atomicExch, v)
AVT_EMU_RMW(atomicExch, float, v)
AVT_EMU_RMW_INT(atomicMax, old > v ? old : v)
AVT_EMU_RMW(atomicMax, long long, old > v ? old : v)
AVT_EMU_RMW_INT(atomicMin, old < v ? old : v)
AVT_EMU_RMW(atomicMin, long long, old < v ? old : v)
AVT_EMU_RMW_INT(atomicAnd, old & v)
AVT_EMU_RMW_INT(atomicOr, old | v)
AVT_EMU_RMW_INT(atomicXor, old ^ v)
AVT_EMU_RMW(atomicInc, unsigned, old >= v ? 0u : old + 1u)
AVT_EMU_RMW(atomicDec, unsigned, (old == 0u || old > v) ? v : old - 1u)
#undef AVT_EMU_RMW_INT
#undef AVT_EMU_RMW
template <class T> inline T atomicCAS(T *p, T compare, T v) {
    static_assert(std::is_integral<T>::value && (sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8),
                  "atomicCAS: unsigned short, int, unsigned or unsigned long long");
    T old = *p;
    if (old == compare) *p = v;
    return old;
}

// ---- runtime API: host memory, synchronous calls ----
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidResourceHandle = 400,
};
typedef cudaError_t cudaError;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
typedef struct AvtEmuStream *cudaStream_t;
typedef struct AvtEmuEvent *cudaEvent_t;
#define cudaStreamDefault 0u
#define cudaStreamNonBlocking 1u
#define cudaEventDefault 0u
#define cudaEventDisableTiming 2u
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin;
    int warpSize, maxThreadsPerBlock, multiProcessorCount, major, minor;
};

cudaError_t cudaMalloc(void **p, size_t bytes);
template <class T> inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
template <class T> inline cudaError_t cudaMallocHost(T **p, size_t bytes) {
    return cudaMallocHost((void **)p, bytes);
}
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s = 0);
template <class T>
inline cudaError_t cudaMemcpyToSymbol(T &symbol, const void *src, size_t bytes, size_t offset = 0,
                                      cudaMemcpyKind = cudaMemcpyHostToDevice) {
    if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
    memcpy((char *)&symbol + offset, src, bytes);
    return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &symbol, size_t bytes, size_t offset = 0,
                                        cudaMemcpyKind = cudaMemcpyDeviceToHost) {
    if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
    memcpy(dst, (const char *)&symbol + offset, bytes);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDevice(int *dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int dev);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t e);
// The detail of the last failing call when e is its error (e.g. which allocation a copy overran), else the name.
const char *cudaGetErrorString(cudaError_t e);
// Dynamic shared memory above 48 KiB needs this, as on a GPU.
cudaError_t avt_emu_func_set_attribute(const void *kernel, cudaFuncAttribute attr, int value);
template <class K> inline cudaError_t cudaFuncSetAttribute(K *kernel, cudaFuncAttribute attr, int value) {
    return avt_emu_func_set_attribute((const void *)kernel, attr, value);
}

// ---- emulator control ----
// Seed of the thread and block shuffles (default: AVT_EMU_SEED, else 1); 0 runs threads and blocks in order.
void avt_emu_set_seed(uint64_t seed);
uint64_t avt_emu_seed(void);
// Kernel launches so far (every test can check that its kernel really ran).
unsigned long long avt_emu_launch_count(void);

// ---- barriers and warp operations: the calls carry their source line for the error messages ----
namespace avt_emu {
enum Op { BAR_SYNC, BAR_COUNT, BAR_AND, BAR_OR, SHFL_IDX, SHFL_UP, SHFL_DOWN, SHFL_XOR, BALLOT, ANY, ALL, SYNCWARP };
int barrier(const char *file, int line, Op op, int pred);
uint64_t warp_op(const char *file, int line, Op op, unsigned mask, uint64_t val, unsigned arg, int width);
unsigned active_mask(void);
void *dynamic_shared(void);

template <class T> inline uint64_t to_bits(T v) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "warp shuffles move up to 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    return b;
}
template <class T> inline T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof v);
    return v;
}

// A call site: `__syncthreads()` expands to `Site{__FILE__, __LINE__}.syncthreads()`.
struct Site {
    const char *file;
    int line;
    void syncthreads() const { barrier(file, line, BAR_SYNC, 1); }
    int syncthreads_count(int p) const { return barrier(file, line, BAR_COUNT, p != 0); }
    int syncthreads_and(int p) const { return barrier(file, line, BAR_AND, p != 0); }
    int syncthreads_or(int p) const { return barrier(file, line, BAR_OR, p != 0); }
    template <class T> T shfl(Op op, unsigned mask, T v, unsigned arg, int width) const {
        return from_bits<T>(warp_op(file, line, op, mask, to_bits(v), arg, width));
    }
    template <class T> T shfl_idx(unsigned mask, T v, int src, int width = warpSize) const {
        return shfl(SHFL_IDX, mask, v, (unsigned)src, width);
    }
    template <class T> T shfl_up(unsigned mask, T v, unsigned delta, int width = warpSize) const {
        return shfl(SHFL_UP, mask, v, delta, width);
    }
    template <class T> T shfl_down(unsigned mask, T v, unsigned delta, int width = warpSize) const {
        return shfl(SHFL_DOWN, mask, v, delta, width);
    }
    template <class T> T shfl_xor(unsigned mask, T v, int lane_mask, int width = warpSize) const {
        return shfl(SHFL_XOR, mask, v, (unsigned)lane_mask, width);
    }
    unsigned ballot(unsigned mask, int p) const { return (unsigned)warp_op(file, line, BALLOT, mask, p != 0, 0, 32); }
    int any(unsigned mask, int p) const { return (int)warp_op(file, line, ANY, mask, p != 0, 0, 32); }
    int all(unsigned mask, int p) const { return (int)warp_op(file, line, ALL, mask, p != 0, 0, 32); }
    void syncwarp(unsigned mask = 0xffffffffu) const { warp_op(file, line, SYNCWARP, mask, 0, 0, 32); }
};

// What a launch hands to the runtime; `body` runs the kernel with the launch's arguments.
struct Launch {
    const char *kernel, *file;
    int line;
    const void *fn;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    void (*body)(void *);
    void *ctx;
};
void run(const Launch &l);

// The arguments are converted to the kernel's parameter types once, as a GPU launch copies them; every thread
// then gets its own by-value copies.
template <class... P, class... A>
void launch(const char *name, const char *file, int line, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
            cudaStream_t stream, A &&...args) {
    static_assert(sizeof...(P) == sizeof...(A), "LAUNCH: wrong number of kernel arguments");
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    auto call = [&]() { std::apply(kernel, params); };
    Launch l{name, file, line, (const void *)kernel, grid, block, smem, stream,
             [](void *c) { (*static_cast<decltype(call) *>(c))(); }, &call};
    run(l);
}
}  // namespace avt_emu

#define __syncthreads avt_emu::Site{__FILE__, __LINE__}.syncthreads
#define __syncthreads_count avt_emu::Site{__FILE__, __LINE__}.syncthreads_count
#define __syncthreads_and avt_emu::Site{__FILE__, __LINE__}.syncthreads_and
#define __syncthreads_or avt_emu::Site{__FILE__, __LINE__}.syncthreads_or
#define __shfl_sync avt_emu::Site{__FILE__, __LINE__}.shfl_idx
#define __shfl_up_sync avt_emu::Site{__FILE__, __LINE__}.shfl_up
#define __shfl_down_sync avt_emu::Site{__FILE__, __LINE__}.shfl_down
#define __shfl_xor_sync avt_emu::Site{__FILE__, __LINE__}.shfl_xor
#define __ballot_sync avt_emu::Site{__FILE__, __LINE__}.ballot
#define __any_sync avt_emu::Site{__FILE__, __LINE__}.any
#define __all_sync avt_emu::Site{__FILE__, __LINE__}.all
#define __syncwarp avt_emu::Site{__FILE__, __LINE__}.syncwarp
#define __activemask avt_emu::active_mask

#endif
