#include "frontend/zip_archive.h"

#include <array>
#include <limits>
#include <span>

#include "frontend/inflate.h"

namespace kiln {

namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kFlagEncrypted = 1 << 0;
constexpr uint16_t kFlagStrongEncryption = 1 << 6;

uint16_t load16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | u[1] << 8);
}
uint32_t load32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 |
         static_cast<uint32_t>(u[2]) << 16 | static_cast<uint32_t>(u[3]) << 24;
}
uint64_t load64(const char* p) {
  return load32(p) | static_cast<uint64_t>(load32(p + 4)) << 32;
}

std::string hex(uint32_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 15]);
  return out;
}

// True when [offset, offset + length) lies within `size` bytes, without overflowing.
bool fits(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// Sums saturate so that a hostile size still gives a readable "ends at byte N" message.
uint64_t end_of(uint64_t offset, uint64_t length) {
  return length > std::numeric_limits<uint64_t>::max() - offset
             ? std::numeric_limits<uint64_t>::max()
             : offset + length;
}

// Eight tables so that the loop takes eight bytes a step ("slicing by 8").
struct Crc32Tables {
  std::array<std::array<uint32_t, 256>, 8> table;
  constexpr Crc32Tables() : table() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (size_t t = 1; t < 8; ++t) {
        table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
      }
    }
  }
};
constexpr Crc32Tables kCrc32Tables;

// Where the archive's central directory lies, from the (ZIP64) end of central directory record.
struct Directory {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
  uint64_t end = 0;  // the first byte after it may hold: the (ZIP64) end record
};

Result<size_t> find_end_record(std::string_view bytes) {
  if (bytes.size() < kEndSize) {
    return data_loss("not a ZIP archive: expected at least ", kEndSize, " bytes, found ",
                     bytes.size());
  }
  // The record sits at the very end unless a comment (at most 65535 bytes) follows it.
  const size_t last = bytes.size() - kEndSize;
  const size_t first = last > 0xFFFF ? last - 0xFFFF : 0;
  size_t loose_match = std::string_view::npos;
  for (size_t pos = last + 1; pos-- > first;) {
    if (load32(bytes.data() + pos) != kEndSignature) continue;
    const size_t comment_end = pos + kEndSize + load16(bytes.data() + pos + 20);
    if (comment_end == bytes.size()) return pos;
    if (comment_end < bytes.size() && loose_match == std::string_view::npos) loose_match = pos;
  }
  if (loose_match != std::string_view::npos) return loose_match;
  return data_loss("not a ZIP archive: no end of central directory record in the last ",
                   bytes.size() - first, " bytes");
}

Result<Directory> read_directory_location(std::string_view bytes) {
  KILN_ASSIGN_OR_RETURN(const size_t end_pos, find_end_record(bytes));
  const char* end = bytes.data() + end_pos;
  const uint16_t disk = load16(end + 4), directory_disk = load16(end + 6);
  const uint16_t disk_entries = load16(end + 8);
  Directory directory;
  directory.entries = load16(end + 10);
  directory.size = load32(end + 12);
  directory.offset = load32(end + 16);
  directory.end = end_pos;

  const bool has_locator =
      end_pos >= kZip64LocatorSize && load32(end - kZip64LocatorSize) == kZip64LocatorSignature;
  if (has_locator) {
    const char* locator = end - kZip64LocatorSize;
    const uint64_t record_pos = load64(locator + 8);
    if (!fits(record_pos, kZip64EndSize, end_pos - kZip64LocatorSize)) {
      return data_loss("ZIP archive is truncated: the ZIP64 end of central directory record at ",
                       record_pos, " ends past the locator at ", end_pos - kZip64LocatorSize);
    }
    const char* record = bytes.data() + record_pos;
    if (load32(record) != kZip64EndSignature) {
      return data_loss("ZIP archive is corrupt: expected the ZIP64 end of central directory record",
                       " at byte ", record_pos);
    }
    if (load32(record + 16) != 0 || load32(record + 20) != 0 || load32(locator + 4) != 0 ||
        load64(record + 24) != load64(record + 32)) {
      return unsupported("multi-disk (spanned) ZIP archives are not supported");
    }
    directory.entries = load64(record + 32);
    directory.size = load64(record + 40);
    directory.offset = load64(record + 48);
    directory.end = record_pos;
  } else if (directory.entries == 0xFFFF || directory.size == 0xFFFFFFFF ||
             directory.offset == 0xFFFFFFFF) {
    return data_loss("ZIP archive is corrupt: the end of central directory record defers to a ",
                     "ZIP64 record, but there is no ZIP64 locator");
  } else if (disk != 0 || directory_disk != 0 || disk_entries != directory.entries) {
    return unsupported("multi-disk (spanned) ZIP archives are not supported");
  }

  if (!fits(directory.offset, directory.size, directory.end)) {
    return data_loss("ZIP archive is truncated: the central directory ends at byte ",
                     end_of(directory.offset, directory.size), " but its end record is at byte ",
                     directory.end);
  }
  if (directory.entries > directory.size / kCentralHeaderSize) {
    return data_loss("ZIP archive is corrupt: ", directory.entries,
                     " entries cannot fit in a central directory of ", directory.size, " bytes");
  }
  return directory;
}

