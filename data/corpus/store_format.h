// The store's byte layout (store.h) as the writer (store_write.c) and the reader (store_read.c) both need it.
// Private to the store's files.
#ifndef AVT_STORE_FORMAT_H
#define AVT_STORE_FORMAT_H

#include <stdint.h>
#include <string.h>
#include "data/corpus/store.h"

// The data arrays are used in place (mmap / fwrite), so the host must share the file's byte order.
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the store format is little-endian");

#define MAGIC "AVTSHARD"
#define HEADER_BYTES 64
#define ENTRY_BYTES 152
#define ALIGN 64
#define MANIFEST "manifest.json"

static inline uint64_t align64(uint64_t x) { return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }
static inline size_t dtype_size(StoreDtype d) { return d == STORE_F16 ? 2 : 4; }
static inline const char *dtype_name(StoreDtype d) { return d == STORE_F16 ? "f16" : "f32"; }

static inline void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

// Byte layout of one utterance's data: audio, padding to 64, video.
static inline uint64_t audio_bytes(uint64_t T, int d_a, StoreDtype dt) { return T * (uint64_t)d_a * dtype_size(dt); }
static inline uint64_t data_bytes(uint64_t T, int d_a, int d_v, StoreDtype dt) {
    return align64(audio_bytes(T, d_a, dt)) + T * (uint64_t)d_v * dtype_size(dt);
}

#endif
