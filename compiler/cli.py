"""python -m compiler {build,tune,run,targets}: the command line.

Errors in the user's input (CompilerError) print one line on stderr and exit 2.
"""

import argparse
import math
import os
import re
import signal
import sys

from compiler.backends import REPORT_KEY as BACKEND_REPORT_KEY, backend_for
from compiler.errors import CompilerError
from compiler.coral.memory import default_profile_name, memory_spec, parse_size
from compiler.names import one_line, shown

EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in the compiler, not in the input
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so staging folders and simulators are cleaned up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise Terminated(signum)


def _quiet_after_interrupt() -> None:
    """An interrupt can land inside any constructor (TVM's TempDirectory.__init__, say): the half-built
    object's __del__ then fails when the unwound frames are freed, and Python would print that
    ("Exception ignored in ...", a traceback) after our one line. The process is ending: say nothing."""
    sys.unraisablehook = lambda unraisable: None


def _flag_value(text: str, parse, valid, expected: str):
    """An argparse type: `parse(text)`, accepted only when `valid(value)`; else says `expected`."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
    return value


def positive_int(text: str) -> int:
    return _flag_value(text, int, lambda v: v >= 1, "a whole number of at least 1")


def positive_seconds(text: str) -> float:
    return _flag_value(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number of seconds above 0")


def percentile(text: str) -> float:
    return _flag_value(text, float, lambda v: 0 < v <= 100, "a percentile in (0, 100]")


UNCALIBRATED = ("dynamic", "fp16")  # --quantize modes without calibration data (host only)


def budget_points(text: str) -> float:
    return _flag_value(text, float, lambda v: math.isfinite(v) and 0 <= v <= 100, "top-1 points in [0, 100]")


def _quant_config(args):
    """QuantConfig from the build flags, or None for a float build."""
    from compiler.quant.quantize import QuantConfig

    quant_flags = [flag for flag, value in (("--calib", args.calib), ("--keep-float", args.keep_float),
                                            ("--int16", args.int16),
                                            ("--io", args.io != "float"), ("--equalize", args.equalize),
                                            ("--accuracy-budget", args.accuracy_budget is not None)) if value]
    if args.quantize is None:
        if quant_flags:
            raise CompilerError(f"{quant_flags[0]}: only meaningful with --quantize int8")
        return None
    if args.quantize in UNCALIBRATED:
        if quant_flags:
            raise CompilerError(f"{quant_flags[0]}: not used by --quantize {args.quantize} (it needs no calibration)")
        return QuantConfig(calib=None, scheme=args.quantize)
    if args.calib is None:
        raise CompilerError("--quantize int8 needs calibration data: --calib PATH (.npz, .npy or a folder of .npy), "
                            "or --calib random (poor scales, for trying things out)")
    keep_float = tuple(name for item in args.keep_float for name in item.split(",") if name)
    int16 = tuple(name for item in args.int16 for name in item.split(",") if name)
    return QuantConfig(calib=args.calib, samples=args.calib_samples, method=args.calib_method,
                       percentile=args.percentile, keep_float=keep_float, int16_layers=int16, io=args.io, progress=True,
                       equalize=args.equalize, accuracy_budget=args.accuracy_budget)


def _memory(args) -> str | None:
    """--memory with the region sizes of --extmem / --dtcm: the spec coral/memory.py reads."""
    sizes = {region: parse_size(text, f"--{region.lower()}") for region, text in
             (("EXTMEM", args.extmem), ("DTCM", args.dtcm)) if text is not None}
    if not sizes:
        return args.memory
    from compiler.targets import get_target

    target = get_target(args.target)
    if "memory" not in target.data:
        raise CompilerError(f"--{next(iter(sizes)).lower()}: target {target.name} has no memory profiles (coral-npu has)")
    return memory_spec(args.memory or default_profile_name(target), sizes)


def _note(message) -> None:
    print(f"note: {one_line(message)}", file=sys.stderr)


def _build(args) -> int:
    import warnings

    from compiler.build import build
    from compiler.report.markdown import render_summary

    warnings.showwarning = lambda message, *rest: print(f"warning: {one_line(message)}", file=sys.stderr)
    report = build(args.model, args.target, args.output, args.input_shape, quant=_quant_config(args), val_path=args.val,
                   memory=_memory(args), warn=_note, tuning_db=args.tuning_db, emit=args.emit)
    print(render_summary(report))
    artefacts = (report[BACKEND_REPORT_KEY]["artefact"] if BACKEND_REPORT_KEY in report
                 else ["firmware.elf", "src/"] if "coral" in report else ["model.so"])
    artefacts = artefacts + (["model.tflite"] if "tflite" in report and "model.tflite" not in artefacts else [])
    quant = report.get("quantization") or {}
    plots = quant.get("plots", []) + (quant.get("accuracy_budget") or {}).get("plots", [])
    print(f"  wrote {shown(args.output)}/ ({', '.join(artefacts + ['report.json', 'report.md', 'graph.onnx'] + plots)})")
    return 0


def _tune(args) -> int:
    from compiler.report.markdown import render_summary
    from compiler.tune.tune import tune_model

    options = tune_options(args.trials, _duration(args.time_budget), args.seed)
    report = tune_model(args.model, args.target, args.output, args.tuning_db, quant=_quant_config(args),
                        memory=_memory(args), input_shapes=args.input_shape, options=options,
                        warn=_note)
    print(render_summary(report))
    tuning = report["tuning"]
    if "host_tasks" in tuning:
        print(f"  tuned: {tuning['default_total_us']:.2f} -> {tuning['tuned_total_us']:.2f} us over "
              f"{len(tuning['host_tasks'])} PrimFuncs ({tuning['ratio']:.3f}x, MetaSchedule) after {tuning['trials']} "
              f"trials in {tuning['search_seconds']:.0f} s; records in {shown(tuning['metaschedule'])}")
        print(f"  wrote {shown(args.output)}/ (model.so built with the tuned schedules, report.json, report.md)")
        return 0
    print(f"  tuned: {tuning['default_total']:,} -> {tuning['tuned_total']:,} instructions ({tuning['ratio']:.3f}x) "
          f"after {tuning['trials']} trials in {tuning['search_seconds']:.0f} s; best schedules appended to {shown(args.tuning_db)}")
    print(f"  wrote {shown(args.output)}/ (firmware.elf built with the tuned schedules, report.json, report.md)")
    return 0


def tune_options(trials: int | None, time_budget: float | None, seed: int):
    """--trials defaults to 1000, or to no limit when --time-budget is given (the clock, or a
    search pass that improves nothing, ends the run)."""
    from compiler.tune.tune import DEFAULT_TRIALS, TuneOptions

    if trials is None and time_budget is None:
        trials = DEFAULT_TRIALS
    return TuneOptions(trials=trials, time_budget=time_budget, seed=seed)


def _duration(text) -> float | None:
    """900, 900s, 15m, 1h -> seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise CompilerError(f"--time-budget {text}: not a duration (examples: 900, 900s, 15m, 1h)") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise CompilerError(f"--time-budget {text}: must be a finite, positive duration")
    return seconds


