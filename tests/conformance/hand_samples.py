"""Samples for Core ATen overloads no OpInfo reaches, written by hand.

torch's OpInfos call some overloads only through paths the scan cannot record (``col2im`` is
what ``nn.Fold`` calls inside its C++ kernel), so without these they would have no samples and
no verdict. Each entry gives, for a dtype, calls in the shapes eager's own tests use; the scan's
edge-case variants (NaN and inf, non-contiguous) are derived from them like from any other.
"""
from __future__ import annotations

from typing import Callable

import torch

from conformance.samples import DTYPES, DynamicShapes, Sample, eager_features


def _values(shape: tuple, dtype: torch.dtype, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) * 18 - 9).to(dtype)


def _col2im(dtype_name: str) -> list[Sample]:
    """col2im(input [N, C*kh*kw, L], output_size, kernel_size, dilation, padding, stride)."""
    dtype = DTYPES[dtype_name]
    if not dtype.is_floating_point:
        return []
    cases = [
        # (input shape, output_size, kernel_size, dilation, padding, stride)
        ((1, 12, 12), [4, 5], [2, 2], [1, 1], [0, 0], [1, 1]),
        ((2, 6, 9), [5, 5], [1, 2], [2, 1], [1, 0], [2, 2]),
        ((8, 6), [4, 4], [2, 2], [1, 1], [1, 1], [2, 2]),  # unbatched
        ((0, 4, 4), [3, 3], [2, 2], [1, 1], [0, 0], [1, 1]),  # empty batch
    ]
    return [Sample("aten.col2im.default", dtype_name,
                   (_values(shape, dtype, seed), *lists), {}, f"hand col2im#{seed}")
            for seed, (shape, *lists) in enumerate(cases)]


# The symbolic-size ops read sizes, strides and layout, which are symbolic only where the
# program is exported with dynamic dims: each case is (shape, dynamic dims {dim: (min, max)},
# the other shape the compiled program also runs at, extra arguments). torch.export and kiln's
# lowering rewrite most of these ops (sym_numel into sym_size products, sym_stride of a
# contiguous tensor into a sym_size, sym_storage_offset and sym_is_contiguous of an input into
# constants), so a sample checks that the program kiln runs computes eager's value at every size.
_SYMBOLIC_CASES: dict[str, list[tuple]] = {
    "aten.sym_size.int": [
        ((3, 5), {0: (2, 16), 1: (2, 16)}, (7, 2), (0,)),
        ((3, 5), {0: (2, 16), 1: (2, 16)}, (7, 2), (-1,)),
        ((2, 3, 4), {1: (2, 8)}, (2, 6, 4), (1,)),
    ],
    "aten.sym_numel.default": [
        ((3, 5), {0: (2, 16), 1: (2, 16)}, (7, 2), ()),
        ((2, 3, 4), {0: (2, 4), 2: (2, 9)}, (4, 3, 2), ()),
    ],
    "aten.sym_stride.int": [
        ((3, 5), {0: (2, 16), 1: (2, 16)}, (7, 2), (0,)),
        ((2, 3, 4), {1: (2, 8), 2: (2, 9)}, (2, 5, 7), (0,)),
        ((2, 3, 4), {1: (2, 8), 2: (2, 9)}, (2, 5, 7), (-1,)),
    ],
    "aten.sym_storage_offset.default": [
        ((3, 5), {0: (2, 16), 1: (2, 16)}, (7, 2), ()),
    ],
    "aten.sym_is_contiguous.default": [
        ((3, 5), {0: (2, 16), 1: (2, 16)}, (7, 2), ()),
        ((2, 3, 4, 5), {0: (2, 4), 2: (2, 8)}, (3, 3, 6, 5), (torch.channels_last,)),
    ],
}


def _symbolic(op: str) -> Callable[[str], list[Sample]]:
    def make(dtype_name: str) -> list[Sample]:
        dtype = DTYPES[dtype_name]
        samples = []
        for seed, (shape, dims, other, extra) in enumerate(_SYMBOLIC_CASES[op]):
            x = _values(shape, dtype, seed)
            dynamic = DynamicShapes({0: dims}, [((_values(other, dtype, seed + 100), *extra), {})])
            samples.append(Sample(op, dtype_name, (x, *extra), {}, f"hand {op.split('.')[1]}#{seed}",
                                  dynamic=dynamic))
        return samples

    return make


def _randperm(dtype_name: str) -> list[Sample]:
    """randperm(n, dtype=...): eager's OpInfo calls it only through the ``.generator`` overload.
    Its values are random (compared by property: a permutation of 0..n-1)."""
    if dtype_name == "bool":
        return []
    dtype = DTYPES[dtype_name]
    return [Sample("aten.randperm.default", dtype_name, (n,),
                   {"dtype": dtype, "device": torch.device("cpu")}, f"hand randperm#{i}")
            for i, n in enumerate((0, 1, 37, 200))]


HAND_SAMPLES: dict[str, Callable[[str], list[Sample]]] = {
    "aten.col2im.default": _col2im,
    "aten.randperm.default": _randperm,
    **{op: _symbolic(op) for op in _SYMBOLIC_CASES},
}


def hand_samples(op: str, dtype_name: str) -> list[Sample]:
    """The hand-written samples of ``op`` at a dtype that eager runs, with their features."""
    make = HAND_SAMPLES.get(op)
    samples = []
    for sample in make(dtype_name) if make else []:
        features = eager_features(sample)
        if features is not None:
            sample.features = features
            samples.append(sample)
    return samples
