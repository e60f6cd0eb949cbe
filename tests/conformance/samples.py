"""What a sample is, which edge cases it exercises, and which samples a run uses.

A :class:`Sample` is one concrete aten call, ``resolve(op)(*args, **kwargs)``, with CPU tensors
that keep their sizes, strides and storage offset (opinfo_scan finds them in PyTorch's OpInfo
samples).

Edge cases. :func:`features_of` names what a call exercises (``FEATURE_PRIORITY``). Where no
candidate of an (op, dtype) has NaN/inf, non-contiguous inputs or (integer dtypes) the dtype's
extreme values, :func:`derive_edge_cases` makes a variant of a candidate that has them
(``DERIVED_EDGE_CASES``), kept only where eager runs it.

The budget. :func:`select` picks N of the distinct candidates greedily: each pick is the
candidate that covers the highest-ranked edge case not yet covered (empty and zero-size tensors
first, then non-contiguous inputs, scalar arguments, NaN/inf, ...), ties going to more uncovered
features, then to the earliest candidate; once every feature present is covered, the rest are
filled in recording order, one per OpInfo first. The choice is deterministic.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Optional

import torch
from torch.utils import _pytree

from conformance.ops import resolve

# The dtypes under test, by the name used in reports and baselines.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}

# Edge-case features, highest rank first: the budget covers them in this order.
FEATURE_PRIORITY = (
    "empty",            # a tensor input with a zero-size dim
    "non_contiguous",   # a tensor input that is not contiguous (sliced, transposed, expanded)
    "scalar_arg",       # a Scalar-typed argument, or a 0-dim tensor next to larger ones
    "nonfinite",        # NaN or +-inf in a floating input
    "int_extremes",     # the dtype's min/max in an integer input (overflow rules)
    "broadcast",        # a pointwise op on tensors of different shapes
    "negative_dim",     # a dim argument counted from the end
    "type_promotion",   # inputs of mixed dtypes, or a Scalar of a higher category than the tensor
    "zero_dim",         # a 0-dim tensor input
)

# Variants derived from a recorded call where the OpInfo samples lack the edge case.
DERIVED_EDGE_CASES = ("nonfinite", "non_contiguous", "int_extremes")

_DIM_ARGUMENTS = {"dim", "dims", "dim0", "dim1", "start_dim", "end_dim", "dimension"}


@dataclasses.dataclass
class DynamicShapes:
    """Dims of a sample's tensors that the program is exported with as dynamic
    (``torch.export.Dim``) and compiled for as a range (``kiln.Input(min_shape=, opt_shape=,
    max_shape=)``), and the same call at other sizes in that range, which the one compiled
    program must get right too. Ops over symbolic sizes (``sym_size``, ``sym_numel``, ...) only
    appear in a program whose sizes are symbolic: with static shapes export folds them away."""

    ranges: dict[int, dict[int, tuple[int, int]]]  # Sample.tensors() position -> {dim: (min, max)}
    others: list[tuple[tuple, dict]] = dataclasses.field(default_factory=list)  # (args, kwargs)

    def describe(self) -> str:
        """"dynamic t0 dims {0: 2..16}, also at [7, 3]"."""
        ranges = "; ".join(
            f"t{i} dims {{{', '.join(f'{d}: {lo}..{hi}' for d, (lo, hi) in dims.items())}}}"
            for i, dims in self.ranges.items())
        shapes = ", ".join(str([list(t.shape) for t in _pytree.tree_leaves(other)
                                if isinstance(t, torch.Tensor)]) for other in self.others)
        return f"dynamic {ranges}" + (f", also at {shapes}" if shapes else "")


@dataclasses.dataclass
class Sample:
    """One aten call: ``resolve(op)(*args, **kwargs)``, tensors on the CPU with their layout."""

    op: str
    dtype: str
    args: tuple
    kwargs: dict
    origin: str                      # "amax#3" (OpInfo, sample), "derived nonfinite from ..."
    features: tuple[str, ...] = ()
    derived: str = ""                # the DERIVED_EDGE_CASES entry this variant was made for
    dynamic: Optional[DynamicShapes] = None  # exported with dynamic dims (hand samples)

    def tensors(self) -> list[torch.Tensor]:
        return [x for x in _pytree.tree_leaves((self.args, self.kwargs))
                if isinstance(x, torch.Tensor)]

    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors())

    def describe(self) -> str:
        """"aten.add.Tensor(float32[3, 4] strides (1, 3), float32[4], alpha=2)"."""
        parts = [_describe_value(a) for a in self.args]
        parts += [f"{k}={_describe_value(v)}" for k, v in self.kwargs.items()]
        text = f"{self.op}({', '.join(parts)})"
        return f"{text} [{self.dynamic.describe()}]" if self.dynamic else text


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        text = f"{dtype}{list(value.shape)}"
        if value.numel() > 1 and not value.is_contiguous():
            text += f" strides {tuple(value.stride())}"
        if value.is_floating_point() and value.numel() and not torch.isfinite(value).all():
            text += " with nan/inf"
        return text
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_describe_value(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, torch.dtype):
        return str(value)
    return repr(value)


# --- copying, binding, features ------------------------------------------------------------------

def clone_with_layout(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` with the same sizes, strides and storage offset in a storage of its own:
    ``clone()`` would make a sliced or overlapping view contiguous."""
    t = t.detach()
    if t.layout != torch.strided:
        return t.clone()
    storage = t.untyped_storage()
    # An empty storage is not shared either: a resizing op must not grow the original's.
    own = storage.clone() if storage.nbytes() else torch.empty(0, dtype=t.dtype,
                                                                device=t.device).untyped_storage()
    copy = torch.empty(0, dtype=t.dtype, device=t.device)
    copy.set_(own, t.storage_offset(), t.size(), t.stride())
    return copy


