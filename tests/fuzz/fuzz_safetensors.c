// libFuzzer harness for the safetensors parser: any byte string must give rc 0 or -1 with st left
// closable, never a crash, out-of-bounds read, leak or undefined behaviour (ASan/UBSan watch).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafeTensors st;
    AvtErr err;
    if (st_parse(&st, data, size, "fuzz", &err) == 0) {
        // Touch every tensor's bytes so a wrong offset shows up as an ASan report here.
        for (int i = 0; i < st.n; i++) {
            const StTensor *t = &st.t[i];
            if (st_find(&st, t->name) == NULL) abort(); // the first tensor of that name is findable
            float *dst = malloc(t->numel ? t->numel * sizeof *dst : 1);
            st_copy_f32(dst, t);
            free(dst);
        }
        for (int i = 0; i < st.n_meta; i++)
            if (st_meta(&st, st.meta_key[i]) == NULL) abort();
    } else if (st.n != 0 || st.buf != NULL || st.t != NULL || memchr(err.msg, '\0', sizeof err.msg) == NULL) {
        abort(); // failure must leave st empty and err a terminated string
    }
    st_close(&st);
    return 0;
}
