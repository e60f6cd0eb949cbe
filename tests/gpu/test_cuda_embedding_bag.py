"""The embedding_bag family on kiln's CUDA backend against eager on the same GPU:
aten._embedding_bag (sum with and without per-sample weights, mean, max; padding_idx; empty bags;
include_last_offset; int32 and int64 indices), all four outputs (output, offset2bag, bag_size,
max_indices), which eager's CUDA kernel fills differently from its CPU one, in FP32 and FP16.

The module calls aten._embedding_bag itself, so the program records eager CUDA's output shapes.
Each case must compile whole (``require_full_compilation=True``) and run on an engine. Floating
outputs compare at rtol = atol = 1e-4 (FP32) and 1e-2 (FP16); index outputs must be equal, except
bag_size's last element with include_last_offset, which eager leaves unwritten.

kiln's shape inference gives eager CUDA's shapes for these nodes (ir::embedding_bag_cuda_form).
"""
from __future__ import annotations

import pytest
import torch

FP32_TOL = 1e-4
FP16_TOL = 1e-2


class Bag(torch.nn.Module):
    def __init__(self, mode: int, last: bool, padding_idx: int, weighted: bool):
        super().__init__()
        self.mode, self.last, self.padding_idx, self.weighted = mode, last, padding_idx, weighted

    def forward(self, weight, indices, offsets, per_sample_weights):
        psw = per_sample_weights if self.weighted else None
        return torch.ops.aten._embedding_bag.default(weight, indices, offsets, False, self.mode,
                                                     False, psw, self.last, self.padding_idx)


INDICES = [1, 2, 4, 5, 4, 3, 2, 9, 0, 2]
# name -> (mode, include_last_offset, padding_idx, per-sample weights, indices, offsets)
CASES = {
    "conformance_sum_weighted": (0, False, -1, True, [1, 2, 4, 5, 4], [0, 2]),
    "sum": (0, False, -1, False, INDICES, [0, 3, 7]),
    "sum_empty_bags_padding": (0, False, 2, False, INDICES, [0, 3, 3, 8]),
    "mean": (1, False, -1, False, INDICES, [0, 3, 7]),
    "mean_padding": (1, False, 4, False, INDICES, [0, 3, 3, 8]),
    "max": (2, False, -1, False, INDICES, [0, 3, 7]),
    "max_empty_bags_padding": (2, False, 2, False, INDICES, [0, 3, 3, 8]),
    "sum_include_last_offset": (0, True, -1, True, INDICES, [0, 4, 7]),
    "max_include_last_offset": (2, True, -1, False, INDICES, [0, 4, 10]),
}


def _run(cuda, name, dtype, index_dtype, tol):
    mode, last, padding_idx, weighted, indices, offsets = CASES[name]
    module = Bag(mode, last, padding_idx, weighted).eval()
    weight = torch.randn(10, 5)
    weight[2, 3] = float("nan")
    args = cuda.to_device((weight, torch.tensor(indices, dtype=index_dtype),
                           torch.tensor(offsets, dtype=index_dtype),
                           torch.rand(len(indices))), dtype)
    expected = cuda.eager(module, args)
    compiled = cuda.compile(module, args, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, require_full_compilation=True,
                            pass_through_build_failures=True)
    cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
    with torch.no_grad():
        actual = compiled(*args)
    assert len(actual) == 4
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape and a.dtype == e.dtype, f"{name} output {i}"
        if i == 2 and last:
            a, e = a[:-1], e[:-1]  # eager leaves include_last_offset's extra element unwritten
        if e.is_floating_point():
            torch.testing.assert_close(a, e, rtol=tol, atol=tol, equal_nan=True)
        else:
            assert torch.equal(a, e), f"{name} output {i}: {a.tolist()} vs eager {e.tolist()}"


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("name", list(CASES))
def test_embedding_bag_fp32(cuda, name, index_dtype):
    _run(cuda, name, torch.float32, index_dtype, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_embedding_bag_fp16(cuda, name):
    _run(cuda, name, torch.float16, torch.int64, FP16_TOL)
