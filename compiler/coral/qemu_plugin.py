"""A target's QEMU TCG plugin ([simulator] plugin in target.toml: a C file of host code beside the
target's), built once per process with the host's C compiler into a private temporary folder.

    spec = plugin_argument(target)   # "/tmp/npu-qemu-plugin-.../instret.so,lo=0x10000000,hi=0x30000000"

The arm64 targets' plugin (targets/arm64_linux_runtime/qemu_plugin/instret.c) counts instructions in
qemu-aarch64's user mode; lo / hi bound the program's memory ([simulator] ram), where alone the
plugin writes.
"""

import atexit
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from compiler.errors import CompilerError
from compiler.names import shown

HOST_CC = ("cc", "gcc", "clang")


def plugin_argument(target) -> str:
    """QEMU's -plugin argument for the target: the built library and the memory bounds."""
    simulator = target.data["simulator"]
    source = (target.folder / simulator["plugin"]).resolve()
    ram = simulator["ram"]
    return f"{_build(source)},lo={ram['address']:#x},hi={ram['address'] + ram['size']:#x}"


@lru_cache(maxsize=None)
def _build(source: Path) -> Path:
    compiler = next((cc for cc in HOST_CC if shutil.which(cc)), None)
    if compiler is None:
        raise CompilerError(f"no host C compiler ({', '.join(HOST_CC)}) to build the QEMU plugin {shown(source.name)}: "
                            "install it with `sudo apt-get install -y gcc`")
    folder = Path(tempfile.mkdtemp(prefix="npu-qemu-plugin-"))  # private (mode 0700), removed at exit
    atexit.register(shutil.rmtree, folder, True)
    library = folder / f"{source.stem}.so"
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise CompilerError(f"building the QEMU plugin {shown(source.name)} failed: {lines[0] if lines else 'no message'}")
    return library
