#!/usr/bin/env bash
# GPU check, prepared for a machine with a GPU and a Vulkan driver (burn's wgpu backend, WGSL):
#   1. every GPU test (PyTorch fixtures' eval logits, the two-step SGD fixture, the operations
#      regnet trains with at batch 128, one epoch of `regnet train EXT.DEVICE gpu`), and the
#      ignored ones that are wrong on Mesa's software device only (reductions past 65535, the
#      batch-128 training step), each printing its measured difference;
#   2. forward and training-step time of RegNetX-400MF on the GPU next to the CPU, and next
#      to PyTorch on the same GPU where the machine has it.
# Usage: scripts/gpu_check.sh   (writes its log to ${OUT:-target}/gpu_check.log)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-target}"
mkdir -p "$out"
log="$out/gpu_check.log"
exec > >(tee "$log") 2>&1
command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverInfo|apiVersion"
nvidia-smi -L 2>/dev/null
rc=0
features=(--release --workspace --features regnet-cli/gpu)
REGNET_REQUIRE_GPU=1 cargo test "${features[@]}" --test parity --test train_step --test gpu_ops \
  --test gpu_train_step --test gpu -- --include-ignored --nocapture 2>&1 \
  | grep -E "^(GPU tests run on|gpu vs|test |failures|thread)" || rc=1
cargo build --release -p regnet-cli --features gpu || exit 1
for dev in gpu cpu; do
  echo "== RegNetX-400MF on $dev"
  target/release/regnet time RegNetX-400MF --device "$dev" --forward-only --batch 8 --im-size 224 --json || rc=1
  target/release/regnet time RegNetX-400MF --device "$dev" --batch 32 --im-size 224 --iters 10 --json || rc=1
done
if python3 -c "import torch, torchvision; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "== PyTorch on the same GPU (torchvision regnet_x_400mf, eager)"
  python3 - <<'PY' || rc=1
import time, torch, torchvision
m = torchvision.models.regnet_x_400mf().cuda()
def bench(batch, train):
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m.train(train)
    for i in range(13):
        if i == 3:
            torch.cuda.synchronize(); t = time.perf_counter()
        if train:
            opt.zero_grad(); m(x).sum().backward(); opt.step()
        else:
            with torch.no_grad(): m(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / 10
print(f"forward batch 8: {bench(8, False) * 1e3:.2f} ms; training step batch 32: {bench(32, True) * 1e3:.2f} ms")
PY
fi
exit $rc
