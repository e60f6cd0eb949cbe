"""The resample family on kiln's CUDA backend against eager on the same GPU: F.interpolate
(nearest, nearest-exact, bilinear, linear; sizes and scale factors; align_corners both ways),
nn.Upsample, torch.cdist (p = 0, 1, 2, inf, 3; few rows and more than 25, where eager switches to
its matrix-product form), F.pdist and F.fold.

Each case is a tiny module exported with its inputs on the GPU and compiled with
``min_block_size=1`` and ``pass_through_build_failures=True`` (an engine that fails to build
raises); cases of ops the resample family takes also use ``require_full_compilation=True`` (an op
the backend declines fails the compile) and must run on an engine. FP32 with TF32 off compares at
rtol = atol = 1e-4, FP16 at 1e-2, NaN equal to NaN. Where eager has no FP16 kernel (its direct
cdist and pdist kernels are float/double only), the FP16 case is skipped saying so.
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


NAN, INF = float("nan"), float("inf")


def _with(x, values: dict):
    """x (contiguous) with the elements at the given flat indices set."""
    x = x.clone()
    flat = x.view(-1)
    for index, value in values.items():
        flat[index] = value
    return x


def _nan_inf(*shape):
    """Random values with a NaN, an inf and a -inf (flat elements 5, 11, 12)."""
    return _with(randn(*shape), {5: NAN, 11: INF, 12: -INF})


def _nhwc(*shape):
    """A [N, C, H, W] view of channels-last storage (non-contiguous)."""
    n, c, h, w = shape
    return randn(n, h, w, c).permute(0, 3, 1, 2)


def interp(**kwargs):
    return lambda m, x: F.interpolate(x, **kwargs)


# name -> (fn(module, *inputs), () -> inputs on the CPU in FP32, full): `full` cases must compile
# whole and run on an engine. kiln's lowering keeps upsample_nearest2d and upsample_bilinear2d
# whole; torch.export's decompositions lower the 1-D and nearest-exact resizes to index.Tensor,
# and torch.cdist's matrix-product form (p = 2 with more than 25 rows, or compute_mode
# "use_mm_for_euclid_dist") to mm / bmm and pointwise ops: those cases check results only.
CASES = {
    # nearest
    "nearest_scale_2": (interp(scale_factor=2, mode="nearest"), lambda: (randn(2, 3, 5, 7),),
                        True),
    "nearest_size": (interp(size=(8, 11), mode="nearest"), lambda: (randn(2, 3, 5, 7),), True),
    "nearest_down": (interp(size=(3, 4), mode="nearest"), lambda: (randn(1, 4, 9, 10),), True),
    "nearest_scale_1_7": (interp(scale_factor=(1.7, 0.6), mode="nearest"),
                          lambda: (randn(1, 2, 6, 10),), True),
    "nearest_scale_keeps_size": (interp(scale_factor=1.3, mode="nearest"),
                                 lambda: (randn(1, 2, 3, 3),), True),
    "nearest_nan_inf": (interp(scale_factor=2, mode="nearest"), lambda: (_nan_inf(1, 2, 4, 4),),
                        True),
    "nearest_nhwc_input": (interp(scale_factor=2, mode="nearest"), lambda: (_nhwc(2, 8, 5, 6),),
                           True),
    "nearest_1d": (interp(scale_factor=3, mode="nearest"), lambda: (randn(2, 3, 7),), False),
    "nearest_exact": (interp(scale_factor=(1.5, 0.75), mode="nearest-exact"),
                      lambda: (randn(1, 3, 6, 8),), False),
    "upsample_module": (lambda m, x: m.up(x), lambda: (randn(1, 3, 4, 4),), True),
    "nearest_empty_batch": (interp(scale_factor=2, mode="nearest"), lambda: (randn(0, 3, 4, 4),),
                            False),
    # bilinear / linear
    "bilinear_size": (interp(size=(9, 11), mode="bilinear", align_corners=False),
                      lambda: (randn(2, 3, 5, 7),), True),
    "bilinear_size_corners": (interp(size=(9, 11), mode="bilinear", align_corners=True),
                              lambda: (randn(2, 3, 5, 7),), True),
    "bilinear_scale": (interp(scale_factor=2, mode="bilinear"), lambda: (randn(1, 4, 6, 6),), True),
    "bilinear_scale_1_5_corners": (interp(scale_factor=1.5, mode="bilinear", align_corners=True),
                                   lambda: (randn(1, 4, 6, 6),), True),
    "bilinear_down": (interp(size=(4, 3), mode="bilinear"), lambda: (randn(2, 5, 9, 10),), True),
    "bilinear_nan_inf": (interp(size=(7, 9), mode="bilinear"), lambda: (_nan_inf(1, 2, 4, 5),),
                         True),
    "bilinear_rows_unchanged_nan": (interp(size=(4, 9), mode="bilinear"),
                                    lambda: (_with(randn(1, 1, 4, 5), {6: NAN}),), True),
    "bilinear_same_size": (interp(size=(4, 5), mode="bilinear"), lambda: (_nan_inf(1, 2, 4, 5),),
                           True),
    "bilinear_nhwc_input": (interp(scale_factor=2, mode="bilinear"),
                            lambda: (_nhwc(2, 16, 5, 6),), True),
    "linear_1d": (interp(scale_factor=2.5, mode="linear"), lambda: (randn(2, 3, 6),), False),
    "bilinear_after_conv": (lambda m, x: F.interpolate(m.conv(x), scale_factor=2, mode="bilinear"),
                            lambda: (randn(1, 4, 8, 8),), True),
    # distances
    **{f"cdist_p{p}_small": (lambda m, a, b, p=p: torch.cdist(a, b, p=p),
                             lambda: (randn(2, 5, 7), randn(2, 4, 7)), True)
       for p in (0.0, 1.0, 2.0, INF, 3.0)},
    **{f"cdist_p{p}_30_rows": (lambda m, a, b, p=p: torch.cdist(a, b, p=p),
                               lambda: (randn(1, 30, 9), randn(3, 6, 9)), p != 2.0)
       for p in (0.0, 1.0, 2.0, INF, 3.0)},
    "cdist_mm_mode": (lambda m, a, b: torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
                      lambda: (randn(4, 8), randn(3, 8)), False),
    "cdist_no_mm_mode": (
        lambda m, a, b: torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist"),
        lambda: (randn(40, 8), randn(30, 8)), True),
    "cdist_transposed_input": (lambda m, a, b: torch.cdist(a, b.transpose(-1, -2), p=1.0),
                               lambda: (randn(2, 5, 7), randn(2, 7, 6)), True),
    # eager's CUDA kernels: p = 0 counts a NaN difference, p = inf skips it, p = 2 spreads it.
    **{f"cdist_nan_p{p}": (lambda m, a, b, p=p: torch.cdist(a, b, p=p),
                           lambda: (_with(randn(3, 6), {2: NAN, 9: INF}), randn(4, 6)), True)
       for p in (0.0, 2.0, INF)},
    "cdist_nan_30_rows": (lambda m, a, b: torch.cdist(a, b),
                          lambda: (_with(randn(30, 6), {2: NAN}), randn(4, 6)), False),
    "pdist_p2": (lambda m, x: F.pdist(x), lambda: (randn(7, 9),), True),
    "pdist_p1": (lambda m, x: F.pdist(x, p=1), lambda: (randn(37, 300),), True),
    "pdist_pinf": (lambda m, x: F.pdist(x, p=INF), lambda: (randn(6, 5),), True),
    "pdist_p3": (lambda m, x: F.pdist(x, p=3), lambda: (randn(6, 5),), True),
    # F.fold: torch.export's default decompositions lower aten.col2im (kiln keeps it whole only
    # once its shape inference exists), so these may run as other kernels.
    "fold": (lambda m, x: F.fold(x, output_size=(5, 6), kernel_size=2),
             lambda: (randn(2, 12, 20),), False),
    "fold_strided_dilated_padded": (
        lambda m, x: F.fold(x, output_size=(9, 8), kernel_size=3, dilation=2, padding=1, stride=2),
        lambda: (randn(1, 18, 12),), False),
}

_SUBMODULES = {
    "upsample_module": lambda: {"up": torch.nn.Upsample(scale_factor=2.5, mode="nearest")},
    "bilinear_after_conv": lambda: {"conv": torch.nn.Conv2d(4, 4, 3, padding=1)},
}


def _leaves(output):
    return [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float) -> None:
    fn, make_inputs, full = CASES[name]
    module = Op(fn, **_SUBMODULES.get(name, lambda: {})()).eval().requires_grad_(False)
    module = module.to(cuda.device, dtype)
    inputs = cuda.to_device(make_inputs(), dtype)
    try:
        expected = cuda.eager(module, inputs, allow_tf32=False)
    except (RuntimeError, NotImplementedError) as error:
        if dtype == torch.float16 and "Half" in str(error):
            pytest.skip(f"eager has no FP16 CUDA kernel here: {str(error)[:160]}")
        raise
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
def test_resample_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_resample_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)


# Nearest resizes copy elements: kiln's must equal eager's bit for bit, NaN and inf included.
@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("nearest") and CASES[n][2]])
def test_nearest_is_exact(cuda, name):
    fn, make_inputs, _ = CASES[name]
    module = Op(fn).eval().to(cuda.device)
    inputs = cuda.to_device(make_inputs(), torch.float32)
    expected = cuda.eager(module, inputs)
    compiled = cuda.compile(module, inputs, min_block_size=1, require_full_compilation=True,
                            pass_through_build_failures=True)
    with torch.no_grad():
        actual = compiled(*inputs)
    actual = actual[0] if isinstance(actual, (tuple, list)) else actual
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
