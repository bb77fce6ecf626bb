// Multi-scale detector of OpenCV cascades (see cascade.h); the XML reader is cascade_xml.c.
#include "data/media/cascade.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/cpu.h"
#ifdef AVT_X86
#include <immintrin.h>
#endif

CascadeParams cascade_default_params(void) { return (CascadeParams){1.1, 3, 0, 0, 0}; }

// cv::resize INTER_LINEAR_EXACT on 8-bit images, bit for bit: the pyramid detectMultiScale builds in OpenCV 4
// (INTER_LINEAR's 11-bit weights move a few raw windows per image). Per axis, destination i samples source
// f = s (i + 0.5) - 0.5 with s = 1 / (n_dst / n_src) in double; taps floor(f) and floor(f) + 1 with 8-bit weights
// 256 - c and c = round_half_even(256 (f - floor(f))); destinations with f < 0 take the first source pixel, those
// whose taps pass the end the last. The horizontal pass keeps 8 fraction bits (16-bit values), the vertical pass
// multiplies by 8-bit weights and rounds the 16 fraction bits away; replicated rows just round their 8.
typedef struct {
    int *ofs, *c;   // (n_dst,) first tap and the second tap's weight (of 256)
    int lo, hi;     // [lo, hi): interpolated; below lo the first source pixel, from hi the last
} Taps;

static Taps axis_taps(int ns, int nd) {
    Taps t = {calloc_check((size_t)nd, sizeof(int)), calloc_check((size_t)nd, sizeof(int)), 0, nd};
    const double scale = 1.0 / ((double)nd / (double)ns);
    for (int i = 0; i < nd; i++) {
        const double f = scale * ((double)i + 0.5) - 0.5, fl = floor(f);
        if (fl < 0 || ns < 2) {
            t.lo = i + 1;
        } else if (fl < ns - 1) {
            t.ofs[i] = (int)fl;
            t.c[i] = (int)nearbyint((f - fl) * 256.0);
        } else {
            t.ofs[i] = ns - 1;
            if (i < t.hi) t.hi = i;
        }
    }
    return t;
}

// One source row through the horizontal pass: (dw,) values with 8 fraction bits.
static void hpass(const uint8_t *row, const Taps *x, int sw, int dw, uint16_t *out) {
    for (int i = 0; i < dw; i++) {
        if (i < x->lo) out[i] = (uint16_t)(row[0] << 8);
        else if (i >= x->hi) out[i] = (uint16_t)(row[sw - 1] << 8);
        else out[i] = (uint16_t)((256 - x->c[i]) * row[x->ofs[i]] + x->c[i] * row[x->ofs[i] + 1]);
    }
}

static void resize_linear_exact(const uint8_t *src /* (sh, sw) */, int sw, int sh, uint8_t *dst /* (dh, dw) */,
                                int dw, int dh) {
    Taps x = axis_taps(sw, dw), y = axis_taps(sh, dh);
    uint16_t *r0 = malloc_check((size_t)dw * sizeof(uint16_t)), *r1 = malloc_check((size_t)dw * sizeof(uint16_t));
    int have0 = -1, have1 = -1; // source rows now in r0, r1
    for (int j = 0; j < dh; j++) {
        uint8_t *d = dst + (size_t)j * (size_t)dw;
        if (j < y.lo || j >= y.hi) { // a replicated edge row
            hpass(src + (size_t)(j < y.lo ? 0 : sh - 1) * (size_t)sw, &x, sw, dw, r0);
            have0 = -1;
            for (int i = 0; i < dw; i++) d[i] = (uint8_t)((r0[i] + 128) >> 8);
            continue;
        }
        const int a = y.ofs[j], c = y.c[j];
        if (have0 != a) {
            if (have1 == a) { // slide down one row
                uint16_t *tmp = r0;
                r0 = r1, r1 = tmp, have0 = a, have1 = -1;
            } else {
                hpass(src + (size_t)a * (size_t)sw, &x, sw, dw, r0);
                have0 = a;
            }
        }
        if (have1 != a + 1) {
            hpass(src + (size_t)(a + 1) * (size_t)sw, &x, sw, dw, r1);
            have1 = a + 1;
        }
        for (int i = 0; i < dw; i++) {
            const uint32_t v = ((uint32_t)r0[i] * (uint32_t)(256 - c) + (uint32_t)r1[i] * (uint32_t)c + 32768u) >> 16;
            d[i] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    free(x.ofs); free(x.c); free(y.ofs); free(y.c); free(r0); free(r1);
}

typedef struct {
    int *r; // (n, 4) x y w h
    int n, cap;
} RectList;

static void rects_push(RectList *l, int x, int y, int w, int h) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        int *nr = realloc(l->r, (size_t)l->cap * 4 * sizeof(int));
        if (!nr) { fprintf(stderr, "out of memory\n"); exit(EXIT_FAILURE); }
        l->r = nr;
    }
    int *q = l->r + (size_t)l->n++ * 4;
    q[0] = x, q[1] = y, q[2] = w, q[3] = h;
}

