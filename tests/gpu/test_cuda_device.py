"""The ``device`` setting picks the GPU a CUDA engine is loaded on and runs on.

With one GPU these check the description the engine carries and that a saved program keeps it;
with two or more (tests marked so skip otherwise), that an engine compiled for cuda:1 runs there
whatever the current device, and that inputs on another GPU are moved there with a warning.
"""
from __future__ import annotations

import json
import warnings

import pytest
import torch


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(32, 16)

    def forward(self, x):
        return torch.relu(self.fc(x)) * 2.0


def _engine_meta(module) -> dict:
    import kiln

    engines = [m for m in module.modules() if isinstance(m, kiln.KilnEngineModule)]
    assert len(engines) == 1, f"expected one engine, found {len(engines)}"
    engines[0].setup_engine()
    return json.loads(engines[0]._meta)


def _compile_on(index: int):
    import kiln

    device = torch.device("cuda", index)
    model = _Block().eval().to(device)
    x = torch.randn(4, 32, device=device)
    ep = torch.export.export(model, (x,))
    compiled = kiln.compile(ep, inputs=[x], device=f"cuda:{index}", min_block_size=1)
    return model, x, compiled


def test_engine_description_names_the_compile_gpu():
    model, x, compiled = _compile_on(torch.cuda.current_device())
    meta = _engine_meta(compiled)
    assert meta["device"] == f"cuda:{torch.cuda.current_device()}", meta["device"]
    out = compiled(x)
    assert out.device == x.device
    torch.testing.assert_close(out, model(x), rtol=2e-3, atol=2e-3)  # TF32 GEMM


def test_saved_program_keeps_the_gpu(tmp_path):
    import kiln

    model, x, compiled = _compile_on(torch.cuda.current_device())
    path = tmp_path / "block.pt2"
    kiln.save(compiled, str(path), inputs=[x])
    loaded = torch.export.load(str(path)).module()
    metas = [json.loads(n.args[2]) for n in loaded.graph.nodes
             if n.op == "call_function" and "execute_engine" in str(n.target)]
    assert [m["device"] for m in metas] == [f"cuda:{torch.cuda.current_device()}"]
    torch.testing.assert_close(loaded(x), model(x), rtol=2e-3, atol=2e-3)


def test_inputs_on_the_cpu_are_refused_with_the_engine_gpu_named():
    from kiln.errors import InvalidArgumentError

    _, x, compiled = _compile_on(torch.cuda.current_device())
    with pytest.raises(InvalidArgumentError, match="expected a tensor on cuda"):
        compiled(x.cpu())


needs_two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2,
                                    reason="needs two GPUs (device selection across GPUs)")


@needs_two_gpus
def test_engine_for_gpu1_runs_there_whatever_the_current_device():
    model, x, compiled = _compile_on(1)
    with torch.cuda.device(0):
        out = compiled(x)
    assert out.device == torch.device("cuda", 1)
    torch.testing.assert_close(out, model(x), rtol=2e-3, atol=2e-3)


@needs_two_gpus
def test_inputs_on_another_gpu_move_to_the_engine_gpu_with_a_warning():
    model, x, compiled = _compile_on(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(x.to("cuda:0"))
    assert out.device == torch.device("cuda", 1)
    assert any("runs on cuda:1" in str(w.message) for w in caught), [str(w.message) for w in caught]
    torch.testing.assert_close(out, model(x), rtol=2e-3, atol=2e-3)


@needs_two_gpus
def test_one_engine_on_two_gpus_loads_once_per_gpu():
    """One program compiled for two GPUs gives the same engine bytes; each module runs on its own
    GPU (the process keeps one loaded engine per GPU)."""
    import kiln

    model = _Block().eval().to("cuda:0")
    x0 = torch.randn(4, 32, device="cuda:0")
    ep = torch.export.export(model, (x0,))
    on0 = kiln.compile(ep, inputs=[x0], device="cuda:0", min_block_size=1)
    x1 = x0.to("cuda:1")
    on1 = kiln.compile(ep, inputs=[x1], device="cuda:1", min_block_size=1)
    assert _engine_meta(on0)["digest"] == _engine_meta(on1)["digest"]
    out0, out1 = on0(x0), on1(x1)
    assert out0.device == torch.device("cuda", 0) and out1.device == torch.device("cuda", 1)
    torch.testing.assert_close(out1.cpu(), out0.cpu(), rtol=0, atol=0)