def _run(args) -> int:
    from compiler.run.host import read_report

    report = read_report(args.out_dir)
    _check_output_path(args, len(report["interface"]["outputs"]))
    if "coral" in report:
        return _run_coral(args, report)
    if BACKEND_REPORT_KEY in report:
        return _run_backend(args, report)
    from compiler.run.host import run_host

    result = run_host(args.out_dir, args.input, repeat=args.repeat)
    _print_outputs(result)
    _print_latency(result)
    _save_outputs(args, result)
    return 0


def _print_latency(result) -> None:
    print(f"latency over {len(result.latencies_ms)} run(s): median {result.median_ms():.3f} ms, "
          f"p90 {result.p90_ms():.3f} ms")


def _run_backend(args, report) -> int:
    """A vendor target's OUT: its backend runs what this machine can and says what it ran."""
    from compiler.targets import get_target

    backend = backend_for(get_target(report["target"]))
    result = backend.run(args.out_dir, args.input, report, repeat=args.repeat)
    _print_outputs(result)
    _print_latency(result)
    _save_outputs(args, result)
    return 0


def _run_coral(args, report) -> int:
    from compiler.run.coral import RUN_JSON, layer_table, run_coral

    if args.repeat > 1:  # before the simulator starts: N identical runs would only cost N times the wait
        raise CompilerError(f"--repeat {args.repeat}: {report['target']} runs in QEMU, whose figure is an exact "
                            "instruction count, the same on every run, not a latency to time; "
                            "drop --repeat (it times host, LiteRT, OpenVINO and ONNX Runtime runs)")
    result = run_coral(args.out_dir, args.input, timeout=args.timeout)
    print(layer_table(result))
    _print_outputs(result)
    print(f"simulated in {result.seconds:.1f} s ({result.simulator} {result.counting}); "
          f"per-layer counts recorded in {shown(args.out_dir)}/{RUN_JSON}")
    _save_outputs(args, result)
    return 0


