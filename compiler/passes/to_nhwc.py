"""Convert the convolutional part of a graph to NHWC (weights OHWI), permuting only at its edges.

INT8 kernels and the NPU work on NHWC activations. TVM's ConvertLayout cannot carry a
layout through R.clip (no layout inference for it, so it brackets every ReLU6 with
transposes) nor through quantize/dequantize, so we track layouts ourselves: every
tensor produced by a layout-aware op below is NHWC; any other consumer gets the NCHW
view back through one permute_dims (emitted once per tensor, at first use).

Layout-aware ops: conv2d (NCHW/OIHW -> NHWC/OHWI, constant weight permuted at compile
time), max/avg pool, every elementwise op of one tensor (relu, clip, sigmoid, ...), binary
elementwise ops (add, multiply, divide, ...) of same-layout tensors or with a per-channel constant, mean over H and W, concat along channels, R.nn.pad (its
pad_width pairs reordered N, H, W, C), strided_slice (axes renumbered), image.resize2d, PReLU
along channels, a 4-D reshape ending a chain of reshapes and transposes of an NHWC tensor
(DepthToSpace, SpaceToDepth: its result is permuted back to NHWC), and conv2d_transpose (as a
convolution over the zero-inserted input: passes/conv_transpose.py). Run before QDQ insertion and after BatchNorm
folding (which is written for NCHW).

Pre-quantised models arrive in the QDQ form (compiler/quant/qdq.py) in NCHW; the layout
follows through it: per-tensor quantize/dequantize are elementwise (axis -1); a conv
weight dequantize(const int8 OIHW, per channel along axis 0, or per tensor) becomes
dequantize(const int8 OHWI) with axis 0 kept; a bias dequantize(const int32) of shape
(1,C,1,1) with axis 1, or (C,) reshaped to (1,C,1,1), becomes (1,1,1,C) with axis -1.
The replaced NCHW weight/bias dequantize bindings are dropped when nothing else uses them.
"""

import math

import numpy as np
import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes import conv_transpose
from compiler.passes.util import bound_values, is_call_to, is_const, map_functions
from compiler.quant.unary_function import ELEMENTWISE

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
# Elementwise ops (quant/unary_function.py's table) follow the layout of their tensor operands.
_UNARY = tuple(op for op, (arity, _) in ELEMENTWISE.items() if arity == 1)
_BINARY = tuple(op for op, (arity, _) in ELEMENTWISE.items() if arity == 2)
_POOLS = ("relax.nn.max_pool2d", "relax.nn.avg_pool2d")


def to_nhwc(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, lambda func: _convert_function(func) if _has_layout_work(func) else func)


def _convert_function(func):
    mutator = _ToNHWC(bound_values(func))
    new_func = mutator.visit_expr(func)
    return relax.analysis.remove_all_unused(new_func) if mutator.replaced_dequantize else new_func


def _has_layout_work(func) -> bool:
    """An NCHW convolution, or an NCHW pool / resize that reads the model's own NHWC -> NCHW transpose
    (a TFLite model's bracket around it: converted, the bracket cancels)."""
    bound = bound_values(func)
    found = []
    relax.analysis.post_order_visit(func, lambda e: found.append(e) if _is_nchw_conv(e) or _reads_nhwc_bracket(e, bound)
                                    else None)
    return bool(found)


def _reads_nhwc_bracket(expr, bound) -> bool:
    if not any(is_call_to(expr, op) for op in _POOLS + ("relax.image.resize2d",)) or expr.attrs.layout != "NCHW":
        return False
    source = bound.get(expr.args[0])
    return is_call_to(source, "relax.permute_dims") and source.attrs.axes is not None \
        and tuple(int(a) for a in source.attrs.axes) == TO_NCHW


def _is_nchw_conv(expr) -> bool:
    return any(is_call_to(expr, op) for op in ("relax.nn.conv2d", "relax.nn.conv2d_transpose")) and \
        expr.attrs.data_layout == "NCHW"


def _shape(expr):
    return tuple(int(d) for d in expr.ty.shape)


def _permute_const(const, axes):
    return relax.const(np.ascontiguousarray(const.value.numpy().transpose(axes)))


