// CPU features chosen at run time. A build for a baseline x86-64 (ARCH=portable) still compiles the AVX2 code paths
// (the Philox dropout in kernels/cpu/elementwise.c, the LBP cascade in data/media/cascade.c) and takes them on the
// nodes whose CPU has AVX2; both paths give bit-identical results.
#ifndef AVT_CPU_H
#define AVT_CPU_H

// AVT_X86: x86-64 with gcc or clang, where AVT_TARGET_AVX2 compiles one function for AVX2 whatever -march says.
// Elsewhere no AVX2 code is compiled and the generic paths are the only ones.
#if defined(__x86_64__) && defined(__GNUC__)
#define AVT_X86 1
#define AVT_TARGET_AVX2 __attribute__((target("avx2")))
#endif

// A body shared by a generic and an AVX2 function: inlined into each, so it is compiled for each one's target.
#ifdef __GNUC__
#define AVT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define AVT_ALWAYS_INLINE inline
#endif

// 1 when the AVX2 paths run: the CPU and the OS support AVX2, and the environment does not say AVT_CPU=generic
// (the generic paths everywhere: a reference, or a node to compare with). Decided once; then one atomic load.
// Dies naming the variable when AVT_CPU holds another value.
int avt_cpu_avx2(void);
// Tests: 1 forces the generic paths in this process; 0 decides again from the CPU and AVT_CPU.
void avt_cpu_force_generic(int on);

#endif
