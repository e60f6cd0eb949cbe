// NumPy .npy files (format versions 1.0, 2.0 and 3.0 read, 1.0 written; 2.0 only when the header
// needs it), for tensors saved by tests, tools and users.
//
// Only plain little-endian numeric dtypes are handled: `<f4`, `<f2`, `<f8`, `<i8`, `<i4`, `<i2`,
// `|i1`, `|u1` and `|b1`. Functions here share no state; they may run on any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/status.h"

namespace kiln {

struct NpyArray {
  std::string descr;           // NumPy's dtype string, e.g. "<f4"; one-byte types use '|'
  std::vector<int64_t> shape;  // empty for a 0-d array
  bool fortran_order = false;  // as the header says; the data is C order either way
  std::string data;            // raw little-endian bytes, C order
};

// Bytes per element of a supported dtype; unsupported (with the reason) otherwise.
Result<size_t> npy_item_size(std::string_view descr);

// Parses a whole .npy file image, copying its data. Corrupt or truncated bytes are data_loss (a
// size mismatch says how many data bytes were expected and found); a format version, dtype
// (structured, big-endian, unknown) or Fortran-order layout kiln cannot read is unsupported.
// Fortran order is accepted only where it equals C order (at most one dim larger than 1).
Result<NpyArray> read_npy(std::string_view bytes);
Result<NpyArray> read_npy_file(const std::string& path);

// invalid_argument unless `descr` is supported, every dim is non-negative and `data_size` is the
// size the shape and dtype call for.
Status check_npy_array(std::string_view descr, std::span<const int64_t> shape, size_t data_size);

// The .npy image of an array. It does not validate: call check_npy_array first (write_npy_file
// does), or the image may not read back.
std::string write_npy(std::string_view descr, std::span<const int64_t> shape,
                      std::string_view data);

// Validates the array, then writes it to `path` atomically: into a temporary file in the same
// directory, flushed to disk, then renamed over `path`. On failure `path` is untouched and the
// temporary file removed. The OS's refusal is io_error naming the path.
Status write_npy_file(const std::string& path, std::string_view descr,
                      std::span<const int64_t> shape, std::string_view data);

}  // namespace kiln
