// Tests for data/corpus/layouts.c: small dataset trees of empty files (the names are the rules; no media is read)
// -> each layout's files taken, passed over and rejected, ids, speakers, label columns, separate WAVs, MSP-IMPROV's
// ratings, and labels.csv.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/corpus/layouts.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(layouts, .init = fx_setup, .fini = test_tmpdir_remove);

// Empty files at the given paths (NULL-terminated) under the test directory's root/.
static const char *tree(const char *root, const char *const *files) {
    for (; *files; files++)
        cr_assert_eq(test_run("cd %s && mkdir -p \"$(dirname '%s/%s')\" && touch '%s/%s'", test_path(""), root, *files,
                              root, *files),
                     0, "creating %s/%s", root, *files);
    return test_path(root);
}

typedef struct {
    const char *id, *speaker, *labels; // bad rows: speaker NULL, labels = a phrase of the reason
} Want;

// layout_read(name, root) gives exactly these rows, in this order.
static void expect_rows(const char *name, const char *root, const Want *want, size_t n_want) {
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    const Layout *L = layout_find(name);
    cr_assert_not_null(L, "no layout %s", name);
    cr_assert_eq(layout_read(L, root, &rows, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, n_want, "%s: %zu rows, want %zu", name, n, n_want);
    for (size_t i = 0; i < n; i++) {
        const CorpusRow *r = &rows[i];
        cr_expect_str_eq(r->id, want[i].id);
        char media[600];
        cr_expect(strncmp(r->audio, root, strlen(root)) == 0 && r->audio[strlen(root)] == '/', "%s", r->audio);
        snprintf(media, sizeof media, "%s", r->audio + strlen(root) + 1);
        cr_expect(strncmp(media, want[i].id, strlen(want[i].id)) == 0, "media %s for id %s", media, want[i].id);
        cr_expect_null(r->video);
        if (!want[i].speaker) {
            cr_expect_not_null(r->bad, "%s: not rejected", r->id);
            if (!r->bad) continue;
            cr_expect(strncmp(r->bad, r->audio, strlen(r->audio)) == 0, "'%s' does not start with the file", r->bad);
            cr_expect_not_null(strstr(r->bad, want[i].labels), "'%s' lacks '%s'", r->bad, want[i].labels);
            continue;
        }
        cr_expect_null(r->bad, "%s: %s", r->id, r->bad);
        cr_expect_str_eq(r->speaker, want[i].speaker);
        cr_expect_str_eq(r->labels, want[i].labels);
    }
    corpus_rows_free(rows, n);
}

Test(layouts, unknown_name) {
    cr_expect_null(layout_find("iemocap"));
    cr_expect_null(layout_find(""));
    cr_expect_not_null(layout_find("mspimprov"));
}

Test(layouts, voxceleb2) {
    const char *files[] = {"dev/mp4/id00012/21Uxsk56VDQ/00001.mp4",
                           "dev/mp4/id00012/21Uxsk56VDQ/00002.mp4",
                           "test/mp4/id00020/x-Y_z/00001.mp4",
                           "dev/mp4/spk12/abc/00001.mp4",     // not an identity directory
                           "dev/aac/id00012/abc/00001.m4a",   // the audio-only tree
                           "dev/mp4/id00012/00003.mp4",       // one level short
                           "dev/mp4/id00012/abc/d/00004.mp4", // one level deep
                           "dev/mp4/id00012/abc/00005.avi",
                           "dev/mp4/id00012/abc/.00006.mp4", // a dot file
                           "other/mp4/id00012/abc/00007.mp4",
                           NULL};
    const char *root = tree("vx", files);
    const Want want[] = {{"dev/mp4/id00012/21Uxsk56VDQ/00001", "id00012", "dev,21Uxsk56VDQ"},
                         {"dev/mp4/id00012/21Uxsk56VDQ/00002", "id00012", "dev,21Uxsk56VDQ"},
                         {"dev/mp4/spk12/abc/00001", NULL, "'spk12' is not a VoxCeleb2 identity directory"},
                         {"test/mp4/id00020/x-Y_z/00001", "id00020", "test,x-Y_z"}};
    expect_rows("voxceleb2", root, want, 4);
}

// CREMA-D: ActorID_Sentence_Emotion_Level.flv in VideoFlash/, speaker the actor, labels sentence,emotion,level; the
// 16 kHz original AudioWAV/NAME.wav is the audio when it is there.
Test(layouts, cremad) {
    const char *files[] = {"VideoFlash/1001_DFA_ANG_XX.flv", "VideoFlash/1091_IEO_HAP_HI.flv",
                           "VideoFlash/1002_DFA_ANG_XX.mp4", // another extension
                           "VideoFlash/sub/1003_DFA_ANG_XX.flv",
                           "VideoFlash/1004_DFA_XYZ_XX.flv", // not an emotion
                           "VideoFlash/1005_DFA_NEU_ZZ.flv", // not a level
                           "VideoFlash/100A_DFA_ANG_XX.flv", // actor not 4 digits
                           "VideoFlash/1006-DFA-ANG-XX.flv",
                           "AudioWAV/1001_DFA_ANG_XX.wav",
                           "AudioMP3/1091_IEO_HAP_HI.mp3",
                           NULL};
    const char *root = tree("cd", files);
    const Want want[] = {{"VideoFlash/1001_DFA_ANG_XX", "1001", "DFA,ANG,XX"},
                         {"VideoFlash/1004_DFA_XYZ_XX", NULL, "emotion 'XYZ' or level 'XX' is not a CREMA-D code"},
                         {"VideoFlash/1005_DFA_NEU_ZZ", NULL, "emotion 'NEU' or level 'ZZ' is not a CREMA-D code"},
                         {"VideoFlash/1006-DFA-ANG-XX", NULL, "name is not ActorID_Sentence_Emotion_Level"},
                         {"VideoFlash/100A_DFA_ANG_XX", NULL, "name is not ActorID_Sentence_Emotion_Level"},
                         {"VideoFlash/1091_IEO_HAP_HI", "1091", "IEO,HAP,HI"}};
    expect_rows("cremad", root, want, 6);
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    cr_assert_eq(layout_read(layout_find("cremad"), root, &rows, &n, &err), 0, "%s", err.msg);
    char wav[600];
    snprintf(wav, sizeof wav, "%s/AudioWAV/1001_DFA_ANG_XX.wav", root);
    cr_assert_not_null(rows[0].wav, "AudioWAV/1001_DFA_ANG_XX.wav not found");
    cr_expect_str_eq(rows[0].wav, wav);
    cr_expect_null(rows[5].wav, "1091 has no WAV (an MP3 is not one)");
    corpus_rows_free(rows, n);
}

// RAVDESS: full-AV files (modality 01) only; emotion and the other codes decoded, speaker the actor's directory.
Test(layouts, ravdess) {
    const char *files[] = {"Actor_01/01-01-03-01-01-01-01.mp4",
                           "Actor_01/02-01-03-01-01-01-01.mp4", // video-only: passed over
                           "Actor_01/03-01-03-01-01-01-01.wav", // audio-only
                           "Actor_01/01-01-09-01-01-01-01.mp4", // emotion 09
                           "Actor_01/01-01-03-01-01-01-02.mp4", // actor 02 in Actor_01/
                           "Actor_01/01-01-03.mp4",
                           "Actor_02/01-02-08-02-02-02-02.mp4",
                           "Actor_24/01-01-01-01-02-01-24.mp4",
                           "Other/01-01-03-01-01-01-01.mp4",
                           "Actor_03/x/01-01-03-01-01-01-03.mp4",
                           NULL};
    const char *root = tree("rv", files);
    const Want want[] = {{"Actor_01/01-01-03-01-01-01-01", "Actor_01", "speech,happy,normal,1,1"},
                         {"Actor_01/01-01-03-01-01-01-02", NULL, "actor 02 is not the directory's"},
                         {"Actor_01/01-01-03", NULL, "name is not seven two-digit fields"},
                         {"Actor_01/01-01-09-01-01-01-01", NULL, "a field is out of RAVDESS's codes"},
                         {"Actor_02/01-02-08-02-02-02-02", "Actor_02", "song,surprised,strong,2,2"},
                         {"Actor_24/01-01-01-01-02-01-24", "Actor_24", "speech,neutral,normal,2,1"}};
    expect_rows("ravdess", root, want, 6);
}

// MSP-IMPROV: any folder layout; speaker gender + session; labels from the name, then Evaluation.txt's aggregate
// ratings (rater lines passed over, unlisted clips empty); the WAV beside the AVI is its audio.
Test(layouts, mspimprov) {
    const char *files[] = {"session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.avi",
                           "session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav",
                           "Video/session2/MSP-IMPROV-S20H-M02-R-MM02.avi",
                           "x/MSP-IMPROV-S01X-F01-P-FM01.avi", // emotion X
                           "x/MSP-IMPROV-S01A-F01-Q-FM01.avi", // condition Q
                           "x/MSP-IMPROV-S01A-F01-P-FM01.mp4", "x/other.avi", NULL};
    const char *root = tree("mi", files);
    cr_assert_eq(test_run("printf 'UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:2.333333; V:3.333333; D:3.0 ; N:3.666667;\\n"
                          "rater01; Angry; tense; A:2; V:3; D:3; N:4;\\n' > %s/Evaluation.txt",
                          root),
                 0);
    const Want want[] = {
        {"Video/session2/MSP-IMPROV-S20H-M02-R-MM02", "M02", "02,20,H,R,MM02,,,,"},
        {"session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01", "F01", "01,01,A,P,FM01,A,2.33333,3.33333,3"},
        {"x/MSP-IMPROV-S01A-F01-Q-FM01", NULL, "name is not MSP-IMPROV-S<sentence><emotion>-"},
        {"x/MSP-IMPROV-S01X-F01-P-FM01", NULL, "name is not MSP-IMPROV-S<sentence><emotion>-"},
    };
    expect_rows("mspimprov", root, want, 4);
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    cr_assert_eq(layout_read(layout_find("mspimprov"), root, &rows, &n, &err), 0, "%s", err.msg);
    cr_expect_null(rows[0].wav);
    cr_assert_not_null(rows[1].wav);
    cr_expect_not_null(strstr(rows[1].wav, "session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav"), "%s", rows[1].wav);
    corpus_rows_free(rows, n);
}

Test(layouts, unreadable_or_empty_trees) {
    const char *files[] = {"VideoFlash/readme.txt", NULL};
    const char *root = tree("nofiles", files);
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    cr_assert_eq(layout_read(layout_find("cremad"), root, &rows, &n, &err), -1);
    cr_expect_not_null(strstr(err.msg, "nofiles: no cremad files here (VideoFlash/*.flv)"), "%s", err.msg);
    cr_expect_null(rows);
    cr_assert_eq(layout_read(layout_find("voxceleb2"), test_path("missing"), &rows, &n, &err), -1);
    cr_expect_not_null(strstr(err.msg, "missing: cannot open: No such file or directory"), "%s", err.msg);
    cr_assert_eq(layout_read(layout_find("ravdess"), test_path("nofiles/VideoFlash/readme.txt"), &rows, &n, &err),
                 -1);
    cr_expect_not_null(strstr(err.msg, "readme.txt: not a directory"), "%s", err.msg);
    // A folder the walk cannot open is an error, not a silently smaller corpus (root reads every directory).
    if (geteuid() != 0) {
        const char *locked[] = {"Actor_01/01-01-03-01-01-01-01.mp4", NULL};
        root = tree("locked", locked);
        cr_assert_eq(test_run("chmod 000 %s/Actor_01", root), 0);
        cr_expect_eq(layout_read(layout_find("ravdess"), root, &rows, &n, &err), -1);
        cr_expect_not_null(strstr(err.msg, "Actor_01: cannot open: Permission denied"), "%s", err.msg);
        test_run("chmod 755 %s/Actor_01", root);
    }
}

// labels.csv: the layout's header, then the stored rows only, ids and speakers quoted when they hold a comma.
Test(layouts, labels_csv) {
    const char *files[] = {"VideoFlash/1001_DFA_ANG_XX.flv", "VideoFlash/1002_IEO_SAD_LO.flv",
                           "VideoFlash/1003_ITS_NEU_XX.flv", NULL};
    const char *root = tree("lb", files);
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    const Layout *L = layout_find("cremad");
    cr_assert_eq(layout_read(L, root, &rows, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    rows[0].stored = rows[2].stored = 1;
    free(rows[2].speaker);
    rows[2].speaker = asprintf_check("a,b");
    const char *p = test_path("labels.csv");
    cr_assert_eq(layout_write_labels(L, p, rows, n, &err), 0, "%s", err.msg);
    char *got = test_slurp(p, NULL);
    cr_expect_str_eq(got, "id,speaker,sentence,emotion,level\n"
                          "VideoFlash/1001_DFA_ANG_XX,1001,DFA,ANG,XX\n"
                          "VideoFlash/1003_ITS_NEU_XX,\"a,b\",ITS,NEU,XX\n");
    free(got);
    cr_expect_eq(layout_write_labels(L, test_path("none/labels.csv"), rows, n, &err), -1);
    cr_expect_not_null(strstr(err.msg, "none/labels.csv: cannot create"), "%s", err.msg);
    corpus_rows_free(rows, n);
}