// One level's integral images and per-feature corner offsets: what a window's evaluation reads.
typedef struct {
    const Cascade *c;
    size_t iw;              // integral image row length
    const int32_t *sum;     // (ih, iw) sums
    const uint32_t *sq;     // (ih, iw) square sums (Haar only)
    const ptrdiff_t *ofs;   // (n_feat, npt) corner offsets from the window's top-left integral point
    size_t npt;             // 16 (LBP: the 4x4 cell corners) or 12 (Haar: 3 rectangles x 4 corners)
    ptrdiff_t nofs[4];      // Haar: corners of the variance window (the window shrunk by 1 px)
    double area;            // Haar: its area
} Level;

// The stage a window reaches: n_stages if accepted, s if stage s rejects it; -1 for a Haar window skipped as flat.
static int window_reach(const Level *L, size_t x, size_t y) {
    const Cascade *c = L->c;
    const int32_t *p = L->sum + y * L->iw + x;
    int haar = c->type == CASCADE_HAAR;
    float vnf = 1.f;
    if (haar) { // variance normalisation over the window shrunk by 1 px; flat windows are skipped
        const uint32_t *q = L->sq + y * L->iw + x;
        const ptrdiff_t *n = L->nofs;
        int32_t vs = p[n[0]] - p[n[1]] - p[n[2]] + p[n[3]];
        uint32_t vq = q[n[0]] - q[n[1]] - q[n[2]] + q[n[3]];
        double nfac = L->area * vq - (double)vs * vs;
        if (nfac <= 0.) return -1;
        vnf = (float)(1. / sqrt(nfac));
        if (!(L->area * vnf < 1e-1)) return -1;
    }
    int stage = 0;
    for (; stage < c->n_stages; stage++) {
        float acc = 0.f;
        for (int wi = c->stage_first[stage]; wi < c->stage_first[stage + 1]; wi++) {
            const ptrdiff_t *o = L->ofs + (size_t)c->weak_feat[wi] * L->npt;
            int left;
            if (!haar) {
                int32_t q[16]; // the 4x4 grid of integral corners
                for (int k = 0; k < 16; k++) q[k] = p[o[k]];
#define CELL(i, j) (q[(i) * 4 + (j)] - q[(i) * 4 + (j) + 1] - q[(i) * 4 + (j) + 4] + q[(i) * 4 + (j) + 5])
                int32_t cv = CELL(1, 1);
                int code = (CELL(0, 0) >= cv) << 7 | (CELL(0, 1) >= cv) << 6 | (CELL(0, 2) >= cv) << 5 |
                           (CELL(1, 2) >= cv) << 4 | (CELL(2, 2) >= cv) << 3 | (CELL(2, 1) >= cv) << 2 |
                           (CELL(2, 0) >= cv) << 1 | (CELL(1, 0) >= cv);
#undef CELL
                left = (c->subset[(size_t)wi * 8 + (size_t)(code >> 5)] & (int32_t)(1u << (code & 31))) != 0;
            } else {
                const float *rw = c->rect_w + (size_t)c->weak_feat[wi] * 3;
                float fv = 0.f;
                for (int k = 0; k < 3; k++)
                    if (rw[k] != 0.f)
                        fv += rw[k] * (float)(p[o[k * 4]] - p[o[k * 4 + 1]] - p[o[k * 4 + 2]] + p[o[k * 4 + 3]]);
                left = fv * vnf < c->weak_thr[wi];
            }
            acc += c->leaf[(size_t)wi * 2 + (left ? 0 : 1)];
        }
        if (acc < c->stage_thr[stage]) break;
    }
    return stage;
}

