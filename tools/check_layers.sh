#!/usr/bin/env bash
# The floors of the tree (README "Map"): a source file may include headers of its own floor and the floors below.
# train/ and data/ stand side by side: neither includes the other (the trainer takes batches through its own
# interface; the command wires the loader to it). finetune/ stands on both: a fine-tuning run reads a store and
# drives the trainer. Includes are written from the repository root ("engine/ops.h").
# Prints each include that runs up a floor and exits 1 if there is one; `make layers` runs it, and so does CI.
set -euo pipefail
cd "$(dirname "$0")/.."

floor() {
    case "$1" in
        base/*) echo 0 ;;
        kernels/*) echo 1 ;;
        engine/*) echo 2 ;;
        models/*) echo 3 ;;
        train/*) echo 4 ;;
        data/*) echo 4 ;;
        finetune/*) echo 5 ;;
        tools/*) echo 6 ;;
        benchmarks/*) echo 7 ;;
        tests/*) echo 8 ;;
        *) echo -1 ;;
    esac
}

bad=0
while IFS= read -r f; do
    own=$(floor "$f")
    while IFS= read -r inc; do
        [ -e "$inc" ] || { echo "$f: #include \"$inc\" is not a path from the repository root"; bad=1; continue; }
        up=$(floor "$inc")
        side_by_side=0
        [ "$own" = 4 ] && [ "$up" = 4 ] && [ "${f%%/*}" != "${inc%%/*}" ] && side_by_side=1
        if [ "$up" -gt "$own" ] || [ "$side_by_side" = 1 ]; then
            echo "$f includes $inc: ${inc%%/*}/ is not below ${f%%/*}/"
            bad=1
        fi
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done < <(find base kernels engine models train data finetune tools benchmarks tests -type f \( -name '*.c' -o -name '*.h' \
           -o -name '*.cu' -o -name '*.cuh' -o -name '*.cpp' \) | sort)
[ "$bad" = 0 ] && echo "[avt] layers: no include runs up a floor"
exit "$bad"
