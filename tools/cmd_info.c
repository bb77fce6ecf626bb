// avt info: configuration, parameter count and the tensor table of a checkpoint or a named config.
#include <stdio.h>
#include <string.h>
#include "tools/cli.h"

static const char *HELP =
    "usage: avt info WEIGHTS.safetensors\n"
    "       avt info --config NAME [overrides]\n"
    "\n"
    "Prints the model configuration, the number of trainable parameters (buffers and the\n"
    "fine-tuning head are listed separately) and one line per tensor: name, shape, elements.\n"
    "\n"
    CLI_CONFIG_HELP;

static void thousands(char *buf, size_t len, size_t x) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", x), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static void print_info(const char *source, const AvtModel *m) {
    const ParamTable *pt = &m->params;
    const AvtConfig *c = &m->cfg;
    size_t total = 0, head = 0, feature = 0;
    for (int i = 0; i < pt->n; i++) {
        const Param *p = &pt->p[i];
        if (p->buffer) continue;
        if (strncmp(p->name, "head.", 5) == 0) head += p->t.size;
        else total += p->t.size;
        if (avt_param_in_fuse(p->name)) feature += p->t.size;
    }
    char n1[32], n2[32], n3[32];
    thousands(n1, sizeof n1, total);
    thousands(n2, sizeof n2, feature);
    printf("model: %s\n", source);
    printf("config: embed_size %d, n_code %d, n_heads %d, audio dim %d, video dim %d\n", c->d, c->L, c->NH, c->d_a,
           c->d_v);
    printf("parameters: %s (%.1f MB as float32)\n", n1, 4.0 * (double)total / 1e6);
    printf("used by extract_feature: %s\n", n2);
    if (c->n_out > 0) {
        thousands(n3, sizeof n3, head);
        printf("fine-tuning head: %s parameters, %d outputs\n", n3, c->n_out);
    }
    printf("\n%-60s %-16s %12s\n", "tensor", "shape", "elements");
    for (int i = 0; i < pt->n; i++) {
        const Param *p = &pt->p[i];
        char shape[64];
        int o = snprintf(shape, sizeof shape, "(");
        for (int d = 0; d < p->t.ndim; d++) o += snprintf(shape + o, sizeof shape - (size_t)o, d ? ", %d" : "%d", p->t.shape[d]);
        snprintf(shape + o, sizeof shape - (size_t)o, ")");
        thousands(n3, sizeof n3, p->t.size);
        printf("%-60s %-16s %12s%s\n", p->name, shape, n3, p->buffer ? "  (buffer)" : "");
    }
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int have_config = 0;
    AvtConfig cfg = AVT_BASE;
    for (int i = 1; i < argc; i++) {
        if (cli_help(argv[i])) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_config_flag(argc, argv, &i, &cfg)) {
            have_config = 1;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            cli_unknown("info", argv[i]);
        }
    }
    if (!path && !have_config) avt_die("info: give a checkpoint file or --config NAME (see avt info --help)");
    if (path && have_config) avt_die("info: give either a checkpoint file or --config, not both");
    AvtModel m;
    if (path) {
        AvtErr err;
        if (avt_load(&m, path, &err)) avt_die("%s", err.msg);
    } else {
        avt_init(&m, cfg, 0);
    }
    print_info(path ? path : "(config)", &m);
    avt_free(&m);
    return 0;
}