#ifdef AVT_X86
// p[0], p[step], ..., p[7 step]: contiguous at step 1, the even elements of 16 at step 2 (gathers are slow here)
static inline AVT_TARGET_AVX2 __m256i lanes8(const int32_t *p, int step, __m256i lane) {
    if (step == 1) return _mm256_loadu_si256((const __m256i *)p);
    if (step == 2) {
        const __m256 a = _mm256_loadu_ps((const float *)p), b = _mm256_loadu_ps((const float *)(p + 8));
        const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); // a0 a2 b0 b2 | a4 a6 b4 b6
        return _mm256_castpd_si256(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    return _mm256_i32gather_epi32((const int *)p, lane, 4);
}

// window_reach of eight LBP windows at once, at x, x + step, ..., x + 7 step of row y: the same integer codes and
// the same float sums in the same order per lane, so the same stages. Lanes past the row read padding (see
// scan_level) and are ignored by the caller.
static AVT_TARGET_AVX2 void lbp_reach8(const Level *L, size_t x, size_t y, int step, int *reach /* (8,) */) {
    const Cascade *c = L->c;
    const int32_t *p = L->sum + y * L->iw + x;
    const __m256i lane = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step));
    const __m256i one = _mm256_set1_epi32(1), b31 = _mm256_set1_epi32(31);
    __m256i alive = _mm256_set1_epi32(-1), at = _mm256_set1_epi32(c->n_stages);
    for (int stage = 0; stage < c->n_stages; stage++) {
        __m256 acc = _mm256_setzero_ps();
        for (int wi = c->stage_first[stage]; wi < c->stage_first[stage + 1]; wi++) {
            const ptrdiff_t *o = L->ofs + (size_t)c->weak_feat[wi] * L->npt;
            __m256i q[16];
            for (int k = 0; k < 16; k++) q[k] = lanes8(p + o[k], step, lane);
#define CELL(i, j) _mm256_add_epi32(_mm256_sub_epi32(_mm256_sub_epi32(q[(i) * 4 + (j)], q[(i) * 4 + (j) + 1]), \
                                                     q[(i) * 4 + (j) + 4]), q[(i) * 4 + (j) + 5])
            const __m256i cv = CELL(1, 1);
            // bit b set when the cell's sum >= the centre's, i.e. not (centre > cell)
            const __m256i cells[8] = {CELL(1, 0), CELL(2, 0), CELL(2, 1), CELL(2, 2),
                                      CELL(1, 2), CELL(0, 2), CELL(0, 1), CELL(0, 0)};
#undef CELL
            __m256i code = _mm256_setzero_si256();
            for (int b = 0; b < 8; b++)
                code = _mm256_or_si256(code, _mm256_andnot_si256(_mm256_cmpgt_epi32(cv, cells[b]),
                                                                 _mm256_set1_epi32(1 << b)));
            const __m256i words = _mm256_permutevar8x32_epi32(
                _mm256_loadu_si256((const __m256i *)(c->subset + (size_t)wi * 8)), _mm256_srli_epi32(code, 5));
            const __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(words, _mm256_and_si256(code, b31)), one);
            const __m256 left = _mm256_castsi256_ps(_mm256_cmpeq_epi32(bit, one));
            acc = _mm256_add_ps(acc, _mm256_blendv_ps(_mm256_set1_ps(c->leaf[(size_t)wi * 2 + 1]),
                                                      _mm256_set1_ps(c->leaf[(size_t)wi * 2]), left));
        }
        // rejected: acc < threshold (the scalar test); lanes rejected here stop at this stage
        const __m256i rej = _mm256_castps_si256(_mm256_cmp_ps(acc, _mm256_set1_ps(c->stage_thr[stage]), _CMP_LT_OQ));
        const __m256i now = _mm256_and_si256(alive, rej);
        at = _mm256_blendv_epi8(at, _mm256_set1_epi32(stage), now);
        alive = _mm256_andnot_si256(rej, alive);
        if (_mm256_testz_si256(alive, alive)) break;
    }
    _mm256_storeu_si256((__m256i *)reach, at);
}
#endif

