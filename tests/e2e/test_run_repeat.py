"""`run OUT --repeat N` means the same on every target whose run can be timed: one untimed warm-up
run, then N timed runs, the median and p90 printed (compiler/run/host.py timed_runs). Host (Relax
VM), Ethos-U (LiteRT on the pre-Vela .tflite), openvino-cpu (OpenVINO runtime) and the hand-off
packages (ONNX Runtime) each count their runtime's invocations here: N + 1, with N latencies. A QEMU
target (exact instruction counts, identical on every run) refuses N > 1 with one line, before the
simulator starts."""

import contextlib
import io
from pathlib import Path

import pytest

from compiler.backends import backend_for
from compiler.build import build
from compiler.cli import main
from compiler.quant.quantize import QuantConfig
from compiler.run.host import read_report, run_host
from compiler.targets import get_target

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
SAMPLE = str(DIGITS / "sample.npy")
REPEAT = 3


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """target -> OUT of the digits CNN, int8, built once per target on first use."""
    root = tmp_path_factory.mktemp("repeat")
    made = {}

    def out_for(target: str) -> Path:
        if target not in made:
            quant = QuantConfig(calib=str(DIGITS / "calib.npz"), samples=100, method="minmax", percentile=99.99,
                                keep_float=(), io="float", progress=False)
            build(str(DIGITS / "digits_cnn.onnx"), target, root / target, quant=quant)
            made[target] = root / target
        return made[target]
    return out_for


def _cli(*args) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*map(str, args)])
    return code, stdout.getvalue(), stderr.getvalue()


def _count_calls(owner, name: str, calls: list) -> None:
    """Wraps owner.name (bound to owner, an instance or a class) so that each call is counted."""
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)
    setattr(owner, name, counted)


def _onnxruntime(monkeypatch, calls):
    import onnxruntime

    original = onnxruntime.InferenceSession.run
    monkeypatch.setattr(onnxruntime.InferenceSession, "run",
                        lambda self, *args, **kwargs: calls.append("run") or original(self, *args, **kwargs))


def _litert(monkeypatch, calls):
    from compiler.export import verify

    original = verify.litert_interpreter

    def interpreter(*args, **kwargs):
        made = original(*args, **kwargs)
        _count_calls(made, "invoke", calls)
        return made
    monkeypatch.setattr(verify, "litert_interpreter", interpreter)


def _openvino(monkeypatch, calls):
    pytest.importorskip("openvino")
    from compiler.backends import openvino

    original = openvino.runner
    monkeypatch.setattr(openvino, "runner", lambda compiled_model: _counted(original(compiled_model), calls))


def _counted(fn, calls):
    return lambda *args: calls.append("infer") or fn(*args)


RUNTIMES = {"tensorrt": _onnxruntime, "sophon": _onnxruntime, "ethos-u55-128": _litert, "openvino-cpu": _openvino}


@pytest.mark.parametrize("target", sorted(RUNTIMES))
def test_backend_run_is_one_warm_up_and_n_timed_runs(target, builds, monkeypatch):
    out = builds(target)
    report = read_report(out)
    calls = []
    RUNTIMES[target](monkeypatch, calls)
    result = backend_for(get_target(target)).run(out, [SAMPLE], report, repeat=REPEAT)
    assert len(calls) == REPEAT + 1, calls
    assert len(result.latencies_ms) == REPEAT and all(ms > 0 for ms in result.latencies_ms)
    calls.clear()
    code, stdout, stderr = _cli("run", out, "--input", SAMPLE, "--repeat", REPEAT)
    assert code == 0, stderr
    assert len(calls) == REPEAT + 1, calls
    assert f"latency over {REPEAT} run(s): median" in stdout and "p90" in stdout


def test_host_run_is_one_warm_up_and_n_timed_runs(builds, monkeypatch):
    from tvm import relax

    out, calls = builds("host"), []  # built before counting: the build runs VMs of its own

    class CountingVM(relax.VirtualMachine):
        def __getitem__(self, name):
            return _counted(super().__getitem__(name), calls)
    monkeypatch.setattr(relax, "VirtualMachine", CountingVM)
    result = run_host(out, [SAMPLE], repeat=REPEAT)
    assert len(calls) == REPEAT + 1 and len(result.latencies_ms) == REPEAT


def test_qemu_target_refuses_repeat_before_simulating(builds):
    out = builds("rvv256-rv64")
    code, stdout, stderr = _cli("run", out, "--input", SAMPLE, "--repeat", REPEAT)
    assert code == 2 and stdout == ""
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"error: --repeat {REPEAT}: rvv256-rv64 runs in QEMU") and "instruction count" in line
    assert not (out / "run.json").exists()  # the simulator never started
