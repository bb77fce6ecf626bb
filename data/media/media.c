// FFmpeg decoding (media.h): one demux pass feeds an audio decoder -> swresample (16 kHz mono float) and a video
// decoder -> swscale (GRAY8, downscaled to max_side) -> a per-frame callback; media_decode stores the frames.
#include "data/media/media.h"

#include <stdlib.h>
#include <string.h>

void media_free(MediaAudio *a, MediaVideo *v) {
    if (a) {
        free(a->samples);
        *a = (MediaAudio){0};
    }
    if (v) {
        free(v->frames);
        free(v->t);
        *v = (MediaVideo){0};
    }
}

#ifdef AVT_HAVE_FFMPEG

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

int media_have_ffmpeg(void) { return 1; }

static MediaLimits limits_or_defaults(const MediaLimits *lim) {
    MediaLimits l = lim ? *lim : (MediaLimits){0};
    if (l.max_seconds <= 0) l.max_seconds = 3600;
    if (l.max_wall_seconds <= 0) l.max_wall_seconds = 120;
    if (l.max_side <= 0) l.max_side = 640;
    if (l.max_video_bytes == 0) l.max_video_bytes = (size_t)1 << 30;
    return l;
}

// An FFmpeg call's failure as one line: the file, what failed, FFmpeg's message (av_strerror), and where here.
static int av_fail_at(AvtErr *err, const char *path, const char *what, int rc, const char *file, int line) {
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(rc, msg, sizeof msg);
    return avt_err_set(err, "%s: %s: %s (%s:%d)", path, what, msg, file, line);
}
#define av_fail(err, path, what, rc) av_fail_at((err), (path), (what), (rc), __FILE__, __LINE__)

// FFmpeg polls this inside blocking reads and stream probing; nonzero aborts the call with AVERROR_EXIT, so a
// stalled or pathological file cannot hold a worker past the deadline.
static int past_deadline(void *deadline) { return avt_now() > *(const double *)deadline; }

enum { AUD, VID };
static const char *kind_name[2] = {"audio", "video"};

typedef struct {
    const char *path;
    MediaLimits lim;
    double deadline;
    AvtErr *err;
    AVFormatContext *fmt;
    AVCodecContext *dec[2]; // NULL when that stream is not wanted
    AVStream *st[2];
    AVFrame *frame;
    AVPacket *pkt;
    int skipped[2];
    // audio
    MediaAudio *a;
    SwrContext *swr;
    AVChannelLayout swr_layout; // the input swr is configured for, with swr_fmt and swr_rate
    int swr_fmt, swr_rate;
    size_t cap;         // floats allocated in a->samples
    size_t max_samples; // lim.max_seconds of output
    // video
    MediaVideo *v; // size, fps and skip count (the frames themselves go to fn)
    MediaFrameFn fn;
    void *ctx;
    struct SwsContext *sws;
    uint8_t *scaled; // (h, stride): swscale's destination, rows padded for its SIMD stores
    uint8_t *gray;   // (h, w): what fn sees
    int lut_fmt;     // the source pixel format lut was made for (AV_PIX_FMT_NONE: none)
    uint8_t lut[256]; // gray of each luma value, for same-size 8-bit YUV sources (luma_lut)
    int stride;
    double last_t;
    size_t n_frames;
    int stop; // fn asked to stop early
} Dec;

static int timed_out(Dec *d) {
    return avt_err_set(d->err, "%s: decoding took longer than %.0f s (max_wall_seconds): stalled or pathological file",
                       d->path, d->lim.max_wall_seconds);
}

