"""The coral-npu generated-kernel test modules whose cases the other targets' tests rerun
(test_rvv256_target.py, test_arm64_target.py): each suite with how its specs hold their constant
arrays and inputs."""

import test_kernels_elementwise as elementwise
import test_kernels_mac as mac
import test_kernels_move as move
import test_kernels_prelu as prelu
import test_kernels_resize as resize
import test_kernels_softmax as softmax

# test module, and its spec's constant arrays and inputs
SUITES = [(mac, lambda spec: spec.arrays, lambda spec: [spec.x]),
          (elementwise, lambda spec: spec.arrays, lambda spec: spec.inputs),
          (move, lambda spec: {}, lambda spec: spec.inputs),
          (softmax, lambda spec: {}, lambda spec: [spec.x]),
          (prelu, lambda spec: dict(alpha=spec.alpha), lambda spec: [spec.x]),
          (resize, lambda spec: spec.arrays, lambda spec: [spec.x])]


def suite_name(module) -> str:
    """test_kernels_mac -> mac: the prefix of a suite's case labels."""
    return module.__name__[len("test_kernels_"):]


def large_spec_labels(module) -> set:
    """The labels of a suite's large benchmark specs, which the other targets' tests leave out."""
    return set(getattr(module, "BENCHMARK_CEILINGS", mac.BENCHMARKS))
