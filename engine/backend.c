// Backend lookup and the attention-path switch.
#include <string.h>
#include "backend.h"

// Defined only when a CUDA backend (native or emulated) is linked in.
extern const Backend *backend_cuda_open(AvtErr *err) __attribute__((weak));

static AttentionImpl attention_impl = ATTN_AVT;

void backend_set_attention(AttentionImpl impl) { attention_impl = impl; }
AttentionImpl backend_attention(void) { return attention_impl; }

const Backend *backend_open(const char *name, AvtErr *err) {
    if (strcmp(name, "cpu") == 0) return &BACKEND_CPU;
    if (strcmp(name, "cuda") == 0) {
        if (!backend_cuda_open)
            return avt_err_set(err, "--device cuda: this avt was built without CUDA (nvcc was not found at build "
                                    "time; `make EMU=1` builds the emulated backend)"), NULL;
        return backend_cuda_open(err);
    }
    return avt_err_set(err, "--device %s: unknown device (cpu or cuda)", name), NULL;
}
