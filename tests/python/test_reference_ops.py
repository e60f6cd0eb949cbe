"""End-to-end checks of reference-backend ops added for Core ATen coverage: the symbolic-size ops
in programs kiln reads without lowering, _embedding_bag, convolution_backward, grid_sampler_2d and
the random ops (rand, randn, randperm, native_dropout) and nonzero, each against eager on the
CPU."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.export import Dim

import kiln
from conftest import assert_outputs_match, export

aten = torch.ops.aten


def _compile(module, args, **kwargs):
    ep = torch.export.export(module.eval(), args, dynamic_shapes=kwargs.pop("dynamic_shapes", None))
    return kiln.compile(ep, inputs=kwargs.pop("inputs", list(args)), device="cpu",
                        min_block_size=1, require_full_compilation=True, **kwargs)


class Geometry(torch.nn.Module):
    def forward(self, x):
        return (aten.full.default([], aten.sym_numel.default(x), dtype=torch.int64),
                aten.full.default([], aten.sym_is_contiguous.default(x), dtype=torch.bool),
                aten.full.default([], aten.sym_stride.int(x, 0), dtype=torch.int64),
                x * aten.sym_size.int(x, 1))


def test_symbolic_ops_run_in_a_program_kiln_reads_unlowered():
    # torch.export keeps sym_numel, sym_is_contiguous and sym_stride in the program it saves;
    # kiln.Program reads it as is, without kiln's lowering (which would fold them).
    x = torch.randn(2, 3, 4)
    dims = {"x": {1: Dim("m", min=2, max=8), 2: Dim("k", min=2, max=9)}}
    ep = export(Geometry(), (x,), dynamic_shapes=dims, decompose=False)
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {"aten.sym_is_contiguous.default", "aten.sym_stride.int"} <= targets, targets
    program = kiln.Program.from_exported_program(ep)
    for shape in [(2, 3, 4), (2, 7, 5)]:
        x = torch.randn(shape)
        assert_outputs_match(program(x), Geometry()(x))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_bag_matches_eager(mode, padding_idx):
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(10, 4, mode=mode, padding_idx=padding_idx)
    indices = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9, 0, 2])
    offsets = torch.tensor([0, 3, 3, 7])
    compiled = _compile(bag, (indices, offsets))
    assert_outputs_match(compiled(indices, offsets), bag(indices, offsets))


def test_embedding_bag_per_sample_weights_and_last_offset():
    torch.manual_seed(0)
    weight = torch.randn(8, 3)

    class Bag(torch.nn.Module):
        def forward(self, indices, offsets, weights):
            return aten._embedding_bag.default(weight, indices, offsets, False, 0, False, weights,
                                               True, -1)

    args = (torch.tensor([1, 7, 3, 3, 0, 5]), torch.tensor([0, 2, 2, 6]), torch.randn(6))
    assert_outputs_match(_compile(Bag(), args)(*args), Bag()(*args))


@pytest.mark.parametrize("transposed", [False, True])
def test_convolution_backward_matches_eager(transposed):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 7, 6)
    w = torch.randn(4, 2, 3, 2)
    args = ([2, 1], [1, 0], [1, 2], transposed, [1, 0] if transposed else [0, 0], 2)
    y = aten.convolution.default(x, w, None, *args)

    class Backward(torch.nn.Module):
        def forward(self, grad, x, w):
            return aten.convolution_backward.default(grad, x, w, [y.shape[1]], *args,
                                                     [True, True, True])

    inputs = (torch.randn(y.shape), x, w)
    assert_outputs_match(_compile(Backward(), inputs)(*inputs), Backward()(*inputs))


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_eager_with_nonfinite_grids(mode, padding_mode, align_corners):
    torch.manual_seed(0)

    class Sample(torch.nn.Module):
        def forward(self, x, grid):
            return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode,
                                 align_corners=align_corners)

    x = torch.randn(2, 3, 5, 7)
    grid = torch.rand(2, 4, 6, 2) * 2.6 - 1.3
    grid[0, 0, 0] = torch.tensor([math.nan, 0.2])
    grid[1, 2, 3] = torch.tensor([0.4, math.inf])
    x[1, 2, 2, 3] = math.nan
    compiled = _compile(Sample(), (x, grid))
    assert_outputs_match(compiled(x, grid), Sample()(x, grid))


class Random(torch.nn.Module):
    def forward(self, x):
        dropped, mask = aten.native_dropout.default(x, 0.25, True)
        return (aten.rand.default([4000], device=torch.device("cpu")),
                aten.randn.default([4000], device=torch.device("cpu")),
                aten.randperm.default(300, device=torch.device("cpu")), dropped, mask)


def test_random_ops_run_on_the_reference_backend_by_distribution():
    x = torch.randn(4000)
    compiled = _compile(Random(), (x,))
    rand, randn, perm, dropped, mask = compiled(x)
    assert rand.shape == (4000,) and ((rand >= 0) & (rand < 1)).all()
    assert abs(rand.double().mean() - 0.5) < 6 * math.sqrt(1 / 12 / 4000)
    assert abs(randn.double().mean()) < 6 / math.sqrt(4000)
    assert abs(randn.double().var() - 1) < 6 * math.sqrt(2 / 4000)
    assert torch.equal(perm.sort().values, torch.arange(300))
    assert mask.dtype == torch.bool
    torch.testing.assert_close(dropped, x * mask / 0.75)
    assert abs(mask.double().mean() - 0.75) < 6 * math.sqrt(0.25 * 0.75 / 4000)
    again = compiled(x)
    assert not torch.equal(again[0], rand), "two runs drew the same values"


class Nonzero(torch.nn.Module):
    """nonzero, whose row count only the data determines (an unbacked size), then ops on it."""

    def forward(self, x):
        rows = aten.nonzero.default(x > 0.5)
        return rows, (rows * 2 + 1).sum(0), rows.shape[0] * x


@pytest.mark.parametrize("x", [torch.rand(4, 5), torch.zeros(4, 5), torch.ones(4, 5)],
                         ids=["some", "none", "all"])
def test_nonzero_runs_on_the_reference_backend(x):
    """The executor infers each node from its inputs' values, so nonzero's row count is counted
    there; the ops after it run on that size in the same engine."""
    torch.manual_seed(0)
    compiled = _compile(Nonzero(), (torch.rand(4, 5),))
    assert_outputs_match(compiled(x), Nonzero()(x))


def test_nonzero_counts_nan_and_takes_a_0d_input():
    class Plain(torch.nn.Module):
        def forward(self, x):
            return aten.nonzero.default(x)

    for x in (torch.tensor([[0.0, float("nan")], [-0.0, 2.0]]), torch.tensor(3.0),
              torch.tensor(0, dtype=torch.int32)):
        compiled = _compile(Plain(), (x,))
        assert_outputs_match(compiled(x), Plain()(x))


def test_nonzero_module_saves_and_loads(tmp_path):
    """Saving traces the compiled module: the engine's fake gives the unbacked row count a new
    unbacked size."""
    x = torch.rand(4, 5)
    compiled = _compile(Nonzero(), (x,))
    path = str(tmp_path / "nonzero.pt2")
    kiln.save(compiled, path, inputs=[x])
    loaded = kiln.load(path).module()
    y = torch.rand(4, 5)
    assert_outputs_match(loaded(y), Nonzero()(y))