static int open_stream(Dec *d, int k) {
    const AVCodec *codec = NULL;
    int idx = av_find_best_stream(d->fmt, k == AUD ? AVMEDIA_TYPE_AUDIO : AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (idx == AVERROR_STREAM_NOT_FOUND) return avt_err_set(d->err, "%s: no %s stream", d->path, kind_name[k]);
    if (idx == AVERROR_DECODER_NOT_FOUND)
        return avt_err_set(d->err, "%s: no decoder for the %s stream's codec in this FFmpeg", d->path, kind_name[k]);
    if (idx < 0) return av_fail(d->err, d->path, "cannot select a stream", idx);
    AVStream *st = d->fmt->streams[idx];
    const AVCodecParameters *par = st->codecpar;
    if (k == VID && (par->width > MEDIA_MAX_DIM || par->height > MEDIA_MAX_DIM))
        return avt_err_set(d->err, "%s: video frame size %dx%d exceeds %d", d->path, par->width, par->height,
                           MEDIA_MAX_DIM);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c) avt_fatal("avcodec_alloc_context3: out of memory");
    d->dec[k] = c;
    d->st[k] = st;
    int rc = avcodec_parameters_to_context(c, par);
    if (rc < 0) return av_fail(d->err, d->path, "cannot configure the decoder", rc);
    c->pkt_timebase = st->time_base;
    c->thread_count = 1; // deterministic output; callers parallelise across files
    rc = avcodec_open2(c, codec, NULL);
    if (rc < 0) return av_fail(d->err, d->path, "cannot open the decoder", rc);
    st->discard = AVDISCARD_DEFAULT;
    return 0;
}

// Runs n_in input samples (NULL, 0: drain) through swr, appending to a->samples.
static int audio_convert(Dec *d, const uint8_t **in, int n_in) {
    int out_max = swr_get_out_samples(d->swr, n_in);
    if (out_max < 0) return av_fail(d->err, d->path, "resampler", out_max);
    MediaAudio *a = d->a;
    if (a->n + (size_t)out_max > d->cap) {
        size_t cap = d->cap ? 2 * d->cap : MEDIA_RATE;
        while (cap < a->n + (size_t)out_max) cap *= 2;
        float *p = realloc(a->samples, cap * sizeof *p);
        if (!p) avt_fatal("out of memory for %zu audio samples", cap);
        a->samples = p;
        d->cap = cap;
    }
    uint8_t *out = (uint8_t *)(a->samples + a->n);
    int got = swr_convert(d->swr, &out, out_max, in, n_in);
    if (got < 0) return av_fail(d->err, d->path, "resampling failed", got);
    a->n += (size_t)got;
    if (a->n > d->max_samples)
        return avt_err_set(d->err, "%s: audio is longer than %.0f s (max_seconds)", d->path, d->lim.max_seconds);
    return 0;
}

static int on_audio(Dec *d) {
    const AVFrame *f = d->frame;
    int ch = f->ch_layout.nb_channels;
    if (f->nb_samples <= 0 || ch <= 0 || f->sample_rate <= 0) {
        d->skipped[AUD]++;
        return 0;
    }
    // swresample needs a layout with a known order; an unspecified one gets the default for its channel count.
    AVChannelLayout in = {0}; // zeroed: av_channel_layout_copy uninits (frees) its destination first
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) av_channel_layout_default(&in, ch);
    else if (av_channel_layout_copy(&in, &f->ch_layout) < 0) avt_fatal("av_channel_layout_copy: out of memory");
    if (!d->swr || f->format != d->swr_fmt || f->sample_rate != d->swr_rate ||
        av_channel_layout_compare(&in, &d->swr_layout) != 0) {
        // The format changed mid-stream (or this is the first frame): drain the old resampler, build a new one.
        int rc = d->swr ? audio_convert(d, NULL, 0) : 0;
        swr_free(&d->swr);
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        if (rc == 0) {
            rc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, MEDIA_RATE, &in, f->format, f->sample_rate,
                                     0, NULL);
            if (rc >= 0) rc = swr_init(d->swr);
            if (rc < 0) rc = av_fail(d->err, d->path, "cannot set up the resampler", rc);
        }
        av_channel_layout_uninit(&d->swr_layout);
        d->swr_layout = in;
        d->swr_fmt = f->format;
        d->swr_rate = f->sample_rate;
        if (d->a->src_rate == 0) {
            d->a->src_rate = f->sample_rate;
            d->a->src_channels = ch;
        }
        if (rc < 0) return rc;
    } else {
        av_channel_layout_uninit(&in);
    }
    return audio_convert(d, (const uint8_t **)f->extended_data, f->nb_samples);
}

