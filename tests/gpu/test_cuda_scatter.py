"""The scatter family on kiln's CUDA backend against eager on the same GPU: torch.gather,
Tensor.scatter / scatter_add / scatter_reduce (every reduction, with and without self), index_put
(``x[idx] = v``, ``index_put_(..., accumulate=True)``, None entries, broadcasting), masked_scatter
with a broadcast mask, and embedding's backward (aten.embedding_dense_backward, which torch.export
lowers to an accumulating index_put).

Each case is a tiny module compiled with ``require_full_compilation=True`` and
``pass_through_build_failures=True``, FP32 with TF32 off at rtol = atol = 1e-4 and FP16 at 1e-2,
as tests/gpu/test_cuda_ops.py. Plain scatters get distinct indices (with repeats, the element
written is unspecified on PyTorch's CUDA as on kiln's); the accumulating forms get repeats on
purpose (both sides add with atomics, in an order that varies).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

FP32_TOL = 1e-4
FP16_TOL = 1e-2


class Fn(nn.Module):
    """A module from a function of its inputs."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def randn(*shape):
    return torch.randn(shape)


def distinct(size: int, count: int, lines: int) -> torch.Tensor:
    """[count, lines] indices into a dim of `size`, distinct within each column."""
    return torch.argsort(torch.rand(size, lines), dim=0)[:count]


def repeats(size: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, size, shape)


def _put(x, i, v):
    y = x.clone()
    y[i] = v
    return y


def _put_columns(x, i, v):
    y = x.clone()
    y[:, i] = v
    return y


def _put_separated(x, i, j, v):
    y = x.clone()
    y[i, :, j] = v
    return y


def _scatter_reduce(reduce: str, include_self: bool):
    def case():
        # Values near 1 keep fp16 products in range; a few writers per element, repeats included.
        x = torch.rand(6, 5) + 0.5
        src = torch.rand(4, 5) + 0.5
        index = repeats(6, 4, 5)
        return Fn(lambda x, i, s: x.scatter_reduce(0, i, s, reduce, include_self=include_self)), (
            x, index, src)
    return case


