// Raw DEFLATE decompression (RFC 1951): stored, fixed-Huffman and dynamic-Huffman blocks, with no
// zlib or gzip wrapper, as ZIP entries of method 8 hold it.
//
// The decoder is a pure function of its arguments: no state is shared, so calls may run on any
// number of threads at once. Every malformed stream is a data_loss error; the decoder never reads
// outside `compressed` nor writes outside the output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kiln/status.h"

namespace kiln {

// Decompresses `compressed` into exactly `out.size()` bytes of `out` (owned by the caller). A
// stream that ends early, runs past the final block's end, or produces more or fewer bytes than
// `out.size()` is data_loss. Bytes after the final block are ignored. On failure `out` holds
// unspecified bytes.
Status inflate_raw_into(std::span<const uint8_t> compressed, std::span<uint8_t> out);

// The same, into a new buffer of `expected_size` bytes. A size that the input could not produce
// (DEFLATE expands at most ~1032:1) is refused before anything is allocated.
Result<std::vector<uint8_t>> inflate_raw(std::span<const uint8_t> compressed, size_t expected_size);

// The most bytes `compressed_size` bytes of DEFLATE can decompress to.
size_t inflate_size_bound(size_t compressed_size);

}  // namespace kiln
