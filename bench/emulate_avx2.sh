#!/usr/bin/env bash
# bench/compare.sh as an AVX2-only machine would run it, on a machine with AVX-512 (the
# project's machines have had AVX-512 in every session so far). Each engine is held to
# AVX2+FMA on the same cores, caches and clocks:
#  - regnet: REGNET_SIMD=avx2 for its own kernels, and a build (target/avx2-emu/target) whose
#    `gemm-common` -- the `gemm` crate's run-time dispatch -- is a copy with its two AVX-512
#    checks made false (by `--config patch.crates-io...`; Cargo.lock is restored after);
#  - PyTorch: ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2;
#  - ONNX Runtime: a copy of its package whose MLAS kernel choice skips AVX-512
#    (bench/ort_avx2.py), imported through PYTHONPATH.
# An emulation, not an AVX2 machine: a core with AVX-512 may run AVX2 code at other clocks
# and with other cache sizes than an AVX2-only one. Compare the ratios of one run.
# Usage: bench/emulate_avx2.sh   (ROUNDS, ITERS, WARMUP as for compare.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${BENCH_VENV:-target/bench-venv}"
emu=target/avx2-emu
if ! "$venv/bin/python" -c 'import torch, onnxruntime, pycls' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch onnxruntime numpy pycls yacs simplejson iopath >&2
fi
mkdir -p "$emu"
manifest=$(cargo metadata --format-version 1 | python3 -c \
  'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "gemm-common"))')
# The patched copy is made once per gemm-common source (a fresh copy every run would
# rebuild it and all that depends on it).
if [ "$(cat "$emu/gemm-common/.patched-from" 2>/dev/null)" != "$manifest" ]; then
  rm -rf "$emu/gemm-common"
  cp -r "$(dirname "$manifest")" "$emu/gemm-common"
  check='if $crate::feature_detected!("avx512f")'
  if [ "$(grep -cF "$check" "$emu/gemm-common/src/gemm.rs")" != 2 ]; then
    echo "emulate_avx2: $emu/gemm-common/src/gemm.rs: expected 2 AVX-512 checks" >&2
    exit 1
  fi
  sed -i 's/if \$crate::feature_detected!("avx512f")/if false \&\& $crate::feature_detected!("avx512f")/' \
    "$emu/gemm-common/src/gemm.rs"
  echo "$manifest" > "$emu/gemm-common/.patched-from"
fi
# Start from the normal release build's artifacts when there are any (a copy of several GB):
# only gemm-common and what depends on it are rebuilt.
if [ ! -d "$emu/target/release" ] && [ -d target/release ]; then
  mkdir -p "$emu/target" && cp -a target/release "$emu/target/"
fi
cp Cargo.lock "$emu/Cargo.lock.orig"
trap 'cp "$emu/Cargo.lock.orig" Cargo.lock' EXIT
cargo build --release --bin regnet --target-dir "$emu/target" \
  --config "patch.crates-io.gemm-common.path=\"$PWD/$emu/gemm-common\"" >&2
"$venv/bin/python" bench/ort_avx2.py "$emu/ort"
REGNET_SIMD=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH="$emu/ort" \
  "$venv/bin/python" bench/compare.py "$emu/target/release/regnet"
