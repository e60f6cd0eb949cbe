"""Engine caches: hits and misses, LRU eviction, damaged entries, atomic writes, several processes
sharing one directory, and a user's own BaseEngineCache."""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import time

import pytest

from kiln._engine_cache import BaseEngineCache, CacheEntryError, DiskEngineCache

HEADER = len(BaseEngineCache.pack(b""))


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def payload(k: str, size: int = 100) -> bytes:
    return (k.encode() * (size // len(k) + 1))[:size]


def entry_files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".kcache"))


def temp_files(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(".tmp")]


class MemoryCache(BaseEngineCache):
    def __init__(self):
        self.blobs = {}
        self.removed = []

    def save(self, hash, blob):
        self.blobs[hash] = bytes(blob)

    def load(self, hash):
        return self.blobs.get(hash)

    def remove(self, hash):
        self.removed.append(hash)
        self.blobs.pop(hash, None)


class KeepingCache(BaseEngineCache):
    """Implements only the abstract methods: remove() is the base class's no-op."""

    def __init__(self):
        self.blobs = {}

    def save(self, hash, blob):
        self.blobs[hash] = blob

    def load(self, hash):
        return self.blobs.get(hash)


# --- the entry format ----------------------------------------------------------------------------

def test_pack_unpack_round_trip():
    for engine in (b"", b"x", bytes(range(256)) * 10):
        assert BaseEngineCache.unpack(BaseEngineCache.pack(engine)) == engine
    assert BaseEngineCache.unpack(bytearray(BaseEngineCache.pack(b"abc"))) == b"abc"


