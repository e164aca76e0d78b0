#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for regnet: installs the Fashion-MNIST data set
# (Debian's dataset-fashion-mnist) and, where no Vulkan driver exists, Mesa's software one
# (mesa-vulkan-drivers, for the GPU tests), creates target/onnx-venv (scripts/onnx-venv.sh) and
# builds the `regnet` binary in release mode.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# Installs Debian packages, refreshing the package index once if it is stale.
apt_install() {
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "$@" >&2 \
    || { "${sudo_cmd[@]}" apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q "$@" >&2; }
}

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "installing dataset-fashion-mnist (apt)..." >&2
  apt_install dataset-fashion-mnist
fi

# A Vulkan driver for the GPU tests (`--features regnet-cli/gpu`): where the machine has none,
# Mesa's software one (lavapipe), so that the wgpu path runs on any machine.
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "installing mesa-vulkan-drivers (apt): a software Vulkan device for the GPU tests..." >&2
  apt_install mesa-vulkan-drivers
fi

# The Python venv (onnx, onnxruntime, numpy) the ONNX export tests run exported models in.
scripts/onnx-venv.sh

if [ "${1:-}" != "--no-build" ]; then
  cargo build --release --bin regnet >&2
fi
