"""MediaPipe's trained .tflite models through the whole compiler: the README's MediaPipe table.

    .venv/bin/python benchmarks/mediapipe_table.py [MODEL ...] [--samples 3] [--calib-samples 8] [--out build/bench-mediapipe]

Models: build/mediapipe/*.tflite (`make mediapipe-models`). Per model, one build at a time:
  ops       the TFLite operators (count, distinct names);
  float     the host float build (its report's MACs) against LiteRT's built-in kernels
            (BUILTIN_WITHOUT_DEFAULT_DELEGATES) on --samples random inputs in [-1, 1]: the largest
            absolute difference relative to the output's largest magnitude, worst over all outputs;
  int8      our PTQ (`--quantize int8`, float I/O) calibrated on --calib-samples synthetic
            random-uniform [-1, 1] inputs: cosine similarity of the int8 host outputs to the float
            host outputs on the same inputs, the worst output;
  coral-npu the same PTQ built with `--target coral-npu --memory soc` and run in QEMU: instructions
            per inference (exact), and whether every output equals the host int8 build's bit for bit.
  ethos-u   the same PTQ built with `--target ethos-u55-128` (our .tflite export, then Vela): whether
            LiteRT's built-in kernels run the exported file bit-exact to the host int8 build (the
            build's own check, 4 random inputs; "float rounding" when layers compute in float),
            Vela's cycle estimate and the operators Vela leaves to the CPU.
A model failing at some stage gets the stage and the error in its row; the other models are still
measured. Prints progress to stderr and the Markdown table to stdout; writes OUT/mediapipe.md and
OUT/mediapipe.json; exits 1 when a model failed a stage, coral differs from host or LiteRT from the build.
"""

import argparse
import dataclasses
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from coral_model_zoo import _cosine, _quant  # noqa: E402
from mediapipe_models import MODELS  # noqa: E402
from tflite_builder import litert_run  # noqa: E402

from compiler.build import build  # noqa: E402
from compiler.errors import CompilerError  # noqa: E402
from compiler.frontend.tflite import _schema  # noqa: E402
from compiler.frontend.tflite_ops import operator_name  # noqa: E402
from compiler.run.coral import run_coral  # noqa: E402
from compiler.run.host import run_host  # noqa: E402


def tflite_operators(path: Path) -> Counter:
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    ops = model.subgraphs[0].operators or []
    return Counter(operator_name(model, op, schema, path.name, position) for position, op in enumerate(ops))


def _one_line(err: Exception) -> str:
    text = (str(err).strip().splitlines() or [""])[0].replace(f"{MODELS}/", "")
    text = re.sub(r" \(supported: [^)]*\)", "", text)  # the frontend's list of every operator it knows
    return text if isinstance(err, CompilerError) else f"{type(err).__name__}: {text}"


