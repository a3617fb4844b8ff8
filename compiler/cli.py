"""python -m compiler {build,tune,run,targets}: the command line.

Errors in the user's input (CompilerError) print one line on stderr and exit 2.
"""

import argparse
import sys

from compiler.errors import CompilerError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C


def _quant_config(args):
    """QuantConfig from the build flags, or None for a float build."""
    from compiler.quant.quantize import QuantConfig

    quant_flags = [flag for flag, value in (("--calib", args.calib), ("--keep-float", args.keep_float),
                                            ("--io", args.io != "float")) if value]
    if args.quantize is None:
        if quant_flags:
            raise CompilerError(f"{quant_flags[0]}: only meaningful with --quantize int8")
        return None
    if args.calib is None:
        raise CompilerError("--quantize int8 needs calibration data: --calib PATH (.npz, .npy or a folder of .npy), "
                            "or --calib random (poor scales, for trying things out)")
    keep_float = tuple(name for item in args.keep_float for name in item.split(",") if name)
    return QuantConfig(calib=args.calib, samples=args.calib_samples, method=args.calib_method,
                       percentile=args.percentile, keep_float=keep_float, io=args.io, progress=True)


def _build(args) -> int:
    import warnings

    from compiler.build import build
    from compiler.report.markdown import render_summary

    warnings.showwarning = lambda message, *rest: print(f"warning: {message}", file=sys.stderr)
    report = build(args.model, args.target, args.output, args.input_shape, quant=_quant_config(args), val_path=args.val,
                   memory=args.memory, warn=lambda message: print(f"note: {message}", file=sys.stderr),
                   tuning_db=args.tuning_db)
    print(render_summary(report))
    artefacts = "firmware.elf, src/" if "coral" in report else "model.so"
    print(f"  wrote {args.output}/ ({artefacts}, report.json, report.md, graph.onnx)")
    return 0


def _tune(args) -> int:
    from compiler.report.markdown import render_summary
    from compiler.tune.tune import tune_model

    options = tune_options(args.trials, _duration(args.time_budget), args.seed)
    report = tune_model(args.model, args.target, args.output, args.tuning_db, quant=_quant_config(args),
                        memory=args.memory, input_shapes=args.input_shape, options=options,
                        warn=lambda message: print(f"note: {message}", file=sys.stderr))
    print(render_summary(report))
    tuning = report["tuning"]
    if "host_tasks" in tuning:
        print(f"  tuned: {tuning['default_total_us']:.2f} -> {tuning['tuned_total_us']:.2f} us over "
              f"{len(tuning['host_tasks'])} PrimFuncs ({tuning['ratio']:.3f}x, MetaSchedule) after {tuning['trials']} "
              f"trials in {tuning['search_seconds']:.0f} s; records in {tuning['metaschedule']}")
        print(f"  wrote {args.output}/ (model.so built with the tuned schedules, report.json, report.md)")
        return 0
    print(f"  tuned: {tuning['default_total']:,} -> {tuning['tuned_total']:,} instructions ({tuning['ratio']:.3f}x) "
          f"after {tuning['trials']} trials in {tuning['search_seconds']:.0f} s; best schedules appended to {args.tuning_db}")
    print(f"  wrote {args.output}/ (firmware.elf built with the tuned schedules, report.json, report.md)")
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
    if seconds <= 0:
        raise CompilerError(f"--time-budget {text}: must be positive")
    return seconds


def _run(args) -> int:
    from compiler.run.host import read_report

    if "coral" in read_report(args.out_dir):
        return _run_coral(args)
    from compiler.run.host import run_host

    result = run_host(args.out_dir, args.input, repeat=args.repeat)
    _print_outputs(result)
    print(f"latency over {len(result.latencies_ms)} run(s): median {result.median_ms():.3f} ms, "
          f"p90 {result.p90_ms():.3f} ms")
    _save_outputs(args, result)
    return 0


def _run_coral(args) -> int:
    from compiler.run.coral import RUN_JSON, layer_table, run_coral

    result = run_coral(args.out_dir, args.input, timeout=args.timeout)
    print(layer_table(result))
    _print_outputs(result)
    print(f"simulated in {result.seconds:.1f} s (qemu-system-riscv32 -icount shift=0); "
          f"per-layer counts recorded in {args.out_dir}/{RUN_JSON}")
    _save_outputs(args, result)
    return 0


def _print_outputs(result) -> None:
    for name, array in zip(result.output_names, result.outputs):
        print(f"output {name}: shape {array.shape} {array.dtype}, min {array.min():.6g}, "
              f"max {array.max():.6g}, mean {array.mean():.6g}, argmax {int(array.reshape(-1).argmax())}")


def _save_outputs(args, result) -> None:
    import numpy as np

    if args.output:
        if len(result.outputs) == 1:
            np.save(args.output, result.outputs[0])
        else:
            np.savez(args.output, **dict(zip(result.output_names, result.outputs)))
        print(f"wrote {args.output}")


