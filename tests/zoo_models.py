"""Seeded edge-CNN architectures in plain torch.nn, exported to ONNX for benchmarks and tests.

    .venv/bin/python tests/zoo_models.py NAME... -o FOLDER [--size 224] [--seed 0]

writes FOLDER/NAME.onnx for each NAME in ZOO. Weights are random (seeded): the compiler's
instruction counts and numerics checks do not depend on trained values. Each architecture
follows its reference implementation layer for layer, so parameter counts and ONNX graphs
match what users export from torchvision / timm:

  mobilenet_v2        torchvision MobileNetV2: inverted residuals with ReLU6, 1x1 conv to 1280,
                      global average pool, dropout, Linear 1000. `width` scales channels.
  mobilenet_v3_small  torchvision MobileNetV3 (small / large): Hardswish, squeeze-excite as
  mobilenet_v3_large  AdaptiveAvgPool2d(1) -> 1x1 conv -> ReLU -> 1x1 conv -> Hardsigmoid ->
                      broadcast multiply, classifier Linear-Hardswish-Dropout-Linear.
  efficientnet_lite0  timm tf_efficientnet_lite0: ReLU6, no squeeze-excite, BN eps 1e-3 and
                      TensorFlow "SAME" padding (see below).
  lcnet_050           timm lcnet_050 (PP-LCNet x0.5): depthwise-separable blocks with Hardswish,
                      squeeze-excite (x.mean pool) in the last two, global pool, 1x1 conv head
                      to 1280 with Hardswish, Linear.
  resnet18            torchvision ResNet-18.

Channel counts are rounded to multiples of 8 with _make_divisible, as both references do.

Why the SAME padding is dynamic: TensorFlow pads a strided convolution asymmetrically (the
extra row and column go at the bottom and right), which no symmetric Conv padding expresses.
timm's ports of TensorFlow checkpoints (Conv2dSame / pad_same) therefore compute the padding
in forward() from the input's height and width and call F.pad. Traced by torch.onnx.export,
that arithmetic lands in the graph as Ceil/Sub/Mul/Clip/Div/Cast/Unsqueeze/Concat/Shape/
Gather/ConstantOfShape/Reshape/Slice/Transpose subgraphs feeding a Pad before each strided
convolution: the shape-computation pattern real exported models carry, and which the
compiler must fold to constants at import. Stride-1 convolutions get static padding, as in
timm (SAME equals symmetric padding there).

export() gives every BatchNorm seeded non-trivial running statistics and affine parameters,
so the folded convolution weights differ from the raw ones.
"""

import argparse
import math
import pathlib
import warnings
from collections import OrderedDict

import onnx
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 1000


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Nearest multiple of divisor to value, at least divisor, never more than 10% below value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# ---------------------------------------------------------------- TensorFlow "SAME" padding


def _same_padding(size, kernel_size: int, stride: int):
    """Total padding TensorFlow's SAME adds along an axis of length size (timm get_same_padding).

    Under torch.onnx.export the size read from x.shape is a traced tensor: the tensor branch
    keeps the arithmetic in the graph (math.ceil would turn it into a constant).
    """
    if isinstance(size, torch.Tensor):
        return torch.clamp(((size / stride).ceil() - 1) * stride + kernel_size - size, min=0)
    return max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0)


def pad_same(x: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """Pad x for a SAME convolution, the odd pixel at the bottom / right (timm pad_same)."""
    height, width = x.shape[-2:]
    pad_h = _same_padding(height, kernel_size[0], stride[0])
    pad_w = _same_padding(width, kernel_size[1], stride[1])
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


class Conv2dSame(nn.Conv2d):
    """timm's Conv2dSame: a Conv2d without padding of its own, input padded by pad_same at run time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_same(x, self.kernel_size, self.stride))


# ---------------------------------------------------------------- building blocks


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation (none if activation is None).

    Padding is symmetric (kernel_size - 1) // 2, or with tf_same_padding TensorFlow's SAME,
    computed at run time for strided convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, activation: type[nn.Module] | None = None, bn_eps: float = 1e-5,
                 tf_same_padding: bool = False):
        if tf_same_padding and stride > 1:
            conv = Conv2dSame(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=False)
        else:
            conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2,
                             groups=groups, bias=False)
        layers = [conv, nn.BatchNorm2d(out_channels, eps=bn_eps)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SpatialMean(nn.Module):
    """x.mean over height and width, keeping them: timm's squeeze-excite pool (ONNX ReduceMean)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


class SqueezeExcite(nn.Module):
    """pool -> 1x1 conv -> ReLU -> 1x1 conv -> Hardsigmoid, scaling x channel by channel."""

    def __init__(self, channels: int, squeeze_channels: int, pool: nn.Module | None = None):
        super().__init__()
        self.pool = pool if pool is not None else nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.activation = nn.ReLU()
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.activation(self.reduce(self.pool(x)))))
        return x * scale


