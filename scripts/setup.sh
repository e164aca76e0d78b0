#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for regnet: installs the Fashion-MNIST data set
# (Debian's dataset-fashion-mnist), creates target/onnx-venv (scripts/onnx-venv.sh) and
# builds the `regnet` binary in release mode.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "installing dataset-fashion-mnist (apt)..." >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q dataset-fashion-mnist >&2 \
    || { "${sudo_cmd[@]}" apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q dataset-fashion-mnist >&2; }
fi

# The Python venv (onnx, onnxruntime, numpy) the ONNX export tests run exported models in.
scripts/onnx-venv.sh

if [ "${1:-}" != "--no-build" ]; then
  cargo build --release --bin regnet >&2
fi
