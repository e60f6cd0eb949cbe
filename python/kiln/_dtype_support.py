"""Values of dtypes kiln has no element type for (complex64, complex128, float8_*, uint16, ...).

kiln's element types are ``kiln.dtype``'s; the C++ reader declines a whole program in which any
value has another dtype. Such a value can only live in PyTorch, so every node that produces or reads
one is declined by support analysis (it runs in PyTorch) and the rest of the program compiles as
usual: a model with a complex rotary embedding still gets its matmuls in engines.

The C++ core still has to read the whole program to partition it. It reads a stand-in: each such
value is relabeled uint8 in the archive handed to it (shape and strides kept; a weight of such a
dtype is replaced by zero bytes of that shape), and each node touching one is passed to support
analysis as a ``torch_executed_node``; the core's check of its shape inference against the
program is skipped at reading (it would disagree at those nodes) and made on each engine's segment
when it is built. No engine ever sees a stand-in: the producer and every
reader of such a value are declined, so it never crosses into an accelerated segment. The plan the
core returns is then corrected to name the real dtypes and the real reason (:meth:`explain`).
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Iterator

import torch
from torch import fx
from torch.utils import _pytree

from kiln._enums import dtype as kiln_dtype

# What the C++ core reads in place of a value it has no element type for.
_STAND_IN = torch.uint8


def has_element_type(dtype: torch.dtype) -> bool:
    """Whether kiln has an element type for this torch dtype."""
    try:
        kiln_dtype._from(dtype)
    except ValueError:
        return False
    return True


def _dtypes_without_element_type(value: Any) -> list[torch.dtype]:
    found = []
    for leaf in _pytree.tree_leaves(value):
        if isinstance(leaf, torch.Tensor) and not has_element_type(leaf.dtype) \
                and leaf.dtype not in found:
            found.append(leaf.dtype)
    return found


def _dtype_names(dtypes: list[torch.dtype]) -> str:
    return " and ".join(str(d).removeprefix("torch.") for d in dtypes)


def core_node_name(node: fx.Node) -> str:
    """The name kiln's C++ core gives ``node``: its first output's name as torch.export.save
    writes it, which is the FX name for single-output nodes and the first getitem's otherwise."""
    values = node.meta.get("val")
    if not isinstance(values, (list, tuple)):
        return node.name
    for index, value in enumerate(values):
        if value is None:
            continue
        for user in node.users:
            if user.target is operator.getitem and user.args[1] == index:
                return user.name
        return f"{node.name}_unused_{index}"
    return node.name


class TorchOnlyValues:
    """The values of a program whose dtype kiln has no element type for, and the call nodes that
    produce or read them (declined: they run in PyTorch)."""

    def __init__(self, ep: "torch.export.ExportedProgram"):
        self.values: dict[str, list[torch.dtype]] = {}   # FX node name -> its dtypes
        self.reasons: dict[str, str] = {}                 # core node name -> why declined
        for node in ep.graph.nodes:
            dtypes = _dtypes_without_element_type(node.meta.get("val"))
            if dtypes and node.op in ("placeholder", "call_function"):
                self.values[node.name] = dtypes
        for node in ep.graph.nodes:
            if node.op != "call_function" or node.target is operator.getitem:
                continue
            read = [d for arg in node.all_input_nodes for d in self.values.get(arg.name, ())]
            made = self.values.get(node.name, [])
            if not read and not made:
                continue
            verb = "reads and produces" if read and made else "reads" if read else "produces"
            dtypes = list(dict.fromkeys(read + made))
            self.reasons[core_node_name(node)] = (
                f"{verb} {_dtype_names(dtypes)} values, which kiln has no element type for "
                f"(it has {', '.join(d.value for d in kiln_dtype)})")

    def __bool__(self) -> bool:
        return bool(self.values)

    @property
    def declined_nodes(self) -> list[str]:
        return list(self.reasons)

    @contextlib.contextmanager
    def stand_ins(self, ep: "torch.export.ExportedProgram") -> Iterator[None]:
        """While open, ``ep`` holds uint8 stand-ins for these values (node metadata and weights),
        so that torch.export.save writes a program the C++ core reads. Restored on exit."""
        if not self:
            yield
            return
        saved_meta: dict[fx.Node, Any] = {}
        saved_weights: list[tuple[dict, str, torch.Tensor]] = []
        try:
            for node in ep.graph.nodes:
                if node.name in self.values:
                    saved_meta[node] = node.meta["val"]
                    node.meta["val"] = _pytree.tree_map(_stand_in_value, node.meta["val"])
            for table in (ep.state_dict, getattr(ep, "constants", None) or {}):
                for name, tensor in list(table.items()):
                    if isinstance(tensor, torch.Tensor) and not has_element_type(tensor.dtype):
                        saved_weights.append((table, name, tensor))
                        table[name] = torch.zeros(tensor.shape, dtype=_STAND_IN)
            yield
        finally:
            for node, value in saved_meta.items():
                node.meta["val"] = value
            for table, name, tensor in saved_weights:
                table[name] = tensor

    def explain(self, plan: dict) -> dict:
        """The core's plan with these nodes' reasons and these values' dtypes made true (the core
        saw stand-ins and ``torch_executed_nodes``)."""
        if not self:
            return plan
        unsupported = []
        for entry in plan["unsupported"]:
            ours = [n for n in entry["nodes"] if n in self.reasons]
            others = [n for n in entry["nodes"] if n not in self.reasons]
            if others:
                unsupported.append({**entry, "nodes": others})
            if ours:
                unsupported.append({"op": entry["op"], "reason": self.reasons[ours[0]],
                                    "nodes": ours})
        unsupported.sort(key=lambda e: -len(e["nodes"]))  # stable: as the core orders them
        plan = dict(plan, unsupported=unsupported)
        for segment in plan["segments"]:
            for value in segment["inputs"] + segment["outputs"]:
                dtypes = self.values.get(value["name"])
                if dtypes:
                    value["dtype"] = _dtype_names(dtypes)
        return plan


def _stand_in_value(value: Any) -> Any:
    if not isinstance(value, torch.Tensor) or has_element_type(value.dtype):
        return value
    mode = getattr(value, "fake_mode", None)
    with mode if mode is not None else contextlib.nullcontext():
        return torch.empty_strided(value.shape, value.stride(), dtype=_STAND_IN,
                                   device=value.device)
