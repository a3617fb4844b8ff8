"""Adversarial names for the fuzz tests, and a model renamer.

    names = hostile_names(rng, count)          # distinct, each from one hostile family
    renamed = rename(model, names)             # every node, tensor, input, output and initializer

Families: C comment terminators and openers, quotes, backslashes (line splices), newlines and
other controls, '#' (preprocessor), '??/' (trigraphs), non-ASCII and bidirectional overrides,
NUL, 64 KB names, C keywords, and names that differ only in characters a sanitiser folds.
"""

import onnx

FAMILIES = [
    lambda n: f"*/ int evil{n} = 1; /*",
    lambda n: f"a{n} */ __asm__(\"ebreak\"); /* b",
    lambda n: f"quote{n}\"'\\\"",
    lambda n: f"splice{n}\\",
    lambda n: f"line{n}\nbreak\r\n",
    lambda n: f"#define X{n} 1",
    lambda n: f"trigraph{n} ??/",
    lambda n: f"名前{n} \u202etxt.exe",
    lambda n: f"nul{n}\0byte",
    lambda n: f"esc{n}\x1b[2J\x1b[31m",
    lambda n: f"pipe{n} | `tick` | # h",
    lambda n: f"long{n}" + "x" * 65536,
    lambda n: ["int", "while", "return", "_Bool", "main", "layer0"][n % 6] + ("" if n < 6 else str(n)),
    lambda n: f"collide/{n}",
    lambda n: f"collide.{n}",
    lambda n: f"9digit{n}",
]


def hostile_names(rng, count: int) -> list[str]:
    """`count` distinct names, families drawn at random (every family while count allows)."""
    order = list(rng.permutation(len(FAMILIES)))
    names = []
    for n in range(count):
        family = order[n] if n < len(order) else int(rng.integers(len(FAMILIES)))
        names.append(FAMILIES[family](n))
    assert len(set(names)) == len(names)
    return names


def rename(model: onnx.ModelProto, names: list[str]) -> tuple[onnx.ModelProto, dict]:
    """A copy of `model` with every node and tensor renamed from `names` (in order of first use);
    returns it and the mapping old -> new."""
    renamed = onnx.ModelProto()
    renamed.CopyFrom(model)
    graph = renamed.graph
    pool = iter(names)
    mapping: dict[str, str] = {}

    def new(old: str) -> str:
        if old and old not in mapping:
            mapping[old] = next(pool)
        return mapping.get(old, old)

    for value in graph.input:
        value.name = new(value.name)
    for tensor in graph.initializer:
        tensor.name = new(tensor.name)
    for node in graph.node:
        node.name = new(node.name) if node.name else ""
        node.input[:] = [new(name) for name in node.input]
        node.output[:] = [new(name) for name in node.output]
    for value in list(graph.output) + list(graph.value_info):
        value.name = new(value.name)
    return renamed, mapping
