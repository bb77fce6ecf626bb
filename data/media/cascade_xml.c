// OpenCV cascade XML reader: the cascade files of opencv_traincascade into a Cascade (see cascade.h).
#include "data/media/cascade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------------------
// Minimal XML: elements, text, comments, <?...?> and <!...> declarations; attributes are skipped (the cascade
// format keeps everything in elements). The whole file is read into memory; nodes point into it.

typedef struct {
    const char *name, *text;   // not NUL-terminated
    size_t name_len, text_len; // text: the content before the first child element (numbers live in leaf elements)
    int first_child, next;     // node indices, -1 = none
} XNode;

typedef struct {
    char *buf;
    XNode *nodes;
    int n, cap;
} XDoc;

static int xml_new_node(XDoc *d) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 1024;
        XNode *nn = realloc(d->nodes, (size_t)d->cap * sizeof(XNode));
        if (!nn) { fprintf(stderr, "out of memory\n"); exit(EXIT_FAILURE); }
        d->nodes = nn;
    }
    XNode *x = &d->nodes[d->n];
    memset(x, 0, sizeof *x);
    x->first_child = x->next = -1;
    return d->n++;
}

static int is_name_char(char ch) { return ch && !strchr(" \t\r\n/>=", ch); }

// Builds the element tree of a NUL-terminated buffer; node 0 is a synthetic root. 0 or -1 with err set.
static int xml_parse(XDoc *d, const char *path, AvtErr *err) {
    enum { DEPTH_MAX = 64 };
    int stack[DEPTH_MAX], last_child[DEPTH_MAX], depth = 0;
    stack[0] = xml_new_node(d);
    last_child[0] = -1;
    const char *p = d->buf;
    while (*p) {
        if (*p != '<') { p++; continue; }
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p + 4, "-->");
            if (!e) return avt_err_set(err, "%s: truncated XML (unterminated comment)", path);
            p = e + 3;
        } else if (p[1] == '?' || p[1] == '!') {
            const char *e = strchr(p, '>');
            if (!e) return avt_err_set(err, "%s: truncated XML (unterminated declaration)", path);
            p = e + 1;
        } else if (p[1] == '/') { // closing tag: must match the open element
            const char *nm = p + 2, *e = nm;
            while (is_name_char(*e)) e++;
            if (depth == 0) return avt_err_set(err, "%s: malformed XML (unexpected closing tag)", path);
            const XNode *open = &d->nodes[stack[depth]];
            if ((size_t)(e - nm) != open->name_len || strncmp(nm, open->name, open->name_len))
                return avt_err_set(err, "%s: malformed XML (<%.*s> closed by </%.*s>)", path, (int)open->name_len,
                                   open->name, (int)(e - nm), nm);
            const char *gt = strchr(e, '>');
            if (!gt) return avt_err_set(err, "%s: truncated XML (unterminated tag)", path);
            depth--;
            p = gt + 1;
        } else { // opening tag
            const char *nm = p + 1, *e = nm;
            while (is_name_char(*e)) e++;
            if (e == nm) return avt_err_set(err, "%s: malformed XML (empty tag name)", path);
            const char *gt = strchr(e, '>');
            if (!gt) return avt_err_set(err, "%s: truncated XML (unterminated tag)", path);
            int id = xml_new_node(d);
            XNode *x = &d->nodes[id];
            x->name = nm;
            x->name_len = (size_t)(e - nm);
            x->text = gt + 1;
            const char *lt = strchr(gt + 1, '<');
            x->text_len = lt ? (size_t)(lt - (gt + 1)) : strlen(gt + 1);
            int parent = stack[depth];
            if (last_child[depth] < 0) d->nodes[parent].first_child = id;
            else d->nodes[last_child[depth]].next = id;
            last_child[depth] = id;
            p = gt + 1;
            if (gt[-1] != '/') { // not self-closing: descend
                if (depth + 1 == DEPTH_MAX) return avt_err_set(err, "%s: XML nested too deeply", path);
                stack[++depth] = id;
                last_child[depth] = -1;
            }
        }
    }
    if (depth > 0) {
        const XNode *open = &d->nodes[stack[depth]];
        return avt_err_set(err, "%s: truncated XML (<%.*s> not closed)", path, (int)open->name_len, open->name);
    }
    return 0;
}

static int xml_child(const XDoc *d, int node, const char *name) {
    size_t len = strlen(name);
    for (int c = d->nodes[node].first_child; c >= 0; c = d->nodes[c].next)
        if (d->nodes[c].name_len == len && !strncmp(d->nodes[c].name, name, len)) return c;
    return -1;
}

static int xml_count(const XDoc *d, int node) {
    int n = 0;
    for (int c = d->nodes[node].first_child; c >= 0; c = d->nodes[c].next) n++;
    return n;
}