def clone_tree(tree):
    return _pytree.tree_map(lambda x: clone_with_layout(x) if isinstance(x, torch.Tensor) else x,
                            tree)


def bind_arguments(overload, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Argument name -> value, in the overload's schema order (omitted defaults left out)."""
    names = [argument.name for argument in overload._schema.arguments]
    given = dict(zip(names, args))
    given.update(kwargs)
    return {name: given[name] for name in names if name in given}


def _category(value) -> int:
    """0 bool, 1 integer, 2 floating (complex counts as floating)."""
    if isinstance(value, torch.Tensor):
        return 0 if value.dtype == torch.bool else (2 if value.is_floating_point()
                                                    or value.is_complex() else 1)
    if isinstance(value, bool):
        return 0
    return 1 if isinstance(value, int) else 2


def _int_extremes(dtype: torch.dtype) -> tuple[int, int]:
    info = torch.iinfo(dtype)
    return info.min, info.max


def features_of(op_name: str, args: tuple, kwargs: dict, output: Any) -> tuple[str, ...]:
    """The edge cases a call exercises (see FEATURE_PRIORITY)."""
    overload = resolve(op_name)
    bound = bind_arguments(overload, args, kwargs)
    inputs = [x for x in _pytree.tree_leaves((args, kwargs)) if isinstance(x, torch.Tensor)]
    found = set()
    if any(t.numel() == 0 for t in inputs):
        found.add("empty")
    if any(t.numel() > 1 and not t.is_contiguous() for t in inputs):
        found.add("non_contiguous")
    if any(t.dim() == 0 for t in inputs):
        found.add("zero_dim")
        if any(t.dim() > 0 for t in inputs):
            found.add("scalar_arg")
    scalar_arguments = {a.name for a in overload._schema.arguments if is_scalar_type(a)}
    scalars = [v for name, v in bound.items() if name in scalar_arguments and v is not None]
    if scalars:
        found.add("scalar_arg")
    for t in inputs:
        if t.numel() == 0:
            continue
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            found.add("nonfinite")
        if t.dtype in (torch.int32, torch.int64):
            low, high = _int_extremes(t.dtype)
            if bool(((t == low) | (t == high)).any()):
                found.add("int_extremes")
    if torch.Tag.pointwise in overload.tags:
        shapes = {tuple(t.shape) for t in inputs if t.dim() > 0}
        if len(shapes) > 1:
            found.add("broadcast")
    for name, value in bound.items():
        if name in _DIM_ARGUMENTS:
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, int) and v < 0 for v in values):
                found.add("negative_dim")
    if inputs:
        dtypes = {t.dtype for t in inputs if t.dtype != torch.bool or len(inputs) == 1}
        if len(dtypes) > 1 or any(_category(s) > _category(inputs[0]) for s in scalars
                                  if isinstance(s, (bool, int, float))):
            found.add("type_promotion")
    return tuple(f for f in FEATURE_PRIORITY if f in found)


def is_scalar_type(argument) -> bool:
    return str(argument.type) in ("Scalar", "number")


# --- derived edge cases --------------------------------------------------------------------------

def _first_tensor_of(sample: Sample, predicate) -> Optional[tuple[list, int]]:
    leaves, spec = _pytree.tree_flatten((sample.args, sample.kwargs))
    for i, x in enumerate(leaves):
        if isinstance(x, torch.Tensor) and predicate(x):
            return leaves, i
    return None


def _rebuilt(sample: Sample, leaves: list, derived: str) -> Sample:
    _, spec = _pytree.tree_flatten((sample.args, sample.kwargs))
    args, kwargs = _pytree.tree_unflatten(leaves, spec)
    return Sample(sample.op, sample.dtype, tuple(args), dict(kwargs),
                  f"derived {derived} from {sample.origin}", (), derived)


