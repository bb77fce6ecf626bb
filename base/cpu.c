// Run-time CPU dispatch (see cpu.h).
#include "base/cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "base/common.h"

// -1 until decided. Threads that decide at the same time store the same value.
static atomic_int avx2_state = -1;

static int detect_avx2(void) {
    const char *env = getenv("AVT_CPU");
    if (env && *env) {
        if (strcmp(env, "generic")) avt_die("AVT_CPU=%s: the one value is 'generic' (unset: what the CPU has)", env);
        return 0;
    }
#ifdef AVT_X86
    return __builtin_cpu_supports("avx2") != 0; // also checks that the OS saves the AVX registers
#else
    return 0;
#endif
}

int avt_cpu_avx2(void) {
    int s = atomic_load_explicit(&avx2_state, memory_order_relaxed);
    if (s < 0) {
        s = detect_avx2();
        atomic_store_explicit(&avx2_state, s, memory_order_relaxed);
    }
    return s;
}

void avt_cpu_force_generic(int on) { atomic_store_explicit(&avx2_state, on ? 0 : detect_avx2(), memory_order_relaxed); }
