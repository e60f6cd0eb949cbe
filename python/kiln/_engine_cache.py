"""Engine caches: built engines kept under a hash of (subgraph, input specs, build settings).

``BaseEngineCache`` is the interface compile() talks to; a user may subclass it (``save`` and
``load`` of opaque blobs, optionally ``remove``). The base class wraps each engine in a small
header with a checksum, so an entry that was truncated or damaged on its way to storage is found
when it is read: it is reported, removed and treated as a miss, never handed to the runtime.

``DiskEngineCache`` keeps one file per entry and bounds the directory's size, dropping the least
recently used entries first. Several processes may share a directory: files appear atomically
(written aside, then renamed), and a file that another process removed or replaced meanwhile is
a miss, not an error.
"""
from __future__ import annotations

import abc
import contextlib
import logging
import os
import re
import struct
import tempfile
import threading
import time
from typing import Iterator, NamedTuple, Optional, Union

logger = logging.getLogger("kiln")

_HASH = re.compile(r"^[0-9a-fA-F]{16,128}$")

# Entry layout: magic, format version, flags (0), payload length, a 128-bit digest of the payload
# (kiln's XXH64-based Digest128: engines are hundreds of MB and a hit must be fast; the digest
# detects damage, it is not a signature), then the payload. Little-endian, so an entry reads the
# same on every machine.
_MAGIC = b"KILNENGC"
_FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sIIQ16s")
_DIGEST_SIZE = 16


class CacheEntryError(ValueError):
    """A cache entry that cannot be used; the message says what is wrong with it."""


def _check_hash(hash: str) -> str:  # noqa: A002 - the name of the seed's parameter
    if not isinstance(hash, str) or _HASH.match(hash) is None:
        raise ValueError("engine cache key must be a hex string of 16 to 128 digits, found "
                         f"{hash!r}")
    return hash.lower()


def _digest(payload) -> bytes:
    import numpy as np

    from kiln import _C

    # Read in place: entries are hundreds of MB and a hit should not copy them to check them.
    return bytes.fromhex(_C.digest(np.frombuffer(payload, dtype=np.uint8)))


class BaseEngineCache(abc.ABC):
    """Where compile() keeps built engines. Subclasses store opaque blobs under a hex key."""

    @abc.abstractmethod
    def save(self, hash: str, blob: bytes) -> None:  # noqa: A002
        """Stores ``blob`` under ``hash``, replacing what was there."""

    @abc.abstractmethod
    def load(self, hash: str) -> Optional[bytes]:  # noqa: A002
        """The blob stored under ``hash``, or None when there is none."""

    def remove(self, hash: str) -> None:  # noqa: A002
        """Drops the entry under ``hash`` (called for entries found corrupt). The default keeps
        it; a cache that can delete should override this."""

    @staticmethod
    def pack(engine: bytes) -> bytes:
        """The engine with its header: magic, format version, length and checksum."""
        payload = bytes(engine)
        return _HEADER.pack(_MAGIC, _FORMAT_VERSION, 0, len(payload), _digest(payload)) + payload

    @staticmethod
    def unpack(blob: bytes) -> bytes:
        """The engine inside ``blob``; CacheEntryError says why when the blob is not intact."""
        view = memoryview(blob)
        if len(view) < _HEADER.size:
            raise CacheEntryError(f"truncated: {len(view)} bytes, shorter than the "
                                  f"{_HEADER.size}-byte header")
        magic, version, _flags, length, digest = _HEADER.unpack_from(view)
        if magic != _MAGIC:
            raise CacheEntryError(f"not a kiln engine cache entry: expected magic {_MAGIC!r}, "
                                  f"found {bytes(magic)!r}")
        if version != _FORMAT_VERSION:
            raise CacheEntryError(f"entry format version {version}; this kiln reads version "
                                  f"{_FORMAT_VERSION}")
        found = len(view) - _HEADER.size
        if found != length:
            what = "truncated" if found < length else "trailing bytes"
            raise CacheEntryError(f"{what}: the header promises {length} bytes of engine, found "
                                  f"{found}")
        payload = view[_HEADER.size:]
        if _digest(payload) != digest:
            raise CacheEntryError("checksum mismatch: the engine bytes are corrupt")
        return bytes(payload)

    def insert(self, hash: str, engine: bytes) -> None:  # noqa: A002
        """Stores a serialized engine under ``hash``."""
        self.save(_check_hash(hash), self.pack(engine))

    def check(self, hash: str) -> Optional[bytes]:  # noqa: A002
        """The serialized engine under ``hash``, or None on a miss. A damaged entry is logged,
        removed and reported as a miss."""
        key = _check_hash(hash)
        blob = self.load(key)
        if blob is None:
            return None
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(f"{type(self).__name__}.load({key!r}) returned "
                            f"{type(blob).__name__}; expected bytes or None")
        try:
            return self.unpack(blob)
        except CacheEntryError as e:
            logger.warning("engine cache entry %s in %s is unusable (%s); removing it and "
                           "building the engine again", key, self.describe(), e)
            self.remove(key)
            return None

    def describe(self) -> str:
        """Where the cache lives, for messages."""
        return type(self).__name__


class _Entry(NamedTuple):
    path: str
    key: str
    size: int
    last_use_ns: int


_clock_lock = threading.Lock()
_last_stamp_ns = 0


