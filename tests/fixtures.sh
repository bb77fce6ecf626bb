#!/usr/bin/env bash
# Builds real-media test fixtures with the ffmpeg program at test time (nothing is committed): a real face still
# (Debian's facedetect examples) and real speech (pocketsphinx-testdata, 16 kHz mono), muxed like CREMA-D and
# VoxCeleb2 clips (docs/data.md §8.1), plus damaged variants for the error paths.
#
#   tests/fixtures.sh OUT            the fixtures under OUT (tests/data/media/test_media.c runs this once per suite)
#   tests/fixtures.sh --fuzz-seeds OUT   tiny clips as a libFuzzer seed corpus (make fuzz-media)
#
# OUT/1001_DFA_ANG_XX.flv   CREMA-D-like: flv1 480x360 30 fps (slow zoom, so frames differ) + mp3 44.1 kHz
# OUT/1001_DFA_ANG_XX.wav   the clip's speech as CREMA-D's WAV: 16 kHz mono s16 (a copy of the source)
# OUT/vox2/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4   VoxCeleb2-like: H.264 224x224 25 fps + AAC 16 kHz mono
# OUT/bad/truncated.flv     the first 30 % of the FLV's bytes
# OUT/bad/empty.flv         zero bytes
# OUT/bad/mp3_named.mp4     an MP3 with an .mp4 name (FFmpeg probes content, so its audio still decodes)
# OUT/bad/jpg_named.flv     the face JPEG with an .flv name
# OUT/bad/audio_only.m4a    AAC in MP4, no video
# OUT/bad/video_only.mp4    H.264 in MP4, no audio
# OUT/bad/not_media.mp4     plain text
# OUT/bad/zero_duration.wav a WAV header and no samples
# OUT/bad/header_only.flv   the FLV cut before its first packet (header and onMetaData only)
# OUT/bad/1076_MTI_SAD_XX.flv   like that CREMA-D clip (docs/data.md §2.3): 0.3 s of flv1 video, no audio
# OUT/bad/1076_MTI_NEU_XX.flv   like that CREMA-D clip (docs/data.md §2.3), a video cut short: the FLV's first 3,000
#                               bytes (one damaged frame at 0.025 s) ...
# OUT/bad/1076_MTI_NEU_XX.wav   ... and its complete 2.99 s WAV
# Needs ffmpeg (with libx264, libmp3lame and the native aac encoder: Debian's has them), pocketsphinx-testdata and
# facedetect. Exits 2 with one line naming what is missing.
set -euo pipefail

FACE=/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg
SPEECH=/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav # 2.99 s

need() { echo "fixtures.sh: $1" >&2; exit 2; }
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need "ffmpeg/ffprobe not found (apt-get install ffmpeg)"
[ -r "$FACE" ] || need "$FACE missing (apt-get install facedetect)"
[ -r "$SPEECH" ] || need "$SPEECH missing (apt-get install pocketsphinx-testdata)"
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null)
for e in libx264 libmp3lame aac flv; do
    grep -q " $e " <<<"$encoders" || need "this ffmpeg has no $e encoder"
done

ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }

if [ "${1:-}" = --fuzz-seeds ]; then
    out=${2:?usage: fixtures.sh --fuzz-seeds OUT}
    mkdir -p "$out"
    # 0.3 s, 64x48: small enough for -max_len, still every container/codec pair the loaders meet.
    ff -loop 1 -framerate 10 -t 0.3 -i "$FACE" -t 0.3 -i "$SPEECH" -vf scale=64:48,format=yuv420p \
        -c:v flv1 -c:a libmp3lame -ar 22050 -shortest "$out/seed.flv"
    ff -loop 1 -framerate 10 -t 0.3 -i "$FACE" -t 0.3 -i "$SPEECH" -vf scale=64:48,format=yuv420p \
        -c:v libx264 -preset ultrafast -c:a aac -ar 16000 -ac 1 -shortest "$out/seed.mp4"
    ff -t 0.3 -i "$SPEECH" "$out/seed.wav"
    ff -t 0.3 -i "$SPEECH" -c:a libmp3lame "$out/seed.mp3"
    exit 0
fi

out=${1:?usage: fixtures.sh OUT}
vox=$out/vox2/dev/mp4/id00012/21Uxsk56VDQ
mkdir -p "$out/bad" "$vox"
flv=$out/1001_DFA_ANG_XX.flv
ff -loop 1 -framerate 30 -i "$FACE" -i "$SPEECH" -filter_complex \
    "[0:v]scale=480:360:force_original_aspect_ratio=decrease,pad=480:360:(ow-iw)/2:(oh-ih)/2,zoompan=z='1+0.0015*on':d=1:s=480x360:fps=30,format=yuv420p[v]" \
    -map "[v]" -map 1:a -c:v flv1 -c:a libmp3lame -ar 44100 -shortest "$flv"
cp "$SPEECH" "$out/1001_DFA_ANG_XX.wav"
ff -loop 1 -framerate 25 -i "$FACE" -i "$SPEECH" -vf "scale=224:224,format=yuv420p" -c:v libx264 -preset ultrafast \
    -c:a aac -ar 16000 -ac 1 -shortest "$vox/00001.mp4"

size=$(stat -c %s "$flv")
head -c $((size * 30 / 100)) "$flv" >"$out/bad/truncated.flv"
: >"$out/bad/empty.flv"
ff -i "$SPEECH" -c:a libmp3lame "$out/bad/mp3_named.mp4" -f mp3
cp "$FACE" "$out/bad/jpg_named.flv"
ff -i "$SPEECH" -c:a aac "$out/bad/audio_only.m4a"
ff -loop 1 -framerate 25 -t 2 -i "$FACE" -vf "scale=224:224,format=yuv420p" -c:v libx264 -preset ultrafast \
    "$out/bad/video_only.mp4"
echo "not a media file" >"$out/bad/not_media.mp4"
ff -f lavfi -i anullsrc=r=16000:cl=mono -t 0 "$out/bad/zero_duration.wav"
first=$(ffprobe -v error -show_entries packet=pos -of csv=p=0 "$flv" | awk 'NR == 1')
head -c "$first" "$flv" >"$out/bad/header_only.flv"
ff -loop 1 -framerate 30 -t 0.3 -i "$FACE" -vf "scale=480:360,format=yuv420p" -c:v flv1 "$out/bad/1076_MTI_SAD_XX.flv"
head -c 3000 "$flv" >"$out/bad/1076_MTI_NEU_XX.flv"
cp "$SPEECH" "$out/bad/1076_MTI_NEU_XX.wav"