def _targets(args) -> int:
    from compiler.targets import all_targets

    for target in all_targets().values():
        print(f"{target.name}: {target.description}")
        print(f"  artefact: {target.artefact}; runs with: {target.runner}")
        print(f"  fuses: {', '.join(target.fusion_families)}")
        print(f"  ONNX operators: {', '.join(sorted(target.onnx_ops))}")
    return 0


def _model_arguments(command) -> None:
    """The model, target, output and quantisation flags `build` and `tune` share."""
    command.add_argument("model", help="the ONNX model file")
    command.add_argument("--target", default="host", help="target name (see `python -m compiler targets`); default: host")
    command.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory (replaced only if it holds an earlier build)")
    command.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxDx...",
                         help="fix a dynamic input shape, e.g. data=1x3x224x224 (repeat for several inputs)")
    quant = command.add_argument_group("INT8 quantisation")
    quant.add_argument("--quantize", choices=["int8"], help="quantise to int8 (TFLite's scheme) with calibration data")
    quant.add_argument("--calib", metavar="PATH", help="calibration samples: .npz (one array per input name), .npy, "
                                                       "a folder of .npy files, or 'random'")
    quant.add_argument("--calib-samples", type=int, default=100, metavar="N", help="samples used for calibration (default 100)")
    quant.add_argument("--calib-method", default="minmax", choices=["minmax", "percentile", "entropy"],
                       help="range estimator (default minmax; entropy is the KL-divergence method)")
    quant.add_argument("--percentile", type=float, default=99.99, help="percentile for --calib-method percentile (default 99.99)")
    quant.add_argument("--keep-float", action="append", default=[], metavar="NODE[,NODE...]",
                       help="leave the layers computing these ONNX nodes in float")
    quant.add_argument("--io", default="float", choices=["float", "int8", "uint8"],
                       help="model inputs/outputs as float (default) or integer tensors at the scale and zero point "
                            "report.json lists under quantization.io")
    command.add_argument("--memory", metavar="PROFILE", help="coral-npu memory profile: default (ITCM 8 KB, DTCM 32 KB) "
                                                             "or highmem (ITCM 1 MB, DTCM 1 MB, EXTMEM 4 MB)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m compiler", description="ML compiler for edge NPUs, on Apache TVM Relax.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", help="compile a model into an output directory",
                                description="Compile MODEL.onnx for a target. OUT receives the artefact (model.so on host), "
                                            "report.json, report.md and graph.onnx (the optimised graph, for Netron).")
    _model_arguments(build)
    build.add_argument("--val", metavar="DATA.npz", help="labelled samples (input array + 'label'): report top-1 float vs int8")
    build.add_argument("--tuning-db", action="append", default=[], metavar="FILE",
                       help="use the best schedules recorded in FILE by `tune` (repeat to merge several)")
    build.set_defaults(handler=_build)

    run = commands.add_parser("run", help="run a build output on its inputs",
                              description="Run OUT (from `build`) on input tensors; print an output summary and latency.")
    run.add_argument("out_dir", metavar="OUT", help="a directory written by `build`")
    run.add_argument("--input", action="append", required=True, metavar="PATH",
                     help=".npy file per model input, in input order (repeat), or one .npz keyed by input name")
    run.add_argument("--output", metavar="PATH", help="save the output (.npy; .npz when the model has several outputs)")
    run.add_argument("--repeat", type=int, default=1, metavar="N", help="timed runs after one warm-up run (default 1)")
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="coral-npu: stop the simulator after this long "
                                                                     "(default: the target's)")
    run.set_defaults(handler=_run)

    tune = commands.add_parser("tune", help="search kernel schedules and record the best in a tuning database",
                               description="Tune MODEL's kernels for a target: every distinct kernel workload's schedules "
                                           "are measured (coral-npu: exact instruction counts in QEMU, checked bit-exact "
                                           "against kernels/ref), the best go into FILE, and OUT receives the model built "
                                           "with them and a report of default vs tuned instructions per layer.")
    _model_arguments(tune)
    tune.add_argument("--tuning-db", required=True, metavar="FILE", help="tuning database (JSON lines); appended to")
    tune.add_argument("--trials", type=int, metavar="N",
                      help="candidates to measure in all (default 1000; with --time-budget, no limit on coral-npu)")
    tune.add_argument("--time-budget", metavar="DURATION", help="stop searching after this long: 900, 900s, 15m or 1h")
    tune.add_argument("--seed", type=int, default=0, help="random seed of the search (default 0)")
    tune.set_defaults(handler=_tune)

    targets = commands.add_parser("targets", help="list the targets and what each supports")
    targets.set_defaults(handler=_targets)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except CompilerError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outputs are staged: nothing half-written is left behind
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
