#!/usr/bin/env bash
# Media feature extraction speed: `avt prepare --layout` against decoding alone and against the Python pipeline, on
# the same files and the same cores.
#   media set   N_VOX VoxCeleb2-like MP4s (H.264 224x224 25 fps + AAC 16 kHz, 3 s) and N_CREMA CREMA-D-like FLVs
#               (flv1 480x360 30 fps + MP3 44.1 kHz, 3 s), copies of tests/fixtures.sh's two clips, laid out as a
#               voxceleb2 tree (ROOT/vox/dev/mp4/idNNNNN/VID/NNNNN.mp4) and a cremad tree (ROOT/crema/VideoFlash/).
#   decode      the ffmpeg program decoding every file's audio and video and discarding them
#               (ffmpeg -v error -threads 1 -i F -f null -), THREADS files at a time (xargs -P): the floor.
#   decode/tree the same, one ffmpeg per dataset tree over all its files (-f concat), two at a time: the decoding
#               work without the per-file process starts (avt also runs one process per tree).
#   avt         avt prepare --layout voxceleb2 and --layout cremad, --threads THREADS (its .cache removed before each
#               run, so every file is decoded and computed); process start and cascade load included.
#   python      benchmarks/bench_media_py.py: ffmpeg-decoded 16 kHz audio -> torchaudio kaldi.fbank -> numpy pooling,
#               cv2.VideoCapture decoding every frame; the frame of each 200 ms step -> grayscale ->
#               CascadeClassifier(lbpcascade_frontalface_improved).detectMultiScale with avt's minimum face size
#               (a fifth of the frame height), over THREADS processes (interpreter start and imports excluded).
#   detector    the face detector alone on one 480x360 frame of the FLV, whole-frame scans (scale 1.1, 3 neighbours,
#               no minimum size), one thread: build/bench_cascade against cv2.CascadeClassifier.detectMultiScale with
#               cv2.setNumThreads(1), best of 5 rounds of 10. (In prepare the detector mostly scans only the region
#               around the face track, data/media/face.h: the Python pipeline scans whole frames.)
# Each is run REPEAT times (default 3, interleaved) and its best wall time kept. Throughput: seconds of media
# (ffprobe durations, summed) per wall second per core (/ THREADS). For reference, not in the ratios: the ffmpeg program's start alone
# (ffmpeg -version, run the same way), which is most of "decode alone" on 3 s clips. The load average before the run
# is printed: other work on the machine slows all rows.
# Needs what tests/fixtures.sh needs (else one "skipped" line, exit 0); the Python row needs torch, torchaudio and
# cv2 (python3-torchaudio, python3-opencv, opencv-data), else it is skipped.
#
# usage: benchmarks/bench_media.sh     (env THREADS = cores, default all; N_VOX (12), N_CREMA (6), REPEAT (3))
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-$(nproc)}
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD=${BUILD:-build}
N_VOX=${N_VOX:-12}
N_CREMA=${N_CREMA:-6}
REPEAT=${REPEAT:-3}
AVT=$BUILD/avt
make -s "$AVT" "$BUILD/bench_cascade" >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CASCADE=/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml
[ -r "$CASCADE" ] || { echo "media benchmark skipped: $CASCADE missing (apt-get install opencv-data)"; exit 0; }
if ! why=$(bash tests/fixtures.sh "$tmp/fx" 2>&1 >/dev/null); then
    echo "media benchmark skipped: $why"
    exit 0
fi
src_mp4=$tmp/fx/vox2/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4
src_flv=$tmp/fx/1001_DFA_ANG_XX.flv
emotions=(ANG DIS FEA HAP NEU SAD)
for ((i = 0; i < N_VOX; i++)); do
    d=$tmp/media/vox/dev/mp4/$(printf 'id%05d' $((10 + i % 4)))/vid$((i / 4))
    mkdir -p "$d"
    cp "$src_mp4" "$d/$(printf '%05d' $((i + 1))).mp4"
done
mkdir -p "$tmp/media/crema/VideoFlash"
for ((i = 0; i < N_CREMA; i++)); do
    cp "$src_flv" "$tmp/media/crema/VideoFlash/$((1001 + i / 6))_DFA_${emotions[i % 6]}_XX.flv"
done
find "$tmp/media" -type f \( -name '*.mp4' -o -name '*.flv' \) | sort >"$tmp/files"
n_files=$(wc -l <"$tmp/files")
for l in vox crema; do grep "/media/$l/" "$tmp/files" | sed "s/'/'\\\\''/g; s/^/file '/; s/\$/'/" >"$tmp/$l.list"; done
media_s=$(while read -r f; do ffprobe -v error -show_entries format=duration -of csv=p=0 "$f"; done <"$tmp/files" |
    awk '{s += $1} END {printf "%.3f", s}')

now() { date +%s.%N; }

run_decode() {
    local t0 t1
    t0=$(now)
    xargs -P "$THREADS" -I{} ffmpeg -nostdin -v error -threads 1 -i {} -f null - <"$tmp/files"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}
# the same decoding in one ffmpeg per dataset tree (the concat demuxer), as avt runs one process per tree: the
# decoding work itself, without the per-file process starts
run_decode_concat() {
    local t0 t1 pids=() p
    t0=$(now)
    for l in vox crema; do
        ffmpeg -nostdin -v fatal -threads 1 -f concat -safe 0 -i "$tmp/$l.list" -f null - &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}
