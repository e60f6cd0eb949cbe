"""The engine cache as compile() uses it: hits, misses, keys, corruption, concurrent compiles."""
from __future__ import annotations

import logging
import multiprocessing
import os

import pytest
import torch

import kiln
from conftest import assert_outputs_match
from test_compile import ConvNet


class MemoryCache(kiln.BaseEngineCache):
    def __init__(self):
        self.entries: dict[str, bytes] = {}
        self.loads = 0
        self.saves = 0

    def save(self, hash, blob):
        self.saves += 1
        self.entries[hash] = blob

    def load(self, hash):
        self.loads += 1
        return self.entries.get(hash)

    def remove(self, hash):
        self.entries.pop(hash, None)


def _compile(model, x, caplog=None, **settings):
    ep = torch.export.export(model, (x,))
    if caplog is not None:
        caplog.clear()
    return kiln.compile(ep, inputs=[x], **settings)


def _built(caplog) -> int:
    return sum("built engine" in r.getMessage() for r in caplog.records)


def _hits(caplog) -> int:
    """Engines, or whole compiled programs, taken from the cache."""
    return sum("from the cache" in r.getMessage() for r in caplog.records)


def _program_hits(caplog) -> int:
    return sum("compiled program from the cache" in r.getMessage() for r in caplog.records)


@pytest.fixture
def engine_level_only(monkeypatch):
    """Tests of the per-engine cache: without the program-level entries in front of it."""
    monkeypatch.setattr(kiln._compiler, "_USE_PROGRAM_CACHE", False)


def test_second_compile_hits_the_disk_cache(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kiln")
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    settings = dict(cache_built_engines=True, reuse_cached_engines=True,
                    engine_cache_dir=str(tmp_path))
    first = _compile(model, x, caplog, **settings)
    assert _built(caplog) == 1 and _hits(caplog) == 0
    # One entry for the engine, one for the whole compiled program.
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".kcache")]) == 2
    second = _compile(model, x, caplog, **settings)
    assert _built(caplog) == 0 and _program_hits(caplog) == 1
    assert_outputs_match(second(x), model(x))
    assert_outputs_match(first(x), second(x), rtol=0, atol=0)


def test_engine_cache_hit_without_the_program_entry(tmp_path, caplog, engine_level_only):
    caplog.set_level(logging.INFO, logger="kiln")
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    settings = dict(cache_built_engines=True, reuse_cached_engines=True,
                    engine_cache_dir=str(tmp_path))
    _compile(model, x, caplog, **settings)
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".kcache")]) == 1
    module = _compile(model, x, caplog, **settings)
    assert _built(caplog) == 0 and _hits(caplog) == 1 and _program_hits(caplog) == 0
    assert_outputs_match(module(x), model(x))


def test_key_covers_weights_settings_and_shapes(caplog, engine_level_only):
    caplog.set_level(logging.INFO, logger="kiln")
    cache = MemoryCache()
    settings = dict(cache_built_engines=True, reuse_cached_engines=True, custom_engine_cache=cache)
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    _compile(model, x, **settings)
    assert len(cache.entries) == 1
    # Different weights: a miss.
    other = ConvNet().eval()
    _compile(other, x, caplog, **settings)
    assert _built(caplog) == 1 and len(cache.entries) == 2
    # A build-affecting setting: a miss.
    _compile(model, x, caplog, optimization_level=5, **settings)
    assert _built(caplog) == 1 and len(cache.entries) == 3
    # Another input shape: a miss.
    _compile(model, torch.randn(2, 3, 8, 8), caplog, **settings)
    assert _built(caplog) == 1 and len(cache.entries) == 4
    # The same again: a hit, and the right answer.
    module = _compile(other, x, caplog, **settings)
    assert _built(caplog) == 0 and _hits(caplog) == 1
    assert_outputs_match(module(x), other(x))


def test_refittable_engines_share_an_entry_across_weights(caplog):
    caplog.set_level(logging.INFO, logger="kiln")
    cache = MemoryCache()
    settings = dict(cache_built_engines=True, reuse_cached_engines=True, custom_engine_cache=cache,
                    immutable_weights=False, refit_identical_engine_weights=True)
    model_a, model_b, x = ConvNet().eval(), ConvNet().eval(), torch.randn(1, 3, 8, 8)
    _compile(model_a, x, **settings)
    assert len(cache.entries) == 1
    # Same graph, other weights: the cached engine is refitted with model_b's weights.
    module = _compile(model_b, x, caplog, **settings)
    assert _built(caplog) == 0 and _hits(caplog) == 1 and len(cache.entries) == 1
    assert_outputs_match(module(x), model_b(x))


