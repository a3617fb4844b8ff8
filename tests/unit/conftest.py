"""Fixtures shared by the quantisation unit tests."""

import pytest

from qdq_testing import calibrated_tiny_cnn


@pytest.fixture(scope="module")
def tiny():
    """tiny_cnn calibrated: (model, partitioned module, ranges, plan)."""
    return calibrated_tiny_cnn()
