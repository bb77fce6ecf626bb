#include "tools/cli.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) avt_die("%s needs a value (see --help)", argv[*i]);
    return argv[++*i];
}

int cli_int(const char *flag, const char *v, int lo, int hi) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > hi)
        avt_die("%s: '%s' is not an integer in [%d, %d]", flag, v, lo, hi);
    return (int)x;
}

uint64_t cli_u64(const char *flag, const char *v) {
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v == '\0' || *v == '-' || *end != '\0') avt_die("%s: '%s' is not a non-negative integer", flag, v);
    return (uint64_t)x;
}

int cli_is(const char *arg, const char *flag) { return strcmp(arg, flag) == 0; }
int cli_help(const char *arg) { return cli_is(arg, "-h") || cli_is(arg, "--help"); }

void cli_unknown(const char *cmd, const char *arg) {
    if (arg[0] == '-') avt_die("%s: unknown option '%s' (see avt %s --help)", cmd, arg, cmd);
    avt_die("%s: unexpected argument '%s' (see avt %s --help)", cmd, arg, cmd);
}

// An integer field of a config file: *out keeps its value when the key is absent.
static void config_int(const cJSON *root, const char *path, const char *key, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || v->valuedouble < 1)
        avt_die("%s: '%s' must be a positive integer", path, key);
    *out = (int)v->valuedouble;
}

// A JSON config as the authors' config/*.json: embed_size, n_code, n_heads (required), audio_dim, video_dim.
static AvtConfig config_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) avt_die("--config: '%s' is not base, large or tiny, and cannot be opened: %s", path, strerror(errno));
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int too_long = !feof(f);
    fclose(f);
    if (too_long) avt_die("%s: a config file is at most %zu bytes", path, sizeof buf - 1);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    if (!cJSON_IsObject(root)) avt_die("%s: not a JSON object", path);
    AvtConfig c = AVT_BASE;
    c.d = c.L = c.NH = 0;
    config_int(root, path, "embed_size", &c.d);
    config_int(root, path, "n_code", &c.L);
    config_int(root, path, "n_heads", &c.NH);
    config_int(root, path, "audio_dim", &c.d_a);
    config_int(root, path, "video_dim", &c.d_v);
    cJSON_Delete(root);
    if (!c.d || !c.L || !c.NH) avt_die("%s: embed_size, n_code and n_heads are required", path);
    return c;
}

AvtConfig cli_config_named(const char *name) {
    if (cli_is(name, "base")) return AVT_BASE;
    if (cli_is(name, "large")) return AVT_LARGE;
    if (cli_is(name, "tiny")) {
        AvtConfig c = AVT_BASE;
        c.d = 24, c.L = 2, c.NH = 4;
        return c;
    }
    if (strchr(name, '.') || strchr(name, '/')) return config_file(name);
    avt_die("--config: unknown config '%s' (base, large, tiny or a .json file)", name);
}

int cli_config_flag(int argc, char **argv, int *i, AvtConfig *cfg) {
    const char *a = argv[*i];
    if (cli_is(a, "--config")) *cfg = cli_config_named(cli_value(argc, argv, i));
    else if (cli_is(a, "--embed-size")) cfg->d = cli_int(a, cli_value(argc, argv, i), 2, 1 << 16);
    else if (cli_is(a, "--layers")) cfg->L = cli_int(a, cli_value(argc, argv, i), 1, 1024);
    else if (cli_is(a, "--heads")) cfg->NH = cli_int(a, cli_value(argc, argv, i), 1, 1024);
    else if (cli_is(a, "--audio-dim")) cfg->d_a = cli_int(a, cli_value(argc, argv, i), 1, 1 << 16);
    else if (cli_is(a, "--video-dim")) cfg->d_v = cli_int(a, cli_value(argc, argv, i), 1, 1 << 16);
    else return 0;
    return 1;
}

void cli_set_threads(int n) {
    if (n <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

double cli_real(const char *flag, const char *v, double lo, double hi) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno || !(x >= lo && x <= hi))
        avt_die("%s %s: expected a number in [%g, %g]", flag, v, lo, hi);
    return x;
}

int cli_device_flag(int argc, char **argv, int *i, const char **device) {
    const char *a = argv[*i];
    if (cli_is(a, "--device")) {
        *device = cli_value(argc, argv, i);
        return 1;
    }
    if (!cli_is(a, "--attention")) return 0;
    const char *v = cli_value(argc, argv, i);
    if (strcmp(v, "avt") == 0) backend_set_attention(ATTN_AVT);
    else if (strcmp(v, "cudnn") == 0) backend_set_attention(ATTN_CUDNN);
    else avt_die("--attention %s: unknown path (avt or cudnn)", v);
    return 1;
}

const Backend *cli_backend(const char *device) {
    AvtErr err;
    const Backend *be = backend_open(device, &err);
    if (!be) avt_die("%s", err.msg);
    if (backend_attention() == ATTN_CUDNN && !be->attention_forward_cudnn)
        avt_die("--attention cudnn: the %s backend has no cuDNN path (use --device cuda)", be->name);
    return be;
}

void cli_make_dir(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) avt_die("%s: exists and is not a directory", dir);
        return;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) avt_die("%s: cannot create directory: %s", dir, strerror(errno));
}

void progress_start(Progress *p, const char *what, long total) {
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->t0 = p->last = avt_now();
    p->tty = isatty(STDERR_FILENO);
    p->last_decile = -1;
}

static void progress_draw(Progress *p, int final) {
    double el = avt_now() - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0.0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0.0;
    int width = 30, fill = p->total ? (int)((double)width * (double)p->done / (double)p->total) : width;
    char bar[64];
    for (int k = 0; k < width; k++) bar[k] = k < fill ? '=' : (k == fill ? '>' : ' ');
    bar[width] = '\0';
    fprintf(stderr, "%s[%s] %ld/%ld %s  %.1f/s  %s %02d:%02d%s", p->tty ? "\r" : "", bar, p->done, p->total, p->what,
            rate, final ? "took" : "eta", (int)((final ? el : eta) / 60), (int)(final ? el : eta) % 60,
            p->tty && !final ? "" : "\n");
    fflush(stderr);
}

void progress_update(Progress *p, long done) {
    p->done = done;
    double now = avt_now();
    if (p->tty) {
        if (now - p->last < 0.1) return;
        p->last = now;
        progress_draw(p, 0);
    } else {
        int decile = p->total ? (int)(10 * done / p->total) : 10;
        if (decile == p->last_decile || done == p->total) return;
        p->last_decile = decile;
        progress_draw(p, 0);
    }
}

void progress_end(Progress *p) {
    p->done = p->total;
    progress_draw(p, 1);
}
