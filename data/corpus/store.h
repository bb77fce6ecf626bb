// The pretraining corpus store: utterances' aligned audio/video features in memory-mapped binary shards, so a
// corpus larger than RAM is read step windows at a time (reads are a memcpy, or an f16 -> f32 conversion).
//
// A store is a directory (written by `avt prepare`):
//   manifest.json        written last (temp name, then rename): no manifest, no store
//   shard-00000.avts     ... shard-NNNNN.avts, each holding up to --shard-size utterances
//
// manifest.json (UTF-8 JSON):
//   {"format": "avt-store", "version": 1, "dtype": "f16" | "f32", "d_a": 512, "d_v": 17,
//    "utterances": N, "steps": total T, "bytes": total shard bytes,
//    "shards": [{"file": "shard-00000.avts", "utterances": n, "bytes": file size}, ...],
//    "speakers": ["id00012", ...]}          the speaker table: index entries hold an index into it
//
// Shard file, every integer little-endian, every offset from the start of the file:
//   header, 64 bytes:
//     0  char[8]  magic "AVTSHARD"
//     8  u32      format version (1)
//     12 u32      dtype: 0 = f32, 1 = f16 (IEEE binary16)
//     16 u32      d_a
//     20 u32      d_v
//     24 u64      n, utterances in this shard
//     32 u64      index offset (64-aligned)
//     40 u64      file size (index offset + n * 152): a shorter file is truncated
//     48 u32      CRC-32 of the index bytes
//     52 u8[12]   zero
//   data, from byte 64: per utterance, at its data offset (64-aligned):
//     audio (T, d_a) row-major, zero padding to 64-byte alignment, video (T, d_v) row-major;
//     the utterance's data bytes = align64(T * d_a * size) + T * d_v * size, then zero padding to 64
//   index, at the index offset: n entries of 152 bytes:
//     0   char[128] utterance id, NUL-terminated (<= 127 bytes), zero-filled
//     128 u32       speaker: index into the manifest's speaker table
//     132 u32       T, steps (>= 1)
//     136 u64       data offset
//     144 u32       CRC-32 (IEEE 802.3, as zlib's crc32) of the utterance's data bytes
//     148 u32       zero
// Utterance i of the store is utterance i - (utterances of the earlier shards) of its shard.
#ifndef AVT_STORE_H
#define AVT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "base/common.h"

#define STORE_VERSION 1
#define STORE_ID_MAX 127 // bytes of an utterance id

typedef enum { STORE_F32 = 0, STORE_F16 = 1 } StoreDtype;

// FNV-1a (64 bits) of a string: the writer's speaker table and the validation split (data/corpus/split.h) key on it.
uint64_t store_fnv1a(const char *s);
// CRC-32 (IEEE, reflected 0xEDB88320, init and final xor 0xffffffff): "123456789" -> 0xcbf43926.
uint32_t store_crc32(const void *data, size_t n);
// 0 if the n values of utterance `id` can be stored as dtype (all finite; for f16, none rounding beyond +-65504),
// else -1 and one line naming the utterance.
int store_check_values(const float *x /* (n,) */, size_t n, StoreDtype dtype, const char *id, AvtErr *err);

// ---- writing ----
typedef struct StoreWriter StoreWriter;
// Creates dir if missing (its parent must exist) and removes an earlier store's manifest.json and shard files
// there (a crashed writer's temporary ones included). Shards are written under a temporary name and renamed when full; the manifest is written by finish.
int store_writer_open(StoreWriter **w, const char *dir, StoreDtype dtype, int d_a, int d_v, int shard_size,
                      AvtErr *err);
// Appends one utterance. Errors (bad id, T < 1, values store_check_values rejects, I/O) name the utterance or file;
// the writer stays usable after a rejected utterance.
int store_writer_add(StoreWriter *w, const char *id, const char *speaker, int T, const float *audio /* (T, d_a) */,
                     const float *video /* (T, d_v) */, AvtErr *err);
// Totals so far: utterances, speakers, steps, shard bytes written.
void store_writer_totals(const StoreWriter *w, size_t *n, uint32_t *n_speakers, uint64_t *steps, uint64_t *bytes);
// Closes the last shard and writes the manifest; frees w either way.
int store_writer_finish(StoreWriter *w, AvtErr *err);
// Removes the unfinished shard's temporary file (finished shards stay, without a manifest) and frees w.
void store_writer_abort(StoreWriter *w);

// ---- reading (every function below is safe to call from several threads at once) ----
typedef struct Store Store;
// Maps every shard read-only and checks the manifest, each shard's header (magic, version, dtype, dims, size),
// its index CRC and every index entry (id, speaker, bounds within the file). Errors name the file.
int store_open(Store **s, const char *dir, AvtErr *err);
void store_close(Store *s);
size_t store_size(const Store *s);
int store_d_a(const Store *s);
int store_d_v(const Store *s);
StoreDtype store_dtype(const Store *s);
int store_len(const Store *s, size_t i);                         // T of utterance i
uint32_t store_speaker(const Store *s, size_t i);                // index into the speaker table
const char *store_speaker_name(const Store *s, uint32_t k);
uint32_t store_n_speakers(const Store *s);
const char *store_id(const Store *s, size_t i);
uint64_t store_steps(const Store *s);                            // sum of T
// Steps [t0, t0 + n) of utterance i as float32; audio or video may be NULL to skip that stream.
int store_read(const Store *s, size_t i, int t0, int n, float *audio /* (n, d_a) */, float *video /* (n, d_v) */,
               AvtErr *err);
// Recomputes every utterance's CRC; the first mismatch names the shard and the utterance.
int store_verify(const Store *s, AvtErr *err);

#endif
