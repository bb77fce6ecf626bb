// Shared pieces of the avt subcommands: flag parsing, config flags, progress bar.
#ifndef AVT_CLI_H
#define AVT_CLI_H

#include <stdint.h>
#include "finetune/finetune.h"
#include "models/avt.h"

int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_table(int argc, char **argv);

// argv[*i] is a flag that takes a value: return the value and advance, or die naming the flag.
const char *cli_value(int argc, char **argv, int *i);
int cli_int(const char *flag, const char *v, int lo, int hi);
uint64_t cli_u64(const char *flag, const char *v);
double cli_real(const char *flag, const char *v, double lo, double hi);
int cli_is(const char *arg, const char *flag);   // exact flag match
int cli_help(const char *arg);                   // -h / --help
AVT_NORETURN void cli_unknown(const char *cmd, const char *arg);

// --config NAME and the per-field overrides; returns 1 if argv[*i] was one of them (consumed).
int cli_config_flag(int argc, char **argv, int *i, AvtConfig *cfg);
AvtConfig cli_config_named(const char *name);    // base | large | tiny | FILE.json; dies otherwise
#define CLI_CONFIG_HELP \
    "  --config NAME       base (d 240, 4 layers, 10 heads), large (384, 8, 12), tiny (24, 2, 4), or a JSON\n" \
    "                      file with embed_size, n_code, n_heads (as the authors' config/*.json)\n" \
    "  --embed-size D      override embed_size (even, divisible by the heads)\n" \
    "  --layers L          override n_code (layers in every encoder)\n" \
    "  --heads H           override n_heads\n" \
    "  --audio-dim N       audio feature width (512)\n" \
    "  --video-dim N       video feature width (17)\n"

// The fine-tuning flags that avt finetune and avt table share (tools/cmd_finetune.c); 1 if argv[*i] was one.
int cli_finetune_flag(int argc, char **argv, int *i, FtSettings *s);
#define CLI_FINETUNE_HELP \
    "  --data DIR          corpus store written by avt prepare, with its labels.csv\n" \
    "  --target COLS       labels.csv column(s): one non-numeric column = classes (its values, sorted), numeric\n" \
    "                      columns = regression, one output each (e.g. emotion; arousal,valence,dominance)\n" \
    "  --task KIND         classes, values or auto (default: from the column's values)\n" \
    "  --group-by COL      group column of the folds: no group is in two of a fold's sides (default speaker;\n" \
    "                      MSP-IMPROV: session)\n" \
    "  --folds K           group K-fold cross-validation (default 5; MSP-IMPROV leave-one-session-out: 6)\n" \
    "  --val-groups N      groups of each training side held out for model selection (default 10 %, >= 1)\n" \
    "  --train-fraction F  the low-resource protocol: keep F of each fold's training and validation clips,\n" \
    "                      stratified by class, nested across F for one seed; the test clips stay (default 1)\n" \
    "  --split-seed S      the folds and validation groups (default 1)\n" \
    "  --weights W         start from a pretrained checkpoint (a head is added); without it: from scratch\n" \
    CLI_CONFIG_HELP \
    "  --freeze            train the head only (the upstream as a fixed feature extractor)\n" \
    "  --loss ce|mse|ccc   cross-entropy (classes), MSE or 1 - CCC averaged over the targets (default: ce for\n" \
    "                      classes, ccc for values)\n" \
    "  --epochs N          (default 20)   --batch N (default 32)   --lr X (default 1e-4, BertAdam, 10 % warmup)\n" \
    "  --seq T             steps read per clip, right-padded (default 100)\n" \
    "  --warmup X, --weight-decay X, --clip X   as avt pretrain (defaults 0.1, 0.01, 1.0)\n" \
    "  --seed S            initialisation, dropout, clip order, the label fraction (default 1)\n"

void cli_set_threads(int n);                     // OpenMP and OpenBLAS; n <= 0 keeps the defaults

// --device NAME and --attention PATH; returns 1 if argv[*i] was one of them (consumed).
int cli_device_flag(int argc, char **argv, int *i, const char **device);
const Backend *cli_backend(const char *device);  // the backend, or one line saying why not and exit 1
#define CLI_DEVICE_HELP \
    "  --device NAME       cpu (default) or cuda (a build with nvcc, or the emulator with make EMU=1)\n" \
    "  --attention PATH    avt (our kernels, default) or cudnn (cuDNN SDPA baseline; cuda, inference only)\n"

// A one-line progress bar on stderr (redrawn in place on a terminal, every 10 % otherwise).
typedef struct {
    const char *what;
    long total, done;
    double t0, last;
    int tty, last_decile;
} Progress;
void progress_start(Progress *p, const char *what, long total);
void progress_update(Progress *p, long done);
void progress_end(Progress *p);
// Creates dir if missing; one line and exit if that fails or dir exists as something else.
void cli_make_dir(const char *dir);

#endif