CASES = {
    # gather
    "gather": lambda: (Fn(lambda x, i: torch.gather(x, 1, i)), (randn(4, 7), repeats(7, 4, 5))),
    "gather_negative_dim": lambda: (Fn(lambda x, i: torch.gather(x, -2, i)),
                                    (randn(5, 3, 4), repeats(3, 4, 6, 2))),
    "gather_transposed": lambda: (Fn(lambda x, i: torch.gather(x.t(), 0, i)),
                                  (randn(6, 8), repeats(6, 5, 6))),
    "gather_nan_inf": lambda: (
        Fn(lambda x, i: torch.gather(x, 1, i)),
        (torch.tensor([[float("nan"), 1.0, float("inf")], [-float("inf"), 2.0, 3.0]]),
         torch.tensor([[0, 2, 2], [0, 0, 1]]))),
    "gather_empty_index": lambda: (Fn(lambda x, i: torch.gather(x, 1, i) + 1),
                                   (randn(4, 7), repeats(7, 4, 0))),
    # scatter
    "scatter_src": lambda: (Fn(lambda x, i, s: x.scatter(0, i, s)),
                            (randn(6, 5), distinct(6, 3, 5), randn(3, 5))),
    "scatter_src_negative_dim": lambda: (Fn(lambda x, i, s: x.scatter(-1, i.t(), s)),
                                         (randn(5, 6), distinct(6, 4, 5), randn(5, 4))),
    "scatter_value": lambda: (Fn(lambda x, i: x.scatter(1, i, 2.5)),
                              (randn(4, 7), repeats(7, 4, 3))),
    "scatter_add": lambda: (Fn(lambda x, i, s: x.scatter_add(0, i, s)),
                            (randn(6, 5), repeats(6, 40, 5), randn(40, 5))),
    "scatter_add_transposed": lambda: (Fn(lambda x, i, s: (x.t() * 1).scatter_add(1, i, s.t())),
                                       (randn(9, 4), repeats(9, 4, 20), randn(20, 4))),
    "scatter_add_empty_index": lambda: (Fn(lambda x, i, s: x.scatter_add(0, i, s)),
                                        (randn(6, 5), repeats(6, 0, 5), randn(0, 5))),
    **{f"scatter_reduce_{r}{'' if s else '_no_self'}": _scatter_reduce(r, s)
       for r in ("sum", "prod", "mean", "amax", "amin") for s in (True, False)},
    # index_put
    "setitem_rows": lambda: (Fn(_put), (randn(6, 5), distinct(6, 3, 1)[:, 0], randn(3, 5))),
    "setitem_broadcast_value": lambda: (Fn(_put), (randn(6, 5), distinct(6, 3, 1)[:, 0],
                                                   randn(5))),
    "setitem_columns": lambda: (Fn(_put_columns), (randn(4, 7, 3), distinct(7, 2, 1)[:, 0],
                                                   randn(4, 2, 3))),
    "setitem_separated": lambda: (Fn(_put_separated),
                                  (randn(5, 4, 6), distinct(5, 3, 1)[:, 0],
                                   distinct(6, 3, 1)[:, 0], randn(3, 4))),
    "index_put_accumulate": lambda: (
        Fn(lambda x, i, v: x.index_put((i,), v, accumulate=True)),
        (randn(6, 5), repeats(6, 18), randn(18, 5))),
    "index_put_accumulate_negative": lambda: (
        Fn(lambda x, i, v: x.index_put((i,), v, accumulate=True)),
        (randn(6, 5), torch.randint(-6, 6, (18,)), randn(5))),
    # index_put with a bool mask whose values fit every selected row (a where, no data-dependent
    # shape): a row mask with a row of values, a 2-D mask with one value, accumulating
    "index_put_row_mask": lambda: (Fn(lambda x, m, v: x.index_put((m,), v)),
                                   (randn(6, 5), torch.tensor([1, 0, 1, 1, 0, 0]).bool(),
                                    randn(5))),
    "index_put_computed_mask": lambda: (Fn(lambda x, v: x.index_put((x > 0,), v)),
                                        (randn(30, 70), randn(1))),
    "index_put_mask_accumulate": lambda: (
        Fn(lambda x, m, v: x.index_put((m,), v, accumulate=True)),
        (randn(4, 3, 8), torch.rand(4, 3) > 0.5, randn(1, 8))),
    # masked_scatter: a mask broadcast along rows, > 1024 elements
    "masked_scatter": lambda: (Fn(lambda x, m, s: x.masked_scatter(m, s)),
                               (randn(40, 64), torch.rand(64) > 0.5, randn(40 * 64))),
    "masked_scatter_computed_mask": lambda: (Fn(lambda x, s: x.masked_scatter(x > 0, s)),
                                             (randn(3, 700), randn(2200))),
    # embedding's backward: lowered by torch.export to an accumulating index_put
    "embedding_dense_backward": lambda: (
        Fn(lambda g, i: torch.ops.aten.embedding_dense_backward(g, i, 10, 2, False)),
        (randn(3, 4, 8), repeats(10, 3, 4))),
    "embedding_dense_backward_scaled": lambda: (
        Fn(lambda g, i: torch.ops.aten.embedding_dense_backward(g, i, 10, -1, True)),
        (randn(3, 4, 8), repeats(10, 3, 4))),
}


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float) -> None:
    import kiln

    module, inputs = CASES[name]()
    module = module.eval().requires_grad_(False).to(cuda.device, dtype)
    inputs = cuda.to_device(inputs, dtype)
    expected = cuda.eager(module, inputs, allow_tf32=False)
    try:
        compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                                min_block_size=1, require_full_compilation=True,
                                pass_through_build_failures=True)
    except kiln.UnsupportedError as error:
        pytest.fail(f"{name} ({dtype}): the CUDA backend does not take it: {error}")
    parts = cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
    assert parts["torch_segments"] == [], (
        f"{name} ({dtype}): PyTorch segments {parts['torch_segments']} run "
        f"{sorted(set(parts['torch_ops']))}")
    with torch.no_grad():
        actual = compiled(*inputs)
    actual = actual[0] if isinstance(actual, (tuple, list)) and len(actual) == 1 else actual
    assert isinstance(actual, torch.Tensor), f"{name}: expected a tensor, found {type(actual)}"
    assert actual.device == expected.device, f"{name}: output on {actual.device}"
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, equal_nan=True,
                               msg=lambda m: f"{name} ({dtype}): {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_scatter_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_scatter_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)
