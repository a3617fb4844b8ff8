"""Writes examples/outlier_channel/digits_outlier.onnx: the trained digits CNN with one channel that
defeats per-tensor int8 activations while the float function stays the same.

The first layer (Conv -> BatchNormalization -> Relu) feeds a depthwise 3x3 conv. Channel CHANNEL of the
first layer is multiplied by SCALE (BatchNormalization's gamma and beta of that channel, so the Relu
output of the channel is SCALE times larger: Relu(a x) = a Relu(x) for a > 0) and the depthwise filter
that reads it is divided by SCALE. Float outputs are unchanged up to float32 rounding, but the Relu
output's per-tensor int8 range now spans the one large channel: the other 15 channels keep about
log2(SCALE) fewer bits, and minmax int8 loses several points of top-1 on val.npz. Cross-layer
equalisation (`build --equalize`) undoes the imbalance exactly.

    .venv/bin/python examples/outlier_channel/make_model.py [--check]

Inputs: examples/digits/digits_cnn.onnx (committed). Needs only onnx and numpy. --check verifies the
committed model equals what this script writes.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "digits" / "digits_cnn.onnx"
TARGET = HERE / "digits_outlier.onnx"
CHANNEL = 5
SCALE = 100.0
# the first layer's BatchNormalization and the depthwise conv that reads its Relu output
GAMMA, BETA, DEPTHWISE_WEIGHT = "features.1.weight", "features.1.bias", "features.3.weight"


# The shared variant: channel CHANNEL of the 1x1 conv before the residual block (its output feeds the
# block's first conv and its skip Add). Scaled there, in the block's last BatchNorm (so the Add sees one
# scale) and divided back in the block's first conv input and the classifier: equalisation cannot touch
# it (each tensor has two readers), so --accuracy-budget must raise layers.
SHARED = (("features.7.weight", 0, SCALE), ("features.7.bias", 0, SCALE), ("features.10.body.0.weight", 1, 1 / SCALE),
          ("features.10.body.4.weight", 0, SCALE), ("features.10.body.4.bias", 0, SCALE),
          ("classifier.weight", 1, 1 / SCALE))


def outlier_model(model: onnx.ModelProto, edits=((GAMMA, 0, SCALE), (BETA, 0, SCALE), (DEPTHWISE_WEIGHT, 0, 1 / SCALE)),
                  what="the first layer") -> onnx.ModelProto:
    """`model` with channel CHANNEL of each (initializer, axis) multiplied by its factor."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {init.name: init for init in model.graph.initializer}
    for name, axis, factor in edits:
        array = numpy_helper.to_array(weights[name]).copy()
        np.moveaxis(array, axis, 0)[CHANNEL] *= np.float32(factor)
        weights[name].CopyFrom(numpy_helper.from_array(array, name))
    model.doc_string = f"digits CNN with channel {CHANNEL} of {what} scaled x{SCALE:g} (see make_model.py)"
    return model


def shared_outlier_model(model: onnx.ModelProto) -> onnx.ModelProto:
    return outlier_model(model, SHARED, "the residual block's input and output")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed model instead of writing it")
    args = parser.parse_args(argv)
    data = outlier_model(onnx.load(SOURCE)).SerializeToString()
    if args.check:
        same = TARGET.exists() and TARGET.read_bytes() == data
        print(f"{TARGET.name}: {'up to date' if same else 'DIFFERS from make_model.py output'}")
        return 0 if same else 1
    TARGET.write_bytes(data)
    print(f"wrote {TARGET} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
