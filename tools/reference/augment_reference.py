"""pycls's AutoAugment / RandAugment (pycls/datasets/augment.py) as a fixture for
regnet-data's augmentation test (crates/regnet-data/tests/augment.rs).

Writes two files:
- augment_reference.json: pycls's tables (OP_RANGES, AUTOAUG_POLICY, RANDAUG_OPS,
  POSTERIZE_MIN, WARP_PARAMS), the input image's size, and the list of cases below;
- augment_reference.bin: the 8-bit RGB input image (HWC), then the output of each case, in
  order, each as many bytes as the input.

Cases: every op of OP_FUNCTIONS at a few magnitudes, with the level computed as pycls's
apply_op computes it (`magnitude * (max - min) + min`, negated for the "-" sign of ops whose
range allows it), applied with probability 1; then every AutoAugment sub-policy with both of
its ops applied in order (probability forced to 1, positive sign), which checks the
magnitudes of the policy table end to end.

pycls 0.1.1 on PyPI predates augment.py; pass the file from pycls's repository (tested with
facebookresearch/pycls at 5719de6, Pillow 13.0.0):

    git -C <pycls checkout> show HEAD:pycls/datasets/augment.py > /tmp/pycls_augment.py
    target/bench-venv/bin/python tools/reference/augment_reference.py /tmp/pycls_augment.py \
        crates/regnet-data/tests/data
"""

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

H, W = 24, 32
MAGNITUDES = [0.0, 0.3, 0.55, 0.8, 1.0]


def load_augment(path):
    spec = importlib.util.spec_from_file_location("pycls_augment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_image():
    """A deterministic pattern with edges, gradients and uneven per-channel ranges, so that
    autocontrast, equalize and the filters all have work to do."""
    y, x = np.mgrid[0:H, 0:W]
    r = (x * 7 + y * 3) % 181 + 20
    g = (x * y * 13 + 5 * x) % 256
    b = 50 + ((x ^ y) * 11) % 131
    b = np.where((x // 8 + y // 6) % 2 == 0, b, 255 - b)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def level(aug, op, magnitude, sign):
    min_v, max_v, negate = aug.OP_RANGES[op]
    v = magnitude * (max_v - min_v) + min_v
    return -v if (negate and sign < 0) else v


def main():
    aug = load_augment(sys.argv[1])
    out_dir = Path(sys.argv[2])
    im = test_image()
    pil = Image.fromarray(im)
    blobs = [im.tobytes()]
    cases = []
    for op in aug.OP_FUNCTIONS:
        signs = [1, -1] if aug.OP_RANGES[op][2] else [1]
        for magnitude in MAGNITUDES:
            for sign in signs:
                v = level(aug, op, magnitude, sign)
                out = np.asarray(aug.OP_FUNCTIONS[op](pil, v).convert("RGB"))
                assert out.shape == im.shape
                blobs.append(out.tobytes())
                cases.append({"kind": "op", "op": op, "magnitude": magnitude, "sign": sign})
    for i, sub_policy in enumerate(aug.AUTOAUG_POLICY):
        out = pil
        for op, _prob, magnitude in sub_policy:
            out = aug.OP_FUNCTIONS[op](out, level(aug, op, magnitude, 1))
        blobs.append(np.asarray(out.convert("RGB")).tobytes())
        cases.append({"kind": "sub_policy", "index": i})
    source = Path(sys.argv[1]).read_bytes()
    meta = {
        "about": "pycls augment.py tables and op outputs; see tools/reference/augment_reference.py",
        "pillow": PIL.__version__,
        "augment_py_sha256": hashlib.sha256(source).hexdigest(),
        "height": H,
        "width": W,
        "posterize_min": aug.POSTERIZE_MIN,
        "fillcolor": list(aug.WARP_PARAMS["fillcolor"]),
        "resample": str(Image.Resampling(aug.WARP_PARAMS["resample"]).name),
        "op_ranges": {op: [float(a), float(b), bool(n)] for op, (a, b, n) in aug.OP_RANGES.items()},
        "op_functions": list(aug.OP_FUNCTIONS),
        "auto_augment_policy": [[[op, p, m] for op, p, m in sp] for sp in aug.AUTOAUG_POLICY],
        "rand_augment_ops": list(aug.RANDAUG_OPS),
        "cases": cases,
    }
    (out_dir / "augment_reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out_dir / "augment_reference.bin").write_bytes(b"".join(blobs))


if __name__ == "__main__":
    main()
