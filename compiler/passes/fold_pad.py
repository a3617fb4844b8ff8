"""Fold a zero Pad of the spatial axes into the Conv2D that reads it.

conv2d(pad(x, H: (t, b), W: (l, r), value 0.0), padding (T, L, B, R))
becomes
conv2d(x, padding (T + t, L + l, B + b, R + r))

Models exported from Keras (ZeroPadding2D before a stride-2 convolution, as in Keras'
MobileNets) carry such Pads; as an operator of its own the pad copies the whole activation
(on coral-npu, kernels/ref's scalar copy: about 5 instructions per byte), while the
convolution pads for free. Only constant-mode pads of 0.0 on H and W (NCHW or NHWC) fold:
the convolution's own padding is zeros, which int8 quantisation turns into the input zero
point exactly as it does the pad's 0.0. The pad stays when something else reads it too.
"""

import tvm
from tvm import relax

from compiler.frontend.provenance import with_span
from compiler.passes.util import bound_values, is_call_to, map_functions

_SPATIAL_AXES = {"NCHW": (2, 3), "NHWC": (1, 2)}


def fold_pad(mod: tvm.IRModule) -> tvm.IRModule:
    return map_functions(mod, lambda func: relax.analysis.remove_all_unused(_PadFolder(func).visit_expr(func)))


@relax.expr_functor.mutator
class _PadFolder(relax.PyExprMutator):
    def __init__(self, func):
        super().__init__()
        self.bound = bound_values(func)

    def visit_var_binding_(self, binding):
        conv = binding.value
        if not is_call_to(conv, "relax.nn.conv2d"):
            return super().visit_var_binding_(binding)
        pad = self.bound.get(conv.args[0])
        extra = _spatial_zero_pad(pad, str(conv.attrs.data_layout)) if pad is not None else None
        if extra is None:
            return super().visit_var_binding_(binding)
        (top, bottom), (left, right) = extra
        t, l, b, r = (int(p) for p in conv.attrs.padding)
        a = conv.attrs
        folded = relax.op.nn.conv2d(self.visit_expr(pad.args[0]), self.visit_expr(conv.args[1]), strides=a.strides,
                                    padding=(t + top, l + left, b + bottom, r + right), dilation=a.dilation,
                                    groups=int(a.groups), data_layout=a.data_layout, kernel_layout=a.kernel_layout,
                                    out_layout=a.out_layout, out_dtype=a.out_dtype)
        value = self.builder_.normalize(with_span(folded, conv.span))
        self.builder_.emit_normalized(relax.VarBinding(binding.var, value))


def _spatial_zero_pad(pad, layout: str):
    """((top, bottom), (left, right)) of a constant 0.0 pad of only the spatial axes of `layout`, else None."""
    if not is_call_to(pad, "relax.nn.pad") or layout not in _SPATIAL_AXES:
        return None
    attrs = pad.attrs
    if str(attrs.pad_mode) != "constant" or float(attrs.pad_value) != 0.0:
        return None
    width = [int(p) for p in attrs.pad_width]
    pairs = [tuple(width[2 * axis:2 * axis + 2]) for axis in range(len(width) // 2)]
    if len(pairs) != 4 or min(width) < 0:
        return None
    h, w = _SPATIAL_AXES[layout]
    if any(pairs[axis] != (0, 0) for axis in range(4) if axis not in (h, w)):
        return None
    return pairs[h], pairs[w]
