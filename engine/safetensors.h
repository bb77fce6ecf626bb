// safetensors checkpoints: 8-byte little-endian header length N, N bytes of JSON, then the raw tensor bytes.
// JSON: {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// with offsets relative to the first byte after the header. We read and write F32 only.
#ifndef AVT_SAFETENSORS_H
#define AVT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "base/common.h"

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const unsigned char *data; // numel * 4 bytes inside SafeTensors.buf, possibly unaligned: use st_copy_f32
} StTensor;

typedef struct {
    char *path;           // for messages
    unsigned char *buf;   // the whole file
    size_t len;
    int n;                // tensors, in header order
    StTensor *t;
    int n_meta;
    char **meta_key, **meta_val;
} SafeTensors;

// Read and validate a whole file. On failure returns -1, err = "<path>: <problem>", and st is left empty
// (st_close is still safe to call).
int st_open(SafeTensors *st, const char *path, AvtErr *err);
// Same checks on a buffer (copied); name is used in messages. The fuzz harness enters here.
int st_parse(SafeTensors *st, const unsigned char *buf, size_t len, const char *name, AvtErr *err);
void st_close(SafeTensors *st);

const StTensor *st_find(const SafeTensors *st, const char *name);  // NULL when absent
const char *st_meta(const SafeTensors *st, const char *key);       // NULL when absent
void st_copy_f32(float *dst, const StTensor *t);                   // dst (numel)

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data; // prod(shape) floats
} StWrite;

// Write atomically (temp file + rename). meta: n_meta key/value string pairs (may be 0).
int st_write(const char *path, const StWrite *tensors, int n, const char *const *meta_keys,
             const char *const *meta_vals, int n_meta, AvtErr *err);

#endif
