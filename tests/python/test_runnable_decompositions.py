"""Core ATen ops kiln has no kernel for, lowered through torch's decompositions where kiln runs
every op they decompose into (kiln._runnable_decompositions), and kept whole (declined) where it
does not: a random training dropout is never approximated."""
from __future__ import annotations

import pytest
import torch

import kiln
from conftest import assert_outputs_match
from kiln import _lowering

aten = torch.ops.aten


class Calls(torch.nn.Module):
    """forward(*tensors) = op(*tensors, *constants), every output returned."""

    def __init__(self, op, *constants):
        super().__init__()
        self.op, self.constants = op, constants

    def forward(self, *tensors):
        return self.op(*tensors, *self.constants)


def _targets(ep) -> list:
    return [n.target for n in ep.graph.nodes if n.op == "call_function"]


def _compile_fully(module, inputs):
    ep = torch.export.export(module, inputs)
    compiled = kiln.compile(ep, inputs=list(inputs), min_block_size=1,
                            require_full_compilation=True)
    assert any(isinstance(m, kiln.KilnEngineModule) for m in compiled.modules())
    return ep, compiled


def test_dropout_in_eval_mode_is_lowered_to_what_every_backend_runs():
    """kiln's own native_dropout runs on the reference backend only; a deterministic one is
    decomposed into a copy and a mask of ones, which the CUDA backend runs too."""
    x = torch.randn(2, 3, 4)
    for p, train in ((0.5, False), (0.0, True)):  # both deterministic
        module = Calls(aten.native_dropout.default, p, train)
        ep, compiled = _compile_fully(module, (x,))
        assert aten.native_dropout.default not in _targets(_lowering.lower(ep))
        output, mask = compiled(x)
        assert_outputs_match((output, mask), module(x))
        assert mask.dtype == torch.bool and bool(mask.all())


def test_random_training_dropout_stays_whole_and_runs_on_the_reference_backend():
    """Training dropout draws from kiln's own generator (not torch's): its mask differs from
    eager's, so what is checked is what holds for any draw."""
    x = torch.randn(64, 64) + 3.0
    ep = torch.export.export(Calls(aten.native_dropout.default, 0.5, True), (x,))
    assert aten.native_dropout.default in _targets(_lowering.lower(ep))
    compiled = kiln.compile(ep, inputs=[x], min_block_size=1, require_full_compilation=True)
    output, mask = compiled(x)
    assert mask.dtype == torch.bool and mask.shape == x.shape
    torch.testing.assert_close(output, x * mask / 0.5)
    kept = mask.float().mean().item()
    assert 0.4 < kept < 0.6, f"kept fraction {kept} (4096 draws at p = 0.5)"


def test_one_node_kiln_cannot_run_keeps_every_node_of_its_op_whole():
    class TwoDropouts(torch.nn.Module):
        def forward(self, x):
            kept, _ = aten.native_dropout.default(x, 0.5, False)
            dropped, _ = aten.native_dropout.default(x, 0.5, True)
            return kept + 1.0, dropped

    ep = torch.export.export(TwoDropouts(), (torch.randn(4, 4),))
    assert _targets(_lowering.lower(ep)).count(aten.native_dropout.default) == 2


def test_training_batch_norm_stays_whole_as_its_decomposition_differs_from_eager_on_inf():
    """torch's decomposition of no_stats takes var_mean, whose mean of a channel holding -inf is
    NaN where eager's is -inf: kiln keeps the op whole for every backend and runs its own
    kernel."""
    x = torch.randn(2, 3, 4)
    x[0, 0, 1], x[1, 1, 0], x[0, 1, 2] = float("-inf"), float("inf"), float("-inf")
    op = aten._native_batch_norm_legit.no_stats
    module = Calls(op, None, None, True, 0.5, 1e-5)
    ep, compiled = _compile_fully(module, (x,))
    for backend in ("cpu", "cuda"):
        assert op in _targets(_lowering.lower(ep, backend=backend))
    expected = module(x)
    assert expected[1][0] == float("-inf")  # why the decomposition is not used
    assert_outputs_match(compiled(x), expected)


def test_training_batch_norm_updates_the_running_statistics():
    """_native_batch_norm_legit.default mutates its running statistics; torch.export makes it
    _native_batch_norm_legit_functional, which kiln runs, and the compiled module copies the
    updated statistics back into the tensors passed in, as eager does."""
    x, weight, bias = torch.randn(4, 3, 5) * 2 + 1, torch.rand(3) + 0.5, torch.randn(3)
    running = (torch.randn(3), torch.rand(3) + 0.5)
    module = Calls(aten._native_batch_norm_legit.default, True, 0.1, 1e-5)
    ep = torch.export.export(module, (x, weight, bias, *[t.clone() for t in running]))
    assert aten._native_batch_norm_legit_functional.default in _targets(_lowering.lower(ep))
    compiled = kiln.compile(ep, inputs=[x, weight, bias, *running], min_block_size=1,
                            require_full_compilation=True)
    eager_stats, kiln_stats = [t.clone() for t in running], [t.clone() for t in running]
    expected = module(x, weight, bias, *eager_stats)
    assert_outputs_match(compiled(x, weight, bias, *kiln_stats), expected)
    assert not torch.equal(eager_stats[0], running[0])  # eager updated them in place
    for ours, theirs in zip(kiln_stats, eager_stats):
        torch.testing.assert_close(ours, theirs)


def test_grid_sampler_2d_stays_whole_as_its_decomposition_differs_from_eager_on_nan():
    x = torch.randn(1, 1, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    grid = torch.tensor([[[[-1.0, -1.0], [1.5, 1.5]]]])  # the second point is outside the image
    from torch._decomp import decomposition_table

    op = aten.grid_sampler_2d.default
    eager, decomposed = op(x, grid, 0, 0, False), decomposition_table[op](x, grid, 0, 0, False)
    assert eager[0, 0, 0, 1] == 0 and decomposed[0, 0, 0, 1].isnan()  # why it is not used
    ep = torch.export.export(Calls(op, 0, 0, False), (x, grid))
    assert op in _targets(_lowering.lower(ep))
    compiled = kiln.compile(ep, inputs=[x, grid], min_block_size=1, require_full_compilation=True)
    assert_outputs_match(compiled(x, grid), op(x, grid, 0, 0, False))
