"""Bias correction's arithmetic against direct evaluation: the shift (W_q - W) E[x] of a convolution
equals the convolution of the weight error over a constant input holding the channel means (any
interior output position), for regular, grouped and depthwise convolutions in both kernel layouts;
the running channel means equal NumPy's mean over all the arrays seen."""

import numpy as np
import pytest

from compiler.quant.bias_correction import ChannelMeans, conv_output_shift, dense_output_shift

RNG = np.random.default_rng(0)


def conv_at_interior(error_oihw, groups, means):
    """One interior output of conv2d(constant image of `means`, error) by explicit loops."""
    out_channels, in_per_group, kh, kw = error_oihw.shape
    per_group = out_channels // groups
    image = np.broadcast_to(means[:, None, None], (means.size, kh, kw))  # the receptive field
    result = np.zeros(out_channels)
    for o in range(out_channels):
        first = (o // per_group) * in_per_group
        result[o] = sum(error_oihw[o, i].ravel() @ image[first + i].ravel() for i in range(in_per_group))
    return result


@pytest.mark.parametrize("layout", ["OIHW", "OHWI"])
@pytest.mark.parametrize("in_channels, out_channels, groups", [(3, 5, 1), (4, 6, 2), (6, 6, 6), (4, 8, 4)],
                         ids=["regular", "grouped", "depthwise", "depthwise_x2"])
def test_conv_shift_is_the_error_convolved_with_the_means(layout, in_channels, out_channels, groups):
    error = RNG.normal(0, 0.01, (out_channels, in_channels // groups, 3, 3))
    means = RNG.uniform(-1, 2, in_channels)
    stored = np.transpose(error, ["OIHW".index(axis) for axis in layout])
    np.testing.assert_allclose(conv_output_shift(stored, layout, groups, means), conv_at_interior(error, groups, means),
                               rtol=1e-12, atol=1e-15)


def test_dense_shift():
    error, means = RNG.normal(0, 0.01, (7, 4)), RNG.uniform(-1, 1, 7)
    expected = [sum(error[k, n] * means[k] for k in range(7)) for n in range(4)]
    np.testing.assert_allclose(dense_output_shift(error, means), expected, rtol=1e-12)


def test_channel_means_over_several_arrays():
    arrays = [RNG.normal(size=(1, 5, 5, 3)).astype(np.float32), RNG.normal(size=(2, 4, 4, 3)).astype(np.float32)]
    tracker = ChannelMeans()
    for array in arrays:
        tracker.update(array)
    expected = np.concatenate([a.reshape(-1, 3) for a in arrays]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(tracker.mean(), expected, rtol=1e-12)
    assert ChannelMeans().mean() is None
