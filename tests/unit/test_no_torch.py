"""The command line keeps torch out without leaving a placeholder that other libraries trip over."""
import subprocess
import sys

CHECK = """
import sys
from compiler.no_torch import block_torch
block_torch()
try:
    import torch
    raise SystemExit("torch was imported")
except ImportError:
    pass
assert "torch" not in sys.modules
import numpy as np
from scipy._lib.array_api_compat.common._helpers import is_torch_array
assert not is_torch_array(np.zeros(2))
import tvm  # scipy comes with scikit-learn (requirements.txt); tvm_ffi's optional torch hook must accept the ImportError
print("ok")
"""


def test_blocked_torch_is_absent_not_none():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
