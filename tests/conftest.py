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
