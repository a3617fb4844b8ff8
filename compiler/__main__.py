import sys

# tvm_ffi imports torch eagerly whenever it is installed, which costs every command over a second;
# the command line reads PyTorch programs only from .pt2 files (so far none), so torch stays out.
if not any(arg.endswith(".pt2") for arg in sys.argv[1:]):
    sys.modules.setdefault("torch", None)  # `import torch` then raises ImportError, which tvm_ffi expects

from compiler.cli import main  # noqa: E402

raise SystemExit(main())
