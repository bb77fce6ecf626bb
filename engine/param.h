// The parameter table: one entry per tensor of the model's state dict, in state-dict order. Everything that walks
// the parameters (init, checkpoints, optimizer, avt info) walks this table; there is no second list.
#ifndef AVT_PARAM_H
#define AVT_PARAM_H

#include "engine/graph.h"
#include "base/common.h"
#include "engine/safetensors.h"

typedef enum { INIT_ZERO, INIT_ONE, INIT_VERSION, INIT_XAVIER, INIT_FAN_IN } InitKind;

typedef struct {
    char name[96];     // the PyTorch state_dict key
    Tensor t;          // data in the parameter arena, grad in the gradient arena (NULL for buffers)
    InitKind init;
    int fan_in, fan_out;
    int buffer;        // saved and loaded, never trained, not counted as a parameter
    int unused;        // never reached by the forward (proj1, proj2): saved, never updated
} Param;

typedef struct {
    Param *p;
    int n;
    Arena data;        // parameter values
    Arena grad;        // parameter gradients
} ParamTable;

size_t params_count(const ParamTable *pt);            // trainable elements
// Move values and gradients to backend be's memory (the tensors follow). Init, load and save need host memory:
// params_init and params_load work on a table on the CPU backend, params_save on any.
void params_to(ParamTable *pt, const Backend *be);
const Param *params_find(const ParamTable *pt, const char *name);
void params_zero_grad(ParamTable *pt);
// Initialise every tensor by its InitKind from the Philox stream of seed (one site per table index).
void params_init(ParamTable *pt, uint64_t seed);

// safetensors I/O of a table (train/checkpoint.c). Loading is strict like PyTorch's load_state_dict(strict=True):
// every non-buffer tensor must be present with its exact shape, and no unknown tensor may be present.
// Buffers may be absent. Errors name the file and the tensor.
int params_save(const ParamTable *pt, const char *path, const char *const *meta_keys, const char *const *meta_vals,
                int n_meta, AvtErr *err);
int params_load(ParamTable *pt, const SafeTensors *st, AvtErr *err);

#endif
