#!/usr/bin/env bash
# CPU benchmark, avt against the PyTorch twin (tests/reference/avt_ref.py) on the same cores in the same run:
# 1. one training step (forward + backward, base config, batch 64, T 100, dropout on);
# 2. the whole pretraining loop on the same synthetic corpus (data, masking, step, clip, BertAdam): utterances/s of
#    `avt pretrain` against the twin's loop (benchmarks/bench_pretrain_torch.py);
# 3. fine-tuning: updates of the trainer with the cross-entropy head (base config, batch 32, T 20, right-padded clips of
#    random lengths) against the twin's loop (benchmarks/bench_finetune_torch.py), in clips/s;
# 4. the throughput of `avt embed --list`.
#
# usage: benchmarks/run.sh [STEPS]        (default 100; env THREADS = cores to use, default all)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100}
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
make -s "$BUILD/avt" "$BUILD/bench_train" "$BUILD/bench_finetune" >/dev/null

echo "== training step: base config, batch 64, T 100, $STEPS steps, $THREADS threads =="
torch_blas=$("$PYTHON" - <<'PY'
import torch
torch.ones(64, 64) @ torch.ones(64, 64)
libs = {l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower()}
print(", ".join(sorted(libs)) or "none found")
PY
)
echo "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)') BLAS: $torch_blas"
echo "avt BLAS: $(ldd "$BUILD/bench_train" | awk '/openblas/ {print $3}')"
case "$torch_blas" in *openblas*) ;; *) echo "warning: PyTorch is not on OpenBLAS (apt-get install libopenblas0-pthread): the ratio flatters avt" >&2 ;; esac

avt=$("$BUILD/bench_train" --config base --batch 64 --seq 100 --steps "$STEPS" --threads "$THREADS" 2>/dev/null)
# PyTorch gets its better OpenMP wait policy of the two (libgomp's spinning can slow it down next to OpenBLAS).
t_active=$("$PYTHON" benchmarks/bench_torch.py --config base --batch 64 --seq 100 --steps "$STEPS" --threads "$THREADS")
t_passive=$(OMP_WAIT_POLICY=PASSIVE "$PYTHON" benchmarks/bench_torch.py --config base --batch 64 --seq 100 --steps "$STEPS" --threads "$THREADS")
read -r _ avt_med avt_mean <<<"$avt"
read -r _ ta_med ta_mean <<<"$t_active"
read -r _ tp_med tp_mean <<<"$t_passive"
torch_med=$(awk -v a="$ta_med" -v b="$tp_med" 'BEGIN {print (a < b) ? a : b}')
printf '%-34s %10s %10s\n' "" "median ms" "mean ms"
printf '%-34s %10s %10s\n' "avt (C, CPU)" "$avt_med" "$avt_mean"
printf '%-34s %10s %10s\n' "PyTorch twin" "$ta_med" "$ta_mean"
printf '%-34s %10s %10s\n' "PyTorch twin, OMP_WAIT_POLICY=PASSIVE" "$tp_med" "$tp_mean"
awk -v t="$torch_med" -v a="$avt_med" 'BEGIN {printf "ratio: avt is %.2fx faster than PyTorch (best PyTorch median / avt median)\n", t / a}'

echo
echo "== pretraining loop: base config, batch 64, T 100, $STEPS steps on a 300-utterance corpus, $THREADS threads =="
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" tools/make_corpus.py --out "$tmp/corpus" --utterances 300 --speakers 20 >/dev/null
"$BUILD/avt" prepare --from-csv "$tmp/corpus/metadata.csv" --out "$tmp/shards" --threads "$THREADS" 2>/dev/null
"$BUILD/avt" pretrain --config base --data "$tmp/shards" --out "$tmp/run" --batch 64 --epochs 1000 --val 0 \
    --max-steps $((STEPS + 1)) --threads "$THREADS" 2>/dev/null
