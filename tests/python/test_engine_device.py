"""Which GPU a CUDA engine's description sends it to (kiln._engine_module._engine_device).

The GPU halves (an engine compiled for cuda:N runs there) are in tests/gpu/test_cuda_device.py;
these check the choice itself, with torch's device count stubbed, on any machine.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from kiln import _engine_module


@pytest.fixture
def gpus(monkeypatch):
    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    _engine_module._WARNED.clear()
    _engine_module._gpu_named.cache_clear()
    yield set_count
    _engine_module._gpu_named.cache_clear()


def test_cpu_engine_has_no_gpu(gpus):
    gpus(2)
    assert _engine_module._engine_device({"name": "e", "device": "cpu"}) is None


def test_description_without_an_index_follows_the_inputs(gpus):
    """Descriptions written before the device was recorded say "cuda"."""
    gpus(2)
    assert _engine_module._engine_device({"name": "e", "device": "cuda"}) is None


def test_compile_gpu_is_used_when_present(gpus):
    gpus(2)
    assert _engine_module._engine_device({"name": "e", "device": "cuda:1"}) == torch.device(
        "cuda", 1)


def test_missing_gpu_warns_once_and_follows_the_inputs(gpus):
    gpus(1)
    meta = {"name": "_run_on_acc_0", "device": "cuda:3"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _engine_module._engine_device(meta) is None
        assert _engine_module._engine_device(dict(meta)) is None
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "compiled for cuda:3" in messages[0] and "has 1 GPU(s)" in messages[0], messages[0]


def test_inputs_are_checked_against_the_device_kind():
    """An engine for cuda:1 takes inputs on any CUDA device (moved there if need be)."""
    assert _engine_module._device_type({"device": "cuda:1"}) == "cuda"
    assert _engine_module._device_type({"device": "cuda"}) == "cuda"
    assert _engine_module._device_type({"device": "cpu"}) == "cpu"
    assert _engine_module._device_type({}) == "cpu"
