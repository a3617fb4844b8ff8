"""Runs one fuzz case through the real command line and says what was wrong with the outcome.

    problem = check_case(model_path, out_dir, extra_args)   # None when the compiler behaved

Behaving means: exit 0 with a complete OUT, or exit 2 with exactly one `error:` line and no OUT;
never a traceback, another exit code (a crash, an internal error), a hang, or a staging folder
left behind."""

import subprocess
import sys
from pathlib import Path

MARKER = ".compiler-build.json"
CASE_TIMEOUT = 180  # seconds


def check_case(model_path: Path, out: Path, extra=()) -> str | None:
    command = [sys.executable, "-m", "compiler", "build", str(model_path), "-o", str(out), *extra]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"hang: no answer in {CASE_TIMEOUT} s"
    leftovers = [p.name for p in out.parent.glob(f".{out.name}.*")]
    if leftovers:
        return f"staging left behind: {leftovers}"
    if "Traceback" in result.stderr + result.stdout:
        return f"traceback (exit {result.returncode}): {result.stderr.strip().splitlines()[-1]}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if result.returncode == 0:
        complete = out.is_dir() and (out / MARKER).is_file() and (out / "report.json").is_file()
        return None if complete and not errors else f"exit 0 but OUT incomplete or an error printed: {result.stderr}"
    if result.returncode != 2:
        return f"exit {result.returncode}: {result.stderr.strip()[-500:]}"
    if len(errors) != 1 or errors[0].strip() != result.stderr.strip().splitlines()[-1].strip():
        return f"exit 2 without exactly one final error line: {result.stderr.strip()[-500:]}"
    if out.exists():
        return "exit 2 but OUT exists"
    return None
