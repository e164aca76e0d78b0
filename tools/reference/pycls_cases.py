#!/usr/bin/env python3
"""Generates regnet-core's reference test data from pycls, torchvision and timm.

The output is committed under crates/regnet-core/tests/data; this script documents how it was
made and regenerates it. Needs torch, torchvision, timm, yacs, iopath, submitit and pycls's
current sources (the PyPI release is from 2020 and lacks blocks and activations):

    PYCLS_SRC=/path/to/pycls python tools/reference/pycls_cases.py stages > stages.json
    PYCLS_SRC=/path/to/pycls python tools/reference/pycls_cases.py random 400 > random.json
    PYCLS_SRC=/path/to/pycls python tools/reference/pycls_cases.py dump > dumps/pycls-head.yaml
    python tools/reference/pycls_cases.py dump > dumps/pycls-0.1.1.yaml   # pip install pycls==0.1.1

`random` samples configs of every model type pycls builds (RegNet, AnyNet, ResNet,
EfficientNet; every stem, block, activation; odd input sizes; any class count), and records
for each whether pycls builds the model, and if so its complexity.
"""

import json
import os
import random
import sys

sys.path.insert(0, os.environ.get("PYCLS_SRC", "."))

import yaml  # noqa: E402
from pycls.core.config import cfg, reset_cfg  # noqa: E402
import pycls.core.builders as builders  # noqa: E402
import pycls.core.net as net  # noqa: E402
import pycls.models.regnet as regnet  # noqa: E402

ZOO = {
    "RegNetX-200MF": (13, 24, 36.44, 2.49, 8),
    "RegNetX-400MF": (22, 24, 24.48, 2.54, 16),
    "RegNetX-600MF": (16, 48, 36.97, 2.24, 24),
    "RegNetX-800MF": (16, 56, 35.73, 2.28, 16),
    "RegNetX-1.6GF": (18, 80, 34.01, 2.25, 24),
    "RegNetX-3.2GF": (25, 88, 26.31, 2.25, 48),
    "RegNetX-4.0GF": (23, 96, 38.65, 2.43, 40),
    "RegNetX-6.4GF": (17, 184, 60.83, 2.07, 56),
    "RegNetX-8.0GF": (23, 80, 49.56, 2.88, 120),
    "RegNetX-12GF": (19, 168, 73.36, 2.37, 112),
    "RegNetX-16GF": (22, 216, 55.59, 2.1, 128),
    "RegNetX-32GF": (23, 320, 69.86, 2.0, 168),
    "RegNetY-200MF": (13, 24, 36.44, 2.49, 8),
    "RegNetY-400MF": (16, 48, 27.89, 2.09, 8),
    "RegNetY-600MF": (15, 48, 32.54, 2.32, 16),
    "RegNetY-800MF": (14, 56, 38.84, 2.4, 16),
    "RegNetY-1.6GF": (27, 48, 20.71, 2.65, 24),
    "RegNetY-3.2GF": (21, 80, 42.63, 2.66, 24),
    "RegNetY-4.0GF": (22, 96, 31.41, 2.24, 64),
    "RegNetY-6.4GF": (25, 112, 33.22, 2.27, 72),
    "RegNetY-8.0GF": (17, 192, 76.82, 2.19, 56),
    "RegNetY-12GF": (19, 168, 73.36, 2.37, 112),
    "RegNetY-16GF": (18, 200, 106.23, 2.48, 112),
    "RegNetY-32GF": (20, 232, 115.89, 2.53, 232),
}


def stages():
    """Per-stage widths, depths and group widths of the 24 zoo RegNets, pycls and torchvision."""
    from torchvision.models.regnet import BlockParams

    out = {}
    for name, (d, w0, wa, wm, g) in ZOO.items():
        reset_cfg()
        cfg.MODEL.TYPE = "regnet"
        cfg.REGNET.DEPTH, cfg.REGNET.W0, cfg.REGNET.WA = d, w0, wa
        cfg.REGNET.WM, cfg.REGNET.GROUP_W = wm, g
        ws, ds, ss, bs, gs = regnet.generate_regnet_full()
        _, _, _, _, ws_all, ws_cont = regnet.generate_regnet(wa, w0, wm, d)
        se = 0.25 if name.startswith("RegNetY") else None
        p = BlockParams.from_init_params(d, w0, wa, wm, g, se_ratio=se)
        out[name] = {
            "pycls": {"widths": ws, "depths": ds, "group_ws": gs, "ws_all": ws_all},
            "torchvision": {
                "widths": list(p.widths),
                "depths": list(p.depths),
                "group_ws": list(p.group_widths),
            },
        }
    json.dump(out, sys.stdout, indent=1)


def rand_float(rng, lo, hi, q):
    return round(rng.uniform(lo, hi) / q) * q


def random_regnet(rng):
    return {
        "MODEL": {"TYPE": "regnet"},
        "REGNET": {
            "DEPTH": rng.randint(1, 28),
            "W0": 8 * rng.randint(1, 32),
            "WA": round(rng.uniform(0, 120), 2),
            "WM": round(rng.uniform(1.5, 3.0), 2),
            "GROUP_W": rng.choice([1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 112]),
            "BOT_MUL": rng.choice([0.25, 0.5, 1.0, 1.0, 2.0, 4.0]),
            "SE_ON": rng.random() < 0.5,
            "SE_R": rng.choice([0.25, 0.1, 0.5]),
            "STEM_TYPE": rng.choice(["simple_stem_in", "res_stem_in", "res_stem_cifar"]),
            "STEM_W": rng.choice([16, 24, 32, 64]),
            "BLOCK_TYPE": rng.choice(
                ["res_bottleneck_block"] * 3
                + ["res_bottleneck_linear_block", "res_basic_block", "vanilla_block"]
            ),
            "STRIDE": rng.choice([1, 2, 2]),
            "HEAD_W": rng.choice([0, 0, 256, 1000]),
        },
    }


