"""Sparse TFLite constants (the input of DENSIFY) as dense arrays.

TFLite stores a pruned weight as its non-zero values plus SparsityParameters: the dimensions in
a traversal order, each level DENSE (all `dense_size` positions) or SPARSE_CSR (segments and
indices, as CSR), and optional block dimensions that split an original dimension (block_map).
This expands the levels breadth-first with NumPy, which visits the values in the same order as
the depth-first walk of TFLite's FormatConverter::SparseToDense, then scatters them into the
dense shape. Hostile metadata (indices or segments out of range, counts that disagree with the
values) is a CompilerError, never an out-of-bounds write.
"""

import numpy as np

from compiler.errors import CompilerError

_DENSE = 0


def densify(values: np.ndarray, shape: tuple, sparsity, where: str) -> np.ndarray:
    rank = len(shape)
    order = [int(v) for v in (sparsity.traversalOrder if sparsity.traversalOrder is not None else [])]
    block_map = [int(v) for v in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    levels = sparsity.dimMetadata or []
    if sorted(order) != list(range(rank + len(block_map))) or len(levels) != len(order):
        raise CompilerError(f"{where}: sparsity traversal order {order} does not cover the {rank} dimensions")
    if any(not 0 <= b < rank for b in block_map):
        raise CompilerError(f"{where}: sparsity block map {block_map} names a dimension it does not have")
    parents = np.zeros(1, np.int64)             # the position each partial index has in its level's arrays
    coordinates = np.zeros((1, 0), np.int64)    # the index at every level walked so far
    for level in levels:
        parents, index, counts = _expand(level, parents, where)
        coordinates = np.concatenate([np.repeat(coordinates, counts, axis=0), index[:, None]], axis=1)
    if coordinates.shape[0] != values.size:
        raise CompilerError(f"{where}: sparsity metadata describes {coordinates.shape[0]} values, the buffer holds {values.size}")
    block_sizes = [int(levels[rank + b].denseSize) for b in range(len(block_map))]
    dense_index = np.zeros((coordinates.shape[0], rank), np.int64)
    for level, dim in enumerate(order[:rank]):
        dense_index[:, dim] = coordinates[:, level]
    for level in range(rank, len(order)):
        block = order[level] - rank
        dim = block_map[block]
        dense_index[:, dim] = dense_index[:, dim] * block_sizes[block] + coordinates[:, level]
    if np.any(dense_index >= np.array(shape)) or np.any(dense_index < 0):
        raise CompilerError(f"{where}: sparsity indices fall outside shape {list(shape)}")
    dense = np.zeros(shape, values.dtype)
    dense[tuple(dense_index.T)] = values.reshape(-1)
    return dense


def _expand(level, parents: np.ndarray, where: str):
    """Children of every partial index at this level: (their positions, their indices, how many
    children each parent has), in order."""
    size = int(level.denseSize)
    if level.format == _DENSE:
        if size <= 0:
            raise CompilerError(f"{where}: a dense sparsity level has size {size}")
        counts = np.full(parents.size, size, np.int64)
        index = np.tile(np.arange(size, dtype=np.int64), parents.size)
        return np.repeat(parents, counts) * size + index, index, counts
    segments, indices = _vector(level.arraySegments), _vector(level.arrayIndices)
    if parents.size and (parents.max() + 1 >= segments.size) or np.any(np.diff(segments) < 0) \
            or segments.size and (segments[0] < 0 or segments[-1] > indices.size):
        raise CompilerError(f"{where}: sparsity segments do not fit their indices")
    starts, counts = segments[parents], segments[parents + 1] - segments[parents]
    children = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    return children, indices[children], counts


def _vector(union) -> np.ndarray:
    values = getattr(union, "values", None)
    return np.asarray(values if values is not None else [], dtype=np.int64)
