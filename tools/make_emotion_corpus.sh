#!/usr/bin/env bash
# Generates a small labelled emotion corpus in CREMA-D's layout and naming from real speech and real face photos of
# Debian packages, with the ffmpeg program (the input of `avt prepare --layout cremad OUT`): a stand-in for CREMA-D
# on which fine-tuning can be run and checked end to end. The emotions are "acted" by the deterministic audio and
# video effects of the recipe below, not by people: what a model learns from it says nothing about real emotion.
#
#   tools/make_emotion_corpus.sh OUT [N]   N clips (default 180) as OUT/VideoFlash/ActorID_Sentence_Emotion_XX.flv
#                                          and OUT/AudioWAV/<the same name>.wav
#
# Actors: 1001..(1000 + A), A = ACTORS (environment), by default N / 8 clamped to 1..6 (so 6 for N >= 48, 3 for
# N = 24), raised where needed so that every name is unique (at most 72 per actor: 12 sentences x 6 emotions). Each
# is one of the face photos (Grace Hopper from facedetect's examples, the astronaut Eileen Collins from
# python3-skimage's data) with its own 4:3 crop, mirror, colour and brightness, and its own voice: the speech
# pitched by an actor-specific factor (0.92-1.08, narrower than make_media_corpus.sh's so that the emotions' pitch
# stands out). Clip c is actor c mod A's, emotion number (c div A) mod 6 of ANG DIS FEA HAP NEU SAD (balanced per
# actor), sentence one of CREMA-D's 12 (IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI WSI; none repeated per actor
# and emotion), level XX.
# Each clip is a 2-3 s segment at a random offset of the concatenated speech of pocketsphinx-testdata (10 WAVs,
# 16 kHz mono, about 35 s; each WAV first scaled to a mean volume of -30 dBFS, so that loudness is the recipe's),
# spoken by the actor in the clip's emotion. Its video is the actor's face, still but for the recipe's motion.
#
# The recipe (an emotion's effect is scaled per clip by a random intensity j in 0.7-1.3: a factor f becomes f^j,
# an amount x becomes x j, a zoom z becomes 1 + (z - 1) j; NEU has none):
#
#   emo | voice                                          | face video
#       | pitch  tempo  volume  tremolo     treble       | zoom  zoom/frame  pan px/frame   shake          bright contr gamma
#   ----+------------------------------------------------+------------------------------------------------------------------
#   ANG | x1.12  x1.20  +8 dB   -           +3 dB        | 1.45  +0.004      1.2 x, +-      x 3 px, 3 Hz   -0.05  x1.6  x0.8
#   DIS | x0.92  x0.85  +3 dB   -           -3 dB        | 1.20  0           1.0 x, +-      -              -0.05  x0.8  x1.3
#   FEA | x1.12  x1.08  -3 dB   7 Hz, 0.7   0            | 1.25  -0.003      0              x 5 px, 7 Hz   +0.05  x1.3  x0.7
#   HAP | x1.18  x1.05  +4 dB   -           +8 dB        | 1.30  +0.001      0              y 6 px, 1.5 Hz +0.15  x1.15 x0.75
#   NEU | x1     x1     0       -           0            | 1.15  0           0              -              0      x1    x1
#   SAD | x0.85  x0.78  -10 dB  -           -4 dB        | 1.10  0           0.5 y (down)   -              -0.15  x0.7  x1.4
#
#   voice: pitch by asetrate (a speed-up that raises the pitch and the formants), tempo by atempo (the segment
#   taken is tempo x the clip's duration long, so every clip lasts its drawn duration), volume by volume, tremolo by
#   tremolo (frequency, depth), treble by treble (shelf at 3 kHz: brighter or duller).
#   face video (zoompan over the actor's 640x480 picture, to 320x240): zoom level, zoom speed (per frame), pan
#   speed (px of the 640x480 picture per frame, along x in a direction random per clip (+-), or y), shake (a
#   sinusoidal offset: axis, amplitude, frequency; HAP's is a nod), and eq brightness, contrast and gamma of the
#   picture. Every clip also gets a small random zoom (+-0.05) and drift (+-0.2 px per frame), emotion or not.
#   The face descriptor avt computes normalises its crop (zero mean, unit variance, size-tracked), so it sees
#   brightness and contrast mostly through clipping and gamma, and motion through the tracker's lag.
#
# Output: FLV with Sorenson H.263 (flv1, CREMA-D's codec) 320x240 30 fps + MP3 44.1 kHz mono, and the same audio
# as a 16 kHz mono s16 WAV (CREMA-D's AudioWAV, which `avt prepare --layout cremad` takes instead of the FLV's).
# Deterministic for a SEED (environment, default 1): the same bytes whatever THREADS (environment, default: all
# cores), the number of ffmpeg processes run in parallel (each makes a batch of up to 6 clips). 180 clips take about
# 20 s on 2 cores. OUT (no white space in it) is replaced. Exits 2 with one line naming what is missing.
set -euo pipefail
PROG=make_emotion_corpus.sh
# shellcheck source=tools/media_corpus_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/media_corpus_lib.sh"

