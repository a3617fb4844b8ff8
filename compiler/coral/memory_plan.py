"""Static memory plan: every activation and scratch buffer gets an offset in one arena.

Liveness-based reuse, greedy by size (TFLite Micro's GreedyMemoryPlanner): buffers are placed
largest first, each at the lowest aligned offset where it overlaps no placed buffer that is
alive at the same time. A buffer is alive from the step that writes it to the last step that
reads it (inclusive); model inputs from before the first step, model outputs to after the last.
"""

from dataclasses import dataclass

ALIGN = 16  # vector loads want natural alignment; 16 keeps every LMUL-8 int32 access aligned


@dataclass(frozen=True)
class Buffer:
    key: object        # who owns it: a tensor index or ("scratch", step)
    size: int
    first: int         # first step it is alive in
    last: int          # last step it is alive in


@dataclass
class Plan:
    offsets: dict      # key -> byte offset in the arena
    size: int          # arena bytes


def _align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN


def _overlap(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def plan_arena(buffers: list[Buffer]) -> Plan:
    placed: list[tuple[Buffer, int]] = []
    offsets = {}
    for buffer in sorted(buffers, key=lambda b: (-b.size, b.first, str(b.key))):
        offset = _lowest_free_offset(buffer, placed)
        placed.append((buffer, offset))
        offsets[buffer.key] = offset
    size = max((offset + _align(b.size) for b, offset in placed), default=0)
    return Plan(offsets, size)


def _lowest_free_offset(buffer: Buffer, placed) -> int:
    """The first gap between live neighbours (sorted by offset) that holds the buffer."""
    live = sorted((offset, offset + _align(other.size)) for other, offset in placed if _overlap(buffer, other))
    candidate = 0
    for start, end in live:
        if candidate + buffer.size <= start:
            break
        candidate = max(candidate, end)
    return candidate
