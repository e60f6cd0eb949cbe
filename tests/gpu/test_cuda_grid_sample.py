"""The grid_sample family on kiln's CUDA backend against eager on the same GPU:
aten.grid_sampler_2d with every interpolation (bilinear, nearest, bicubic) and padding (zeros,
border, reflection), align_corners both ways, NaN / inf grid points and pixels, and
non-contiguous inputs, in FP32 and FP16.

The module calls aten.grid_sampler_2d itself: F.grid_sample may take cuDNN's grid sampler for
bilinear / zeros / align_corners on CUDA, an op kiln does not run. Each case must compile whole
(``require_full_compilation=True``) and run on an engine. FP32 compares at rtol = atol = 1e-4,
FP16 at 1e-2, NaN equal to NaN.
"""
from __future__ import annotations

import pytest
import torch

FP32_TOL = 1e-4
FP16_TOL = 1e-2
NAN, INF = float("nan"), float("inf")


class Sample(torch.nn.Module):
    def __init__(self, mode: int, padding: int, align_corners: bool):
        super().__init__()
        self.args = (mode, padding, align_corners)

    def forward(self, x, grid):
        return torch.ops.aten.grid_sampler_2d.default(x, grid, *self.args)


def _grid(n, h, w, spread=1.2):
    return (torch.rand(n, h, w, 2) * 2 - 1) * spread


def _poked_grid(n, h, w):
    g = _grid(n, h, w)
    g[0, 0, 0, 0] = NAN
    g[0, 0, 1, 1] = INF
    g[0, 1, 0, 0] = -INF
    return g


def _poked_input(*shape):
    x = torch.randn(shape)
    x.view(-1)[7] = NAN
    return x


INPUTS = {
    "plain": lambda: (torch.randn(2, 3, 5, 20), _grid(2, 13, 10)),
    "nan_inf": lambda: (_poked_input(2, 3, 5, 20), _poked_grid(2, 13, 10)),
    "non_contiguous": lambda: (torch.randn(2, 20, 5, 3).permute(0, 3, 2, 1),
                               _grid(2, 10, 13).transpose(1, 2)),
}
CASES = [(mode, padding, align, inputs)
         for mode in (0, 1, 2) for padding in (0, 1, 2) for align in (False, True)
         for inputs in INPUTS]


def _run(cuda, mode, padding, align, inputs, dtype, tol):
    module = Sample(mode, padding, align).eval()
    args = cuda.to_device(INPUTS[inputs](), dtype)
    expected = cuda.eager(module, args)
    compiled = cuda.compile(module, args, enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, require_full_compilation=True,
                            pass_through_build_failures=True)
    cuda.assert_runs_engines_on_gpu(compiled, f"grid_sample {mode}/{padding}/{align} {dtype}")
    with torch.no_grad():
        actual = compiled(*args)
    actual = actual[0] if isinstance(actual, (tuple, list)) else actual
    assert actual.shape == expected.shape
    # Nearest copies pixels: exact.
    t = 0.0 if mode == 1 else tol
    torch.testing.assert_close(actual, expected, rtol=t, atol=t, equal_nan=True)


@pytest.mark.parametrize("mode,padding,align,inputs", CASES)
def test_grid_sample_fp32(cuda, mode, padding, align, inputs):
    _run(cuda, mode, padding, align, inputs, torch.float32, FP32_TOL)


@pytest.mark.parametrize("mode,padding,align,inputs", CASES)
def test_grid_sample_fp16(cuda, mode, padding, align, inputs):
    _run(cuda, mode, padding, align, inputs, torch.float16, FP16_TOL)