def _stamp_ns() -> int:
    """A wall-clock time in ns that never repeats in this process. File timestamps set by the
    kernel are coarse (a few ms), too coarse to order uses that follow each other closely, so the
    cache sets them itself."""
    global _last_stamp_ns
    with _clock_lock:
        _last_stamp_ns = max(time.time_ns(), _last_stamp_ns + 1)
        return _last_stamp_ns


class DiskEngineCache(BaseEngineCache):
    """One file per entry, ``<engine_cache_dir>/<hash>.kcache``, at most ``engine_cache_size``
    bytes in all. Each successful load marks the entry as used (its modification time); a save
    that would overflow the budget removes least recently used entries first. An entry larger
    than the whole budget is not stored. Safe to share between threads and processes."""

    SUFFIX = ".kcache"
    _LOCK_NAME = ".kiln_engine_cache.lock"
    _STALE_TEMP_S = 600  # a temp file this old belongs to a writer that died

    def __init__(self, engine_cache_dir: Union[str, os.PathLike],
                 engine_cache_size: int) -> None:
        if not isinstance(engine_cache_dir, (str, os.PathLike)):
            raise TypeError("engine_cache_dir must be a path, found "
                            f"{type(engine_cache_dir).__name__} {engine_cache_dir!r}")
        if isinstance(engine_cache_size, bool) or not isinstance(engine_cache_size, int):
            raise TypeError("engine_cache_size must be an int number of bytes, found "
                            f"{type(engine_cache_size).__name__} {engine_cache_size!r}")
        if engine_cache_size < 0:
            raise ValueError(f"engine_cache_size must be >= 0 bytes, found {engine_cache_size}")
        self.engine_cache_dir = os.fspath(engine_cache_dir)
        self.engine_cache_size = engine_cache_size

    def describe(self) -> str:
        return f"disk cache {self.engine_cache_dir}"

    def path(self, hash: str) -> str:  # noqa: A002
        return os.path.join(self.engine_cache_dir, _check_hash(hash) + self.SUFFIX)

    def save(self, hash: str, blob: bytes) -> None:  # noqa: A002
        target = self.path(hash)
        size = len(blob)
        if size > self.engine_cache_size:
            logger.warning("engine cache: entry %s is %d bytes, more than the whole cache "
                           "(engine_cache_size=%d); not storing it", os.path.basename(target), size,
                           self.engine_cache_size)
            return
        for attempt in range(2):
            os.makedirs(self.engine_cache_dir, exist_ok=True)
            try:
                with self._locked():
                    self._evict(size, keep=target)
                    self._write_atomically(target, blob)
                return
            except FileNotFoundError:  # another process removed the directory; make it again
                if attempt == 1:
                    raise

    def load(self, hash: str) -> Optional[bytes]:  # noqa: A002
        target = self.path(hash)
        try:
            with open(target, "rb") as f:
                blob = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        stamp = _stamp_ns()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.utime(target, ns=(stamp, stamp))
        return blob

    def remove(self, hash: str) -> None:  # noqa: A002
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(self.path(hash))

    def entries(self) -> list[_Entry]:
        """The entries now on disk, least recently used first."""
        found = list(self._scan())
        found.sort(key=lambda e: (e.last_use_ns, e.key))
        return found

    def total_size(self) -> int:
        return sum(e.size for e in self._scan())

    def _scan(self) -> Iterator[_Entry]:
        try:
            names = os.listdir(self.engine_cache_dir)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            key = name[:-len(self.SUFFIX)]
            if not name.endswith(self.SUFFIX) or _HASH.match(key) is None:
                continue
            path = os.path.join(self.engine_cache_dir, name)
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield _Entry(path, key, st.st_size, st.st_mtime_ns)

    def _evict(self, incoming: int, keep: str) -> None:
        """Removes least recently used entries until ``incoming`` more bytes fit. ``keep`` (the
        entry being replaced) is not counted: its old bytes go when the new ones land."""
        self._drop_stale_temps()
        entries = [e for e in self.entries() if e.path != keep]
        used = sum(e.size for e in entries)
        for entry in entries:
            if used + incoming <= self.engine_cache_size:
                break
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(entry.path)
                logger.info("engine cache: evicted %s (%d bytes, least recently used)",
                            os.path.basename(entry.path), entry.size)
            used -= entry.size

    def _drop_stale_temps(self) -> None:
        try:
            names = os.listdir(self.engine_cache_dir)
        except (FileNotFoundError, NotADirectoryError):
            return
        horizon = time.time() - self._STALE_TEMP_S
        for name in names:
            if not name.endswith(".tmp"):
                continue
            path = os.path.join(self.engine_cache_dir, name)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if os.stat(path).st_mtime < horizon:
                    os.unlink(path)

    def _write_atomically(self, target: str, blob: bytes) -> None:
        fd, temp = tempfile.mkstemp(dir=self.engine_cache_dir,
                                    prefix="." + os.path.basename(target) + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            stamp = _stamp_ns()
            os.utime(temp, ns=(stamp, stamp))
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serializes writers of this directory (eviction and the write that follows it), across
        processes where the platform has flock. Readers take no lock: a rename is atomic."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): writers may briefly overshoot the budget
            yield
            return
        fd = os.open(os.path.join(self.engine_cache_dir, self._LOCK_NAME),
                     os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
