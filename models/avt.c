// CrossAttentionAVTransformer: the equations of docs/model.md §2, one function per box of the paper.
#include "models/avt.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const AvtConfig AVT_BASE = {512, 17, 240, 4, 10, 0};
const AvtConfig AVT_LARGE = {512, 17, 384, 8, 12, 0};

// Dropout probabilities hard-coded by the released model (§2.8).
#define P_EMBED 0.25f
#define P_ATTN_CROSS 0.0f
#define P_ATTN_MEM 0.1f
#define P_RELU 0.1f
#define P_RES 0.1f
#define HEAD_HIDDEN 16

// Every dropout draws from its own Philox stream: site = (encoder, layer, which), layer 0xFF = encoder input.
#define SITE(enc, layer, k) (((uint32_t)(enc) << 16) | ((uint32_t)(layer) << 8) | (uint32_t)(k))
#define LAYER_INPUT 0xFF
enum { DROP_X = 0, DROP_XK = 1, DROP_XV = 2 };                          // encoder-input sites
enum { DROP_ATTN = 0, DROP_RES_ATTN = 1, DROP_RELU = 2, DROP_RES_FFN = 3 }; // per-layer sites

static const char *ENC_NAME[ENC_COUNT] = {"acoustic_cross_visual", "visual_cross_acoustic", "trans_mem"};

// ---------------------------------------------------------------------------------------------------------------
// Parameter table. declare() walks the model in state-dict order twice: once to size the arenas, once to carve
// the tensors out of them and point the model's fields at them.

static Tensor *declare_tensor(AvtModel *m, InitKind init, int fan_in, int fan_out, int buffer, int ndim,
                              const int *shape, const char *fmt, ...) {
    ParamTable *pt = &m->params;
    size_t size = tensor_numel(ndim, shape);
    float *data = arena_alloc(&pt->data, size * sizeof(float));
    float *grad = buffer ? NULL : arena_alloc(&pt->grad, size * sizeof(float));
    int i = pt->n++;
    if (!pt->p) return NULL; // sizing pass
    Param *p = &pt->p[i];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->t.data = data;
    p->t.grad = grad;
    p->t.requires_grad = !buffer;
    p->t.ndim = ndim;
    memcpy(p->t.shape, shape, (size_t)ndim * sizeof(int));
    p->t.size = size;
    p->init = init;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    p->buffer = buffer;
    return &p->t;
}

#define SHAPE(...) ((const int[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))
#define WEIGHT(m, init, fi, fo, name, ...) declare_tensor(m, init, fi, fo, 0, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__), "%s", name)

static Tensor *vec(AvtModel *m, InitKind init, int fan_in, int n, const char *fmt, const char *prefix, int i) {
    return declare_tensor(m, init, fan_in, 0, 0, 1, SHAPE(n), fmt, prefix, i);
}

// nn.Linear(in, out) with PyTorch's default init.
static void declare_linear(AvtModel *m, AvtLinear *l, const char *name, int in, int out) {
    char key[96];
    snprintf(key, sizeof key, "%s.weight", name);
    l->w = WEIGHT(m, INIT_FAN_IN, in, out, key, out, in);
    snprintf(key, sizeof key, "%s.bias", name);
    l->b = WEIGHT(m, INIT_FAN_IN, in, out, key, out);
}

