#!/usr/bin/env bash
# Creates target/onnx-venv: a Python virtual environment with onnx, onnxruntime and numpy
# (small wheels from PyPI, no torch), which the ONNX export tests run exported models in.
# Usage: scripts/onnx-venv.sh   (idempotent: does nothing when the venv already works)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/onnx-venv
if [ -x "$venv/bin/python" ] \
  && "$venv/bin/python" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  exit 0
fi

if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  echo "installing python3 and python3-venv (apt)..." >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q python3 python3-venv >&2
fi

echo "creating $venv with onnx, onnxruntime, numpy (pip)..." >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  "onnx>=1.16" "onnxruntime>=1.17" "numpy" >&2
"$venv/bin/python" -c "import onnx, onnxruntime; print('onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)" >&2
