"""ONNX's own backend test suite (onnx.backend.test), run against compiler.backend on the host target.

Cases run at the suite's own tolerances:
- six of the nine model-zoo architectures that ship as "light" models in the onnx wheel (all nine with
  NPU_ONNX_ZOO=all);
- every pytorch-converted / pytorch-operator case whose operators are all claimed by the
  host target (targets/host/target.toml, [onnx] ops). Claiming an operator there enrols
  every case that uses it, so the claims list is what this suite holds us to.
"""

import glob
import os
import unittest
import warnings

import onnx
import onnx.backend.test
import pytest
from onnx.backend.test.loader import DATA_DIR

import compiler.backend
from compiler.targets import get_target

# The model-zoo architectures run here. VGG-19, DenseNet-121 and Inception V1 take 45-70 s each (TVM's
# untuned float code); NPU_ONNX_ZOO=all adds them (the whole zoo, as before).
ALL_MODEL_ZOO = ("test_bvlc_alexnet", "test_densenet121", "test_inception_v1", "test_inception_v2", "test_resnet50",
                 "test_shufflenet", "test_squeezenet", "test_vgg19", "test_zfnet512")
SLOWEST = ("test_densenet121", "test_inception_v1", "test_vgg19")
MODEL_ZOO = ALL_MODEL_ZOO if os.environ.get("NPU_ONNX_ZOO") == "all" else tuple(
    name for name in ALL_MODEL_ZOO if name not in SLOWEST)
PYTORCH_KINDS = {"pytorch-converted": "PyTorchConverted", "pytorch-operator": "PyTorchOperator"}
MIN_PYTORCH_CASES = 110  # the selection when written (of 117); it may grow, never shrink

# The pytorch cases name their inputs "0", "1", ...; TVM's importer warns as it renames them.
pytestmark = pytest.mark.filterwarnings("ignore:Renaming name:UserWarning")


def case_operators(model_path) -> set[str]:
    """The operators a case's model uses (non-ONNX domains prefixed, so they are never claimed)."""
    model = onnx.load(model_path)
    return {node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            for node in model.graph.node}


def select_pytorch_cases(claimed) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """({category: [case names whose ops are all claimed]}, {excluded case: its unclaimed ops})."""
    selected, excluded = {}, {}
    for kind, category in PYTORCH_KINDS.items():
        selected[category] = []
        for case_dir in sorted(glob.glob(os.path.join(DATA_DIR, kind, "test_*"))):
            name = os.path.basename(case_dir)
            unclaimed = case_operators(os.path.join(case_dir, "model.onnx")) - set(claimed)
            if unclaimed:
                excluded[name] = unclaimed
            else:
                selected[category].append(name)
    return selected, excluded


SELECTED, EXCLUDED = select_pytorch_cases(get_target("host").onnx_ops)
SELECTED["Real"] = list(MODEL_ZOO)

with warnings.catch_warnings():  # building the runner generates every node case; some warn about NaN/overflow
    warnings.simplefilter("ignore")
    backend_test = onnx.backend.test.BackendTest(compiler.backend, __name__)


def selected_test_classes(runner, selected) -> dict[str, type]:
    """The runner's TestCase classes cut down to the selected cases on the CPU.

    BackendTest makes one class per category holding every case for every device;
    returning only what we claim makes pytest collect exactly that.
    """
    classes = {}
    for class_name, case_class in runner.test_cases.items():
        category = class_name.removeprefix("OnnxBackend").removesuffix("ModelTest")
        methods = {f"{name}_cpu": getattr(case_class, f"{name}_cpu")
                   for name in selected.get(category, []) if hasattr(case_class, f"{name}_cpu")}
        if methods:
            classes[class_name] = type(class_name, (unittest.TestCase,), {"__module__": __name__, **methods})
    return classes


TEST_CLASSES = selected_test_classes(backend_test, SELECTED)
globals().update(TEST_CLASSES)


@pytest.fixture(scope="module", autouse=True)
def onnx_home(tmp_path_factory):
    """The runner writes the light models' test data under $ONNX_HOME (default ~/.onnx)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ONNX_HOME", str(tmp_path_factory.mktemp("onnx_home")))
        patch.delenv("ONNX_MODELS", raising=False)
        yield


def test_selection_is_not_empty():
    def collected(category):
        case_class = TEST_CLASSES.get(f"OnnxBackend{category}ModelTest")
        return sorted(name for name in dir(case_class) if name.startswith("test_")) if case_class else []

    assert collected("Real") == sorted(f"{name}_cpu" for name in MODEL_ZOO)
    pytorch = [name for category in PYTORCH_KINDS.values() for name in collected(category)]
    assert len(pytorch) == sum(len(SELECTED[category]) for category in PYTORCH_KINDS.values())
    assert len(pytorch) >= MIN_PYTORCH_CASES, f"only {len(pytorch)} pytorch cases selected; excluded: {EXCLUDED}"