static void declare_encoder(AvtModel *m, int e, int D) {
    AvtEncoder *enc = &m->enc[e];
    const char *E = ENC_NAME[e];
    enc->D = D;
    declare_tensor(m, INIT_VERSION, 0, 0, 1, 1, SHAPE(1), "%s.version", E);
    declare_tensor(m, INIT_ZERO, 0, 0, 1, 1, SHAPE(1), "%s.embed_positions._float_tensor", E);
    for (int i = 0; i < m->cfg.L; i++) {
        AvtLayer *l = &enc->layers[i];
        int sh_in[2] = {3 * D, D}, sh_out[2] = {D, D}, sh_fc1[2] = {4 * D, D}, sh_fc2[2] = {D, 4 * D};
        l->in_proj_w = declare_tensor(m, INIT_XAVIER, D, 3 * D, 0, 2, sh_in, "%s.layers.%d.self_attn.in_proj_weight", E, i);
        l->in_proj_b = vec(m, INIT_ZERO, 0, 3 * D, "%s.layers.%d.self_attn.in_proj_bias", E, i);
        l->out_w = declare_tensor(m, INIT_XAVIER, D, D, 0, 2, sh_out, "%s.layers.%d.self_attn.out_proj.weight", E, i);
        l->out_b = vec(m, INIT_ZERO, 0, D, "%s.layers.%d.self_attn.out_proj.bias", E, i);
        l->fc1_w = declare_tensor(m, INIT_XAVIER, D, 4 * D, 0, 2, sh_fc1, "%s.layers.%d.fc1.weight", E, i);
        l->fc1_b = vec(m, INIT_ZERO, 0, 4 * D, "%s.layers.%d.fc1.bias", E, i);
        l->fc2_w = declare_tensor(m, INIT_XAVIER, 4 * D, D, 0, 2, sh_fc2, "%s.layers.%d.fc2.weight", E, i);
        l->fc2_b = vec(m, INIT_ZERO, 0, D, "%s.layers.%d.fc2.bias", E, i);
        l->ln0_w = vec(m, INIT_ONE, 0, D, "%s.layers.%d.layer_norms.0.weight", E, i);
        l->ln0_b = vec(m, INIT_ZERO, 0, D, "%s.layers.%d.layer_norms.0.bias", E, i);
        l->ln1_w = vec(m, INIT_ONE, 0, D, "%s.layers.%d.layer_norms.1.weight", E, i);
        l->ln1_b = vec(m, INIT_ZERO, 0, D, "%s.layers.%d.layer_norms.1.bias", E, i);
    }
    enc->ln_w = declare_tensor(m, INIT_ONE, 0, 0, 0, 1, SHAPE(D), "%s.layer_norm.weight", E);
    enc->ln_b = declare_tensor(m, INIT_ZERO, 0, 0, 0, 1, SHAPE(D), "%s.layer_norm.bias", E);
}

static void declare(AvtModel *m) {
    const AvtConfig *c = &m->cfg;
    int d = c->d, d2 = 2 * c->d;
    m->params.n = 0;
    // Conv1d(k=1, bias=False): fan_in = in_channels * kernel_size
    m->proj_a = WEIGHT(m, INIT_FAN_IN, c->d_a, d, "proj_a.weight", d, c->d_a, 1);
    m->proj_v = WEIGHT(m, INIT_FAN_IN, c->d_v, d, "proj_v.weight", d, c->d_v, 1);
    declare_encoder(m, ENC_A_CROSS_V, d);
    declare_encoder(m, ENC_V_CROSS_A, d);
    declare_encoder(m, ENC_MEM, d2);
    declare_linear(m, &m->proj1, "proj1", d2, d2);
    declare_linear(m, &m->proj2, "proj2", d2, d2);
    for (int i = m->params.n - 4; m->params.p && i < m->params.n; i++) m->params.p[i].unused = 1;
    declare_linear(m, &m->proj1_a, "proj1_a", d2, d2);
    declare_linear(m, &m->proj2_a, "proj2_a", d2, d2);
    declare_linear(m, &m->proj1_v, "proj1_v", d2, d2);
    declare_linear(m, &m->proj2_v, "proj2_v", d2, d2);
    declare_linear(m, &m->out_a, "out_layer_a", d2, c->d_a);
    declare_linear(m, &m->out_v, "out_layer_v", d2, c->d_v);
    if (c->n_out > 0) {
        declare_linear(m, &m->head1, "head.0", d2, HEAD_HIDDEN);
        declare_linear(m, &m->head2, "head.2", HEAD_HIDDEN, c->n_out);
    }
}

static void check_config(const AvtConfig *c) {
    if (c->d < 2 || c->d % 2) avt_die("embed_size must be an even number >= 2, got %d", c->d);
    if (c->L < 1) avt_die("n_code (layers per encoder) must be >= 1, got %d", c->L);
    if (c->NH < 1 || c->d % c->NH) avt_die("n_heads must divide embed_size: %d heads, embed_size %d", c->NH, c->d);
    if (c->d_a < 1 || c->d_v < 1) avt_die("input widths must be >= 1, got audio %d, video %d", c->d_a, c->d_v);
    if (c->n_out < 0) avt_die("the head's output count must be >= 0, got %d", c->n_out);
}

