// avt init: a freshly initialised model (docs/model.md §2.9) written as a safetensors checkpoint.
#include <stdio.h>
#include "tools/cli.h"

static const char *HELP =
    "usage: avt init --out WEIGHTS.safetensors [--config NAME] [overrides] [--seed S] [--head N]\n"
    "\n"
    "Writes a model initialised as the released code does (xavier-uniform attention and FFN\n"
    "weights, PyTorch defaults elsewhere), with the PyTorch state_dict key names.\n"
    "\n"
    "  --out PATH          output checkpoint (written to a temporary name, then renamed)\n"
    "  --seed S            initialisation seed (default 0)\n"
    "  --head N            add a fine-tuning head with N outputs (2d -> 16 -> ReLU -> N)\n"
    CLI_CONFIG_HELP;

int cmd_init(int argc, char **argv) {
    const char *out = NULL;
    uint64_t seed = 0;
    AvtConfig cfg = AVT_BASE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--seed")) seed = cli_u64(a, cli_value(argc, argv, &i));
        else if (cli_is(a, "--head")) cfg.n_out = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (!cli_config_flag(argc, argv, &i, &cfg)) cli_unknown("init", a);
    }
    if (!out) avt_die("init: --out is required (see avt init --help)");
    AvtModel m;
    avt_init(&m, cfg, seed);
    AvtErr err;
    if (avt_save(&m, out, &err)) avt_die("%s", err.msg);
    printf("wrote %s: embed_size %d, n_code %d, n_heads %d, %zu parameters\n", out, cfg.d, cfg.L, cfg.NH,
           params_count(&m.params));
    avt_free(&m);
    return 0;
}
