// The store's checks shared by the writer and the reader: CRC-32 of an utterance's bytes, the values a dtype can
// hold, the speaker-name hash. The writer is store_write.c, the reader store_read.c; the layout is in store.h.
#include "data/corpus/store.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include "base/half.h"

// ---------------------------------------------------------------------------------------------------------------
// CRC-32

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t store_crc32(const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

int store_check_values(const float *x, size_t n, StoreDtype dtype, const char *id, AvtErr *err) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return avt_err_set(err, "utterance '%s': value %g is not finite", id, (double)x[i]);
        if (dtype == STORE_F16 && (f16_from_f32(x[i]) & 0x7c00u) == 0x7c00u)
            return avt_err_set(err, "utterance '%s': value %g overflows f16 (|x| > 65504; use --dtype f32)", id,
                               (double)x[i]);
    }
    return 0;
}

uint64_t store_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}
