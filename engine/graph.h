// Tensors, arenas and the autograd tape.
//
// A step is: graph_reset -> build the forward with op_* calls (each runs its kernel and records itself) ->
// graph_backward(loss) replays the tape in reverse. Activations and their gradients live in two arenas sized
// once by a planning pass (graph_plan_begin / graph_plan_end): the same build runs with no data, the arenas count
// bytes, then each allocates exactly its peak. After that a step never calls malloc; asking an arena for more
// than it holds is a fatal error naming the arena.
#ifndef AVT_GRAPH_H
#define AVT_GRAPH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "base/philox.h"
#include "engine/backend.h"

#define TENSOR_MAX_DIMS 4

typedef struct {
    const char *name;
    const Backend *be; // whose memory: the backend's alloc/release
    char *base;        // NULL while planning
    size_t cap, used, peak;
} Arena;

void arena_init(Arena *a, const char *name, const Backend *be);
void *arena_alloc(Arena *a, size_t bytes);   // 64-byte aligned; NULL while planning
void arena_commit(Arena *a);                 // allocate cap = peak; leaves planning mode
void arena_reset(Arena *a);
void arena_free(Arena *a);
// Move the allocated bytes to backend be (same layout): returns the new base; pointers into the arena move by
// (new base - old base).
char *arena_move(Arena *a, const Backend *be);

typedef struct {
    float *data;   // shape, row-major
    float *grad;   // same shape; NULL when no gradient flows here (or while planning)
    int requires_grad;
    int ndim;
    int shape[TENSOR_MAX_DIMS];
    size_t size;
} Tensor;

size_t tensor_numel(int ndim, const int *shape);

typedef enum {
    OP_LINEAR, OP_LAYERNORM, OP_ATTENTION, OP_RELU, OP_ADD, OP_CONCAT, OP_DROPOUT, OP_EMBED,
    OP_GATHER_ROWS, OP_L1_MASKED, OP_CROSS_ENTROPY, OP_MSE, OP_CCC, OP_COUNT
} OpKind;

typedef struct {
    OpKind op;
    Tensor *out;
    Tensor *in[3];
    float *aux[2];        // saved values (layer norm mean/rstd, attention probabilities)
    const float *cf[2];   // constant float inputs (targets, masks)
    const int *ci;        // constant int inputs (labels, step indices)
    int dim[5];           // op dimensions
    DropoutKey drop;
} Node;

typedef struct {
    const Backend *be;    // where the step runs; the model's parameters must live there too
    Arena act;            // forward outputs and saved values (backend memory)
    Arena agrad;          // gradients of activations, backward workspace (backend memory)
    Arena host;           // host memory for constants the model computes (row lists, gathered targets)
    Tensor *tensors;      // (max_tensors) headers of this step's tensors
    int n_tensors, max_tensors;
    Node *nodes;          // (max_nodes) the tape
    int n_nodes, max_nodes;
    int planning;         // shapes only: no kernel runs, arenas count bytes
    int training;         // dropout active
    int no_grad;          // inference: record nothing, allocate no gradients
    // Called by graph_backward after node i's backward has been queued (e.g. to start reducing gradients that
    // no earlier node adds to); NULL for none.
    void (*node_done)(void *ctx, int i);
    void *node_done_ctx;
    uint64_t seed;        // dropout stream of this step
    uint32_t step;
    uint64_t sample0;     // global index of this graph's first sample (data parallel: rank * local batch), so
                          // dropout draws what one process would draw for the whole global batch
} Graph;

void graph_init(Graph *g, int max_nodes, const Backend *be);
void graph_free(Graph *g);
void graph_reset(Graph *g);              // start a step: empties the tape and both arenas
void graph_plan_begin(Graph *g);         // next build + backward only measures
void graph_plan_end(Graph *g);           // allocate the measured arenas
int graph_planned(const Graph *g);       // arenas allocated
void graph_backward(Graph *g, Tensor *loss);
// The same with d(objective)/d(loss) = dloss: a data-parallel rank whose loss averages M_r of the global batch's M
// items passes M_r / M, so that summing the ranks' gradients gives the global batch's gradient.
void graph_backward_seed(Graph *g, Tensor *loss, float dloss);
// Time every kernel call by op and direction (off by default; turning it on clears the totals).
void ops_profile(int on);
void ops_profile_report(FILE *f, int steps);

// Step-lifetime HOST memory for constants an op reads (row lists, gathered targets); NULL while planning. Ops copy
// such constants to the backend themselves.
void *graph_scratch(Graph *g, size_t bytes);
// An input tensor (no gradient) holding the caller's host data: wrapped in place on a host-memory backend, copied
// into the activation arena otherwise. data may be NULL while planning.
Tensor *graph_input(Graph *g, float *data, int ndim, const int *shape);
// A tensor header over memory that is already the backend's (no copy); data may be NULL while planning.
Tensor *graph_view(Graph *g, float *data, int ndim, const int *shape);
// A tensor's values into caller host memory (waits for the kernels that produce them); the value of a scalar.
void tensor_read(const Graph *g, const Tensor *t, float *host);
float tensor_item(const Graph *g, const Tensor *t);
// A view of `rows` consecutive rows of a parameter or activation, starting at row0 (rows along dim 0).
Tensor *tensor_rows(Graph *g, Tensor *t, int row0, int rows);

// ---- operations (engine/ops.c); shapes in comments, (..., C) means any leading dims ----
Tensor *op_linear(Graph *g, Tensor *x, Tensor *w, Tensor *b);          // x (..., C), w (OC, C[, 1]), b (OC)|NULL
Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *w, Tensor *b);       // x (..., C)
Tensor *op_attention(Graph *g, Tensor *q, Tensor *k, Tensor *v, int NH, int causal, float p, uint32_t site);
Tensor *op_relu(Graph *g, Tensor *x);
Tensor *op_add(Graph *g, Tensor *a, Tensor *b);                        // same shapes
Tensor *op_concat(Graph *g, Tensor *a, Tensor *b);                     // along the last dim
Tensor *op_dropout(Graph *g, Tensor *x, float p, uint32_t site);       // identity unless training and p > 0
Tensor *op_embed(Graph *g, Tensor *x);                                 // x (B, T, C): sqrt(C) x + PE
Tensor *op_gather_rows(Graph *g, Tensor *x, const int *rows, int n);   // x (..., C) as rows -> (n, C)
Tensor *op_l1_masked(Graph *g, Tensor *pred, const float *target, const float *mask); // mask NULL: all rows
Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int *labels);               // logits (B, n) -> (1)
Tensor *op_mse(Graph *g, Tensor *pred, const float *target);                         // -> (1)
// 1 - CCC averaged over the C columns of pred (N, C) against target (N, C), population moments over the N rows
// (docs/protocols.md): -> (1)
Tensor *op_ccc(Graph *g, Tensor *pred, const float *target);

#endif
