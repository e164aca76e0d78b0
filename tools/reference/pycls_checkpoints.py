#!/usr/bin/env python3
"""Writes small pycls checkpoints for regnet's parity tests of `regnet forward`.

For each model: `<name>/config.yaml` (the full config pycls dumps), `<name>/model.pyth` (a
checkpoint as pycls's `save_checkpoint` writes it: epoch, model_state, ema_state,
optimizer_state, cfg), and `<name>/io.safetensors` with `input` and the eval-mode `logits`
(and `logits_ema` from the EMA weights). BN statistics are made non-trivial first.

    PYCLS_SRC=/path/to/pycls python tools/reference/pycls_checkpoints.py OUT_DIR
"""

import os
import sys

sys.path.insert(0, os.environ.get("PYCLS_SRC", "."))

import torch  # noqa: E402
from pycls.core.config import cfg, reset_cfg  # noqa: E402
import pycls.core.builders as builders  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

MODELS = {
    "anynet_vanilla_cifar": {
        "MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
        "ANYNET": {"STEM_TYPE": "res_stem_cifar", "STEM_W": 16, "BLOCK_TYPE": "vanilla_block",
                   "DEPTHS": [1, 2, 1], "WIDTHS": [16, 24, 32], "STRIDES": [1, 2, 2]},
        "TRAIN": {"IM_SIZE": 32},
    },
    "anynet_basic_simple_silu": {
        "MODEL": {"TYPE": "anynet", "NUM_CLASSES": 7, "ACTIVATION_FUN": "silu"},
        "ANYNET": {"STEM_TYPE": "simple_stem_in", "STEM_W": 16, "BLOCK_TYPE": "res_basic_block",
                   "DEPTHS": [2, 1], "WIDTHS": [16, 40], "STRIDES": [1, 2], "HEAD_W": 48},
        "TRAIN": {"IM_SIZE": 33},
    },
    "anynet_bottleneck_se_resstem": {
        "MODEL": {"TYPE": "anynet", "NUM_CLASSES": 5},
        "ANYNET": {"STEM_TYPE": "res_stem_in", "STEM_W": 24, "BLOCK_TYPE": "res_bottleneck_block",
                   "DEPTHS": [1, 2, 1], "WIDTHS": [32, 48, 64], "STRIDES": [1, 2, 2],
                   "BOT_MULS": [0.25, 0.5, 1.0], "GROUP_WS": [8, 8, 16], "SE_ON": True, "SE_R": 0.25},
        "TRAIN": {"IM_SIZE": 64},
    },
    "anynet_linear_bottleneck": {
        "MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
        "ANYNET": {"STEM_TYPE": "res_stem_cifar", "STEM_W": 16, "BLOCK_TYPE": "res_bottleneck_linear_block",
                   "DEPTHS": [2, 2], "WIDTHS": [16, 32], "STRIDES": [1, 2],
                   "BOT_MULS": [2.0, 1.0], "GROUP_WS": [4, 8]},
        "TRAIN": {"IM_SIZE": 32},
    },
    "regnety_small": {
        "MODEL": {"TYPE": "regnet", "NUM_CLASSES": 10},
        "REGNET": {"STEM_TYPE": "res_stem_cifar", "STEM_W": 16, "DEPTH": 6, "W0": 16, "WA": 12.0,
                   "WM": 2.0, "GROUP_W": 8, "BOT_MUL": 0.5, "SE_ON": True},
        "TRAIN": {"IM_SIZE": 32},
    },
    "resnet_cifar": {
        "MODEL": {"TYPE": "resnet", "DEPTH": 8, "NUM_CLASSES": 10},
        "RESNET": {"TRANS_FUN": "basic_transform"},
        "TRAIN": {"DATASET": "cifar10", "IM_SIZE": 32},
        "TEST": {"DATASET": "cifar10"},
    },
    "effnet_small": {
        "MODEL": {"TYPE": "effnet", "NUM_CLASSES": 10, "ACTIVATION_FUN": "silu"},
        "EN": {"STEM_W": 16, "DEPTHS": [1, 2, 1], "WIDTHS": [16, 24, 40], "EXP_RATIOS": [1, 6, 4],
               "KERNELS": [3, 5, 3], "STRIDES": [1, 2, 2], "HEAD_W": 64},
        "TRAIN": {"IM_SIZE": 32},
    },
}


def merge(node, d):
    for k, v in d.items():
        if isinstance(v, dict):
            merge(getattr(node, k), v)
        else:
            setattr(node, k, v)


def perturb_bn(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 1 + 0.2 * torch.randn(c, generator=gen)
            m.bias.data = 0.1 * torch.randn(c, generator=gen)
            m.running_mean.data = 0.1 * torch.randn(c, generator=gen)
            m.running_var.data = 1 + 0.5 * torch.rand(c, generator=gen)


def main(out_dir):
    for name, overrides in MODELS.items():
        reset_cfg()
        merge(cfg, overrides)
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(1)
        model = builders.build_model()
        perturb_bn(model, gen)
        model.eval()
        ema = builders.build_model()
        ema.load_state_dict(model.state_dict())
        for p in ema.parameters():
            p.data += 0.01 * torch.randn(p.shape, generator=gen)
        ema.eval()
        size = cfg.TRAIN.IM_SIZE
        x = torch.randn(2, 3, size, size, generator=gen)
        with torch.no_grad():
            logits, logits_ema = model(x), ema(x)
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.yaml"), "w") as f:
            cfg.dump(stream=f)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        checkpoint = {
            "epoch": 3,
            "model_state": model.state_dict(),
            "ema_state": ema.state_dict(),
            "optimizer_state": opt.state_dict(),
            "cfg": cfg.dump(),
        }
        torch.save(checkpoint, os.path.join(d, "model.pyth"))
        save_file({"input": x.contiguous(), "logits": logits, "logits_ema": logits_ema},
                  os.path.join(d, "io.safetensors"))
        print(name, sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main(sys.argv[1])
