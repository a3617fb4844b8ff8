"""PyTorch in: a .pt2 (torch.export.save) on the command line and a torch.nn.Module through
compiler.compile. The model holds what the issue names: a MobileNetV2-style inverted residual with
ReLU6, a squeeze-excite block with HardSwish, a residual block and a dense head (plain torch.nn).
Host float equals torch within 1e-5 of the output's magnitude (float32 sums in another order); int8 on
coral-npu equals the host int8 build bit for bit; report rows name torch module paths. Bad input: one
`error:` line, exit 2."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import compiler
from compiler.errors import CompilerError
from test_bad_input import assert_clean_failure

TOLERANCE = 1e-5


class InvertedResidual(nn.Module):
    def __init__(self, channels, expand=4):
        super().__init__()
        hidden = channels * expand
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.project(self.depthwise(self.expand(x)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.Hardswish())
        self.reduce, self.expand = nn.Conv2d(channels, 8, 1), nn.Conv2d(8, channels, 1)

    def forward(self, x):
        x = self.conv(x)
        scale = nn.functional.hardsigmoid(self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True)))))
        return x * scale


class Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class EdgeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
        self.features = nn.Sequential(InvertedResidual(16), SqueezeExcite(16), Residual(16))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.features(self.stem(x)).mean((2, 3)))


def edge_net():
    torch.manual_seed(0)
    model = EdgeNet()
    for module in model.modules():  # trained-looking BatchNorm statistics, not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


EXAMPLE = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def test_pt2_file_builds_for_the_host_equal_to_torch(tmp_path):
    model = edge_net()
    torch.export.save(torch.export.export(model, (EXAMPLE,)), tmp_path / "edge.pt2")
    np.save(tmp_path / "x.npy", EXAMPLE.numpy())
    result = cli("build", tmp_path / "edge.pt2", "-o", tmp_path / "out")
    assert result.returncode == 0 and "warning" not in result.stderr.lower(), result.stderr
    run = cli("run", tmp_path / "out", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert run.returncode == 0, run.stderr
    want = model(EXAMPLE).detach().numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=0, atol=TOLERANCE * np.abs(want).max())
    report_md = (tmp_path / "out" / "report.md").read_text()
    for path in ("stem.0:conv", "features.0.depthwise.0:conv", "features.1.expand:conv", "features.2.body.3:conv",
                 "head:gemm"):
        assert f"`{path}`" in report_md, path


def test_module_int8_on_coral_is_bit_exact_to_host(tmp_path):
    model = edge_net()
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(size=(16, 3, 32, 32)).astype(np.float32))
    host = compiler.compile(model, (EXAMPLE,), target="host", quantize="int8", calib=str(calib), out=tmp_path / "host")
    coral = compiler.compile(model, (EXAMPLE,), target="coral-npu", quantize="int8", calib=str(calib),
                             out=tmp_path / "coral", memory="highmem")
    assert coral.report["quantization"]["float_layers"] == []
    inputs = [np.random.default_rng(seed).normal(size=(1, 3, 32, 32)).astype(np.float32) for seed in (1, 2)]
    for x in inputs:
        np.testing.assert_array_equal(coral.run([x])[0], host.run([x])[0])
    want = model(torch.from_numpy(inputs[0])).detach().numpy()
    cosine = float((host.run([inputs[0]])[0].ravel() @ want.ravel())
                   / (np.linalg.norm(host.run([inputs[0]])[0]) * np.linalg.norm(want)))
    assert cosine > 0.98, cosine


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a tensor value: torch.export cannot trace it
            return x * 2
        return x


@pytest.mark.parametrize("module, example, needle", [
    (DataDependent(), (EXAMPLE,), "torch.export cannot export the module"),
    (edge_net(), (), "example_inputs must be a non-empty tuple"),
    (edge_net(), (torch.randn(1, 5, 32, 32),), "torch.export cannot export the module"),
], ids=["control_flow", "missing_input", "wrong_input"])
def test_modules_that_do_not_export_are_one_line_errors(tmp_path, module, example, needle):
    with pytest.raises(CompilerError, match=needle) as error:
        compiler.compile(module, example, out=tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_unreadable_pt2_is_a_one_line_error(tmp_path):
    (tmp_path / "old.pt2").write_bytes(b"PK\x03\x04 not an archive torch can read")
    result = cli("build", tmp_path / "old.pt2", "-o", tmp_path / "out")
    assert_clean_failure(result, "old.pt2", "not a torch.export program this torch")
    assert not (tmp_path / "out").exists()


def test_without_torch_a_pt2_build_says_how_to_install_it(tmp_path):
    (tmp_path / "m.pt2").write_bytes(b"unused")
    blocked = ("from compiler.no_torch import block_torch; block_torch(); import sys; from compiler.cli import main; "
               f"sys.argv = ['compiler', 'build', {str(tmp_path / 'm.pt2')!r}, '-o', {str(tmp_path / 'out')!r}]; "
               "raise SystemExit(main())")
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=300)
    assert_clean_failure(result, "needs torch", "pip install '.[torch]'")