static void build(AvtModel *m, AvtConfig cfg) {
    memset(m, 0, sizeof *m);
    check_config(&cfg);
    m->cfg = cfg;
    arena_init(&m->params.data, "parameters", &BACKEND_CPU);
    arena_init(&m->params.grad, "parameter gradients", &BACKEND_CPU);
    for (int e = 0; e < ENC_COUNT; e++) m->enc[e].layers = calloc_check((size_t)cfg.L, sizeof(AvtLayer));
    declare(m); // sizing pass
    arena_commit(&m->params.data);
    arena_commit(&m->params.grad);
    m->params.p = calloc_check((size_t)m->params.n, sizeof(Param));
    declare(m);
    params_zero_grad(&m->params);
}

void avt_init(AvtModel *m, AvtConfig cfg, uint64_t seed) {
    build(m, cfg);
    params_init(&m->params, seed);
}

void avt_free(AvtModel *m) {
    arena_free(&m->params.data);
    arena_free(&m->params.grad);
    free(m->params.p);
    for (int e = 0; e < ENC_COUNT; e++) free(m->enc[e].layers);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints: the config travels as metadata strings, the input widths as the proj_a / proj_v shapes.

static int meta_int(const SafeTensors *st, const char *key, int *out, AvtErr *err) {
    const char *v = st_meta(st, key);
    if (!v) return avt_err_set(err, "%s: metadata '%s' missing (not an avt checkpoint? convert .pt files with "
                                    "tools/pt_to_safetensors.py)", st->path, key);
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < 1 || x > 1 << 20)
        return avt_err_set(err, "%s: metadata '%s' = '%s' is not a positive integer", st->path, key, v);
    *out = (int)x;
    return 0;
}

static int proj_width(const SafeTensors *st, const char *name, int d, int *out, AvtErr *err) {
    const StTensor *t = st_find(st, name);
    if (!t) return avt_err_set(err, "%s: missing tensor '%s'", st->path, name);
    if (t->ndim != 3 || t->shape[0] != d || t->shape[2] != 1 || t->shape[1] < 1 || t->shape[1] > 1 << 20)
        return avt_err_set(err, "%s: tensor '%s' must have shape (%d, in, 1)", st->path, name, d);
    *out = (int)t->shape[1];
    return 0;
}

int avt_load(AvtModel *m, const char *path, AvtErr *err) {
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    AvtConfig c = {0};
    const StTensor *head = st_find(&st, "head.2.weight");
    int rc = meta_int(&st, "embed_size", &c.d, err) || meta_int(&st, "n_code", &c.L, err) ||
             meta_int(&st, "n_heads", &c.NH, err) || proj_width(&st, "proj_a.weight", c.d, &c.d_a, err) ||
             proj_width(&st, "proj_v.weight", c.d, &c.d_v, err) ? -1 : 0;
    if (!rc && (c.d % 2 || c.d % c.NH))
        rc = avt_err_set(err, "%s: embed_size %d and n_heads %d do not fit (even size, divisible by heads)", path,
                         c.d, c.NH);
    if (!rc && head) {
        if (head->ndim != 2 || head->shape[0] < 1 || head->shape[0] > 1 << 20)
            rc = avt_err_set(err, "%s: tensor 'head.2.weight' must have shape (n_out, %d)", path, HEAD_HIDDEN);
        else
            c.n_out = (int)head->shape[0];
    }
    if (!rc) {
        build(m, c);
        rc = params_load(&m->params, &st, err);
        if (rc) avt_free(m);
    }
    st_close(&st);
    return rc;
}

int avt_save(const AvtModel *m, const char *path, AvtErr *err) {
    char d[16], l[16], h[16];
    snprintf(d, sizeof d, "%d", m->cfg.d);
    snprintf(l, sizeof l, "%d", m->cfg.L);
    snprintf(h, sizeof h, "%d", m->cfg.NH);
    const char *keys[] = {"embed_size", "n_code", "n_heads", "format"};
    const char *vals[] = {d, l, h, "pt"};
    return params_save(&m->params, path, keys, vals, 4, err);
}

