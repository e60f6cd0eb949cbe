"""Lowering in Python: the decomposition table kiln hands to ``ExportedProgram.run_decompositions``.

kiln lowers to core ATen, except for ops it runs better whole: attention, normalizations,
activations and resizes stay single nodes, so the builder can pick one fused implementation (a
fused attention kernel, a one-pass layer norm) instead of re-discovering the pattern from dozens of
primitive ops. ``enable_experimental_decompositions=True`` lowers everything to core ATen.
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
    ]


def kept_whole_ops() -> list[str]:
    """The names of the ops kiln's default table keeps whole (for docs and the dry run)."""
    return [str(op) for op in _kept_whole()]


def decomposition_table(enable_experimental_decompositions: bool = False):
    """The table for ``run_decompositions``: core ATen minus the ops kiln keeps whole.

    Ops are kept whole only where kiln's CPU reference backend runs them, so the table never leaves
    an op kiln cannot execute.
    """
    import torch

    table = torch.export.default_decompositions()
    if enable_experimental_decompositions:
        return table
    from kiln import _C

    runnable = set(_C.supported_op_names())
    for op in _kept_whole():
        if _op_name(op) in runnable:
            table.pop(op, None)
        else:
            logger.debug("kiln: decomposing %s (no kiln kernel runs it whole)", op)
    return table


def _op_name(op) -> str:
    # torch's str(op) is "aten.layer_norm.default"; kiln's op table uses the same spelling.
    return str(op)


def lower(exported_program, enable_experimental_decompositions: bool = False):
    """Runs kiln's decompositions on an ExportedProgram (returns a new one)."""
    return exported_program.run_decompositions(
        decomposition_table(enable_experimental_decompositions))
