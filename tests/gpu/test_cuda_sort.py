"""sort, sort.stable and topk on kiln's CUDA backend against eager on the same GPU.

Each case is a tiny module exported with its inputs on the GPU and compiled with
``min_block_size=1``, ``require_full_compilation=True`` (an op the backend declines fails the
compile) and ``pass_through_build_failures=True`` (an engine that fails to build raises), in
FP32 with TF32 off and in FP16. Sorting moves elements without arithmetic, so values must match
exactly (a -0.0 stays -0.0, NaN sorts above +inf).

Indices are compared exactly wherever eager's are determined: rows of distinct values, and
sort(stable=True) with ties. Where rows have ties and eager's algorithm picks their order (the
default sort of short rows is an unstable bitonic sort; topk's selection), the indices are
checked to be consistent instead: they pick the returned values from the input and do not repeat
(kiln's order is always the stable one). topk(sorted=False) leaves its order to the
implementation: its results are compared as sets.
"""
from __future__ import annotations

import pytest
import torch

A = torch.ops.aten


class Op(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def distinct_rows(rows: int, n: int) -> torch.Tensor:
    """[rows, n]: each row a permutation of the integers in [-n/2, n/2), exact in fp16."""
    return torch.stack([torch.randperm(n) for _ in range(rows)]).float() - n // 2


def special_rows(rows: int, n: int) -> torch.Tensor:
    """Distinct rows holding, where n allows, one each of NaN, +inf, -inf and -0.0 (no +0.0)."""
    x = distinct_rows(rows, n)
    x[x == 0] = -0.0
    x[x == 1] = float("nan")
    x[x == 2] = float("inf")
    x[x == -1] = float("-inf")
    return x


def tied_rows(rows: int, n: int) -> torch.Tensor:
    """Few distinct values: ties everywhere, NaNs and both zeros among them."""
    x = torch.randint(-3, 4, (rows, n)).float()
    x[x == 3] = float("nan")
    x[(x == 0) & (torch.rand(rows, n) < 0.5)] = -0.0
    return x


def along_dim1(x: torch.Tensor, outer: int, inner: int) -> torch.Tensor:
    """x [outer * inner, n] as [outer, n, inner]: the rows run along dim 1."""
    n = x.shape[1]
    return x.reshape(outer, inner, n).transpose(1, 2).contiguous()


EXACT = "exact"
# name -> (function of the inputs, inputs on the CPU, how indices compare: EXACT, or
# ("consistent" | "unsorted", the sorted dim)).
CASES = {
    # sort.default, rows of every length class, both directions.
    "sort_last": (lambda x: torch.sort(x, dim=-1), lambda: (special_rows(4, 100),), EXACT),
    "sort_last_descending": (lambda x: torch.sort(x, dim=-1, descending=True),
                             lambda: (special_rows(4, 100),), EXACT),
    "sort_length_1": (lambda x: torch.sort(x), lambda: (special_rows(5, 1),), EXACT),
    "sort_length_2": (lambda x: torch.sort(x, descending=True), lambda: (special_rows(6, 2),),
                      EXACT),
    "sort_length_33": (lambda x: torch.sort(x), lambda: (special_rows(3, 33),), EXACT),
    "sort_length_1000": (lambda x: torch.sort(x, descending=True),
                         lambda: (special_rows(2, 1000),), EXACT),
    "sort_length_4096": (lambda x: torch.sort(x), lambda: (special_rows(2, 4096),), EXACT),
    # past a block's shared memory: sorted in global scratch (fp16 rounds these integers into
    # ties, so indices are checked for consistency with the values)
    "sort_length_8000": (lambda x: torch.sort(x), lambda: (special_rows(3, 8000),),
                         ("consistent", 1)),
    "topk_vocabulary": (lambda x: torch.topk(x, 50), lambda: (special_rows(4, 50257),),
                        ("consistent", 1)),
    # Other dims, negative dims, strided rows.
    "sort_dim0": (lambda x: torch.sort(x, dim=0), lambda: (special_rows(5, 50).T.contiguous(),),
                  EXACT),
    "sort_neg_dim": (lambda x: torch.sort(x, dim=-2, descending=True),
                     lambda: (special_rows(5, 50).T.contiguous(),), EXACT),
    "sort_middle_dim": (lambda x: torch.sort(x, dim=1),
                        lambda: (along_dim1(special_rows(12, 40), 3, 4),), EXACT),
    "sort_transposed": (lambda x: torch.sort(x.transpose(0, 1), dim=-1, descending=True),
                        lambda: (special_rows(5, 50).T.contiguous(),), EXACT),
    "sort_sliced": (lambda x: torch.sort(x[:, ::2], dim=-1), lambda: (special_rows(3, 80),),
                    EXACT),
    # One output read.
    "sort_indices_only": (lambda x: torch.sort(x, dim=-1)[1], lambda: (special_rows(4, 64),),
                          EXACT),
    "sort_values_only": (lambda x: torch.sort(x, dim=-1, descending=True)[0] * 2.0,
                         lambda: (special_rows(4, 64),), EXACT),
    # Ties: stable sort fixes the indices; the default sort's tie order is eager's choice.
    "sort_stable_ties": (lambda x: torch.sort(x, dim=-1, stable=True),
                         lambda: (tied_rows(4, 200),), EXACT),
    "sort_stable_ties_descending": (lambda x: torch.sort(x, dim=-1, descending=True, stable=True),
                                    lambda: (tied_rows(4, 30),), EXACT),
    "sort_ties": (lambda x: torch.sort(x, dim=-1), lambda: (tied_rows(4, 30),), ("consistent", 1)),
    "sort_ties_long": (lambda x: torch.sort(x, dim=-1, descending=True),
                       lambda: (tied_rows(3, 500),), ("consistent", 1)),
    # Scalars, empty rows, integers.
    "sort_0d": (lambda x: torch.sort(x), lambda: (torch.randn(()),), EXACT),
    "sort_empty_rows": (lambda x: torch.sort(x, dim=-1), lambda: (torch.randn(3, 0),), EXACT),
    "sort_no_rows": (lambda x: torch.sort(x, dim=-1), lambda: (torch.randn(0, 5),), EXACT),
    "sort_int64": (lambda x: torch.sort(x, dim=-1, descending=True),
                   lambda: (torch.stack([torch.randperm(300) for _ in range(3)]) * (2 ** 40)
                            - 2 ** 47,), EXACT),
    "sort_int32_ties": (lambda x: torch.sort(x, dim=-1, stable=True),
                        lambda: (torch.randint(-5, 5, (3, 70), dtype=torch.int32),), EXACT),
    # topk: largest and smallest, k = 1 and k = the row's length, other dims, indices only.
    "topk_largest_k1": (lambda x: torch.topk(x, 1), lambda: (special_rows(4, 100),), EXACT),
    "topk_smallest_k1": (lambda x: torch.topk(x, 1, largest=False),
                         lambda: (special_rows(4, 100),), EXACT),
    "topk_largest_all": (lambda x: torch.topk(x, 100), lambda: (special_rows(4, 100),), EXACT),
    "topk_smallest_all": (lambda x: torch.topk(x, 37, largest=False),
                          lambda: (special_rows(4, 37),), EXACT),
    "topk_k5_dim0": (lambda x: torch.topk(x, 5, dim=0),
                     lambda: (special_rows(6, 300).T.contiguous(),), EXACT),
    "topk_indices_only": (lambda x: torch.topk(x, 3).indices, lambda: (special_rows(8, 500),),
                          EXACT),
    "topk_smallest_indices_only": (lambda x: torch.topk(x, 1, largest=False)[1],
                                   lambda: (special_rows(8, 33),), EXACT),
    "topk_k0": (lambda x: torch.topk(x, 0), lambda: (special_rows(4, 10),), EXACT),
    "topk_ties": (lambda x: torch.topk(x, 10), lambda: (tied_rows(4, 200),), ("consistent", 1)),
    "topk_unsorted": (lambda x: torch.topk(x, 7, sorted=False), lambda: (special_rows(4, 100),),
                      ("unsorted", 1)),
}


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _assert_same_elements(actual, expected, what, signs=True):
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True,
                               msg=lambda m: f"{what}: {m}")
    if signs and actual.is_floating_point():
        assert torch.equal(torch.signbit(actual), torch.signbit(expected)), (
            f"{what}: the signs of zeros differ")


