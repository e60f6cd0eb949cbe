"""Regenerates the ZIP, DEFLATE and .npy fixtures of tests/{base,frontend}/*_test.cc.

Run from this directory: python3 make_zip_npy_fixtures.py. Needs only Python and NumPy. The tests
rebuild the same contents with the same generators (pattern_bytes, lcg_text), so keep them in step.
"""

import io
import os
import zipfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def lcg_text(size):
    """Word soup from a 31-bit LCG: compressible like text, cheap to regenerate in C++."""
    words = [b"tensor", b"graph", b"kernel", b"node", b"shape", b"weight", b"bias", b"relu",
             b"conv", b"matmul", b"add", b"mul", b"softmax", b"layer", b"norm", b"x"]
    x = 12345
    out = bytearray()
    while len(out) < size:
        x = (x * 1103515245 + 12345) % (1 << 31)
        out += words[(x >> 16) % 16]
        out += b"\n" if (x >> 8) % 10 == 0 else b" "
    return bytes(out[:size])


def pattern_bytes(size):
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


def write(path, data):
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(data)


def raw_deflate(data, level=9, strategy=zlib.Z_DEFAULT_STRATEGY):
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
    return c.compress(data) + c.flush()


def make_inflate():
    text = lcg_text(40000)
    write("inflate/text_dynamic.deflate", raw_deflate(text))
    write("inflate/text_fixed.deflate", raw_deflate(text, strategy=zlib.Z_FIXED))
    write("inflate/text_rle.deflate", raw_deflate(text[:20000], strategy=zlib.Z_RLE))
    write("inflate/text_stored.deflate", raw_deflate(text[:3000], level=0))
    # Several blocks of different kinds: level changes and full flushes (empty stored blocks).
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    parts = [c.compress(text[:10000]), c.flush(zlib.Z_FULL_FLUSH)]
    c2 = c  # keep one stream; change nothing else but flush points
    parts += [c2.compress(text[10000:20000]), c2.flush(zlib.Z_SYNC_FLUSH)]
    parts += [c2.compress(text[20000:40000]), c2.flush()]
    write("inflate/text_multi_block.deflate", b"".join(parts))
    # A match at nearly the largest distance DEFLATE allows (32768).
    far = pattern_bytes(300) + b"a" * 32000 + pattern_bytes(300)
    write("inflate/far_match.deflate", raw_deflate(far))


def make_zip():
    text = lcg_text(40000)
    with zipfile.ZipFile(os.path.join(HERE, "zip/stored.zip"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("hello.txt", b"hello, world\n")
        z.writestr("dir/empty.bin", b"")
        z.writestr("data/pattern.bin", pattern_bytes(1000))
        z.comment = b"kiln test archive"
    with zipfile.ZipFile(os.path.join(HERE, "zip/deflated.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("text.txt", text)
        z.writestr("hello.txt", b"hello, world\n")
        z.writestr("stored.bin", pattern_bytes(1000), compress_type=zipfile.ZIP_STORED)
        z.writestr("empty.txt", b"")
    # ZIP64 extra fields in the local headers only (what force_zip64 does).
    with zipfile.ZipFile(os.path.join(HERE, "zip/zip64_local.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("text.txt", "w", force_zip64=True) as f:
            f.write(text[:5000])
        with z.open("pattern.bin", "w", force_zip64=True) as f:
            f.write(pattern_bytes(1000))
    # Full ZIP64: lowering zipfile's limits makes it write ZIP64 extra fields in the central
    # directory and the ZIP64 end of central directory record and locator, as for a huge archive.
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 10, 1
    try:
        with zipfile.ZipFile(os.path.join(HERE, "zip/zip64_full.zip"), "w",
                             zipfile.ZIP_STORED) as z:
            z.writestr("a.txt", b"first entry, stored")
            z.writestr("b.bin", pattern_bytes(500))
            z.writestr("c.txt", text[:3000], compress_type=zipfile.ZIP_DEFLATED)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    with zipfile.ZipFile(os.path.join(HERE, "zip/bzip2.zip"), "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("hello.txt", b"hello, world\n")


def save(path, array, version=None):
    with open(os.path.join(HERE, path), "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


def make_npy():
    save("npy/f4_2x3.npy", np.arange(6, dtype="<f4").reshape(2, 3) * 0.5)
    save("npy/f4_v2.npy", np.arange(4, dtype="<f4"), version=(2, 0))
    save("npy/f4_v3.npy", np.arange(4, dtype="<f4"), version=(3, 0))
    save("npy/f2_3.npy", np.array([1.0, -2.5, 65504.0], dtype="<f2"))
    save("npy/f8_scalar.npy", np.array(3.25, dtype="<f8"))
    save("npy/i8_2x2.npy", np.array([[1, -2], [3, 1 << 40]], dtype="<i8"))
    save("npy/i4_empty.npy", np.zeros((0, 3), dtype="<i4"))
    save("npy/i2_3.npy", np.array([1, -2, 300], dtype="<i2"))
    save("npy/i1_3.npy", np.array([1, -2, 127], dtype="i1"))
    save("npy/u1_4.npy", np.array([0, 1, 200, 255], dtype="u1"))
    save("npy/b1_4.npy", np.array([True, False, False, True]))
    save("npy/f4_big_endian.npy", np.arange(3, dtype=">f4"))
    save("npy/f4_fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save("npy/structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))


if __name__ == "__main__":
    make_inflate()
    make_zip()
    make_npy()
