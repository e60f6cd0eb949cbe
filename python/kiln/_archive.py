"""Reading a saved program's large records in place.

``torch.export.load`` reads every record of a ``.pt2`` archive into a fresh ``bytes`` (checking its
CRC on the way), so a program whose engines carry a model's weights spends most of its load copying
them: about 0.3 s for GPT-2's 250 MB. The records it stores are uncompressed and 64-byte aligned,
so :func:`mapped_records` lets ``torch.export.load`` take the large ones as views of a private
(copy-on-write) memory map of the file instead: the engine bytes are then paged in from the page
cache as the engine reads them, and a GPU engine's weights go from there to the device.

Everything else is torch's own loading. Where torch's archive reader is not the one this was written
against (it has no ``read_bytes``, or its file reader no ``get_record_offset``), or a record is
compressed, the record is read the usual way.
"""
from __future__ import annotations

import contextlib
import mmap
import threading
import zipfile
from typing import Iterator, Optional

# Records smaller than this are read as torch reads them: mapping them saves nothing.
_MAP_THRESHOLD = 1 << 20

_active = threading.local()  # .records: {name: size}, .mapping: the file's mmap (this thread's load)
_install_lock = threading.Lock()
_installed = False


def _reader_class():
    try:
        from torch.export.pt2_archive import _package
    except ImportError:
        return None
    reader = getattr(_package, "PT2ArchiveReader", None)
    return reader if reader is not None and hasattr(reader, "read_bytes") else None


def _install() -> bool:
    """Wraps torch's ``PT2ArchiveReader.read_bytes`` once per process; the wrapper maps records only
    inside :func:`mapped_records` on the calling thread, and reads the usual way everywhere else."""
    global _installed
    with _install_lock:
        if _installed:
            return True
        reader = _reader_class()
        if reader is None:
            return False
        original = reader.read_bytes

        def read_bytes(self, name: str):
            view = _mapped_view(self, name)
            return view if view is not None else original(self, name)

        read_bytes.__wrapped__ = original
        reader.read_bytes = read_bytes
        _installed = True
        return True


def _mapped_view(reader, name: str) -> Optional[memoryview]:
    records = getattr(_active, "records", None)
    size = records.get(name) if records else None
    if size is None:
        return None
    record_offset = getattr(getattr(reader, "archive_file", None), "get_record_offset", None)
    if record_offset is None:
        return None
    offset = record_offset(name)
    mapping = _active.mapping
    if offset < 0 or offset + size > len(mapping):
        return None
    return memoryview(mapping)[offset:offset + size]


def _large_stored_records(path: str) -> dict:
    """{name inside the archive's top folder: size} of its large uncompressed records."""
    records = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.compress_type == zipfile.ZIP_STORED and info.file_size >= _MAP_THRESHOLD:
                _, _, name = info.filename.partition("/")
                if name:
                    records[name] = info.file_size
    return records


@contextlib.contextmanager
def mapped_records(path: str) -> Iterator[None]:
    """Within this context, ``torch.export.load(path)`` on this thread takes the archive's large
    records as views of a memory map of ``path`` (the map lives as long as the tensors made from
    it). Where that cannot be set up, it loads as it always does."""
    try:
        records = _large_stored_records(path) if _install() else {}
    except (OSError, zipfile.BadZipFile):
        records = {}  # torch.export.load reports what is wrong with the file
    if not records:
        yield
        return
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    _active.records, _active.mapping = records, mapping
    try:
        yield
    finally:
        _active.records, _active.mapping = None, None
