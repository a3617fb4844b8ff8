"""`python -m compiler.coral.tvm_compile MODULE.json TARGET_JSON OUT.o`: TVM's LLVM backend in
its own process (compiler/coral/tvm_fallback.py compile_object runs it).

MODULE.json is tvm.ir.save_json of an IRModule of PrimFuncs with global symbols; TARGET_JSON a
tvm.target.Target dict (target.toml [tvm]). Writes a relocatable object; errors go to stderr
with a non-zero exit.
"""

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    from compiler.no_torch import block_torch

    block_torch()  # tvm_ffi would import it (over a second) for nothing here
    import tvm

    module_json, target_json, out_obj = argv
    mod = tvm.ir.load_json(Path(module_json).read_text())
    library = tvm.tirx.build(mod, target=tvm.target.Target(json.loads(target_json)))
    library.write_to_file(out_obj)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