// Replaces the 32-bit fields that hold 0xFFFFFFFF with the values of the ZIP64 extra field.
Status apply_zip64_extra(std::string_view extra, uint32_t raw_uncompressed, uint32_t raw_compressed,
                         uint32_t raw_offset, ZipEntry* entry, uint64_t* local_offset) {
  while (extra.size() >= 4) {
    const uint16_t id = load16(extra.data());
    const uint16_t size = load16(extra.data() + 2);
    if (size > extra.size() - 4) {
      return data_loss("ZIP entry '", entry->name, "': extra field ", hex(id), " of ", size,
                       " bytes runs past the end of the extra data");
    }
    if (id == kZip64ExtraId) {
      std::string_view field = extra.substr(4, size);
      auto take = [&](uint64_t* value) -> Status {
        if (field.size() < 8) {
          return data_loss("ZIP entry '", entry->name, "': the ZIP64 extra field is too short");
        }
        *value = load64(field.data());
        field.remove_prefix(8);
        return ok_status();
      };
      if (raw_uncompressed == 0xFFFFFFFF) KILN_RETURN_IF_ERROR(take(&entry->uncompressed_size));
      if (raw_compressed == 0xFFFFFFFF) KILN_RETURN_IF_ERROR(take(&entry->compressed_size));
      if (raw_offset == 0xFFFFFFFF) KILN_RETURN_IF_ERROR(take(local_offset));
      return ok_status();
    }
    extra.remove_prefix(4 + size);
  }
  return ok_status();
}

// Reads the local header at `local_offset` to find where the entry's data starts.
Status locate_data(std::string_view bytes, uint64_t local_offset, ZipEntry* entry) {
  if (!fits(local_offset, kLocalHeaderSize, bytes.size())) {
    return data_loss("ZIP archive is truncated: entry '", entry->name, "' has its header at byte ",
                     local_offset, " but the archive has ", bytes.size(), " bytes");
  }
  const char* header = bytes.data() + local_offset;
  if (load32(header) != kLocalHeaderSignature) {
    return data_loss("ZIP archive is corrupt: expected the local header of entry '", entry->name,
                     "' at byte ", local_offset);
  }
  const uint16_t name_length = load16(header + 26), extra_length = load16(header + 28);
  const uint64_t name_offset = local_offset + kLocalHeaderSize;
  if (!fits(name_offset, name_length, bytes.size()) ||
      bytes.substr(name_offset, name_length) != entry->name) {
    return data_loss("ZIP archive is corrupt: the local header of entry '", entry->name,
                     "' names another file");
  }
  entry->data_offset = name_offset + name_length + extra_length;
  if (!fits(entry->data_offset, entry->compressed_size, bytes.size())) {
    return data_loss("ZIP archive is truncated: entry '", entry->name, "' ends at byte ",
                     end_of(entry->data_offset, entry->compressed_size), " but the archive has ",
                     bytes.size(), " bytes");
  }
  return ok_status();
}

}  // namespace

