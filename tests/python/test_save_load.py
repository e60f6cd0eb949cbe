"""kiln.save / kiln.load: a compiled module written as a torch.export program whose engines are
calls to kiln::execute_engine, restored in a fresh process."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import kiln
from conftest import assert_outputs_match
from test_compile import ConvNet, Sandwich


def _run_in_fresh_process(path: str, inputs_path: str, expected_path: str) -> None:
    script = textwrap.dedent(f"""
        import torch, kiln
        program = kiln.load({path!r})
        module = program.module()
        inputs = torch.load({inputs_path!r})
        expected = torch.load({expected_path!r})
        for x, e in zip(inputs, expected):
            torch.testing.assert_close(module(x), e, rtol=1e-4, atol=1e-4)
        calls = [n for n in program.graph.nodes if "execute_engine" in str(n.target)]
        assert calls, "the saved program has no kiln::execute_engine call"
        print("ok", len(calls))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_save_then_load_in_a_fresh_process(tmp_path):
    model, x = Sandwich().eval(), torch.randn(4, 16)
    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x], min_block_size=2)
    path = str(tmp_path / "hybrid.pt2")
    kiln.save(compiled, path)
    assert os.path.getsize(path) > 0
    inputs = [x, torch.randn(4, 16)]
    torch.save(inputs, tmp_path / "inputs.pt")
    torch.save([model(i) for i in inputs], tmp_path / "expected.pt")
    _run_in_fresh_process(path, str(tmp_path / "inputs.pt"), str(tmp_path / "expected.pt"))


def test_save_keeps_dynamic_ranges(tmp_path):
    model = ConvNet().eval()
    x = torch.randn(4, 3, 8, 8)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("b", min=1, max=8)},))
    compiled = kiln.compile(ep, inputs=[kiln.Input(min_shape=(1, 3, 8, 8), opt_shape=(4, 3, 8, 8),
                                                   max_shape=(8, 3, 8, 8))])
    path = str(tmp_path / "dynamic.pt2")
    kiln.save(compiled, path)
    inputs = [torch.randn(n, 3, 8, 8) for n in (1, 5, 8)]
    torch.save(inputs, tmp_path / "inputs.pt")
    torch.save([model(i) for i in inputs], tmp_path / "expected.pt")
    _run_in_fresh_process(path, str(tmp_path / "inputs.pt"), str(tmp_path / "expected.pt"))


def test_stripped_engine_weights_travel_with_the_saved_program(tmp_path):
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x], immutable_weights=False, strip_engine_weights=True)
    path = str(tmp_path / "stripped.pt2")
    kiln.save(compiled, path)
    torch.save([x], tmp_path / "inputs.pt")
    torch.save([model(x)], tmp_path / "expected.pt")
    _run_in_fresh_process(path, str(tmp_path / "inputs.pt"), str(tmp_path / "expected.pt"))


def test_load_in_process_matches_and_errors_are_clear(tmp_path):
    model, x = ConvNet().eval(), torch.randn(2, 3, 8, 8)
    compiled = kiln.compile(torch.export.export(model, (x,)), inputs=[x])
    path = str(tmp_path / "m.pt2")
    kiln.save(compiled, path, arg_inputs=[x])
    assert_outputs_match(kiln.load(path).module()(x), model(x))
    with pytest.raises(kiln.InvalidArgumentError, match="file path is empty"):
        kiln.save(compiled, "")
    with pytest.raises(kiln.NotFoundError, match="no file"):
        kiln.load(str(tmp_path / "missing.pt2"))
    with pytest.raises(kiln.InvalidArgumentError, match="does not record its inputs"):
        kiln.save(torch.nn.Linear(2, 2), str(tmp_path / "x.pt2"))


def test_seed_cross_compile_names_map_to_save_and_load(tmp_path):
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    compiled = kiln.compile(torch.export.export(model, (x,)), inputs=[x])
    path = str(tmp_path / "c.pt2")
    kiln.save_cross_compiled_exported_program(compiled, path)
    loaded = kiln.load_cross_compiled_exported_program(path)
    assert_outputs_match(loaded.module()(x), model(x))


class Wide(torch.nn.Module):
    """Weights of a few MB, so that the saved engine is a large record."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(1024, 1024)

    def forward(self, x):
        return torch.relu(self.fc(x))


def test_load_reads_large_engines_in_place(tmp_path):
    import tracemalloc

    from kiln import _archive

    model, x = Wide().eval(), torch.randn(2, 1024)
    compiled = kiln.compile(torch.export.export(model, (x,)), inputs=[x], min_block_size=1)
    path = str(tmp_path / "wide.pt2")
    kiln.save(compiled, path)
    records = _archive._large_stored_records(path)
    engine_bytes = max(records.values())
    assert engine_bytes > 4 << 20, records  # the engine, with its 4 MB of weights
    kiln.load(path)  # torch.export's one-time start-up, outside the measurement

    tracemalloc.start()
    try:
        module = kiln.load(path).module()
        _, mapped_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        copied = torch.export.load(path).module()
        _, copied_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # torch's reader makes a bytes copy of each record; kiln.load maps the engine instead.
    assert copied_peak > engine_bytes
    assert mapped_peak < engine_bytes // 4
    assert_outputs_match(module(x), model(x))
    assert torch.equal(module(x), copied(x))


def test_load_falls_back_to_torch_reading_when_mapping_is_unavailable(tmp_path, monkeypatch):
    from kiln import _archive

    model, x = Wide().eval(), torch.randn(2, 1024)
    compiled = kiln.compile(torch.export.export(model, (x,)), inputs=[x], min_block_size=1)
    path = str(tmp_path / "wide.pt2")
    kiln.save(compiled, path)
    # A record the archive does not have: torch's own read of the rest, same result.
    assert _archive._install()
    monkeypatch.setattr(_archive, "_large_stored_records", lambda p: {"no/such/record": 1 << 21})
    assert_outputs_match(kiln.load(path).module()(x), model(x))
    # A torch whose archive reader is not the one kiln knows: read the usual way.
    monkeypatch.setattr(_archive, "_install", lambda: False)
    assert_outputs_match(kiln.load(path).module()(x), model(x))
