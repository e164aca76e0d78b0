#!/usr/bin/env python3
"""The compiled engine next to ONNX Runtime only (the two forward cases of bench/compare.py),
quicker than compare.sh: no PyTorch. Engines alternate round by round in one run, so that load
from elsewhere hits both alike; prints the CPU model, the SIMD level, each round's medians and
the ratio of medians.

Usage: python bench/infer_vs_ort.py REGNET_BINARY [OTHER_REGNET_BINARY]
  (ROUNDS=5 ITERS=20 WARMUP=5 THREADS=all; CASES=x400,y800). A second binary (e.g. a build from before a
  change) joins the alternation, so that a before/after comparison shares the run's load.
Needs numpy and onnxruntime (e.g. target/onnx-venv/bin/python).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROUNDS = int(os.environ.get("ROUNDS", 5))
ITERS = int(os.environ.get("ITERS", 20))
WARMUP = int(os.environ.get("WARMUP", 5))
# THREADS=1 compares the kernels alone (both engines on one thread), which a loaded machine
# disturbs far less than two threads that wait for each other.
THREADS = int(os.environ.get("THREADS", os.cpu_count()))

X400 = ["RegNetX-400MF"]
Y800 = ["RegNetY-800MF"]
CASES = {"x400": ("RegNetX-400MF, batch 8 at 224", X400, 8), "y800": ("RegNetY-800MF, batch 1 at 224", Y800, 1)}


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def regnet_ms(regnet, args, batch):
    cmd = [regnet, "time", *args, "--batch", str(batch), "--im-size", "224", "--warmup", str(WARMUP),
           "--iters", str(ITERS), "--json", "--forward-only"]
    env = {**os.environ, "RAYON_NUM_THREADS": str(THREADS)}
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    return 1000 * out["test_fw_time"], out.get("simd_level", "?")


def ort_ms(sess, batch):
    feed = {sess.get_inputs()[0].name: np.random.randn(batch, 3, 224, 224).astype(np.float32)}
    for _ in range(WARMUP):
        sess.run(None, feed)
    times = []
    for _ in range(ITERS):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main():
    regnet = sys.argv[1]
    other = sys.argv[2] if len(sys.argv) > 2 else None
    print(f"CPU: {cpu_model()} ({THREADS} threads), onnxruntime {ort.__version__}, "
          f"load {os.getloadavg()[0]:.2f}; {ROUNDS} rounds x {ITERS} iterations, alternating")
    with tempfile.TemporaryDirectory() as tmp:
        for key in os.environ.get("CASES", "x400,y800").split(","):
            name, args, batch = CASES[key]
            path = os.path.join(tmp, f"{key}.onnx")
            subprocess.run([regnet, "export", *args, "--format", "onnx", "--fold-bn", "--output", path],
                           check=True, capture_output=True)
            so = ort.SessionOptions()
            so.intra_op_num_threads = THREADS
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            r, o, b = [], [], []
            for i in range(ROUNDS):
                ms, simd = regnet_ms(regnet, args, batch)
                r.append(ms)
                o.append(ort_ms(sess, batch))
                line = f"  {name} round {i}: regnet {r[-1]:.2f} ms ({simd}), ORT {o[-1]:.2f} ms"
                if other:
                    b.append(regnet_ms(other, args, batch)[0])
                    line += f", other {b[-1]:.2f} ms"
                print(line)
            rm, om = statistics.median(r), statistics.median(o)
            line = f"{name}: regnet {rm:.2f} ms, ORT {om:.2f} ms, regnet's speed {om / rm:.2f}x ORT"
            if other:
                bm = statistics.median(b)
                line += f"; other {bm:.2f} ms ({om / bm:.2f}x ORT)"
            print(line + f" (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
