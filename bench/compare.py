#!/usr/bin/env python3
"""regnet next to PyTorch (eager) and ONNX Runtime on this machine, in one run.

Four cases (issue 9), engines alternating round by round so that load from elsewhere hits all
of them alike, regnet always next to the engine its target is set against:
  1. RegNetX-400MF forward, batch 8 at 224 (eval)          regnet, PyTorch, ONNX Runtime
  2. RegNetY-800MF forward, batch 1 at 224 (eval)          regnet, PyTorch, ONNX Runtime
  3. RegNetX-400MF, CIFAR stem, training step, batch 64 at 32   regnet, PyTorch
  4. the default Fashion-MNIST model, training step, batch 128 at 28   regnet, PyTorch
The PyTorch networks are built by pycls (the same networks); ONNX Runtime runs the graph that
`regnet export --format onnx --fold-bn` writes. Training steps are SGD with Nesterov momentum.

Usage: python bench/compare.py REGNET_BINARY   (ROUNDS=7 ITERS=20 WARMUP=5 by default)
Prints a table of median ms (forward) and images/s (training), the ratios, the CPU model and
the SIMD level each engine used.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
from pycls.core.config import cfg
import pycls.core.builders as builders

ROUNDS = int(os.environ.get("ROUNDS", 7))
ITERS = int(os.environ.get("ITERS", 20))
WARMUP = int(os.environ.get("WARMUP", 5))
THREADS = os.cpu_count()

# Each case's network as pycls keys: regnet reads them as overrides, pycls builds from them.
X400 = {"MODEL.TYPE": "regnet", "REGNET.DEPTH": 22, "REGNET.W0": 24, "REGNET.WA": 24.48,
        "REGNET.WM": 2.54, "REGNET.GROUP_W": 16, "MODEL.NUM_CLASSES": 1000}
Y800 = {"MODEL.TYPE": "regnet", "REGNET.SE_ON": True, "REGNET.DEPTH": 14, "REGNET.W0": 56,
        "REGNET.WA": 38.84, "REGNET.WM": 2.4, "REGNET.GROUP_W": 16, "MODEL.NUM_CLASSES": 1000}
X400_CIFAR = {**X400, "REGNET.STEM_TYPE": "res_stem_cifar", "MODEL.NUM_CLASSES": 10}
# The default `regnet train` model (crates/regnet-core/src/recipe.rs), 1 input channel.
DEFAULT = {"MODEL.TYPE": "regnet", "REGNET.STEM_TYPE": "res_stem_cifar", "REGNET.STEM_W": 16,
           "REGNET.DEPTH": 10, "REGNET.W0": 16, "REGNET.WA": 12.0, "REGNET.WM": 2.5,
           "REGNET.GROUP_W": 8, "MODEL.NUM_CLASSES": 10}
# (name, kind, keys, batch, image size, input channels)
CASES = [
    ("RegNetX-400MF forward, batch 8 at 224", "fw", X400, 8, 224, 3),
    ("RegNetY-800MF forward, batch 1 at 224", "fw", Y800, 1, 224, 3),
    ("RegNetX-400MF, CIFAR stem, training step, batch 64 at 32", "train", X400_CIFAR, 64, 32, 3),
    ("default Fashion-MNIST model, training step, batch 128 at 28", "train", DEFAULT, 128, 28, 1),
]


def overrides(keys, channels):
    args = []
    for k, v in keys.items():
        args += [k, str(v)]
    return args + ["EXT.IN_CHANNELS", str(channels)]


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def torch_model(keys, channels):
    """The pycls network of a case, built by pycls from the same keys."""
    cfg.defrost()
    cfg.merge_from_list([x for k, v in keys.items() for x in (k, v)])
    model = builders.build_model()
    if channels != 3:  # pycls's stems take 3 channels; the default model takes 1
        old = model.stem.conv
        model.stem.conv = torch.nn.Conv2d(channels, old.out_channels, old.kernel_size,
                                          old.stride, old.padding, bias=False)
    cfg.merge_from_other_cfg(DEFAULT_CFG)
    return model


def median_ms(fn):
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(ITERS):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def regnet_ms(regnet, kind, args, batch, size):
    cmd = [regnet, "time", *args, "--batch", str(batch), "--im-size", str(size),
           "--warmup", str(WARMUP), "--iters", str(ITERS), "--json"]
    if kind == "fw":
        cmd.append("--forward-only")
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    key = "test_fw_time" if kind == "fw" else "train_step_time"
    return 1000 * out[key], out.get("simd_level", "?")


def torch_ms(model, kind, batch, size, channels):
    x = torch.randn(batch, channels, size, size)
    if kind == "fw":
        model.eval()
        with torch.no_grad():
            return median_ms(lambda: model(x))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                          weight_decay=5e-5)
    loss_fun = torch.nn.CrossEntropyLoss()
    y = torch.randint(0, model.head.fc.out_features, (batch,))

    def step():
        opt.zero_grad()
        loss_fun(model(x), y).backward()
        opt.step()

    return median_ms(step)


def ort_session(regnet, args, tmp):
    path = os.path.join(tmp, "model.onnx")
    subprocess.run([regnet, "export", *args, "--format", "onnx", "--fold-bn", "--output", path],
                   check=True, capture_output=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_ms(sess, batch, size, channels):
    feed = {sess.get_inputs()[0].name: np.random.randn(batch, channels, size, size).astype(np.float32)}
    return median_ms(lambda: sess.run(None, feed))


def run_case(regnet, case, tmp):
    name, kind, keys, batch, size, ch = case
    args = overrides(keys, ch)
    model = torch_model(keys, ch)
    sess = ort_session(regnet, args, tmp) if kind == "fw" else None
    res = {"regnet": [], "pytorch": [], "onnxruntime": []}
    simd = "?"

    def run_regnet():
        nonlocal simd
        ms, simd = regnet_ms(regnet, kind, args, batch, size)
        return ms

    # regnet next to the engine its target is set against (ONNX Runtime for inference,
    # PyTorch for training), which runs right before or right after it (the order flips
    # every round): load from elsewhere comes in stretches of seconds, and a round's ratio
    # compares times taken under the same load.
    engines = {"regnet": run_regnet,
               "pytorch": lambda: torch_ms(model, kind, batch, size, ch)}
    if sess is not None:
        engines = {"pytorch": engines["pytorch"], "regnet": run_regnet,
                   "onnxruntime": lambda: ort_ms(sess, batch, size, ch)}
    for r in range(ROUNDS):
        order = list(engines) if r % 2 == 0 else list(reversed(engines))
        for engine in order:
            res[engine].append(engines[engine]())
    med = {k: statistics.median(v) for k, v in res.items() if v}
    return name, kind, batch, med, simd, res


def main():
    regnet = sys.argv[1]
    torch.set_num_threads(THREADS)
    print(f"CPU: {cpu_model()} ({THREADS} threads); torch {torch.__version__} "
          f"(SIMD {torch.backends.cpu.get_cpu_capability()}), onnxruntime {ort.__version__} "
          f"({os.path.dirname(ort.__file__)}); "
          f"{ROUNDS} rounds x {ITERS} iterations, engines alternating")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            rows.append(run_case(regnet, case, tmp))
    print()
    print("| case | regnet | PyTorch | ONNX Runtime | regnet's speed |")
    print("|---|---|---|---|---|")
    for name, kind, batch, med, simd, _ in rows:
        r, t, o = med["regnet"], med["pytorch"], med.get("onnxruntime")
        if kind == "fw":
            ratio = f"{t / r:.2f}x PyTorch" + (f", {o / r:.2f}x ORT" if o else "")
            ort_s = f"{o:.1f} ms" if o else "-"
            print(f"| {name} | {r:.1f} ms ({simd}) | {t:.1f} ms | {ort_s} | {ratio} |")
        else:
            ips = lambda ms: batch / ms * 1000  # noqa: E731
            print(f"| {name} | {ips(r):.0f} img/s | {ips(t):.0f} img/s | - | "
                  f"{t / r:.2f}x PyTorch |")
    print_rounds(rows)


def print_rounds(rows):
    """regnet's speed round by round (the same round's times), against issue 9's targets:
    inference at least ONNX Runtime's speed, training at least 1.5x PyTorch's."""
    print()
    print("Round by round:")
    for name, kind, _, _, _, res in rows:
        ref, engine, target = ((res["onnxruntime"], "ORT", 1.0) if kind == "fw"
                               else (res["pytorch"], "PyTorch", 1.5))
        if not ref:
            continue
        ratios = [o / r for o, r in zip(ref, res["regnet"])]
        below = sum(x < target for x in ratios)
        print(f"  {name}: " + " ".join(f"{x:.2f}" for x in ratios)
              + f"x {engine} (below {target}x in {below} of {len(ratios)})")


DEFAULT_CFG = cfg.clone()

if __name__ == "__main__":
    main()
