"""The static memory plan (compiler/coral/memory_plan.py): buffers alive at the same time never
share bytes, buffers that are not do, and the arena is no larger than it must be by much."""

import itertools

import numpy as np
import pytest

from compiler.coral.memory_plan import ALIGN, Buffer, plan_arena


def _check_disjoint(buffers, plan):
    for a, b in itertools.combinations(buffers, 2):
        if a.first <= b.last and b.first <= a.last:  # alive together
            a0, b0 = plan.offsets[a.key], plan.offsets[b.key]
            assert a0 + a.size <= b0 or b0 + b.size <= a0, (a, b, a0, b0)
    for buffer in buffers:
        assert plan.offsets[buffer.key] % ALIGN == 0
        assert plan.offsets[buffer.key] + buffer.size <= plan.size


def _peak_live(buffers):
    steps = range(min(b.first for b in buffers), max(b.last for b in buffers) + 1)
    return max(sum(b.size for b in buffers if b.first <= s <= b.last) for s in steps)


def test_a_chain_reuses_memory():
    # x0 -> x1 -> x2 -> x3: x0 and x2 are never alive together, so they share bytes
    chain = [Buffer(i, 1000, i - 1, i) for i in range(4)]
    plan = plan_arena(chain)
    _check_disjoint(chain, plan)
    assert plan.size == 2 * 1008  # two buffers alive at a time, each rounded up to ALIGN


def test_buffers_alive_together_are_disjoint_and_lifetimes_are_inclusive():
    a, b = Buffer("a", 64, 0, 2), Buffer("b", 64, 2, 3)  # both alive in step 2
    plan = plan_arena([a, b])
    assert {plan.offsets["a"], plan.offsets["b"]} == {0, 64}


@pytest.mark.parametrize("seed", range(20))
def test_random_lifetimes(seed):
    rng = np.random.default_rng(seed)
    buffers = []
    for key in range(int(rng.integers(1, 40))):
        first = int(rng.integers(-1, 30))
        buffers.append(Buffer(key, int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 8))))
    plan = plan_arena(buffers)
    _check_disjoint(buffers, plan)
    # never worse than no reuse at all, never better than the peak of live bytes
    assert _peak_live(buffers) <= plan.size <= sum((b.size + ALIGN - 1) // ALIGN * ALIGN for b in buffers)
