"""The effective optimizer step of pycls's 8-GPU zoo recipes, as pycls computes it, as a JSON
fixture for `regnet train`'s step line (crates/regnet-cli/tests/train_step_plan.rs).

pycls runs NUM_GPUS processes; each one's train loader takes int(TRAIN.BATCH_SIZE / NUM_GPUS)
images (pycls/datasets/loader.py), and config.assert_and_infer_cfg requires the batch to be a
multiple of NUM_GPUS. The learning rate of an epoch is optimizer.get_epoch_lr(epoch): the
policy times OPTIM.BASE_LR, with linear warm-up, and no scaling by NUM_GPUS.

Usage (reference configs in ../shared/reference/pycls/configs):
    target/bench-venv/bin/python tools/reference/pycls_step_plan.py ../shared/reference \
        > crates/regnet-cli/tests/data/pycls_step_plan.json
"""

import json
import os
import sys

import pycls.core.config as config
import pycls.core.optimizer as optim
from pycls.core.config import cfg

CONFIGS = [
    "regnetx/RegNetX-400MF_dds_8gpu.yaml",
    "regnety/RegNetY-16GF_dds_8gpu.yaml",
    "resnet/R-50-1x64d_dds_8gpu.yaml",
    "regnetx/RegNetX-200MF_dds_8gpu.yaml",
]


def step_plan(path):
    config.reset_cfg()
    cfg.merge_from_file(path)
    config.assert_and_infer_cfg(cache_urls=False)
    return {
        "batch": cfg.TRAIN.BATCH_SIZE,
        "num_gpus": cfg.NUM_GPUS,
        "replica_batch": int(cfg.TRAIN.BATCH_SIZE / cfg.NUM_GPUS),
        "base_lr": cfg.OPTIM.BASE_LR,
        "epoch1_lr": float(optim.get_epoch_lr(0)),
        "warmup_epochs": cfg.OPTIM.WARMUP_EPOCHS,
    }


def main():
    root = os.path.join(sys.argv[1], "pycls/configs/dds_baselines")
    out = {c: step_plan(os.path.join(root, c)) for c in CONFIGS}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
