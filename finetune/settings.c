// A fine-tuning run's settings: the defaults and settings.json (finetune/finetune.h).
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "finetune/finetune.h"

static const char *const LOSS_NAMES[] = {"ce", "mse", "ccc"};

const char *ft_loss_name(FtLoss l) { return l >= FT_LOSS_CE && l <= FT_LOSS_CCC ? LOSS_NAMES[l] : "auto"; }

// docs/protocols.md, "Defaults": the paper gives no fine-tuning hyper-parameters. BertAdam as in pretraining with
// its warmup schedule; lr 1e-4 (the pretraining rate: the upstream is trained jointly, the head is tiny); 20 epochs
// and batches of 32, which leave a CREMA-D fold (~5,400 training clips) ~3,400 updates; 100 steps (20 s) cover
// every clip of the three datasets.
FtSettings ft_defaults(void) {
    FtSettings s = {0};
    snprintf(s.group_by, sizeof s.group_by, "speaker");
    s.kind = TARGET_AUTO;
    s.folds = 5;
    s.fraction = 1.0;
    s.split_seed = 1;
    s.cfg = AVT_BASE;
    s.loss = FT_LOSS_AUTO;
    s.epochs = 20;
    s.batch = 32;
    s.seq = 100;
    s.lr = 1e-4;
    s.warmup = 0.1;
    s.weight_decay = 0.01;
    s.clip = 1.0;
    s.clip_tensor = 1.0;
    s.eps = 1e-6;
    s.beta1 = 0.9;
    s.beta2 = 0.999;
    s.seed = 1;
    return s;
}

// The fields, once, for both directions: integers, reals, 64-bit seeds (as strings: JSON numbers are doubles), text.
#define FT_INTS(X) X(kind) X(folds) X(val_groups) X(freeze) X(loss) X(epochs) X(batch) X(seq) \
    X(cfg.d_a) X(cfg.d_v) X(cfg.d) X(cfg.L) X(cfg.NH)
#define FT_REALS(X) X(fraction) X(lr) X(warmup) X(weight_decay) X(clip) X(clip_tensor) X(eps) X(beta1) X(beta2)
#define FT_SEEDS(X) X(split_seed) X(seed)
#define FT_TEXTS(X) X(data) X(target) X(group_by) X(weights)

static cJSON *settings_json(const FtSettings *s) {
    cJSON *j = cJSON_CreateObject();
    char buf[32];
#define W_INT(f) cJSON_AddNumberToObject(j, #f, (double)s->f);
#define W_REAL(f) cJSON_AddNumberToObject(j, #f, s->f);
#define W_SEED(f) snprintf(buf, sizeof buf, "%llu", (unsigned long long)s->f), cJSON_AddStringToObject(j, #f, buf);
#define W_TEXT(f) cJSON_AddStringToObject(j, #f, s->f);
    FT_INTS(W_INT)
    FT_REALS(W_REAL)
    FT_SEEDS(W_SEED)
    FT_TEXTS(W_TEXT)
    return j;
}

int ft_settings_write(const FtSettings *s, const char *path, AvtErr *err) {
    cJSON *j = settings_json(s);
    int rc = ft_write_json(path, j, err);
    cJSON_Delete(j);
    return rc;
}

int ft_settings_check(const FtSettings *s, const char *path, AvtErr *err) {
    if (access(path, F_OK) != 0) return 0;
    cJSON *old = ft_read_json(path, err);
    if (!old) return -1;
    cJSON *now = settings_json(s);
    int rc = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, now) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(old, a->string);
        if (!b || !cJSON_Compare(a, b, 1)) {
            char *va = cJSON_PrintUnformatted(a), *vb = b ? cJSON_PrintUnformatted(b) : NULL;
            rc = avt_err_set(err, "%s: the run there has %s %s, this one %s: use another --out (or --resume to "
                                  "continue it with its own settings)", path, a->string, vb ? vb : "(none)", va);
            free(va);
            free(vb);
            break;
        }
    }
    cJSON_Delete(now);
    cJSON_Delete(old);
    return rc;
}

int ft_settings_read(FtSettings *s, const char *path, AvtErr *err) {
    cJSON *j = ft_read_json(path, err);
    if (!j) return -1;
    *s = ft_defaults();
    int rc = 0;
    const cJSON *v;
#define FIELD(f) (v = cJSON_GetObjectItemCaseSensitive(j, #f))
#define BAD(f) (rc = avt_err_set(err, "%s: '%s' is missing or malformed", path, #f))
#define R_INT(f) if (!rc) { if (!cJSON_IsNumber(FIELD(f))) BAD(f); else s->f = (int)v->valuedouble; }
#define R_REAL(f) if (!rc) { if (!cJSON_IsNumber(FIELD(f))) BAD(f); else s->f = v->valuedouble; }
#define R_SEED(f) if (!rc) { if (!cJSON_IsString(FIELD(f))) BAD(f); else s->f = strtoull(v->valuestring, NULL, 10); }
#define R_TEXT(f) if (!rc) { if (!cJSON_IsString(FIELD(f)) || strlen(v->valuestring) >= sizeof s->f) BAD(f); \
                             else snprintf(s->f, sizeof s->f, "%s", v->valuestring); }
    FT_INTS(R_INT)
    FT_REALS(R_REAL)
    FT_SEEDS(R_SEED)
    FT_TEXTS(R_TEXT)
    cJSON_Delete(j);
    return rc;
}
