"""Values of dtypes kiln has no element type for (complex128, ...): the nodes that produce or read
them are declined and run in PyTorch, the rest of the program compiles into engines, and
require_full_compilation names them. complex64 is kiln's: the spectral ops (torch.fft) run in
engines, and the other nodes reading it are declined by the backend, as any op a kernel lacks."""
from __future__ import annotations

import re

import pytest
import torch

import kiln
from conftest import assert_outputs_match
from kiln._input import Input, TorchOnlyInput, prepare_inputs


def _engines(module) -> list:
    return [m for m in module.modules() if isinstance(m, kiln.KilnEngineModule)]


def _ops_outside_engines(module) -> set[str]:
    ops = set()
    for name, child in module.named_children():
        if name.startswith("_run_on_gpu_"):
            ops |= {str(n.target) for n in child.graph.nodes if n.op == "call_function"}
    ops |= {str(n.target) for n in module.graph.nodes if n.op == "call_function"}
    return ops


class SpectralFilter(torch.nn.Module):
    """Linear -> FFT -> complex filter (a complex buffer) -> inverse FFT -> linear; in float32
    (complex64 spectra) or float64 (complex128, which kiln has no element type for)."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.fc_in = torch.nn.Linear(8, 8, dtype=dtype)
        self.fc_out = torch.nn.Linear(8, 8, dtype=dtype)
        self.register_buffer("filter", torch.polar(torch.rand(5, dtype=dtype) + 0.5,
                                                   torch.randn(5, dtype=dtype)))

    def forward(self, x):
        spectrum = torch.fft.rfft(torch.relu(self.fc_in(x))) * self.filter
        return self.fc_out(torch.fft.irfft(spectrum, n=8)) * 2.0


class Rotary(torch.nn.Module):
    """A rotary embedding written with complex numbers, as LLaMA does."""

    def __init__(self):
        super().__init__()
        angles = torch.arange(6.0)[:, None] * torch.arange(4.0)[None] * 0.1
        self.register_buffer("freqs", torch.polar(torch.ones_like(angles), angles))
        self.q = torch.nn.Linear(8, 8)

    def forward(self, x):
        q = self.q(x)
        rotated = torch.view_as_complex(q.reshape(*q.shape[:-1], -1, 2)) * self.freqs
        return torch.tanh(torch.view_as_real(rotated).flatten(-2)) + 1.0


@pytest.mark.parametrize("partitioner", ["fast", "global"])
def test_complex_part_runs_in_pytorch_and_the_rest_in_engines(partitioner):
    model, x = SpectralFilter(torch.float64).eval(), torch.randn(4, 8, dtype=torch.float64)
    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x], min_block_size=1,
                            use_fast_partitioner=partitioner == "fast")
    engines = _engines(compiled)
    assert len(engines) == 2, [name for name, _ in compiled.named_children()]
    outside = _ops_outside_engines(compiled)
    assert {"aten._fft_r2c.default", "aten._fft_c2r.default"} <= outside, outside
    for engine in engines:
        assert "aten._fft" not in engine.describe()
    assert_outputs_match(compiled(x), model(x))


@pytest.mark.parametrize("partitioner", ["fast", "global"])
def test_complex64_spectra_run_in_engines_and_the_complex_product_in_pytorch(partitioner):
    """The FFTs run in engines (complex64 crosses into PyTorch and back); the product with the
    complex buffer has no kiln kernel and runs in PyTorch."""
    model, x = SpectralFilter().eval(), torch.randn(4, 8)
    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x], min_block_size=1,
                            use_fast_partitioner=partitioner == "fast")
    engines = _engines(compiled)
    assert len(engines) == 2, [name for name, _ in compiled.named_children()]
    assert "aten.mul.Tensor" in _ops_outside_engines(compiled)
    described = "".join(engine.describe() for engine in engines)
    assert "aten._fft_r2c" in described and "aten._fft_c2r" in described, described
    assert_outputs_match(compiled(x), model(x))


def test_complex_weights_stay_in_pytorch_and_the_module_saves():
    model, x = Rotary().eval(), torch.randn(2, 6, 8)
    compiled = kiln.compile(torch.export.export(model, (x,)), inputs=[x], min_block_size=1)
    assert len(_engines(compiled)) == 2
    assert_outputs_match(compiled(x), model(x))


def test_program_input_of_complex_dtype_is_left_to_pytorch():
    class MixesInputs(torch.nn.Module):
        def forward(self, x, c):
            return (x * 2.0).relu(), (c * c).abs() + x

    model = MixesInputs()
    x, c = torch.randn(3, 4), torch.randn(3, 4, dtype=torch.complex128)
    specs = prepare_inputs([x, c])
    assert isinstance(specs[0], Input)
    assert specs[1] == TorchOnlyInput((3, 4), torch.complex128)
    compiled = kiln.compile(torch.export.export(model, (x, c)), inputs=[x, c], min_block_size=1)
    assert len(_engines(compiled)) == 2  # the relu, and the add after the complex abs
    assert "aten.abs.default" in _ops_outside_engines(compiled)
    assert_outputs_match(compiled(x, c), model(x, c))


def test_dynamic_program_with_a_complex_input():
    class MixesInputs(torch.nn.Module):
        def forward(self, x, c):
            return (c * c).abs() + x.relu()

    batch = torch.export.Dim("batch", min=1, max=8)
    x, c = torch.randn(3, 4), torch.randn(3, 4, dtype=torch.complex128)
    ep = torch.export.export(MixesInputs(), (x, c), dynamic_shapes=({0: batch}, {0: batch}))
    compiled = kiln.compile(ep, inputs=[kiln.Input(min_shape=(1, 4), opt_shape=(3, 4),
                                                   max_shape=(8, 4)), c], min_block_size=1)
    assert _engines(compiled)
    for n in (1, 5, 8):
        xi, ci = torch.randn(n, 4), torch.randn(n, 4, dtype=torch.complex128)
        assert_outputs_match(compiled(xi, ci), MixesInputs()(xi, ci))


def test_require_full_compilation_names_each_complex_node():
    class Selects(torch.nn.Module):
        def forward(self, mask, a, b, x):
            return torch.where(mask, a, b), x.relu()

    inputs = (torch.rand(10, 3) > 0.5, torch.tensor(2j, dtype=torch.complex128),
              torch.tensor(1 + 0j, dtype=torch.complex128), torch.randn(3))
    ep = torch.export.export(Selects(), inputs)
    with pytest.raises(kiln.UnsupportedError) as error:
        kiln.compile(ep, inputs=list(inputs), min_block_size=1, require_full_compilation=True)
    message = str(error.value)
    assert message.startswith("require_full_compilation=True, but 1 op is not supported by kiln:")
    assert re.search(r"aten\.where\.self \(1 node: where\): reads and produces complex128 values, "
                     r"which kiln has no element type for", message), message
    assert "torch_executed_nodes" not in message and "relu" not in message
    # Without it, the relu is an engine and the where runs in PyTorch.
    compiled = kiln.compile(ep, inputs=list(inputs), min_block_size=1)
    assert len(_engines(compiled)) == 1
    assert_outputs_match(compiled(*inputs), Selects()(*inputs))


def test_dry_run_reports_the_real_dtype_and_reason(tmp_path):
    model, x = SpectralFilter(torch.float64).eval(), torch.randn(4, 8, dtype=torch.float64)
    ep = torch.export.export(model, (x,))
    path = tmp_path / "report.txt"
    compiled = kiln.compile(ep, inputs=[x], min_block_size=1, dryrun=str(path))
    assert not _engines(compiled)
    report = path.read_text()
    assert re.search(r"aten\._fft_r2c\.default x1: produces complex128 values", report), report
    assert "torch_executed_nodes" not in report and "uint8[" not in report, report


def test_whole_program_engine_declines_complex_values():
    model, x = SpectralFilter(torch.float64).eval(), torch.randn(4, 8, dtype=torch.float64)
    with pytest.raises(kiln.UnsupportedError, match=r"node '_fft_r2c' produces complex128 values"):
        kiln.convert_exported_program_to_serialized_engine(torch.export.export(model, (x,)),
                                                           inputs=[x])


def test_kiln_input_still_takes_kiln_element_types_only():
    with pytest.raises(ValueError, match="kiln has no element type for torch.complex128"):
        kiln.Input((2, 3), dtype=torch.complex128)


def test_complex64_outside_the_spectral_ops_is_declined_by_the_backend():
    """complex64 is an element type (an input spec takes it), but only the spectral ops have
    kernels for it: the complex product and abs run in PyTorch, and require_full_compilation
    names them with the dtype."""
    class MixesInputs(torch.nn.Module):
        def forward(self, x, c):
            return (c * c).abs() + x.relu()

    x, c = torch.randn(3, 4), torch.randn(3, 4, dtype=torch.complex64)
    assert isinstance(prepare_inputs([x, c])[1], Input)
    ep = torch.export.export(MixesInputs(), (x, c))
    with pytest.raises(kiln.UnsupportedError) as error:
        kiln.compile(ep, inputs=[x, c], min_block_size=1, require_full_compilation=True)
    assert re.search(r"aten\.mul\.Tensor \(1 node: mul\): complex64 input", str(error.value)), \
        str(error.value)
    compiled = kiln.compile(ep, inputs=[x, c], min_block_size=1)
    assert {"aten.mul.Tensor", "aten.abs.default"} <= _ops_outside_engines(compiled)
    assert_outputs_match(compiled(x, c), MixesInputs()(x, c))