run_start() {
    local t0 t1
    t0=$(now)
    xargs -P "$THREADS" -I{} ffmpeg -nostdin -v error -version <"$tmp/files" >/dev/null
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}
run_avt() {
    local t0 t1
    rm -rf "$tmp/shards_vox" "$tmp/shards_crema"
    t0=$(now)
    "$AVT" prepare --layout voxceleb2 "$tmp/media/vox" --out "$tmp/shards_vox" --threads "$THREADS" 2>"$tmp/avt.log" ||
        { cat "$tmp/avt.log" >&2; exit 1; }
    "$AVT" prepare --layout cremad "$tmp/media/crema" --out "$tmp/shards_crema" --threads "$THREADS" 2>"$tmp/avt.log" ||
        { cat "$tmp/avt.log" >&2; exit 1; }
    t1=$(now)
    # every file must have been computed and stored (labels.csv: a header and one row per utterance)
    if [ "$(cat "$tmp/shards_vox/labels.csv" "$tmp/shards_crema/labels.csv" | wc -l)" != $((n_files + 2)) ]; then
        echo "bench_media.sh: avt prepare stored fewer utterances than the $n_files files" >&2
        exit 1
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}
run_py() {
    # shellcheck disable=SC2046
    "$PYTHON" benchmarks/bench_media_py.py --threads "$THREADS" $(cat "$tmp/files") | awk '{print $3}'
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
have_py=1
"$PYTHON" -c 'import cv2, torch, torchaudio' 2>/dev/null || have_py=0
# the three are interleaved, round by round, so that load from other work falls on each alike
t_start=1e9 t_dec=1e9 t_cat=1e9 t_avt=1e9 t_py=1e9
min() { awk -v a="$1" -v b="$2" 'BEGIN {print (a < b) ? a : b}'; }
for ((r = 0; r < REPEAT; r++)); do
    t=$(run_start); t_start=$(min "$t_start" "$t")
    t=$(run_decode); t_dec=$(min "$t_dec" "$t")
    t=$(run_decode_concat); t_cat=$(min "$t_cat" "$t")
    t=$(run_avt); t_avt=$(min "$t_avt" "$t")
    if [ "$have_py" = 1 ]; then t=$(run_py); t_py=$(min "$t_py" "$t"); fi
done
[ "$have_py" = 1 ] || t_py=0

echo "$n_files files ($N_VOX MP4 224x224 25 fps, $N_CREMA FLV 480x360 30 fps), $media_s s of media, $THREADS threads," \
    "best of $REPEAT; load average before: $load"
printf '%-44s %9s %22s\n' "" "wall s" "media s / s / core"
row() { awk -v n="$1" -v t="$2" -v m="$media_s" -v c="$THREADS" 'BEGIN {printf "%-44s %9.3f %22.2f\n", n, t, m / t / c}'; }
row "decode alone (ffmpeg -f null, xargs -P)" "$t_dec"
awk -v t="$t_start" 'BEGIN {printf "%-44s %9.3f\n", "  of which ffmpeg process start (-version)", t}'
row "decode alone, one ffmpeg per tree (concat)" "$t_cat"
row "avt prepare --layout" "$t_avt"
if [ "$have_py" = 1 ]; then row "Python (torchaudio fbank + cv2 cascade)" "$t_py"
else echo "Python pipeline skipped: $PYTHON lacks cv2, torch or torchaudio"; fi
ffmpeg -nostdin -v error -i "$src_flv" -vf 'select=eq(n\,30),format=gray' -frames:v 1 "$tmp/frame.pgm"
read -r _ det_avt _ < <(OMP_NUM_THREADS=1 "$BUILD/bench_cascade" "$tmp/frame.pgm" "$CASCADE" 0 5)
det_cv=0
if [ "$have_py" = 1 ]; then
    det_cv=$("$PYTHON" - "$tmp/frame.pgm" "$CASCADE" <<'PY'
import sys, time
import cv2
cv2.setNumThreads(1)
gray = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)
det = cv2.CascadeClassifier(sys.argv[2])
best = float("inf")
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(10):
        det.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3)
    best = min(best, (time.perf_counter() - t0) / 10)
print(f"{best * 1e3:.3f}")
PY
)
fi
printf '%-44s %9s\n' "face detector, one 480x360 frame, 1 thread" "ms/scan"
printf '%-44s %9.2f\n' "  avt (data/media/cascade.c)" "$det_avt"
[ "$have_py" = 1 ] && printf '%-44s %9.2f\n' "  OpenCV detectMultiScale" "$det_cv"
awk -v d="$t_dec" -v t="$t_cat" -v a="$t_avt" -v p="$t_py" -v e="$det_avt" -v c="$det_cv" 'BEGIN {
    printf "ratio: avt takes %.2fx the time of decoding alone (target <= 1.5x)\n", a / d
    printf "ratio: avt takes %.2fx the time of the decoding work alone (one ffmpeg per tree)\n", a / t
    if (p > 0) printf "ratio: avt is %.2fx faster than the Python pipeline (target >= 3x)\n", p / a
    if (c > 0) printf "ratio: the detector alone is %.2fx faster than OpenCV on one frame\n", c / e
}'
