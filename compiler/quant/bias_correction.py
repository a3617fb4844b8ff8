"""Empirical bias correction (Nagel et al. 2019, section 4.2), applied with --equalize.

Quantising a layer's weights W to W_q shifts its output's expected value by
    E[(W_q - W) x] = (W_q - W) E[x],
which per-tensor activation scales then carry into every later layer. The paper estimates E[x] from
the preceding BatchNorm; we have calibration samples, so E[x] is measured: the calibration pass keeps
each tensor's per-channel mean (ChannelMeans, channels last as every quantised tensor is NHWC or
[N, K]) and the float bias becomes b - (W_q - W) E[x] before it is quantised. The border positions of
a padded convolution read zeros, not E[x]: the correction is the interior's (as in the paper).
"""

import numpy as np


class ChannelMeans:
    """Running per-channel (last axis) mean of the arrays it is given."""

    def __init__(self):
        self.total, self.rows = None, 0

    def update(self, array) -> None:
        array = np.asarray(array)
        if array.ndim < 2 or not np.issubdtype(array.dtype, np.floating):
            return
        rows = array.reshape(-1, array.shape[-1]).astype(np.float64)
        rows = np.where(np.isfinite(rows), rows, 0.0)
        self.total = rows.sum(axis=0) if self.total is None else self.total + rows.sum(axis=0)
        self.rows += rows.shape[0]

    def mean(self) -> np.ndarray | None:
        return None if self.total is None else self.total / self.rows


def conv_output_shift(error: np.ndarray, kernel_layout: str, groups: int, input_mean: np.ndarray) -> np.ndarray:
    """(W_q - W) E[x] per output channel of a conv2d whose weight error is `error` in `kernel_layout`."""
    oihw = np.transpose(error, [kernel_layout.index(axis) for axis in "OIHW"]).astype(np.float64)
    out_channels, in_per_group = oihw.shape[:2]
    group_of = np.arange(out_channels) // (out_channels // groups)
    means = input_mean[group_of[:, None] * in_per_group + np.arange(in_per_group)[None, :]]  # [O, I]
    return np.einsum("oihw,oi->o", oihw, means)


def dense_output_shift(error: np.ndarray, input_mean: np.ndarray) -> np.ndarray:
    """(W_q - W) E[x] per output of x @ W with W [K, N]."""
    return input_mean @ error.astype(np.float64)
