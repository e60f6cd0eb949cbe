"""Lowering in Python: the decomposition table kiln hands to ``ExportedProgram.run_decompositions``.

kiln lowers to core ATen, except for ops it runs better whole: attention, normalizations,
activations and resizes stay single nodes, so the builder can pick one fused implementation (a
fused attention kernel, a one-pass layer norm) instead of re-discovering the pattern from dozens of
primitive ops. ``enable_experimental_decompositions=True`` lowers everything to core ATen. A few
Core ATen ops kiln has no kernel for are lowered further where kiln runs what they decompose into
(kiln._runnable_decompositions).
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("kiln")


def _kept_whole() -> list[Any]:
    import torch

    aten = torch.ops.aten
    return [
        aten.scaled_dot_product_attention.default,
        aten.layer_norm.default,
        aten.group_norm.default,
        aten.instance_norm.default,
        aten.rms_norm.default,
        aten.linear.default,
        aten.matmul.default,
        aten.softmax.int,
        aten.log_softmax.int,
        aten.gelu.default,
        aten.silu.default,
        aten.hardswish.default,
        aten.hardsigmoid.default,
        aten.mish.default,
        aten.softplus.default,
        aten.upsample_nearest2d.default,
        aten.upsample_nearest2d.vec,
        aten.upsample_bilinear2d.vec,
        aten.pixel_shuffle.default,
        aten.adaptive_avg_pool2d.default,
        aten.max_pool2d.default,
        aten.conv2d.default,
        aten.conv1d.default,
        # Core ATen, so torch's table keeps it anyway; listed so that no table (and no runnable
        # decomposition) lowers it: torch's decomposition is wrong on NaN and inf pixels
        # (kiln._runnable_decompositions).
        aten.grid_sampler_2d.default,
    ]


def kept_whole_ops() -> list[str]:
    """The names of the ops kiln's default table keeps whole (for docs and the dry run)."""
    return [str(op) for op in _kept_whole()]


def decomposition_table(enable_experimental_decompositions: bool = False, backend: str = "cpu"):
    """The table for ``run_decompositions``: core ATen minus the ops kiln keeps whole.

    Ops are kept whole only where kiln's ``backend`` runs them ("cpu", the reference backend, or
    "cuda"), so the table never leaves an op the target cannot execute.
    """
    import torch

    table = torch.export.default_decompositions()
    if enable_experimental_decompositions:
        return table
    from kiln import _C

    runnable = set(_C.supported_op_names(backend))
    for op in _kept_whole():
        if _op_name(op) in runnable:
            table.pop(op, None)
        else:
            logger.debug("kiln: decomposing %s (no kiln kernel runs it whole)", op)
    return table


def _op_name(op) -> str:
    # torch's str(op) is "aten.layer_norm.default"; kiln's op table uses the same spelling.
    return str(op)


def lower(exported_program, enable_experimental_decompositions: bool = False,
          backend: str = "cpu"):
    """Runs kiln's decompositions on an ExportedProgram (returns a new one), for the ops kiln's
    ``backend`` runs: a Core ATen op one backend runs whole and another does not is kept for the
    first and decomposed for the second (kiln._runnable_decompositions).

    Where torch's ``run_decompositions`` itself fails, kiln says so: an UnsupportedError naming
    the in-place ops likely responsible (ops that resize or mutate their inputs, which torch must
    functionalize first), else a LoweringError; torch's exception is chained."""
    from kiln import _C
    from kiln._runnable_decompositions import runnable_decompositions

    table = decomposition_table(enable_experimental_decompositions, backend)
    try:
        lowered = exported_program.run_decompositions(table)
        # Core ATen ops kiln has no kernel for, where their decomposition is all kiln kernels.
        extra = runnable_decompositions(lowered, table, set(_C.supported_op_names(backend)))
        if extra:
            logger.debug("kiln: decomposing %s (kiln runs their decompositions)",
                         ", ".join(sorted(map(str, extra))))
            lowered = lowered.run_decompositions({**table, **extra})
    except Exception as error:  # noqa: BLE001 - torch's failure, reported as kiln's
        raise lowering_error(exported_program, error) from error
    return lowered


# In-place ops that change their input's size or storage; torch.export's functionalization of
# them is the usual reason run_decompositions fails.
_RESIZING_OPS = frozenset({"resize_", "resize_as_", "_resize_output_", "set_"})


def likely_culprits(exported_program) -> list[dict]:
    """The in-place ops of the program, as require_full_compilation lists unsupported ops
    ({"op", "reason", "nodes"}): those that resize their inputs if any, else those that mutate
    them; [] where there are none."""
    import torch

    resizing: dict[str, list[str]] = {}
    mutating: dict[str, list[str]] = {}
    for node in exported_program.graph.nodes:
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        if not target._schema.is_mutable:
            continue
        packet = target._schema.name.split("::")[-1]
        (resizing if packet in _RESIZING_OPS else mutating).setdefault(str(target), []).append(
            node.name)
    if resizing:
        what = "resizes its input in place"
    elif mutating:
        what = "mutates its input in place"
    else:
        return []
    return [{"op": op, "nodes": nodes,
             "reason": f"{what}, which torch's run_decompositions could not lower to "
                       "functional ops (kiln runs functional ops only)"}
            for op, nodes in (resizing or mutating).items()]


def lowering_error(exported_program, error: BaseException):
    """kiln's error for a failure of torch's run_decompositions on this program."""
    from kiln.errors import LoweringError, UnsupportedError, unsupported_ops_message

    first = (str(error).strip().splitlines() or [""])[0][:300]
    what = f"lowering failed in torch's run_decompositions ({type(error).__name__}: {first})"
    culprits = likely_culprits(exported_program)
    if not culprits:
        return LoweringError(f"{what}; the program has no in-place op kiln could blame, so this "
                             "may be a torch bug: see the chained exception")
    return UnsupportedError(unsupported_ops_message(f"{what}; the likely cause:", culprits))