class InvertedResidual(nn.Module):
    """[1x1 expand] -> kxk depthwise -> [squeeze-excite] -> 1x1 linear projection, plus the input
    when stride and channels allow: MobileNetV2 / V3 blocks, EfficientNet's ds and ir blocks.

    The expansion is left out when expanded_channels == in_channels; squeeze-excite when
    se_channels is 0. conv_options (bn_eps, tf_same_padding) go to every ConvBNAct.
    """

    def __init__(self, in_channels: int, expanded_channels: int, out_channels: int, kernel_size: int,
                 stride: int, activation: type[nn.Module], se_channels: int = 0, **conv_options):
        super().__init__()
        layers = []
        if expanded_channels != in_channels:
            layers.append(ConvBNAct(in_channels, expanded_channels, 1, activation=activation, **conv_options))
        layers.append(ConvBNAct(expanded_channels, expanded_channels, kernel_size, stride,
                                groups=expanded_channels, activation=activation, **conv_options))
        if se_channels:
            layers.append(SqueezeExcite(expanded_channels, se_channels))
        layers.append(ConvBNAct(expanded_channels, out_channels, 1, **conv_options))
        self.block = nn.Sequential(*layers)
        self.has_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.has_residual else out


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 ConvBN, 1x1 ConvBN shortcut when the shape changes, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride, activation=nn.ReLU)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvBNAct(in_channels, out_channels, 1, stride)
        else:
            self.shortcut = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def _init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet initialisation: Kaiming fan-out convolutions, N(0, 0.01) Linear, zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
            nn.init.zeros_(module.bias)


def _network(features: list[nn.Module], head: list[nn.Module]) -> nn.Sequential:
    """features -> global average pool -> head, initialised."""
    model = nn.Sequential(OrderedDict(
        features=nn.Sequential(*features),
        pool=nn.AdaptiveAvgPool2d(1),
        head=nn.Sequential(*head),
    ))
    _init_weights(model)
    return model


# ---------------------------------------------------------------- MobileNetV2 (torchvision)

# expansion, channels, repeats, stride of the first repeat
MOBILENET_V2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2(width: float = 1.0) -> nn.Sequential:
    stem_channels = _make_divisible(32 * width)
    head_channels = _make_divisible(1280 * max(1.0, width))
    layers = [ConvBNAct(3, stem_channels, 3, 2, activation=nn.ReLU6)]
    in_channels = stem_channels
    for expansion, channels, repeats, first_stride in MOBILENET_V2_STAGES:
        out_channels = _make_divisible(channels * width)
        for index in range(repeats):
            stride = first_stride if index == 0 else 1
            expanded_channels = int(round(in_channels * expansion))
            layers.append(InvertedResidual(in_channels, expanded_channels, out_channels, 3, stride, nn.ReLU6))
            in_channels = out_channels
    layers.append(ConvBNAct(in_channels, head_channels, 1, activation=nn.ReLU6))
    head = [nn.Flatten(1), nn.Dropout(0.2), nn.Linear(head_channels, NUM_CLASSES)]
    return _network(layers, head)


# ---------------------------------------------------------------- MobileNetV3 (torchvision)

RE, HS = nn.ReLU, nn.Hardswish

