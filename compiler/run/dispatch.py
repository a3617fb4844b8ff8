"""Run any build folder with the runner its report names: the host VM, QEMU (coral-npu, rvv256-rv64) or a
vendor backend's runtime (LiteRT, OpenVINO, ONNX Runtime). The Python API's Build.run uses it."""

from compiler.run.host import read_report


def run_build(out_dir, input_paths, repeat: int = 1):
    """The run's result (.outputs: numpy arrays in output order)."""
    report = read_report(out_dir)
    if "coral" in report:
        from compiler.run.coral import run_coral

        return run_coral(out_dir, input_paths)
    from compiler.backends import REPORT_KEY as BACKEND_REPORT_KEY, backend_for

    if BACKEND_REPORT_KEY in report:
        from compiler.targets import get_target

        return backend_for(get_target(report["target"])).run(out_dir, input_paths, report, repeat=repeat)
    from compiler.run.host import run_host

    return run_host(out_dir, input_paths, repeat=repeat)