def litert_refuses(path: Path) -> str | None:
    """Why LiteRT's built-in kernels cannot run the model (MediaPipe's custom ops), or None."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        Interpreter(model_path=str(path),
                    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES).allocate_tensors()
    except RuntimeError as err:
        return next((line.strip() for line in str(err).splitlines() if "custom op" in line), _one_line(err))
    return None


def _stage(row: dict, stage: str, work):
    start = time.monotonic()
    print(f"{row['model']}: {stage} ...", file=sys.stderr, flush=True)
    try:
        return work()
    except Exception as err:  # one model failing still reports the others
        row["failed"] = f"{stage}: {_one_line(err)}"
        print(f"{row['model']}: {stage} FAILED: {row['failed']}", file=sys.stderr, flush=True)
        return None
    finally:
        row["seconds"][stage] = round(time.monotonic() - start, 1)


def measure(name: str, out: Path, samples: int, calib_samples: int) -> dict:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    path = MODELS / f"{name}.tflite"
    row = {"model": name, "seconds": {}, "operators": dict(tflite_operators(path)), "litert": litert_refuses(path)}
    report = _stage(row, "float build", lambda: build(path, "host", folder / "float"))
    if report is None:
        return row
    row["macs"] = report["totals"]["macs"]
    rng = np.random.default_rng(0)
    shapes = [tensor["shape"] for tensor in report["interface"]["inputs"]]
    inputs = []
    for sample in range(samples):
        inputs.append([rng.uniform(-1, 1, shape).astype(np.float32) for shape in shapes])
        for index, value in enumerate(inputs[-1]):
            np.save(folder / f"x{sample}_{index}.npy", value)
    paths = [[str(folder / f"x{sample}_{index}.npy") for index in range(len(shapes))] for sample in range(samples)]

    def float_error():
        floats, worst = [], 0.0
        for x, files in zip(inputs, paths):
            floats.append(run_host(folder / "float", files).outputs)
            if row["litert"] is None:
                for have, want in zip(floats[-1], litert_run(path, x, reference=False)):
                    worst = max(worst, float(np.abs(have - want).max() / np.abs(want).max()))
        if row["litert"] is None:
            row["float_error"] = worst
        return floats

    floats = _stage(row, "float run", float_error)
    if floats is None:
        return row
    if len(shapes) != 1:
        row["failed"] = "int8: calibration .npy holds one input; this model has several"
        return row
    np.save(folder / "calib.npy", rng.uniform(-1, 1, (calib_samples, *shapes[0])).astype(np.float32))
    quant = dataclasses.replace(_quant(folder / "calib.npy", calib_samples), io="float")
    if _stage(row, "int8 build", lambda: build(path, "host", folder / "int8", quant=quant)) is None:
        return row

    def int8_cosine():
        hosts = [run_host(folder / "int8", files).outputs for files in paths]
        names = [tensor["name"] for tensor in report["interface"]["outputs"]]
        cosines, zero = {}, {}  # per output: the worst cosine; outputs whose int8 values are all 0
        for outs, refs in zip(hosts, floats):
            for output, have, want in zip(names, outs, refs):
                if not np.any(have):  # the cosine is undefined: int8 rounded a near-zero output to 0
                    zero[output] = max(zero.get(output, 0.0), float(np.abs(want).max()))
                else:
                    cosines[output] = min(cosines.get(output, 1.0), _cosine(have, want))
        row["int8_cosines"], row["int8_all_zero"] = cosines, zero
        return hosts

    hosts = _stage(row, "int8 run", int8_cosine)
    if hosts is None:
        return row
    if _stage(row, "coral-npu build", lambda: build(path, "coral-npu", folder / "coral", quant=quant, memory="soc")) is None:
        return row
    coral = _stage(row, "coral-npu run", lambda: run_coral(folder / "coral", paths[0]))
    if coral is not None:
        row["instructions"] = coral.total_instructions
        row["coral_equals_host"] = all(np.array_equal(c, h) for c, h in zip(coral.outputs, hosts[0]))
    ethos = _stage(row, "ethos-u55-128 build", lambda: build(path, "ethos-u55-128", folder / "ethos", quant=quant))
    if ethos is not None:
        check = ethos["tflite"]["check"]
        row["ethos"] = {"litert_identical": check["identical"], "expected": check["expected"],
                        "cycles": ethos["backend"]["performance"]["value"],
                        "cpu_operators": ethos["backend"]["operators"]["fallback"]["count"]}
    return row


def _operators(counts: dict) -> str:
    names = sorted(counts, key=lambda op: (-counts[op], op))
    return f"{sum(counts.values())}: " + ", ".join(f"{op.removeprefix('CUSTOM:')} {counts[op]}" for op in names)


def table(rows: list[dict], samples: int, calib_samples: int) -> str:
    lines = [f"| model | TFLite operators | MACs | float: max error vs LiteRT (of max \\|output\\|, {samples} inputs) | "
             f"int8 PTQ, synthetic calibration ({calib_samples} uniform [-1, 1] samples): worst cosine to float | "
             "coral-npu instructions | coral-npu = host int8 | ethos-u55-128: LiteRT = host int8 | Vela cycles "
             "(CPU operators) |",
             "|---|---|---:|---:|---:|---:|---|---|---:|"]
    for r in rows:
        float_error = (f"LiteRT cannot run it ({r['litert']})" if r["litert"]
                       else f"{r['float_error']:.1e}" if "float_error" in r else "")
        cosine = ""
        if r.get("int8_cosines"):
            output = min(r["int8_cosines"], key=r["int8_cosines"].get)
            cosine = f"{r['int8_cosines'][output]:.4f}" + (f" ({output})" if len(r["int8_cosines"]) > 1 else "")
        for output, magnitude in r.get("int8_all_zero", {}).items():
            cosine += f"; {output}: int8 all 0 on some inputs (float up to {magnitude:.1e})"
        instructions = f"{r['instructions']:,}" if "instructions" in r else ""
        exact = ("bit-exact" if r["coral_equals_host"] else "DIFFERENT") if "coral_equals_host" in r else ""
        if "failed" in r:
            exact = (exact + "; " if exact else "") + f"**failed at {r['failed']}**"
        macs = f"{r['macs']:,}" if "macs" in r else ""
        ethos = r.get("ethos")
        litert = "" if ethos is None else ("bit-exact" if ethos["litert_identical"] else "DIFFERENT") + (
            "" if ethos is None or ethos["expected"] == "bit-exact" else f" ({ethos['expected']})")
        vela = "" if ethos is None else f"{ethos['cycles']:,} ({ethos['cpu_operators']})"
        cells = [r["model"], _operators(r["operators"]), macs, float_error, cosine, instructions, exact, litert, vela]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    known = sorted(path.stem for path in MODELS.glob("*.tflite"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=known, metavar="MODEL", help="default: every model in build/mediapipe")
    parser.add_argument("--samples", type=int, default=3, help="random inputs compared (default 3)")
    parser.add_argument("--calib-samples", type=int, default=8, help="synthetic calibration samples (default 8)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-mediapipe", help="working directory")
    args = parser.parse_args(argv)
    if not known:
        parser.error(f"no models in {MODELS}: run `make mediapipe-models`")
    unknown = [name for name in args.models if name not in known]
    if unknown:
        parser.error(f"unknown model {unknown[0]} (known: {', '.join(known)})")
    rows = []
    for number, name in enumerate(args.models, 1):
        print(f"[{number}/{len(args.models)}] {name}", file=sys.stderr, flush=True)
        rows.append(measure(name, args.out, args.samples, args.calib_samples))
        print(f"{name}: done {rows[-1]['seconds']}", file=sys.stderr, flush=True)
    text = table(rows, args.samples, args.calib_samples)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mediapipe.md").write_text(text + "\n")
    (args.out / "mediapipe.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all("failed" not in r and r.get("coral_equals_host") and r["ethos"]["litert_identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