# kernel, expanded channels, out channels, squeeze-excite, activation, stride
MOBILENET_V3_SMALL_BLOCKS = [
    (3, 16, 16, True, RE, 2),
    (3, 72, 24, False, RE, 2),
    (3, 88, 24, False, RE, 1),
    (5, 96, 40, True, HS, 2),
    (5, 240, 40, True, HS, 1),
    (5, 240, 40, True, HS, 1),
    (5, 120, 48, True, HS, 1),
    (5, 144, 48, True, HS, 1),
    (5, 288, 96, True, HS, 2),
    (5, 576, 96, True, HS, 1),
    (5, 576, 96, True, HS, 1),
]
MOBILENET_V3_LARGE_BLOCKS = [
    (3, 16, 16, False, RE, 1),
    (3, 64, 24, False, RE, 2),
    (3, 72, 24, False, RE, 1),
    (5, 72, 40, True, RE, 2),
    (5, 120, 40, True, RE, 1),
    (5, 120, 40, True, RE, 1),
    (3, 240, 80, False, HS, 2),
    (3, 200, 80, False, HS, 1),
    (3, 184, 80, False, HS, 1),
    (3, 184, 80, False, HS, 1),
    (3, 480, 112, True, HS, 1),
    (3, 672, 112, True, HS, 1),
    (5, 672, 160, True, HS, 2),
    (5, 960, 160, True, HS, 1),
    (5, 960, 160, True, HS, 1),
]
MOBILENET_V3_BN_EPS = 1e-3


def _mobilenet_v3(blocks: list[tuple], classifier_channels: int) -> nn.Sequential:
    stem_channels = 16
    layers = [ConvBNAct(3, stem_channels, 3, 2, activation=HS, bn_eps=MOBILENET_V3_BN_EPS)]
    in_channels = stem_channels
    for kernel_size, expanded_channels, out_channels, use_se, activation, stride in blocks:
        se_channels = _make_divisible(expanded_channels // 4) if use_se else 0
        layers.append(InvertedResidual(in_channels, expanded_channels, out_channels, kernel_size, stride,
                                       activation, se_channels, bn_eps=MOBILENET_V3_BN_EPS))
        in_channels = out_channels
    last_conv_channels = 6 * in_channels
    layers.append(ConvBNAct(in_channels, last_conv_channels, 1, activation=HS, bn_eps=MOBILENET_V3_BN_EPS))
    head = [nn.Flatten(1), nn.Linear(last_conv_channels, classifier_channels), nn.Hardswish(), nn.Dropout(0.2),
            nn.Linear(classifier_channels, NUM_CLASSES)]
    return _network(layers, head)


def mobilenet_v3_small() -> nn.Sequential:
    return _mobilenet_v3(MOBILENET_V3_SMALL_BLOCKS, classifier_channels=1024)


def mobilenet_v3_large() -> nn.Sequential:
    return _mobilenet_v3(MOBILENET_V3_LARGE_BLOCKS, classifier_channels=1280)


# ---------------------------------------------------------------- EfficientNet-Lite0 (timm tf_efficientnet_lite0)

# repeats, kernel, stride of the first repeat, expansion, channels
EFFICIENTNET_LITE0_STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]


def efficientnet_lite0() -> nn.Sequential:
    tf_style = dict(bn_eps=1e-3, tf_same_padding=True)
    stem_channels, head_channels = 32, 1280  # Lite fixes stem and head widths
    layers = [ConvBNAct(3, stem_channels, 3, 2, activation=nn.ReLU6, **tf_style)]
    in_channels = stem_channels
    for repeats, kernel_size, first_stride, expansion, channels in EFFICIENTNET_LITE0_STAGES:
        out_channels = _make_divisible(channels)
        for index in range(repeats):
            stride = first_stride if index == 0 else 1
            expanded_channels = _make_divisible(in_channels * expansion)
            layers.append(InvertedResidual(in_channels, expanded_channels, out_channels, kernel_size, stride,
                                           nn.ReLU6, **tf_style))
            in_channels = out_channels
    layers.append(ConvBNAct(in_channels, head_channels, 1, activation=nn.ReLU6, **tf_style))
    head = [nn.Flatten(1), nn.Dropout(0.2), nn.Linear(head_channels, NUM_CLASSES)]
    return _network(layers, head)


# ---------------------------------------------------------------- PP-LCNet (timm lcnet_050)