// The first frame fixes the output size: the source size, downscaled (aspect kept) to fit max_side.
static void video_size(Dec *d, int sw, int sh) {
    MediaVideo *v = d->v;
    v->src_w = sw;
    v->src_h = sh;
    int side = sw > sh ? sw : sh;
    if (side > d->lim.max_side) {
        double s = (double)d->lim.max_side / side;
        v->w = (int)(sw * s + 0.5);
        v->h = (int)(sh * s + 0.5);
        if (v->w < 1) v->w = 1;
        if (v->h < 1) v->h = 1;
    } else {
        v->w = sw;
        v->h = sh;
    }
    d->stride = (v->w + 63) & ~63;
    d->scaled = malloc_check((size_t)d->stride * (size_t)(v->h + 1));
    d->gray = malloc_check((size_t)v->w * (size_t)v->h);
}

static int deliver(Dec *d, double t);

// Without scaling, swscale's gray from 8-bit planar YUV is a function of luma alone (full-range expansion of the
// Y plane), so a table of it, made by swscale itself from a probe image holding every luma value, replaces the
// scaler on each frame (~5x cheaper; tests/data/media/test_media.c checks every pixel against the ffmpeg program's gray).
// 0 with d->lut ready for fmt, -1 where fmt is not such a format or the probe says the table does not hold.
static int luma_lut(Dec *d, int fmt) {
    if (d->lut_fmt == fmt) return 0;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fmt);
    if (!desc || (desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL |
                                 AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_ALPHA | AV_PIX_FMT_FLAG_BE)) ||
        desc->comp[0].plane != 0 || desc->comp[0].step != 1 || desc->comp[0].depth != 8 || desc->comp[0].shift ||
        desc->comp[0].offset)
        return -1;
    enum { W = 256, H = 4 }; // every luma value along a row; chroma neutral
    uint8_t *src[4], *dst[4];
    int src_ls[4], dst_ls[4], ok = 0;
    int src_bytes = av_image_alloc(src, src_ls, W, H, fmt, 64);
    if (src_bytes < 0) return -1;
    if (av_image_alloc(dst, dst_ls, W, H, AV_PIX_FMT_GRAY8, 64) < 0) {
        av_freep(&src[0]);
        return -1;
    }
    memset(src[0], 128, (size_t)src_bytes); // the planes lie in one buffer
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) src[0][y * src_ls[0] + x] = (uint8_t)x;
    struct SwsContext *sws = sws_getContext(W, H, fmt, W, H, AV_PIX_FMT_GRAY8, SWS_BILINEAR | SWS_ACCURATE_RND, NULL,
                                            NULL, NULL);
    if (sws && sws_scale(sws, (const uint8_t *const *)src, src_ls, 0, H, dst, dst_ls) == H) {
        ok = 1;
        for (int y = 1; y < H; y++) ok &= memcmp(dst[0], dst[0] + y * dst_ls[0], W) == 0;
        if (ok) memcpy(d->lut, dst[0], W);
    }
    sws_freeContext(sws);
    av_freep(&src[0]);
    av_freep(&dst[0]);
    d->lut_fmt = ok ? fmt : AV_PIX_FMT_NONE;
    return ok ? 0 : -1;
}

