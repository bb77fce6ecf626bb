#!/usr/bin/env bash
# CPU benchmark: one pretraining training step (forward + backward, base config, batch 64, T 100, dropout on)
# of avt and of the PyTorch twin (tests/reference/avt_ref.py) on the same cores in the same run, then the
# throughput of `avt embed --list`. Prints both step times and the ratio.
#
# usage: benchmarks/run.sh [STEPS]        (default 100; env THREADS = cores to use, default all)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100}
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
make -s "$BUILD/avt" "$BUILD/bench_train" >/dev/null

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
echo "== avt embed --list: base config, 256 utterances of 25 steps (5 s), batch 8, $THREADS threads =="
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