// Scans one pyramid level (scale factor s; step 0 = OpenCV's rule) and appends the accepted windows, in image
// coordinates.
static void scan_level(const Cascade *c, const uint8_t *gray, int w, int h, float s, int step, RectList *out) {
    int sw = (int)lrintf((float)w / s), sh = (int)lrintf((float)h / s);
    size_t iw = (size_t)sw + 1, ih = (size_t)sh + 1;
    if (step <= 0) step = s > 2.f ? 1 : 2;
    uint8_t *img = malloc_check((size_t)sw * (size_t)sh);
    resize_linear_exact(gray, w, h, img, sw, sh);
    int haar = c->type == CASCADE_HAAR;
    // integral images (ih, iw): sum, and for Haar the square sum, which wraps mod 2^32 like OpenCV's int32 one;
    // the sums are padded by 8 steps so that lbp_reach8's lanes past the last row's end stay in the buffer
    int32_t *sum = calloc_check(iw * ih + 8 * (size_t)step + 8, sizeof(int32_t));
    uint32_t *sq = haar ? calloc_check(iw * ih, sizeof(uint32_t)) : NULL;
    for (size_t y = 1; y < ih; y++) {
        int32_t row = 0;
        uint32_t rowq = 0;
        for (size_t x = 1; x < iw; x++) {
            int32_t v = img[(y - 1) * (size_t)sw + x - 1];
            row += v;
            sum[y * iw + x] = sum[(y - 1) * iw + x] + row;
            if (haar) {
                rowq += (uint32_t)(v * v);
                sq[y * iw + x] = sq[(y - 1) * iw + x] + rowq;
            }
        }
    }
    free(img);

    // per feature, offsets of the integral points relative to the window's top-left corner
    size_t nf = (size_t)c->n_feat, npt = haar ? 12 : 16;
    ptrdiff_t *ofs = malloc_check(nf * npt * sizeof(ptrdiff_t)); // (n_feat, npt)
    for (size_t f = 0; f < nf; f++) {
        ptrdiff_t *o = ofs + f * npt;
        if (!haar) { // 4x4 grid of corners of the 3x3 cells
            const int *r = c->rect + f * 4;
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    o[i * 4 + j] = (ptrdiff_t)(r[1] + i * r[3]) * (ptrdiff_t)iw + r[0] + j * r[2];
        } else {
            for (int k = 0; k < 3; k++) {
                const int *r = c->rect + (f * 3 + (size_t)k) * 4;
                o[k * 4 + 0] = (ptrdiff_t)r[1] * (ptrdiff_t)iw + r[0];
                o[k * 4 + 1] = (ptrdiff_t)r[1] * (ptrdiff_t)iw + r[0] + r[2];
                o[k * 4 + 2] = (ptrdiff_t)(r[1] + r[3]) * (ptrdiff_t)iw + r[0];
                o[k * 4 + 3] = (ptrdiff_t)(r[1] + r[3]) * (ptrdiff_t)iw + r[0] + r[2];
            }
        }
    }
    Level L = {c, iw, sum, sq, ofs, npt,
               {(ptrdiff_t)iw + 1, (ptrdiff_t)iw + c->win_w - 1, (ptrdiff_t)(c->win_h - 1) * (ptrdiff_t)iw + 1,
                (ptrdiff_t)(c->win_h - 1) * (ptrdiff_t)iw + c->win_w - 1},
               (double)(c->win_w - 2) * (c->win_h - 2)};

    int ww = (int)lrintf((float)c->win_w * s), wh = (int)lrintf((float)c->win_h * s);
    int ny = (int)ih - c->win_h, nx = (int)iw - c->win_w;
    int npos = nx > 0 ? (nx + step - 1) / step : 0; // window positions per row: x = i step
    int *reach = malloc_check(((size_t)npos + 8) * sizeof(int)); // (npos + 8,)
#ifdef AVT_X86
    const int vec = !haar && avt_cpu_avx2(); // the CPU's choice, or AVT_CPU=generic (base/cpu.h)
#else
    const int vec = 0;
#endif
    for (int y = 0; y < ny; y += step) {
#ifdef AVT_X86
        // every position of the row, eight at a time; the walk below then visits them as OpenCV does
        for (int i = 0; vec && i < npos; i += 8) lbp_reach8(&L, (size_t)i * (size_t)step, (size_t)y, step, reach + i);
#endif
        for (int i = 0; i < npos; i++) {
            int st = vec ? reach[i] : window_reach(&L, (size_t)i * (size_t)step, (size_t)y);
            if (st == c->n_stages)
                rects_push(out, (int)lrintf((float)(i * step) * s), (int)lrintf((float)y * s), ww, wh);
            else if (st == 0)
                i++; // OpenCV skips the next position after a stage-0 rejection
        }
    }
    free(reach);
    free(ofs);
    free(sum);
    free(sq);
}

