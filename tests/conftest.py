"""Shared test set-up: makes tests/onnx_models.py importable from every test folder, and gives
Ctrl-C back to a test session started as a background job.

A shell starts a background job (`make test &`) with SIGINT ignored, Python then installs no
KeyboardInterrupt handler, and every child inherits the ignore: the tests that interrupt a build or
a tuning run with SIGINT would see it finish instead. Python's own handler in this process makes
exec'd children start with the default disposition again, as in a foreground run (CI's)."""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# The files that take longest (minutes each: whole models in QEMU, kernel sweeps, tuning runs),
# longest first, from `--durations` of a serial run. `make test` runs the suite in two processes
# that take whole files as they free up (pytest-xdist --dist loadfile, in collection order):
# starting with these leaves short files for the end, not one process busy with a long file while
# the other idles. Order only: every file still runs.
LONGEST_FIRST = [
    "tests/coral/test_edge_cnns.py", "tests/coral/test_edge_ops.py", "tests/e2e/test_tflite_build.py",
    "tests/coral/test_rvv256_target.py", "tests/e2e/test_onnx_backend.py", "tests/tune/test_tune_run.py",
    "tests/e2e/test_tflite_export.py", "tests/coral/test_coral_build.py", "tests/unit/test_host_tuning.py",
    "tests/e2e/test_fuzz_models.py", "tests/coral/test_model_zoo.py", "tests/coral/test_unary_models.py",
    "tests/coral/test_tflite_coral.py", "tests/tune/test_tune_host.py", "tests/e2e/test_int8.py",
    "tests/e2e/test_output_dir.py",
]


def pytest_collection_modifyitems(session, config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order
