"""The movement ops on kiln's CUDA backend against eager on the same GPU: constant padding
(F.pad), torch.flip, Tensor.repeat, nn.PixelShuffle / nn.PixelUnshuffle, slice_scatter and the
``x[:, 1:3] = y`` mutations torch.export turns into it, and empty_strided.

Each case is a tiny module compiled with ``min_block_size=1, require_full_compilation=True`` (an
op the CUDA backend declines fails the compile, naming it) and ``pass_through_build_failures=True``
(an engine that fails to build raises), then compared with eager: FP32 with TF32 off at rtol =
atol = 1e-4, FP16 at 1e-2. The ops only move elements, so the results are in fact exact: NaN and
inf included (compared with equal_nan). Integer and bool inputs keep their dtype in both runs.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

FP32_TOL = 1e-4
FP16_TOL = 1e-2


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


_SPECIALS = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -2.5]


def specials(*shape):
    """randn(shape) with NaN, infinities and signed zeros in its first elements (as many as fit)."""
    x = torch.randn(shape)
    n = min(len(_SPECIALS), x.numel())
    x.view(-1)[:n] = torch.tensor(_SPECIALS[:n])
    return x


def _assign_columns(x, y):
    """x[:, 1:3] = y on a copy: torch.export writes clone, copy and slice_scatter."""
    z = x.clone()
    z[:, 1:3] = y
    return z


def _assign_strided(x, y):
    """z[..., ::2] = y on a computed tensor (a step-2 slice_scatter over the last dim)."""
    z = x * 2.0
    z[..., ::2] = y
    return z


def _assign_tail(x, y):
    """z[:, -3:] = y + 1: a negative start, the end INT64_MAX as export writes it."""
    z = x - 1.0
    z[:, -3:] = y + 1.0
    return z


# name -> () -> (module, example inputs on the CPU, FP32)
CASES = {
    # constant_pad_nd
    "pad_last_dim": lambda: (Fn(lambda m, x: F.pad(x, (1, 2), value=0.5)), (randn(3, 5),)),
    "pad_two_dims": lambda: (Fn(lambda m, x: F.pad(x, (1, 2, 3, 0), value=-1.0)),
                             (randn(2, 3, 5),)),
    "pad_negative_crops": lambda: (Fn(lambda m, x: F.pad(x, (-1, 2, 3, -2))), (randn(4, 6),)),
    "pad_larger_than_input": lambda: (Fn(lambda m, x: F.pad(x, (5, 7, 4, 9), value=2.0)),
                                      (randn(2, 3),)),
    "pad_every_dim": lambda: (Fn(lambda m, x: F.pad(x, (1, 1, 0, 2, 3, 0), value=1.5)),
                              (randn(2, 3, 4),)),
    "zero_pad2d": lambda: (Fn(lambda m, x: m.pad(x) * 2.0, pad=nn.ZeroPad2d((1, 2, 0, 3))),
                           (randn(2, 3, 8, 8),)),
    "pad_then_conv": lambda: (Fn(lambda m, x: m.conv(F.pad(x, (1, 1, 1, 1))),
                                 conv=nn.Conv2d(4, 8, 3)), (randn(2, 4, 9, 9),)),
    "pad_permuted_input": lambda: (Fn(lambda m, x: F.pad(x.permute(0, 2, 3, 1), (1, 1, 2, 0))),
                                   (randn(2, 3, 4, 5),)),
    "pad_nan_inf": lambda: (Fn(lambda m, x: F.pad(x, (2, 1), value=float("inf"))),
                            (specials(3, 7),)),
    "pad_nan_value": lambda: (Fn(lambda m, x: F.pad(x, (1, 1), value=float("nan"))),
                              (randn(2, 3),)),
    "pad_empty_input": lambda: (Fn(lambda m, x: F.pad(x, (1, 1, 2, 0), value=3.0)),
                                (randn(0, 4),)),
    "pad_int64": lambda: (Fn(lambda m, x: F.pad(x, (1, 2), value=7)),
                          (torch.randint(-100, 100, (3, 4)),)),
    "pad_int32_float_value": lambda: (Fn(lambda m, x: F.pad(x, (1, 0, 0, 1), value=2.75)),
                                      (torch.randint(-100, 100, (3, 4), dtype=torch.int32),)),
    "pad_uint8": lambda: (Fn(lambda m, x: F.pad(x, (2, 2), value=255)),
                          (torch.randint(0, 255, (3, 4), dtype=torch.uint8),)),
    "pad_bool": lambda: (Fn(lambda m, x: F.pad(x, (1, 1), value=True)),
                         (torch.rand(3, 4) > 0.5,)),
    # flip
    "flip_last": lambda: (Fn(lambda m, x: torch.flip(x, [-1])), (randn(3, 7),)),
    "flip_several_negative": lambda: (Fn(lambda m, x: torch.flip(x, [0, -1, 2])),
                                      (randn(2, 3, 4, 5),)),
    "flip_transposed_input": lambda: (Fn(lambda m, x: torch.flip(x.transpose(0, 1), [0])),
                                      (randn(5, 6),)),
    "flip_nan_inf": lambda: (Fn(lambda m, x: torch.flip(x, [0, 1])), (specials(3, 4),)),
    "flip_empty": lambda: (Fn(lambda m, x: torch.flip(x, [0])), (randn(0, 4),)),
    "flip_int64": lambda: (Fn(lambda m, x: torch.flip(x, [1])),
                           (torch.randint(-9, 9, (3, 5)),)),
    "flip_bool": lambda: (Fn(lambda m, x: torch.flip(x, [0])), (torch.rand(4, 3) > 0.5,)),
    # repeat
    "repeat_each_dim": lambda: (Fn(lambda m, x: x.repeat(3, 2)), (randn(2, 3),)),
    "repeat_adds_dims": lambda: (Fn(lambda m, x: x.repeat(2, 1, 3)), (randn(4, 6),)),
    "repeat_adds_two_dims": lambda: (Fn(lambda m, x: x.repeat(2, 3, 1, 2)), (randn(5,),)),
    "tile": lambda: (Fn(lambda m, x: x.tile(2, 1)), (randn(4, 6),)),
    "repeat_zero": lambda: (Fn(lambda m, x: x.repeat(2, 0)), (randn(3, 4),)),
    "repeat_transposed_input": lambda: (Fn(lambda m, x: x.t().repeat(2, 2)), (randn(3, 5),)),
    "repeat_nan_inf": lambda: (Fn(lambda m, x: x.repeat(1, 2)), (specials(2, 5),)),
    "repeat_int32": lambda: (Fn(lambda m, x: x.repeat(2, 2)),
                             (torch.randint(-9, 9, (2, 3), dtype=torch.int32),)),
    # pixel shuffle
    "pixel_shuffle": lambda: (Fn(lambda m, x: m.ps(x), ps=nn.PixelShuffle(2)),
                              (randn(2, 8, 5, 6),)),
    "pixel_shuffle_3": lambda: (Fn(lambda m, x: m.ps(x), ps=nn.PixelShuffle(3)),
                                (randn(1, 18, 4, 3),)),
    "pixel_shuffle_after_conv": lambda: (Fn(lambda m, x: m.ps(m.conv(x)), ps=nn.PixelShuffle(2),
                                            conv=nn.Conv2d(4, 16, 3, padding=1)),
                                         (randn(2, 4, 8, 8),)),
    "pixel_shuffle_no_batch": lambda: (Fn(lambda m, x: m.ps(x), ps=nn.PixelShuffle(2)),
                                       (randn(8, 3, 4),)),
    "pixel_unshuffle": lambda: (Fn(lambda m, x: m.pu(x), pu=nn.PixelUnshuffle(2)),
                                (randn(2, 3, 8, 6),)),
    "pixel_roundtrip": lambda: (Fn(lambda m, x: m.pu(m.ps(x)) - x, ps=nn.PixelShuffle(2),
                                   pu=nn.PixelUnshuffle(2)), (randn(2, 8, 3, 5),)),
    # slice_scatter
    "slice_scatter": lambda: (Fn(lambda m, x, y: torch.slice_scatter(x, y, 1, 1, 3)),
                              (randn(4, 6), randn(4, 2))),
    "slice_scatter_step": lambda: (Fn(lambda m, x, y: torch.slice_scatter(x, y, -1, 1, None, 2)),
                                   (randn(3, 4, 9), randn(3, 4, 4))),
    "slice_scatter_negative": lambda: (Fn(lambda m, x, y: torch.slice_scatter(x, y, 0, -3, -1)),
                                       (randn(6, 5), randn(2, 5))),
    "slice_scatter_nan_inf": lambda: (Fn(lambda m, x, y: torch.slice_scatter(x, y, 0, 1, 3)),
                                      (specials(4, 3), specials(2, 3))),
    "slice_scatter_int64": lambda: (Fn(lambda m, x, y: torch.slice_scatter(x, y, 1, 0, 2)),
                                    (torch.randint(-9, 9, (3, 4)), torch.randint(-9, 9, (3, 2)))),
    "assign_columns": lambda: (Fn(lambda m, x, y: _assign_columns(x, y)),
                               (randn(4, 6), randn(4, 2))),
    "assign_strided": lambda: (Fn(lambda m, x, y: _assign_strided(x, y)),
                               (randn(3, 8), randn(3, 4))),
    "assign_tail": lambda: (Fn(lambda m, x, y: _assign_tail(x, y)), (randn(2, 7), randn(2, 3))),
    "assign_permuted": lambda: (Fn(lambda m, x, y: _assign_columns(x.permute(1, 0, 2), y)),
                                (randn(3, 5, 4), randn(5, 2, 4))),
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
    assert actual.dtype == expected.dtype, f"{name}: {actual.dtype}, eager {expected.dtype}"
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, equal_nan=True,
                               msg=lambda m: f"{name} ({dtype}): {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_movement_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_movement_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)


def test_empty_strided_overwritten(cuda):
    """torch.empty_strided filled by a copy: kiln gives zeros where eager leaves garbage, and the
    copy overwrites them; the result must be eager's whichever backend runs which part."""
    def fn(m, x):
        out = torch.empty_strided((4, 6), (1, 4), device=x.device, dtype=x.dtype)
        out.copy_(x * 2.0)
        return out + 1.0

    module = Fn(fn).eval()
    inputs = cuda.to_device((randn(4, 6),), torch.float32)
    expected = cuda.eager(module, inputs)
    compiled = cuda.compile(module, inputs, enabled_precisions={torch.float32},
                            disable_tf32=True, min_block_size=1,
                            pass_through_build_failures=True)
    parts = cuda.segments(compiled)
    print(f"empty_strided: {len(parts['engines'])} engine(s), PyTorch ops "
          f"{sorted(set(parts['torch_ops']))}")
    assert "aten.empty_strided.default" not in parts["torch_ops"], (
        "empty_strided was left to PyTorch")
    with torch.no_grad():
        actual = compiled(*inputs)
    torch.testing.assert_close(actual, expected, rtol=FP32_TOL, atol=FP32_TOL)
