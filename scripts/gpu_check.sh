#!/usr/bin/env bash
# GPU check, prepared for a machine with a GPU and a Vulkan driver (burn's wgpu backend):
#   1. the PyTorch parity tests (eval logits of every fixture, the two-step SGD fixture)
#      on the GPU, within the same 1e-4 as on the CPU;
#   2. forward and training-step time of RegNetX-400MF on the GPU next to the CPU.
# Usage: scripts/gpu_check.sh   (writes its log to ${OUT:-target}/gpu_check.log)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-target}"
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1
command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | head -30
nvidia-smi -L 2>/dev/null
rc=0
REGNET_TEST_DEVICE=gpu cargo test --release --features regnet-nn/gpu,regnet-train/gpu \
  -p regnet-nn -p regnet-train --test parity --test train_step || rc=1
cargo build --release -p regnet-cli --features gpu || exit 1
for dev in gpu cpu; do
  echo "== RegNetX-400MF on $dev"
  target/release/regnet time RegNetX-400MF --device "$dev" --forward-only --batch 8 --im-size 224 --json || rc=1
  target/release/regnet time RegNetX-400MF --device "$dev" --batch 32 --im-size 224 --iters 10 --json || rc=1
done
exit $rc
