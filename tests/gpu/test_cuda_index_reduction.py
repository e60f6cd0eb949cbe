"""argmax/argmin, max/min along a dim and var/std/var_mean on kiln's CUDA backend, against eager on
the same GPU.

Each case is a tiny module exported with its inputs on the GPU and compiled with
``min_block_size=1``, ``require_full_compilation=True`` (an op the backend declines fails the
compile, naming it) and ``pass_through_build_failures=True``. Indices must equal eager's exactly
(PyTorch returns the first extreme element, NaN counting as the extreme); values and moments
compare at rtol = atol = 1e-4 in FP32 (TF32 off) and 1e-2 in FP16, NaN where eager has NaN.
tests/cuda/kernel_library_index_reduction*_test.cc check the kernels themselves.
"""
from __future__ import annotations

import pytest
import torch

FP32_TOL = 1e-4
FP16_TOL = 1e-2

NAN = float("nan")
INF = float("inf")


class Op(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def randn(*shape):
    return torch.randn(shape)


def tricky(rows: int, n: int) -> torch.Tensor:
    """Rows with ties (values on a 0.5 grid), NaNs (the first must win), infs, a constant row."""
    x = (torch.randn(rows, n) * 4).round() / 2
    x[1 % rows, n // 3] = NAN
    x[1 % rows, n - 1] = NAN
    x[2 % rows, n // 2] = INF
    x[2 % rows, 0] = -INF
    x[3 % rows] = 1.5
    return x


def constant_rows(rows: int, n: int) -> torch.Tensor:
    """Rows each of one value whose sums do not divide back exactly (3.73 * k): var is 0."""
    return (torch.arange(1, rows + 1, dtype=torch.float32) * 3.73).unsqueeze(1).expand(rows, n) \
        .contiguous()


# name -> (function of the inputs, () -> inputs on the CPU). Floating inputs run in FP32 and FP16.
CASES = {
    # argmax / argmin
    "argmax_last": (lambda x: x.argmax(dim=-1), lambda: (tricky(8, 37),)),
    "argmin_last": (lambda x: x.argmin(dim=1), lambda: (tricky(8, 37),)),
    "argmax_dim0": (lambda x: x.argmax(dim=0), lambda: (tricky(40, 12),)),
    "argmax_keepdim": (lambda x: x.argmax(dim=1, keepdim=True), lambda: (tricky(6, 50),)),
    "argmax_flattened": (lambda x: x.argmax(), lambda: (tricky(64, 1000),)),
    "argmin_flattened_keepdim": (lambda x: torch.argmin(x, keepdim=True),
                                 lambda: (randn(3, 4, 5),)),
    "argmax_long_rows": (lambda x: x.argmax(dim=-1), lambda: (tricky(4, 3000),)),
    "argmax_channels": (lambda x: x.argmax(dim=1), lambda: (randn(2, 21, 32, 32),)),
    "argmax_neg_dim_3d": (lambda x: x.argmax(dim=-2), lambda: (tricky(6, 40).view(2, 3, 40),)),
    "argmax_transposed": (lambda x: x.transpose(0, 1).argmax(dim=1), lambda: (tricky(30, 20),)),
    "argmin_sliced": (lambda x: x[:, ::2].argmin(dim=1), lambda: (tricky(10, 41),)),
    "argmax_0d": (lambda x: x.argmax(), lambda: (randn(),)),
    "argmax_int64": (lambda x: x.argmax(dim=1),
                     lambda: (torch.randint(-5, 5, (7, 33)) + (1 << 40),)),
    "argmin_int32": (lambda x: x.argmin(dim=0), lambda: (torch.randint(-5, 5, (9, 6)).int(),)),
    "argmax_empty_rows": (lambda x: x.argmax(dim=1), lambda: (randn(0, 5),)),
    # max / min along a dim: values and int64 indices
    "max_dim": (lambda x: x.max(dim=1), lambda: (tricky(8, 37),)),
    "min_dim_keepdim": (lambda x: torch.min(x, dim=0, keepdim=True), lambda: (tricky(12, 9),)),
    "max_dim_indices_only": (lambda x: x.max(dim=-1).indices, lambda: (tricky(8, 100),)),
    "max_dim_values_only": (lambda x: x.max(dim=-1)[0] * 2, lambda: (tricky(8, 100),)),
    "max_dim_long_rows": (lambda x: x.max(dim=1), lambda: (tricky(3, 5000),)),
    "min_dim_neg_3d": (lambda x: x.min(dim=-3), lambda: (randn(5, 4, 6),)),
    "max_dim_permuted": (lambda x: x.permute(2, 0, 1).max(dim=2), lambda: (randn(4, 30, 6),)),
    "max_dim_of_relu_ties": (lambda x: torch.relu(x * 2 - 1).max(dim=1),
                             lambda: (randn(16, 64),)),
    "max_dim_bool": (lambda x: (x > 0.5).max(dim=1), lambda: (randn(6, 20),)),
    "min_dim_int64": (lambda x: x.min(dim=1), lambda: (torch.randint(-9, 9, (5, 17)),)),
    "max_dim_0d": (lambda x: x.max(dim=0), lambda: (randn(),)),
    # var / std / var_mean (std and var_mean lower to var.correction)
    "var_last": (lambda x: x.var(dim=-1), lambda: (randn(8, 37) * 3 + 1,)),
    "var_biased": (lambda x: x.var(dim=1, unbiased=False), lambda: (randn(8, 37),)),
    "var_correction": (lambda x: torch.var(x, dim=1, correction=2.5), lambda: (randn(6, 20),)),
    "var_dims_keepdim": (lambda x: x.var(dim=(0, 2), keepdim=True), lambda: (randn(6, 5, 7),)),
    "var_all": (lambda x: x.var(), lambda: (randn(30, 40),)),
    "var_dim0": (lambda x: x.var(dim=0), lambda: (randn(300, 20),)),
    "var_channels": (lambda x: x.var(dim=(0, 2, 3)), lambda: (randn(4, 8, 16, 16) + 5,)),
    "var_long_rows": (lambda x: x.var(dim=1), lambda: (randn(3, 5000) + 10,)),
    "var_transposed": (lambda x: x.t().var(dim=1), lambda: (randn(30, 20),)),
    "var_constant_rows": (lambda x: x.var(dim=1), lambda: (constant_rows(6, 300),)),
    "var_correction_past_n": (lambda x: torch.var(x, dim=1, correction=2),
                              lambda: (torch.tensor([[1.0, 3.0], [2.0, 2.0], [5.0, 7.0]]),)),
    "var_one_element": (lambda x: x.var(dim=1), lambda: (randn(4, 1),)),
    "var_nan_inf": (lambda x: x.var(dim=1), lambda: (tricky(6, 10),)),
    "var_empty_dim": (lambda x: x.var(dim=1), lambda: (randn(3, 0),)),
    "var_empty_rows": (lambda x: x.var(dim=1), lambda: (randn(0, 4),)),
    "std_last": (lambda x: x.std(dim=-1), lambda: (randn(8, 64) * 2,)),
    "var_mean": (lambda x: torch.var_mean(x, dim=1, keepdim=True), lambda: (randn(8, 64) + 3,)),
    "std_mean_unbiased_false": (lambda x: torch.std_mean(x, dim=0, unbiased=False),
                                lambda: (randn(10, 6),)),
}


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _compare(name: str, dtype: torch.dtype, actual, expected, tol: float) -> None:
    actual_leaves, expected_leaves = _leaves(actual), _leaves(expected)
    assert len(actual_leaves) == len(expected_leaves), f"{name}: output count"
    for i, (a, e) in enumerate(zip(actual_leaves, expected_leaves)):
        assert a.device == e.device, f"{name} output {i}: on {a.device}"
        assert a.dtype == e.dtype, f"{name} output {i}: {a.dtype}, expected {e.dtype}"
        assert a.shape == e.shape, f"{name} output {i}: shape {a.shape}, expected {e.shape}"
        if e.is_floating_point():
            torch.testing.assert_close(a, e, rtol=tol, atol=tol, equal_nan=True,
                                       msg=lambda m, i=i: f"{name} ({dtype}) output {i}: {m}")
        else:  # indices and integer or bool values: exactly eager's
            mismatch = (a != e).nonzero()
            assert mismatch.numel() == 0, (
                f"{name} ({dtype}) output {i}: {mismatch.shape[0]} elements differ, first at "
                f"{mismatch[0].tolist()}: {a[tuple(mismatch[0])]} vs {e[tuple(mismatch[0])]}")


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float) -> None:
    fn, make_inputs = CASES[name]
    module = Op(fn).eval()
    inputs = cuda.to_device(make_inputs(), dtype)
    expected = cuda.eager(module, inputs, allow_tf32=False)
    compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, require_full_compilation=True,
                            pass_through_build_failures=True)
    parts = cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
    assert parts["torch_segments"] == [], (
        f"{name} ({dtype}): left to PyTorch: {sorted(set(parts['torch_ops']))}")
    with torch.no_grad():
        actual = compiled(*inputs)
    _compare(name, dtype, actual, expected, tol)


@pytest.mark.parametrize("name", list(CASES))
def test_index_reduction_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_index_reduction_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)


