// Face detection with OpenCV cascade classifiers (the new XML format of opencv_traincascade), from plain C.
//
// Supported: BOOST cascades of stumps (one internal node per weak classifier) over
//   LBP features  (lbpcascade_frontalface_improved.xml, lbpcascade_frontalface.xml): 3x3 cells, 256-bit subsets
//   Haar features (haarcascade_frontalface_default.xml): up to 3 weighted upright rectangles, variance-normalised.
// Tree cascades (haarcascade_frontalface_alt2.xml) and tilted Haar features are refused at load time.
// cascade_xml.c reads the XML (cascade_load, cascade_free); cascade.c detects.
//
// cascade_detect follows cv::CascadeClassifier::detectMultiScale of OpenCV 4 (docs/data.md §6.3): a pyramid
// of bilinear downscales (bit-exact with cv::resize INTER_LINEAR_EXACT on 8-bit images, as OpenCV 4 builds it),
// factor 1, s, s^2, ... until the scaled image is smaller than the window; scan step 2 px at factor <= 2, else 1 px,
// one extra step after a window
// rejected by stage 0; accepted windows mapped back to the image, then groupRectangles(minNeighbors, eps 0.2).
#ifndef AVT_CASCADE_H
#define AVT_CASCADE_H

#include <stdint.h>
#include "base/common.h"

typedef enum { CASCADE_LBP = 0, CASCADE_HAAR = 1 } CascadeType;

typedef struct {
    CascadeType type;
    int win_w, win_h;     // detection window of the cascade (45x45 LBP improved, 24x24 Haar default)
    int n_stages, n_weak, n_feat;
    int *stage_first;     // (n_stages + 1,) weak classifiers of stage s: [stage_first[s], stage_first[s + 1])
    float *stage_thr;     // (n_stages,) stage threshold minus 1e-5, as OpenCV stores it
    int *weak_feat;       // (n_weak,) feature index
    float *weak_thr;      // (n_weak,) Haar node threshold (unused for LBP)
    float *leaf;          // (n_weak, 2) leaf values: [0] subset bit set / value < threshold, [1] otherwise
    int32_t *subset;      // (n_weak, 8) LBP category bit sets (NULL for Haar)
    int *rect;            // LBP (n_feat, 4) x y w h of one cell; Haar (n_feat, 3, 4) rectangles
    float *rect_w;        // (n_feat, 3) Haar rectangle weights, 0 for an unused rectangle (NULL for LBP)
} Cascade;

typedef struct {
    double scale_factor;  // > 1; OpenCV's default 1.1
    int min_neighbors;    // clusters with <= min_neighbors members are dropped; OpenCV's default 3
    int min_size;         // skip windows smaller than this (px, 0 = none)
    int max_size;         // skip windows larger than this (px, 0 = image size)
    int step;             // scan step in the scaled image (px); 0 = OpenCV's: 2 at factor < 2, else 1
} CascadeParams;

typedef struct {
    int x, y, w, h;       // in the input image's pixels
    int neighbors;        // raw windows in the cluster (a confidence)
} FaceBox;

// OpenCV defaults: 1.1, 3, 0, 0 (and its step rule). LBP windows are evaluated eight at a time with AVX2 where the
// CPU has it, else one at a time, with the same result (base/cpu.h).
CascadeParams cascade_default_params(void);
// 0, or -1 with one line in err naming the file (missing, truncated or malformed XML, not a supported cascade).
int cascade_load(Cascade *c, const char *xml_path, AvtErr *err);
void cascade_free(Cascade *c);
// Detects in an 8-bit grayscale image; writes up to max_boxes boxes (in OpenCV's output order) and returns how
// many there are in all (may exceed max_boxes). Deterministic for any OpenMP thread count.
int cascade_detect(const Cascade *c, const uint8_t *gray /* (h, w) */, int w, int h, const CascadeParams *p,
                   FaceBox *boxes, int max_boxes);

#endif
