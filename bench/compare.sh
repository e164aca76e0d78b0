#!/usr/bin/env bash
# regnet next to PyTorch and ONNX Runtime on this machine, in one run (bench/compare.py says
# what the four cases are). Prints the CPU model, the SIMD level of each engine and the ratios.
# Installs PyTorch, ONNX Runtime and pycls into target/bench-venv (or uses BENCH_VENV).
# Timings on shared machines are noisy: compare the ratios of one run.
# Usage: bench/compare.sh   (ROUNDS=7 ITERS=20 WARMUP=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BENCH_VENV:-target/bench-venv}"
if ! "$venv/bin/python" -c 'import torch, onnxruntime, pycls' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch onnxruntime numpy pycls yacs simplejson iopath >&2
fi
cargo build --release --bin regnet >&2
exec "$venv/bin/python" bench/compare.py target/release/regnet