class Classifier(torch.nn.Module):
    """A classifier head: logits, the predicted class and its confidence (max of the softmax)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 100)

    def forward(self, x):
        logits = self.fc(torch.relu(x))
        confidence, _ = torch.softmax(logits, dim=-1).max(dim=-1)
        return logits, logits.argmax(dim=-1), confidence


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_classifier_argmax_of_logits(cuda, dtype):
    """argmax of logits the engine computed: where two logits are within rounding of each other
    the engine may pick the other one, so the check is that the picked logit is the row's max
    (of eager's logits, to the tolerance) rather than that the index equals eager's."""
    tol = FP32_TOL if dtype == torch.float32 else FP16_TOL
    module = Classifier().eval().to(cuda.device, dtype)
    inputs = (torch.randn(32, 64, device=cuda.device, dtype=dtype),)
    expected_logits, expected_pred, expected_conf = cuda.eager(module, inputs)
    compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, require_full_compilation=True,
                            pass_through_build_failures=True)
    parts = cuda.assert_runs_engines_on_gpu(compiled, f"classifier {dtype}")
    assert parts["torch_segments"] == [], sorted(set(parts["torch_ops"]))
    with torch.no_grad():
        logits, pred, conf = compiled(*inputs)
    assert pred.dtype == torch.int64 and pred.shape == expected_pred.shape
    torch.testing.assert_close(logits, expected_logits, rtol=tol, atol=tol)
    picked = expected_logits.gather(-1, pred.unsqueeze(-1)).squeeze(-1).float()
    best = expected_logits.max(dim=-1).values.float()
    torch.testing.assert_close(picked, best, rtol=tol, atol=tol)
    agree = (pred == expected_pred).float().mean().item()
    assert agree >= 0.9, f"only {agree:.0%} of the predictions match eager's"
    torch.testing.assert_close(conf, expected_conf, rtol=tol, atol=tol)
    # The engine's own logits give its predictions exactly.
    assert torch.equal(pred, logits.argmax(dim=-1))
