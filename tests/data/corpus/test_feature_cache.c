// Tests for data/corpus/feature_cache.c: an entry reads back bit for bit; an edited media file or WAV gets another
// entry; an entry that is truncated, flipped, of another version, widths or file is refused, never trusted.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/feature_cache.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(feature_cache, .init = fx_setup, .fini = test_tmpdir_remove);

enum { STEPS = 3, DA = 4, DV = 2 };

static float audio[STEPS * DA], video[STEPS * DV];

// A media file and its WAV in the test directory, and the features of both streams.
static void fixture(void) {
    for (int i = 0; i < STEPS * DA; i++) audio[i] = 0.25f * (float)i - 1.0f;
    for (int i = 0; i < STEPS * DV; i++) video[i] = 100.0f + (float)i;
    cr_assert_eq(test_run("cd %s && mkdir -p cache && printf 'media' > m.flv && printf 'wave' > m.wav", test_path("")),
                 0);
}

static char *entry_of(const char *media, const char *wav) {
    char *e;
    AvtErr err;
    cr_assert_eq(feature_cache_entry(&e, test_path("cache"), "VideoFlash/m.flv", media, wav, &err), 0, "%s",
                 err.msg);
    return e;
}

static void write_entry(const char *entry) {
    Features a = {audio, STEPS, DA}, v = {video, STEPS, DV};
    AvtErr err;
    cr_assert_eq(feature_cache_write(entry, "VideoFlash/m.flv", &a, &v, &err), 0, "%s", err.msg);
}

// Reading entry fails with a phrase of the reason, and leaves both outputs empty.
static void expect_refused(const char *entry, const char *rel, int d_a, int d_v, const char *phrase) {
    Features a, v;
    AvtErr err;
    cr_assert_eq(feature_cache_read(entry, rel, d_a, d_v, &a, &v, &err), -1, "accepted: %s", phrase);
    cr_expect(!a.data && !v.data && a.T == 0 && v.T == 0, "outputs not cleared");
    cr_expect_not_null(strstr(err.msg, phrase), "'%s' lacks '%s'", err.msg, phrase);
    cr_expect_null(strchr(err.msg, '\n'));
}

Test(feature_cache, round_trip) {
    fixture();
    char *e = entry_of(test_path("m.flv"), test_path("m.wav"));
    const char *name = strrchr(e, '/') + 1;
    cr_expect(strlen(name) == 21 && strcmp(name + 16, ".feat") == 0, "entry name %s", name);
    cr_expect(strncmp(e, test_path("cache/"), strlen(test_path("cache/"))) == 0, "%s is not in the cache", e);
    expect_refused(e, "VideoFlash/m.flv", DA, DV, "cannot open"); // not yet written
    write_entry(e);
    Features a, v;
    AvtErr err;
    cr_assert_eq(feature_cache_read(e, "VideoFlash/m.flv", DA, DV, &a, &v, &err), 0, "%s", err.msg);
    cr_assert(a.T == STEPS && v.T == STEPS && a.D == DA && v.D == DV);
    cr_expect_eq(memcmp(a.data, audio, sizeof audio), 0);
    cr_expect_eq(memcmp(v.data, video, sizeof video), 0);
    features_free(&a);
    features_free(&v);
    // The same files give the same entry.
    char *again = entry_of(test_path("m.flv"), test_path("m.wav"));
    cr_expect_str_eq(again, e);
    cr_expect_eq(test_run("test $(ls %s | wc -l) -eq 1", test_path("cache")), 0, "a temporary file was left");
    free(again);
    free(e);
}

// The name keys the relative path and both files' size and mtime: a changed source misses the old entry.
Test(feature_cache, changed_source_misses) {
    fixture();
    char *e = entry_of(test_path("m.flv"), test_path("m.wav"));
    write_entry(e);
    char *no_wav = entry_of(test_path("m.flv"), NULL);
    cr_expect_str_neq(no_wav, e, "the WAV is not part of the key");
    char *other;
    AvtErr err;
    cr_assert_eq(feature_cache_entry(&other, test_path("cache"), "VideoFlash/n.flv", test_path("m.flv"),
                                     test_path("m.wav"), &err),
                 0);
    cr_expect_str_neq(other, e, "the relative path is not part of the key");
    const char *edits[] = {"touch -d '2001-01-01' m.flv", "printf 'x' >> m.flv", "touch -d '2001-01-01' m.wav",
                           "printf 'y' >> m.wav"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(test_run("cd %s && %s", test_path(""), edits[i]), 0);
        char *now = entry_of(test_path("m.flv"), test_path("m.wav"));
        cr_expect_str_neq(now, e, "after '%s' the old entry is still used", edits[i]);
        expect_refused(now, "VideoFlash/m.flv", DA, DV, "cannot open");
        free(e);
        e = now;
    }
    free(e);
    free(no_wav);
    free(other);
    cr_assert_eq(feature_cache_entry(&other, test_path("cache"), "VideoFlash/gone.flv", test_path("gone.flv"), NULL,
                                     &err),
                 -1);
    cr_expect_not_null(strstr(err.msg, "gone.flv: No such file or directory"), "%s", err.msg);
}

// A damaged entry is refused (then recomputed), whatever the damage: size, data, header, another file's entry.
// The entry: 8 + 7 x 4 header bytes, the 16-byte path, audio bytes [52, 100), video bytes [100, 124).
Test(feature_cache, damaged_entry_refused) {
    fixture();
    char *e = entry_of(test_path("m.flv"), NULL);
    write_entry(e);
    expect_refused(e, "VideoFlash/m.flv", DA + 1, DV, "not for (5, 2)");
    expect_refused(e, "VideoFlash/other.flv", DA, DV, "'VideoFlash/other.flv'");
    expect_refused(e, "VideoFlash/m.flx", DA, DV, "another file");
    const char *damage[][2] = {
        {"truncate -s -4", "not the size its header gives"},
        {"truncate -s +4", "not the size its header gives"},
        {"truncate -s 20", "shorter than a cache entry's header"},
        {"printf '\\377' | dd conv=notrunc bs=1 seek=60 of=", "CRC mismatch"},  // a byte of the audio
        {"printf '\\377' | dd conv=notrunc bs=1 seek=110 of=", "CRC mismatch"}, // a byte of the video
        {"printf 'X' | dd conv=notrunc bs=1 seek=0 of=", "bad magic"},
        {"printf '\\001' | dd conv=notrunc bs=1 seek=8 of=", "version 1, not 2"},  // written before the CRC
        {"printf '\\377' | dd conv=notrunc bs=1 seek=12 of=", "not the size"},     // T = 255
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        write_entry(e);
        cr_assert_eq(test_run("%s%s%s 2>/dev/null", damage[i][0], strchr(damage[i][0], '|') ? "" : " ", e), 0);
        expect_refused(e, "VideoFlash/m.flv", DA, DV, damage[i][1]);
    }
    free(e);
}

Test(feature_cache, write_needs_equal_steps) {
    fixture();
    Features a = {audio, STEPS, DA}, v = {video, STEPS - 1, DV};
    AvtErr err;
    cr_expect_eq(feature_cache_write(test_path("cache/x.feat"), "VideoFlash/m.flv", &a, &v, &err), -1);
    cr_expect_not_null(strstr(err.msg, "cannot cache 3 audio and 2 video steps"), "%s", err.msg);
    a.T = v.T = STEPS;
    cr_expect_eq(feature_cache_write(test_path("none/x.feat"), "VideoFlash/m.flv", &a, &v, &err), -1);
    cr_expect_not_null(strstr(err.msg, "none/x.feat: cannot create"), "%s", err.msg);
}
