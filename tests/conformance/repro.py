"""A standalone script that reproduces one sample: kiln's result next to eager's."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils import _pytree

from conformance.samples import Sample


def _literal(value: Any) -> str:
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, torch.device):
        return f"torch.device({str(value)!r})"
    if isinstance(value, torch.memory_format) or isinstance(value, torch.layout):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _tensor_literal(t: torch.Tensor, device: str) -> str:
    storage_elements = t.untyped_storage().nbytes() // t.element_size()
    whole = torch.as_strided(t.detach(), (storage_elements,), (1,), 0).cpu()
    values = whole.tolist() if storage_elements <= 4096 else None
    where = f", device={device!r}" if device != "cpu" else ""
    dtype = str(t.dtype)
    if values is None:
        base = f"torch.zeros({storage_elements}, dtype={dtype}{where})  # too many values to list"
    else:
        base = f"torch.tensor({_literal(values)}, dtype={dtype}{where})"
    if t.is_contiguous() and t.storage_offset() == 0 and storage_elements == t.numel():
        return f"{base}.reshape({_literal(tuple(t.shape))})"
    return (f"{base}.as_strided({_literal(tuple(t.shape))}, {_literal(tuple(t.stride()))}, "
            f"{t.storage_offset()})")


def repro_script(sample: Sample, device: str = "cpu") -> str:
    """A standalone script that compiles ``sample`` with kiln and prints kiln's and eager's
    results."""
    leaves, spec = _pytree.tree_flatten((sample.args, sample.kwargs))
    names, lines = [], []
    for x in leaves:
        if isinstance(x, torch.Tensor):
            name = f"x{len(names)}"
            names.append(name)
            lines.append(f"{name} = {_tensor_literal(x, device)}")
    rebuilt = []
    counter = iter(names)
    for x in leaves:
        if isinstance(x, torch.Tensor):
            x = _Name(next(counter))
        elif isinstance(x, torch.device):
            x = torch.device(device)
        rebuilt.append(x)
    args, kwargs = _pytree.tree_unflatten(rebuilt, spec)
    call_args = [_literal(a) for a in args] + [f"{k}={_literal(v)}" for k, v in kwargs.items()]
    signature = ", ".join(["self"] + names)
    inputs = ", ".join(names)
    return "\n".join([
        "import torch, kiln",
        "torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False",
        *lines,
        "class Repro(torch.nn.Module):",
        f"    def forward({signature}):",
        f"        return torch.ops.{sample.op}({', '.join(call_args)})",
        f"ep = torch.export.export(Repro(), ({inputs}{',' if len(names) == 1 else ''}))",
        f"compiled = kiln.compile(ep, inputs=[{inputs}], min_block_size=1, "
        f"require_full_compilation=True, device={device!r}, disable_tf32=True)",
        f"print('kiln ', compiled({inputs}))",
        f"print('eager', Repro()({inputs}))",
    ])


class _Name:
    """A variable name that prints bare in a repro's call."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name
