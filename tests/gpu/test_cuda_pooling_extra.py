"""3-D pooling and the 2-D pooling backward ops on kiln's CUDA backend, against eager on the same GPU.

The ops: avg_pool3d, max_pool3d_with_indices, _adaptive_avg_pool3d (from nn.AvgPool3d,
nn.MaxPool3d(return_indices=True), nn.AdaptiveAvgPool3d) and avg_pool2d_backward,
max_pool2d_with_indices_backward, _adaptive_avg_pool2d_backward called directly as
torch.ops.aten ops. Each case is a tiny module exported with its inputs on the GPU and compiled
with ``min_block_size=1``, ``require_full_compilation=True`` (an op the backend declines fails
the compile, naming it) and ``pass_through_build_failures=True``; every output is compared with
eager, max-pool indices exactly: FP32 with TF32 off at rtol = atol = 1e-4, FP16 at 1e-2, as in
test_cuda_ops.py. The kernels' own GPU tests: tests/cuda/kernel_library_pooling_extra_gpu_test.cc.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

FP32_TOL = 1e-4
FP16_TOL = 1e-2

A = torch.ops.aten


class Op(nn.Module):
    """A module from a function of its inputs (and of the submodule given as `inner`)."""

    def __init__(self, fn, inner: nn.Module | None = None):
        super().__init__()
        self.fn = fn
        self.inner = inner

    def forward(self, *inputs):
        return self.fn(self, *inputs)


def randn(*shape):
    return torch.randn(shape)


def _with_nans_and_infs(x: torch.Tensor) -> torch.Tensor:
    flat = x.clone().flatten()
    flat[3::17] = float("nan")
    flat[5::23] = float("inf")
    flat[7::29] = float("-inf")
    return flat.view_as(x)


def _ties(*shape):
    """Few distinct values, so that windows hold ties (the first in window order wins)."""
    return torch.randint(-2, 3, shape).float()


def _module(module: nn.Module):
    return Op(lambda m, x: m.inner(x), inner=module)


def _max_backward(kernel, stride, padding, dilation, ceil_mode):
    """max_pool2d_with_indices_backward of the indices the forward op returns on `x`."""
    def fn(m, g, x):
        _, indices = A.max_pool2d_with_indices.default(x, kernel, stride, padding, dilation,
                                                       ceil_mode)
        return A.max_pool2d_with_indices_backward.default(g, x, kernel, stride, padding,
                                                          dilation, ceil_mode, indices)
    return Op(fn)


# name -> () -> (module, inputs on the CPU in float32)
CASES = {
    # avg_pool3d
    "avg_pool3d": lambda: (_module(nn.AvgPool3d(2)), (randn(2, 3, 6, 8, 8),)),
    "avg_pool3d_padded_ceil": lambda: (
        _module(nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True)), (randn(2, 3, 7, 8, 9),)),
    "avg_pool3d_exclude_pad": lambda: (
        _module(nn.AvgPool3d((3, 2, 3), stride=(2, 1, 2), padding=(1, 1, 1), ceil_mode=True,
                             count_include_pad=False)), (randn(2, 3, 7, 6, 9),)),
    "avg_pool3d_divisor_override": lambda: (
        _module(nn.AvgPool3d(3, stride=2, padding=1, divisor_override=5)),
        (randn(1, 4, 5, 6, 7),)),
    "avg_pool3d_unbatched": lambda: (_module(nn.AvgPool3d(2, stride=1)), (randn(3, 5, 6, 7),)),
    "avg_pool3d_channels_last": lambda: (
        Op(lambda m, x: F.avg_pool3d(x.permute(0, 4, 1, 2, 3), 3, 2, 1)),
        (randn(2, 6, 8, 7, 5),)),
    "avg_pool3d_nan_inf": lambda: (_module(nn.AvgPool3d(2)),
                                   (_with_nans_and_infs(randn(2, 3, 4, 6, 6)),)),
    "avg_pool3d_empty_batch": lambda: (_module(nn.AvgPool3d(2)), (randn(0, 3, 4, 4, 4),)),
    # max_pool3d_with_indices: values and indices
    "max_pool3d_indices": lambda: (
        _module(nn.MaxPool3d(2, return_indices=True)), (randn(2, 3, 6, 8, 8),)),
    "max_pool3d_indices_padded_ceil": lambda: (
        _module(nn.MaxPool3d(3, stride=2, padding=1, ceil_mode=True, return_indices=True)),
        (randn(2, 3, 7, 8, 9),)),
    "max_pool3d_indices_dilated": lambda: (
        _module(nn.MaxPool3d((2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), dilation=(2, 1, 2),
                             return_indices=True)), (randn(1, 3, 7, 8, 9),)),
    "max_pool3d_indices_nan_inf": lambda: (
        _module(nn.MaxPool3d(2, return_indices=True)),
        (_with_nans_and_infs(randn(2, 3, 4, 6, 6)),)),
    "max_pool3d_indices_ties": lambda: (
        _module(nn.MaxPool3d(3, stride=2, padding=1, return_indices=True)),
        (_ties(2, 3, 5, 6, 7),)),
    "max_pool3d_indices_unbatched": lambda: (
        _module(nn.MaxPool3d(2, stride=1, return_indices=True)), (randn(3, 4, 5, 6),)),
    "max_pool3d_indices_channels_last": lambda: (
        Op(lambda m, x: F.max_pool3d(x.permute(0, 4, 1, 2, 3), 3, 2, 1, return_indices=True)),
        (randn(2, 6, 8, 7, 5),)),
    "max_pool3d_indices_only": lambda: (
        Op(lambda m, x: F.max_pool3d(x, 2, return_indices=True)[1]), (randn(2, 3, 4, 6, 6),)),
    "max_pool3d_values": lambda: (_module(nn.MaxPool3d(3, stride=2)), (randn(2, 3, 7, 7, 7),)),
    # _adaptive_avg_pool3d
    "adaptive_avg_pool3d": lambda: (_module(nn.AdaptiveAvgPool3d((2, 3, 4))),
                                    (randn(2, 3, 5, 7, 9),)),
    "adaptive_avg_pool3d_global": lambda: (_module(nn.AdaptiveAvgPool3d(1)),
                                           (randn(2, 8, 4, 5, 6),)),
    "adaptive_avg_pool3d_upsampling": lambda: (_module(nn.AdaptiveAvgPool3d((5, 6, 7))),
                                               (randn(1, 2, 3, 4, 5),)),
    "adaptive_avg_pool3d_unbatched": lambda: (_module(nn.AdaptiveAvgPool3d(3)),
                                              (randn(4, 6, 7, 8),)),
    "adaptive_avg_pool3d_nan": lambda: (_module(nn.AdaptiveAvgPool3d(2)),
                                        (_with_nans_and_infs(randn(2, 3, 4, 6, 6)),)),
    # avg_pool2d_backward(grad_output, self, kernel, stride, padding, ceil_mode,
    #                     count_include_pad, divisor_override)
    "avg_pool2d_backward": lambda: (
        Op(lambda m, g, x: A.avg_pool2d_backward.default(g, x, [2, 2], [2, 2], [0, 0], False,
                                                         True, None)),
        (randn(2, 3, 4, 4), randn(2, 3, 8, 8))),
    "avg_pool2d_backward_overlapping_ceil": lambda: (
        Op(lambda m, g, x: A.avg_pool2d_backward.default(g, x, [3, 3], [2, 2], [1, 1], True,
                                                         True, None)),
        (randn(2, 3, 5, 5), randn(2, 3, 9, 9))),
    "avg_pool2d_backward_exclude_pad": lambda: (
        Op(lambda m, g, x: A.avg_pool2d_backward.default(g, x, [3, 2], [2, 1], [1, 1], True,
                                                         False, None)),
        (randn(2, 3, 5, 9), randn(2, 3, 9, 8))),
    "avg_pool2d_backward_divisor": lambda: (
        Op(lambda m, g, x: A.avg_pool2d_backward.default(g, x, [3, 3], [2, 2], [1, 1], False,
                                                         True, 4)),
        (randn(2, 3, 4, 4), randn(2, 3, 8, 8))),
    "avg_pool2d_backward_unbatched": lambda: (
        Op(lambda m, g, x: A.avg_pool2d_backward.default(g, x, [3, 3], [1, 1], [1, 1], False,
                                                         False, None)),
        (randn(3, 6, 7), randn(3, 6, 7))),
    "avg_pool2d_backward_channels_last": lambda: (
        Op(lambda m, g, x: A.avg_pool2d_backward.default(g.permute(0, 3, 1, 2), x, [2, 2],
                                                         [2, 2], [0, 0], False, True, None)),
        (randn(2, 4, 4, 6), randn(2, 6, 8, 8))),
    # max_pool2d_with_indices_backward, of the forward op's indices
    "max_pool2d_backward": lambda: (_max_backward([2, 2], [2, 2], [0, 0], [1, 1], False),
                                    (randn(2, 3, 4, 4), randn(2, 3, 8, 8))),
    "max_pool2d_backward_overlapping_ceil": lambda: (
        _max_backward([3, 3], [2, 2], [1, 1], [1, 1], True),
        (randn(2, 3, 5, 5), randn(2, 3, 8, 8))),
    "max_pool2d_backward_dilated": lambda: (
        _max_backward([3, 2], [1, 2], [1, 1], [2, 2], False),
        (randn(2, 3, 6, 4), randn(2, 3, 8, 8))),
    "max_pool2d_backward_ties": lambda: (
        _max_backward([3, 3], [1, 1], [1, 1], [1, 1], False),
        (randn(2, 3, 6, 6), _ties(2, 3, 6, 6))),
    "max_pool2d_backward_unbatched": lambda: (
        _max_backward([2, 2], [1, 1], [0, 0], [1, 1], False),
        (randn(3, 6, 6), randn(3, 7, 7))),
    # _adaptive_avg_pool2d_backward(grad_output, self)
    "adaptive_avg_pool2d_backward": lambda: (
        Op(lambda m, g, x: A._adaptive_avg_pool2d_backward.default(g, x)),
        (randn(2, 3, 3, 3), randn(2, 3, 7, 7))),
    "adaptive_avg_pool2d_backward_uneven": lambda: (
        Op(lambda m, g, x: A._adaptive_avg_pool2d_backward.default(g, x)),
        (randn(2, 3, 4, 5), randn(2, 3, 7, 9))),
    "adaptive_avg_pool2d_backward_global": lambda: (
        Op(lambda m, g, x: A._adaptive_avg_pool2d_backward.default(g, x)),
        (randn(2, 8, 1, 1), randn(2, 8, 7, 7))),
    "adaptive_avg_pool2d_backward_upsampling": lambda: (
        Op(lambda m, g, x: A._adaptive_avg_pool2d_backward.default(g, x)),
        (randn(2, 3, 6, 7), randn(2, 3, 3, 4))),
    "adaptive_avg_pool2d_backward_unbatched": lambda: (
        Op(lambda m, g, x: A._adaptive_avg_pool2d_backward.default(g, x)),
        (randn(3, 2, 3), randn(3, 5, 7))),
}


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float) -> None:
    import kiln

    module, inputs = CASES[name]()
    module = module.eval().requires_grad_(False)
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
    actual_leaves, expected_leaves = _leaves(actual), _leaves(expected)
    assert len(actual_leaves) == len(expected_leaves), f"{name}: output count"
    for i, (a, e) in enumerate(zip(actual_leaves, expected_leaves)):
        assert a.device == e.device, f"{name} output {i}: on {a.device}"
        assert a.dtype == e.dtype and a.shape == e.shape, (
            f"{name} output {i}: {a.dtype}{list(a.shape)}, expected {e.dtype}{list(e.shape)}")
        torch.testing.assert_close(a, e, rtol=tol, atol=tol, equal_nan=True,
                                   msg=lambda m, i=i: f"{name} ({dtype}) output {i}: {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_pooling_extra_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_pooling_extra_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)