def _check_consistent(x, dim, actual, expected, name):
    """Values exact; indices pick them from x (bit for bit) and do not repeat within a row.
    -0.0 and 0.0 tie, so which of them comes first is as open as the order of other ties: the
    values match eager's up to the signs of zeros."""
    values, indices = actual
    _assert_same_elements(values, expected[0], f"{name} values", signs=False)
    assert indices.dtype == torch.int64 and indices.shape == expected[1].shape, name
    _assert_same_elements(x.gather(dim, indices), values, f"{name} values at the indices")
    if indices.shape[dim] > 1:
        steps = torch.diff(indices.sort(dim=dim).values, dim=dim)
        assert bool((steps != 0).all()), f"{name}: an index repeats within a row"


def _check_unsorted(x, dim, actual, expected, name):
    """The same elements (values and indices as pairs) in any order."""
    values, indices = actual
    _assert_same_elements(x.gather(dim, indices), values, f"{name} values at the indices")
    _assert_same_elements(values.sort(dim=dim).values, expected[0].sort(dim=dim).values,
                          f"{name} values as a set")
    torch.testing.assert_close(indices.sort(dim=dim).values, expected[1].sort(dim=dim).values,
                               rtol=0, atol=0, msg=lambda m: f"{name} indices as a set: {m}")


