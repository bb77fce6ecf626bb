# shellcheck shell=bash disable=SC2034 # (the arrays below are the sourcing scripts')
# Shared by tools/make_media_corpus.sh and tools/make_emotion_corpus.sh (sourced, not run): the Debian-packaged
# face photos and speech they build clips from, the dependency checks, and the speech pool.
#
#   PROG                   the sourcing script's name, the prefix of its messages (set it before sourcing)
#   ff ARGS...             ffmpeg, quiet, one thread, overwriting
#   need WHAT              "PROG: WHAT" on stderr, exit 2 (something missing)
#   media_check_deps ENC...    ffmpeg/ffprobe, both photos and the speech WAVs (-> the array wavs, sorted), and
#                          each named ffmpeg encoder; the first one missing is named by need
#   media_speech_pool OUT [DB] all the speech, end to end, as one 16 kHz mono WAV OUT (clips are segments of it at
#                          random offsets); with DB, each WAV is first scaled so that its mean volume (ffmpeg's
#                          volumedetect) is DB dBFS, so that the files' own levels do not vary. Prints its duration (s).
#
# The photos: PHOTO[p], with the face's centre FACE_X[p], FACE_Y[p] and the smallest square crop FACE_MIN[p] that
# holds the face (px; both photos are 512x512).

HOPPER=/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg
ASTRONAUT=/usr/lib/python3/dist-packages/skimage/data/astronaut.png
SPEECH_DIR=/usr/share/pocketsphinx/test/data
PHOTO=("$HOPPER" "$ASTRONAUT")
FACE_X=(256 215) FACE_Y=(200 130) FACE_MIN=(300 220)

ff() { ffmpeg -hide_banner -loglevel error -nostdin -y -threads 1 "$@"; }

need() { echo "$PROG: $1" >&2; exit 2; }

media_check_deps() {
    command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need "ffmpeg/ffprobe not found (apt-get install ffmpeg)"
    [ -r "$HOPPER" ] || need "$HOPPER missing (apt-get install facedetect)"
    [ -r "$ASTRONAUT" ] || need "$ASTRONAUT missing (apt-get install python3-skimage)"
    mapfile -t wavs < <(find "$SPEECH_DIR" -name '*.wav' 2>/dev/null | LC_ALL=C sort)
    [ "${#wavs[@]}" -gt 0 ] || need "no WAVs under $SPEECH_DIR (apt-get install pocketsphinx-testdata)"
    local encoders e
    encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null)
    for e in "$@"; do
        grep -q " $e " <<<"$encoders" || need "this ffmpeg has no $e encoder"
    done
}

media_speech_pool() {
    local pool=$1 db=${2:-} inputs=() labels="" i gain
    for i in "${!wavs[@]}"; do
        inputs+=(-i "${wavs[$i]}")
        if [ -n "$db" ]; then
            gain=$(ffmpeg -hide_banner -nostdin -threads 1 -i "${wavs[$i]}" -af volumedetect -f null - 2>&1 |
                awk -v db="$db" '/mean_volume:/ {printf "%.1f", db - $(NF - 1)}')
            labels+="[$i:a]volume=${gain}dB[n$i];"
        fi
    done
    if [ -n "$db" ]; then
        labels+=$(for i in "${!wavs[@]}"; do printf '[n%d]' "$i"; done)
    else
        labels=$(for i in "${!wavs[@]}"; do printf '[%d:a]' "$i"; done)
    fi
    ff "${inputs[@]}" -filter_complex "${labels}concat=n=${#wavs[@]}:v=0:a=1,aresample=16000[a]" -map "[a]" -ac 1 "$pool" || return 1
    ffprobe -v error -show_entries format=duration -of csv=p=0 "$pool"
}
