#!/usr/bin/env bash
# The main job, end to end on real media: a VoxCeleb2-like corpus generated from Debian packages' real speech
# and face photos (tools/make_media_corpus.sh: 60 H.264/AAC clips of 8 speakers), its features computed and
# packed by `avt prepare --layout voxceleb2` (FFmpeg decode, log-mel statistics, face tracking), pretrained
# with the paper's objective by `avt pretrain` (tiny config) until the validation loss has clearly dropped,
# then `avt features` + `avt embed` of a few clips with the trained weights. About 16 s on 2 cores once avt is built.
# Needs ffmpeg, facedetect, python3-skimage and pocketsphinx-testdata (tools/install_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D="$BUILD/demo"
rm -rf "$D"
mkdir -p "$D"
run() {
    echo "\$ $*"
    "$@"
}
t0=$SECONDS

run bash tools/make_media_corpus.sh "$D/media" 60
run "$BUILD/avt" prepare --layout voxceleb2 "$D/media" --out "$D/shards"
# 1 of the 8 speakers held out for validation; sequences of 20 steps (4 s, the clips are 2-4 s long).
run "$BUILD/avt" pretrain --config tiny --data "$D/shards" --out "$D/run" --batch 8 --seq 20 --epochs 30 \
    --lr 2e-3 --val 0.125 --val-every 25
first=$(awk -F, '$7 != "" && NR > 1 {print $7; exit}' "$D/run/log.csv")
last=$(awk -F, '$7 != "" && NR > 1 {v = $7} END {print v}' "$D/run/log.csv")
awk -v a="$first" -v b="$last" 'BEGIN {printf "validation loss %.4f -> %.4f (%.0f%% lower)\n", a, b, 100 * (1 - b / a)}'
echo "loss curve: $D/run/loss.png, log: $D/run/log.csv"

# Features of one clip of each of 4 speakers (avt features), embedded with the trained weights (avt embed).
ckpt=$(ls -d "$D"/run/ckpt-* | tail -1)
mkdir -p "$D/features"
: >"$D/pairs.csv"
for spk in $(find "$D/media" -mindepth 3 -maxdepth 3 -type d -name 'id*' | LC_ALL=C sort | head -4); do
    clip=$(find "$spk" -name '*.mp4' | LC_ALL=C sort | head -1)
    name=$(basename "$spk")_$(basename "$(dirname "$clip")")_$(basename "$clip" .mp4)
    run "$BUILD/avt" features "$clip" --out "$D/features/$name"
    echo "$D/features/$name.audio.npy,$D/features/$name.video.npy,$name" >>"$D/pairs.csv"
done
run "$BUILD/avt" embed --weights "$ckpt/model.safetensors" --list "$D/pairs.csv" --out "$D/embeddings"
# Every utterance of the corpus store, embedded with the same weights (index.csv joins them to labels.csv by id).
run "$BUILD/avt" embed --weights "$ckpt/model.safetensors" --data "$D/shards" --out "$D/embeddings_all"
echo "demo finished in $((SECONDS - t0)) s"
