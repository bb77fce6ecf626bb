// tools/make_emotion_corpus.sh: a small labelled corpus in CREMA-D's layout (real speech and face photos of Debian
// packages, the emotions acted by audio and video effects) that `avt prepare --layout cremad` takes whole, with
// every emotion and actor in labels.csv; and the same SEED gives the same bytes.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "data/corpus/store.h"
#include "data/media/media.h"
#include "tests/testutil.h"

static const char *dir;

static void setup(void) { dir = test_tmpdir(); }
TestSuite(emotion_corpus, .init = setup, .fini = test_tmpdir_remove, .timeout = 300);

// Runs the generator: `[ENV] tools/make_emotion_corpus.sh DIR/out N`, stderr to DIR/out.err. Skips the test where
// avt has no FFmpeg or the generator names something missing (exit 2), fails it on any other error.
static void generate(const char *env, const char *out, int n) {
    if (!media_have_ffmpeg()) cr_skip_test("built without FFmpeg");
    int rc = test_run("%s bash tools/make_emotion_corpus.sh %s/%s %d >/dev/null 2>%s/%s.err", env, dir, out, n, dir,
                      out);
    if (rc == 2) {
        char line[512] = "";
        char err_name[64];
        snprintf(err_name, sizeof err_name, "%s.err", out);
        FILE *f = fopen(test_path(err_name), "r");
        if (f) {
            if (!fgets(line, sizeof line, f)) line[0] = '\0';
            fclose(f);
        }
        line[strcspn(line, "\n")] = '\0';
        cr_skip_test("a program or package is missing: %s", line);
    }
    cr_assert_eq(rc, 0, "make_emotion_corpus.sh %s %d failed (exit %d; see %s/%s.err)", out, n, rc, dir, out);
}

// 24 clips of 3 actors (clip 0: 1001_ITH_ANG_XX): every file prepared (exit 0, nothing skipped), 24 utterances of 1001..1003, all 6 emotions
// in labels.csv, each 4 or 5 times (clip c is emotion (c div 3) mod 6), and the FLVs are CREMA-D's codec.
Test(emotion_corpus, prepares_every_clip) {
    generate("SEED=3 THREADS=2", "emo", 24);
    cr_expect_eq(test_run("test $(ls %s/emo/VideoFlash/*.flv | wc -l) -eq 24 && "
                          "test $(ls %s/emo/AudioWAV/*.wav | wc -l) -eq 24",
                          dir, dir),
                 0, "not 24 FLVs and 24 WAVs");
    cr_expect_eq(test_run("ffprobe -v error -select_streams v -show_entries stream=codec_name,width,height "
                          "-of csv=p=0 %s/emo/VideoFlash/1001_ITH_ANG_XX.flv | grep -qx 'flv1,320,240' && "
                          "ffprobe -v error -show_entries stream=codec_name,sample_rate,channels -of csv=p=0 "
                          "%s/emo/AudioWAV/1001_ITH_ANG_XX.wav | grep -qx 'pcm_s16le,16000,1'",
                          dir, dir),
                 0, "the FLV is not flv1 320x240, or the WAV not 16 kHz mono s16");
    cr_assert_eq(test_run("%s prepare --layout cremad %s/emo --out %s/s --threads 2 2>%s/s.err", test_avt_bin(), dir,
                          dir, dir),
                 0, "avt prepare --layout cremad did not take every clip (see %s/s.err)", dir);
    cr_expect_eq(test_run("test ! -e %s/s/skipped.txt", dir), 0, "clips were skipped");
    Store *s;
    AvtErr err;
    cr_assert_eq(store_open(&s, test_path("s"), &err), 0, "%s", err.msg);
    cr_expect_eq(store_size(s), (size_t)24, "%zu utterances, want 24", store_size(s));
    for (size_t i = 0; i < store_size(s); i++)
        cr_expect(store_len(s, i) >= 9, "%s: %d steps, want >= 9 (2-3 s)", store_id(s, i), store_len(s, i));
    store_close(s);
    cr_expect_eq(test_run("head -1 %s/s/labels.csv | grep -qx 'id,speaker,sentence,emotion,level'", dir), 0);
    cr_expect_eq(test_run("test \"$(tail -n +2 %s/s/labels.csv | cut -d, -f2 | sort -u | tr '\\n' ' ')\" = "
                          "'1001 1002 1003 '",
                          dir),
                 0, "the speakers are not 1001 1002 1003");
    cr_expect_eq(test_run("test \"$(tail -n +2 %s/s/labels.csv | cut -d, -f4 | sort | uniq -c | "
                          "awk '{printf \"%%s%%s \", $2, $1}')\" = 'ANG6 DIS6 FEA3 HAP3 NEU3 SAD3 '",
                          dir),
                 0, "labels.csv does not hold the 6 emotions as generated");
    cr_expect_eq(test_run("tail -n +2 %s/s/labels.csv | awk -F, '$5 != \"XX\" || $3 !~ /^(IEO|TIE|IOM|IWW|TAI|MTI|"
                          "IWL|ITH|DFA|ITS|TSI|WSI)$/ {bad = 1} END {exit bad}'",
                          dir),
                 0, "a sentence or level off CREMA-D's");
    // The cremad layout's store, fine-tuned and tabulated (one fold per actor).
    cr_expect_eq(test_run("%s init --config tiny --out %s/w.safetensors >/dev/null && %s table --data %s/s --target "
                          "emotion --pretrained %s/w.safetensors --folds 3 --seeds 1 --fractions 1 --epochs 1 --batch 4 "
                          "--threads 2 --out %s/t >/dev/null 2>%s/t.err && grep -q '| accuracy | 100 %% |' %s/t/table.md",
                          test_avt_bin(), dir, test_avt_bin(), dir, dir, dir, dir, dir),
                 0, "avt table on the cremad store failed (see %s/t.err)", dir);
}

// The same SEED gives byte-identical files, whatever THREADS; another SEED other audio under the same names.
Test(emotion_corpus, same_seed_same_bytes) {
    generate("SEED=7 THREADS=2 ACTORS=3", "a", 6);
    generate("SEED=7 THREADS=1 ACTORS=3", "b", 6);
    generate("SEED=8 THREADS=1 ACTORS=3", "c", 2);
    cr_expect_eq(test_run("cd %s && test $(ls a/AudioWAV | wc -l) -eq 6 && "
                          "for f in a/AudioWAV/*.wav a/VideoFlash/*.flv; do cmp -s $f b/${f#a/} || exit 1; done",
                          dir),
                 0, "SEED=7 gave other bytes on a second run");
    cr_expect_eq(test_run("cd %s && test $(ls c/AudioWAV | wc -l) -eq 2 && "
                          "for f in c/AudioWAV/*.wav; do test -e a/${f#c/} && ! cmp -s $f a/${f#c/} || exit 1; done",
                          dir),
                 0, "SEED=8 gave SEED=7's clips");
}
