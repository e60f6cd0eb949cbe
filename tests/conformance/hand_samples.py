"""Samples for Core ATen overloads no OpInfo reaches, written by hand.

torch's OpInfos call some overloads only through paths the scan cannot record (``col2im`` is
what ``nn.Fold`` calls inside its C++ kernel), so without these they would have no samples and
no verdict. Each entry gives, for a dtype, calls in the shapes eager's own tests use; the scan's
edge-case variants (NaN and inf, non-contiguous) are derived from them like from any other.
"""
from __future__ import annotations

from typing import Callable

import torch

from conformance.samples import DTYPES, Sample, eager_features


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


HAND_SAMPLES: dict[str, Callable[[str], list[Sample]]] = {
    "aten.col2im.default": _col2im,
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