static int find_root(int *parent, int i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static int similar(const int *a, const int *b, double eps) {
    double delta = eps * ((a[2] < b[2] ? a[2] : b[2]) + (a[3] < b[3] ? a[3] : b[3])) * 0.5;
    return abs(a[0] - b[0]) <= delta && abs(a[1] - b[1]) <= delta && abs(a[0] + a[2] - b[0] - b[2]) <= delta &&
           abs(a[1] + a[3] - b[1] - b[3]) <= delta;
}

// cv::groupRectangles: clusters of similar rectangles (labels by first member), averaged; clusters with
// <= min_nb members dropped, and so are small clusters inside a larger one with more members.
static int group_rects(const RectList *l, int min_nb, FaceBox *boxes, int max_boxes) {
    const double eps = 0.2;
    int n = l->n;
    if (min_nb <= 0) { // OpenCV returns the raw windows ungrouped
        for (int i = 0; i < n && i < max_boxes; i++) {
            const int *r = l->r + (size_t)i * 4;
            boxes[i] = (FaceBox){r[0], r[1], r[2], r[3], 1};
        }
        return n;
    }
    if (n == 0) return 0;
    int *parent = malloc_check((size_t)n * sizeof(int)), *label = malloc_check((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) parent[i] = i;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (similar(l->r + (size_t)i * 4, l->r + (size_t)j * 4, eps)) {
                int a = find_root(parent, i), b = find_root(parent, j);
                if (a != b) parent[b] = a;
            }
    int ncls = 0;
    int *cls_of_root = malloc_check((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) cls_of_root[i] = -1;
    for (int i = 0; i < n; i++) {
        int r = find_root(parent, i);
        if (cls_of_root[r] < 0) cls_of_root[r] = ncls++;
        label[i] = cls_of_root[r];
    }
    long long *acc = calloc_check((size_t)ncls * 4, sizeof(long long)); // (ncls, 4)
    int *cnt = calloc_check((size_t)ncls, sizeof(int)), *avg = malloc_check((size_t)ncls * 4 * sizeof(int));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++) acc[(size_t)label[i] * 4 + (size_t)k] += l->r[(size_t)i * 4 + (size_t)k];
        cnt[label[i]]++;
    }
    for (int c = 0; c < ncls; c++) {
        float s = 1.f / (float)cnt[c];
        for (int k = 0; k < 4; k++) avg[c * 4 + k] = (int)lrintf((float)acc[(size_t)c * 4 + (size_t)k] * s);
    }
    int nout = 0;
    for (int i = 0; i < ncls; i++) {
        int n1 = cnt[i];
        if (n1 <= min_nb) continue;
        const int *r1 = avg + i * 4;
        int j = 0;
        for (; j < ncls; j++) {
            int n2 = cnt[j];
            if (j == i || n2 <= min_nb) continue;
            const int *r2 = avg + j * 4;
            int dx = (int)lrint(r2[2] * eps), dy = (int)lrint(r2[3] * eps);
            if (r1[0] >= r2[0] - dx && r1[1] >= r2[1] - dy && r1[0] + r1[2] <= r2[0] + r2[2] + dx &&
                r1[1] + r1[3] <= r2[1] + r2[3] + dy && (n2 > (n1 > 3 ? n1 : 3) || n1 < 3))
                break;
        }
        if (j == ncls) {
            if (nout < max_boxes) boxes[nout] = (FaceBox){r1[0], r1[1], r1[2], r1[3], n1};
            nout++;
        }
    }
    free(parent); free(label); free(cls_of_root); free(acc); free(cnt); free(avg);
    return nout;
}

int cascade_detect(const Cascade *c, const uint8_t *gray, int w, int h, const CascadeParams *p, FaceBox *boxes,
                   int max_boxes) {
    enum { SCALES_MAX = 256 };
    double factors[SCALES_MAX];
    int nsc = 0;
    int max_w = p->max_size > 0 ? p->max_size : w, max_h = p->max_size > 0 ? p->max_size : h;
    for (double f = 1.; nsc < SCALES_MAX; f *= p->scale_factor) {
        int ww = (int)lrint(c->win_w * f), wh = (int)lrint(c->win_h * f);
        if (lrint(w / f) < c->win_w || lrint(h / f) < c->win_h) break;
        if (ww > max_w || wh > max_h) break;
        if (ww < p->min_size || wh < p->min_size) continue;
        factors[nsc++] = f;
    }
    // one list per level, concatenated in level order: the same output for any thread count
    RectList lists[SCALES_MAX];
    memset(lists, 0, sizeof lists);
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < nsc; i++) scan_level(c, gray, w, h, (float)factors[i], p->step, &lists[i]);
    RectList all = {0};
    for (int i = 0; i < nsc; i++) {
        for (int k = 0; k < lists[i].n; k++) {
            const int *r = lists[i].r + (size_t)k * 4;
            rects_push(&all, r[0], r[1], r[2], r[3]);
        }
        free(lists[i].r);
    }
    int n = group_rects(&all, p->min_neighbors, boxes, max_boxes);
    free(all.r);
    return n;
}