// ---------------------------------------------------------------------------------------------------------------
// Forward.

// A (1, ..) weight view: rows [i*D, (i+1)*D) of the fused in-projection (i = 0 q, 1 k, 2 v).
static Tensor *in_proj(Graph *g, const AvtLayer *l, int i, int D, Tensor *x) {
    return op_linear(g, x, tensor_rows(g, l->in_proj_w, i * D, D), tensor_rows(g, l->in_proj_b, i * D, D));
}

// Pre-LN encoder layer (§2.4). Cross-modal when x_k/x_v are given: the same LN0 normalises q, k and v streams.
static Tensor *encoder_layer(Graph *g, const AvtModel *m, int e, int i, Tensor *x, Tensor *x_k, Tensor *x_v) {
    const AvtLayer *l = &m->enc[e].layers[i];
    int D = m->enc[e].D;
    float p_attn = e == ENC_MEM ? P_ATTN_MEM : P_ATTN_CROSS;

    Tensor *r = x;
    x = op_layernorm(g, x, l->ln0_w, l->ln0_b);
    Tensor *k = x_k ? op_layernorm(g, x_k, l->ln0_w, l->ln0_b) : x;
    Tensor *v = x_v ? op_layernorm(g, x_v, l->ln0_w, l->ln0_b) : x;
    // MHA (§2.5): q = (x W_q^T + b_q) * HS^-0.5 inside the kernel, causal mask (§2.6), softmax, dropout, out_proj
    Tensor *a = op_attention(g, in_proj(g, l, 0, D, x), in_proj(g, l, 1, D, k), in_proj(g, l, 2, D, v), m->cfg.NH,
                             1, p_attn, SITE(e, i, DROP_ATTN));
    a = op_linear(g, a, l->out_w, l->out_b);
    x = op_add(g, r, op_dropout(g, a, P_RES, SITE(e, i, DROP_RES_ATTN)));

    r = x;
    x = op_layernorm(g, x, l->ln1_w, l->ln1_b);
    x = op_dropout(g, op_relu(g, op_linear(g, x, l->fc1_w, l->fc1_b)), P_RELU, SITE(e, i, DROP_RELU));
    x = op_linear(g, x, l->fc2_w, l->fc2_b);
    return op_add(g, r, op_dropout(g, x, P_RES, SITE(e, i, DROP_RES_FFN)));
}

// TransformerEncoder (§2.3): sqrt(D)·x + PE (zero steps get none), dropout, L layers, final LayerNorm.
// For a cross-modal encoder the key/value stream x_in_kv is embedded once and dropped out twice, independently.
static Tensor *encoder(Graph *g, const AvtModel *m, int e, Tensor *x_in, Tensor *x_in_kv) {
    const AvtEncoder *enc = &m->enc[e];
    Tensor *x = op_dropout(g, op_embed(g, x_in), P_EMBED, SITE(e, LAYER_INPUT, DROP_X));
    Tensor *x_k = NULL, *x_v = NULL;
    if (x_in_kv) {
        Tensor *kv = op_embed(g, x_in_kv);
        x_k = op_dropout(g, kv, P_EMBED, SITE(e, LAYER_INPUT, DROP_XK));
        x_v = op_dropout(g, kv, P_EMBED, SITE(e, LAYER_INPUT, DROP_XV));
    }
    for (int i = 0; i < m->cfg.L; i++) x = encoder_layer(g, m, e, i, x, x_k, x_v);
    return op_layernorm(g, x, enc->ln_w, enc->ln_b);
}

// The heads (§2.10, §4) and the unused proj1/proj2 are the only tensors that avt_fuse does not read.
int avt_param_in_fuse(const char *name) {
    static const char *const outside[] = {"proj1.", "proj2.", "proj1_", "proj2_", "out_layer_", "head."};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++)
        if (strncmp(name, outside[i], strlen(outside[i])) == 0) return 0;
    return 1;
}

