"""Core ATen ops kiln has no kernel for, decomposed where kiln runs what they decompose into.

torch's default table stops at Core ATen, so a Core ATen op without a kiln kernel would be declined
and run in PyTorch. Some of them have a decomposition in ``torch._decomp.decomposition_table``
into ops kiln does run; for those, kiln's lowering applies it, as it keeps ops whole only where it
runs them (kiln._lowering).

Only where kiln can run the result: for each node of such an op, the decomposition is traced on the
node's arguments (tensors of its shapes and dtypes, its constants), and it is applied only if every
op of every node's trace is one kiln runs. So dropout in eval mode (``train=False``, or ``p=0``)
becomes a copy, while a random training dropout (its trace draws ``rand_like``) stays whole and is
declined, never approximated. The choice is per op: one node whose decomposition kiln cannot run
keeps every node of its op whole.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import torch
from torch.utils import _pytree

logger = logging.getLogger("kiln")

# The ops this applies to, by torch's name: only those whose torch decomposition computes what
# eager does. Not grid_sampler_2d: its decomposition multiplies the taps outside the image by a
# zero weight, so a NaN or inf in the image reaches outputs where eager gives 0 (torch 2.11). Not
# the training batch norms (_native_batch_norm_legit.no_stats and _functional, which kiln runs
# whole): in half precision their output is 1% from eager's, and an inf input gives a NaN batch
# mean where eager's is inf.
CANDIDATES = (
    "aten.native_dropout.default",
)


def target_name(target: Any) -> str:
    """kiln's op-table spelling of an FX call target: "aten.add.Tensor", "_operator.getitem"."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', target)}"


def _concrete(value: Any) -> Any:
    """A real tensor with a fake tensor's dtype and (hinted) shape; anything else as is."""
    if not isinstance(value, torch.Tensor):
        return value
    from torch.fx.experimental.symbolic_shapes import size_hint

    shape = [size_hint(d) for d in value.shape]
    return torch.zeros(shape, dtype=value.dtype)


def traced_ops(node: torch.fx.Node, table: dict) -> Optional[set[str]]:
    """The ops ``node`` becomes under ``table`` (kiln's spelling), or None where the trace fails."""
    from torch.fx.experimental.proxy_tensor import make_fx

    call = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: n.meta.get("val"))
    leaves, spec = _pytree.tree_flatten(call)
    leaves = [_concrete(x) for x in leaves]
    slots = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]

    def run(*tensors):
        filled = list(leaves)
        for slot, tensor in zip(slots, tensors):
            filled[slot] = tensor
        args, kwargs = _pytree.tree_unflatten(filled, spec)
        return node.target(*args, **kwargs)

    try:
        graph = make_fx(run, decomposition_table=table, tracing_mode="fake")(
            *[leaves[i] for i in slots])
    except Exception as error:  # noqa: BLE001 - a decomposition that does not trace is not used
        logger.debug("kiln: tracing the decomposition of %s failed: %s", node.target, error)
        return None
    return {target_name(n.target) for n in graph.graph.nodes if n.op == "call_function"}


def _deterministic_dropout(node: torch.fx.Node) -> bool:
    """native_dropout(input, p, train) with train=False or p=0: the input and a mask of ones."""
    args = list(node.args) + [None] * 3
    p, train = node.kwargs.get("p", args[1]), node.kwargs.get("train", args[2])
    return train is False or p == 0


def _decomposed_although_run(op: Any, nodes: list) -> bool:
    """Whether an op kiln runs is still decomposed: native_dropout runs on the reference backend
    only (from kiln's own generator), while in eval mode its decomposition is a copy every backend
    runs. Only where every node of it is deterministic, as the choice is per op."""
    return target_name(op) == "aten.native_dropout.default" and \
        all(_deterministic_dropout(n) for n in nodes)


def runnable_decompositions(exported_program, table: dict, runnable: set[str]) -> dict:
    """The decompositions (op -> function) of the program's CANDIDATES that kiln runs in full,
    for every node of each op, on top of ``table``."""
    from torch._decomp import decomposition_table

    nodes_by_op: dict[Any, list] = {}
    for node in exported_program.graph.nodes:
        if node.op == "call_function" and target_name(node.target) in CANDIDATES:
            nodes_by_op.setdefault(node.target, []).append(node)
    chosen = {}
    for op, nodes in nodes_by_op.items():
        if target_name(op) in runnable and not _decomposed_although_run(op, nodes):
            continue
        decomposition = decomposition_table.get(op)
        if decomposition is None:
            continue
        trial = dict(table)
        trial[op] = decomposition
        missing: set[str] = set()
        for node in nodes:
            ops = traced_ops(node, trial)
            missing |= {"(a decomposition that does not trace)"} if ops is None else ops - runnable
        if missing:
            logger.debug("kiln: keeping %s whole: its decomposition needs %s, which kiln does not "
                         "run", op, ", ".join(sorted(missing)))
        else:
            chosen[op] = decomposition
    return chosen

