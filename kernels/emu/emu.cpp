// CPU emulation of the CUDA execution model: the fiber scheduler, warp operations, guarded device memory and the
// runtime API (see emu.h for the model and its limits).
//
// Fibers switch with a hand-written x86-64 routine (callee-saved registers, MXCSR and the x87 control word, as
// the System V ABI requires; no system call); other machines, or -DAVT_EMU_UCONTEXT, use swapcontext.
#include "kernels/emu/emu.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#if !defined(__x86_64__) && !defined(AVT_EMU_UCONTEXT)
#define AVT_EMU_UCONTEXT
#endif
#ifdef AVT_EMU_UCONTEXT
#include <ucontext.h>
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace avt_emu {
namespace {

enum State : unsigned char { RUNNABLE, AT_BARRIER, AT_WARP, EXITED };
const char *const OP_NAME[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and", "__syncthreads_or",
                               "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                               "__ballot_sync", "__any_sync", "__all_sync", "__syncwarp"};
const int MAX_THREADS = 1024;
const size_t DEFAULT_SMEM = 48 << 10, MAX_SMEM = 227 << 10;  // bytes of dynamic shared memory (sm_90 opt-in max)
const unsigned char CANARY = 0xa5;

struct Fiber {
    void *sp;           // saved stack pointer while suspended (x86-64 switch)
    char *stack;        // lowest usable byte; the page below it is a guard page
    State state;
    uint3 tid;
    Op op;              // the barrier or warp operation it waits at, and where
    const char *file;
    int line;
    unsigned mask, arg; // warp operation: lanes, source lane / delta / xor mask
    int width;
    uint64_t val, res;
#ifdef AVT_EMU_UCONTEXT
    ucontext_t uc;
#endif
};

struct Alloc {    // one cudaMalloc buffer: [map, map + map_len) = guard page, data pages, guard page
    char *map, *p;
    size_t map_len, bytes;
};

struct Emu {
    bool ready;
    uint64_t seed, rng;
    size_t stack_bytes, page;
    std::vector<Fiber> fibers;  // MAX_THREADS, stacks made on first use
    char *stacks;
    void *sched_sp;
#ifdef AVT_EMU_UCONTEXT
    ucontext_t sched_uc;
#endif
    // the launch and block being run
    const Launch *l;
    int nthreads, cur, live, at_barrier, bar_accum, bar_result, bar_line;
    const char *bar_file;
    std::vector<int> order;
    unsigned long long launches;
    // dynamic shared memory: dsmem_end is a guard page, the block's bytes end there
    char *dsmem_map, *dsmem_end, *dsmem;
    size_t dsmem_cap;
    std::vector<std::pair<const void *, int>> smem_limits;
    std::vector<Alloc> allocs;
    cudaError_t last_error;
    char detail[320];
} E;

// One line "avt: FILE:LINE: kernel K: message" (FILE NULL: no place; no kernel running: no kernel), then abort().
__attribute__((format(printf, 3, 4))) [[noreturn]] void fail(const char *file, int line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[300] = "";
    if (file) snprintf(where, sizeof where, "%s:%d: ", file, line);
    fprintf(stderr, "avt: %s%s%s%s%s\n", where, E.l ? "kernel " : "", E.l ? E.l->kernel : "", E.l ? ": " : "", msg);
    abort();
}

uint64_t next_random(void) {  // splitmix64
    uint64_t z = (E.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

char *map_guarded(size_t data_len) {  // guard page, data_len bytes (a multiple of the page), guard page
    char *m = (char *)mmap(NULL, data_len + 2 * E.page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                           0);
    if (m == MAP_FAILED) return NULL;
    if (data_len && mprotect(m + E.page, data_len, PROT_READ | PROT_WRITE) != 0) {
        munmap(m, data_len + 2 * E.page);
        return NULL;
    }
    return m;
}

// ---- SIGSEGV: name the buffer, the kernel and the thread, then abort ----
struct sigaction old_segv;

void on_segv(int sig, siginfo_t *si, void *uctx) {
    char *a = (char *)si->si_addr;
    char what[256] = "";
    for (const Alloc &b : E.allocs) {
        if (a >= b.map && a < b.p)
            snprintf(what, sizeof what, "out-of-bounds access %zu bytes before the start of a %zu-byte %s",
                     (size_t)(b.p - a), b.bytes, "cudaMalloc buffer");
        else if (a >= b.p + b.bytes && a < b.map + b.map_len)
            snprintf(what, sizeof what, "out-of-bounds access %zu bytes past the end of a %zu-byte %s",
                     (size_t)(a - b.p - b.bytes), b.bytes, "cudaMalloc buffer");
    }
    if (!what[0] && E.dsmem_map && a >= E.dsmem_map && a < E.dsmem_end + E.page)
        snprintf(what, sizeof what, "out-of-bounds dynamic shared memory access (%zu bytes requested at launch)",
                 E.l ? E.l->smem : 0);
    const size_t slot = E.stack_bytes + E.page;
    if (!what[0] && E.stacks && a >= E.stacks && a < E.stacks + MAX_THREADS * slot &&
        (size_t)(a - E.stacks) % slot < E.page)
        snprintf(what, sizeof what, "stack overflow of a %zu KiB thread stack (set AVT_EMU_STACK_KB)",
                 E.stack_bytes >> 10);
    (void)sig, (void)uctx;
    if (!what[0] && !E.l) {  // not ours: let the previous handler or the default action take the fault again
        sigaction(SIGSEGV, &old_segv, NULL);
        return;
    }
    if (!what[0]) snprintf(what, sizeof what, "invalid memory access at %p", (void *)a);
    char line[640];
    int n;
    if (E.l)
        n = snprintf(line, sizeof line, "avt: %s:%d: kernel %s: %s in block (%u,%u,%u) thread (%u,%u,%u)\n", E.l->file,
                     E.l->line, E.l->kernel, what, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y,
                     threadIdx.z);
    else
        n = snprintf(line, sizeof line, "avt: host code: %s\n", what);
    if (write(2, line, (size_t)n) < 0) {}
    signal(SIGABRT, SIG_DFL);
    abort();
}

void init(void) {
    if (E.ready) return;
    E.ready = true;
    E.page = (size_t)sysconf(_SC_PAGESIZE);
    const char *s = getenv("AVT_EMU_SEED");
    E.seed = E.rng = s && *s ? strtoull(s, NULL, 0) : 1;
    const char *kb = getenv("AVT_EMU_STACK_KB");
    const size_t bytes = (size_t)(kb && atol(kb) > 16 ? atol(kb) : kb ? 16 : 64) << 10;
    E.stack_bytes = (bytes + E.page - 1) / E.page * E.page;
    E.cur = -1;
    E.fibers.resize(MAX_THREADS);
    E.order.resize(MAX_THREADS);
    static char altstack[1 << 16];
    stack_t ss = {};
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, NULL);
    struct sigaction sa = {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

Alloc *find_alloc(const void *ptr, size_t bytes) {  // the buffer holding [ptr, ptr + bytes), else NULL
    const char *c = (const char *)ptr;
    for (Alloc &b : E.allocs)
        if (c >= b.p && c <= b.p + b.bytes && bytes <= (size_t)(b.p + b.bytes - c)) return &b;
    return NULL;
}

bool is_device(const void *ptr) {
    for (const Alloc &b : E.allocs)
        if ((const char *)ptr >= b.map && (const char *)ptr < b.map + b.map_len) return true;
    return false;
}

__attribute__((format(printf, 2, 3))) cudaError_t set_error(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(E.detail, sizeof E.detail, fmt, ap);
    va_end(ap);
    E.last_error = e;
    return e;
}

// Writes into the alignment slack around a buffer (between it and its guard pages) change the canary bytes.
void check_canaries(const Alloc &b, const char *file, int line, const char *who) {
    static std::vector<unsigned char> ref;  // a page of canaries: memcmp is the fast path
    if (ref.empty()) ref.assign(E.page, CANARY);
    const size_t front = (size_t)(b.p - b.map) - E.page, back = b.map_len - E.page - (size_t)(b.p - b.map) - b.bytes;
    if (!memcmp(b.map + E.page, ref.data(), front) && !memcmp(b.p + b.bytes, ref.data(), back)) return;
    for (const char *c = b.map + E.page; c < b.p; c++)
        if ((unsigned char)*c != CANARY)
            fail(file, line, "%swrote %zu bytes before the start of a %zu-byte cudaMalloc buffer", who,
                 (size_t)(b.p - c), b.bytes);
    for (const char *c = b.map + b.map_len - E.page - 1; c >= b.p + b.bytes; c--)
        if ((unsigned char)*c != CANARY)
            fail(file, line, "%swrote %zu bytes past the end of a %zu-byte cudaMalloc buffer", who,
                 (size_t)(c - b.p - b.bytes + 1), b.bytes);
}

// ---- fibers ----
#ifndef AVT_EMU_UCONTEXT
extern "C" void avt_emu_switch(void **save_sp, void *next_sp);
extern "C" void avt_emu_trampoline(void);
// avt_emu_switch pushes the callee-saved registers and MXCSR/x87 control word, stores rsp in *save_sp, loads
// next_sp and pops the same frame. A new fiber's frame "returns" into the trampoline, which calls r13(r12).
__asm__(R"(
    .pushsection .text
    .globl avt_emu_switch
    .hidden avt_emu_switch
    .type avt_emu_switch, @function
    .p2align 4
avt_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size avt_emu_switch, .-avt_emu_switch

    .globl avt_emu_trampoline
    .hidden avt_emu_trampoline
    .type avt_emu_trampoline, @function
    .p2align 4
avt_emu_trampoline:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size avt_emu_trampoline, .-avt_emu_trampoline
    .popsection
)");
#endif

void fiber_main(void *arg);
#ifdef AVT_EMU_UCONTEXT
void fiber_main_uc(int i) { fiber_main((void *)(uintptr_t)i); }
#endif

void fiber_start(Fiber &f) {
#ifdef AVT_EMU_UCONTEXT
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = f.stack;
    f.uc.uc_stack.ss_size = E.stack_bytes;
    f.uc.uc_link = NULL;
    makecontext(&f.uc, (void (*)(void))fiber_main_uc, 1, (int)(&f - E.fibers.data()));
#else
    uint64_t *top = (uint64_t *)(f.stack + E.stack_bytes);  // 16-byte aligned
    uint64_t *sp = top - 8;
    uint32_t mxcsr;
    uint16_t fpcw;
    __asm__ __volatile__("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fpcw));
    sp[0] = mxcsr | (uint64_t)fpcw << 32;
    sp[1] = 0, sp[2] = 0;                                // r15, r14
    sp[3] = (uint64_t)(uintptr_t)fiber_main;             // r13
    sp[4] = (uint64_t)(&f - E.fibers.data());            // r12
    sp[5] = 0, sp[6] = 0;                                // rbx, rbp
    sp[7] = (uint64_t)(uintptr_t)avt_emu_trampoline;     // return address; the trampoline starts with rsp = top
    f.sp = sp;
#endif
}

void to_fiber(Fiber &f) {
#ifdef AVT_EMU_UCONTEXT
    swapcontext(&E.sched_uc, &f.uc);
#else
    avt_emu_switch(&E.sched_sp, f.sp);
#endif
}

void to_scheduler(Fiber &f) {
#ifdef AVT_EMU_UCONTEXT
    swapcontext(&f.uc, &E.sched_uc);
#else
    avt_emu_switch(&f.sp, E.sched_sp);
#endif
}

void fiber_main(void *arg) {
    Fiber &f = E.fibers[(size_t)(uintptr_t)arg];
    E.l->body(E.l->ctx);
    f.state = EXITED;
    E.live--;
    to_scheduler(f);  // never resumed
    abort();
}

Fiber &current(const char *file, int line, Op op) {
    if (!E.l || E.cur < 0) fail(file, line, "%s called outside a kernel", OP_NAME[op]);
    return E.fibers[(size_t)E.cur];
}

// Nothing can run: explain the first waiter that cannot be released, and abort at its line.
[[noreturn]] void deadlock(void) {
    int waiting = 0, exited = 0;
    for (int i = 0; i < E.nthreads; i++) {
        const Fiber &f = E.fibers[(size_t)i];
        if (f.state == AT_WARP) {
            const int base = i & ~31;
            for (int j = 0; j < 32; j++) {
                const Fiber &g = E.fibers[(size_t)(base + j)];
                if (!(f.mask >> j & 1) || (g.state == AT_WARP && g.mask == f.mask)) continue;
                char other[300] = "exited";
                if (g.state != EXITED)
                    snprintf(other, sizeof other, "waits at %s with mask 0x%08x at %s:%d", OP_NAME[g.op],
                             g.state == AT_WARP ? g.mask : 0xffffffffu, g.file, g.line);
                fail(f.file, f.line,
                     "%s in block (%u,%u,%u) warp %d: lane %d waits for lane %d (mask 0x%08x), which %s", OP_NAME[f.op],
                     blockIdx.x, blockIdx.y, blockIdx.z, i / 32, i & 31, j, f.mask, other);
            }
        }
        waiting += f.state == AT_BARRIER;
        exited += f.state == EXITED;
    }
    for (int i = 0; i < E.nthreads; i++) {
        const Fiber &f = E.fibers[(size_t)i];
        if (f.state == AT_BARRIER)
            fail(f.file, f.line,
                 "__syncthreads not reached by all threads of block (%u,%u,%u): %d of %d threads wait here, %d exited",
                 blockIdx.x, blockIdx.y, blockIdx.z, waiting, E.nthreads, exited);
    }
    fail(E.l->file, E.l->line, "scheduler found nothing to run in block (%u,%u,%u)", blockIdx.x, blockIdx.y,
         blockIdx.z);
}

void run_block(unsigned long long b) {
    const dim3 g = E.l->grid, d = E.l->block;
    blockIdx = uint3{(unsigned)(b % g.x), (unsigned)(b / g.x % g.y), (unsigned)(b / g.x / g.y)};
    memset(E.dsmem, 0xff, E.l->smem);
    for (int i = 0; i < E.nthreads; i++) {
        Fiber &f = E.fibers[(size_t)i];
        f.state = RUNNABLE;
        f.tid = uint3{i % d.x, i / d.x % d.y, i / (d.x * d.y)};
        fiber_start(f);
        E.order[(size_t)i] = i;
    }
    E.live = E.nthreads;
    E.at_barrier = 0;
    E.bar_accum = 0;
    while (E.live > 0) {
        if (E.seed)  // a fresh order for every round between barriers
            for (int i = E.nthreads - 1; i > 0; i--)
                std::swap(E.order[(size_t)i], E.order[(size_t)((next_random() >> 32) * (uint64_t)(i + 1) >> 32)]);
        int ran = 0;
        for (int k = 0; k < E.nthreads; k++) {
            Fiber &f = E.fibers[(size_t)E.order[(size_t)k]];
            if (f.state != RUNNABLE) continue;
            ran++;
            E.cur = E.order[(size_t)k];
            threadIdx = f.tid;
            to_fiber(f);
        }
        E.cur = -1;
        if (E.at_barrier == E.nthreads) {  // every thread reached __syncthreads: release the block
            const Op op = E.fibers[0].op;
            E.bar_result = op == BAR_COUNT ? E.bar_accum
                           : op == BAR_AND ? E.bar_accum == E.nthreads
                                           : E.bar_accum > 0;
            E.at_barrier = E.bar_accum = 0;
            for (int i = 0; i < E.nthreads; i++) E.fibers[(size_t)i].state = RUNNABLE;
        } else if (!ran && E.live > 0) {
            deadlock();
        }
    }
}

}  // namespace

int barrier(const char *file, int line, Op op, int pred) {
    Fiber &f = current(file, line, op);
    if (E.at_barrier == 0) {  // the first arrival fixes the call that all threads of the block must meet at
        E.bar_file = file, E.bar_line = line;
    } else if (line != E.bar_line || strcmp(file, E.bar_file) != 0) {
        fail(file, line, "threads of block (%u,%u,%u) wait at different __syncthreads: here and at %s:%d", blockIdx.x,
             blockIdx.y, blockIdx.z, E.bar_file, E.bar_line);
    }
    f.state = AT_BARRIER;
    f.op = op, f.file = file, f.line = line;
    E.at_barrier++;
    E.bar_accum += pred;
    to_scheduler(f);
    return E.bar_result;
}

uint64_t warp_op(const char *file, int line, Op op, unsigned mask, uint64_t val, unsigned arg, int width) {
    Fiber &f = current(file, line, op);
    const int lane = E.cur & 31, base = E.cur & ~31;
    const unsigned exists = E.nthreads - base >= 32 ? 0xffffffffu : (1u << (E.nthreads - base)) - 1;
    if (!(mask >> lane & 1)) fail(file, line, "%s: the calling lane %d is not in mask 0x%08x", OP_NAME[op], lane, mask);
    if (mask & ~exists)
        fail(file, line, "%s: mask 0x%08x names lanes that do not exist (the block's last warp has %d threads)",
             OP_NAME[op], mask, E.nthreads - base);
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail(file, line, "%s: width %d is not a power of 2 in [1, 32]", OP_NAME[op], width);
    f.state = AT_WARP;
    f.op = op, f.file = file, f.line = line, f.mask = mask, f.val = val, f.arg = arg, f.width = width;
    Fiber *w = &E.fibers[(size_t)base];
    bool complete = true;
    for (int j = 0; j < 32 && complete; j++)
        complete = !(mask >> j & 1) || (w[j].state == AT_WARP && w[j].mask == mask);
    if (complete) {  // the last lane of the group arrived: compute every lane's result
        unsigned votes = 0;
        for (int j = 0; j < 32; j++) {
            if (!(mask >> j & 1)) continue;
            if (w[j].op != op)
                fail(file, line, "lanes of warp %d disagree: lane %d is at %s, lane %d at %s (%s:%d)", base / 32,
                     lane, OP_NAME[op], j, OP_NAME[w[j].op], w[j].file, w[j].line);
            votes |= (unsigned)(w[j].val != 0) << j;
        }
        for (int j = 0; j < 32; j++) {
            if (!(mask >> j & 1)) continue;
            Fiber &g = w[j];
            const unsigned wd = (unsigned)g.width, seg = (unsigned)j & ~(wd - 1), pos = (unsigned)j & (wd - 1);
            unsigned src = (unsigned)j;
            switch (op) {
            case SHFL_IDX: src = seg | (g.arg & (wd - 1)); break;
            case SHFL_UP: src = pos >= g.arg ? j - g.arg : j; break;
            case SHFL_DOWN: src = g.arg < wd && pos + g.arg < wd ? j + g.arg : j; break;
            case SHFL_XOR: src = (j ^ g.arg) < 32 && ((j ^ g.arg) & ~(wd - 1)) <= seg ? j ^ g.arg : j; break;
            default: break;
            }
            if (op == BALLOT) g.res = votes;
            else if (op == ANY) g.res = votes != 0;
            else if (op == ALL) g.res = votes == mask;
            else g.res = mask >> src & 1 ? w[src].val : ~0ull;  // a lane outside the mask: undefined
            g.state = RUNNABLE;
        }
    }
    to_scheduler(f);
    return f.res;
}

unsigned active_mask(void) {
    Fiber &f = current(__FILE__, __LINE__, SYNCWARP);
    (void)f;
    const int base = E.cur & ~31;
    unsigned m = 0;
    for (int j = 0; j < 32 && base + j < E.nthreads; j++)
        m |= (unsigned)(E.fibers[(size_t)(base + j)].state != EXITED) << j;
    return m;
}

void *dynamic_shared(void) {
    if (!E.l) fail(__FILE__, __LINE__, "DYNAMIC_SHARED used outside a kernel");
    return E.dsmem;
}

void run(const Launch &l) {
    init();
    if (E.l) fail(l.file, l.line, "launch of %s from inside kernel %s: dynamic parallelism is not emulated", l.kernel,
                  E.l->kernel);
    const unsigned long long nb = (unsigned long long)l.grid.x * l.grid.y * l.grid.z;
    const unsigned long long nt = (unsigned long long)l.block.x * l.block.y * l.block.z;
    if (!nb || !nt || nt > MAX_THREADS || l.block.z > 64 || l.grid.x > 0x7fffffffu || l.grid.y > 65535 ||
        l.grid.z > 65535)
        fail(l.file, l.line, "kernel %s: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)", l.kernel,
             l.grid.x, l.grid.y, l.grid.z, l.block.x, l.block.y, l.block.z);
    size_t limit = DEFAULT_SMEM;
    for (const auto &a : E.smem_limits)
        if (a.first == l.fn) limit = (size_t)a.second;
    if (l.smem > limit)
        fail(l.file, l.line, "kernel %s: %zu bytes of dynamic shared memory exceed its limit %zu%s", l.kernel, l.smem,
             limit, limit == DEFAULT_SMEM ? " (raise it with cudaFuncSetAttribute)" : "");
    const size_t smem16 = (l.smem + 15) & ~(size_t)15;
    if (!E.dsmem_map || smem16 > E.dsmem_cap) {
        if (E.dsmem_map) munmap(E.dsmem_map, E.dsmem_cap + 2 * E.page);
        E.dsmem_cap = (smem16 + E.page) / E.page * E.page;
        E.dsmem_map = map_guarded(E.dsmem_cap);
        if (!E.dsmem_map) fail(l.file, l.line, "out of memory for %zu bytes of dynamic shared memory", l.smem);
        E.dsmem_end = E.dsmem_map + E.page + E.dsmem_cap;
    }
    E.dsmem = E.dsmem_end - smem16;  // with no dynamic shared memory, any access hits the guard page
    if (!E.stacks) {  // stack i: a guard page at stacks + i * slot, the stack above it
        const size_t slot = E.stack_bytes + E.page;
        char *m = map_guarded(MAX_THREADS * slot);
        if (!m) fail(l.file, l.line, "out of memory for the fiber stacks");
        E.stacks = m + E.page;
        for (int i = 0; i < MAX_THREADS; i++) {
            mprotect(E.stacks + i * slot, E.page, PROT_NONE);
            E.fibers[(size_t)i].stack = E.stacks + i * slot + E.page;
        }
    }
    E.l = &l;
    E.nthreads = (int)nt;
    E.launches++;
    gridDim = l.grid;
    blockDim = l.block;
    // blocks in the order a*i + c (mod nb) with gcd(a, nb) = 1
    unsigned long long a = 1, c = 0;
    if (E.seed && nb > 1) {
        c = next_random() % nb;
        for (a = next_random() % nb;; a = a % nb + 1) {
            unsigned long long x = a, y = nb;
            while (y) {
                const unsigned long long t = x % y;
                x = y, y = t;
            }
            if (x == 1) break;
        }
    }
    for (unsigned long long i = 0; i < nb; i++) run_block((unsigned long long)(((unsigned __int128)a * i + c) % nb));
    for (const Alloc &b : E.allocs) check_canaries(b, l.file, l.line, "");
    E.l = NULL;
}

}  // namespace avt_emu

using namespace avt_emu;

long long clock64(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000ll + t.tv_nsec;
}

void avt_emu_set_seed(uint64_t seed) {
    init();
    E.seed = E.rng = seed;
}
uint64_t avt_emu_seed(void) {
    init();
    return E.seed;
}
unsigned long long avt_emu_launch_count(void) { return E.launches; }

cudaError_t avt_emu_func_set_attribute(const void *kernel, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > MAX_SMEM)
        return set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute %d value %d", (int)attr, value);
    E.smem_limits.emplace_back(kernel, value);
    return cudaSuccess;
}

// ---- memory ----
cudaError_t cudaMalloc(void **p, size_t bytes) {
    init();
    *p = NULL;
    if (!bytes) return cudaSuccess;
    const size_t data = (bytes + E.page - 1) / E.page * E.page;
    char *m = map_guarded(data);
    if (!m) return set_error(cudaErrorMemoryAllocation, "cudaMalloc: out of memory allocating %zu bytes", bytes);
    // the buffer ends 0..15 bytes before the upper guard page (16-byte alignment); the slack holds canaries
    Alloc b = {m, m + E.page + data - ((bytes + 15) & ~(size_t)15), data + 2 * E.page, bytes};
    memset(m + E.page, CANARY, (size_t)(b.p - m - E.page));
    memset(b.p, 0xff, bytes);  // uninitialised device memory reads as NaN floats, -1 ints
    memset(b.p + bytes, CANARY, (size_t)(m + E.page + data - b.p) - bytes);
    E.allocs.push_back(b);
    *p = b.p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    for (size_t i = 0; i < E.allocs.size(); i++) {
        if (E.allocs[i].p != p) continue;
        check_canaries(E.allocs[i], NULL, 0, "cudaFree: host code ");
        munmap(E.allocs[i].map, E.allocs[i].map_len);
        E.allocs.erase(E.allocs.begin() + (long)i);
        return cudaSuccess;
    }
    return set_error(cudaErrorInvalidDevicePointer, "cudaFree: %p was not returned by cudaMalloc", p);
}

cudaError_t cudaMallocHost(void **p, size_t bytes) {
    if (posix_memalign(p, 64, bytes ? bytes : 1) != 0)
        return set_error(cudaErrorMemoryAllocation, "cudaMallocHost: out of memory allocating %zu bytes", bytes);
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}

// A device side of a copy must lie inside one cudaMalloc buffer; a host side must not be device memory.
static cudaError_t check_side(const char *call, const char *side, const void *ptr, size_t bytes, bool device) {
    if (!bytes) return cudaSuccess;
    if (device && !find_alloc(ptr, bytes))
        return set_error(cudaErrorInvalidValue, "%s: %s [%p, +%zu bytes) is not inside one cudaMalloc buffer", call,
                         side, ptr, bytes);
    if (!device && is_device(ptr))
        return set_error(cudaErrorInvalidValue, "%s: %s %p is device memory but the copy kind says host", call, side,
                         ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    init();
    if (kind != cudaMemcpyDefault) {
        const bool ddev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
        const bool sdev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
        cudaError_t e = check_side("cudaMemcpy", "destination", dst, bytes, ddev);
        if (e == cudaSuccess) e = check_side("cudaMemcpy", "source", src, bytes, sdev);
        if (e != cudaSuccess) return e;
    }
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    init();
    cudaError_t e = check_side("cudaMemset", "buffer", p, bytes, true);
    if (e == cudaSuccess && bytes) memset(p, value, bytes);
    return e;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

// ---- device, streams, events ----
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *dev) {
    *dev = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) {
    if (dev != 0) return set_error(cudaErrorInvalidValue, "cudaSetDevice(%d): the emulator is device 0", dev);
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int dev) {
    if (dev != 0) return set_error(cudaErrorInvalidValue, "cudaGetDeviceProperties(%d): the emulator is device 0", dev);
    *prop = cudaDeviceProp{};
    snprintf(prop->name, sizeof prop->name, "avt CPU emulation");
    prop->totalGlobalMem = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    prop->sharedMemPerBlock = DEFAULT_SMEM;
    prop->sharedMemPerBlockOptin = MAX_SMEM;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = MAX_THREADS;
    prop->multiProcessorCount = 1;
    prop->major = 9, prop->minor = 0;
    return cudaSuccess;
}

struct AvtEmuStream {
    unsigned flags;
};
struct AvtEmuEvent {
    long long ns;
};

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    *s = new AvtEmuStream{flags};
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = new AvtEmuEvent{0};
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
    if (!e) return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: null event");
    e->ns = clock64();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!start || !end) return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: null event");
    *ms = (float)((double)(end->ns - start->ns) * 1e-6);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}

// ---- errors ----
cudaError_t cudaGetLastError(void) {
    cudaError_t e = E.last_error;
    E.last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return E.last_error; }
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    }
    return "cudaErrorUnknown";
}
const char *cudaGetErrorString(cudaError_t e) {
    return e != cudaSuccess && e == E.last_error && E.detail[0] ? E.detail : cudaGetErrorName(e);
}
