"""The quantisation plan: (scale, zero point) for every quantised activation tensor.

Calibration gives a float range per observed tensor; this turns ranges into int8
parameters, except where the int8 op requires its output to share its input's parameters
(max and average pooling, as in TFLite, scale-free reshapes, and constant pads with pad
value 0.0, whose int8 pad value is then the zero point): there the input's parameters
propagate instead of being re-chosen, so no requantisation is needed. A softmax's output has
TFLite's fixed parameters (SOFTMAX_QPARAMS).
"""

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from compiler.partition import group_name
from compiler.passes.util import bindings, is_call_to, var_use_counts
from compiler.quant.calibrate import tensor_ids
from compiler.quant.observers import activation_qparams

# group patterns and ops whose int8 output keeps the input's (scale, zero point), whatever
# their attributes; R.nn.pad does only as a zero pad (is_zero_pad, keeps_input_qparams)
SAME_AS_INPUT = frozenset({"max_pool2d", "avg_pool2d", "relax.reshape", "relax.permute_dims", "relax.squeeze",
                           "relax.expand_dims", "relax.flatten", "relax.strided_slice"})


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int

    def as_dict(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point}


# TFLite's int8 SOFTMAX writes probabilities at a fixed scale of 1/256 and zero point -128 (its
# kernel's fixed-point output stage assumes them), whatever the calibration saw.
SOFTMAX_QPARAMS = QParams(1.0 / 256, -128)


def is_int8_softmax(call) -> bool:
    """R.nn.softmax along the last axis: the form the int8 SOFTMAX kernel computes."""
    if not is_call_to(call, "relax.nn.softmax"):
        return False
    rank = len(call.args[0].ty.shape)
    return rank > 0 and int(call.attrs.axis) % rank == rank - 1


def callee_kind(mod: tvm.IRModule, call: relax.Call) -> str:
    """A call's pattern name (fused group), op name, or callee name."""
    if isinstance(call.op, tvm.ir.GlobalVar):
        return group_name(mod[call.op]) or call.op.name_hint
    return call.op.name if isinstance(call.op, tvm.ir.Op) else str(call.op)


def is_zero_pad(call) -> bool:
    """R.nn.pad in constant mode with pad value 0.0: real 0 is exactly the zero point, so the int8
    pad keeps the input's (scale, zero point) and pads with the zero point. A non-zero pad value
    gets parameters of its own (the pad stays float; the value may not be representable)."""
    return (is_call_to(call, "relax.nn.pad") and str(call.attrs.pad_mode) == "constant"
            and float(call.attrs.pad_value) == 0.0)


def resize_method(call) -> str | None:
    """"nearest_neighbor" or "linear" for an R.image.resize2d whose outputs are input values or
    convex combinations of them (so the input's range holds them all), else None (cubic overshoots;
    tf_crop_and_resize extrapolates)."""
    if not is_call_to(call, "relax.image.resize2d"):
        return None
    method = str(call.attrs.method)
    if method not in ("nearest_neighbor", "linear") or str(call.attrs.coordinate_transformation_mode) == "tf_crop_and_resize":
        return None
    return method


def moves_int8(mod: tvm.IRModule, call: relax.Call) -> bool:
    """Does the op only move int8 values (it may run on the int8 tensor itself)?"""
    return callee_kind(mod, call) in SAME_AS_INPUT or resize_method(call) == "nearest_neighbor"


def computes_at_input_qparams(call) -> bool:
    """Ops whose int8 form keeps the input's (scale, zero point) but computes on real values,
    written dequantize -> op -> quantize: a zero pad (on the int8 tensor R.nn.pad would pad with
    0, not the zero point) and a bilinear resize (TFLite's int8 RESIZE_BILINEAR interpolates at
    the input's parameters)."""
    return is_zero_pad(call) or resize_method(call) == "linear"


def keeps_input_qparams(mod: tvm.IRModule, call: relax.Call) -> bool:
    """Does the call's int8 output keep its (single) tensor input's (scale, zero point)?"""
    return moves_int8(mod, call) or computes_at_input_qparams(call)


INT16_MAX = 32767