def _run_case(cuda, name: str, dtype: torch.dtype) -> None:
    import kiln

    fn, make_inputs, compare = CASES[name]
    module = Op(fn).eval()
    inputs = cuda.to_device(make_inputs(), dtype)
    expected = cuda.eager(module, inputs, allow_tf32=False)
    try:
        compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                                min_block_size=1, require_full_compilation=True,
                                pass_through_build_failures=True)
    except kiln.UnsupportedError as error:
        pytest.fail(f"{name} ({dtype}): the CUDA backend does not take it: {error}")
    parts = cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
    assert parts["torch_segments"] == [], (
        f"{name} ({dtype}): left to PyTorch: {sorted(set(parts['torch_ops']))}")
    with torch.no_grad():
        actual = compiled(*inputs)
    what = f"{name} ({dtype})"
    if compare == EXACT:
        actual_leaves, expected_leaves = _leaves(actual), _leaves(expected)
        assert len(actual_leaves) == len(expected_leaves), f"{what}: output count"
        for i, (a, e) in enumerate(zip(actual_leaves, expected_leaves)):
            assert a.device == e.device, f"{what} output {i}: on {a.device}"
            assert a.dtype == e.dtype, f"{what} output {i}: {a.dtype}, expected {e.dtype}"
            _assert_same_elements(a, e, f"{what} output {i}")
        return
    kind, dim = compare
    check = _check_consistent if kind == "consistent" else _check_unsorted
    check(inputs[0], dim, tuple(actual), tuple(expected), what)


@pytest.mark.parametrize("name", list(CASES))
def test_sort_fp32(cuda, name):
    _run_case(cuda, name, torch.float32)


@pytest.mark.parametrize("name", list(CASES))
def test_sort_fp16(cuda, name):
    _run_case(cuda, name, torch.float16)


def test_rows_longer_than_the_kernel_takes_are_declined(cuda):
    """Rows of more than 2^22 elements are left to PyTorch: with require_full_compilation the
    compile says so, naming the op."""
    import kiln

    module = Op(lambda x: torch.sort(x, dim=-1)).eval()
    inputs = cuda.to_device((torch.randn(1, (1 << 22) + 1),))
    with pytest.raises(kiln.UnsupportedError, match="sort"):
        cuda.compile(module, inputs, min_block_size=1, require_full_compilation=True,
                     pass_through_build_failures=True)
    # Without it, PyTorch runs the sort and the result is eager's.
    compiled = cuda.compile(module, inputs, min_block_size=1, pass_through_build_failures=True)
    with torch.no_grad():
        values, indices = compiled(*inputs)
    expected = torch.sort(inputs[0], dim=-1)
    torch.testing.assert_close(values, expected.values, rtol=0, atol=0)
    torch.testing.assert_close(indices, expected.indices, rtol=0, atol=0)
