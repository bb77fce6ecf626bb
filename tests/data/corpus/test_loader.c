// Tests for data/corpus/loader.c against a serial re-implementation: permutation, truncation and padding, masking keys,
// rank slicing, resuming, epochs, errors, and prefetching (the thread must not change what a batch holds).
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/corpus/loader.h"

enum { N_UTT = 120, DA = 5, DV = 3, T = 16 };

// Synthetic utterances: lengths 1..23 (some above T), every value distinct and nonzero.
typedef struct {
    size_t fail;       // reads of this utterance fail (SIZE_MAX: none) ...
    int fail_frames;   // ... only its one-step reads (random frames) if set, else only its longer ones
    int read_sleep_us; // a slow source
} Synth;

static int synth_len_of(size_t i) { return 1 + (int)(i * 7 % 23); }
static float feat(size_t i, int t, int j) { return (float)(i + 1) + 0.01f * (float)t + 0.0001f * (float)j; }

static int synth_len(void *ctx, size_t i) {
    (void)ctx;
    return synth_len_of(i);
}

static int synth_read(void *ctx, size_t i, int t0, int n, float *audio, float *video, AvtErr *err) {
    const Synth *s = ctx;
    if (s->read_sleep_us) usleep((useconds_t)s->read_sleep_us);
    if (i == s->fail && (n == 1) == (s->fail_frames != 0)) return avt_err_set(err, "store.bin: checksum mismatch");
    if (t0 < 0 || n < 1 || t0 + n > synth_len_of(i)) return avt_err_set(err, "bad range [%d, %d)", t0, t0 + n);
    for (int t = 0; t < n; t++) {
        for (int j = 0; j < DA; j++) audio[t * DA + j] = feat(i, t0 + t, j);
        for (int j = 0; j < DV; j++) video[t * DV + j] = -feat(i, t0 + t, j);
    }
    return 0;
}

static UttSource synth_source(Synth *s) {
    UttSource src = {.ctx = s, .d_a = DA, .d_v = DV, .len = synth_len, .read = synth_read};
    return src;
}

// The dataset: every third utterance from 1 (ids differ from positions), 40 items.
static size_t n_dataset(size_t *items) {
    size_t n = 0;
    for (size_t i = 1; i < N_UTT; i += 3) items[n++] = i;
    return n;
}

static void batch_alloc(LoaderBatch *b, int B) {
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    b->d_a = DA;
    b->d_v = DV;
    b->x_a = calloc((size_t)B * T * DA, sizeof(float));
    b->x_v = calloc((size_t)B * T * DV, sizeof(float));
    b->target_a = calloc((size_t)B * T * DA, sizeof(float));
    b->target_v = calloc((size_t)B * T * DV, sizeof(float));
    b->mask = calloc((size_t)B * T, sizeof(float));
    b->len = calloc((size_t)B, sizeof(int));
    b->item = calloc((size_t)B, sizeof(size_t));
}

static void batch_free(LoaderBatch *b) {
    free(b->x_a);
    free(b->x_v);
    free(b->target_a);
    free(b->target_v);
    free(b->mask);
    free(b->len);
    free(b->item);
}

static void batch_copy(LoaderBatch *dst, const LoaderBatch *src) {
    batch_alloc(dst, src->B);
    size_t rows = (size_t)src->B * T;
    memcpy(dst->x_a, src->x_a, sizeof(float) * rows * DA);
    memcpy(dst->x_v, src->x_v, sizeof(float) * rows * DV);
    memcpy(dst->target_a, src->target_a, sizeof(float) * rows * DA);
    memcpy(dst->target_v, src->target_v, sizeof(float) * rows * DV);
    memcpy(dst->mask, src->mask, sizeof(float) * rows);
    memcpy(dst->len, src->len, sizeof(int) * src->B);
    memcpy(dst->item, src->item, sizeof(size_t) * src->B);
    dst->state = src->state;
}

