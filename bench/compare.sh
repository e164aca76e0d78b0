#!/usr/bin/env bash
# regnet next to PyTorch and ONNX Runtime on this machine, in one run:
#   1. forward latency of RegNetX-400MF, batch 8 at 224 (eval mode);
#   2. training throughput of RegNetX-400MF with the CIFAR stem, batch 64 at 32x32
#      (SGD with Nesterov momentum), images/s.
# Installs PyTorch, ONNX Runtime and pycls (for the same networks) into target/bench-venv.
# Timings on shared machines are noisy: compare the ratios of one run.
# Usage: bench/compare.sh   (ITERS=30 WARMUP=5 by default; BENCH_VENV=DIR uses an existing
#        Python environment that has torch, onnxruntime and pycls)
set -euo pipefail
cd "$(dirname "$0")/.."
export ITERS="${ITERS:-30}" WARMUP="${WARMUP:-5}"
venv="${BENCH_VENV:-target/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch onnx onnxruntime pycls yacs simplejson iopath >&2
fi
cargo build --release --bin regnet >&2
regnet=target/release/regnet

rs_fw=$($regnet time RegNetX-400MF --forward-only --batch 8 --im-size 224 --warmup "$WARMUP" --iters "$ITERS" --json)
py_fw=$("$venv/bin/python" bench/torch_bench.py forward)
rs_tr=$($regnet time RegNetX-400MF REGNET.STEM_TYPE res_stem_cifar MODEL.NUM_CLASSES 10 --batch 64 --im-size 32 --warmup "$WARMUP" --iters "$ITERS" --json)
py_tr=$("$venv/bin/python" bench/torch_bench.py train)

python3 - "$rs_fw" "$py_fw" "$rs_tr" "$py_tr" <<'PY'
import json, sys
rs_fw, py_fw, rs_tr, py_tr = (json.loads(a) for a in sys.argv[1:])
r = rs_fw["test_fw_time"] * 1000
print(f"RegNetX-400MF forward, batch 8 at 224 (median ms per batch, lower is better):")
print(f"  regnet (burn flex + regnet kernels) {r:8.1f}")
print(f"  PyTorch {py_fw['torch']:<20} {py_fw['pytorch_ms']:8.1f}   regnet is {py_fw['pytorch_ms'] / r:.2f}x PyTorch's speed")
if "onnxruntime_ms" in py_fw:
    print(f"  ONNX Runtime {py_fw['onnxruntime']:<15} {py_fw['onnxruntime_ms']:8.1f}   regnet is {py_fw['onnxruntime_ms'] / r:.2f}x ONNX Runtime's speed")
else:
    print(f"  ONNX Runtime: {py_fw.get('onnxruntime_error')}")
t = rs_tr["train_step_time"]
ips = 64 / t
print(f"RegNetX-400MF (CIFAR stem) training, batch 64 at 32x32 (images/s, higher is better):")
print(f"  regnet  {ips:8.1f}  ({t * 1000:.1f} ms per step)")
print(f"  PyTorch {py_tr['pytorch_images_per_s']:8.1f}  ({py_tr['pytorch_ms']:.1f} ms per step)   ratio regnet/PyTorch {ips / py_tr['pytorch_images_per_s']:.2f}")
PY
