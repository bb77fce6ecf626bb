#!/usr/bin/env bash
# The fine-tuning main job, end to end on real media at small scale (`make table`):
#   1. a labelled emotion corpus in CREMA-D's layout and naming, generated from Debian packages' real speech and face
#      photos, each clip "acted" in one of six emotions by documented changes of the voice and the face video
#      (tools/make_emotion_corpus.sh: 180 clips of 6 actors), prepared by `avt prepare --layout cremad`;
#   2. the tiny model pretrained (2,000 updates) on the unlabelled VoxCeleb2-like corpus of `make demo`
#      (tools/make_media_corpus.sh), with the paper's objective;
#   3. `avt table`: from scratch against pretrained, with 100 % and 10 % of the training labels, 2 seeds, 3
#      actor-independent folds; prints table.md (table.png beside it).
# A generated stand-in, not CREMA-D: its numbers prove the pipeline and say nothing about the paper's.
# Needs what `make demo` needs (tools/install_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D="$BUILD/table"
rm -rf "$D"
mkdir -p "$D"
run() {
    echo "\$ $*"
    "$@"
}
t0=$SECONDS

run bash tools/make_emotion_corpus.sh "$D/emotion" 180
run "$BUILD/avt" prepare --layout cremad "$D/emotion" --out "$D/emotion_shards"
run bash tools/make_media_corpus.sh "$D/vox" 60
run "$BUILD/avt" prepare --layout voxceleb2 "$D/vox" --out "$D/vox_shards"
# 2,000 updates: with `make demo`'s 150 the last step's representation has barely begun to differ between clips
# (its spread over the emotion clips is 0.004 against 0.25 at initialisation), and fine-tuning from it loses to
# scratch; after 2,000 it is 0.29.
run "$BUILD/avt" pretrain --config tiny --data "$D/vox_shards" --out "$D/pretrain" --batch 8 --seq 20 --epochs 400 \
    --lr 1e-3 --val 0.125 --val-every 500 2>&1 | tail -2
ckpt=$(ls -d "$D"/pretrain/ckpt-* | tail -1)
# 2 inits x 2 fractions x 2 seeds x 3 folds = 24 fine-tuning runs of the tiny model.
run "$BUILD/avt" table --data "$D/emotion_shards" --target emotion --pretrained "$ckpt/model.safetensors" \
    --out "$D/runs" --folds 3 --seeds 2 --fractions 1,0.1 --epochs 15 --batch 16 --lr 2e-3 --seq 20
echo "table: $D/runs/table.md, $D/runs/table.csv, $D/runs/table.png; per run: $D/runs/<init>-f<fraction>-s<seed>/"
echo "make table finished in $((SECONDS - t0)) s"
