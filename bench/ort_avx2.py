#!/usr/bin/env python3
"""Copies ONNX Runtime's Python package and holds the copy to AVX2 kernels.

Usage: python bench/ort_avx2.py DEST_DIR   (then PYTHONPATH=DEST_DIR imports the copy)

MLAS, ONNX Runtime's kernel library, picks its kernels once, from CPUID: on a CPU with
AVX512F (and the OS saving the ZMM state) it installs the AVX-512 ones. This finds that one
check in the copy's native library -- `test $0x10000, reg` (CPUID leaf 7 EBX bit 16,
AVX512F), a short `je` past the AVX-512 branch, then the XCR0 test `test $0xe0, %al` -- and
makes the jump unconditional, so the copy keeps the AVX2+FMA kernels and 8-channel blocks it
would use on an AVX2-only CPU. Refuses (exit 1, original untouched) unless the pattern occurs
exactly once. Checked with ONNX Runtime 1.32.0 (x86-64 Linux wheel).
"""

import glob
import os
import re
import shutil
import sys

import onnxruntime

# [REX] test $0x10000, r32 ; je rel8 ; [REX] mov r64, r64 ; [REX] not r64 ; test $0xe0, %al
PATTERN = re.compile(
    rb"[\x40-\x4f]?\xf7[\xc0-\xc7]\x00\x00\x01\x00(\x74).[\x40-\x4f]\x89[\xc0-\xff]"
    rb"[\x40-\x4f]\xf7[\xd0-\xd7]\xa8\xe0",
    re.S,
)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    dest = os.path.join(sys.argv[1], "onnxruntime")
    src = os.path.dirname(onnxruntime.__file__)
    libs = glob.glob(os.path.join(src, "capi", "onnxruntime_pybind11_state*.so"))
    if len(libs) != 1:
        sys.exit(f"ort_avx2: expected one onnxruntime_pybind11_state*.so in {src}, found {libs}")
    data = bytearray(open(libs[0], "rb").read())
    found = list(PATTERN.finditer(data))
    if len(found) != 1:
        sys.exit(f"ort_avx2: {libs[0]}: the AVX512F check occurs {len(found)} times, not once "
                 f"(onnxruntime {onnxruntime.__version__}); not patched")
    at = found[0].start(1)
    data[at] = 0xEB  # je rel8 -> jmp rel8
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    with open(os.path.join(dest, "capi", os.path.basename(libs[0])), "wb") as f:
        f.write(data)
    print(f"onnxruntime {onnxruntime.__version__} copied to {dest}, AVX-512 branch skipped "
          f"(byte {at:#x})")


if __name__ == "__main__":
    main()
