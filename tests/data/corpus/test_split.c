// Tests for data/corpus/split.c: speaker-disjoint with two or more speakers (at least one held out, the same
// speakers as before held-out utterances existed), a lone speaker's utterances held out, --val 0 holds out nothing;
// deterministic for a seed and independent of the row order.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/split.h"
#include "tests/testutil.h"

static const char *dir;
static void setup(void) { dir = test_tmpdir(); }
TestSuite(split, .init = setup, .fini = test_tmpdir_remove, .timeout = 60);

// A store of n one-step utterances "spk<k % n_spk>/utt<k>" of speaker "speaker-<k % n_spk>", written in the order
// order[0..n) (identity when NULL). The split reads names only, so the features are zeros.
static Store *write_store(int n, int n_spk, const int *order) {
    StoreWriter *w;
    AvtErr err;
    cr_assert_eq(store_writer_open(&w, dir, STORE_F32, 2, 1, 1000, &err), 0, "%s", err.msg);
    const float a[2] = {0.0f, 0.0f}, v[1] = {0.0f};
    for (int i = 0; i < n; i++) {
        int k = order ? order[i] : i;
        char id[64], spk[64];
        snprintf(id, sizeof id, "spk%d/utt%03d", k % n_spk, k);
        snprintf(spk, sizeof spk, "speaker-%d", k % n_spk);
        cr_assert_eq(store_writer_add(w, id, spk, 1, a, v, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(store_writer_finish(w, &err), 0, "%s", err.msg);
    Store *s;
    cr_assert_eq(store_open(&s, dir, &err), 0, "%s", err.msg);
    return s;
}

// Sorted ids of the val side, joined, for comparing splits of differently ordered stores.
static char *val_ids(const Store *s, const StoreSplit *sp) {
    const char **ids = malloc(sizeof(char *) * (sp->n_val + 1));
    for (size_t i = 0; i < sp->n_val; i++) ids[i] = store_id(s, sp->val[i]);
    for (size_t i = 1; i < sp->n_val; i++) // insertion sort: few
        for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
            const char *t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    char *out = calloc(sp->n_val * 64 + 1, 1);
    for (size_t i = 0; i < sp->n_val; i++) strcat(strcat(out, ids[i]), ",");
    free(ids);
    return out;
}

// Every utterance on exactly one side, both sides ascending; with speaker_disjoint, no speaker on both sides and
// val_speakers counts the speakers on the val side.
static void check_split(const Store *s, const StoreSplit *sp, int speaker_disjoint) {
    size_t n = store_size(s);
    cr_assert_eq(sp->n_train + sp->n_val, n, "complete");
    int *side = calloc(n, sizeof(int)), *spk_side = calloc(store_n_speakers(s), sizeof(int));
    for (size_t i = 0; i < sp->n_train; i++) side[sp->train[i]] |= 1;
    for (size_t i = 0; i < sp->n_val; i++) side[sp->val[i]] |= 2;
    for (size_t i = 0; i < n; i++) {
        cr_assert(side[i] == 1 || side[i] == 2, "utterance %zu on sides %d", i, side[i]);
        spk_side[store_speaker(s, i)] |= side[i];
    }
    if (speaker_disjoint) {
        uint32_t held = 0;
        for (uint32_t k = 0; k < store_n_speakers(s); k++) {
            cr_assert(spk_side[k] != 3, "speaker %u split", k);
            held += spk_side[k] == 2;
        }
        cr_assert_eq(sp->val_speakers, held, "val_speakers %u, %u speakers on the val side", sp->val_speakers, held);
        cr_assert_eq(sp->by_utterance, 0);
    }
    for (size_t i = 1; i < sp->n_train; i++) cr_assert_lt(sp->train[i - 1], sp->train[i], "train ascending");
    for (size_t i = 1; i < sp->n_val; i++) cr_assert_lt(sp->val[i - 1], sp->val[i], "val ascending");
    free(side);
    free(spk_side);
}

Test(split, by_speaker) {
    enum { N = 40 };
    Store *s = write_store(N, 5, NULL);
    StoreSplit sp;
    store_split(s, 0.3, 7, &sp);
    check_split(s, &sp, 1);
    cr_expect(sp.n_val >= 12 && sp.n_train >= 1, "val holds >= 30%% of the utterances: %zu", sp.n_val);
    // The speakers held out before the split knew utterances: resumed runs depend on them.
    cr_expect_eq(sp.val_speakers, 2);
    for (size_t i = 0; i < sp.n_val; i++) {
        const char *name = store_speaker_name(s, store_speaker(s, sp.val[i]));
        cr_expect(strcmp(name, "speaker-0") == 0 || strcmp(name, "speaker-3") == 0, "%s held out", name);
    }
    char *ref = val_ids(s, &sp);
    store_split_free(&sp);
    // Deterministic for a seed; other seeds give other splits.
    store_split(s, 0.3, 7, &sp);
    char *again = val_ids(s, &sp);
    cr_expect_str_eq(again, ref);
    free(again);
    store_split_free(&sp);
    int differs = 0;
    for (uint64_t seed = 100; seed < 110; seed++) {
        store_split(s, 0.3, seed, &sp);
        check_split(s, &sp, 1);
        char *o = val_ids(s, &sp);
        differs |= strcmp(o, ref) != 0;
        free(o);
        store_split_free(&sp);
    }
    cr_expect(differs, "the seed changes the split");
    // Each side gets a speaker even at the extremes.
    store_split(s, 0.999, 7, &sp);
    check_split(s, &sp, 1);
    cr_expect(sp.n_train > 0 && sp.n_val > 0);
    store_split_free(&sp);
    store_split(s, 1e-6, 7, &sp);
    cr_expect(sp.n_train > 0 && sp.n_val > 0);
    store_split_free(&sp);
    store_close(s);

    // The same utterances written in another order: another speaker table, the same split.
    int order[N];
    for (int i = 0; i < N; i++) order[i] = (i * 17 + 6) % N; // 17 is coprime with 40: a permutation
    s = write_store(N, 5, order);
    cr_expect_str_neq((char *)store_speaker_name(s, 0), "speaker-0", "the speaker table was reordered");
    store_split(s, 0.3, 7, &sp);
    check_split(s, &sp, 1);
    char *perm = val_ids(s, &sp);
    cr_expect_str_eq(perm, ref, "split depends on the row order");
    free(perm), free(ref);
    store_split_free(&sp);
    store_close(s);
}

// Two speakers and the default --val 0.05 (a twentieth of the utterances is less than a speaker's): one speaker
// is held out whatever the seed, never zero.
Test(split, two_speakers_hold_out_one) {
    Store *s = write_store(20, 2, NULL);
    for (uint64_t seed = 1; seed <= 8; seed++) {
        StoreSplit sp;
        store_split(s, 0.05, seed, &sp);
        check_split(s, &sp, 1);
        cr_expect_eq(sp.val_speakers, 1, "seed %llu: %u speakers held out", (unsigned long long)seed,
                     sp.val_speakers);
        cr_expect_eq(sp.n_val, 10, "seed %llu: the held-out speaker has 10 utterances", (unsigned long long)seed);
        store_split_free(&sp);
    }
    store_close(s);
}

// One speaker: ceil(0.05 x 40) = 2 of its utterances are held out, chosen by seed and id (not by row).
Test(split, one_speaker_holds_out_utterances) {
    enum { N = 40 };
    Store *s = write_store(N, 1, NULL);
    StoreSplit sp;
    store_split(s, 0.05, 3, &sp);
    check_split(s, &sp, 0);
    cr_expect_eq(sp.by_utterance, 1);
    cr_expect_eq(sp.val_speakers, 0);
    cr_expect_eq(sp.n_val, 2, "%zu utterances held out", sp.n_val);
    char *ref = val_ids(s, &sp);
    store_split_free(&sp);
    int differs = 0;
    for (uint64_t seed = 100; seed < 110; seed++) {
        store_split(s, 0.05, seed, &sp);
        char *o = val_ids(s, &sp);
        differs |= strcmp(o, ref) != 0;
        free(o);
        store_split_free(&sp);
    }
    cr_expect(differs, "the seed changes the held-out utterances");
    // Training keeps an utterance even at the extreme.
    store_split(s, 0.999, 3, &sp);
    cr_expect(sp.n_train == 1 && sp.n_val == N - 1, "%zu train, %zu val", sp.n_train, sp.n_val);
    store_split_free(&sp);
    store_close(s);

    int order[N];
    for (int i = 0; i < N; i++) order[i] = N - 1 - i;
    s = write_store(N, 1, order);
    store_split(s, 0.05, 3, &sp);
    char *rev = val_ids(s, &sp);
    cr_expect_str_eq(rev, ref, "split depends on the row order");
    free(rev), free(ref);
    store_split_free(&sp);
    store_close(s);

    // A single utterance stays in training.
    s = write_store(1, 1, NULL);
    store_split(s, 0.05, 3, &sp);
    cr_expect(sp.n_train == 1 && sp.n_val == 0 && !sp.by_utterance);
    store_split_free(&sp);
    store_close(s);
}

// --val 0: no split, whatever the speakers.
Test(split, val_zero_holds_out_nothing) {
    const int speakers[] = {1, 2, 5};
    for (int j = 0; j < 3; j++) {
        Store *s = write_store(20, speakers[j], NULL);
        StoreSplit sp;
        store_split(s, 0.0, 7, &sp);
        cr_expect(sp.n_train == 20 && sp.n_val == 0, "%d speakers: %zu held out", speakers[j], sp.n_val);
        check_split(s, &sp, 1);
        store_split_free(&sp);
        store_close(s);
    }
}