if [ "${1:-}" = --clips ]; then # internal: a batch of clips in one ffmpeg process (batches run in parallel by xargs)
    # per clip, 8 arguments: pool photo start source_seconds video_filter audio_filter out name. The filters end
    # both streams at the clip's duration (the picture looped so many times, the audio padded and cut): an output's
    # -t or -frames:v would cut the MP3 where the process's interleaving of its outputs happens to be, so that a
    # clip's bytes would depend on its batch.
    shift
    args=() outs=() graph="" i=0
    while [ $# -ge 8 ]; do
        pool=$1 photo=$2 start=$3 src=$4 vf=$5 af=$6 out=$7 name=$8
        shift 8
        args+=(-i "$photo" -ss "$start" -t "$src" -i "$pool")
        graph+="[$((2 * i)):v]${vf}[v$i];[$((2 * i + 1)):a]${af},asplit[a$i][w$i];"
        outs+=(-map "[v$i]" -map "[a$i]" -c:v flv -q:v 4 -r 30 -c:a libmp3lame -ar 44100 -ac 1
            "$out/VideoFlash/$name.flv" -map "[w$i]" -c:a pcm_s16le -ar 16000 -ac 1 "$out/AudioWAV/$name.wav")
        i=$((i + 1))
    done
    ff "${args[@]}" -filter_complex "${graph%;}" "${outs[@]}"
    exit 0
fi

out=${1:?usage: make_emotion_corpus.sh OUT [N]}
n=${2:-180}
seed=${SEED:-1}
threads=${THREADS:-$(nproc 2>/dev/null || echo 2)}

case $out in *[[:space:]]*) echo "make_emotion_corpus.sh: OUT must not contain white space" >&2; exit 1 ;; esac
media_check_deps flv libmp3lame pcm_s16le
[ "$n" -ge 1 ] 2>/dev/null || need "N must be a positive number of clips"
actors=${ACTORS:-$((n / 8 < 1 ? 1 : n / 8 > 6 ? 6 : n / 8))}
[ "$actors" -ge 1 ] 2>/dev/null || need "ACTORS must be a positive number"
[ "$actors" -ge $(((n + 71) / 72)) ] || actors=$(((n + 71) / 72))
[ "$actors" -le 91 ] || need "N must be at most 6552 (91 actors x 72 names)"

rm -rf "$out"
mkdir -p "$out/.work" "$out/VideoFlash" "$out/AudioWAV"
pool="$out/.work/speech.wav"
total=$(media_speech_pool "$pool" -30)

# The job list: one line of --clips arguments per clip, drawn from awk's generator seeded with SEED.
awk -v n="$n" -v S="$actors" -v seed="$seed" -v total="$total" -v pool="$pool" -v out="$out" \
    -v photo0="${PHOTO[0]}" -v photo1="${PHOTO[1]}" -v fx0="${FACE_X[0]}" -v fy0="${FACE_Y[0]}" \
    -v fmin0="${FACE_MIN[0]}" -v fx1="${FACE_X[1]}" -v fy1="${FACE_Y[1]}" -v fmin1="${FACE_MIN[1]}" '
