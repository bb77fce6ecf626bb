#!/usr/bin/env bash
# Install avt's build, test and benchmark dependencies from Debian's packages (run as root or with sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# libopenblas-openmp-dev: our GEMMs share the OpenMP thread pool; libopenblas0-pthread: the BLAS that Debian's
# python3-torch gets through libblas.so.3, so the benchmark compares against PyTorch on OpenBLAS.
# openmpi-bin, libopenmpi-dev: data-parallel runs (engine/dist.c) and the multi-process tests (tests/test_dist.c).
# gnuplot-nox: the loss curve (loss.png) of avt pretrain.
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential make \
    libopenblas-dev libopenblas-openmp-dev libopenblas0-pthread libcjson-dev libcriterion-dev \
    openmpi-bin libopenmpi-dev gnuplot-nox \
    python3 python3-numpy python3-torch >/dev/null
echo "[avt] installed: $(dpkg-query -W -f='${Package} ${Version}; ' gcc libopenblas-dev libopenblas-openmp-dev libcjson-dev libcriterion-dev libopenmpi-dev gnuplot-nox python3-torch)"
