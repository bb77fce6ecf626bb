// Backend lookup, the attention-path switch, and the CUDA module.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine/backend.h"

// Linked in by builds that carry the CUDA code in the executable (EMU=1, the tests, the benchmarks); NULL in a
// native avt, which loads it from CUDA_MODULE instead.
extern const Backend *backend_cuda_open(AvtErr *err) __attribute__((weak));

#define CUDA_MODULE "libavt_cuda.so"

static AttentionImpl attention_impl = ATTN_AVT;

void backend_set_attention(AttentionImpl impl) { attention_impl = impl; }
AttentionImpl backend_attention(void) { return attention_impl; }

// Loading cuBLASLt, cuDNN and NCCL costs ~0.2 s and ~240 MB of relocated pages per process, so a native avt keeps
// its CUDA code in CUDA_MODULE beside the executable (AVT_CUDA_MODULE overrides the path) and loads it on first use:
// the commands that never touch a GPU start in ~0.04 s.
void *backend_cuda_symbol(const char *name, AvtErr *err) {
    static void *handle;
    static char path[4096], why[AVT_ERR_LEN];
    if (backend_cuda_open) // the CUDA code is linked in (the emulator has no NCCL): there is no module to load
        return avt_err_set(err, "--device cuda: %s is not in this build (the emulated backend has no NCCL)", name),
               NULL;
    if (!handle && !why[0]) {
        const char *env = getenv("AVT_CUDA_MODULE");
        ssize_t n = env ? -1 : readlink("/proc/self/exe", path, sizeof path - sizeof CUDA_MODULE - 1);
        char *slash = n > 0 ? (path[n] = '\0', strrchr(path, '/')) : NULL;
        if (env) snprintf(path, sizeof path, "%s", env);
        else if (slash) strcpy(slash + 1, CUDA_MODULE);
        else snprintf(path, sizeof path, "%s", CUDA_MODULE);
        if (!env && access(path, F_OK) != 0)
            snprintf(why, sizeof why, "no CUDA module at %.300s (this avt was built without nvcc, or moved without "
                                      "it; AVT_CUDA_MODULE=PATH names one; `make EMU=1` builds the emulated backend)",
                     path);
        else if (!(handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
            snprintf(why, sizeof why, "cannot load the CUDA module: %s", dlerror());
    }
    if (!handle) return avt_err_set(err, "--device cuda: %s", why), NULL;
    void *sym = dlsym(handle, name);
    if (!sym) avt_err_set(err, "--device cuda: %.300s has no %s (a module from another build?)", path, name);
    return sym;
}

const Backend *backend_open(const char *name, AvtErr *err) {
    if (strcmp(name, "cpu") == 0) return &BACKEND_CPU;
    if (strcmp(name, "cuda") == 0) {
        const Backend *(*open_fn)(AvtErr *) = backend_cuda_open;
        if (!open_fn) *(void **)&open_fn = backend_cuda_symbol("backend_cuda_open", err);
        return open_fn ? open_fn(err) : NULL;
    }
    return avt_err_set(err, "--device %s: unknown device (cpu or cuda)", name), NULL;
}