def random_anynet(rng):
    n = rng.randint(1, 5)
    block = rng.choice(
        ["res_bottleneck_block"] * 2
        + ["res_bottleneck_linear_block", "res_basic_block", "vanilla_block"]
    )
    cfgd = {
        "MODEL": {"TYPE": "anynet"},
        "ANYNET": {
            "STEM_TYPE": rng.choice(["simple_stem_in", "res_stem_in", "res_stem_cifar"]),
            "STEM_W": rng.choice([8, 16, 24, 32, 64]),
            "BLOCK_TYPE": block,
            "DEPTHS": [rng.randint(1, 4) for _ in range(n)],
            "WIDTHS": [rng.choice([8 * rng.randint(1, 64), rng.randint(4, 300)]) for _ in range(n)],
            "STRIDES": [rng.choice([1, 2, 2, 3]) for _ in range(n)],
            "HEAD_W": rng.choice([0, 0, 128]),
            "SE_ON": rng.random() < 0.5,
            "SE_R": rng.choice([0.25, 0.1]),
        },
    }
    if block.startswith("res_bottleneck") or rng.random() < 0.2:
        cfgd["ANYNET"]["BOT_MULS"] = [rng.choice([0.25, 0.5, 1.0, 2.0]) for _ in range(n)]
        cfgd["ANYNET"]["GROUP_WS"] = [rng.choice([1, 2, 4, 8, 16, 24, 32, 48]) for _ in range(n)]
    return cfgd


def random_effnet(rng):
    n = rng.randint(1, 7)
    return {
        "MODEL": {"TYPE": "effnet"},
        "EN": {
            "STEM_W": rng.choice([16, 32, 40, 48]),
            "DEPTHS": [rng.randint(1, 3) for _ in range(n)],
            "WIDTHS": [8 * rng.randint(2, 40) for _ in range(n)],
            "EXP_RATIOS": [rng.choice([1, 3, 4, 6, 2.5]) for _ in range(n)],
            "KERNELS": [rng.choice([3, 5, 7]) for _ in range(n)],
            "STRIDES": [rng.choice([1, 2]) for _ in range(n)],
            "SE_R": rng.choice([0.25, 0.1, 0.5]),
            "HEAD_W": rng.choice([640, 1280, 1536]),
        },
    }


def random_resnet(rng):
    if rng.random() < 0.5:
        return {
            "MODEL": {"TYPE": "resnet", "DEPTH": 6 * rng.randint(1, 9) + 2},
            "RESNET": {"TRANS_FUN": "basic_transform"},
            "TRAIN": {"DATASET": "cifar10"},
            "TEST": {"DATASET": "cifar10"},
        }
    return {
        "MODEL": {"TYPE": "resnet", "DEPTH": rng.choice([50, 101, 152])},
        "RESNET": {
            "TRANS_FUN": "bottleneck_transform",
            "NUM_GROUPS": rng.choice([1, 2, 8, 32, 64]),
            "WIDTH_PER_GROUP": rng.choice([4, 8, 16, 64]),
            "STRIDE_1X1": rng.random() < 0.5,
        },
        "TRAIN": {"DATASET": "imagenet"},
        "TEST": {"DATASET": "imagenet"},
    }


def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict):
            merge(dst.setdefault(k, {}), v)
        else:
            dst[k] = v


def random_cases(n):
    rng = random.Random(0)
    makers = [random_regnet] * 4 + [random_anynet] * 3 + [random_effnet] * 2 + [random_resnet]
    cases = []
    while len(cases) < n:
        c = rng.choice(makers)(rng)
        merge(c, {"MODEL": {"NUM_CLASSES": rng.choice([10, 100, 1000, 7]),
                            "ACTIVATION_FUN": rng.choice(["relu", "silu"])}})
        merge(c, {"TRAIN": {"IM_SIZE": rng.choice([32, 33, 64, 97, 160, 224, 225, 255])}})
        text = yaml.safe_dump(c, sort_keys=False)
        reset_cfg()
        cfg.merge_from_other_cfg(cfg.load_cfg(text))
        case = {"yaml": text}
        try:
            model_class = builders.get_model()
            model_class()  # pycls must also build it, not only count it
            case["complexity"] = net.complexity(model_class)
        except Exception as e:  # noqa: BLE001
            case["error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    json.dump(cases, sys.stdout, indent=1)


def dump():
    """A full config.yaml as pycls writes it to OUT_DIR, for a RegNetY with overrides."""
    reset_cfg()
    cfg.MODEL.TYPE = "regnet"
    cfg.REGNET.SE_ON = True
    cfg.REGNET.DEPTH, cfg.REGNET.W0, cfg.REGNET.WA, cfg.REGNET.WM = 14, 56, 38.84, 2.4
    cfg.MODEL.NUM_CLASSES = 1000
    cfg.OPTIM.WEIGHT_DECAY = 5e-5
    cfg.dump(stream=sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "stages":
        stages()
    elif sys.argv[1] == "dump":
        dump()
    else:
        random_cases(int(sys.argv[2]))
