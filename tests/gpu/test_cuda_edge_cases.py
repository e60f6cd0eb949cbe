"""Edge cases the GPU conformance run found in kiln's CUDA backend, against eager on the same GPU.

Each case is a tiny module around one ATen op, exported with the inputs on the GPU (as the
conformance run does, so that the program records what PyTorch's CUDA kernels return) and
compiled with ``min_block_size=1`` and ``pass_through_build_failures=True`` (an engine that fails
to build raises). kiln must then either run the op and match eager, or leave it to PyTorch at
compile time: a failure at run time, a crash or a build error is a bug. Cases kiln is expected to
take (``TAKEN``) must also run on an engine. FP32 with TF32 off compares at rtol = atol = 1e-4,
FP16 at 1e-2, as in test_cuda_ops.py. tests/cuda/edge_cases_test.cc checks the same cases'
verdicts and sm_90 builds without a GPU.
"""
from __future__ import annotations

import pytest
import torch

FP32_TOL = 1e-4
FP16_TOL = 1e-2

A = torch.ops.aten


class Op(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def randn(*shape):
    return torch.randn(shape)


def _constant_rows(rows, n):
    """Rows each of one value, values whose sums do not divide back exactly (3.73 * k)."""
    return (torch.arange(1, rows + 1, dtype=torch.float32) * 3.73).unsqueeze(1).expand(rows, n) \
        .contiguous()


# name -> (function of the inputs, inputs on the CPU, float32/float16 alike).
CASES = {
    # 1. reductions of a 0-d tensor: the element itself (any: != 0).
    "sum_0d": (lambda x: A.sum.dim_IntList(x, [0]), lambda: (randn(),)),
    "mean_0d_keepdim": (lambda x: A.mean.dim(x, [0], True), lambda: (randn(),)),
    "prod_0d": (lambda x: A.prod.dim_int(x, 0), lambda: (randn(),)),
    "any_0d": (lambda x: A.any.dim(x, -1), lambda: (randn(),)),
    "any_0d_zero": (lambda x: A.any.dim(x, 0), lambda: (torch.zeros(()),)),
    # 2. index_select of a 0-d input: one element along dim 0, a 0-d result.
    "index_select_0d": (lambda x, i: A.index_select.default(x, 0, i),
                        lambda: (randn(), torch.tensor([0]))),
    "index_select_0d_neg_dim": (lambda x, i: A.index_select.default(x, -1, i),
                                lambda: (randn(), torch.tensor([0]))),
    # 3. addmm inputs that are not a row bias under beta 1, and an empty inner dim.
    "addmm_0d_input": (lambda c, a, b: A.addmm.default(c, a, b, beta=0.2, alpha=0.6),
                       lambda: (randn(), randn(2, 2), randn(2, 3))),
    "addmm_column_input": (lambda c, a, b: A.addmm.default(c, a, b, beta=0.2, alpha=0.6),
                           lambda: (randn(2, 1), randn(2, 2), randn(2, 3))),
    "addmm_row_input_2d": (lambda c, a, b: A.addmm.default(c, a, b, beta=0.2, alpha=0.6),
                           lambda: (randn(1, 3), randn(2, 2), randn(2, 3))),
    "addmm_row_input_beta": (lambda c, a, b: A.addmm.default(c, a, b, beta=0.5),
                             lambda: (randn(3), randn(2, 2), randn(2, 3))),
    "addmm_row_input": (lambda c, a, b: A.addmm.default(c, a, b),
                        lambda: (randn(3), randn(2, 2), randn(2, 3))),
    "addmm_one_element_input": (lambda c, a, b: A.addmm.default(c, a, b),
                                lambda: (randn(1), randn(2, 2), randn(2, 3))),
    "addmm_full_input": (lambda c, a, b: A.addmm.default(c, a, b, beta=0.2, alpha=0.6),
                         lambda: (randn(2, 3), randn(2, 2), randn(2, 3))),
    "addmm_row_input_relu": (lambda c, a, b: torch.relu(A.addmm.default(c, a, b, beta=0.5)),
                             lambda: (randn(3), randn(4, 8), randn(8, 3))),
    "addmm_k0": (lambda c, a, b: A.addmm.default(c, a, b, beta=0.5),
                 lambda: (randn(5, 10), randn(5, 0), randn(0, 10))),
    # 4. conv2d of an unbatched [C, H, W] input: one image.
    "conv2d_unbatched": (lambda x, w, b: A.conv2d.default(x, w, b, [2, 2], [2, 2]),
                         lambda: (randn(3, 4, 4), randn(3, 3, 3, 3), randn(3))),
    "conv1d_unbatched": (lambda x, w, b: A.conv1d.default(x, w, b, [1], [1]),
                         lambda: (randn(3, 8), randn(4, 3, 3), randn(4))),
    # 5. transposed convolution with output_padding (cuDNN lacks engines for some).
    "conv_transpose1d_output_padding": (
        lambda x, w, b: A.convolution.default(x, w, b, [2], [2], [1], True, [1], 1),
        lambda: (randn(1, 3, 4), randn(3, 3, 3), randn(3))),
    "conv_transpose2d_output_padding": (
        lambda x, w, b: A.convolution.default(x, w, b, [2, 2], [1, 1], [1, 1], True, [1, 1], 1),
        lambda: (randn(1, 3, 4, 4), randn(3, 3, 3, 3), randn(3))),
    # 6. max_pool2d_with_indices returning its indices, ceil_mode.
    "max_pool2d_with_indices_ceil": (
        lambda x: A.max_pool2d_with_indices.default(x, [1, 3], [1, 2], [0, 0], [1, 1], True),
        lambda: (randn(1, 2, 1, 3),)),
    "max_pool2d_with_indices_3x3": (
        lambda x: A.max_pool2d_with_indices.default(x, [3, 3], [2, 2], [1, 1], [1, 1], True),
        lambda: (randn(1, 2, 5, 6),)),
    # 7. native_layer_norm returning mean and rstd (float32 for a float16 input on CUDA).
    "native_layer_norm_stats": (lambda x, w, b: A.native_layer_norm.default(x, [3], w, b, 1e-5),
                                lambda: (randn(2, 4, 3), randn(3), randn(3))),
    "native_layer_norm_empty": (lambda x, w, b: A.native_layer_norm.default(x, [1], w, b, 1e-5),
                                lambda: (randn(0, 1), randn(1), randn(1))),
    # 7b. layer norm of constant rows: zero variance exactly, so the output is the bias (a mean
    # an ulp off would be magnified by rsqrt(eps)). Longer rows: test_layer_norm_constant_rows.
    "layer_norm_constant_rows": (lambda x, w, b: A.layer_norm.default(x, [64], w, b, 1e-5),
                                 lambda: (_constant_rows(5, 64), randn(64), randn(64))),
    # 8. inference batch norm of a 3-D input (the generated pointwise code).
    "batch_norm_no_training_3d": (
        lambda x, w, b, m, v: A._native_batch_norm_legit_no_training.default(
            x, w, b, m, v, -1.2, 1e-5)[0],
        lambda: (randn(3, 2, 4), randn(2), randn(2), randn(2), randn(2).abs() + 0.5)),
    # ... returning its saved statistics: running_mean and 1 / sqrt(running_var + eps) on CUDA.
    "batch_norm_no_training_3d_stats": (
        lambda x, w, b, m, v: A._native_batch_norm_legit_no_training.default(
            x, w, b, m, v, -1.2, 1e-5),
        lambda: (randn(3, 2, 4), randn(2), randn(2), randn(2), randn(2).abs() + 0.5)),
    "batch_norm_no_training_4d_stats": (
        lambda x, w, b, m, v: A._native_batch_norm_legit_no_training.default(
            x, w, b, m, v, -1.0, 0.5),
        lambda: (randn(3, 2, 3, 4), randn(2), randn(2), randn(2), randn(2).abs() + 0.5)),
}

# Cases kiln is expected to run on an engine (the others may be left to PyTorch).
TAKEN = {
    "sum_0d", "mean_0d_keepdim", "prod_0d", "any_0d", "any_0d_zero", "index_select_0d",
    "index_select_0d_neg_dim", "addmm_0d_input", "addmm_column_input", "addmm_row_input_2d",
    "addmm_row_input_beta", "addmm_row_input", "addmm_one_element_input", "addmm_full_input",
    "addmm_row_input_relu", "conv2d_unbatched", "conv1d_unbatched",
    "max_pool2d_with_indices_ceil", "max_pool2d_with_indices_3x3", "native_layer_norm_stats",
    "native_layer_norm_empty", "layer_norm_constant_rows", "batch_norm_no_training_3d", "batch_norm_no_training_3d_stats",
    "batch_norm_no_training_4d_stats",
}


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float) -> None:
    fn, make_inputs = CASES[name]
    module = Op(fn).eval()
    inputs = cuda.to_device(make_inputs(), dtype)
    expected = cuda.eager(module, inputs, allow_tf32=False)
    compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, pass_through_build_failures=True)
    parts = cuda.segments(compiled)
    print(f"{name} {dtype}: {len(parts['engines'])} engine(s), PyTorch ops "
          f"{sorted(set(parts['torch_ops']))}")
    if name in TAKEN:
        cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
        assert parts["torch_segments"] == [], (
            f"{name} ({dtype}): left to PyTorch: {sorted(set(parts['torch_ops']))}")
    with torch.no_grad():
        actual = compiled(*inputs)
    actual_leaves, expected_leaves = _leaves(actual), _leaves(expected)
    assert len(actual_leaves) == len(expected_leaves), f"{name}: output count"
    for i, (a, e) in enumerate(zip(actual_leaves, expected_leaves)):
        assert a.device == e.device, f"{name} output {i}: on {a.device}"
        torch.testing.assert_close(a, e, rtol=tol, atol=tol,
                                   msg=lambda m, i=i: f"{name} ({dtype}) output {i}: {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_edge_case_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_edge_case_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)


@pytest.mark.parametrize("n", [64, 3000, 9000])  # rows a warp holds, a block holds, streamed
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_layer_norm_constant_rows(cuda, n, dtype):
    """Constant rows normalize to exactly the bias. Checked against that exact answer, not eager:
    eager CUDA's vectorized layer norm merges per-thread Welford means as nA*a + nB*b with
    nA + nB rounded, so for row lengths that do not split into powers of two its mean can miss
    the row's value by an ulp, and its output then differs from the bias by up to 6e-4 (n=3000)."""
    module = Op(lambda x, w, b: A.layer_norm.default(x, [n], w, b, 1e-5)).eval()
    inputs = cuda.to_device((_constant_rows(3, n), randn(n), randn(n)), dtype)
    compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, pass_through_build_failures=True)
    cuda.assert_runs_engines_on_gpu(compiled, f"layer_norm constant rows n={n} {dtype}")
    with torch.no_grad():
        actual = compiled(*inputs)
    expected = inputs[2].expand(3, n)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