def _with_nonfinite(sample: Sample) -> Optional[Sample]:
    found = _first_tensor_of(sample, lambda t: t.is_floating_point() and t.numel() >= 3)
    if found is None:
        return None
    leaves, i = found
    t = clone_with_layout(leaves[i])
    flat = t.view(-1) if t.is_contiguous() else None
    values = (math.nan, math.inf, -math.inf)
    if flat is not None:
        for position, value in enumerate(values):
            flat[position * (t.numel() - 1) // 2] = value
    else:
        index = [torch.unravel_index(torch.tensor(k * (t.numel() - 1) // 2), t.shape)
                 for k in range(3)]
        for idx, value in zip(index, values):
            t[tuple(int(j) for j in idx)] = value
    leaves = list(leaves)
    leaves[i] = t
    return _rebuilt(sample, leaves, "nonfinite")


def _strided_copy(t: torch.Tensor) -> torch.Tensor:
    """The same values in a non-contiguous layout: every other element of a zeroed buffer."""
    sizes = list(t.shape)
    buffer = torch.zeros(sizes[:-1] + [2 * sizes[-1]], dtype=t.dtype)
    view = buffer[..., ::2]
    view.copy_(t)
    return view


def _with_non_contiguous(sample: Sample) -> Optional[Sample]:
    leaves, spec = _pytree.tree_flatten((sample.args, sample.kwargs))
    changed = False
    leaves = list(leaves)
    for i, x in enumerate(leaves):
        if isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[-1] >= 1 and x.numel() >= 2:
            leaves[i] = _strided_copy(x)
            changed = True
    return _rebuilt(sample, leaves, "non_contiguous") if changed else None


def _with_int_extremes(sample: Sample) -> Optional[Sample]:
    dtype = DTYPES[sample.dtype]
    found = _first_tensor_of(sample, lambda t: t.dtype == dtype and t.numel() >= 2)
    if found is None:
        return None
    leaves, i = found
    t = clone_with_layout(leaves[i]).contiguous()
    low, high = _int_extremes(dtype)
    flat = t.view(-1)
    flat[0], flat[-1] = high, low
    leaves = list(leaves)
    leaves[i] = t
    return _rebuilt(sample, leaves, "int_extremes")


_DERIVERS = {
    "nonfinite": (_with_nonfinite, lambda dtype: dtype.is_floating_point),
    "non_contiguous": (_with_non_contiguous, lambda dtype: True),
    "int_extremes": (_with_int_extremes, lambda dtype: dtype in (torch.int32, torch.int64)),
}


def eager_features(sample: Sample) -> Optional[tuple[str, ...]]:
    """Runs ``sample`` eagerly: its features, or None where eager rejects it."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            args, kwargs = clone_tree((sample.args, sample.kwargs))
            output = resolve(sample.op)(*args, **kwargs)
        return features_of(sample.op, sample.args, sample.kwargs, output)
    except Exception:  # noqa: BLE001 - eager rejects the variant: not a valid test
        return None


def derive_edge_cases(candidates: list[Sample]) -> list[Sample]:
    """Variants for the DERIVED_EDGE_CASES no candidate covers (each kept only where eager runs
    it and it has the feature it was made for)."""
    if not candidates:
        return []
    dtype = DTYPES[candidates[0].dtype]
    covered = {f for s in candidates for f in s.features}
    # The base: the candidate with the most features that is not empty (values to change). A
    # sample exported with dynamic dims is no base: its variants would lose its ranges.
    bases = sorted((s for s in candidates if "empty" not in s.features and s.dynamic is None),
                   key=lambda s: -len(s.features))
    derived = []
    for feature in DERIVED_EDGE_CASES:
        make, applies = _DERIVERS[feature]
        if feature in covered or not applies(dtype):
            continue
        for base in bases[:4]:
            variant = make(base)
            if variant is None:
                continue
            features = eager_features(variant)
            if features is not None and feature in features:
                variant.features = features
                derived.append(variant)
                break
    return derived


# --- the budget ----------------------------------------------------------------------------------

def select(candidates: list[Sample], budget: Optional[int]) -> list[Sample]:
    """``budget`` samples chosen to cover edge cases first (module docstring); None takes all."""
    if budget is None or len(candidates) <= budget:
        return list(candidates)
    rank = {f: i for i, f in enumerate(FEATURE_PRIORITY)}
    chosen: list[int] = []
    covered: set[str] = set()
    remaining = list(range(len(candidates)))
    while len(chosen) < budget:
        best, best_key = None, None
        for i in remaining:
            new = [f for f in candidates[i].features if f not in covered]
            if not new:
                continue
            key = (min(rank[f] for f in new), -len(new), i)
            if best_key is None or key < best_key:
                best, best_key = i, key
        if best is None:
            break
        chosen.append(best)
        covered.update(candidates[best].features)
        remaining.remove(best)
    # Fill: one per OpInfo first (variety of callers), then in recording order.
    origins = {_origin_opinfo(candidates[i]) for i in chosen}
    for i in list(remaining):
        if len(chosen) >= budget:
            break
        if _origin_opinfo(candidates[i]) not in origins:
            chosen.append(i)
            origins.add(_origin_opinfo(candidates[i]))
            remaining.remove(i)
    for i in remaining:
        if len(chosen) >= budget:
            break
        chosen.append(i)
    return [candidates[i] for i in sorted(chosen)]


def _origin_opinfo(sample: Sample) -> str:
    return sample.origin.split("#")[0]