// Parses exactly n numbers from a node's text; 0 or -1.
static int xml_numbers(const XDoc *d, int node, double *out, int n) {
    const XNode *x = &d->nodes[node];
    const char *s = x->text, *end = x->text + x->text_len;
    for (int i = 0; i < n; i++) {
        char *e;
        out[i] = strtod(s, &e);
        if (e == s || e > end) return -1;
        s = e;
    }
    while (s < end && strchr(" \t\r\n", *s)) s++;
    return s == end ? 0 : -1;
}

// Number of whitespace-separated tokens in a node's text.
static int xml_ntokens(const XDoc *d, int node) {
    const XNode *x = &d->nodes[node];
    int n = 0, in = 0;
    for (size_t i = 0; i < x->text_len; i++) {
        int ws = strchr(" \t\r\n", x->text[i]) != NULL;
        if (!ws && !in) n++;
        in = !ws;
    }
    return n;
}

static int xml_text_is(const XDoc *d, int node, const char *s) {
    const XNode *x = &d->nodes[node];
    const char *t = x->text, *end = t + x->text_len;
    while (t < end && strchr(" \t\r\n", *t)) t++;
    while (end > t && strchr(" \t\r\n", end[-1])) end--;
    return (size_t)(end - t) == strlen(s) && !strncmp(t, s, strlen(s));
}

// ---------------------------------------------------------------------------------------------------------------
// Cascade loading

void cascade_free(Cascade *c) {
    free(c->stage_first); free(c->stage_thr); free(c->weak_feat); free(c->weak_thr); free(c->leaf);
    free(c->subset); free(c->rect); free(c->rect_w);
    memset(c, 0, sizeof *c);
}