# the median step time of the log, the first (warm-up) step left out
avt_ms=$(awk -F, 'NR > 2 && $3 != "" {print $6}' "$tmp/run/log.csv" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
t_active=$("$PYTHON" benchmarks/bench_pretrain_torch.py "$tmp/corpus/metadata.csv" --steps "$STEPS" --threads "$THREADS")
t_passive=$(OMP_WAIT_POLICY=PASSIVE "$PYTHON" benchmarks/bench_pretrain_torch.py "$tmp/corpus/metadata.csv" \
    --steps "$STEPS" --threads "$THREADS")
read -r _ ta_ms _ <<<"$t_active"
read -r _ tp_ms _ <<<"$t_passive"
torch_ms=$(awk -v a="$ta_ms" -v b="$tp_ms" 'BEGIN {print (a < b) ? a : b}')
printf '%-34s %10s %12s\n' "" "median ms" "utterances/s"
awk -v m="$avt_ms" 'BEGIN {printf "%-34s %10.1f %12.2f\n", "avt pretrain (C, CPU)", m, 64000 / m}'
awk -v m="$ta_ms" 'BEGIN {printf "%-34s %10.1f %12.2f\n", "PyTorch twin loop", m, 64000 / m}'
awk -v m="$tp_ms" 'BEGIN {printf "%-34s %10.1f %12.2f\n", "PyTorch twin loop, PASSIVE", m, 64000 / m}'
awk -v t="$torch_ms" -v a="$avt_ms" 'BEGIN {printf "ratio: avt pretrain is %.2fx faster than the PyTorch loop (utterances/s)\n", t / a}'

echo
echo "== fine-tuning: base config, CE head of 6 classes, batch 32, T 20 (clips of 10..20 steps), $STEPS updates, $THREADS threads =="
avt=$("$BUILD/bench_finetune" --config base --batch 32 --seq 20 --steps "$STEPS" --threads "$THREADS" 2>/dev/null)
t_active=$("$PYTHON" benchmarks/bench_finetune_torch.py --config base --batch 32 --seq 20 --steps "$STEPS" --threads "$THREADS")
t_passive=$(OMP_WAIT_POLICY=PASSIVE "$PYTHON" benchmarks/bench_finetune_torch.py --config base --batch 32 --seq 20 \
    --steps "$STEPS" --threads "$THREADS")
read -r _ avt_ms avt_cps <<<"$avt"
read -r _ ta_ms ta_cps <<<"$t_active"
read -r _ tp_ms tp_cps <<<"$t_passive"
torch_cps=$(awk -v a="$ta_cps" -v b="$tp_cps" 'BEGIN {print (a > b) ? a : b}')
printf '%-34s %10s %10s\n' "" "median ms" "clips/s"
printf '%-34s %10s %10s\n' "avt (C, CPU)" "$avt_ms" "$avt_cps"
printf '%-34s %10s %10s\n' "PyTorch twin" "$ta_ms" "$ta_cps"
printf '%-34s %10s %10s\n' "PyTorch twin, OMP_WAIT_POLICY=PASSIVE" "$tp_ms" "$tp_cps"
awk -v t="$torch_cps" -v a="$avt_cps" 'BEGIN {printf "ratio: avt fine-tunes %.2fx as many clips/s as PyTorch (avt / best PyTorch)\n", a / t}'

echo
echo "== avt embed --list: base config, 256 utterances of 25 steps (5 s), batch 8, $THREADS threads =="
"$BUILD/avt" init --config base --seed 1 --out "$tmp/base.safetensors" >/dev/null
"$PYTHON" - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
with open(f"{d}/pairs.csv", "w") as f:
    for i in range(256):
        np.save(f"{d}/a{i}.npy", rng.standard_normal((25, 512), dtype=np.float32))
        np.save(f"{d}/v{i}.npy", (5 * rng.random((25, 17))).astype(np.float32))
        f.write(f"{d}/a{i}.npy,{d}/v{i}.npy,u{i}\n")
PY
t0=$(date +%s.%N)
"$BUILD/avt" embed --weights "$tmp/base.safetensors" --list "$tmp/pairs.csv" --out "$tmp/emb" --threads "$THREADS" 2>/dev/null
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN {printf "avt embed --list: 256 utterances in %.2f s = %.1f embeddings/s (model load included)\n", b - a, 256 / (b - a)}'

echo
echo "== media features: avt prepare --layout against decoding alone and the Python pipeline, $THREADS threads =="
THREADS=$THREADS PYTHON=$PYTHON BUILD=$BUILD bash benchmarks/bench_media.sh
