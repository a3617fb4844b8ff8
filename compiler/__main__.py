import sys

from compiler.no_torch import block_torch

# the command line reads PyTorch programs only from .pt2 files, so other commands keep torch out
if not any(arg.endswith(".pt2") for arg in sys.argv[1:]):
    block_torch()

from compiler.cli import main  # noqa: E402

raise SystemExit(main())