static int load_tree(Cascade *c, const XDoc *d, int casc, const char *path, AvtErr *err) {
    double v[16];
    int n;
    if ((n = xml_child(d, casc, "stageType")) < 0 || !xml_text_is(d, n, "BOOST"))
        return avt_err_set(err, "%s: not a BOOST cascade (missing or other <stageType>)", path);
    if ((n = xml_child(d, casc, "featureType")) < 0)
        return avt_err_set(err, "%s: missing <featureType>", path);
    if (xml_text_is(d, n, "LBP")) c->type = CASCADE_LBP;
    else if (xml_text_is(d, n, "HAAR")) c->type = CASCADE_HAAR;
    else return avt_err_set(err, "%s: unsupported <featureType> (want LBP or HAAR)", path);
    int hn = xml_child(d, casc, "height"), wn = xml_child(d, casc, "width");
    if (hn < 0 || wn < 0 || xml_numbers(d, hn, &v[0], 1) || xml_numbers(d, wn, &v[1], 1) || v[0] < 3 ||
        v[1] < 3 || v[0] > 1024 || v[1] > 1024)
        return avt_err_set(err, "%s: missing or bad window <width>/<height>", path);
    c->win_h = (int)v[0];
    c->win_w = (int)v[1];

    int stages = xml_child(d, casc, "stages"), feats = xml_child(d, casc, "features");
    if (stages < 0 || feats < 0) return avt_err_set(err, "%s: missing <stages> or <features>", path);
    c->n_stages = xml_count(d, stages);
    c->n_feat = xml_count(d, feats);
    if (c->n_stages == 0 || c->n_feat == 0) return avt_err_set(err, "%s: empty <stages> or <features>", path);
    c->n_weak = 0;
    for (int s = d->nodes[stages].first_child; s >= 0; s = d->nodes[s].next) {
        int wc = xml_child(d, s, "weakClassifiers");
        if (wc < 0) return avt_err_set(err, "%s: stage without <weakClassifiers>", path);
        c->n_weak += xml_count(d, wc);
    }
    int lbp = c->type == CASCADE_LBP;
    size_t nw = (size_t)c->n_weak, nf = (size_t)c->n_feat;
    c->stage_first = calloc_check((size_t)c->n_stages + 1, sizeof(int));
    c->stage_thr = calloc_check((size_t)c->n_stages, sizeof(float));
    c->weak_feat = calloc_check(nw, sizeof(int));
    c->weak_thr = calloc_check(nw, sizeof(float));
    c->leaf = calloc_check(nw * 2, sizeof(float));
    c->subset = lbp ? calloc_check(nw * 8, sizeof(int32_t)) : NULL;
    c->rect = calloc_check(nf * (lbp ? 4 : 12), sizeof(int));
    c->rect_w = lbp ? NULL : calloc_check(nf * 3, sizeof(float));

    int si = 0, wi = 0;
    for (int s = d->nodes[stages].first_child; s >= 0; s = d->nodes[s].next, si++) {
        int th = xml_child(d, s, "stageThreshold");
        if (th < 0 || xml_numbers(d, th, v, 1))
            return avt_err_set(err, "%s: stage %d: missing or bad <stageThreshold>", path, si);
        c->stage_thr[si] = (float)v[0] - 1e-5f; // OpenCV's THRESHOLD_EPS
        c->stage_first[si] = wi;
        for (int w = d->nodes[xml_child(d, s, "weakClassifiers")].first_child; w >= 0; w = d->nodes[w].next, wi++) {
            int in = xml_child(d, w, "internalNodes"), lv = xml_child(d, w, "leafValues");
            int want = lbp ? 11 : 4;
            if (in < 0 || lv < 0) return avt_err_set(err, "%s: stage %d: weak classifier without nodes", path, si);
            if (xml_ntokens(d, in) != want || xml_ntokens(d, lv) != 2)
                return avt_err_set(err, "%s: stage %d: only stump cascades are supported (got %d node values)",
                                   path, si, xml_ntokens(d, in));
            if (xml_numbers(d, in, v, want) || xml_numbers(d, lv, v + want, 2))
                return avt_err_set(err, "%s: stage %d: bad numbers in a weak classifier", path, si);
            if (v[2] < 0 || v[2] >= c->n_feat)
                return avt_err_set(err, "%s: stage %d: feature index %.0f out of range", path, si, v[2]);
            c->weak_feat[wi] = (int)v[2];
            if (lbp)
                for (int k = 0; k < 8; k++) c->subset[(size_t)wi * 8 + k] = (int32_t)(int64_t)v[3 + k];
            else
                c->weak_thr[wi] = (float)v[3];
            c->leaf[(size_t)wi * 2] = (float)v[want];
            c->leaf[(size_t)wi * 2 + 1] = (float)v[want + 1];
        }
    }
    c->stage_first[si] = wi;

    int fi = 0;
    for (int f = d->nodes[feats].first_child; f >= 0; f = d->nodes[f].next, fi++) {
        if (lbp) {
            int r = xml_child(d, f, "rect");
            if (r < 0 || xml_numbers(d, r, v, 4)) return avt_err_set(err, "%s: feature %d: bad <rect>", path, fi);
            if (v[0] < 0 || v[1] < 0 || v[2] < 1 || v[3] < 1 || v[0] + 3 * v[2] > c->win_w ||
                v[1] + 3 * v[3] > c->win_h)
                return avt_err_set(err, "%s: feature %d: rect outside the window", path, fi);
            for (int k = 0; k < 4; k++) c->rect[(size_t)fi * 4 + k] = (int)v[k];
        } else {
            int rs = xml_child(d, f, "rects"), tl = xml_child(d, f, "tilted");
            if (tl >= 0 && !xml_text_is(d, tl, "0"))
                return avt_err_set(err, "%s: feature %d: tilted Haar features are not supported", path, fi);
            int nr = rs < 0 ? 0 : xml_count(d, rs);
            if (nr < 1 || nr > 3) return avt_err_set(err, "%s: feature %d: want 1 to 3 <rects>", path, fi);
            int k = 0;
            for (int r = d->nodes[rs].first_child; r >= 0; r = d->nodes[r].next, k++) {
                if (xml_numbers(d, r, v, 5) || v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0 ||
                    v[0] + v[2] > c->win_w || v[1] + v[3] > c->win_h)
                    return avt_err_set(err, "%s: feature %d: bad rectangle", path, fi);
                for (int q = 0; q < 4; q++) c->rect[((size_t)fi * 3 + (size_t)k) * 4 + (size_t)q] = (int)v[q];
                c->rect_w[(size_t)fi * 3 + (size_t)k] = (float)v[4];
            }
        }
    }
    return 0;
}

int cascade_load(Cascade *c, const char *xml_path, AvtErr *err) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(xml_path, "rb");
    if (!f) return avt_err_set(err, "%s: cannot open cascade file", xml_path);
    XDoc d = {0};
    size_t len = 0, cap = 1 << 20;
    d.buf = malloc_check(cap + 1);
    size_t got;
    while ((got = fread(d.buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(d.buf, cap + 1);
            if (!nb) { fprintf(stderr, "out of memory\n"); exit(EXIT_FAILURE); }
            d.buf = nb;
        }
    }
    int rd_err = ferror(f);
    fclose(f);
    d.buf[len] = '\0';
    int rc = -1;
    if (rd_err) avt_err_set(err, "%s: read error", xml_path);
    else if (xml_parse(&d, xml_path, err) == 0) {
        int st = xml_child(&d, 0, "opencv_storage");
        int casc = st < 0 ? -1 : xml_child(&d, st, "cascade");
        if (casc < 0) avt_err_set(err, "%s: not an OpenCV cascade (no <opencv_storage><cascade>)", xml_path);
        else rc = load_tree(c, &d, casc, xml_path, err);
    }
    free(d.buf);
    free(d.nodes);
    if (rc) cascade_free(c);
    return rc;
}
