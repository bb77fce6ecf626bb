#!/usr/bin/env bash
# The main job on a small built-in default: a synthetic pretraining corpus in the paper's file formats
# (tools/make_corpus.py: 300 utterances of 20 speakers, TRILL-style audio CSV + OpenFace 2.x CSV, VoxCeleb2-like
# tree), packed by `avt prepare`, pretrained with the paper's objective by `avt pretrain` (tiny config) until the
# validation loss has clearly dropped, then `avt embed` with the trained weights.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
D="$BUILD/demo"
rm -rf "$D"
mkdir -p "$D"
run() {
    echo "\$ $*"
    "$@"
}

run "$PYTHON" tools/make_corpus.py --out "$D/corpus" --utterances 300 --speakers 20
run "$BUILD/avt" prepare --from-csv "$D/corpus/metadata.csv" --out "$D/shards"
run "$BUILD/avt" pretrain --config tiny --data "$D/shards" --out "$D/run" --batch 32 --epochs 30 --lr 2e-3 \
    --val-every 50
first=$(awk -F, '$7 != "" && NR > 1 {print $7; exit}' "$D/run/log.csv")
last=$(awk -F, '$7 != "" && NR > 1 {v = $7} END {print v}' "$D/run/log.csv")
awk -v a="$first" -v b="$last" 'BEGIN {printf "validation loss %.4f -> %.4f (%.0f%% lower)\n", a, b, 100 * (1 - b / a)}'
echo "loss curve: $D/run/loss.png, log: $D/run/log.csv"

# Embed a few utterances of the corpus with the trained weights.
ckpt=$(ls -d "$D"/run/ckpt-* | tail -1)
awk -F, 'NR > 1 && NR <= 9 {n = $1; sub(/\.csv$/, "", n); gsub(/\//, "_", n); print $1 "," $2 "," n}' \
    "$D/corpus/metadata.csv" | sed "s|^|$D/corpus/|; s|,|,$D/corpus/|" >"$D/pairs.csv"
run "$BUILD/avt" embed --weights "$ckpt/model.safetensors" --list "$D/pairs.csv" --out "$D/embeddings"