def _channel_const_nhwc(const, channels):
    """A per-channel NCHW constant ((1,C,1,1) or (C,1,1) or scalar) as its NHWC broadcast form, else None."""
    array = const.value.numpy()
    if array.size == 1:
        return const
    if array.shape in ((1, channels, 1, 1), (channels, 1, 1)):
        return relax.const(array.reshape(1, 1, 1, channels))
    return None


def _scalar_const(expr) -> bool:
    return is_const(expr) and expr.value.numpy().size == 1


def _per_tensor_qdq(call) -> bool:
    return ((is_call_to(call, "relax.quantize") or is_call_to(call, "relax.dequantize"))
            and _scalar_const(call.args[1]) and _scalar_const(call.args[2]))


def _const_dequantize(expr) -> bool:
    """dequantize(const, const scale, const zero point): a quantised weight or bias."""
    return is_call_to(expr, "relax.dequantize") and all(is_const(arg) for arg in expr.args)


@relax.expr_functor.mutator
class _ToNHWC(relax.PyExprMutator):
    def __init__(self, bindings=None):
        super().__init__()
        self.nhwc = set()     # new vars that hold NHWC tensors
        self.nchw_view = {}   # NHWC var -> var holding its NCHW permute
        self.nhwc_copy = {}   # NCHW var -> var holding its NHWC form (a permute, or the QDQ chain redone in NHWC)
        self.bindings = bindings or {}  # the input function's var -> bound value (to see through to dequantize)
        self.replaced_dequantize = False  # NCHW dequantize bindings may have become unused

    def _bound(self, expr):
        """The value the input function binds to `expr` (or `expr` itself if it is not a bound var)."""
        return self.bindings.get(expr, expr) if isinstance(expr, relax.Var) else expr

    # -- helpers -------------------------------------------------------------------------

    def _arg(self, expr):
        """The NCHW-compatible form of an argument for ops that are not layout-aware (a tuple
        argument, e.g. call_tir's, field by field)."""
        if isinstance(expr, relax.Tuple):
            return relax.Tuple([self._arg(field) for field in expr.fields])
        new = self.visit_expr(expr)
        if new in self.nhwc:
            if new not in self.nchw_view:
                self.nchw_view[new] = self.builder_.emit(relax.op.permute_dims(new, TO_NCHW))
            return self.nchw_view[new]
        return new

    def _nhwc_arg(self, expr):
        """An argument as NHWC: already converted, or a 4-D NCHW tensor permuted here.

        A per-tensor quantize/dequantize chain (a model input's quantize(x) -> dequantize) is
        re-emitted in NHWC with the permute moved before it, so that dequantize feeds the conv.
        """
        new = self.visit_expr(expr)
        if new in self.nhwc:
            return new
        if new not in self.nhwc_copy:
            value = self._bound(expr)
            if _per_tensor_qdq(value) and len(_shape(new)) == 4:
                make = relax.op.quantize if value.op.name == "relax.quantize" else relax.op.dequantize
                call = make(self._nhwc_arg(value.args[0]), value.args[1], value.args[2], axis=-1,
                            out_dtype=value.attrs.out_dtype)
                self.nhwc_copy[new] = self.builder_.emit(with_span(call, value.span))
                self.nhwc.add(self.nhwc_copy[new])
                self.replaced_dequantize = True  # the NCHW chain may now be unused
            else:
                self.nhwc_copy[new] = self.builder_.emit(relax.op.permute_dims(new, TO_NHWC))
        return self.nhwc_copy[new]

    def _is_nhwc(self, expr) -> bool:
        return self.visit_expr(expr) in self.nhwc

    def _nhwc_available(self, expr) -> bool:
        """Is there an NHWC form of `expr` without a new permute (it is NHWC, or the model's own
        NHWC -> NCHW transpose of a tensor, as TFLite models convert around NCHW operators)?"""
        new = self.visit_expr(expr)
        return new in self.nhwc or new in self.nhwc_copy

    def _note_model_transpose(self, binding, value) -> None:
        """permute_dims(x, NHWC -> NCHW) of a 4-D x that is not ours: x is its NHWC form."""
        if not (is_call_to(value, "relax.permute_dims") and value.attrs.axes is not None
                and tuple(int(a) for a in value.attrs.axes) == TO_NCHW):
            return
        source = self.visit_expr(value.args[0])
        if source not in self.nhwc and len(_shape(source) or ()) == 4:
            self.nhwc_copy.setdefault(self.visit_expr(binding.var), source)

    def _emit_nhwc(self, binding, call):
        var = self.builder_.emit(call)
        self.nhwc.add(var)
        if not isinstance(binding.var, relax.DataflowVar):  # a function output leaves as NCHW
            var = self.builder_.emit_output(relax.op.permute_dims(var, TO_NCHW))
        self.set_var_remap(binding.var, var)

    # -- bindings ------------------------------------------------------------------------

    def visit_var_binding_(self, binding):
        value = binding.value
        if is_call_to(value, "relax.mean") and self._is_nhwc(value.args[0]) and not bool(value.attrs.keepdims):
            mean = self._spatial_mean_flat(value)
            if mean is not None:  # [N, C]: the same in either layout
                return self._rebind(binding, with_span(mean, value.span))
        converted = self._convert(value) if isinstance(value, relax.Call) else None
        if converted is not None:
            return self._emit_nhwc(binding, with_span(converted, value.span))
        if self._rearranges_nhwc(value):  # DepthToSpace, SpaceToDepth: back to NHWC after the model's moves
            moved = self.builder_.emit(relax.Call(value.op, [self._arg(a) for a in value.args], value.attrs,
                                                  value.ty_args, span=value.span))
            return self._emit_nhwc(binding, relax.op.permute_dims(moved, TO_NHWC))
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            new_call = relax.Call(value.op, [self._arg(a) for a in value.args], value.attrs, value.ty_args, span=value.span)
            self._rebind(binding, new_call)
            return self._note_model_transpose(binding, value)
        return self._rebind(binding, self._nchw_everywhere(value))

    def _rearranges_nhwc(self, value) -> bool:
        """A reshape to 4-D at the end of a chain of reshapes and transposes of an NHWC tensor: the
        model moving elements of an NCHW image into another image (ONNX DepthToSpace and SpaceToDepth
        are reshape -> transpose -> reshape). Its result is taken back to NHWC so the layout-aware ops
        after it stay NHWC; fold_transposes then merges the chain, the view and the permute into one
        transpose between reshapes."""
        if not is_call_to(value, "relax.reshape") or len(_shape(value)) != 4:
            return False
        source = value.args[0]
        while any(is_call_to(self._bound(source), op) for op in ("relax.reshape", "relax.permute_dims")):
            source = self._bound(source).args[0]
        return source is not value.args[0] and self._is_nhwc(source)

    def _nchw_everywhere(self, value):
        """Tuples, aliases, calls to functions: give them NCHW views of any NHWC var."""
        if isinstance(value, relax.Var):
            return self._arg(value)
        if isinstance(value, relax.Tuple):
            return relax.Tuple([self._nchw_everywhere(field) for field in value.fields])
        if isinstance(value, relax.Call):
            return relax.Call(value.op, [self._nchw_everywhere(a) for a in value.args], value.attrs, value.ty_args, span=value.span)
        return self.visit_expr(value)

    def _rebind(self, binding, new_value):
        new_value = self.builder_.normalize(new_value)
        if isinstance(binding.var, relax.DataflowVar):
            var = self.builder_.emit(new_value)
        else:
            var = self.builder_.emit_output(new_value)
        self.set_var_remap(binding.var, var)

    # -- the layout-aware ops -------------------------------------------------------------

    def _convert(self, call):
        if is_call_to(call, "relax.nn.conv2d"):
            return self._conv(call)
        if any(is_call_to(call, op) for op in _POOLS):
            return self._pool(call)
        if any(is_call_to(call, op) for op in _UNARY) and self._is_nhwc(call.args[0]):
            return relax.Call(call.op, [self._nhwc_arg(call.args[0])] + list(call.args[1:]), call.attrs, call.ty_args)
        if any(is_call_to(call, op) for op in _BINARY):
            return self._binary(call)
        if is_call_to(call, "relax.mean") and self._is_nhwc(call.args[0]):
            return self._mean(call) if bool(call.attrs.keepdims) else None
        if is_call_to(call, "relax.concat"):
            return self._concat(call)
        if is_call_to(call, "relax.nn.pad") and self._is_nhwc(call.args[0]):
            return self._pad(call)
        if is_call_to(call, "relax.strided_slice") and self._is_nhwc(call.args[0]):
            return self._strided_slice(call)
        if is_call_to(call, "relax.image.resize2d") and self._nhwc_available(call.args[0]):
            return self._resize2d(call)
        if is_call_to(call, "relax.nn.prelu") and self._is_nhwc(call.args[0]):
            return self._prelu(call)
        if is_call_to(call, "relax.nn.conv2d_transpose") and conv_transpose.supported(call, self._bound(call.args[1])):
            if not is_const(call.args[1]):
                self.replaced_dequantize = True
            x = self._nhwc_arg(call.args[0])
            source = self.builder_.lookup_binding(x) if isinstance(x, relax.Var) else None
            dequantized = source if _per_tensor_qdq(source) and is_call_to(source, "relax.dequantize") else None
            return conv_transpose.nhwc_conv_transpose(self.builder_.emit, x, call, self._bound(call.args[1]),
                                                      dequantized)
        if _per_tensor_qdq(call) and self._is_nhwc(call.args[0]):
            make = relax.op.quantize if call.op.name == "relax.quantize" else relax.op.dequantize
            return make(self._nhwc_arg(call.args[0]), call.args[1], call.args[2], axis=-1,
                        out_dtype=call.attrs.out_dtype)
        return None

    def _nhwc_weight(self, weight):
        """The OHWI form of a conv weight: a constant, or dequantize(const) per channel along O or per tensor."""
        if is_const(weight):
            return _permute_const(weight, TO_NHWC)
        value = self._bound(weight)
        if not _const_dequantize(value) or len(value.args[0].ty.shape) != 4:
            return None
        per_tensor = value.args[1].value.numpy().size == 1
        if not per_tensor and int(value.attrs.axis) not in (0, -4):
            return None
        self.replaced_dequantize = True
        axis = int(value.attrs.axis) if per_tensor else 0
        dequantized = relax.op.dequantize(_permute_const(value.args[0], TO_NHWC), value.args[1], value.args[2],
                                          axis=axis, out_dtype=value.attrs.out_dtype)
        return self.builder_.emit(with_span(dequantized, value.span))

    def _nhwc_channel_dequantize(self, expr, channels):
        """A per-channel bias dequantize(const) as (1,1,1,C) with axis -1: from dequantize of a
        (1,C,1,1) const (axis 1), or reshape(dequantize of a (C,) const (axis 0), (1,C,1,1)); else None."""
        value = self._bound(expr)
        shape, channel_axes = (1, channels, 1, 1), (1, -3)
        if is_call_to(value, "relax.reshape") and _shape(value) == (1, channels, 1, 1):
            value, shape, channel_axes = self._bound(value.args[0]), (channels,), (0, -1)
        if not _const_dequantize(value) or value.args[0].value.numpy().shape != shape:
            return None
        per_tensor = value.args[1].value.numpy().size == 1
        if not per_tensor and int(value.attrs.axis) not in channel_axes:
            return None
        data = value.args[0].value.numpy()
        self.replaced_dequantize = True
        dequantized = relax.op.dequantize(relax.const(data.reshape(1, 1, 1, channels)), value.args[1], value.args[2],
                                          axis=-1, out_dtype=value.attrs.out_dtype)
        return self.builder_.emit(with_span(dequantized, value.span))

    def _conv(self, call):
        attrs = call.attrs
        if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NCHW", "OIHW", "NCHW"):
            return None
        weight = self._nhwc_weight(call.args[1])
        if weight is None:
            return None
        return relax.op.nn.conv2d(
            self._nhwc_arg(call.args[0]), weight,
            strides=attrs.strides, padding=attrs.padding, dilation=attrs.dilation, groups=attrs.groups,
            data_layout="NHWC", kernel_layout="OHWI", out_layout="NHWC", out_dtype=attrs.out_dtype)

    def _pool(self, call):
        attrs = call.attrs
        if attrs.layout != "NCHW" or not self._nhwc_available(call.args[0]):
            return None
        make = relax.op.nn.max_pool2d if call.op.name == "relax.nn.max_pool2d" else relax.op.nn.avg_pool2d
        extra = {} if call.op.name == "relax.nn.max_pool2d" else {"count_include_pad": attrs.count_include_pad}
        return make(self._nhwc_arg(call.args[0]), pool_size=attrs.pool_size, strides=attrs.strides,
                    padding=attrs.padding, dilation=attrs.dilation, ceil_mode=attrs.ceil_mode,
                    layout="NHWC", out_layout="NHWC", **extra)

    def _binary(self, call):
        lhs, rhs = call.args
        if self._is_nhwc(lhs) and self._is_nhwc(rhs):
            return relax.Call(call.op, [self._nhwc_arg(lhs), self._nhwc_arg(rhs)], call.attrs)
        for tensor, other, tensor_first in ((lhs, rhs, True), (rhs, lhs, False)):
            if self._is_nhwc(tensor) and is_const(other):
                channels = _shape(self.visit_expr(tensor))[3]
                const = _channel_const_nhwc(other, channels)
                if const is not None:
                    args = [self._nhwc_arg(tensor), const] if tensor_first else [const, self._nhwc_arg(tensor)]
                    return relax.Call(call.op, args, call.attrs)
            if self._is_nhwc(tensor) and call.op.name == "relax.add":
                bias = self._nhwc_channel_dequantize(other, _shape(self.visit_expr(tensor))[3])
                if bias is not None:
                    args = [self._nhwc_arg(tensor), bias] if tensor_first else [bias, self._nhwc_arg(tensor)]
                    return relax.Call(call.op, args, call.attrs)
        return None

    def _mean(self, call):
        axes = sorted(int(a) for a in call.attrs.axis) if call.attrs.axis is not None else []
        if axes != [2, 3] or not bool(call.attrs.keepdims):
            return None
        return relax.op.mean(self._nhwc_arg(call.args[0]), axis=[1, 2], keepdims=True)

    def _spatial_mean_flat(self, call):
        """mean over H and W without keepdims: [N, C] whatever the input layout."""
        axes = sorted(int(a) % 4 for a in call.attrs.axis) if call.attrs.axis is not None else []
        if axes != [2, 3]:
            return None
        return relax.op.mean(self._nhwc_arg(call.args[0]), axis=[1, 2], keepdims=False)

    def _concat(self, call):
        fields = call.args[0].fields if isinstance(call.args[0], relax.Tuple) else None
        if fields is None or int(call.attrs.axis) not in (1, -3) or not all(self._is_nhwc(f) for f in fields):
            return None
        return relax.op.concat([self._nhwc_arg(f) for f in fields], axis=3)

    def _prelu(self, call):
        """The slope runs along channels (axis 1 -> 3); one slope for all runs along any axis."""
        slope = self.visit_expr(call.args[1])
        if int(call.attrs.axis) not in (1, -3) and math.prod(_shape(slope)) != 1:
            return None
        return relax.op.nn.prelu(self._nhwc_arg(call.args[0]), slope, axis=3)

    def _strided_slice(self, call):
        """The sliced axes renumbered NCHW -> NHWC (begin, end and strides stay with their axis)."""
        axes, begin, end, *strides = ([int(v.value) for v in arg.fields] for arg in call.args[1:])
        nhwc_axis = {axis: new for new, axis in enumerate(TO_NHWC)}
        axes = [nhwc_axis[axis % 4] for axis in axes]
        return relax.op.strided_slice(self._nhwc_arg(call.args[0]), axes, begin, end, strides[0] if strides else None,
                                      assume_inbound=bool(call.attrs.assume_inbound))

    def _resize2d(self, call):
        attrs = call.attrs
        if attrs.layout != "NCHW" or not isinstance(call.args[1], relax.ShapeExpr):
            return None
        return relax.op.image.resize2d(
            self._nhwc_arg(call.args[0]), call.args[1], roi=[float(v) for v in attrs.roi], layout="NHWC", method=attrs.method,
            coordinate_transformation_mode=attrs.coordinate_transformation_mode,
            rounding_method=attrs.rounding_method, cubic_alpha=attrs.cubic_alpha, cubic_exclude=attrs.cubic_exclude,
            extrapolation_value=attrs.extrapolation_value, out_dtype=attrs.out_dtype)

    def _pad(self, call):
        """R.nn.pad's pad_width is ((before, after) per axis) flattened: reorder the NCHW pairs to NHWC."""
        width = [int(w) for w in call.attrs.pad_width]
        if len(width) != 8:
            return None
        pairs = [width[2 * axis:2 * axis + 2] for axis in TO_NHWC]
        return relax.op.nn.pad(self._nhwc_arg(call.args[0]), [w for pair in pairs for w in pair],
                               str(call.attrs.pad_mode), float(call.attrs.pad_value))
