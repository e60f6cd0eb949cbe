// A whole file mapped read-only into memory.
//
// The MappedFile owns the mapping; bytes() stays valid until the MappedFile is destroyed or
// assigned to, and moving it keeps the same bytes (the mapping moves with it). The bytes are
// read-only, so any number of threads may read them at once. If another process truncates the file
// while it is mapped, reading past the new end faults (SIGBUS): that is the price of mmap.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln {

class MappedFile {
 public:
  MappedFile() = default;  // empty, no file
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  // Maps the file at `path`. A missing file is not_found; any other refusal (permissions, a
  // directory, mmap failing) is io_error. Both name the path and the system's reason. An empty
  // file gives an empty MappedFile.
  static Result<MappedFile> open(const std::string& path);

  std::string_view bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void reset();

  const char* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string path_;
};

}  // namespace kiln