@pytest.mark.parametrize("damage, match", [
    (lambda b: b[:10], "truncated: 10 bytes, shorter than the"),
    (lambda b: b[:-1], "truncated: the header promises 100 bytes of engine, found 99"),
    (lambda b: b + b"!", "trailing bytes: the header promises 100 bytes of engine, found 101"),
    (lambda b: b"XXXXXXXX" + b[8:], "not a kiln engine cache entry: expected magic"),
    (lambda b: b[:8] + (99).to_bytes(4, "little") + b[12:], "entry format version 99"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum mismatch"),
])
def test_unpack_detects_damage(damage, match):
    blob = BaseEngineCache.pack(payload("x"))
    with pytest.raises(CacheEntryError, match=match):
        BaseEngineCache.unpack(damage(blob))


# --- DiskEngineCache: hits, misses, keys ---------------------------------------------------------

def test_disk_hit_and_miss(tmp_path):
    directory = tmp_path / "cache"
    cache = DiskEngineCache(str(directory), 1 << 20)
    k = key("a")
    assert cache.check(k) is None
    assert not directory.exists()  # a miss creates nothing
    cache.insert(k, b"engine bytes")
    assert entry_files(directory) == [k + ".kcache"]
    assert cache.check(k) == b"engine bytes"
    assert cache.check(key("b")) is None
    cache.insert(k, b"new bytes")  # replaces
    assert cache.check(k) == b"new bytes"
    assert entry_files(directory) == [k + ".kcache"]
    cache.remove(k)
    cache.remove(k)  # removing what is gone is fine
    assert cache.check(k) is None


def test_keys_are_validated(tmp_path):
    cache = DiskEngineCache(tmp_path, 1 << 20)
    for bad in ("../../etc/passwd", "abc", "g" * 64, "a" * 129, "", 123, "ab/cd" * 8):
        with pytest.raises(ValueError, match="engine cache key must be a hex string"):
            cache.insert(bad, b"x")
        with pytest.raises(ValueError, match="engine cache key"):
            cache.check(bad)
    upper = key("u").upper()
    cache.insert(upper, b"x")
    assert entry_files(tmp_path) == [upper.lower() + ".kcache"]
    assert cache.check(upper.lower()) == b"x"


def test_constructor_checks(tmp_path):
    with pytest.raises(ValueError, match="engine_cache_size must be >= 0"):
        DiskEngineCache(tmp_path, -1)
    with pytest.raises(TypeError, match="engine_cache_size must be an int"):
        DiskEngineCache(tmp_path, 1.5)
    with pytest.raises(TypeError, match="engine_cache_dir must be a path"):
        DiskEngineCache(3, 10)


# --- eviction ------------------------------------------------------------------------------------

def test_lru_eviction_order(tmp_path):
    size = HEADER + 100
    cache = DiskEngineCache(tmp_path, 3 * size)
    a, b, c, d, e = (key(n) for n in "abcde")
    for k in (a, b, c):
        cache.insert(k, payload(k))
    assert cache.check(a) == payload(a)  # a is now the most recently used
    cache.insert(d, payload(d))  # b is the least recently used
    assert set(entry_files(tmp_path)) == {a + ".kcache", c + ".kcache", d + ".kcache"}
    cache.insert(e, payload(e))  # then c
    assert set(entry_files(tmp_path)) == {a + ".kcache", d + ".kcache", e + ".kcache"}
    assert [x.key for x in cache.entries()] == [a, d, e]
    assert cache.total_size() == 3 * size
    for k in (a, d, e):
        assert cache.check(k) == payload(k)


def test_eviction_makes_room_for_a_larger_entry(tmp_path):
    cache = DiskEngineCache(tmp_path, 4 * (HEADER + 100))
    keys = [key(str(i)) for i in range(4)]
    for k in keys:
        cache.insert(k, payload(k))
    big = key("big")
    cache.insert(big, payload(big, 2 * (HEADER + 100)))  # needs three entries gone
    assert [x.key for x in cache.entries()] == [keys[3], big]
    assert cache.total_size() <= cache.engine_cache_size


def test_replacing_an_entry_does_not_evict_others(tmp_path):
    cache = DiskEngineCache(tmp_path, 2 * (HEADER + 100))
    a, b = key("a"), key("b")
    cache.insert(a, payload(a))
    cache.insert(b, payload(b))
    cache.insert(a, payload(b))  # same size, same key: fits in a's place
    assert set(entry_files(tmp_path)) == {a + ".kcache", b + ".kcache"}


def test_oversize_entry_is_not_stored(tmp_path, caplog):
    cache = DiskEngineCache(tmp_path, 2 * (HEADER + 100))
    a = key("a")
    cache.insert(a, payload(a))
    with caplog.at_level(logging.WARNING, logger="kiln"):
        cache.insert(key("huge"), b"x" * 1000)
    assert "more than the whole cache" in caplog.text and key("huge") in caplog.text
    assert entry_files(tmp_path) == [a + ".kcache"]  # nothing was evicted for it
    assert cache.check(key("huge")) is None


def test_zero_size_cache_stores_nothing(tmp_path):
    cache = DiskEngineCache(tmp_path / "c", 0)
    cache.insert(key("a"), b"")
    assert cache.check(key("a")) is None


# --- damaged entries -----------------------------------------------------------------------------

@pytest.mark.parametrize("damage, what", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0x40]), "checksum mismatch"),
    (lambda b: b"NOTKILN!" + b[8:], "magic"),
    (lambda b: b"", "truncated"),
])
def test_damaged_entry_is_a_warned_miss_and_removed(tmp_path, caplog, damage, what):
    cache = DiskEngineCache(tmp_path, 1 << 20)
    k = key("a")
    cache.insert(k, payload(k, 500))
    path = tmp_path / (k + ".kcache")
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="kiln"):
        assert cache.check(k) is None
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1
    assert k in warning[0].getMessage() and what in warning[0].getMessage()
    assert not path.exists()
    cache.insert(k, payload(k))  # and the slot is usable again
    assert cache.check(k) == payload(k)


# --- atomic writes -------------------------------------------------------------------------------

def test_no_temp_files_are_left(tmp_path):
    cache = DiskEngineCache(tmp_path, 1 << 20)
    for i in range(10):
        cache.insert(key(str(i)), payload(key(str(i)), 1000))
    assert temp_files(tmp_path) == []
    assert len(entry_files(tmp_path)) == 10


