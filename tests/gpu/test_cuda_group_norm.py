"""Group norm, instance norm and batch-statistics batch norm on kiln's CUDA backend against eager
on the same GPU.

Each case is a tiny module exported with its inputs on the GPU (so the program records what
PyTorch's CUDA kernels return: native_group_norm's mean and rstd in the input's dtype) and compiled
with ``min_block_size=1`` and ``pass_through_build_failures=True``; the cases in ``TAKEN`` also
with ``require_full_compilation=True`` (every op on an engine). FP32 with TF32 off compares at
rtol = atol = 1e-4, FP16 at 1e-2, as test_cuda_ops.py; NaN where eager has NaN.

Training batch norm without running statistics (F.batch_norm(training=True) with none) becomes
_native_batch_norm_legit.no_stats, which lowering for the CUDA backend keeps whole (torch's
decomposition gives a NaN mean for a channel holding -inf, where eager CUDA gives -inf): those
cases must run on engines too.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

FP32_TOL = 1e-4
FP16_TOL = 1e-2

A = torch.ops.aten


class Fn(nn.Module):
    """A module from a function of its inputs (and of the submodules given as keywords)."""

    def __init__(self, fn, **submodules):
        super().__init__()
        self.fn = fn
        for name, module in submodules.items():
            setattr(self, name, module)

    def forward(self, *inputs):
        return self.fn(self, *inputs)


def randn(*shape):
    return torch.randn(shape)


def _affine(norm: nn.Module) -> nn.Module:
    """Weight and bias that are not the identity."""
    with torch.no_grad():
        if getattr(norm, "weight", None) is not None:
            norm.weight.normal_(1.0, 0.3)
            norm.bias.normal_(0.0, 0.3)
        if getattr(norm, "running_mean", None) is not None:
            norm.running_mean.normal_(0.0, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return norm


def _group_norm(groups: int, channels: int, affine: bool = True) -> nn.Module:
    return _affine(nn.GroupNorm(groups, channels, affine=affine))


def _instance_norm(channels: int, affine: bool, track: bool) -> nn.Module:
    return _affine(nn.InstanceNorm2d(channels, affine=affine, track_running_stats=track))


def _with_specials(x: torch.Tensor) -> torch.Tensor:
    """x with an inf in sample 0's first group and a NaN in sample 1's last: those groups
    normalize to NaN, the others stay finite."""
    x = x.clone()
    x[0, 0, 0, 0] = float("inf")
    x[1, -1, -1, -1] = float("nan")
    return x


def _constant_groups(n: int, c: int, h: int, w: int, groups: int) -> torch.Tensor:
    """Each (sample, group) one value, values whose sums do not divide back exactly.
    Small ones: eager's CUDA group norm computes (rstd * w) * x + (b - rstd * w * mean), whose
    rounding grows with rstd * x (rstd = 1/sqrt(eps) here), where kiln gives exactly b."""
    values = torch.arange(1, n * groups + 1, dtype=torch.float32) * 0.0373
    return values.view(n, groups, 1, 1, 1).expand(n, groups, c // groups, h, w) \
        .reshape(n, c, h, w).contiguous()


# name -> () -> (module, example inputs on the CPU, FP32)
CASES = {
    "group_norm": lambda: (_group_norm(4, 16), (randn(2, 16, 8, 8) * 2 + 1,)),
    "group_norm_no_affine": lambda: (_group_norm(2, 8, affine=False), (randn(2, 8, 5, 7),)),
    "group_norm_one_group": lambda: (_group_norm(1, 6), (randn(3, 6, 4, 4),)),
    "group_norm_3d": lambda: (_group_norm(3, 12), (randn(2, 12, 50),)),
    "group_norm_5d": lambda: (_group_norm(2, 4), (randn(2, 4, 3, 4, 5),)),
    "group_norm_2d": lambda: (_group_norm(2, 8), (randn(6, 8),)),
    "group_norm_large_groups": lambda: (_group_norm(2, 32), (randn(2, 32, 64, 64) + 3,)),
    "group_norm_constant": lambda: (_group_norm(4, 8), (_constant_groups(2, 8, 9, 9, 4),)),
    "group_norm_specials": lambda: (_group_norm(2, 4), (_with_specials(randn(2, 4, 3, 3)),)),
    "group_norm_empty_batch": lambda: (_group_norm(2, 4), (randn(0, 4, 3, 3),)),
    "f_group_norm": lambda: (Fn(lambda m, x, w, b: F.group_norm(x, 4, w, b, eps=1e-3)),
                             (randn(2, 8, 6, 6), randn(8), randn(8))),
    "f_group_norm_no_weight": lambda: (Fn(lambda m, x: F.group_norm(x, 2)), (randn(2, 8, 6, 6),)),
    # A permuted (channels-last) view into group norm: strided input.
    "group_norm_permuted_input": lambda: (
        Fn(lambda m, x: m.norm(x.permute(0, 3, 1, 2)), norm=_group_norm(4, 16)),
        (randn(2, 7, 9, 16),)),
    # In FP16 the convolution's output is NHWC: group norm reads it through its strides.
    "conv_group_norm": lambda: (
        Fn(lambda m, x: F.silu(m.norm(m.conv(x))), conv=nn.Conv2d(8, 32, 3, padding=1),
           norm=_group_norm(8, 32)), (randn(2, 8, 16, 16),)),
    "conv_group_norm_conv": lambda: (
        Fn(lambda m, x: m.conv2(m.norm(m.conv1(x))), conv1=nn.Conv2d(4, 16, 3, padding=1),
           norm=_group_norm(4, 16), conv2=nn.Conv2d(16, 8, 1)), (randn(2, 4, 12, 12),)),
    "native_group_norm_stats": lambda: (
        Fn(lambda m, x, w, b: A.native_group_norm.default(x, w, b, 2, 8, 25, 4, 1e-5)),
        (randn(2, 8, 5, 5) + 0.5, randn(8), randn(8))),
    "native_group_norm_mean_only": lambda: (
        Fn(lambda m, x: A.native_group_norm.default(x, None, None, 3, 6, 16, 3, 1e-5)[1]),
        (randn(3, 6, 4, 4),)),
    "instance_norm": lambda: (_instance_norm(6, affine=False, track=False), (randn(2, 6, 7, 7),)),
    "instance_norm_affine": lambda: (_instance_norm(6, affine=True, track=False),
                                     (randn(2, 6, 7, 7) * 3,)),
    "instance_norm_running_stats": lambda: (_instance_norm(6, affine=True, track=True),
                                            (randn(2, 6, 5, 5),)),
    "instance_norm_running_stats_no_affine": lambda: (_instance_norm(4, affine=False, track=True),
                                                      (randn(2, 4, 5, 5),)),
    "instance_norm_constant": lambda: (_instance_norm(4, affine=True, track=False),
                                       (_constant_groups(2, 4, 6, 6, 4),)),
    "conv_instance_norm": lambda: (
        Fn(lambda m, x: torch.relu(m.norm(m.conv(x))), conv=nn.Conv2d(3, 8, 3, padding=1),
           norm=_instance_norm(8, affine=True, track=False)), (randn(2, 3, 10, 10),)),
}

# Cases kiln must run entirely on engines (the others may leave ops to PyTorch).
TAKEN = set(CASES) - {"group_norm_empty_batch"}

# Training batch norm without running statistics, also run entirely on engines.
BATCH_STATS_CASES = {
    "batch_norm_training": lambda: (
        Fn(lambda m, x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5)),
        (randn(4, 6, 5, 5) + 1, randn(6), randn(6))),
    "batch_norm_training_no_affine": lambda: (
        Fn(lambda m, x: F.batch_norm(x, None, None, training=True)), (randn(8, 5, 3, 3),)),
    "batch_norm_training_2d": lambda: (
        Fn(lambda m, x: F.batch_norm(x, None, None, training=True)), (randn(16, 10),)),
    "native_batch_norm_no_stats": lambda: (
        Fn(lambda m, x, w, b: A._native_batch_norm_legit.no_stats(x, w, b, True, 0.1, 1e-5)),
        (randn(4, 3, 6, 6), randn(3), randn(3))),
    "native_batch_norm_no_stats_inf": lambda: (
        Fn(lambda m, x: A._native_batch_norm_legit.no_stats(x, None, None, True, 0.5, 1e-5)),
        (_with_infinities(randn(2, 3, 4)),)),
}


def _with_infinities(x: torch.Tensor) -> torch.Tensor:
    """Channel 0 holds a -inf, channel 1 a +inf and a -inf: eager's means are -inf and NaN."""
    x = x.clone()
    x[0, 0, 1] = float("-inf")
    x[1, 1, 0], x[0, 1, 2] = float("inf"), float("-inf")
    return x


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _run(cuda, name: str, make, dtype: torch.dtype, tol: float, full: bool) -> None:
    module, inputs = make()
    module = module.eval().requires_grad_(False).to(cuda.device, dtype)
    inputs = cuda.to_device(inputs, dtype)
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
        assert a.dtype == e.dtype, f"{name} output {i}: {a.dtype}, eager {e.dtype}"
        torch.testing.assert_close(a, e, rtol=tol, atol=tol, equal_nan=True,
                                   msg=lambda m, i=i: f"{name} ({dtype}) output {i}: {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_group_norm_fp32(cuda, name):
    _run(cuda, name, CASES[name], torch.float32, FP32_TOL, name in TAKEN)


@pytest.mark.parametrize("name", list(CASES))
def test_group_norm_fp16(cuda, name):
    _run(cuda, name, CASES[name], torch.float16, FP16_TOL, name in TAKEN)


@pytest.mark.parametrize("name", list(BATCH_STATS_CASES))
def test_batch_statistics_fp32(cuda, name):
    _run(cuda, name, BATCH_STATS_CASES[name], torch.float32, FP32_TOL, True)


@pytest.mark.parametrize("name", list(BATCH_STATS_CASES))
def test_batch_statistics_fp16(cuda, name):
    _run(cuda, name, BATCH_STATS_CASES[name], torch.float16, FP16_TOL, True)


def test_constant_groups_give_exactly_the_bias(cuda):
    """A constant group has variance exactly 0: the output is exactly the bias (eager's CUDA
    kernel, which computes rstd * w * x + (b - rstd * w * mean), is only close to it)."""
    norm = _group_norm(2, 4).to(cuda.device)
    x = cuda.to_device(_constant_groups(2, 4, 8, 8, 2))
    compiled = cuda.compile(Fn(lambda m, x: m.norm(x), norm=norm), (x,), min_block_size=1,
                            require_full_compilation=True, pass_through_build_failures=True,
                            disable_tf32=True)
    with torch.no_grad():
        out = compiled(x)
    out = out[0] if isinstance(out, (tuple, list)) else out
    expected = norm.bias.detach().view(1, 4, 1, 1).expand_as(out)
    assert torch.equal(out, expected), (out - expected).abs().max()
