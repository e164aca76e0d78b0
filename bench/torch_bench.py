#!/usr/bin/env python3
"""PyTorch and ONNX Runtime side of regnet's benchmarks (see bench/compare.sh).

The models come from pycls (the PyPI release), so they are the same networks regnet builds:

    python bench/torch_bench.py forward   # RegNetX-400MF, batch 8 at 224, eval mode
    python bench/torch_bench.py train     # RegNetX-400MF with the CIFAR stem, batch 64 at 32

Prints one JSON object of median milliseconds per batch.
"""

import json
import os
import sys
import tempfile
import time

import torch

from pycls.core.config import cfg
import pycls.core.builders as builders


def regnetx_400mf(cifar):
    cfg.MODEL.TYPE = "regnet"
    cfg.REGNET.DEPTH, cfg.REGNET.W0, cfg.REGNET.WA, cfg.REGNET.WM = 22, 24, 24.48, 2.54
    cfg.REGNET.GROUP_W = 16
    cfg.MODEL.NUM_CLASSES = 10 if cifar else 1000
    if cifar:
        cfg.REGNET.STEM_TYPE = "res_stem_cifar"
    return builders.build_model()


def median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    times.sort()
    return times[len(times) // 2]


def forward(warmup, iters):
    model = regnetx_400mf(cifar=False).eval()
    x = torch.randn(8, 3, 224, 224)
    with torch.no_grad():
        torch_ms = median_ms(lambda: model(x), warmup, iters)
    out = {"pytorch_ms": torch_ms, "torch": torch.__version__}
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.onnx")
            torch.onnx.export(model, x, path, opset_version=17, input_names=["x"], dynamo=False)
            so = ort.SessionOptions()
            so.intra_op_num_threads = os.cpu_count()
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            feed = {"x": x.numpy()}
            out["onnxruntime_ms"] = median_ms(lambda: sess.run(None, feed), warmup, iters)
            out["onnxruntime"] = ort.__version__
    except Exception as e:  # noqa: BLE001
        out["onnxruntime_error"] = f"{type(e).__name__}: {e}"
    return out


def train(warmup, iters):
    model = regnetx_400mf(cifar=True).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-5)
    loss_fun = torch.nn.CrossEntropyLoss()
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        loss_fun(model(x), y).backward()
        opt.step()

    ms = median_ms(step, warmup, iters)
    return {"pytorch_ms": ms, "pytorch_images_per_s": 64 / ms * 1000, "torch": torch.__version__}


if __name__ == "__main__":
    torch.set_num_threads(os.cpu_count())
    what = sys.argv[1]
    warmup, iters = int(os.environ.get("WARMUP", 5)), int(os.environ.get("ITERS", 30))
    print(json.dumps(forward(warmup, iters) if what == "forward" else train(warmup, iters)))
