"""kiln.compile end to end: partitioning into engines and PyTorch segments, the settings that shape
it, and the hybrid module against eager."""
from __future__ import annotations

import gc
import logging
import re
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

import kiln
from conftest import assert_outputs_match


class ConvNet(torch.nn.Module):
    """Fully supported: conv, batch norm, relu, pooling, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x)) + x
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class Sandwich(torch.nn.Module):
    """Supported blocks around two ops kiln declines (nonzero_static, histc): what they compute
    depends on the data, and no backend has a kernel for them. (Nonzero, below, has a data-
    dependent output size as well.)"""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(16, 16)
        self.b = torch.nn.Linear(16, 16)
        self.c = torch.nn.Linear(16, 8)

    def forward(self, x):
        h = torch.tanh(self.a(x)) * 2.0 + 1.0
        h = torch.sigmoid(h)
        hits = torch.nonzero_static(h > 0.5, size=8)     # unsupported
        h = torch.relu(self.b(h)) * 3.0 + h + hits.sum() * 0.01
        h = torch.exp(-h.abs()) + 0.25
        counts = torch.histc(h, bins=8, min=0.25, max=1.25)  # unsupported
        out = self.c(h) * 2.0 - 1.0
        out = torch.tanh(out) + counts.amax() / 64
        return out.relu() + 0.5


def _compile(module, args, **settings):
    module = module.eval()
    ep = torch.export.export(module, args)
    return kiln.compile(ep, inputs=list(args), **settings)


def _children(module) -> list[str]:
    """The partition's submodules (ep.module() may add others, like torch's _guards_fn)."""
    return [name for name, _ in module.named_children() if name.startswith("_run_on_")]


def _engines(module) -> list[kiln.KilnEngineModule]:
    return [m for _, m in module.named_children() if isinstance(m, kiln.KilnEngineModule)]


def test_fully_supported_program_is_one_engine_and_matches_eager():
    model, x = ConvNet().eval(), torch.randn(2, 3, 16, 16)
    compiled = _compile(model, (x,))
    assert _children(compiled) == ["_run_on_acc_0"]
    assert isinstance(compiled._run_on_acc_0, kiln.KilnEngineModule)
    assert_outputs_match(compiled(x), model(x))
    # Another input of the same shape: the engine is reused.
    x2 = torch.randn(2, 3, 16, 16)
    assert_outputs_match(compiled(x2), model(x2))


def test_programs_returning_torch_named_tuples_compile_and_return_them():
    """x.sort(), x.max(dim) and x.topk(k) return torch.return_types named tuples, which
    torch.export.save cannot write in an output spec: kiln archives the program with plain tuples
    and the compiled module still returns the named tuples."""

    class Sorts(torch.nn.Module):
        def forward(self, x):
            return x.sort(dim=1, descending=True), x.max(dim=0), x.topk(2)

    x = torch.randn(3, 5)
    ep = torch.export.export(Sorts(), (x,))
    compiled = kiln.compile(ep, inputs=[x], min_block_size=1, require_full_compilation=True)
    actual, expected = compiled(x), Sorts()(x)
    for got, want in zip(actual, expected):
        assert type(got) is type(want)
        assert torch.equal(got.values, want.values) and torch.equal(got.indices, want.indices)


def test_unsupported_ops_between_supported_give_engines_and_torch_segments():
    model, x = Sandwich().eval(), torch.randn(4, 16)
    compiled = _compile(model, (x,), min_block_size=2)
    names = _children(compiled)
    assert [n for n in names if n.startswith("_run_on_acc_")] == \
        ["_run_on_acc_0", "_run_on_acc_2", "_run_on_acc_4"]
    assert [n for n in names if n.startswith("_run_on_gpu_")] == ["_run_on_gpu_1", "_run_on_gpu_3"]
    assert len(_engines(compiled)) == 3
    # The PyTorch segments hold exactly the unsupported ops.
    gpu_ops = {str(n.target) for n in compiled._run_on_gpu_1.graph.nodes if n.op == "call_function"}
    assert any("nonzero_static" in op for op in gpu_ops)
    assert_outputs_match(compiled(x), model(x))


class Unique(torch.nn.Module):
    """A data-dependent output size kiln declines (unique; the reference backend runs nonzero):
    torch.export checks it at run time (_assert_scalar of the size's bounds), nodes kiln's core
    does not read and the segments must not lose."""

    def forward(self, x):
        h = torch.relu(x) * 2.0
        return torch.unique(torch.floor(h)), torch.tanh(h) + 1.0


@pytest.mark.parametrize("fast", [True, False])
def test_data_dependent_sizes_run_in_pytorch_with_their_checks(fast):
    model, x = Unique(), torch.randn(4, 8)
    compiled = _compile(model, (x,), min_block_size=1, use_fast_partitioner=fast)
    # The fast partitioner keeps graph order (an engine on each side of unique), the global one
    # merges the supported nodes into one.
    assert len(_engines(compiled)) == (2 if fast else 1)
    targets = [str(n.target) for n in compiled.graph.nodes if n.op == "call_function"]
    assert "aten._assert_scalar.default" in targets  # torch.export's checks are kept
    for sample in (x, torch.randn(4, 8) * 3, torch.zeros(4, 8)):
        indices, values = compiled(sample)
        expected_indices, expected_values = model(sample)
        assert torch.equal(indices, expected_indices)
        assert_outputs_match(values, expected_values)


def test_global_partitioner_leaves_torch_nodes_inline_and_matches_eager():
    model, x = Sandwich().eval(), torch.randn(4, 16)
    compiled = _compile(model, (x,), min_block_size=2, use_fast_partitioner=False)
    names = _children(compiled)
    assert names and all(n.startswith("_run_on_acc_") for n in names), names
    top_level = {str(n.target) for n in compiled.graph.nodes if n.op == "call_function"}
    assert any("nonzero_static" in op for op in top_level)
    assert any("histc" in op for op in top_level)
    assert_outputs_match(compiled(x), model(x))


def test_torch_executed_ops_forces_fallback():
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    for spelling in (torch.ops.aten.relu.default, "torch.ops.aten.relu.default",
                     "aten.relu.default"):
        compiled = _compile(model, (x,), torch_executed_ops={spelling}, min_block_size=1)
        in_torch = [str(n.target) for name, m in compiled.named_children()
                    if name.startswith("_run_on_gpu_") for n in m.graph.nodes
                    if n.op == "call_function"]
        assert in_torch.count("aten.relu.default") == 2, (spelling, in_torch)
        for engine in _engines(compiled):
            assert "aten.relu.default" not in engine.describe()
        assert_outputs_match(compiled(x), model(x))


def test_torch_executed_modules_runs_that_module_in_pytorch():
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    compiled = _compile(model, (x,), torch_executed_modules=["fc"], min_block_size=1)
    last = [name for name in _children(compiled)][-1]
    assert last.startswith("_run_on_gpu_")
    ops = [str(n.target) for n in getattr(compiled, last).graph.nodes if n.op == "call_function"]
    assert any("addmm" in op or "linear" in op for op in ops), ops
    assert_outputs_match(compiled(x), model(x))
    with pytest.raises(kiln.InvalidArgumentError, match="no_such_module"):
        _compile(model, (x,), torch_executed_modules=["no_such_module"])


def test_min_block_size_sends_small_segments_to_pytorch():
    model, x = Sandwich().eval(), torch.randn(4, 16)
    small = _compile(model, (x,), min_block_size=1)
    large = _compile(model, (x,), min_block_size=7)
    assert len(_engines(large)) < len(_engines(small))
    assert_outputs_match(large(x), model(x))


def test_too_little_support_returns_the_program_unchanged_with_a_warning():
    model, x = Sandwich().eval(), torch.randn(4, 16)
    with pytest.warns(UserWarning, match="returning the program unchanged"):
        compiled = _compile(model, (x,), min_block_size=1000)
    assert not _engines(compiled)
    assert_outputs_match(compiled(x), model(x))


def test_require_full_compilation_lists_each_unsupported_op():
    model, x = Sandwich().eval(), torch.randn(4, 16)
    with pytest.raises(kiln.UnsupportedError) as error:
        _compile(model, (x,), require_full_compilation=True)
    message = str(error.value)
    assert "require_full_compilation" in message
    assert re.search(r"aten\.nonzero_static\.default \(1 node", message), message
    assert re.search(r"aten\.histc\.default \(1 node", message), message


def test_dynamic_batch_engine_checks_its_range():
    model = ConvNet().eval()
    x = torch.randn(4, 3, 8, 8)
    batch = torch.export.Dim("batch", min=1, max=16)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    compiled = kiln.compile(ep, inputs=[kiln.Input(min_shape=(1, 3, 8, 8), opt_shape=(4, 3, 8, 8),
                                                   max_shape=(8, 3, 8, 8))])
    for n in (1, 3, 8):
        xi = torch.randn(n, 3, 8, 8)
        assert_outputs_match(compiled(xi), model(xi))
    with pytest.raises(kiln.OutOfRangeError, match=r"\[1, 8\]"):
        compiled(torch.randn(9, 3, 8, 8))


def test_input_spec_outside_the_exported_range_is_an_error():
    model = ConvNet().eval()
    ep = torch.export.export(model, (torch.randn(2, 3, 8, 8),))  # static batch
    with pytest.raises(kiln.InvalidArgumentError, match="dynamic_shapes"):
        kiln.compile(ep, inputs=[kiln.Input(min_shape=(1, 3, 8, 8), opt_shape=(2, 3, 8, 8),
                                            max_shape=(4, 3, 8, 8))])


def test_engine_module_rejects_bad_inputs_clearly():
    model, x = ConvNet().eval(), torch.randn(2, 3, 8, 8)
    engine = _compile(model, (x,))._run_on_acc_0
    with pytest.raises(kiln.InvalidArgumentError, match="expected 1 inputs, found 2"):
        engine(x, x)
    with pytest.raises(kiln.InvalidArgumentError, match="dtype float32, found float64"):
        engine(x.double())
    with pytest.raises(kiln.InvalidArgumentError, match="dim 2: expected size 8, found 9"):
        engine(torch.randn(2, 3, 9, 8))


def test_kwarg_inputs_and_several_outputs():
    class TwoHeads(torch.nn.Module):
        def forward(self, x, *, scale):
            return {"sum": (x * scale).sum(-1), "prod": (x + scale).relu() * 2.0 + 1.0}

    model = TwoHeads()
    x, scale = torch.randn(3, 5), torch.randn(3, 5)
    ep = torch.export.export(model, (x,), {"scale": scale})
    compiled = kiln.compile(ep, arg_inputs=[x], kwarg_inputs={"scale": scale}, min_block_size=1)
    assert_outputs_match(compiled(x, scale=scale), model(x, scale=scale))


def test_lazy_engine_init_loads_at_first_call():
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    compiled = _compile(model, (x,), lazy_engine_init=True)
    assert "not loaded yet" in repr(compiled._run_on_acc_0)
    assert_outputs_match(compiled(x), model(x))
    assert "not loaded yet" not in repr(compiled._run_on_acc_0)


def test_refittable_and_stripped_engines_match_eager():
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    refittable = _compile(model, (x,), immutable_weights=False)
    assert refittable._run_on_acc_0.runtime.info["refittable"]
    assert_outputs_match(refittable(x), model(x))
    stripped = _compile(model, (x,), immutable_weights=False, strip_engine_weights=True)
    assert stripped._run_on_acc_0.runtime.info["weights_stripped"]
    assert len(stripped._run_on_acc_0.engine) < len(refittable._run_on_acc_0.engine)
    assert_outputs_match(stripped(x), model(x))


def test_kiln_dynamo_is_the_same_api():
    assert kiln.dynamo.compile is kiln.compile
    assert kiln.dynamo.Input is kiln.Input


class Float64BetweenConvs(torch.nn.Module):
    """A float64 step (which kiln's CUDA backend leaves to PyTorch by design; the reference
    backend runs it) between two supported parts."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = (y.double() * 1.5).float()
        return torch.relu(self.fc(y + 1.0))


_HAS_CUDA_BACKEND = bool(kiln._C.supported_op_names("cuda"))


@pytest.mark.skipif(not _HAS_CUDA_BACKEND, reason="kiln was built without its CUDA backend")
def test_cross_compile_builds_gpu_engines_here_and_leaves_what_cuda_declines_to_pytorch():
    model, x = Float64BetweenConvs().eval(), torch.randn(1, 3, 8, 8)
    ep = torch.export.export(model, (x,))
    compiled = kiln.cross_compile(ep, "sm_90", inputs=[x], min_block_size=1,
                                  pass_through_build_failures=True)
    engines = _engines(compiled)
    assert engines, _children(compiled)
    for engine in engines:
        info = engine.runtime.info
        assert (info["backend"], info["arch"]) == ("cuda", "sm_90")
    # The float64 multiply runs in PyTorch: the partition asked the CUDA backend, not the CPU one.
    assert any(name.startswith("_run_on_gpu") for name in _children(compiled)) or \
        any(n.op == "call_function" and "mul" in str(n.target) for n in compiled.graph.nodes)


def test_build_failure_falls_back_to_pytorch_with_a_warning():
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    ep = torch.export.export(model, (x,))
    # An arch no compiler knows: every engine build fails.
    with pytest.warns(UserWarning, match="runs in PyTorch"):
        compiled = kiln.compile(ep, inputs=[x], device="cuda:0", target="sm_10")
    assert not _engines(compiled)
    assert_outputs_match(compiled(x), model(x))


def test_serialized_engine_of_a_whole_program():
    model, x = ConvNet().eval(), torch.randn(2, 3, 8, 8)
    ep = torch.export.export(model, (x,))
    data = kiln.convert_exported_program_to_serialized_engine(ep, inputs=[x])
    assert isinstance(data, bytes) and data[4:8] == b"KILN"
    engine = kiln._C.Engine(data)
    (out,) = engine.run([x])
    assert_outputs_match(out, model(x))
    with pytest.raises(kiln.UnsupportedError, match=r"aten\.histc\.default"):
        kiln.convert_exported_program_to_serialized_engine(
            torch.export.export(Sandwich().eval(), (torch.randn(4, 16),)),
            inputs=[torch.randn(4, 16)])


def test_engine_keeps_the_buffer_it_reads_in_place():
    # An engine reads its bytes where they are when their alignment allows (a GPU engine's
    # weights then reach the device with no host copy), so it holds the buffer while it lives.
    model, x = ConvNet().eval(), torch.randn(2, 3, 8, 8)
    data = kiln.convert_exported_program_to_serialized_engine(
        torch.export.export(model, (x,)), inputs=[x])
    array = torch.frombuffer(bytearray(data), dtype=torch.uint8).numpy()
    before = sys.getrefcount(array)
    engine = kiln._C.Engine(array)
    assert sys.getrefcount(array) > before
    del array, data
    gc.collect()
    (out,) = engine.run([x])
    assert_outputs_match(out, model(x))


def test_kept_whole_ops_reach_the_engine_undecomposed():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.LayerNorm(16)
            self.fc = torch.nn.Linear(16, 16)

        def forward(self, x):
            return F.gelu(self.fc(self.norm(x))) + F.silu(x)

    model, x = Block().eval(), torch.randn(2, 4, 16)
    compiled = _compile(model, (x,), min_block_size=1)
    text = compiled._run_on_acc_0.describe()
    assert "aten.layer_norm.default" in text and "aten.silu.default" in text
    assert_outputs_match(compiled(x), model(x))
    full = _compile(model, (x,), min_block_size=1, enable_experimental_decompositions=True)
    assert "aten.layer_norm.default" not in full._run_on_acc_0.describe()
    assert_outputs_match(full(x), model(x))


def test_module_whose_input_is_named_input_compiles():
    # ep.module() renames a placeholder called `input` (a Python builtin) to `input_1`; the split
    # must still find the program's user input.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3).eval()
    x = torch.randn(1, 3, 8, 8)
    ep = torch.export.export(conv, (x,))
    assert list(ep.graph_signature.user_inputs) == ["input"]
    compiled = kiln.compile(ep, inputs=[x], min_block_size=1)
    assert_outputs_match(compiled(x), conv(x))


def test_an_input_the_program_mutates_is_updated_as_eager_updates_it():
    class Accumulates(torch.nn.Module):  # a running sum kept in an input, updated in place
        def forward(self, x, total):
            total.add_(x.sum(0))
            return torch.atan2(x, total)

    x = torch.randn(4, 3)
    ep = torch.export.export(Accumulates(), (x, torch.zeros(3)))
    compiled = kiln.compile(ep, inputs=[x, torch.zeros(3)], min_block_size=1,
                            require_full_compilation=True)
    eager_total, kiln_total = torch.ones(3), torch.ones(3)
    expected = Accumulates()(x, eager_total)
    assert_outputs_match(compiled(x, kiln_total), expected)
    torch.testing.assert_close(kiln_total, eager_total)  # the engine computes, torch copies back
    assert not torch.equal(kiln_total, torch.ones(3))