static int on_video(Dec *d) {
    const AVFrame *f = d->frame;
    MediaVideo *v = d->v;
    if (f->width > MEDIA_MAX_DIM || f->height > MEDIA_MAX_DIM)
        return avt_err_set(d->err, "%s: video frame size %dx%d exceeds %d", d->path, f->width, f->height,
                           MEDIA_MAX_DIM);
    if (f->width <= 0 || f->height <= 0) {
        d->skipped[VID]++;
        return 0;
    }
    if (!d->gray) video_size(d, f->width, f->height);
    // A frame without a timestamp follows the previous one by a frame period.
    double t;
    if (f->best_effort_timestamp != AV_NOPTS_VALUE) t = (double)f->best_effort_timestamp * av_q2d(d->st[VID]->time_base);
    else t = d->n_frames ? d->last_t + 1.0 / (v->fps > 0 ? v->fps : 25.0) : 0.0;
    if (t > d->lim.max_seconds)
        return avt_err_set(d->err, "%s: video runs past %.0f s (max_seconds)", d->path, d->lim.max_seconds);
    if (f->width == v->w && f->height == v->h && luma_lut(d, f->format) == 0) {
        for (size_t y = 0; y < (size_t)v->h; y++) {
            const uint8_t *src = f->data[0] + y * (size_t)f->linesize[0];
            uint8_t *dst = d->gray + y * (size_t)v->w;
            for (size_t x = 0; x < (size_t)v->w; x++) dst[x] = d->lut[src[x]];
        }
        return deliver(d, t);
    }
    // sws_getCachedContext reuses the context unless the source size or pixel format changed mid-stream.
    d->sws = sws_getCachedContext(d->sws, f->width, f->height, f->format, v->w, v->h, AV_PIX_FMT_GRAY8,
                                  SWS_BILINEAR | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!d->sws) {
        const char *name = av_get_pix_fmt_name(f->format);
        return avt_err_set(d->err, "%s: cannot convert video pixel format %s to gray", d->path, name ? name : "?");
    }
    uint8_t *dst[4] = {d->scaled, NULL, NULL, NULL};
    int dst_stride[4] = {d->stride, 0, 0, 0};
    sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_stride);
    for (size_t y = 0; y < (size_t)v->h; y++)
        memcpy(d->gray + y * (size_t)v->w, d->scaled + y * (size_t)d->stride, (size_t)v->w);
    return deliver(d, t);
}

// Hands the gray frame at time t to the callback.
static int deliver(Dec *d, double t) {
    MediaVideo *v = d->v;
    d->last_t = t;
    d->n_frames++;
    int rc = d->fn(d->ctx, d->gray, v->w, v->h, t);
    if (rc < 0) return avt_err_set(d->err, "%s: the frame callback failed at t = %.3f s", d->path, t);
    d->stop = rc > 0;
    return 0;
}

// Feeds one packet (NULL: end of stream) to decoder k and handles every frame it gives back. A packet the decoder
// rejects is counted and skipped; the stream fails later only if nothing of it decoded.
static int decode_packet(Dec *d, int k, const AVPacket *pkt) {
    int rc = avcodec_send_packet(d->dec[k], pkt);
    if (rc < 0 && rc != AVERROR_EOF) {
        d->skipped[k]++;
        return 0;
    }
    // A decoder that keeps failing on one packet's frames is given up on after a few errors in a row.
    for (int errors = 0; errors < 8 && !d->stop;) {
        rc = avcodec_receive_frame(d->dec[k], d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) {
            d->skipped[k]++;
            errors++;
            continue;
        }
        errors = 0;
        rc = k == AUD ? on_audio(d) : on_video(d);
        av_frame_unref(d->frame);
        if (rc < 0) return rc;
        if (past_deadline(&d->deadline)) return timed_out(d);
    }
    return 0;
}

