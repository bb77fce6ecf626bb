#include "data/corpus/layouts.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// ---- file names ----

// Splits rel at '/' into at most max components (in buf, which it overwrites); the count, or max + 1 if more.
static int components(char *buf, char **c, int max) {
    int n = 0;
    for (char *s = buf; s; n++) {
        if (n == max) return max + 1;
        c[n] = s;
        s = strchr(s, '/');
        if (s) *s++ = '\0';
    }
    return n;
}

static int is_digits(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    return 1;
}

// The file name's stem when it ends in ext (cut in place), else NULL.
static char *stem(char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    if (n <= e || strcmp(name + n - e, ext) != 0) return NULL;
    name[n - e] = '\0';
    return name;
}

static int one_of(const char *s, const char *const *set) {
    for (; *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

// Each parser: 0 if rel is not a file of the layout; 1 if it is, with r->speaker and r->labels set, or r->bad (the
// reason, without the path).
static int parse_voxceleb2(const char *rel, CorpusRow *r) {
    char buf[4096], *c[5], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    if (components(buf, c, 5) != 5 || strcmp(c[1], "mp4") != 0 || !(s = stem(c[4], ".mp4"))) return 0;
    if (!corpus_is_voxceleb2_id(c[2], strlen(c[2])))
        r->bad = asprintf_check("'%s' is not a VoxCeleb2 identity directory (id + digits)", c[2]);
    r->speaker = asprintf_check("%s", c[2]);
    r->labels = asprintf_check("%s,%s", c[0], c[3]);
    return 1;
}

static int parse_cremad(const char *rel, CorpusRow *r) {
    static const char *const emotions[] = {"ANG", "DIS", "FEA", "HAP", "NEU", "SAD", NULL};
    static const char *const levels[] = {"LO", "MD", "HI", "XX", NULL};
    char buf[4096], *c[2], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    if (components(buf, c, 2) != 2 || !(s = stem(c[1], ".flv"))) return 0;
    // ActorID_Sentence_Emotion_Level: 4 digits, 3 capitals, an emotion code, a level code
    if (strlen(s) != 15 || !is_digits(s, 4) || s[4] != '_' || s[8] != '_' || s[12] != '_') {
        r->bad = asprintf_check("name is not ActorID_Sentence_Emotion_Level (e.g. 1001_DFA_ANG_XX)");
        return 1;
    }
    s[4] = s[8] = s[12] = '\0';
    if (!one_of(s + 9, emotions) || !one_of(s + 13, levels)) {
        r->bad = asprintf_check("emotion '%s' or level '%s' is not a CREMA-D code", s + 9, s + 13);
        return 1;
    }
    r->speaker = asprintf_check("%s", s);
    r->labels = asprintf_check("%s,%s,%s", s + 5, s + 9, s + 13);
    return 1;
}

static int parse_ravdess(const char *rel, CorpusRow *r) {
    static const char *const emotions[] = {"neutral", "calm",    "happy",   "sad",
                                           "angry",   "fearful", "disgust", "surprised"};
    char buf[4096], *c[2], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    if (components(buf, c, 2) != 2 || strncmp(c[0], "Actor_", 6) != 0 || !(s = stem(c[1], ".mp4"))) return 0;
    int f[7], len = 0;
    if (strlen(s) != 20 || sscanf(s, "%2d-%2d-%2d-%2d-%2d-%2d-%2d%n", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
                                  &len) != 7 || len != 20) {
        r->bad = asprintf_check("name is not seven two-digit fields MM-VV-EE-II-SS-RR-AA");
        return 1;
    }
    if (f[0] != 1) return 0; // video-only (02) and audio-only (03) files: the full-AV file (01) holds both
    if (f[1] < 1 || f[1] > 2 || f[2] < 1 || f[2] > 8 || f[3] < 1 || f[3] > 2 || f[4] < 1 || f[4] > 2 || f[5] < 1 ||
        f[5] > 2) {
        r->bad = asprintf_check("a field is out of RAVDESS's codes");
        return 1;
    }
    if (strcmp(c[0] + 6, s + 18) != 0) r->bad = asprintf_check("actor %s is not the directory's", s + 18);
    r->speaker = asprintf_check("%s", c[0]);
    r->labels = asprintf_check("%s,%s,%s,%d,%d", f[1] == 1 ? "speech" : "song", emotions[f[2] - 1],
                              f[3] == 1 ? "normal" : "strong", f[4], f[5]);
    return 1;
}

// MSP-IMPROV-S01A-F01-P-FM01: sentence 01, target emotion A, speaker F01 (gender, session), condition P, turn FM01.
static int parse_mspimprov(const char *rel, CorpusRow *r) {
    char buf[4096], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    char *base = strrchr(buf, '/');
    if (!(s = stem(base ? base + 1 : buf, ".avi")) || strncmp(s, "MSP-IMPROV-", 11) != 0) return 0;
    if (strlen(s) < 23 || s[11] != 'S' || !is_digits(s + 12, 2) || !strchr("AHSN", s[14]) || s[15] != '-' ||
        !strchr("FM", s[16]) || !is_digits(s + 17, 2) || s[19] != '-' || !strchr("PRST", s[20]) || s[21] != '-') {
        r->bad = asprintf_check("name is not MSP-IMPROV-S<sentence><emotion>-<F|M><session>-<P|R|S|T>-<turn>");
        return 1;
    }
    r->speaker = asprintf_check("%.3s", s + 16);
    r->labels = asprintf_check("%.2s,%.2s,%c,%c,%s", s + 17, s + 12, s[14], s[20], s + 22);
    return 1;
}

// ---- MSP-IMPROV's ratings ----
// ROOT/Evaluation.txt, when present: each clip's aggregate line
// "UTD-IMPROV-<name>.avi; <category>; A:<f>; V:<f>; D:<f> ; N:<f>;" adds category,arousal,valence,dominance to its
// row's labels (empty fields for clips it does not list). Rater lines are passed over.
typedef struct {
    char name[160];
    char fields[192];
} Rating;

static int cmp_rating(const void *a, const void *b) {
    return strcmp(((const Rating *)a)->name, ((const Rating *)b)->name);
}

static int mspimprov_ratings(const char *root, CorpusRow *rows, size_t n, AvtErr *err) {
    char *path = asprintf_check("%s/Evaluation.txt", root);
    FILE *f = fopen(path, "r");
    if (!f && errno != ENOENT) {
        avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    Rating *rt = NULL;
    size_t nr = 0, cap = 0;
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        char name[128], cat[8];
        double a, v, d;
        if (strncmp(line, "UTD-IMPROV-", 11) != 0 ||
            sscanf(line, "UTD-IMPROV-%120[^.].avi; %7[^;]; A:%lf; V:%lf; D:%lf", name, cat, &a, &v, &d) != 5)
            continue;
        if (nr == cap) rt = realloc(rt, (cap = cap ? 2 * cap : 1024) * sizeof *rt);
        if (!rt) avt_fatal("out of memory reading %s", path);
        snprintf(rt[nr].name, sizeof rt[nr].name, "MSP-IMPROV-%s", name);
        snprintf(rt[nr].fields, sizeof rt[nr].fields, "%s,%g,%g,%g", cat, a, v, d);
        nr++;
    }
    if (f) fclose(f); // read-only: nothing to lose on close
    if (nr) qsort(rt, nr, sizeof *rt, cmp_rating);
    for (size_t i = 0; i < n; i++) {
        Rating key;
        const char *base = strrchr(rows[i].id, '/');
        snprintf(key.name, sizeof key.name, "%s", base ? base + 1 : rows[i].id);
        const Rating *hit = nr ? bsearch(&key, rt, nr, sizeof *rt, cmp_rating) : NULL;
        char *labels = asprintf_check("%s,%s", rows[i].labels, hit ? hit->fields : ",,,");
        free(rows[i].labels);
        rows[i].labels = labels;
    }
    free(rt);
    free(path);
    return 0;
}

// ---- the layouts ----

struct Layout {
    const char *name;
    const char *dirs[3];  // walked under ROOT
    const char *pattern;  // for the empty-tree message
    const char *header;   // labels.csv's fields after id,speaker
    int (*parse)(const char *rel, CorpusRow *r);
    const char *wav_dir;  // where a media file's separate original audio NAME.wav may be ("": beside it), or NULL
    int (*annotate)(const char *root, CorpusRow *rows, size_t n, AvtErr *err); // labels from a label file, or NULL
};

static const Layout LAYOUTS[] = {
    {"voxceleb2", {"dev/mp4", "test/mp4", NULL}, "{dev,test}/mp4/idNNNNN/VIDEOID/NNNNN.mp4", "split,video",
     parse_voxceleb2, NULL, NULL},
    {"cremad", {"VideoFlash", NULL}, "VideoFlash/*.flv", "sentence,emotion,level", parse_cremad, "AudioWAV", NULL},
    {"ravdess", {"", NULL}, "Actor_NN/01-*.mp4", "channel,emotion,intensity,statement,repetition", parse_ravdess,
     NULL, NULL},
    {"mspimprov", {"", NULL}, "**/MSP-IMPROV-*.avi",
     "session,sentence,emotion,condition,turn,category,arousal,valence,dominance", parse_mspimprov, "",
     mspimprov_ratings},
};

const Layout *layout_find(const char *name) {
    for (size_t k = 0; k < sizeof LAYOUTS / sizeof *LAYOUTS; k++)
        if (strcmp(name, LAYOUTS[k].name) == 0) return &LAYOUTS[k];
    return NULL;
}

typedef struct {
    char **v;
    size_t n, cap;
} Paths;

// Every regular file under root/rel (symbolic links followed, dot files passed over), as paths relative to root.
// A directory that does not exist is a split or folder this copy of the dataset lacks, unless it is root itself.
static int walk(const char *root, const char *rel, Paths *p, AvtErr *err) {
    char *dir = *rel ? asprintf_check("%s/%s", root, rel) : asprintf_check("%s", root);
    DIR *d = opendir(dir);
    if (!d) {
        int rc = errno != ENOENT || !*rel ? avt_err_set(err, "%s: cannot open: %s", dir, strerror(errno)) : 0;
        free(dir);
        return rc;
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char *sub = *rel ? asprintf_check("%s/%s", rel, e->d_name) : asprintf_check("%s", e->d_name);
        char *full = asprintf_check("%s/%s", root, sub);
        struct stat st;
        int ok = stat(full, &st) == 0;
        if (ok && S_ISDIR(st.st_mode)) {
            rc = walk(root, sub, p, err);
            free(sub);
        } else if (ok && S_ISREG(st.st_mode)) {
            if (p->n == p->cap) {
                p->cap = p->cap ? 2 * p->cap : 1024;
                p->v = realloc(p->v, p->cap * sizeof *p->v);
                if (!p->v) avt_fatal("out of memory listing %s", root);
            }
            p->v[p->n++] = sub;
        } else free(sub);
        free(full);
    }
    closedir(d);
    free(dir);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The row of root/rel, a file of the layout (its parser has run on r).
static void finish_row(const Layout *L, const char *root, const char *rel, CorpusRow *r) {
    r->audio = asprintf_check("%s/%s", root, rel);
    r->id = corpus_id(rel);
    if (L->wav_dir) { // the original recording beats the media's lossy copy
        const char *base = strrchr(r->id, '/');
        char *wav = *L->wav_dir ? asprintf_check("%s/%s/%s.wav", root, L->wav_dir, base ? base + 1 : r->id)
                                : asprintf_check("%s/%s.wav", root, r->id);
        struct stat st;
        if (stat(wav, &st) == 0) r->wav = wav;
        else free(wav);
    }
    if (!r->speaker) r->speaker = asprintf_check("%s", "");
    if (!r->labels) r->labels = asprintf_check("%s", "");
    if (!r->bad && strlen(r->id) > STORE_ID_MAX)
        r->bad = asprintf_check("utterance id is longer than %d bytes", STORE_ID_MAX);
    if (r->bad) {
        char *bad = asprintf_check("%s: %s", r->audio, r->bad);
        free(r->bad);
        r->bad = bad;
    }
}

int layout_read(const Layout *L, const char *root, CorpusRow **rows_out, size_t *n_out, AvtErr *err) {
    *rows_out = NULL;
    *n_out = 0;
    struct stat st;
    if (stat(root, &st) != 0) return avt_err_set(err, "%s: cannot open: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return avt_err_set(err, "%s: not a directory", root);
    Paths p = {0};
    int rc = 0;
    for (int k = 0; L->dirs[k] && rc == 0; k++) rc = walk(root, L->dirs[k], &p, err);
    if (p.n) qsort(p.v, p.n, sizeof *p.v, cmp_str);
    CorpusRow *rows = calloc_check(p.n ? p.n : 1, sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; i < p.n; i++) {
        if (rc == 0 && L->parse(p.v[i], &rows[n])) finish_row(L, root, p.v[i], &rows[n++]);
        free(p.v[i]);
    }
    free(p.v);
    if (rc == 0 && n == 0) rc = avt_err_set(err, "%s: no %s files here (%s)", root, L->name, L->pattern);
    if (rc == 0 && L->annotate) rc = L->annotate(root, rows, n, err);
    if (rc) {
        corpus_rows_free(rows, n);
        return -1;
    }
    *rows_out = rows;
    *n_out = n;
    return 0;
}

int layout_write_labels(const Layout *L, const char *path, const CorpusRow *rows, size_t n, AvtErr *err) {
    return corpus_write_labels(path, L->header, rows, n, err);
}
