// avt features: the model's inputs computed from one media file, for inspection.
#include <stdlib.h>
#include <string.h>
#include "data/media/av_features.h"
#include "data/media/face.h"
#include "data/media/fbank.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt features MEDIA [--out PREFIX] [--plot OUT.png] [--cascade XML] [--threads N]\n"
    "\n"
    "Decodes any audio-visual file FFmpeg reads and prints what the model would get from it: 5 steps per second,\n"
    "audio = statistics of a Kaldi log-mel filterbank over each 200 ms step (512 values: mean, standard deviation,\n"
    "min and max of 128 mel bins), video = a 17-value descriptor of the tracked, cropped face (data/media/face.h;\n"
    "all zeros where no face was found).\n"
    "\n"
    "  --out PREFIX        write PREFIX.audio.npy (S, 512) and PREFIX.video.npy (S, 17), float32\n"
    "  --plot OUT.png      draw the filterbank and the face crops of the file (gnuplot)\n"
    "  --cascade XML       OpenCV face cascade (default " AV_CASCADE_DEFAULT ", from opencv-data)\n"
    "  --threads N         CPU threads (default: all cores)\n";

// Face crops side by side, 8 per row, of up to 32 steps spread over the file: (rows * 64, 8 * 64) gray.
#define PLOT_COLS 8
#define PLOT_CROPS 32

static void write_floats(const char *path, const float *x, size_t n) {
    FILE *f = fopen_check(path, "wb");
    fwrite_check(x, sizeof(float), n, f, path);
    fclose_check(f, path);
}

static void plot(const char *png, const AvFeatures *f, const char *media) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        avt_die("--plot needs gnuplot (apt-get install gnuplot-nox)");
    char fb[4200], cr[4200], cmd[16384];
    snprintf(fb, sizeof fb, "%s.fbank.tmp", png);
    snprintf(cr, sizeof cr, "%s.crops.tmp", png);
    // (bins, frames): gnuplot's image rows are the y axis
    float *bins = malloc_check((size_t)f->n_frames * FBANK_POOL_MELS * sizeof(float));
    for (int t = 0; t < f->n_frames; t++)
        for (int m = 0; m < FBANK_POOL_MELS; m++)
            bins[(size_t)m * f->n_frames + t] = f->fbank[(size_t)t * FBANK_POOL_MELS + m];
    write_floats(fb, bins, (size_t)f->n_frames * FBANK_POOL_MELS);
    free(bins);
    int S = f->video.T, n = S < PLOT_CROPS ? S : PLOT_CROPS, rows = (n + PLOT_COLS - 1) / PLOT_COLS;
    int W = PLOT_COLS * FACE_CROP, H = rows * FACE_CROP;
    float *mosaic = calloc_check((size_t)W * H, sizeof(float));
    for (int k = 0; k < n; k++) {
        int s = (int)((long)k * S / n); // steps spread over the whole file
        const uint8_t *c = f->crops + (size_t)s * FACE_CROP * FACE_CROP;
        // gnuplot's image rows go bottom-up: the first crop row is drawn at the top
        for (int y = 0; y < FACE_CROP; y++)
            for (int x = 0; x < FACE_CROP; x++)
                mosaic[(size_t)(H - 1 - (k / PLOT_COLS * FACE_CROP + y)) * W + (k % PLOT_COLS) * FACE_CROP + x] =
                    c[y * FACE_CROP + x];
    }
    write_floats(cr, mosaic, (size_t)W * H);
    free(mosaic);
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"set terminal pngcairo noenhanced size 1000,%d; set output '%s'; "
             "set multiplot layout 2,1 title '%s: %d steps of 200 ms, a face in %d'; set autoscale fix; "
             "set title 'log-mel filterbank (128 bins, 10 ms frames)'; set xlabel 'frame'; set ylabel 'mel bin'; "
             "set palette defined (0 'black', 1 'blue', 2 'red', 3 'yellow'); "
             "plot '%s' binary array=(%d,%d) format='%%float' with image notitle; unset xlabel; unset ylabel; "
             "unset xtics; unset ytics; unset colorbox; set palette gray; set size ratio -1; "
             "set title 'face crops (64x64) of %d steps spread over the file'; "
             "plot '%s' binary array=(%d,%d) format='%%float' with image notitle\"",
             360 + 120 * rows, png, media, S, f->faces, fb, f->n_frames, FBANK_POOL_MELS, n, cr, W, H);
    int rc = system(cmd);
    remove(fb);
    remove(cr);
    if (rc != 0) avt_die("%s: gnuplot failed", png);
}

int cmd_features(int argc, char **argv) {
    const char *media = NULL, *out = NULL, *png = NULL, *xml = AV_CASCADE_DEFAULT;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--plot")) png = cli_value(argc, argv, &i);
        else if (cli_is(a, "--cascade")) xml = cli_value(argc, argv, &i);
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (a[0] == '-' || media) cli_unknown("features", a);
        else media = a;
    }
    if (!media) avt_die("features: give a media file (see avt features --help)");
    cli_set_threads(threads);
    AvtErr err;
    Cascade cascade;
    if (cascade_load(&cascade, xml, &err)) avt_die("%s", err.msg);
    AvFeatures f;
    MediaLimits lim = {0}; // the defaults
    if (av_features(&f, media, NULL, &cascade, &lim, &err)) avt_die("%s", err.msg);
    printf("%s: %.2f s, %d steps of 200 ms; audio (%d, %d), video (%d, %d); a face in %d of %d steps\n", media,
           f.seconds, f.audio.T, f.audio.T, f.audio.D, f.video.T, f.video.D, f.faces, f.video.T);
    if (out) {
        char path[4200];
        int64_t sa[2] = {f.audio.T, f.audio.D}, sv[2] = {f.video.T, f.video.D};
        snprintf(path, sizeof path, "%s.audio.npy", out);
        if (npy_write_f32(path, f.audio.data, 2, sa, &err)) avt_die("%s", err.msg);
        snprintf(path, sizeof path, "%s.video.npy", out);
        if (npy_write_f32(path, f.video.data, 2, sv, &err)) avt_die("%s", err.msg);
    }
    if (png) plot(png, &f, media);
    av_features_free(&f);
    cascade_free(&cascade);
    return 0;
}