static int run(Dec *d) {
    // FFmpeg's default level prints a line per damaged packet; the per-file error line says what matters. A
    // caller that chose a level keeps it.
    if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_FATAL);
    d->fmt = avformat_alloc_context();
    if (!d->fmt) avt_fatal("avformat_alloc_context: out of memory");
    d->fmt->interrupt_callback = (AVIOInterruptCB){past_deadline, &d->deadline};
    int rc = avformat_open_input(&d->fmt, d->path, NULL, NULL); // frees fmt on failure
    if (rc == AVERROR_EXIT) return timed_out(d);
    if (rc < 0) return av_fail(d->err, d->path, "cannot open as media", rc);
    rc = avformat_find_stream_info(d->fmt, NULL);
    if (rc == AVERROR_EXIT) return timed_out(d);
    if (rc < 0) return av_fail(d->err, d->path, "cannot read the stream info", rc);
    if (d->fmt->duration != AV_NOPTS_VALUE && (double)d->fmt->duration / AV_TIME_BASE > d->lim.max_seconds)
        return avt_err_set(d->err, "%s: duration %.0f s exceeds %.0f s (max_seconds)", d->path,
                           (double)d->fmt->duration / AV_TIME_BASE, d->lim.max_seconds);
    for (unsigned i = 0; i < d->fmt->nb_streams; i++) d->fmt->streams[i]->discard = AVDISCARD_ALL;
    if (d->a && open_stream(d, AUD) < 0) return -1;
    if (d->fn && open_stream(d, VID) < 0) return -1;
    if (d->fn) {
        AVRational r = av_guess_frame_rate(d->fmt, d->st[VID], NULL);
        d->v->fps = r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0;
    }
    d->frame = av_frame_alloc();
    d->pkt = av_packet_alloc();
    if (!d->frame || !d->pkt) avt_fatal("av_frame_alloc/av_packet_alloc: out of memory");
    while (!d->stop) {
        if (past_deadline(&d->deadline)) return timed_out(d);
        rc = av_read_frame(d->fmt, d->pkt);
        if (rc == AVERROR_EXIT) return timed_out(d);
        if (rc < 0) break; // end of file, or a read error at a damaged tail: keep what decoded before it
        int k = d->dec[AUD] && d->pkt->stream_index == d->st[AUD]->index   ? AUD
                : d->dec[VID] && d->pkt->stream_index == d->st[VID]->index ? VID
                                                                            : -1;
        rc = k >= 0 ? decode_packet(d, k, d->pkt) : 0;
        av_packet_unref(d->pkt);
        if (rc < 0) return rc;
    }
    for (int k = 0; k < 2 && !d->stop; k++)
        if (d->dec[k] && decode_packet(d, k, NULL) < 0) return -1;
    if (d->a) {
        if (d->swr && audio_convert(d, NULL, 0) < 0) return -1;
        if (d->a->n == 0)
            return avt_err_set(d->err, "%s: no decodable audio (zero duration; %d broken packets skipped)", d->path,
                               d->skipped[AUD]);
        // Resampling filters overshoot full-scale input slightly, and damaged packets can decode to NaN.
        for (size_t i = 0; i < d->a->n; i++) {
            float x = d->a->samples[i];
            d->a->samples[i] = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x == x ? x : 0.0f;
        }
        d->a->rate = MEDIA_RATE;
        d->a->skipped = d->skipped[AUD];
    }
    if (d->fn) {
        if (d->n_frames == 0)
            return avt_err_set(d->err, "%s: no decodable video frames (zero duration; %d broken packets skipped)",
                               d->path, d->skipped[VID]);
        d->v->skipped = d->skipped[VID];
    }
    return 0;
}

