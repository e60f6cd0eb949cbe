// A read-only ZIP reader (PKWARE APPNOTE 6.3) over an archive that is wholly in memory: the bytes
// of a MappedFile or of a caller's buffer.
//
// The ZipArchive does not own the archive's bytes: the caller keeps them alive, unchanged, for as
// long as the ZipArchive and every view that read() returned are in use. Once opened, a ZipArchive
// is immutable, so any number of threads may call find() and read() at once (each with its own
// storage string).
//
// Supported: stored (0) and deflated (8) entries, ZIP64 sizes and offsets, archive comments, local
// headers whose extra fields differ from the central directory's (as PyTorch's writer makes to
// align data). Not supported: encryption, other compression methods, multi-disk archives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/status.h"

namespace kiln {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated; others are refused by read()
  bool encrypted = false;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint32_t crc32 = 0;
  uint64_t data_offset = 0;  // where the entry's compressed bytes start in the archive
};

class ZipArchive {
 public:
  // Reads the central directory and every local header. Every offset and size is checked against
  // `bytes`: a truncated or corrupt archive is data_loss, a multi-disk one unsupported.
  static Result<ZipArchive> open(std::string_view bytes);

  // In central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }

  // The entry named `name` (the last one if the name repeats, as Python's zipfile does), or null.
  const ZipEntry* find(std::string_view name) const;

  // The entry's uncompressed bytes. A stored entry is returned as a view into the archive (no
  // copy) and `storage` is untouched; a deflated one is inflated into `*storage`, and the view is
  // of it. The CRC is not checked here (see verify_crc). An encrypted entry or another method is
  // unsupported; corrupt data is data_loss. Both name the entry.
  Result<std::string_view> read(const ZipEntry& entry, std::string* storage) const;

  std::string_view bytes() const { return bytes_; }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>()(name); }
  };

  std::string_view bytes_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t, NameHash, std::equal_to<>> index_;
};

// CRC-32 (ISO 3309, as ZIP uses), continuing from `crc` so that data may come in pieces:
// crc32(b, crc32(a)) == crc32(a + b).
uint32_t crc32(std::string_view data, uint32_t crc = 0);

// data_loss naming the entry when `data`'s CRC-32 differs from the one its header records.
Status verify_crc(const ZipEntry& entry, std::string_view data);

}  // namespace kiln
