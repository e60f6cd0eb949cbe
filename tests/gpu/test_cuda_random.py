"""rand, randn, randperm and native_dropout (in training) on kiln's CUDA backend.

Their values are random, not eager's (kiln draws from its own Philox generator on the GPU), so
each case checks what the op guarantees: shapes, dtypes and device; rand in [0, 1) (in FP16 too:
a draw never rounds up to 1) with U(0, 1)'s mean and variance; randn finite with N(0, 1)'s;
randperm a permutation of 0..n-1 in the requested dtype; dropout's output x / (1 - p) where its
mask is true and 0 where it is false, keeping about 1 - p of the elements. The moment bounds are
the conformance harness's (tests/conformance/compare.py): 6 standard errors plus the dtype's
rounding, so a correct generator fails about once in 5e8 checks and a wrong distribution fails
at once. Every compiled module is called three times (the first run, the run that captures a
CUDA graph, a replay): each call must draw new numbers.

Each case is a tiny module exported with its inputs on the GPU and compiled with
``min_block_size=1``, ``require_full_compilation=True`` (an op the backend declines fails the
compile) and ``pass_through_build_failures=True``, in FP32 and FP16.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

A = torch.ops.aten
SIGMAS = 6.0
CALLS = 3


class Op(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def _compile(cuda, fn, inputs, dtype, full=True):
    import kiln

    module = Op(fn).eval()
    try:
        compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                                min_block_size=1, require_full_compilation=full,
                                pass_through_build_failures=True)
    except kiln.UnsupportedError as error:
        pytest.fail(f"the CUDA backend does not take it ({dtype}): {error}")
    if full:
        parts = cuda.assert_runs_engines_on_gpu(compiled, f"{dtype}")
        assert parts["torch_segments"] == [], f"left to PyTorch: {sorted(set(parts['torch_ops']))}"
    return compiled


def _calls(compiled, inputs) -> list:
    with torch.no_grad():
        return [compiled(*inputs) for _ in range(CALLS)]


def _step(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps)


def _check_moments(name: str, values: torch.Tensor, mean: float, variance: float,
                   fourth_moment: float) -> None:
    """compare.py's _check_moments: the sample mean and biased variance within SIGMAS standard
    errors of the distribution's, plus the dtype's rounding."""
    x = values.detach().double().cpu().reshape(-1)
    n = x.numel()
    step = _step(values.dtype) * max(1.0, math.sqrt(variance) * 4)
    mean_bound = SIGMAS * math.sqrt(variance / n) + step
    assert abs(float(x.mean()) - mean) <= mean_bound, (
        f"{name}: mean of {n} values {float(x.mean()):.5g}, expected {mean} +- {mean_bound:.3g}")
    sample_variance = float(((x - x.mean()) ** 2).mean())
    variance_bound = SIGMAS * math.sqrt((fourth_moment - variance ** 2) / n) + variance / n + \
        2 * step * math.sqrt(variance) + step ** 2
    assert abs(sample_variance - variance) <= variance_bound, (
        f"{name}: variance {sample_variance:.5g}, expected {variance} +- {variance_bound:.3g}")


def _assert_all_differ(name: str, results: list) -> None:
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            assert not torch.equal(results[i], results[j]), (
                f"{name}: calls {i} and {j} drew the same numbers")


def _assert_meta(name, t, shape, dtype, device) -> None:
    assert isinstance(t, torch.Tensor), f"{name}: {type(t).__name__}"
    assert t.shape == torch.Size(shape), f"{name}: shape {tuple(t.shape)}, expected {shape}"
    assert t.dtype == dtype, f"{name}: {t.dtype}, expected {dtype}"
    assert t.device == device, f"{name}: on {t.device}"


# --- rand, randn ---------------------------------------------------------------------------------

SHAPES = [(256, 1024), (3, 5, 7), (1,)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("shape", SHAPES, ids=["large", "odd", "one"])
def test_rand(cuda, dtype, shape):
    x = cuda.to_device(torch.randn(4), dtype)
    compiled = _compile(cuda, lambda x: (torch.rand(shape, device=x.device, dtype=x.dtype), x * 2),
                        (x,), dtype)
    results = [out[0] for out in _calls(compiled, (x,))]
    for i, r in enumerate(results):
        name = f"rand{shape} {dtype} call {i}"
        _assert_meta(name, r, shape, dtype, cuda.device)
        assert bool(((r >= 0) & (r < 1)).all()), f"{name}: values outside [0, 1): " \
            f"min {r.min().item()}, max {r.max().item()}"
        if r.numel() >= 100:
            # U(0, 1): mean 1/2, variance 1/12, fourth central moment 1/80.
            _check_moments(name, r, 0.5, 1 / 12, 1 / 80)
    if results[0].numel() >= 8:
        _assert_all_differ(f"rand{shape} {dtype}", results)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("shape", SHAPES, ids=["large", "odd", "one"])
def test_randn(cuda, dtype, shape):
    x = cuda.to_device(torch.randn(4), dtype)
    compiled = _compile(cuda, lambda x: (torch.randn(shape, device=x.device, dtype=x.dtype), x * 2),
                        (x,), dtype)
    results = [out[0] for out in _calls(compiled, (x,))]
    for i, r in enumerate(results):
        name = f"randn{shape} {dtype} call {i}"
        _assert_meta(name, r, shape, dtype, cuda.device)
        assert bool(torch.isfinite(r).all()), f"{name}: non-finite values"
        if r.numel() >= 100:
            # N(0, 1): mean 0, variance 1, fourth central moment 3.
            _check_moments(name, r, 0.0, 1.0, 3.0)
            tail = float((r.double().abs() > 3).double().mean())
            assert abs(tail - 0.0027) < SIGMAS * math.sqrt(0.0027 / r.numel()) + 5e-4, (
                f"{name}: {tail:.4g} of the values beyond 3 sigma, expected 0.0027")
    if results[0].numel() >= 8:
        _assert_all_differ(f"randn{shape} {dtype}", results)


# --- randperm ------------------------------------------------------------------------------------

# (n, dtype): the conformance samples' n = 0, 1, 37 in int64 and float32, and the block's limit.
RANDPERM_CASES = [(0, torch.int64), (1, torch.int64), (37, torch.int64), (4096, torch.int64),
                  (0, torch.float32), (1, torch.float32), (37, torch.float32),
                  (37, torch.int32), (4096, torch.int32)]


@pytest.mark.parametrize("engine_dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("n, dtype", RANDPERM_CASES,
                         ids=[f"{n}-{str(t).replace('torch.', '')}" for n, t in RANDPERM_CASES])
def test_randperm(cuda, engine_dtype, n, dtype):
    x = cuda.to_device(torch.randn(4), engine_dtype)
    compiled = _compile(cuda, lambda x: (torch.randperm(n, dtype=dtype, device=x.device), x * 2),
                        (x,), engine_dtype)
    results = [out[0] for out in _calls(compiled, (x,))]
    for i, r in enumerate(results):
        name = f"randperm({n}, {dtype}) call {i}"
        # The requested dtype stays, whatever precision the engine runs in.
        _assert_meta(name, r, (n,), dtype, cuda.device)
        expected = torch.arange(n, dtype=dtype, device=r.device)
        assert torch.equal(r.sort().values, expected), f"{name}: not a permutation of 0..n-1"
    if n >= 37:
        _assert_all_differ(f"randperm({n})", results)
        assert not torch.equal(results[0], torch.arange(n, dtype=dtype, device=cuda.device))


def test_randperm_beyond_one_block_is_declined(cuda):
    """randperm of more than 4096 is left to PyTorch: require_full_compilation says so."""
    import kiln

    x = cuda.to_device(torch.randn(4))
    module = Op(lambda x: (torch.randperm(5000, device=x.device), x * 2)).eval()
    with pytest.raises(kiln.UnsupportedError, match="randperm"):
        cuda.compile(module, (x,), min_block_size=1, require_full_compilation=True,
                     pass_through_build_failures=True)


# --- dropout -------------------------------------------------------------------------------------

TOL = {torch.float32: 1e-6, torch.float16: 1e-3}


def _check_dropout(name: str, x: torch.Tensor, out: torch.Tensor, mask: torch.Tensor,
                   p: float) -> None:
    _assert_meta(f"{name} output", out, tuple(x.shape), x.dtype, x.device)
    _assert_meta(f"{name} mask", mask, tuple(x.shape), torch.bool, x.device)
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    expected = x.double() * mask.double() * scale
    tol = TOL[x.dtype]
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol, equal_nan=True,
                               msg=lambda m: f"{name}: output is not x * mask / (1 - p): {m}")
    # Kept elements are x / (1 - p), dropped ones exactly zero (x is finite here).
    assert bool((out[~mask] == 0).all()), f"{name}: a dropped element is not 0"
    n = mask.numel()
    kept = float(mask.double().mean())
    bound = SIGMAS * math.sqrt(p * (1 - p) / n) + 1e-12
    assert abs(kept - (1 - p)) <= bound, f"{name}: kept {kept:.4g}, expected {1 - p} +- {bound:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1.0])
def test_native_dropout(cuda, dtype, p):
    x = cuda.to_device(torch.randn(64, 33, 17), dtype)
    compiled = _compile(cuda, lambda x: A.native_dropout.default(x, p, True), (x,), dtype)
    masks = []
    for i, (out, mask) in enumerate(_calls(compiled, (x,))):
        _check_dropout(f"native_dropout p={p} {dtype} call {i}", x, out, mask, p)
        masks.append(mask)
    if p < 1:
        _assert_all_differ(f"native_dropout p={p} {dtype} masks", masks)
    else:
        assert not bool(masks[0].any()), "p = 1 keeps nothing"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_dropout_output_only(cuda, dtype):
    """F.dropout in training, its mask unused (what a model gives): torch.export may lower it to
    native_dropout or keep aten.dropout; either way the output keeps x / (1 - p) or 0."""
    p = 0.3
    x = cuda.to_device(torch.rand(128, 64) + 0.5, dtype)  # no zeros: a 0 in the output is a drop
    compiled = _compile(cuda, lambda x: F.dropout(x, p, training=True) * 1, (x,), dtype,
                        full=False)
    outputs = [out[0] if isinstance(out, (tuple, list)) else out for out in _calls(compiled, (x,))]
    for i, out in enumerate(outputs):
        name = f"F.dropout {dtype} call {i}"
        mask = out != 0
        _check_dropout(name, x, out, mask, p)
    _assert_all_differ(f"F.dropout {dtype}", outputs)


@pytest.mark.parametrize("train, p", [(False, 0.5), (True, 0.0)], ids=["eval", "p0"])
def test_identity_dropout_still_runs(cuda, train, p):
    """Dropout outside training or with p = 0 is the identity: the random family declines it and
    it keeps the path that already ran it; the result is x and an all-true mask."""
    x = cuda.to_device(torch.randn(8, 9))
    compiled = _compile(cuda, lambda x: A.native_dropout.default(x, p, train), (x,),
                        torch.float32, full=False)
    with torch.no_grad():
        out, mask = compiled(x)
    torch.testing.assert_close(out, x, rtol=0, atol=0)
    assert bool(mask.all())
