"""Trains the digits CNN and writes examples/digits/{digits_cnn.onnx, calib.npz, val.npz}.

Data: scikit-learn's bundled 8x8 digits (sklearn.datasets.load_digits, 1797 images,
10 classes, pixels 0..16; shipped inside the sklearn package, no download). Inputs are
float32 NCHW [N, 1, 8, 8] scaled to [0, 1] (pixel / 16, exact in float32).

Split (fixed, stratified, sklearn.model_selection.train_test_split):
  1. validation: 540 images (~30%) split off first  (random_state=0)
  2. calibration: 180 images (~10%) split off the remaining 1257 (random_state=1),
     so calibration data never overlaps validation
  3. train: the remaining 1077 images (~60%)

Usage (from the repo root):
  .venv/bin/python examples/digits/train.py              # split + train + export (needs torch)
  .venv/bin/python examples/digits/train.py --data-only  # only rewrite calib.npz / val.npz (no torch)
  .venv/bin/python examples/digits/train.py --check      # verify committed npz == split (no torch)

Training needs torch 2.13.0 CPU (`.venv/bin/pip install torch==2.13.0`); torch is not a
project dependency: the trained model is committed. Training is seeded, single-threaded
and deterministic; it takes a few seconds on CPU.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

VAL_SIZE = 540
CALIB_SIZE = 180
VAL_SEED = 0
CALIB_SEED = 1
TORCH_SEED = 0
EPOCHS = 40
BATCH = 32
LR = 5e-3
WEIGHT_DECAY = 1e-4
OPSET = 17
IR_VERSION = 10  # onnxruntime 1.31 reads at most IR 13; torch writes a newer one


def load_split():
    """The fixed split as a dict of float32 [N,1,8,8] images and int64 [N] labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_rest, x_val, y_rest, y_val = train_test_split(
        x, y, test_size=VAL_SIZE, random_state=VAL_SEED, stratify=y
    )
    x_train, x_calib, y_train, y_calib = train_test_split(
        x_rest, y_rest, test_size=CALIB_SIZE, random_state=CALIB_SEED, stratify=y_rest
    )
    return {
        "train": (np.ascontiguousarray(x_train), y_train),
        "calib": (np.ascontiguousarray(x_calib), y_calib),
        "val": (np.ascontiguousarray(x_val), y_val),
    }


def write_data(split, out: Path):
    x_calib, _ = split["calib"]
    x_val, y_val = split["val"]
    np.savez_compressed(out / "calib.npz", image=x_calib)
    np.savez_compressed(out / "val.npz", image=x_val, label=y_val)
    np.save(out / "sample.npy", x_val[:1])  # one model input (`make demo` runs it)
    print(f"wrote {out / 'calib.npz'} image{list(x_calib.shape)}")
    print(f"wrote {out / 'val.npz'} image{list(x_val.shape)} label{list(y_val.shape)}")


def check_data(split, out: Path) -> bool:
    ok = True
    with np.load(out / "calib.npz") as c:
        ok &= c["image"].dtype == np.float32 and np.array_equal(c["image"], split["calib"][0])
    with np.load(out / "val.npz") as v:
        ok &= v["image"].dtype == np.float32 and np.array_equal(v["image"], split["val"][0])
        ok &= v["label"].dtype == np.int64 and np.array_equal(v["label"], split["val"][1])
    ok &= np.array_equal(np.load(out / "sample.npy"), split["val"][0][:1])
    print("committed data matches the split" if ok else "committed data DIFFERS from the split")
    return bool(ok)


def build_model():
    import torch
    from torch import nn

    def conv_bn(cin, cout, k, groups=1):
        return [nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout)]

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(*conv_bn(c, c, 3), nn.ReLU(), *conv_bn(c, c, 3))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.body(x) + x)

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                *conv_bn(1, 16, 3), nn.ReLU(),                 # stem: Conv3x3+BN+ReLU   16x8x8
                *conv_bn(16, 16, 3, groups=16), nn.ReLU6(),    # depthwise+BN+ReLU6      16x8x8
                *conv_bn(16, 32, 1), nn.ReLU(),                # pointwise+BN+ReLU       32x8x8
                nn.MaxPool2d(2),                               #                         32x4x4
                Residual(32),                                  # residual block          32x4x4
                nn.AdaptiveAvgPool2d(1),                       # GlobalAveragePool       32x1x1
                nn.Flatten(),                                  # Flatten                 32
            )
            self.classifier = nn.Linear(32, 10)                # Gemm                    10

        def forward(self, x):
            return self.classifier(self.features(x))

    return DigitsCNN()


def train(split):
    import torch
    from torch import nn

    torch.manual_seed(TORCH_SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = (torch.from_numpy(a) for a in split["train"])
    x_val, y_val = (torch.from_numpy(a) for a in split["val"])
    model = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps = EPOCHS * ((len(x_train) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(TORCH_SEED)

    t0 = time.perf_counter()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0 or epoch == EPOCHS - 1:
            model.eval()
            with torch.no_grad():
                acc = (model(x_val).argmax(1) == y_val).float().mean().item()
            print(f"epoch {epoch + 1:3d}  loss {total / len(perm):.4f}  val acc {acc:.4f}")
    print(f"training took {time.perf_counter() - t0:.1f} s")
    model.eval()
    return model


def export(model, path: Path):
    import onnx
    import torch

    model.eval()
    dummy = torch.zeros(1, 1, 8, 8)
    # dynamo=False: the TorchScript exporter (the dynamo one needs onnxscript).
    # do_constant_folding=False: keeps Conv and BatchNormalization as separate nodes
    # (with folding on, the exporter's eval peephole folds BN into the Conv).
    torch.onnx.export(
        model, (dummy,), str(path), dynamo=False, opset_version=OPSET,
        input_names=["image"], output_names=["logits"],
        training=torch.onnx.TrainingMode.EVAL, do_constant_folding=False,
    )
    m = onnx.load(path)
    m.ir_version = IR_VERSION
    m.producer_version = torch.__version__
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print(f"wrote {path}: opset {OPSET}, IR {IR_VERSION}, ops {ops}")


def ort_accuracy(path: Path, x, y) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pred = np.array([sess.run(None, {"image": x[i : i + 1]})[0].argmax() for i in range(len(x))])
    return float((pred == y).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--data-only", action="store_true", help="only write calib.npz / val.npz (no torch)")
    mode.add_argument("--check", action="store_true", help="verify the npz files equal the split (no torch)")
    ap.add_argument("-o", "--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = ap.parse_args(argv)

    split = load_split()
    print("split sizes: " + ", ".join(f"{k} {len(v[1])}" for k, v in split.items()))
    if args.check:
        return 0 if check_data(split, args.out) else 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_data(split, args.out)
    if args.data_only:
        return 0
    model = train(split)
    onnx_path = args.out / "digits_cnn.onnx"
    export(model, onnx_path)
    acc = ort_accuracy(onnx_path, *split["val"])
    print(f"onnxruntime float top-1 on val ({len(split['val'][1])} images): {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