# kernel, stride, channels (before the width multiplier), squeeze-excite
LCNET_BLOCKS = [
    (3, 1, 32, False),
    (3, 2, 64, False),
    (3, 1, 64, False),
    (3, 2, 128, False),
    (3, 1, 128, False),
    (3, 2, 256, False),
    (5, 1, 256, False),
    (5, 1, 256, False),
    (5, 1, 256, False),
    (5, 1, 256, False),
    (5, 1, 256, False),
    (5, 2, 512, True),
    (5, 1, 512, True),
]


def _lcnet_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, use_se: bool) -> nn.Sequential:
    """timm 'dsa' block: depthwise ConvBN-Hardswish -> [squeeze-excite] -> 1x1 ConvBN-Hardswish, no residual."""
    layers = [ConvBNAct(in_channels, in_channels, kernel_size, stride, groups=in_channels, activation=HS)]
    if use_se:
        layers.append(SqueezeExcite(in_channels, round(in_channels * 0.25), pool=SpatialMean()))
    layers.append(ConvBNAct(in_channels, out_channels, 1, activation=HS))
    return nn.Sequential(*layers)


def _lcnet(width: float) -> nn.Sequential:
    stem_channels, head_channels = _make_divisible(16 * width), 1280
    layers = [ConvBNAct(3, stem_channels, 3, 2, activation=HS)]
    in_channels = stem_channels
    for kernel_size, stride, channels, use_se in LCNET_BLOCKS:
        out_channels = _make_divisible(channels * width)
        layers.append(_lcnet_block(in_channels, out_channels, kernel_size, stride, use_se))
        in_channels = out_channels
    head = [nn.Conv2d(in_channels, head_channels, 1), nn.Hardswish(), nn.Flatten(1),
            nn.Linear(head_channels, NUM_CLASSES)]
    return _network(layers, head)


def lcnet_050() -> nn.Sequential:
    return _lcnet(width=0.5)


# ---------------------------------------------------------------- ResNet-18 (torchvision)

RESNET18_STAGES = [(64, 1), (128, 2), (256, 2), (512, 2)]  # channels, stride of the first block; 2 blocks each


def resnet18() -> nn.Sequential:
    layers = [ConvBNAct(3, 64, 7, 2, activation=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    in_channels = 64
    for channels, first_stride in RESNET18_STAGES:
        layers += [BasicBlock(in_channels, channels, first_stride), BasicBlock(channels, channels, 1)]
        in_channels = channels
    head = [nn.Flatten(1), nn.Linear(in_channels, NUM_CLASSES)]
    return _network(layers, head)


# ---------------------------------------------------------------- export

ZOO = {
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "mobilenet_v3_large": mobilenet_v3_large,
    "efficientnet_lite0": efficientnet_lite0,
    "lcnet_050": lcnet_050,
    "resnet18": resnet18,
}


def _randomize_batchnorm(model: nn.Module) -> None:
    """Seeded non-trivial running statistics, scales and shifts for every BatchNorm."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)


def build(name: str, seed: int = 0) -> nn.Module:
    """ZOO[name] with seeded weights and BatchNorm statistics, in eval mode."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(ZOO)}")
    torch.manual_seed(seed)
    model = ZOO[name]()
    _randomize_batchnorm(model)
    return model.eval()


def export(name: str, path, size: int = 224, seed: int = 0, opset: int = 17) -> pathlib.Path:
    """Write build(name, seed) to path as ONNX for a 1x3xSIZExSIZE input "input", output "logits"."""
    path = pathlib.Path(path)
    model = build(name, seed)
    example = torch.randn(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated
        torch.onnx.export(model, (example,), str(path), opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["logits"])
    onnx_model = onnx.load(str(path))
    onnx_model.ir_version = 10  # readable by onnxruntime 1.31 (IR <= 13) and older tools
    onnx.save(onnx_model, str(path))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export seeded edge-CNN architectures to ONNX.")
    parser.add_argument("names", nargs="+", choices=list(ZOO), metavar="NAME", help=", ".join(ZOO))
    parser.add_argument("-o", "--out", type=pathlib.Path, required=True, help="folder for NAME.onnx")
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        print(export(name, args.out / f"{name}.onnx", size=args.size, seed=args.seed))


if __name__ == "__main__":
    main()