// got's rows equal ref's rows [r0, r0 + got->B), bit for bit, and both name the same batch.
static void expect_rows(const LoaderBatch *got, const LoaderBatch *ref, int r0, const char *what) {
    cr_assert_eq(got->state.seed, ref->state.seed, "%s", what);
    cr_assert_eq(got->state.epoch, ref->state.epoch, "%s: epoch %u vs %u", what, got->state.epoch, ref->state.epoch);
    cr_assert_eq(got->state.batch, ref->state.batch, "%s: batch %llu vs %llu", what,
                 (unsigned long long)got->state.batch, (unsigned long long)ref->state.batch);
    size_t o = (size_t)r0 * T, rows = (size_t)got->B * T;
    cr_assert_eq(memcmp(got->item, ref->item + r0, sizeof(size_t) * got->B), 0, "%s: items", what);
    cr_assert_eq(memcmp(got->len, ref->len + r0, sizeof(int) * got->B), 0, "%s: lengths", what);
    cr_assert_eq(memcmp(got->mask, ref->mask + o, sizeof(float) * rows), 0, "%s: mask", what);
    cr_assert_eq(memcmp(got->target_a, ref->target_a + o * DA, sizeof(float) * rows * DA), 0, "%s: target_a", what);
    cr_assert_eq(memcmp(got->target_v, ref->target_v + o * DV, sizeof(float) * rows * DV), 0, "%s: target_v", what);
    cr_assert_eq(memcmp(got->x_a, ref->x_a + o * DA, sizeof(float) * rows * DA), 0, "%s: x_a", what);
    cr_assert_eq(memcmp(got->x_v, ref->x_v + o * DV, sizeof(float) * rows * DV), 0, "%s: x_v", what);
}

// ---- the serial re-implementation ----