// §2.2: project, cross-attend both ways, fuse (V<-A first, then A<-V), self-attend at width 2d.
Tensor *avt_fuse(Graph *g, const AvtModel *m, Tensor *x_a, Tensor *x_v) {
    if (m->params.data.be != g->be)
        avt_fatal("avt_fuse: the parameters live on the %s backend, the graph runs on %s", m->params.data.be->name,
                  g->be->name);
    if (x_a->shape[1] != x_v->shape[1] || x_a->shape[0] != x_v->shape[0])
        avt_fatal("avt_fuse: audio (%d, %d) and video (%d, %d) batch/steps differ", x_a->shape[0], x_a->shape[1],
                  x_v->shape[0], x_v->shape[1]);
    Tensor *p_a = op_linear(g, x_a, m->proj_a, NULL);
    Tensor *p_v = op_linear(g, x_v, m->proj_v, NULL);
    Tensor *a_cross_v = encoder(g, m, ENC_A_CROSS_V, p_a, p_v);
    Tensor *v_cross_a = encoder(g, m, ENC_V_CROSS_A, p_v, p_a);
    return encoder(g, m, ENC_MEM, op_concat(g, v_cross_a, a_cross_v), NULL);
}

// h + proj2(relu(proj1(h))) then the output layer (output dropout is 0).
static Tensor *residual_head(Graph *g, const AvtLinear *p1, const AvtLinear *p2, const AvtLinear *out, Tensor *h) {
    Tensor *r = op_linear(g, op_relu(g, op_linear(g, h, p1->w, p1->b)), p2->w, p2->b);
    return op_linear(g, op_add(g, h, r), out->w, out->b);
}

void avt_reconstruct(Graph *g, const AvtModel *m, Tensor *h, Tensor **out_a, Tensor **out_v) {
    *out_a = residual_head(g, &m->proj1_a, &m->proj2_a, &m->out_a, h);
    *out_v = residual_head(g, &m->proj1_v, &m->proj2_v, &m->out_v, h);
}

// Rows of `target` (rows of width D) listed in rows, copied into step memory.
static const float *gather_targets(Graph *g, const float *target, const int *rows, int n, int D) {
    float *out = graph_scratch(g, (size_t)n * D * sizeof(float));
    if (!g->planning)
        for (int r = 0; r < n; r++) memcpy(out + (size_t)r * D, target + (size_t)rows[r] * D, (size_t)D * sizeof(float));
    return out;
}

Tensor *avt_pretrain_loss(Graph *g, const AvtModel *m, Tensor *x_a, Tensor *x_v, const float *target_a,
                          const float *target_v, const float *mask, Tensor **out_a, Tensor **out_v) {
    Tensor *h_av = avt_fuse(g, m, x_a, x_v);
    // The masked steps m; while planning, every step (the most a batch can have).
    int BT = x_a->shape[0] * x_a->shape[1], n = 0;
    int *rows = graph_scratch(g, (size_t)BT * sizeof(int));
    if (g->planning) n = BT;
    else
        for (int r = 0; r < BT; r++)
            if (mask[r] != 0.0f) rows[n++] = r;
    avt_reconstruct(g, m, op_gather_rows(g, h_av, rows, n), out_a, out_v);
    const float *ta = gather_targets(g, target_a, rows, n, m->cfg.d_a);
    const float *tv = gather_targets(g, target_v, rows, n, m->cfg.d_v);
    return op_add(g, op_l1_masked(g, *out_a, ta, NULL), op_l1_masked(g, *out_v, tv, NULL));
}

Tensor *avt_head(Graph *g, const AvtModel *m, Tensor *h_av, const int *t_last) {
    if (m->cfg.n_out <= 0) avt_fatal("avt_head: the model has no fine-tuning head");
    int B = h_av->shape[0], T = h_av->shape[1];
    int *rows = graph_scratch(g, (size_t)B * sizeof(int));
    if (!g->planning)
        for (int b = 0; b < B; b++) {
            if (t_last[b] < 0 || t_last[b] >= T) avt_fatal("avt_head: step %d outside [0, %d)", t_last[b], T);
            rows[b] = b * T + t_last[b];
        }
    Tensor *h = op_gather_rows(g, h_av, rows, B);
    h = op_relu(g, op_linear(g, h, m->head1.w, m->head1.b));
    return op_linear(g, h, m->head2.w, m->head2.b);
}
