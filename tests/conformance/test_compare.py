"""The conformance harness's comparisons that go beyond equality within a tolerance."""
from __future__ import annotations

import torch

from conformance.compare import compare_tied_indices
from conformance.samples import Sample


def _topk_sample(x: torch.Tensor, k: int, dim: int) -> Sample:
    return Sample("aten.topk.default", "float32", (x, k, dim), {}, "hand")


def test_indices_of_equal_values_may_come_in_another_order():
    x = torch.tensor([[1.0, 5.0, 5.0, 2.0, float("nan"), float("nan")]])
    sample = _topk_sample(x, 4, -1)
    values, indices = torch.topk(x, 4)
    swapped = indices.clone()
    swapped[0, [0, 1]] = swapped[0, [1, 0]]  # the two NaNs
    swapped[0, [2, 3]] = swapped[0, [3, 2]]  # the two 5s
    assert compare_tied_indices(sample, [values, swapped], [values, indices]).ok


def test_an_index_at_another_value_or_a_repeated_index_fails():
    x = torch.tensor([[1.0, 5.0, 5.0, 2.0]])
    sample = _topk_sample(x, 2, 1)
    values, indices = torch.topk(x, 2)
    wrong = torch.tensor([[1, 3]])
    repeated = torch.tensor([[1, 1]])
    assert not compare_tied_indices(sample, [values, wrong], [values, indices]).ok
    assert not compare_tied_indices(sample, [values, repeated], [values, indices]).ok
    assert not compare_tied_indices(sample, [values + 1, indices], [values, indices]).ok


def test_other_ops_are_not_judged_here():
    x = torch.tensor([[1.0, 5.0, 5.0]])
    sample = Sample("aten.max.dim", "float32", (x, 1), {}, "hand")
    values, indices = torch.max(x, 1)
    assert compare_tied_indices(sample, [values, indices], [values, indices]) is None


def test_size_checks_after_an_engine_are_not_ops_left_to_pytorch():
    """torch.export asserts an unbacked size's range (0 <= u0 <= numel for nonzero) on the
    engine's output size: integer glue, not a tensor op. A tensor op left outside is counted."""
    from conformance.harness import _torch_ops_outside_engines

    class Checks(torch.nn.Module):
        def forward(self, x):
            rows = torch.ops.aten.nonzero.default(x)
            torch._check(rows.shape[0] <= x.numel())
            return rows.relu()

    ep = torch.export.export(Checks(), (torch.rand(3, 4),))
    left = _torch_ops_outside_engines(ep.module())
    assert left == ["aten.nonzero.default", "aten.relu.default"], left