def int16_qparams(lo: float, hi: float) -> QParams:
    """A 16x8 layer's activation parameters (TFLite's scheme): symmetric, zero point 0, the scale
    max(|lo|, |hi|) / 32767 as a float32 (a tensor that is always 0: 1 / 32767)."""
    bound = max(abs(float(lo)), abs(float(hi)))
    return QParams(float(np.float32((bound if bound > 0 else 1.0) / INT16_MAX)), 0)


def plan_int16(ranges: dict) -> dict[str, QParams]:
    """Tensor id -> int16 QParams for every observed tensor (the 16x8 layers pick theirs)."""
    return {tensor_id: int16_qparams(*bounds) for tensor_id, bounds in ranges.items()}


def plan_activations(mod: tvm.IRModule, ranges: dict, input_names=None, tflite_scales=False) -> dict[str, QParams]:
    """Tensor id (calibrate.tensor_ids) -> QParams for every observed tensor of main.

    A concat's inputs that feed nothing else take the concat's parameters (chosen over the
    union of their ranges), so the int8 concat is a plain copy. With tflite_scales (a build
    written as TFLite, whose int8 CONCATENATION refuses inputs at another scale than its
    output's) every concat input shares them, whatever else reads it, and so does every tensor
    linked to one by an op that keeps its input's parameters (a RESHAPE between a convolution and
    the concat): TFLite's converter arranges the same.
    """
    ids = dict((var, tensor_id) for tensor_id, var in tensor_ids(mod["main"], input_names))
    ranges = _same_scale_ranges(mod, ids, ranges) if tflite_scales else _concat_ranges(mod["main"], ids, ranges)
    plan = {}
    for param in mod["main"].params:
        if param in ids and ids[param] in ranges:
            plan[ids[param]] = QParams(*activation_qparams(*ranges[ids[param]]))
    for binding in bindings(mod["main"]):
        tensor_id = ids.get(binding.var)
        if tensor_id is None or tensor_id not in ranges:
            continue
        source = _first_tensor_arg(binding.value)
        if keeps_input_qparams(mod, binding.value) and ids.get(source) in plan:
            plan[tensor_id] = plan[ids[source]]
        elif is_int8_softmax(binding.value):
            plan[tensor_id] = SOFTMAX_QPARAMS
        else:
            plan[tensor_id] = QParams(*activation_qparams(*ranges[tensor_id]))
    return plan


def _concat_ranges(main, ids, ranges) -> dict:
    """Ranges with each concat (and its single-use inputs) widened to the union of them all."""
    ranges, uses = dict(ranges), var_use_counts(main)
    for binding in bindings(main):
        value = binding.value
        if not is_call_to(value, "relax.concat") or not isinstance(value.args[0], relax.Tuple):
            continue
        members = [ids.get(binding.var)] + [ids.get(f) for f in value.args[0].fields if uses.get(f) == 1]
        members = [m for m in members if m in ranges]
        if len(members) > 1:
            union = (min(ranges[m][0] for m in members), max(ranges[m][1] for m in members))
            ranges.update((m, union) for m in members)
    return ranges


def _same_scale_ranges(mod, ids, ranges) -> dict:
    """Ranges with every group of tensors that must share parameters in TFLite (a concat's inputs
    and output, an op keeping its input's parameters and that input) widened to the group's union."""
    parent = {}

    def root(tensor_id):
        while parent.get(tensor_id, tensor_id) != tensor_id:
            tensor_id = parent[tensor_id]
        return tensor_id

    for binding in bindings(mod["main"]):
        value, out = binding.value, ids.get(binding.var)
        if is_call_to(value, "relax.concat") and isinstance(value.args[0], relax.Tuple):
            linked = [ids.get(field) for field in value.args[0].fields]
        elif isinstance(value, relax.Call) and keeps_input_qparams(mod, value):
            linked = [ids.get(_first_tensor_arg(value))]
        else:
            continue
        for tensor_id in linked:
            if tensor_id in ranges and out in ranges and root(tensor_id) != root(out):
                parent[root(tensor_id)] = root(out)
    groups = {}
    for tensor_id in ranges:
        groups.setdefault(root(tensor_id), []).append(tensor_id)
    widened = dict(ranges)
    for members in groups.values():
        union = (min(ranges[m][0] for m in members), max(ranges[m][1] for m in members))
        widened.update((m, union) for m in members)
    return widened


def _first_tensor_arg(call):
    return next((arg for arg in call.args if isinstance(arg, relax.Var)), None)
