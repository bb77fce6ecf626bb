#!/usr/bin/env bash
# Install avt's build, test and benchmark dependencies from Debian's packages (run as root or with sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# libopenblas-openmp-dev: our GEMMs share the OpenMP thread pool; libopenblas0-pthread: the BLAS that Debian's
# python3-torch gets through libblas.so.3, so the benchmark compares against PyTorch on OpenBLAS.
# openmpi-bin, libopenmpi-dev: data-parallel runs (train/dist.c) and the multi-process tests (tests/train/test_dist.c).
# gnuplot-nox: the loss curve (loss.png) of avt pretrain.
# FFmpeg's libraries (+ the ffmpeg program for test fixtures and the decode benchmark), pkg-config: the media front
# end. Real media for the tests: pocketsphinx-testdata (speech), facedetect's and python3-skimage's face photos;
# opencv-data (the cascades we evaluate), python3-opencv and python3-torchaudio (the references we check against).
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential make \
    libopenblas-dev libopenblas-openmp-dev libopenblas0-pthread libcjson-dev libcriterion-dev \
    openmpi-bin libopenmpi-dev gnuplot-nox \
    pkg-config libavformat-dev libavcodec-dev libswresample-dev libswscale-dev libavutil-dev ffmpeg \
    pocketsphinx-testdata facedetect python3-skimage opencv-data python3-opencv python3-torchaudio \
    python3 python3-numpy python3-torch >/dev/null
echo "[avt] installed: $(dpkg-query -W -f='${Package} ${Version}; ' gcc libopenblas-dev libopenblas-openmp-dev libcjson-dev libcriterion-dev libopenmpi-dev gnuplot-nox libavformat-dev ffmpeg opencv-data python3-torch python3-torchaudio)"
