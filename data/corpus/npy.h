// .npy arrays of float32 ('<f4', C order): the feature files the readers take besides the paper's CSVs, and the
// embeddings and features avt writes.
#ifndef AVT_NPY_H
#define AVT_NPY_H

#include <stdint.h>
#include "base/common.h"

#define NPY_MAX_NDIM 8

// Writes version 1.0 atomically (base/common.h). shape has ndim (0..NPY_MAX_NDIM) entries.
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, AvtErr *err);
// Reads versions 1.0 to 3.0, '<f4' only; *data malloc'd, shape (NPY_MAX_NDIM) gets ndim entries. Errors name the
// file (bad magic, dtype, Fortran order, truncated or trailing data).
int npy_read_f32(const char *path, float **data, int *ndim, int64_t *shape, AvtErr *err);

#endif