Result<ZipArchive> ZipArchive::open(std::string_view bytes) {
  KILN_ASSIGN_OR_RETURN(const Directory directory, read_directory_location(bytes));
  ZipArchive archive;
  archive.bytes_ = bytes;
  archive.entries_.reserve(directory.entries);
  std::string_view rest = bytes.substr(directory.offset, directory.size);
  for (uint64_t i = 0; i < directory.entries; ++i) {
    const uint64_t header_pos = directory.offset + (directory.size - rest.size());
    if (rest.size() < kCentralHeaderSize || load32(rest.data()) != kCentralHeaderSignature) {
      return data_loss("ZIP archive is corrupt: expected central directory entry ", i, " of ",
                       directory.entries, " at byte ", header_pos);
    }
    const char* header = rest.data();
    const uint16_t name_length = load16(header + 28), extra_length = load16(header + 30),
                   comment_length = load16(header + 32);
    const size_t record_size = kCentralHeaderSize + name_length + extra_length + comment_length;
    if (record_size > rest.size()) {
      return data_loss("ZIP archive is corrupt: central directory entry ", i, " at byte ",
                       header_pos, " runs past the end of the central directory");
    }
    ZipEntry entry;
    entry.name.assign(header + kCentralHeaderSize, name_length);
    const uint16_t flags = load16(header + 8);
    entry.encrypted = (flags & (kFlagEncrypted | kFlagStrongEncryption)) != 0;
    entry.method = load16(header + 10);
    entry.crc32 = load32(header + 16);
    const uint32_t raw_compressed = load32(header + 20), raw_uncompressed = load32(header + 24),
                   raw_offset = load32(header + 42);
    entry.compressed_size = raw_compressed;
    entry.uncompressed_size = raw_uncompressed;
    uint64_t local_offset = raw_offset;
    const std::string_view extra = rest.substr(kCentralHeaderSize + name_length, extra_length);
    KILN_RETURN_IF_ERROR(apply_zip64_extra(extra, raw_uncompressed, raw_compressed, raw_offset,
                                           &entry, &local_offset));
    KILN_RETURN_IF_ERROR(locate_data(bytes, local_offset, &entry));
    rest.remove_prefix(record_size);
    archive.index_.insert_or_assign(entry.name, archive.entries_.size());
    archive.entries_.push_back(std::move(entry));
  }
  return archive;
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Result<std::string_view> ZipArchive::read(const ZipEntry& entry, std::string* storage) const {
  if (entry.encrypted) {
    return unsupported("ZIP entry '", entry.name, "' is encrypted, which kiln does not support");
  }
  if (!fits(entry.data_offset, entry.compressed_size, bytes_.size())) {
    return data_loss("ZIP archive is truncated: entry '", entry.name, "' ends at byte ",
                     end_of(entry.data_offset, entry.compressed_size), " but the archive has ",
                     bytes_.size(), " bytes");
  }
  const std::string_view data = bytes_.substr(entry.data_offset, entry.compressed_size);
  if (entry.method == 0) {
    if (entry.compressed_size != entry.uncompressed_size) {
      return data_loss("ZIP entry '", entry.name, "' is stored, but its size is ",
                       entry.compressed_size, " bytes and its uncompressed size ",
                       entry.uncompressed_size, " bytes");
    }
    return data;
  }
  if (entry.method != 8) {
    return unsupported("ZIP entry '", entry.name, "' uses compression method ", entry.method,
                       "; kiln reads only methods 0 (stored) and 8 (deflate)");
  }
  if (storage == nullptr) {
    return invalid_argument("ZIP entry '", entry.name, "' is deflated, but no storage was given");
  }
  if (entry.uncompressed_size > inflate_size_bound(entry.compressed_size)) {
    return data_loss("ZIP entry '", entry.name, "' is corrupt: ", entry.compressed_size,
                     " deflated bytes cannot hold ", entry.uncompressed_size, " bytes");
  }
  storage->resize(entry.uncompressed_size);
  const std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  const std::span<uint8_t> out(reinterpret_cast<uint8_t*>(storage->data()), storage->size());
  KILN_RETURN_IF_ERROR(inflate_raw_into(in, out), "ZIP entry '", entry.name, "'");
  return std::string_view(*storage);
}

uint32_t crc32(std::string_view data, uint32_t crc) {
  const auto& t = kCrc32Tables.table;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  crc = ~crc;
  while (n >= 8) {
    const uint32_t low = (p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24) ^ crc;
    crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

Status verify_crc(const ZipEntry& entry, std::string_view data) {
  const uint32_t actual = crc32(data);
  if (actual != entry.crc32) {
    return data_loss("ZIP entry '", entry.name, "' is corrupt: expected CRC-32 ", hex(entry.crc32),
                     ", found ", hex(actual));
  }
  return ok_status();
}

}  // namespace kiln
