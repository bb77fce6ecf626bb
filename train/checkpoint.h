// Checkpoints of a training run. A run directory (runs/NAME/) holds one directory per checkpoint:
//
//   ckpt-<step, %09ld>/
//     model.safetensors   the weights under their PyTorch state-dict names (avt_save; the twin loads it strictly)
//     state.safetensors   the moments of every trained tensor as m.<param name>, v.<param name>; metadata: format,
//                         step (optimizer updates done), t_total, lr, warmup, beta1, beta2, eps, weight_decay,
//                         clip_global, clip_tensor, then the caller's CkptMeta pairs (seed, loader position, ...)
//     DONE                the completion marker: only a directory with it is a checkpoint
//
// A save fills ckpt-<step>.tmp.<pid>/, renames it to its final name once both files are complete, then writes
// DONE, so no partial checkpoint ever carries a final name. Leftovers of a crash (temporary directories, a final
// name without DONE) are never loaded and are deleted by the next save, which also keeps only the newest
// keep_last checkpoints. Files are not fsync'ed: this survives a killed process, not a power cut.
#ifndef AVT_CHECKPOINT_H
#define AVT_CHECKPOINT_H

#include <stddef.h>
#include "base/common.h"
#include "train/optim.h"
#include "models/avt.h"

#define CKPT_META_MAX 16
#define CKPT_KEY_LEN 64
#define CKPT_VAL_LEN 1024

// The caller's (key, value) strings saved with the state: zero-initialise, then ckpt_meta_set.
typedef struct {
    int n;
    char key[CKPT_META_MAX][CKPT_KEY_LEN];
    char val[CKPT_META_MAX][CKPT_VAL_LEN];
} CkptMeta;

// Add or replace key. -1 with err when the key is empty or too long, the value too long, or the list full.
int ckpt_meta_set(CkptMeta *meta, const char *key, const char *val, AvtErr *err);
const char *ckpt_meta_get(const CkptMeta *meta, const char *key); // NULL when absent

// Write run_dir/ckpt-<step>/ (run_dir is created if needed), then delete all but the newest keep_last complete
// checkpoints (keep_last <= 0 keeps all; the one just written always stays) and every incomplete leftover. meta
// may be NULL; its keys must differ from the state keys above. The model and optimizer may live on any backend.
// 0, or -1 with err.
int ckpt_save(const char *run_dir, long step, const AvtModel *m, const Optimizer *o, const CkptMeta *meta,
              int keep_last, AvtErr *err);
// The newest complete checkpoint's directory into path: 1 found, 0 none (also when run_dir does not exist),
// -1 error.
int ckpt_latest(const char *run_dir, char *path, size_t len, AvtErr *err);
// Restore a checkpoint into a model and an optimizer built for the same configuration (avt_init, params_to,
// optim_init): the weights, the moments, the step, the schedule and hyper-parameters, and meta (may be NULL).
// Strict: a missing, extra or misshapen tensor, a missing DONE or a damaged file is an error naming the file.
// Device parameters are brought to the host for the load and moved back; moments are uploaded tensor by tensor.
// On error the model and optimizer contents are unspecified.
int ckpt_load(const char *ckpt_dir, AvtModel *m, Optimizer *o, CkptMeta *meta, AvtErr *err);

#endif
