"""Keep torch out of a process that does not need it.

tvm_ffi imports torch eagerly whenever it is installed, which costs every command over a second. A
finder at the front of sys.meta_path makes `import torch` raise ImportError (which tvm_ffi expects)
without putting anything into sys.modules: libraries such as scipy's array-api layer look torch up in
sys.modules and would trip over a placeholder there.
"""
import importlib.abc
import sys


class _TorchBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            raise ImportError(f"{fullname} is not loaded by this command")
        return None


def block_torch() -> None:
    if "torch" not in sys.modules and not any(isinstance(f, _TorchBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchBlocker())
