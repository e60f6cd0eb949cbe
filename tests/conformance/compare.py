"""Comparing kiln's outputs with eager's: tolerances per dtype, NaN and inf, properties of
outputs that are not a function of the inputs."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import torch

from conformance.samples import Sample


@dataclasses.dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


# |kiln - eager| <= atol + rtol * |eager|, per element, for floating outputs. Integer and bool
# outputs must be equal. NaN must be NaN where eager has NaN and only there; an infinity must be
# the same infinity.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    # kiln's per-op contract for fp32 engines (docs: "match eager per op within rtol = atol =
    # 1e-4"): room for a different accumulation order and for libm vs. kiln's own
    # transcendental functions, far below any wrong answer.
    torch.float32: Tolerance(rtol=1e-4, atol=1e-4),
    # 16-bit floats: kiln computes in float and rounds once to the storage type
    # (docs/adding-an-op.md), as eager's kernels mostly do, so a correct result is at most one
    # rounding step (one ulp) from eager's: 2**-10 relative for fp16's 10 mantissa bits, 2**-7
    # for bf16's 7. The atol covers results near zero, where an ulp is smaller than a
    # difference in the float computation before the rounding.
    torch.float16: Tolerance(rtol=2.0 ** -10, atol=1e-5),
    torch.bfloat16: Tolerance(rtol=2.0 ** -7, atol=1e-5),
    # float64 appears only as an output of some ops (e.g. a dtype= argument).
    torch.float64: Tolerance(rtol=1e-7, atol=1e-7),
}

# Where kiln does not match eager at the sample's dtype, it is compared once more with eager run
# in a wider type (the floating inputs widened, the result rounded back to the sample's dtype).
# Eager's 16-bit CPU kernels sometimes round intermediates or Scalar operands to the storage type
# (fp16 ``x - 0.9329`` subtracts 0.93310546875) and its fp32 vectorized paths have non-finite
# quirks (gelu(+inf) is NaN in fp32, +inf in fp64); kiln computes in float and rounds once, as
# its docs promise. Matching the wider computation is a pass, noted with eager's own result.
WIDER_REFERENCES: dict[torch.dtype, tuple[torch.dtype, ...]] = {
    torch.float16: (torch.float32, torch.float64),
    torch.bfloat16: (torch.float32, torch.float64),
    torch.float32: (torch.float64,),
}


@dataclasses.dataclass
class Comparison:
    """The verdict on one output (or all of a sample's): ok, else why, and the largest
    |kiln - eager| over the finite elements where there is one."""

    ok: bool
    reason: str = ""
    max_abs_err: Optional[float] = None


def _first_index(mask: torch.Tensor) -> tuple:
    flat = int(mask.reshape(-1).nonzero()[0])
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), mask.shape)) \
        if mask.dim() else ()


def compare_tensor(actual: torch.Tensor, expected: torch.Tensor) -> Comparison:
    """Same dtype and shape; exact for integer and bool; NaN and inf where eager has them; the
    dtype's tolerance elsewhere."""
    if not isinstance(actual, torch.Tensor):
        return Comparison(False, f"expected a tensor, found {type(actual).__name__}")
    if actual.dtype != expected.dtype:
        return Comparison(False, f"dtype {actual.dtype} != eager {expected.dtype}")
    if actual.shape != expected.shape:
        return Comparison(False, f"shape {list(actual.shape)} != eager {list(expected.shape)}")
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if expected.numel() == 0:
        return Comparison(True, max_abs_err=0.0)
    if expected.is_complex():
        actual, expected = torch.view_as_real(actual), torch.view_as_real(expected)
    if not expected.is_floating_point():
        wrong = actual != expected
        if bool(wrong.any()):
            at = _first_index(wrong)
            count = int(wrong.sum())
            diff = (actual.to(torch.float64) - expected.to(torch.float64)).abs().max().item()
            return Comparison(False, f"{count} of {expected.numel()} elements differ; at "
                                     f"{list(at)} kiln {actual[at].item()!r} vs eager "
                                     f"{expected[at].item()!r}",
                              max_abs_err=diff)
        return Comparison(True, max_abs_err=0.0)
    tolerance = TOLERANCES[expected.dtype]
    a, e = actual.to(torch.float64), expected.to(torch.float64)
    nan_wrong = torch.isnan(a) != torch.isnan(e)
    if bool(nan_wrong.any()):
        at = _first_index(nan_wrong)
        return Comparison(False, f"NaN mismatch at {list(at)}: kiln {a[at].item()!r} vs eager "
                                 f"{e[at].item()!r} ({int(nan_wrong.sum())} elements)",
                          max_abs_err=math.inf)
    infinite = (torch.isinf(a) | torch.isinf(e)) & ~torch.isnan(e)
    inf_wrong = infinite & (a != e)
    if bool(inf_wrong.any()):
        at = _first_index(inf_wrong)
        return Comparison(False, f"inf mismatch at {list(at)}: kiln {a[at].item()!r} vs eager "
                                 f"{e[at].item()!r} ({int(inf_wrong.sum())} elements)",
                          max_abs_err=math.inf)
    finite = torch.isfinite(e)
    error = torch.where(finite, (a - e).abs(), torch.zeros_like(a))
    max_abs_err = float(error.max())
    wrong = error > tolerance.atol + tolerance.rtol * e.abs()
    if bool(wrong.any()):
        at = _first_index(wrong & finite)
        return Comparison(False, f"{int(wrong.sum())} of {e.numel()} elements beyond rtol="
                                 f"{tolerance.rtol:.3g} atol={tolerance.atol:.3g}; at {list(at)} "
                                 f"kiln {a[at].item()!r} vs eager {e[at].item()!r}",
                          max_abs_err=max_abs_err)
    return Comparison(True, max_abs_err=max_abs_err)


def compare_value(actual: Any, expected: Any) -> Comparison:
    if isinstance(expected, torch.Tensor):
        return compare_tensor(actual, expected)
    if isinstance(expected, float):
        if isinstance(actual, torch.Tensor):
            actual = actual.item()
        same = (math.isnan(expected) and math.isnan(actual)) or \
            abs(actual - expected) <= 1e-4 + 1e-4 * abs(expected)
        return Comparison(same, "" if same else f"kiln {actual!r} vs eager {expected!r}",
                          abs(actual - expected) if not math.isnan(expected) else None)
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    same = actual == expected
    return Comparison(bool(same), "" if same else f"kiln {actual!r} vs eager {expected!r}")


def check_properties(sample: Sample, actual: list, expected: list) -> Comparison:
    """For outputs that are not a function of the inputs: shapes and dtypes, and what the op
    guarantees about its values."""
    if len(actual) != len(expected):
        return Comparison(False, f"{len(actual)} outputs, eager {len(expected)}")
    for a, e in zip(actual, expected):
        if isinstance(e, torch.Tensor):
            if not isinstance(a, torch.Tensor) or a.dtype != e.dtype or a.shape != e.shape:
                return Comparison(False, f"kiln {_meta(a)} vs eager {_meta(e)}")
    a = actual[0].detach().cpu() if actual and isinstance(actual[0], torch.Tensor) else None
    if a is None or a.numel() == 0:
        return Comparison(True)
    if sample.op == "aten.rand.default":
        if not bool(((a >= 0) & (a < 1)).all()):
            return Comparison(False, "rand: values outside [0, 1)")
        # U(0, 1): mean 1/2, variance 1/12, fourth central moment 1/80.
        return _check_moments("rand", a, 0.5, 1 / 12, 1 / 80)
    if sample.op == "aten.randn.default":
        if not bool(torch.isfinite(a).all()):
            return Comparison(False, "randn: non-finite values")
        # N(0, 1): mean 0, variance 1, fourth central moment 3.
        return _check_moments("randn", a, 0.0, 1.0, 3.0)
    if sample.op == "aten.randperm.default" and \
            not torch.equal(a.sort().values, torch.arange(a.numel(), dtype=a.dtype)):
        return Comparison(False, "randperm: not a permutation of 0..n-1")
    if sample.op == "aten.native_dropout.default":
        return _check_dropout(sample, actual)
    return Comparison(True)


# How many standard errors a sample statistic may stray from its expected value. A correct
# generator fails a bound of 6 standard errors about once in 5e8 checks (normal approximation);
# a wrong distribution (a constant, another range, a wrong scale) fails it once there are a few
# dozen elements.
_SIGMAS = 6.0


def _check_moments(name: str, values: torch.Tensor, mean: float, variance: float,
                   fourth_moment: float) -> Comparison:
    """The sample mean and (biased) variance of ``values`` within _SIGMAS standard errors of the
    distribution's, plus the rounding of the values' dtype (a float16 draw is a multiple of 2^-11:
    its mean is off by up to half a step, its variance by the step's square / 12)."""
    x = values.to(torch.float64).reshape(-1)
    n = x.numel()
    step = _dtype_step(values.dtype) * max(1.0, math.sqrt(variance) * 4)
    mean_error = abs(float(x.mean()) - mean)
    mean_bound = _SIGMAS * math.sqrt(variance / n) + step
    if mean_error > mean_bound:
        return Comparison(False, f"{name}: mean of {n} values {float(x.mean()):.4g}, expected "
                                 f"{mean:.4g} +- {mean_bound:.3g}")
    sample_variance = float(((x - x.mean()) ** 2).mean())
    # Var of the sample variance ~ (mu4 - sigma^4) / n; the biased estimator is low by sigma^2/n.
    variance_bound = _SIGMAS * math.sqrt((fourth_moment - variance ** 2) / n) + variance / n + \
        2 * step * math.sqrt(variance) + step ** 2
    if abs(sample_variance - variance) > variance_bound:
        return Comparison(False, f"{name}: variance of {n} values {sample_variance:.4g}, "
                                 f"expected {variance:.4g} +- {variance_bound:.3g}")
    return Comparison(True)


def _dtype_step(dtype: torch.dtype) -> float:
    """The spacing of ``dtype``'s values just below 1 (its rounding near the values drawn)."""
    return float(torch.finfo(dtype).eps) if dtype.is_floating_point else 1.0


def _check_dropout(sample: Sample, actual: list) -> Comparison:
    """native_dropout(input, p, train): the mask is bool; the output is input * mask * (1 / (1 - p))
    in training (train=None counts as training; as eager computes it, a dropped NaN or inf
    gives NaN), the input itself otherwise; the fraction kept is within _SIGMAS binomial
    standard errors of 1 - p (all of them outside training)."""
    x = sample.args[0].detach().cpu().to(torch.float64)
    p = float(sample.args[1])
    train = sample.args[2] if len(sample.args) > 2 else sample.kwargs.get("train")
    train = True if train is None else bool(train)
    out, mask = actual[0].detach().cpu().to(torch.float64), actual[1].detach().cpu()
    if mask.dtype != torch.bool:
        return Comparison(False, f"native_dropout: mask dtype {mask.dtype}, expected bool")
    if train:
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        expected = x * mask.to(torch.float64) * scale
    else:
        expected = x
    tolerance = TOLERANCES.get(actual[0].dtype, TOLERANCES[torch.float32])
    close = torch.isclose(out, expected, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True)
    if not bool(close.all()):
        return Comparison(False, "native_dropout: output is not input * mask / (1 - p)")
    n = mask.numel()
    kept = float(mask.to(torch.float64).mean()) if n else 1.0
    if not train:
        return Comparison(kept == 1.0, "" if kept == 1.0 else
                          "native_dropout: elements dropped outside training")
    bound = _SIGMAS * math.sqrt(p * (1 - p) / n) + 1e-12 if n else 1.0
    if abs(kept - (1 - p)) > bound:
        return Comparison(False, f"native_dropout: kept {kept:.4g} of {n} elements, expected "
                                 f"{1 - p:.4g} +- {bound:.3g}")
    return Comparison(True)


def _meta(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{str(x.dtype).replace('torch.', '')}{list(x.shape)}"
    return type(x).__name__


def compare_outputs(actual: list, expected: list) -> Comparison:
    if len(actual) != len(expected):
        return Comparison(False, f"{len(actual)} outputs, eager {len(expected)}")
    errors = []
    for i, (a, e) in enumerate(zip(actual, expected)):
        c = compare_value(a, e)
        if c.max_abs_err is not None:
            errors.append(c.max_abs_err)
        if not c.ok:
            label = f"output {i}: " if len(actual) > 1 else ""
            return Comparison(False, label + c.reason, c.max_abs_err)
    return Comparison(True, max_abs_err=max(errors) if errors else None)


# Ops whose indices among equal values are the implementation's to order (PyTorch documents no
# order for ties in topk, nor in sort unless stable=True): op -> where the dim argument is.
UNORDERED_TIES = {"aten.topk.default": (2, "dim", -1), "aten.sort.default": (1, "dim", -1)}


def compare_tied_indices(sample: Sample, actual: list, expected: list) -> Optional[Comparison]:
    """For UNORDERED_TIES ops, whose (values, indices) differ from eager's only in which of equal
    values' indices come first: values must match eager's, and each index must be distinct along
    the dim and point at an input element equal (bit for bit, NaN as NaN) to its value. None for
    other ops."""
    where = UNORDERED_TIES.get(sample.op)
    if where is None or len(actual) != 2 or len(expected) != 2:
        return None
    values = compare_tensor(actual[0], expected[0])
    if not values.ok:
        return Comparison(False, "output 0: " + values.reason, values.max_abs_err)
    position, name, default = where
    dim = sample.kwargs.get(name, sample.args[position] if len(sample.args) > position
                            else default)
    x = sample.args[0].to(actual[0].device)
    indices = actual[1]
    if x.dim() == 0:
        return compare_outputs(actual, expected)
    if indices.dtype != torch.int64 or indices.shape != expected[1].shape:
        return Comparison(False, f"output 1: {_meta(indices)}, eager {_meta(expected[1])}")
    picked = x.gather(dim, indices)
    same = (picked == actual[0]) | (picked.isnan() & actual[0].isnan())
    if not bool(same.all()):
        return Comparison(False, f"output 1: an index points at {picked[~same][0].item()}, not "
                                 f"its value {actual[0][~same][0].item()}")
    ordered = indices.sort(dim).values
    if indices.size(dim) > 1 and bool((ordered.diff(dim=dim) == 0).any()):
        return Comparison(False, "output 1: an index repeats along the dim")
    return Comparison(True, max_abs_err=values.max_abs_err)

