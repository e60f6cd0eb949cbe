"""kiln's direct convolution kernels on the CUDA backend against eager on the same GPU: transposed
convolutions with output_padding that cuDNN has no engine for (conv_transpose1d/2d/3d in fp32,
1-D and 3-D in fp16; groups, stride, dilation, padding, bias, a channels-last input) and
aten.convolution_backward for plain and transposed convolutions with several output_masks
(called directly from a tiny module: PyTorch returns None for the gradients the mask leaves out).

Each case is a tiny module exported with its inputs on the GPU and compiled with
``min_block_size=1``, ``pass_through_build_failures=True`` and, where marked, also
``require_full_compilation=True`` (the convolution must run on an engine). FP32 with TF32 off
compares at rtol = atol = 1e-4, FP16 at 1e-2, NaN equal to NaN.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

FP32_TOL = 1e-4
FP16_TOL = 1e-2


class Op(torch.nn.Module):
    def __init__(self, fn, **submodules):
        super().__init__()
        self.fn = fn
        for name, module in submodules.items():
            setattr(self, name, module)

    def forward(self, *inputs):
        return self.fn(self, *inputs)


def randn(*shape):
    return torch.randn(shape)


def _nhwc(*shape):
    """A [N, C, H, W] view of channels-last storage (non-contiguous)."""
    n, c, h, w = shape
    return randn(n, h, w, c).permute(0, 3, 1, 2)


def tconv(dims, *args, **kwargs):
    module = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d,
              3: torch.nn.ConvTranspose3d}[dims]
    return lambda: {"conv": module(*args, **kwargs)}


def by_conv(m, x):
    return m.conv(x)


# name -> (fn(module, *inputs), () -> inputs on the CPU in FP32, () -> submodules, full).
FORWARD_CASES = {
    # The conformance sample aten.convolution(float32[1, 3, 4], float32[3, 3, 3], float32[3],
    # [2], [2], [1], True, [1], 1).
    "tconv1d_sample": (by_conv, lambda: (randn(1, 3, 4),),
                       tconv(1, 3, 3, 3, stride=2, padding=2, output_padding=1), True),
    "tconv1d_groups_dilation": (by_conv, lambda: (randn(2, 4, 7),),
                                tconv(1, 4, 6, 3, stride=3, padding=1, output_padding=2,
                                      groups=2, dilation=2), True),
    "tconv1d_no_bias": (by_conv, lambda: (randn(2, 5, 9),),
                        tconv(1, 5, 3, 4, stride=2, output_padding=1, bias=False), True),
    "tconv2d": (by_conv, lambda: (randn(2, 4, 5, 6),),
                tconv(2, 4, 3, 3, stride=2, padding=1, output_padding=1), True),
    "tconv2d_groups_dilation": (by_conv, lambda: (randn(1, 4, 5, 4),),
                                tconv(2, 4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                      output_padding=(1, 2), groups=2, dilation=(1, 2)), True),
    "tconv2d_nhwc_input": (by_conv, lambda: (_nhwc(2, 8, 5, 6),),
                           tconv(2, 8, 4, 3, stride=2, padding=1, output_padding=1), True),
    "tconv3d": (by_conv, lambda: (randn(1, 3, 3, 4, 3),),
                tconv(3, 3, 4, 3, stride=2, padding=1, output_padding=1), True),
    "tconv3d_groups": (by_conv, lambda: (randn(2, 4, 2, 3, 3),),
                       tconv(3, 4, 4, 2, stride=(2, 1, 2), output_padding=(1, 0, 1), groups=2,
                             bias=False), True),
    # followed by pointwise ops: the direct step's output feeds a fused pointwise kernel.
    "tconv2d_relu_add": (lambda m, x, r: torch.relu(m.conv(x)) + r,
                         lambda: (randn(1, 3, 4, 4), randn(1, 2, 12, 12)),
                         tconv(2, 3, 2, 3, stride=3, padding=1, output_padding=2), True),
    # PyTorch's single-image form: export may add the batch dim itself.
    "tconv1d_unbatched": (by_conv, lambda: (randn(3, 5),),
                          tconv(1, 3, 2, 3, stride=2, padding=1, output_padding=1), False),
}


def backward(bias_sizes, stride, padding, dilation, transposed, output_padding, groups, mask):
    """A module calling aten.convolution_backward(grad_output, input, weight, ...) and returning
    the gradients output_mask asks for (the program records None for the others; some of eager's
    CPU kernels compute them anyway, so they are picked by the mask, not by being None)."""
    def fn(m, grad_output, x, w):
        grads = torch.ops.aten.convolution_backward.default(
            grad_output, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding,
            groups, mask)
        return tuple(g for g, wanted in zip(grads, mask) if wanted)
    return fn


def _conv_out(x, w, stride, padding, dilation, transposed, output_padding, groups):
    y = torch.ops.aten.convolution.default(x, w, None, stride, padding, dilation, transposed,
                                           output_padding, groups)
    return list(y.shape)


def backward_inputs(x_shape, w_shape, stride, padding, dilation, transposed, output_padding,
                    groups, grad_output_transposed=False):
    def make():
        x, w = randn(*x_shape), randn(*w_shape)
        y_shape = _conv_out(x, w, stride, padding, dilation, transposed, output_padding, groups)
        if grad_output_transposed:  # [C, N, ...] storage seen as [N, C, ...]
            y_shape[0], y_shape[1] = y_shape[1], y_shape[0]
            return randn(*y_shape).transpose(0, 1), x, w
        return randn(*y_shape), x, w
    return make


def backward_case(x_shape, w_shape, stride, padding, dilation, transposed, output_padding, groups,
                  mask, grad_output_transposed=False):
    out_channels = w_shape[1] * groups if transposed else w_shape[0]
    return (backward([out_channels], stride, padding, dilation, transposed, output_padding, groups,
                     mask),
            backward_inputs(x_shape, w_shape, stride, padding, dilation, transposed,
                            output_padding, groups, grad_output_transposed),
            lambda: {}, True)


BACKWARD_CASES = {
    # The conformance sample aten.convolution_backward(float32[1, 3, 6], float32[1, 3, 4],
    # float32[3, 3, 3], [3], [2], [2], [1], True, [1], 1, [True, True, True]).
    "backward_sample": backward_case([1, 3, 4], [3, 3, 3], [2], [2], [1], True, [1], 1,
                                     [True, True, True]),
    "backward_plain2d_groups": backward_case([2, 4, 7, 6], [6, 2, 3, 2], [2, 1], [1, 1], [2, 1],
                                             False, [0, 0], 2, [True, True, False]),
    "backward_plain1d_weight_bias": backward_case([3, 2, 9], [4, 2, 3], [2], [1], [1], False,
                                                  [0], 1, [False, True, True]),
    "backward_transposed2d_groups": backward_case([2, 4, 4, 3], [4, 3, 2, 3], [2, 2], [0, 1],
                                                  [1, 1], True, [1, 0], 2, [True, False, True]),
    "backward_transposed3d": backward_case([1, 2, 2, 3, 2], [2, 2, 2, 2, 2], [2, 1, 2],
                                           [0, 1, 0], [1, 1, 1], True, [1, 0, 1], 1,
                                           [True, True, True]),
    "backward_plain3d_bias_only": backward_case([2, 4, 3, 4, 3], [4, 1, 2, 2, 2], [1, 2, 1],
                                                [1, 0, 1], [1, 1, 2], False, [0, 0, 0], 4,
                                                [False, False, True]),
    "backward_strided_grad_output": backward_case([2, 3, 6, 5], [3, 4, 3, 3], [2, 2], [1, 1],
                                                  [1, 1], True, [1, 1], 1, [True, True, True],
                                                  grad_output_transposed=True),
}

CASES = {**FORWARD_CASES, **BACKWARD_CASES}


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float) -> None:
    fn, make_inputs, submodules, full = CASES[name]
    module = Op(fn, **submodules()).eval().requires_grad_(False)
    module = module.to(cuda.device, dtype)
    inputs = cuda.to_device(make_inputs(), dtype)
    expected = cuda.eager(module, inputs, allow_tf32=False)
    compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, require_full_compilation=full,
                            pass_through_build_failures=True)
    parts = cuda.segments(compiled)
    print(f"{name} {dtype}: {len(parts['engines'])} engine(s), PyTorch ops "
          f"{sorted(set(parts['torch_ops']))}")
    if full:
        cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
        assert parts["torch_segments"] == [], (
            f"{name} ({dtype}): left to PyTorch: {sorted(set(parts['torch_ops']))}")
    with torch.no_grad():
        actual = compiled(*inputs)
    actual_leaves, expected_leaves = _leaves(actual), _leaves(expected)
    assert len(actual_leaves) == len(expected_leaves), f"{name}: output count"
    for i, (a, e) in enumerate(zip(actual_leaves, expected_leaves)):
        assert a.device == e.device, f"{name} output {i}: on {a.device}"
        assert a.shape == e.shape, f"{name} output {i}: shape {tuple(a.shape)}"
        torch.testing.assert_close(a, e, rtol=tol, atol=tol, equal_nan=True,
                                   msg=lambda m, i=i: f"{name} ({dtype}) output {i}: {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_conv_direct_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_conv_direct_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)


# The direct kernels gather (no atomics): two runs of one engine agree bit for bit.
@pytest.mark.parametrize("name", ["backward_sample", "backward_plain2d_groups", "tconv3d"])
def test_conv_direct_is_deterministic(cuda, name):
    fn, make_inputs, submodules, _ = CASES[name]
    module = Op(fn, **submodules()).eval().requires_grad_(False).to(cuda.device)
    inputs = cuda.to_device(make_inputs(), torch.float32)
    compiled = cuda.compile(module, inputs, disable_tf32=True, min_block_size=1,
                            require_full_compilation=True, pass_through_build_failures=True)
    with torch.no_grad():
        first = [t.clone() for t in _leaves(compiled(*inputs))]
        second = _leaves(compiled(*inputs))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