// One pass over path: audio into a (if not NULL), video frames to fn (if not NULL) with their size etc. in v.
static int decode(const char *path, const MediaLimits *lim, MediaAudio *a, MediaVideo *v, MediaFrameFn fn, void *ctx,
                  AvtErr *err) {
    Dec d = {.path = path, .lim = limits_or_defaults(lim), .err = err, .a = a, .v = v, .fn = fn, .ctx = ctx,
             .lut_fmt = AV_PIX_FMT_NONE};
    d.deadline = avt_now() + d.lim.max_wall_seconds;
    d.max_samples = (size_t)(d.lim.max_seconds * MEDIA_RATE) + MEDIA_RATE; // + 1 s: resampler and frame slack
    int rc = run(&d);
    for (int k = 0; k < 2; k++) avcodec_free_context(&d.dec[k]);
    avformat_close_input(&d.fmt);
    av_frame_free(&d.frame);
    av_packet_free(&d.pkt);
    swr_free(&d.swr);
    av_channel_layout_uninit(&d.swr_layout);
    sws_freeContext(d.sws);
    free(d.scaled);
    free(d.gray);
    if (rc < 0) media_free(a, NULL);
    return rc;
}

int media_video_foreach(const char *path, const MediaLimits *lim, MediaFrameFn fn, void *ctx, AvtErr *err) {
    if (!fn) return avt_err_set(err, "%s: media_video_foreach needs a frame callback", path);
    MediaVideo info = {0};
    return decode(path, lim, NULL, &info, fn, ctx, err);
}

typedef struct {
    MediaVideo *v;
    size_t cap;       // frames allocated
    size_t max_bytes; // lim.max_video_bytes
    int too_big;      // the video did not fit
} Collect;

static int collect_frame(void *ctx, const uint8_t *gray, int w, int h, double t) {
    Collect *c = ctx;
    MediaVideo *v = c->v;
    size_t fb = (size_t)w * (size_t)h;
    if (v->n_frames == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64, max = c->max_bytes / fb;
        if (cap > max) cap = max;
        if (cap <= v->n_frames) {
            c->too_big = 1;
            return -1;
        }
        uint8_t *fr = realloc(v->frames, cap * fb);
        double *tt = realloc(v->t, cap * sizeof *tt);
        if (!fr || !tt) avt_fatal("out of memory for %zu video frames", cap);
        v->frames = fr;
        v->t = tt;
        c->cap = cap;
    }
    memcpy(v->frames + v->n_frames * fb, gray, fb);
    v->t[v->n_frames++] = t;
    return 0;
}

int media_decode(MediaAudio *a, MediaVideo *v, const char *path, const MediaLimits *lim, AvtErr *err) {
    if (a) *a = (MediaAudio){0};
    if (v) *v = (MediaVideo){0};
    if (!a && !v) return avt_err_set(err, "%s: media_decode asked for neither audio nor video", path);
    Collect c = {.v = v, .max_bytes = limits_or_defaults(lim).max_video_bytes};
    int rc = decode(path, lim, a, v, v ? collect_frame : NULL, &c, err);
    if (rc < 0) {
        if (c.too_big)
            avt_err_set(err, "%s: video too long to hold in memory (%zu frames of %dx%d fill max_video_bytes = %zu); "
                        "stream it with media_video_foreach", path, c.cap, v->w, v->h, c.max_bytes);
        media_free(NULL, v);
    }
    return rc;
}
#else
static int without_ffmpeg(const char *path, AvtErr *err) {
    return avt_err_set(err, "%s: this avt was built without FFmpeg (apt-get install libavformat-dev libavcodec-dev "
                       "libswresample-dev libswscale-dev libavutil-dev pkg-config, then rebuild)", path);
}

int media_have_ffmpeg(void) { return 0; }

int media_decode(MediaAudio *a, MediaVideo *v, const char *path, const MediaLimits *lim, AvtErr *err) {
    (void)lim;
    if (a) *a = (MediaAudio){0};
    if (v) *v = (MediaVideo){0};
    return without_ffmpeg(path, err);
}

int media_video_foreach(const char *path, const MediaLimits *lim, MediaFrameFn fn, void *ctx, AvtErr *err) {
    (void)lim, (void)fn, (void)ctx;
    return without_ffmpeg(path, err);
}
#endif