static void ref_perm(size_t *perm, size_t n, uint64_t seed, uint32_t epoch, int shuffle) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n - 1; shuffle && i > 0; i--) {
        size_t j = philox_below(seed, LOADER_SHUFFLE_SITE, epoch, i, (uint64_t)i + 1);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static int min_t(int n) { return n < T ? n : T; }

// Rows [rank*B, (rank+1)*B) of global batch st, one sample at a time.
static void ref_batch(LoaderBatch *out, const size_t *items, size_t n, int G, int rank, int world, int shuffle,
                      LoaderState st) {
    int B = G / world;
    batch_alloc(out, B);
    out->state = st;
    size_t *perm = malloc(sizeof(size_t) * n);
    ref_perm(perm, n, st.seed, st.epoch, shuffle);
    for (int r = 0; r < B; r++) {
        size_t pos = perm[st.batch * G + (size_t)(rank * B + r)], utt = items[pos];
        int len = min_t(synth_len_of(utt));
        out->item[r] = utt;
        out->len[r] = len;
        float *ta = out->target_a + (size_t)r * T * DA, *tv = out->target_v + (size_t)r * T * DV; // calloc: padded
        for (int t = 0; t < len; t++) {
            for (int j = 0; j < DA; j++) ta[t * DA + j] = feat(utt, t, j);
            for (int j = 0; j < DV; j++) tv[t * DV + j] = -feat(utt, t, j);
        }
        MaskPlan p;
        masking_plan(&p, st.seed, st.epoch, utt, pos, synth_len_of(utt), T, n);
        masking_plan_frame(&p, synth_len_of(items[p.frame_pos]));
        cr_assert_geq(p.frame_step, 0);
        float fa[DA], fv[DV];
        for (int j = 0; j < DA; j++) fa[j] = feat(items[p.frame_pos], p.frame_step, j);
        for (int j = 0; j < DV; j++) fv[j] = -feat(items[p.frame_pos], p.frame_step, j);
        float *xa = out->x_a + (size_t)r * T * DA, *xv = out->x_v + (size_t)r * T * DV;
        memcpy(xa, ta, sizeof(float) * T * DA);
        memcpy(xv, tv, sizeof(float) * T * DV);
        masking_apply(xa, xv, out->mask + (size_t)r * T, &p, fa, fv, T, DA, DV);
    }
    free(perm);
}

static LoaderState st0(uint64_t seed) {
    LoaderState s = {.seed = seed, .epoch = 0, .batch = 0};
    return s;
}

static void open_ok(Loader *L, Synth *s, const size_t *items, size_t n, int G, int rank, int world, int shuffle,
                    LoaderState start) {
    AvtErr err = {{0}};
    cr_assert_eq(loader_open(L, synth_source(s), items, n, G, rank, world, T, shuffle, start, &err), 0, "%s",
                 err.msg);
}

static const LoaderBatch *next_ok(Loader *L) {
    const LoaderBatch *b = NULL;
    AvtErr err = {{0}};
    cr_assert_eq(loader_next(L, &b, &err), 0, "%s", err.msg);
    cr_assert_not_null(b);
    return b;
}

// ---- tests ----

Test(loader, batches_match_serial_reference_across_epochs) {
    size_t items[N_UTT];
    size_t n = n_dataset(items);
    Synth s = {.fail = SIZE_MAX};
    Loader L;
    open_ok(&L, &s, items, n, 8, 0, 1, 1, st0(42));
    cr_assert_eq(loader_batches_per_epoch(&L), 5); // 40 items / 8
    int truncated = 0, padded = 0, masked_padding = 0;
    for (uint64_t k = 0; k < 13; k++) {
        LoaderState want = {.seed = 42, .epoch = (uint32_t)(k / 5), .batch = k % 5};
        LoaderState at = loader_state(&L);
        cr_assert(at.epoch == want.epoch && at.batch == want.batch, "state before batch %llu", (unsigned long long)k);
        const LoaderBatch *b = next_ok(&L);
        LoaderBatch ref;
        ref_batch(&ref, items, n, 8, 0, 1, 1, want);
        expect_rows(b, &ref, 0, "world 1");
        for (int r = 0; r < b->B; r++) {
            truncated += synth_len_of(b->item[r]) > T;
            padded += b->len[r] < T;
            for (int t = b->len[r]; t < T; t++) masked_padding += b->mask[r * T + t] != 0.0f;
        }
        batch_free(&ref);
    }
    cr_assert(truncated > 0 && padded > 0 && masked_padding > 0, "fixture misses a case: %d truncated, %d padded, "
              "%d masked padding steps", truncated, padded, masked_padding);
    loader_close(&L);
}

Test(loader, ranks_get_their_rows_of_the_global_batch) {
    size_t items[N_UTT];
    size_t n = n_dataset(items);
    Synth s = {.fail = SIZE_MAX};
    static const int worlds[] = {2, 4};
    for (int w = 0; w < 2; w++) {
        int world = worlds[w];
        Loader one, ranks[4];
        open_ok(&one, &s, items, n, 8, 0, 1, 1, st0(7));
        for (int r = 0; r < world; r++) open_ok(&ranks[r], &s, items, n, 8, r, world, 1, st0(7));
        for (int k = 0; k < 12; k++) {
            const LoaderBatch *all = next_ok(&one);
            for (int r = 0; r < world; r++) {
                const LoaderBatch *b = next_ok(&ranks[r]);
                cr_assert_eq(b->B, 8 / world);
                expect_rows(b, all, r * b->B, world == 2 ? "rank of 2" : "rank of 4");
            }
        }
        loader_close(&one);
        for (int r = 0; r < world; r++) loader_close(&ranks[r]);
    }
}

Test(loader, resuming_from_state_continues_exactly) {
    size_t items[N_UTT];
    size_t n = n_dataset(items);
    Synth s = {.fail = SIZE_MAX};
    enum { K = 14 };
    LoaderBatch run[K];
    LoaderState state_after[K];
    Loader L;
    open_ok(&L, &s, items, n, 8, 1, 2, 1, st0(99));
    for (int k = 0; k < K; k++) {
        batch_copy(&run[k], next_ok(&L));
        state_after[k] = loader_state(&L);
    }
    loader_close(&L);
    static const int stops[] = {1, 4, 5, 9};
    for (size_t c = 0; c < sizeof stops / sizeof stops[0]; c++) {
        int k0 = stops[c];
        Loader R;
        open_ok(&R, &s, items, n, 8, 1, 2, 1, state_after[k0 - 1]);
        for (int k = k0; k < K; k++) expect_rows(next_ok(&R), &run[k], 0, "resumed");
        loader_close(&R);
    }
    for (int k = 0; k < K; k++) batch_free(&run[k]);
}

// Items of one whole epoch (batches_per_epoch * G of them) in batch order.
static void epoch_items(Loader *L, size_t *out) {
    size_t m = 0;
    for (uint64_t k = 0; k < loader_batches_per_epoch(L); k++) {
        const LoaderBatch *b = next_ok(L);
        for (int r = 0; r < b->B; r++) out[m++] = b->item[r];
    }
}

Test(loader, epochs_reshuffle_and_shuffle_off_keeps_order) {
    size_t items[N_UTT], e0[N_UTT], e1[N_UTT];
    size_t n = n_dataset(items);
    Synth s = {.fail = SIZE_MAX};
    Loader L;
    open_ok(&L, &s, items, n, 8, 0, 1, 1, st0(5));
    epoch_items(&L, e0);
    epoch_items(&L, e1);
    loader_close(&L);
    size_t m = 40; // 5 batches of 8: drop_last drops nothing here
    cr_assert_neq(memcmp(e0, e1, sizeof(size_t) * m), 0, "epochs 0 and 1 have the same order");
    for (int e = 0; e < 2; e++) { // each epoch is a permutation of the dataset
        const size_t *ep = e ? e1 : e0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = i + 1; j < m; j++) cr_assert_neq(ep[i], ep[j], "epoch %d repeats utterance %zu", e, ep[i]);
    }

    // shuffle off: items in order every epoch; 37 items, batches of 6: the last item is dropped
    Loader V;
    open_ok(&V, &s, items, 37, 6, 0, 1, 0, st0(5));
    cr_assert_eq(loader_batches_per_epoch(&V), 6);
    float mask0[6 * T];
    for (int e = 0; e < 2; e++) {
        epoch_items(&V, e == 0 ? e0 : e1);
        for (size_t i = 0; i < 36; i++) cr_assert_eq((e == 0 ? e0 : e1)[i], items[i]);
    }
    memcpy(mask0, next_ok(&V)->mask, sizeof mask0); // epoch 2, batch 0: same samples as epoch 0's first batch
    loader_close(&V);
    open_ok(&V, &s, items, 37, 6, 0, 1, 0, st0(5));
    const LoaderBatch *b = next_ok(&V);
    cr_assert_eq(memcmp(b->item, items, sizeof(size_t) * 6), 0);
    cr_assert_neq(memcmp(b->mask, mask0, sizeof mask0), 0, "masks repeat across epochs");
    loader_close(&V);
}