def test_failed_write_leaves_old_entry_and_no_temp(tmp_path, monkeypatch):
    cache = DiskEngineCache(tmp_path, 1 << 20)
    k = key("a")
    cache.insert(k, b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        cache.insert(k, b"new")
    monkeypatch.undo()
    assert temp_files(tmp_path) == []
    assert cache.check(k) == b"old"


def test_stale_temp_files_are_cleaned(tmp_path):
    cache = DiskEngineCache(tmp_path, 1 << 20)
    stale = tmp_path / (".deadbeef.kcache.abc.tmp")
    stale.write_bytes(b"half an engine")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / (".cafe.kcache.def.tmp")  # a writer that is still at work
    fresh.write_bytes(b"partial")
    cache.insert(key("a"), b"x")
    assert not stale.exists() and fresh.exists()


def test_reader_never_sees_a_partial_entry(tmp_path, caplog):
    cache = DiskEngineCache(tmp_path, 1 << 26)
    k = key("hot")
    versions = [bytes([i]) * (200_000 + 1000 * i) for i in range(8)]
    cache.insert(k, versions[0])
    stop = threading.Event()
    bad = []

    def reader():
        other = DiskEngineCache(tmp_path, 1 << 26)
        while not stop.is_set():
            got = other.check(k)
            if got is not None and got not in versions:
                bad.append(len(got))

    with caplog.at_level(logging.WARNING, logger="kiln"):
        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for round_ in range(40):
                cache.insert(k, versions[round_ % len(versions)])
        finally:
            stop.set()
            thread.join()
    assert bad == []
    assert "unusable" not in caplog.text  # no reader ever found a damaged entry


def test_directory_removed_underneath(tmp_path):
    import shutil

    directory = tmp_path / "c"
    cache = DiskEngineCache(directory, 1 << 20)
    cache.insert(key("a"), b"x")
    shutil.rmtree(directory)
    assert cache.check(key("a")) is None
    assert cache.entries() == [] and cache.total_size() == 0
    cache.insert(key("b"), b"y")  # made again
    assert cache.check(key("b")) == b"y"


# --- several processes ---------------------------------------------------------------------------

SHARED = [key(f"shared{i}") for i in range(20)]


def _sized_payload(k: str) -> bytes:
    return payload(k, 500 + int(k[:4], 16) % 2500)


def _worker(directory: str, limit: int, who: int) -> list[str]:
    """Writes 20 shared and 20 own entries and reads them back; returns what went wrong."""
    cache = DiskEngineCache(directory, limit)
    problems = []
    own = [key(f"p{who}-{i}") for i in range(20)]
    for i in range(20):
        for k in (SHARED[i], own[i]):
            cache.insert(k, _sized_payload(k))
            # Writers hold the directory's lock from eviction to rename, so the budget holds at
            # every moment, not only at the end (a key's entry always has the same size here,
            # so the unlocked scan cannot over-count).
            used = cache.total_size()
            if used > limit:
                problems.append(f"{used} bytes in the cache, over the {limit}-byte budget")
            for probe in (SHARED[(i * 7 + who) % 20], own[(i * 3) % 20], k):
                got = cache.check(probe)
                if got is not None and got != _sized_payload(probe):
                    problems.append(f"{probe}: wrong bytes ({len(got)})")
    return problems


def test_two_processes_share_a_directory(tmp_path, caplog):
    directory = str(tmp_path / "shared")
    limit = 20_000  # room for about ten entries, so both processes evict all the time
    # fork where there is one: the children only touch files, and spawn would spend seconds
    # importing torch again in each.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(2) as pool:
        results = pool.starmap(_worker, [(directory, limit, 0), (directory, limit, 1)])
    assert results == [[], []]
    cache = DiskEngineCache(directory, limit)
    entries = cache.entries()
    assert entries, "every entry was evicted"
    assert cache.total_size() <= limit
    assert temp_files(directory) == []
    with caplog.at_level(logging.WARNING, logger="kiln"):
        for entry in entries:
            assert cache.check(entry.key) == _sized_payload(entry.key)
    assert caplog.text == ""


# --- a user's cache ------------------------------------------------------------------------------

def test_custom_cache_through_insert_and_check():
    cache = MemoryCache()
    k = key("a")
    assert cache.check(k) is None
    cache.insert(k, b"engine")
    assert cache.blobs[k] != b"engine"  # stored with its header
    assert cache.check(k) == b"engine"


def test_custom_cache_damaged_entry_is_removed(caplog):
    cache = MemoryCache()
    k = key("a")
    cache.insert(k, b"engine")
    cache.blobs[k] = cache.blobs[k][:-2]
    with caplog.at_level(logging.WARNING, logger="kiln"):
        assert cache.check(k) is None
    assert cache.removed == [k] and k not in cache.blobs
    assert "MemoryCache" in caplog.text and "truncated" in caplog.text


def test_default_remove_keeps_the_entry_but_check_still_misses():
    cache = KeepingCache()
    k = key("a")
    cache.blobs[k] = b"garbage"
    assert cache.check(k) is None
    assert k in cache.blobs


def test_custom_cache_contract_errors():
    with pytest.raises(TypeError):
        BaseEngineCache()  # abstract

    class Wrong(KeepingCache):
        def load(self, hash):
            return "not bytes"

    with pytest.raises(TypeError, match=r"Wrong.load\('.*'\) returned str; expected bytes or None"):
        Wrong().check(key("a"))
