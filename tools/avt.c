// avt: the command-line front end. One file per subcommand (cmd_*.c).
#include <stdio.h>
#include <string.h>
#include "tools/cli.h"

static const char *USAGE =
    "avt: the audio-visual Transformer of Tran & Soleymani (ICASSP 2022) in C\n"
    "\n"
    "usage: avt <command> [options]     (avt <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  info      print a checkpoint's (or a config's) configuration, parameter count and tensor table\n"
    "  init      write a freshly initialised model as a safetensors checkpoint\n"
    "  embed     turn audio/video feature files into utterance embeddings (.npy)\n"
    "  features  the model's inputs (log-mel statistics, face descriptor) from one media file, --plot draws them\n"
    "  prepare   pack a pretraining corpus (the paper's metadata CSV) into a sharded store\n"
    "  pretrain  masked-frame pretraining on a corpus store (mpirun -np N for data parallel)\n"
    "  finetune  fine-tune and evaluate on a labelled store under group K-fold cross-validation\n"
    "  table     the paper's table: scratch vs pretrained x label fractions x seeds x folds\n";

int main(int argc, char **argv) {
    if (argc < 2) avt_die("no command given (commands: info, init, embed, features, prepare, pretrain, finetune, table; see avt --help)");
    const char *cmd = argv[1];
    if (cli_help(cmd) || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(cmd, "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "init") == 0) return cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "embed") == 0) return cmd_embed(argc - 1, argv + 1);
    if (strcmp(cmd, "pretrain") == 0) return cmd_pretrain(argc - 1, argv + 1);
    if (strcmp(cmd, "features") == 0) return cmd_features(argc - 1, argv + 1);
    if (strcmp(cmd, "prepare") == 0) return cmd_prepare(argc - 1, argv + 1);
    if (strcmp(cmd, "finetune") == 0) return cmd_finetune(argc - 1, argv + 1);
    if (strcmp(cmd, "table") == 0) return cmd_table(argc - 1, argv + 1);
    avt_die("unknown command '%s' (commands: info, init, embed, features, prepare, pretrain, finetune, table; see avt --help)", cmd);
}