static void expect_read_error(Loader *L, const char *want) {
    const LoaderBatch *b = (const LoaderBatch *)1;
    AvtErr err = {{0}};
    cr_assert_eq(loader_next(L, &b, &err), -1);
    cr_assert_null(b);
    cr_assert_not_null(strstr(err.msg, want), "error '%s' does not say '%s'", err.msg, want);
    cr_assert_null(strchr(err.msg, '\n'));
}

Test(loader, read_error_names_the_utterance_and_skips_the_batch) {
    size_t items[N_UTT];
    size_t n = n_dataset(items);
    Synth s = {.fail = items[11]}; // shuffle off, batches of 4: position 11 is batch 2, row 3 = rank 1's row 1
    Loader L;
    open_ok(&L, &s, items, n, 4, 1, 2, 0, st0(1));
    next_ok(&L);
    next_ok(&L);
    char want[128];
    snprintf(want, sizeof want, "utterance %zu: store.bin: checksum mismatch", items[11]);
    expect_read_error(&L, want);
    cr_assert_eq(loader_state(&L).batch, 3); // skipped
    const LoaderBatch *b = next_ok(&L);
    cr_assert_eq(b->state.batch, 3);
    cr_assert_eq(b->item[0], items[14]);
    loader_close(&L);

    // a failing random-frame read names both utterances
    MaskPlan p;
    masking_plan(&p, 1, 0, items[0], 0, synth_len_of(items[0]), T, n);
    Synth f = {.fail = items[p.frame_pos], .fail_frames = 1};
    open_ok(&L, &f, items, n, 4, 0, 1, 0, st0(1));
    snprintf(want, sizeof want, "utterance %zu (random frame for utterance %zu): store.bin", items[p.frame_pos],
             items[0]);
    expect_read_error(&L, want);
    loader_close(&L);
}

