#include "data/corpus/loader.h"

#include <stdlib.h>
#include <string.h>

static LoaderState advance(const Loader *L, LoaderState s) {
    if (++s.batch == L->batches_per_epoch) {
        s.epoch++;
        s.batch = 0;
    }
    return s;
}

// Epoch order as positions into items. Called by the prefetch thread only, once per epoch.
static void permute(Loader *L, uint64_t seed, uint32_t epoch) {
    size_t *p = L->perm;
    for (size_t i = 0; i < L->n_items; i++) p[i] = i;
    if (L->shuffle) {
        for (size_t i = L->n_items - 1; i > 0; i--) {
            size_t j = philox_below(seed, LOADER_SHUFFLE_SITE, epoch, i, (uint64_t)i + 1);
            size_t tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
    }
    L->perm_epoch = epoch;
    L->perm_valid = 1;
}

static int utt_len(const Loader *L, size_t utt, AvtErr *err) {
    int n = L->src.len(L->src.ctx, utt);
    if (n < 0) return avt_err_set(err, "utterance %zu: negative length %d", utt, n);
    return n < L->T ? n : L->T;
}

// This rank's rows of batch st into s->b: read, truncate, pad, mask. 0, or -1 with s->err.
static int fill_batch(Loader *L, LoaderSlot *s, LoaderState st) {
    if (!L->perm_valid || L->perm_epoch != st.epoch) permute(L, st.seed, st.epoch);
    LoaderBatch *b = &s->b;
    b->state = st;
    size_t T = (size_t)L->T, da = (size_t)L->src.d_a, dv = (size_t)L->src.d_v;
    const size_t *rows = L->perm + st.batch * (uint64_t)L->global_batch + (size_t)L->rank * L->B;
    float *fa = s->frame, *fv = s->frame + da;
    AvtErr e;
    for (int r = 0; r < L->B; r++) {
        size_t pos = rows[r], utt = L->items[pos];
        float *ta = b->target_a + r * T * da, *tv = b->target_v + r * T * dv;
        int n = utt_len(L, utt, &s->err);
        if (n < 0) return -1;
        if (n > 0 && L->src.read(L->src.ctx, utt, 0, n, ta, tv, &e) != 0)
            return avt_err_set(&s->err, "utterance %zu: %s", utt, e.msg);
        memset(ta + n * da, 0, sizeof(float) * (T - n) * da);
        memset(tv + n * dv, 0, sizeof(float) * (T - n) * dv);
        b->len[r] = n;
        b->item[r] = utt;

        MaskPlan plan;
        masking_plan(&plan, st.seed, st.epoch, utt, pos, n, L->T, L->n_items);
        size_t other = L->items[plan.frame_pos];
        int other_n = utt_len(L, other, &s->err);
        if (other_n < 0) return -1;
        masking_plan_frame(&plan, other_n);
        if (plan.frame_step < 0) {
            memset(s->frame, 0, sizeof(float) * (da + dv));
        } else if (L->src.read(L->src.ctx, other, plan.frame_step, 1, fa, fv, &e) != 0) {
            return avt_err_set(&s->err, "utterance %zu (random frame for utterance %zu): %s", other, utt, e.msg);
        }
        float *xa = b->x_a + r * T * da, *xv = b->x_v + r * T * dv;
        memcpy(xa, ta, sizeof(float) * T * da);
        memcpy(xv, tv, sizeof(float) * T * dv);
        masking_apply(xa, xv, b->mask + r * T, &plan, fa, fv, L->T, L->src.d_a, L->src.d_v);
    }
    return 0;
}

// Prefetch thread: whenever the caller has taken the last batch, prepare the one after it.
static void *prefetch_main(void *arg) {
    Loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->want && !L->quit) pthread_cond_wait(&L->cv, &L->mu);
        if (L->quit) break;
        L->want = 0;
        LoaderSlot *s = &L->slot[L->fill];
        LoaderState st = L->filling;
        pthread_mutex_unlock(&L->mu);
        s->rc = fill_batch(L, s, st);
        pthread_mutex_lock(&L->mu);
        L->filled = 1;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

int loader_open(Loader *L, UttSource src, const size_t *items, size_t n_items, int global_batch, int rank, int world,
                int T, int shuffle, LoaderState start, AvtErr *err) {
    memset(L, 0, sizeof *L);
    if (!src.len || !src.read || src.d_a < 1 || src.d_v < 1)
        return avt_err_set(err, "loader: source without len/read or with widths %d, %d", src.d_a, src.d_v);
    if (world < 1 || rank < 0 || rank >= world)
        return avt_err_set(err, "loader: rank %d of world %d", rank, world);
    if (global_batch < 1 || global_batch % world != 0)
        return avt_err_set(err, "loader: global batch %d does not split over %d ranks", global_batch, world);
    if (T < 1 || T > MASK_T_MAX) return avt_err_set(err, "loader: sequence length %d not in [1, %d]", T, MASK_T_MAX);
    if (n_items < (size_t)global_batch || (uint64_t)n_items > UINT32_MAX)
        return avt_err_set(err, "loader: %zu utterances for batches of %d (at most 2^32 - 1)", n_items, global_batch);
    for (size_t i = 0; i < n_items; i++) // masks are keyed by 32-bit utterance ids
        if ((uint64_t)items[i] > UINT32_MAX) return avt_err_set(err, "loader: utterance id %zu >= 2^32", items[i]);
    uint64_t bpe = n_items / (size_t)global_batch; // drop_last
    if (start.batch >= bpe)
        return avt_err_set(err, "loader: start batch %llu but an epoch has %llu", (unsigned long long)start.batch,
                           (unsigned long long)bpe);

    L->src = src;
    L->n_items = n_items;
    L->global_batch = global_batch;
    L->B = global_batch / world;
    L->rank = rank;
    L->world = world;
    L->T = T;
    L->shuffle = shuffle;
    L->batches_per_epoch = bpe;
    L->next = L->filling = start;
    L->items = malloc_check(sizeof(size_t) * n_items);
    memcpy(L->items, items, sizeof(size_t) * n_items);
    L->perm = malloc_check(sizeof(size_t) * n_items);
    size_t rows = (size_t)L->B * T, da = (size_t)src.d_a, dv = (size_t)src.d_v;
    for (int k = 0; k < 2; k++) {
        LoaderBatch *b = &L->slot[k].b;
        b->x_a = malloc_check(sizeof(float) * rows * da);
        b->x_v = malloc_check(sizeof(float) * rows * dv);
        b->target_a = malloc_check(sizeof(float) * rows * da);
        b->target_v = malloc_check(sizeof(float) * rows * dv);
        b->mask = malloc_check(sizeof(float) * rows);
        b->len = malloc_check(sizeof(int) * L->B);
        b->item = malloc_check(sizeof(size_t) * L->B);
        b->B = L->B;
        b->T = T;
        b->d_a = src.d_a;
        b->d_v = src.d_v;
        L->slot[k].frame = malloc_check(sizeof(float) * (da + dv));
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    L->want = 1; // start on the first batch right away
    if (pthread_create(&L->thread, NULL, prefetch_main, L) != 0) {
        L->quit = 1; // no thread to stop: loader_close only frees
        loader_close(L);
        return avt_err_set(err, "loader: cannot start the prefetch thread");
    }
    return 0;
}

int loader_next(Loader *L, const LoaderBatch **b, AvtErr *err) {
    pthread_mutex_lock(&L->mu);
    while (!L->filled) pthread_cond_wait(&L->cv, &L->mu);
    LoaderSlot *s = &L->slot[L->fill];
    L->filled = 0;
    L->fill = 1 - L->fill; // the caller's previous batch is refilled now
    L->next = L->filling = advance(L, s->b.state);
    L->want = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    if (s->rc != 0) {
        *b = NULL;
        *err = s->err;
        return -1;
    }
    *b = &s->b;
    return 0;
}

LoaderState loader_state(const Loader *L) { return L->next; }

uint64_t loader_batches_per_epoch(const Loader *L) { return L->batches_per_epoch; }

void loader_close(Loader *L) {
    if (!L->items) return; // never opened
    pthread_mutex_lock(&L->mu);
    int running = !L->quit;
    L->quit = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    if (running) pthread_join(L->thread, NULL);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    for (int k = 0; k < 2; k++) {
        LoaderBatch *b = &L->slot[k].b;
        free(b->x_a);
        free(b->x_v);
        free(b->target_a);
        free(b->target_v);
        free(b->mask);
        free(b->len);
        free(b->item);
        free(L->slot[k].frame);
    }
    free(L->items);
    free(L->perm);
    memset(L, 0, sizeof *L);
}