function pow(b, e) { return exp(e * log(b)) }
BEGIN {
    srand(seed)
    pi = 3.14159265358979
    split("IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI WSI", sentence, " ")
    # The recipe (the header table), per emotion.
    split("ANG DIS FEA HAP NEU SAD", emo, " ")
    split("1.12 0.92 1.12 1.18 1    0.85", pitch, " ")
    split("1.20 0.85 1.08 1.05 1    0.78", tempo, " ")
    split("8    3    -3   4    0    -10", gain, " ")
    split("0    0    7    0    0    0", trem_f, " ")
    split("0    0    0.7  0    0    0", trem_d, " ")
    split("3    -3   0    8    0    -4", treble, " ")
    split("1.45 1.20 1.25 1.30 1.15 1.10", zoom, " ")
    split("0.004 0  -0.003 0.001 0  0", dzoom, " ")
    split("1.2  1.0  0    0    0    0", panx, " ")
    split("0    0    0    0    0    0.5", pany, " ")
    split("3    0    5    6    0    0", shake_a, " ")
    split("3    0    7    1.5  0    0", shake_f, " ")
    split("x    x    x    y    x    x", shake_axis, " ")
    split("-0.05 -0.05 0.05 0.15 0  -0.15", bright, " ")
    split("1.6  0.8  1.3  1.15 1    0.7", contrast, " ")
    split("0.8  1.3  0.7  0.75 1    1.4", gamma, " ")
    # Actors: face centre (x, y) and the smallest square crop that holds the face, per photo.
    photo[0] = photo0; fx[0] = fx0; fy[0] = fy0; fmin[0] = fmin0
    photo[1] = photo1; fx[1] = fx1; fy[1] = fy1; fmin[1] = fmin1
    for (s = 0; s < S; s++) {
        p = s % 2
        ph[s] = photo[p]
        ch[s] = 2 * int((fmin[p] + rand() * (384 - fmin[p])) / 2)   # a 4:3 crop: at most 512 x 384
        cw[s] = 2 * int(ch[s] * 2 / 3)
        cx[s] = int(fx[p] - cw[s] / 2 + (rand() - 0.5) * cw[s] * 0.1)
        cy[s] = int(fy[p] - ch[s] / 2 + (rand() - 0.5) * ch[s] * 0.1)
        if (cx[s] < 0) cx[s] = 0; if (cx[s] > 512 - cw[s]) cx[s] = 512 - cw[s]
        if (cy[s] < 0) cy[s] = 0; if (cy[s] > 512 - ch[s]) cy[s] = 512 - ch[s]
        flip[s] = int(s / 2) % 2 ? "hflip," : ""
        hue[s] = sprintf("%.0f", (rand() - 0.5) * 60)
        sat[s] = sprintf("%.2f", 0.6 + rand() * 0.8)
        hb[s] = sprintf("%.2f", (rand() - 0.5) * 1.2)
        voice[s] = 0.92 + (s + rand() * 0.5) * 0.16 / S
        nc[s] = 0
    }
    for (c = 0; c < n; c++) {
        s = c % S
        e = int(c / S) % 6 + 1
        k = int(c / (6 * S))   # the how-manyth clip of this actor and emotion: its sentence is unique among them
        name = sprintf("%d_%s_%s_XX", 1001 + s, sentence[(k + 5 * s + 7 * e) % 12 + 1], emo[e])
        j = 0.7 + rand() * 0.6
        dur = 2 + rand()
        te = pow(tempo[e], j)
        pv = voice[s] * pow(pitch[e], j)
        src = dur * te
        start = rand() * (total - src - 0.05)
        af = sprintf("asetrate=%d,aresample=16000,atempo=%.4f,volume=%.2fdB", int(16000 * pv + 0.5), te / pv,
                     gain[e] * j)
        if (treble[e] != 0) af = af sprintf(",treble=g=%.2f", treble[e] * j)
        if (trem_d[e] > 0) af = af sprintf(",tremolo=f=%g:d=%.3f", trem_f[e], trem_d[e] * j > 1 ? 1 : trem_d[e] * j)
        af = af sprintf(",apad=whole_dur=%.3f,atrim=end=%.3f", dur, dur)
        frames = int(dur * 30 + 0.5)
        dir = rand() < 0.5 ? 1 : -1
        z0 = 1 + (zoom[e] - 1) * j + (rand() - 0.5) * 0.1
        dz = dzoom[e] * j
        px = panx[e] * j * dir + (rand() - 0.5) * 0.4
        py = pany[e] * j + (rand() - 0.5) * 0.4
        w = 2 * pi * shake_f[e] / 30
        ax = shake_axis[e] == "x" ? shake_a[e] * j : 0
        ay = shake_axis[e] == "y" ? shake_a[e] * j : 0
        vf = sprintf("crop=%d:%d:%d:%d,%sscale=640:480,hue=h=%s:s=%s:b=%s,eq=brightness=%.3f:contrast=%.3f:gamma=%.3f,"\
                     "loop=loop=%d:size=1,setpts=N/30/TB,zoompan=z=%.3f%+.5f*on:x=iw/2-iw/zoom/2%+.3f*on%+.2f*sin(on*%.4f)"\
                     ":y=ih/2-ih/zoom/2%+.3f*on%+.2f*sin(on*%.4f):d=1:s=320x240:fps=30,format=yuv420p",
                     cw[s], ch[s], cx[s], cy[s], flip[s], hue[s], sat[s], hb[s], bright[e] * j,
                     pow(contrast[e], j), pow(gamma[e], j), frames - 1, z0, dz, px, ax, w, py, ay, w)
        printf "%s %s %.3f %.3f %s %s %s %s\n", pool, ph[s], start, src, vf, af, out, name
    }
}' >"$out/.work/jobs.txt"
# Up to 6 clips per ffmpeg process (its start-up costs about as much as a clip), fewer where that would leave a
# thread idle; the bytes of a clip do not depend on its batch.
batch=$(((n + 4 * threads - 1) / (4 * threads)))
[ "$batch" -le 6 ] || batch=6
xargs -P "$threads" -L "$batch" bash "$0" --clips <"$out/.work/jobs.txt"
rm -rf "$out/.work"
got=$(find "$out/VideoFlash" -name '*.flv' | wc -l)
wav=$(find "$out/AudioWAV" -name '*.wav' | wc -l)
if [ "$got" != "$n" ] || [ "$wav" != "$n" ]; then
    echo "make_emotion_corpus.sh: made $got FLVs and $wav WAVs of $n" >&2
    exit 1
fi
echo "make_emotion_corpus.sh: $n clips of $actors actors under $out"