Test(loader, open_rejects_bad_arguments) {
    size_t items[N_UTT];
    size_t n = n_dataset(items);
    Synth s = {.fail = SIZE_MAX};
    UttSource src = synth_source(&s);
    Loader L;
    AvtErr err = {{0}};
    cr_assert_eq(loader_open(&L, src, items, n, 6, 0, 4, T, 1, st0(1), &err), -1);
    cr_assert_not_null(strstr(err.msg, "global batch 6 does not split over 4 ranks"), "%s", err.msg);
    cr_assert_eq(loader_open(&L, src, items, n, 8, 2, 2, T, 1, st0(1), &err), -1);
    cr_assert_not_null(strstr(err.msg, "rank 2 of world 2"), "%s", err.msg);
    cr_assert_eq(loader_open(&L, src, items, 7, 8, 0, 1, T, 1, st0(1), &err), -1);
    cr_assert_not_null(strstr(err.msg, "7 utterances for batches of 8"), "%s", err.msg);
    cr_assert_eq(loader_open(&L, src, items, n, 8, 0, 1, MASK_T_MAX + 1, 1, st0(1), &err), -1);
    cr_assert_not_null(strstr(err.msg, "sequence length"), "%s", err.msg);
    LoaderState late = {.seed = 1, .epoch = 3, .batch = 5};
    cr_assert_eq(loader_open(&L, src, items, n, 8, 0, 1, T, 1, late, &err), -1);
    cr_assert_not_null(strstr(err.msg, "start batch 5 but an epoch has 5"), "%s", err.msg);
    size_t big[8] = {0, 1, 2, 3, 4, 5, 6, (size_t)1 << 32};
    cr_assert_eq(loader_open(&L, src, big, 8, 8, 0, 1, T, 1, st0(1), &err), -1);
    cr_assert_not_null(strstr(err.msg, "utterance id 4294967296"), "%s", err.msg);
    loader_close(&L); // harmless after a failed open
}

// The prefetch thread runs ahead of a slow consumer and behind a fast one; both see the same batches.
Test(loader, prefetch_timing_does_not_change_batches) {
    size_t items[N_UTT];
    size_t n = n_dataset(items);
    Synth fast = {.fail = SIZE_MAX}, slow = {.fail = SIZE_MAX, .read_sleep_us = 200};
    enum { K = 12 };
    Loader A, Bl;
    open_ok(&A, &fast, items, n, 8, 0, 1, 1, st0(3));
    open_ok(&Bl, &slow, items, n, 8, 0, 1, 1, st0(3));
    for (int k = 0; k < K; k++) {
        usleep(5000); // A's next batch is ready before it is asked for; Bl's is still being read
        LoaderBatch a;
        batch_copy(&a, next_ok(&A));
        const LoaderBatch *b = next_ok(&Bl);
        expect_rows(b, &a, 0, "slow source vs sleeping consumer");
        LoaderBatch ref;
        ref_batch(&ref, items, n, 8, 0, 1, 1, a.state);
        expect_rows(b, &ref, 0, "prefetched vs serial");
        batch_free(&ref);
        batch_free(&a);
    }
    loader_close(&A);
    loader_close(&Bl);
}
