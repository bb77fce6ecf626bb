#!/usr/bin/env bash
# A first real run on a small built-in default: a base-config model (fresh initialisation; convert the released
# base.pt with tools/pt_to_safetensors.py for real embeddings), feature files in the paper's formats (a TRILL-style
# audio CSV and an OpenFace 2.x CSV, synthetic values), and avt embed on one pair and on a list of pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
D="$BUILD/demo"
mkdir -p "$D"
"$BUILD/avt" init --config base --seed 0 --out "$D/base.safetensors"
"$BUILD/avt" info "$D/base.safetensors" | sed -n 1,5p
"$PYTHON" tools/make_demo_features.py --out "$D" --count 16
echo
echo "\$ avt embed --weights $D/base.safetensors --audio $D/utt00.audio.csv --video $D/utt00.openface.csv --out $D/utt00.npy"
"$BUILD/avt" embed --weights "$D/base.safetensors" --audio "$D/utt00.audio.csv" --video "$D/utt00.openface.csv" \
    --out "$D/utt00.npy"
"$PYTHON" -c "import numpy as np; e = np.load('$D/utt00.npy'); print('utt00.npy:', e.shape, e.dtype, 'first values', np.round(e[:4], 4))"
echo
echo "\$ avt embed --weights $D/base.safetensors --list $D/pairs.csv --out $D/embeddings"
"$BUILD/avt" embed --weights "$D/base.safetensors" --list "$D/pairs.csv" --out "$D/embeddings"
