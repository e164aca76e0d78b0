#!/usr/bin/env python3
"""Runs an ONNX model exported by `regnet export --format onnx` in ONNX Runtime.

Usage: run_onnx.py MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin [--optimize none|all]

Checks the model with onnx.checker (full_check: strict shape inference too), runs it on the
raw little-endian f32 input of the given shape, writes the logits as raw f32 and prints a JSON
summary (opset, IR version, metadata, declared input/output shapes, operator types, logits
shape) for the Rust tests to assert on. Used by crates/regnet-onnx/tests/onnxruntime.rs.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def dims(value_info):
    """Declared shape: ints for fixed dimensions, names for symbolic ones."""
    out = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_param if d.HasField("dim_param") else d.dim_value)
    return out


def main(argv):
    if len(argv) not in (4, 6):
        sys.exit(__doc__)
    model_path, input_path, shape, output_path = argv[:4]
    optimize = argv[5] if len(argv) == 6 and argv[4] == "--optimize" else "all"
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    shape = [int(s) for s in shape.split(",")]
    x = np.fromfile(input_path, dtype="<f4").reshape(shape)
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if optimize == "none"
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    session = ort.InferenceSession(
        model_path, options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    (logits,) = session.run(None, {name: x})
    logits.astype("<f4").tofile(output_path)
    summary = {
        "ir_version": model.ir_version,
        "opset": [[o.domain, o.version] for o in model.opset_import],
        "metadata": {p.key: p.value for p in model.metadata_props},
        "input": [model.graph.input[0].name, dims(model.graph.input[0])],
        "output": [model.graph.output[0].name, dims(model.graph.output[0])],
        "ops": sorted({n.op_type for n in model.graph.node}),
        "logits_shape": list(logits.shape),
        "onnxruntime": ort.__version__,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
