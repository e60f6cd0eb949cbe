"""The ops under test: the installed torch's Core ATen opset plus the ops kiln keeps whole.

Core ATen is the set of overloads tagged ``core`` in torch's native_functions.yaml (torch 2.11 has
193). The list is read from the installed torch every run, never written down here, so a torch
upgrade changes what is tested without an edit. :func:`core_count_in_native_functions` counts the
tag in torchgen's packaged copy of the yaml, an independent reading that the test suite checks the
op list against.

kiln's decomposition table keeps a few ops whole (``kiln._lowering.kept_whole_ops()``: attention,
normalizations, activations, resizes); they reach kiln's kernels as themselves, so they are tested
like Core ATen ops.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Optional

import torch


@dataclasses.dataclass(frozen=True)
class ConformanceOp:
    """One overload under test. ``name`` is torch's spelling, "aten.add.Tensor", which is also
    kiln's op-table key."""

    name: str
    core: bool
    kept_whole: bool

    @property
    def overload(self) -> torch._ops.OpOverload:
        return resolve(self.name)


def resolve(name: str) -> torch._ops.OpOverload:
    """The OpOverload for "aten.add.Tensor"."""
    namespace, packet, overload = name.split(".")
    return getattr(getattr(getattr(torch.ops, namespace), packet), overload)


def _overload_name(schema) -> str:
    namespace, packet = schema.name.split("::")
    return f"{namespace}.{packet}.{schema.overload_name or 'default'}"


@functools.lru_cache(maxsize=None)
def core_aten_overloads() -> tuple[str, ...]:
    """Every aten overload whose tags include ``torch.Tag.core``, sorted by name.

    ``torch.ops.aten`` only lists the packets touched so far, so the registry's schemas are walked
    instead: every registered overload is seen.
    """
    names = set()
    for schema in torch._C._jit_get_all_schemas():
        if not schema.name.startswith("aten::"):
            continue
        name = _overload_name(schema)
        try:
            overload = resolve(name)
        except (AttributeError, RuntimeError):  # a schema torch.ops does not expose
            continue
        if torch.Tag.core in overload.tags:
            names.add(name)
    return tuple(sorted(names))


def core_count_in_native_functions() -> Optional[int]:
    """How many functions native_functions.yaml tags ``core`` (torchgen's packaged copy), or None
    where torchgen or PyYAML is not installed."""
    try:
        import torchgen
        import yaml
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(torchgen.__file__), "packaged", "ATen", "native",
                        "native_functions.yaml")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        entries = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    count = 0
    for entry in entries:
        tags = entry.get("tags", [])
        if "core" in ([tags] if isinstance(tags, str) else tags):
            count += 1
    return count


def kept_whole_overloads() -> tuple[str, ...]:
    from kiln._lowering import kept_whole_ops

    return tuple(kept_whole_ops())


@functools.lru_cache(maxsize=None)
def conformance_ops() -> tuple[ConformanceOp, ...]:
    """Core ATen first (sorted), then the kept-whole ops that are not Core ATen (kiln's order)."""
    core = core_aten_overloads()
    kept = kept_whole_overloads()
    ops = [ConformanceOp(name, core=True, kept_whole=name in kept) for name in core]
    ops += [ConformanceOp(name, core=False, kept_whole=True) for name in kept if name not in core]
    return tuple(ops)


def op_names() -> list[str]:
    return [op.name for op in conformance_ops()]
