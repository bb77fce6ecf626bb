#!/usr/bin/env bash
# Generates a VoxCeleb2-like media corpus from real speech and real face photos of Debian packages, with the
# ffmpeg program (the input of `avt prepare --layout voxceleb2 OUT`):
#
#   tools/make_media_corpus.sh OUT [N]     N clips (default 60) under OUT/{dev,test}/mp4/idNNNNN/VIDEOID/NNNNN.mp4
#
# Speakers (8, or fewer when N < 16): each is one of the face photos (Grace Hopper from facedetect's examples,
# the astronaut Eileen Collins from python3-skimage's data) with its own crop, mirror, colour and brightness,
# and its own voice: the speech pitched by a speaker-specific factor (0.82-1.2). The last speaker is filed
# under test/, the others under dev/. Each clip is a 2-4 s segment at a random offset of the concatenated
# speech of pocketsphinx-testdata (10 WAVs, 16 kHz mono, about 35 s); its video is the speaker's face with a
# slow random zoom and pan (so frames differ), H.264 224x224 25 fps + AAC 16 kHz mono, like VoxCeleb2's MP4s.
# Deterministic for a SEED (environment, default 1); THREADS (environment, default: all cores) ffmpeg
# processes run in parallel. OUT is replaced. Exits 2 with one line naming what is missing.
set -euo pipefail
PROG=make_media_corpus.sh
# shellcheck source=tools/media_corpus_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/media_corpus_lib.sh"

if [ "${1:-}" = --clip ]; then # internal: one clip (run in parallel by xargs)
    # pool photo crop_x crop_y crop_size flip hue sat bright pitch start dur zoom0 dzoom px py out
    shift
    read -r pool photo cx cy cs flip hue sat bright pitch start dur z0 dz px py out <<<"$*"
    mirror=""
    [ "$flip" = 1 ] && mirror="hflip,"
    frames=$(awk -v d="$dur" 'BEGIN {printf "%d", d * 25 + 0.5}')
    mkdir -p "$(dirname "$out")"
    ff -i "$photo" -ss "$start" -t "$dur" -i "$pool" -filter_complex \
        "[0:v]crop=$cs:$cs:$cx:$cy,${mirror}scale=448:448,hue=h=$hue:s=$sat:b=$bright,loop=loop=-1:size=1,setpts=N/25/TB,zoompan=z='$z0+$dz*on':x='iw/2-iw/zoom/2+$px*on':y='ih/2-ih/zoom/2+$py*on':d=1:s=224x224:fps=25,format=yuv420p[v];[1:a]asetrate=16000*$pitch,aresample=16000,atempo=1/$pitch[a]" \
        -map "[v]" -map "[a]" -frames:v "$frames" -c:v libx264 -preset ultrafast -r 25 \
        -c:a aac -ar 16000 -ac 1 -t "$dur" "$out"
    exit 0
fi

out=${1:?usage: make_media_corpus.sh OUT [N]}
n=${2:-60}
seed=${SEED:-1}
threads=${THREADS:-$(nproc 2>/dev/null || echo 2)}

media_check_deps libx264 aac
[ "$n" -ge 1 ] 2>/dev/null || need "N must be a positive number of clips"

rm -rf "$out"
mkdir -p "$out/.work"
pool="$out/.work/speech.wav" # all the speech, end to end: clips are segments of it at random offsets
total=$(media_speech_pool "$pool")

speakers=8
[ "$n" -lt 16 ] && speakers=$(((n + 1) / 2))
# The job list: one line of --clip arguments per clip, drawn from awk's generator seeded with SEED.
awk -v n="$n" -v S="$speakers" -v seed="$seed" -v total="$total" -v pool="$pool" -v out="$out" \
    -v hopper="${PHOTO[0]}" -v astro="${PHOTO[1]}" -v fx0="${FACE_X[0]}" -v fy0="${FACE_Y[0]}" \
    -v fmin0="${FACE_MIN[0]}" -v fx1="${FACE_X[1]}" -v fy1="${FACE_Y[1]}" -v fmin1="${FACE_MIN[1]}" 'BEGIN {
    srand(seed)
    abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # face centre (x, y) and the smallest crop that holds the face, per photo
    photo[0] = hopper; fx[0] = fx0; fy[0] = fy0; fmin[0] = fmin0
    photo[1] = astro;  fx[1] = fx1; fy[1] = fy1; fmin[1] = fmin1
    for (s = 0; s < S; s++) {
        p = s % 2
        id[s] = sprintf("id%05d", 10 + s * 97 + int(rand() * 90))
        ph[s] = photo[p]
        cs[s] = int(fmin[p] + rand() * (512 - fmin[p]))
        cx[s] = int(fx[p] - cs[s] / 2 + (rand() - 0.5) * cs[s] * 0.2)
        cy[s] = int(fy[p] - cs[s] / 2 + (rand() - 0.5) * cs[s] * 0.2)
        if (cx[s] < 0) cx[s] = 0; if (cx[s] > 512 - cs[s]) cx[s] = 512 - cs[s]
        if (cy[s] < 0) cy[s] = 0; if (cy[s] > 512 - cs[s]) cy[s] = 512 - cs[s]
        flip[s] = int(s / 2) % 2
        hue[s] = sprintf("%.0f", (rand() - 0.5) * 60)
        sat[s] = sprintf("%.2f", 0.6 + rand() * 0.8)
        bright[s] = sprintf("%.2f", (rand() - 0.5) * 1.2)
        pitch[s] = sprintf("%.3f", 0.82 + (s + rand() * 0.5) * 0.4 / S)
        spl[s] = (s == S - 1 && S > 1) ? "test" : "dev"
        vid[s] = ""; nv[s] = 0; nc[s] = 0
    }
    for (c = 0; c < n; c++) {
        s = c % S
        if (nc[s] % 3 == 0) {   # a new "video" every 3 clips
            v = ""
            for (k = 0; k < 11; k++) v = v substr(abc, 1 + int(rand() * 64), 1)
            vid[s] = v; clip = 0
        }
        nc[s]++
        cl[s]++
        dur = sprintf("%.2f", 2 + rand() * 2)
        start = sprintf("%.2f", rand() * (total - dur))
        z0 = sprintf("%.3f", 1 + rand() * 0.15)
        dz = sprintf("%.4f", (0.5 + rand()) * 0.003 * (rand() < 0.5 ? 1 : -0.3))
        px = sprintf("%.2f", (rand() - 0.5) * 1.2)
        py = sprintf("%.2f", (rand() - 0.5) * 1.2)
        printf "%s %s %d %d %d %d %s %s %s %s %s %s %s %s %s %s %s/%s/mp4/%s/%s/%05d.mp4\n", pool, ph[s], cx[s], cy[s],
            cs[s], flip[s], hue[s], sat[s], bright[s], pitch[s], start, dur, z0, dz, px, py, out, spl[s], id[s],
            vid[s], cl[s]
    }
}' >"$out/.work/jobs.txt"
xargs -P "$threads" -L 1 bash "$0" --clip <"$out/.work/jobs.txt"
rm -rf "$out/.work"
got=$(find "$out" -name '*.mp4' | wc -l)
[ "$got" = "$n" ] || { echo "make_media_corpus.sh: made $got of $n clips" >&2; exit 1; }
echo "make_media_corpus.sh: $n clips of $speakers speakers under $out"
