#include "train/objective.h"

static Tensor *masked_l1_loss(Graph *g, const AvtModel *m, const TrainBatch *b) {
    int sa[3] = {b->B, b->T, m->cfg.d_a}, sv[3] = {b->B, b->T, m->cfg.d_v};
    Tensor *out_a, *out_v; // (M, d_a), (M, d_v): the masked steps' reconstructions
    return avt_pretrain_loss(g, m, graph_input(g, b->x_a, 3, sa), graph_input(g, b->x_v, 3, sv), b->target_a,
                             b->target_v, b->mask, &out_a, &out_v);
}

static double masked_steps(const TrainBatch *b) {
    double n = 0.0;
    for (size_t i = 0; i < (size_t)b->B * (size_t)b->T; i++) n += b->mask[i] != 0.0f;
    return n;
}

const Objective OBJECTIVE_MASKED_L1 = {masked_l1_loss, masked_steps};

// The head's outputs (B, n_out) at each row's last valid step.
static Tensor *head_out(Graph *g, const AvtModel *m, const TrainBatch *b) {
    int sa[3] = {b->B, b->T, m->cfg.d_a}, sv[3] = {b->B, b->T, m->cfg.d_v};
    Tensor *h_av = avt_fuse(g, m, graph_input(g, b->x_a, 3, sa), graph_input(g, b->x_v, 3, sv));
    return avt_head(g, m, h_av, b->t_last);
}

static Tensor *ce_loss(Graph *g, const AvtModel *m, const TrainBatch *b) {
    return op_cross_entropy(g, head_out(g, m, b), b->label);
}
static Tensor *mse_loss(Graph *g, const AvtModel *m, const TrainBatch *b) {
    return op_mse(g, head_out(g, m, b), b->y);
}
static Tensor *ccc_loss(Graph *g, const AvtModel *m, const TrainBatch *b) {
    return op_ccc(g, head_out(g, m, b), b->y);
}
static double rows(const TrainBatch *b) { return (double)b->B; }

const Objective OBJECTIVE_CE = {ce_loss, rows}, OBJECTIVE_MSE = {mse_loss, rows}, OBJECTIVE_CCC = {ccc_loss, rows};