def _print_outputs(result) -> None:
    for name, array in zip(result.output_names, result.outputs):
        print(f"output {shown(name)}: shape {array.shape} {array.dtype}, min {array.min():.6g}, "
              f"max {array.max():.6g}, mean {array.mean():.6g}, argmax {int(array.reshape(-1).argmax())}")


def _check_output_path(args, output_count: int) -> None:
    """--output: .npy for a single output, .npz for any number; checked before the run."""
    if not args.output:
        return
    suffix = os.path.splitext(args.output)[1]
    if suffix not in (".npy", ".npz"):
        raise CompilerError(f"--output {shown(args.output)}: name it .npy (one output) or .npz")
    if suffix == ".npy" and output_count != 1:
        raise CompilerError(f"--output {shown(args.output)}: the model has {output_count} outputs; name it .npz")
    if os.path.isdir(args.output):
        raise CompilerError(f"--output {shown(args.output)}: is a folder")


def _npz_key(name: str, index: int) -> str:
    """An .npz member name (a file name inside a zip): the output's name when it is plain,
    else output<index>; a model's string never becomes a path, not even inside a zip."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]{0,99}", name) is not None
    return name if plain and not re.fullmatch(r"output\d+", name) else f"output{index}"


def _save_outputs(args, result) -> None:
    import numpy as np

    if not args.output:
        return
    temporary = f"{args.output}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as file:  # a file object: numpy adds no suffix of its own
            if args.output.endswith(".npy"):
                np.save(file, result.outputs[0])
            else:
                np.savez(file, **{_npz_key(name, i): array
                                  for i, (name, array) in enumerate(zip(result.output_names, result.outputs))})
        os.replace(temporary, args.output)
    except OSError as err:
        raise CompilerError(f"--output {shown(args.output)}: cannot write it ({err.strerror})") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"wrote {shown(args.output)}")


def _targets(args) -> int:
    from compiler.targets import all_targets

    for target in all_targets().values():
        print(f"{target.name}: {target.description}")
        print(f"  artefact: {target.artefact}; runs with: {target.runner}")
        print(f"  fuses: {', '.join(target.fusion_families)}")
        if target.onnx_ops:  # vendor backends take what the int8 build takes (no list of their own)
            print(f"  ONNX operators: {', '.join(sorted(target.onnx_ops))}")
    return 0


def _model_arguments(command) -> None:
    """The model, target, output and quantisation flags `build` and `tune` share."""
    command.add_argument("model", help="the model file: .onnx, or .tflite (float, float16, dynamic-range or full int8)")
    command.add_argument("--target", default="host", help="target name (see `python -m compiler targets`); default: host")
    command.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory (replaced only if it holds an earlier build)")
    command.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxDx...",
                         help="fix a dynamic input shape, e.g. data=1x3x224x224 (repeat for several inputs)")
    quant = command.add_argument_group("INT8 quantisation")
    quant.add_argument("--quantize", choices=["int8", *UNCALIBRATED],
                       help="int8: TFLite's int8 scheme with calibration data; dynamic (host): int8 weights, "
                            "activations quantised per tensor at run time; fp16 (host): float16 weights")
    quant.add_argument("--calib", metavar="PATH", help="calibration samples: .npz (one array per input name), .npy, "
                                                       "a folder of .npy files, or 'random'")
    quant.add_argument("--calib-samples", type=positive_int, default=100, metavar="N", help="samples used for calibration (default 100)")
    quant.add_argument("--calib-method", default="minmax", choices=["minmax", "percentile", "entropy"],
                       help="range estimator (default minmax; entropy is the KL-divergence method)")
    quant.add_argument("--percentile", type=percentile, default=99.99, help="percentile for --calib-method percentile (default 99.99)")
    quant.add_argument("--keep-float", action="append", default=[], metavar="NODE[,NODE...]",
                       help="leave the layers computing these ONNX nodes in float")
    quant.add_argument("--int16", action="append", default=[], metavar="NODE[,NODE...]",
                       help="run the convolutions / dense layers computing these ONNX nodes in TFLite's 16x8 scheme "
                            "(int16 activations, int8 weights; what --accuracy-budget raises on coral-npu)")
    quant.add_argument("--equalize", action="store_true",
                       help="cross-layer equalisation before calibration (even out the channel ranges of convolutions "
                            "joined through a ReLU, Nagel et al. 2019) and bias correction from the calibration data")
    quant.add_argument("--accuracy-budget", type=budget_points, metavar="POINTS",
                       help="top-1 points int8 may lose on --val: the most sensitive layers are raised to a higher "
                            "precision until the drop is within POINTS (needs --val)")
    quant.add_argument("--io", default="float", choices=["float", "int8", "uint8"],
                       help="model inputs/outputs as float (default) or integer tensors at the scale and zero point "
                            "report.json lists under quantization.io")
    command.add_argument("--memory", metavar="PROFILE", help="coral-npu memory profile: default (ITCM 8 KB, DTCM 32 KB), "
                                                             "highmem (ITCM 1 MB, DTCM 1 MB, EXTMEM 4 MB) or soc "
                                                             "(ITCM 1 MB, DTCM 1 MB, EXTMEM 64 MB)")
    command.add_argument("--extmem", metavar="SIZE", help="coral-npu: resize the profile's external memory (e.g. 128M)")
    command.add_argument("--dtcm", metavar="SIZE", help="coral-npu: resize the profile's data TCM (e.g. 2M)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line (with where to find help), exit code 2."""

    def error(self, message):
        print(f"error: {one_line(message)} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m compiler", description="ML compiler for edge NPUs, on Apache TVM Relax.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    build = commands.add_parser("build", help="compile a model into an output directory",
                                description="Compile MODEL (.onnx or .tflite) for a target. OUT receives the artefact (model.so on host), "
                                            "report.json, report.md and graph.onnx (the optimised graph, for Netron).")
    _model_arguments(build)
    build.add_argument("--val", metavar="DATA.npz", help="labelled samples (input array + 'label'): report top-1 float vs int8")
    build.add_argument("--tuning-db", action="append", default=[], metavar="FILE",
                       help="use the best schedules recorded in FILE by `tune` (repeat to merge several)")
    build.add_argument("--emit", action="append", default=[], choices=["tflite"],
                       help="also write the int8 model as OUT/model.tflite (builtin int8 operators, for LiteRT, TFLite "
                            "Micro, Vela, the Edge TPU compiler); the build then rounds as LiteRT does, and LiteRT's "
                            "outputs of the file are checked against it")
    build.set_defaults(handler=_build)

    run = commands.add_parser("run", help="run a build output on its inputs",
                              description="Run OUT (from `build`) on input tensors; print an output summary and latency.")
    run.add_argument("out_dir", metavar="OUT", help="a directory written by `build`")
    run.add_argument("--input", action="append", required=True, metavar="PATH",
                     help=".npy file per model input, in input order (repeat), or one .npz keyed by input name")
    run.add_argument("--output", metavar="PATH", help="save the output (.npy; .npz when the model has several outputs)")
    run.add_argument("--repeat", type=positive_int, default=1, metavar="N",
                     help="timed runs after one warm-up run (default 1); the median and p90 latency are printed. "
                          "Not for QEMU targets (coral-npu, rvv256-rv64): their exact instruction count does not vary")
    run.add_argument("--timeout", type=positive_seconds, metavar="SECONDS", help="QEMU targets: stop the simulator after this long "
                                                                     "(default: the target's)")
    run.set_defaults(handler=_run)

    tune = commands.add_parser("tune", help="search kernel schedules and record the best in a tuning database",
                               description="Tune MODEL's kernels for a target: every distinct kernel workload's schedules "
                                           "are measured (coral-npu, rvv256-rv64: exact instruction counts in QEMU, "
                                           "checked bit-exact against kernels/ref), the best go into FILE, and OUT receives "
                                           "the model built with them and a report of default vs tuned instructions per layer.")
    _model_arguments(tune)
    tune.add_argument("--tuning-db", required=True, metavar="FILE", help="tuning database (JSON lines); appended to")
    tune.add_argument("--trials", type=positive_int, metavar="N",
                      help="candidates to measure in all (default 1000; with --time-budget, no limit on QEMU targets)")
    tune.add_argument("--time-budget", metavar="DURATION", help="stop searching after this long: 900, 900s, 15m or 1h")
    tune.add_argument("--seed", type=int, default=0, help="random seed of the search (default 0)")
    tune.set_defaults(handler=_tune)

    targets = commands.add_parser("targets", help="list the targets and what each supports")
    targets.set_defaults(handler=_targets)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, _terminate) for signum in (signal.SIGTERM, signal.SIGHUP)
                if in_main_thread}
    try:
        return args.handler(args)
    except CompilerError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outputs are staged: nothing half-written is left behind
        _quiet_after_interrupt()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as stop:
        _quiet_after_interrupt()
        print(f"terminated by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum
    except Exception as err:  # a bug: one line for the user, the traceback on request
        if os.environ.get("COMPILER_TRACEBACK"):
            raise
        print(f"error: internal compiler error ({type(err).__name__}: {one_line(str(err).strip()[:300])}); "
              "set COMPILER_TRACEBACK=1 to see where, and please report it", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
