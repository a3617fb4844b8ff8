"""The tuning space: its knobs come from the codegen, every candidate it yields is valid (the
codegen's own validate() and the layer's scratch budget), and invalid ones are refused before
anything is compiled. Workload keys: what the instruction count depends on, no more."""

import numpy as np
import pytest

from compiler.coral import codegen
from compiler.tune.space import Space, schedule_key
from compiler.tune.workload import workload_of


def conv_params(size=14, in_c=32, out_c=32, k=1, stride=1, groups=1, zero_point=-3, act_min=-128):
    out = (size + 2 * (k // 2) - k) // stride + 1
    return dict(batches=1, in_h=size, in_w=size, in_c=in_c, out_h=out, out_w=out, out_c=out_c, kernel_h=k, kernel_w=k,
                stride_h=stride, stride_w=stride, pad_top=k // 2, pad_left=k // 2, dilation_h=1, dilation_w=1,
                groups=groups, input_zero_point=zero_point, output_zero_point=5, act_min=act_min, act_max=127)


ADD = dict(batches=1, pixels=500, channels=1, broadcast=0, subtract=0, left_shift=20, input1_zero_point=1,
           input1_multiplier=1 << 30, input1_shift=-1,
           input2_zero_point=2, input2_multiplier=1 << 30, input2_shift=-1, output_zero_point=0,
           output_multiplier=1 << 30, output_shift=-1, act_min=-128, act_max=127)


def test_knobs_are_the_ones_the_kernel_reads():
    pointwise = Space.for_task("conv2d", conv_params(), 1 << 20)
    assert {"lmul", "oc_tile", "px_tile", "unroll", "weight_pack"} <= set(pointwise.knobs)
    assert set(Space.for_task("add", ADD, 1 << 20).knobs) == {"lmul"}
    for space in (pointwise, Space.for_task("add", ADD, 1 << 20)):
        for knob, values in space.knobs.items():
            assert space.default[knob] in values  # the default is always in the space


@pytest.mark.parametrize("params", [conv_params(), conv_params(k=3, groups=32, stride=2), conv_params(in_c=3, k=3)],
                         ids=["pointwise", "depthwise_s2", "stem"])
def test_every_generated_candidate_is_valid(params):
    space = Space.for_task("conv2d", params, 1 << 20)
    rng = np.random.default_rng(0)
    assert space.valid(space.default)
    made = [space.random(rng) for _ in range(30)]
    made += [space.mutate(space.default, rng) for _ in range(30)]
    made += [space.crossover(made[i], made[i + 1], rng) for i in range(0, 20, 2)]
    made = [s for s in made if s is not None]
    assert len({schedule_key(s) for s in made}) > 10
    for schedule in made:
        assert codegen.validate("conv2d", params, schedule) == "", schedule
        assert set(schedule) == set(space.default)


def test_register_budget_is_a_validity_rule():
    params = conv_params(in_c=64, out_c=64)
    space = Space.for_task("conv2d", params, 1 << 20)
    too_many = {**space.default, "lmul": 8, "oc_tile": 32, "px_tile": 4}  # 4 x 8 accumulators + weights > 32
    assert not space.valid(too_many)
    assert "vector registers" in codegen.validate("conv2d", params, too_many)


def test_scratch_budget_is_a_validity_rule():
    depthwise = conv_params(size=28, in_c=16, out_c=16, k=3, groups=16)
    roomy = Space.for_task("conv2d", depthwise, 1 << 20)
    needed = roomy.scratch_bytes(roomy.default)
    assert needed > 0  # the pixel engine's band buffer
    assert roomy.valid(roomy.default)
    assert not Space.for_task("conv2d", depthwise, needed - 1).valid(roomy.default)


def test_workload_key_ignores_values_but_not_shapes():
    weights = {"weight": np.zeros((32, 1, 1, 32), np.int8), "bias": np.zeros(32, np.int32)}
    base = workload_of("conv2d", conv_params(), weights)
    assert workload_of("conv2d", conv_params(zero_point=7), {k: v + 1 for k, v in weights.items()}) == base
    assert workload_of("conv2d", conv_params(size=7), weights) != base
    assert workload_of("conv2d", conv_params(act_min=-100), weights) != base  # a clamp is code
    assert workload_of("conv2d", conv_params(), {"weight": weights["weight"]}) != base  # no bias
    assert len(base.digest) == 16 and base.key.startswith("conv2d(")


def test_the_space_follows_the_targets_vector_length():
    """oc_tile reaches the target's full-width tiles (the int32 lanes at LMUL 8: 32 at VLEN 128, 64 at
    VLEN 256), and the cost model's register features are the target's: no VLEN 128 left in the space."""
    from compiler.targets import get_target

    params = conv_params(size=8, in_c=64, out_c=64)
    coral, rvv = (Space.for_task("conv2d", params, 1 << 20, get_target(name)) for name in ("coral-npu", "rvv256-rv64"))
    assert max(coral.knobs["oc_tile"]) == 32 and {48, 64} <= set(rvv.knobs["oc_tile"])
    for space, lanes in ((coral, 32), (rvv, 64)):
        full = {**space.default, "oc_tile": lanes, "lmul": 8, "px_tile": 1}
        assert space.valid(full)
        assert space.features(full)[6] == 1.0  # every int32 lane of the LMUL 8 group in use
    assert not coral.valid({**coral.default, "oc_tile": 64, "lmul": 8, "px_tile": 1})  # VLEN 128 has 32 lanes