def test_only_cache_built_engines_never_reads(caplog, engine_level_only):
    caplog.set_level(logging.INFO, logger="kiln")
    cache = MemoryCache()
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    for _ in range(2):
        _compile(model, x, caplog, cache_built_engines=True, custom_engine_cache=cache)
        assert _built(caplog) == 1
    assert cache.loads == 0 and cache.saves == 2


def test_corrupt_entry_is_a_warning_a_miss_and_a_removal(tmp_path, caplog, engine_level_only):
    caplog.set_level(logging.INFO, logger="kiln")
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    settings = dict(cache_built_engines=True, reuse_cached_engines=True,
                    engine_cache_dir=str(tmp_path))
    _compile(model, x, **settings)
    (entry,) = [tmp_path / f for f in os.listdir(tmp_path) if f.endswith(".kcache")]
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    module = _compile(model, x, caplog, **settings)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert _built(caplog) == 1
    assert_outputs_match(module(x), model(x))
    # The bad entry was replaced by a good one.
    module = _compile(model, x, caplog, **settings)
    assert _hits(caplog) == 1


def test_valid_entry_with_a_broken_engine_is_removed(caplog, engine_level_only):
    caplog.set_level(logging.INFO, logger="kiln")
    cache = MemoryCache()
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    settings = dict(cache_built_engines=True, reuse_cached_engines=True, custom_engine_cache=cache)
    _compile(model, x, **settings)
    (key,) = cache.entries
    cache.insert(key, b"\x10\x00\x00\x00KILN" + b"\x00" * 64)  # well packed, not an engine
    module = _compile(model, x, caplog, **settings)
    assert any("unusable" in r.getMessage() for r in caplog.records)
    assert _built(caplog) == 1
    assert_outputs_match(module(x), model(x))


def _compile_into(cache_dir: str, seed: int) -> None:
    torch.manual_seed(seed)
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    for _ in range(3):
        module = _compile(model, x, cache_built_engines=True, reuse_cached_engines=True,
                          engine_cache_dir=cache_dir)
        torch.testing.assert_close(module(x), model(x), rtol=1e-4, atol=1e-4)


def test_two_processes_compiling_at_once_stay_correct(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_compile_into, args=(str(tmp_path), seed))
                 for seed in (0, 0, 1)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=600)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    entries = [f for f in os.listdir(tmp_path) if f.endswith(".kcache")]
    # Two distinct models, an engine entry and a program entry each; the two writers of seed 0
    # agree on their entries.
    assert len(entries) == 4
    # No temporary files left behind (the writers' lock file is a dotfile).
    assert not [f for f in os.listdir(tmp_path) if not f.endswith(".kcache")
                and not f.startswith(".")]


def test_program_entry_covers_settings_and_weights(caplog):
    caplog.set_level(logging.INFO, logger="kiln")
    cache = MemoryCache()
    settings = dict(cache_built_engines=True, reuse_cached_engines=True, custom_engine_cache=cache)
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    _compile(model, x, **settings)
    assert len(cache.entries) == 2
    other = ConvNet().eval()
    module = _compile(other, x, caplog, **settings)
    assert _program_hits(caplog) == 0 and _built(caplog) == 1
    assert_outputs_match(module(x), other(x))
    _compile(model, x, caplog, min_block_size=3, **settings)
    assert _program_hits(caplog) == 0
    module = _compile(model, x, caplog, **settings)
    assert _program_hits(caplog) == 1
    assert_outputs_match(module(x), model(x))


def test_corrupt_program_entry_falls_back_to_compiling(caplog):
    caplog.set_level(logging.INFO, logger="kiln")
    cache = MemoryCache()
    settings = dict(cache_built_engines=True, reuse_cached_engines=True, custom_engine_cache=cache)
    model, x = ConvNet().eval(), torch.randn(1, 3, 8, 8)
    _compile(model, x, **settings)
    for key in list(cache.entries):  # well packed entries whose contents are not programs
        cache.insert(key, b"not a program")
    module = _compile(model, x, caplog, **settings)
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert_outputs_match(module(x), model(x))
