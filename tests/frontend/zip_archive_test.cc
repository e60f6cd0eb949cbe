#include "frontend/zip_archive.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace kiln {
namespace {

// The generators of tests/data/make_zip_npy_fixtures.py.
std::string lcg_text(size_t size) {
  static const char* const kWords[16] = {"tensor",  "graph", "kernel", "node",   "shape", "weight",
                                         "bias",    "relu",  "conv",   "matmul", "add",   "mul",
                                         "softmax", "layer", "norm",   "x"};
  uint64_t x = 12345;
  std::string out;
  while (out.size() < size) {
    x = (x * 1103515245 + 12345) % (uint64_t{1} << 31);
    out += kWords[(x >> 16) % 16];
    out += (x >> 8) % 10 == 0 ? '\n' : ' ';
  }
  out.resize(size);
  return out;
}

std::string pattern_bytes(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 7 + i / 251) % 256);
  return out;
}

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(KILN_TEST_DATA_DIR) + "/zip/" + name, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  std::string bytes = std::move(out).str();
  EXPECT_FALSE(bytes.empty()) << "missing fixture " << name;
  return bytes;
}

void put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>(v >> 8));
}
void put32(std::string* out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v & 0xFFFF));
  put16(out, static_cast<uint16_t>(v >> 16));
}
void set16(std::string* bytes, size_t at, uint16_t v) {
  (*bytes)[at] = static_cast<char>(v & 0xFF);
  (*bytes)[at + 1] = static_cast<char>(v >> 8);
}
void set32(std::string* bytes, size_t at, uint32_t v) {
  set16(bytes, at, static_cast<uint16_t>(v & 0xFFFF));
  set16(bytes, at + 2, static_cast<uint16_t>(v >> 16));
}

// An entry for build_zip: stored unless `method` says otherwise, with `data` as it lies in the
// archive.
struct FakeEntry {
  FakeEntry(std::string name, std::string data) : name(std::move(name)), data(std::move(data)) {}
  std::string name;
  std::string data;
  uint16_t method = 0;
  uint16_t flags = 0;
  std::string local_extra;
  std::string central_extra;
  std::string local_name;  // the local header's name when different from `name`
};

// Offsets into a build_zip archive, for tests that patch fields.
struct FakeLayout {
  std::vector<size_t> local_headers;
  std::vector<size_t> central_headers;
  size_t end_record = 0;
};

std::string build_zip(const std::vector<FakeEntry>& entries, const std::string& comment = "",
                      FakeLayout* layout = nullptr) {
  std::string out;
  FakeLayout offsets;
  for (const FakeEntry& e : entries) {
    offsets.local_headers.push_back(out.size());
    const std::string& local_name = e.local_name.empty() ? e.name : e.local_name;
    put32(&out, 0x04034b50);
    put16(&out, 20);
    put16(&out, e.flags);
    put16(&out, e.method);
    put32(&out, 0);  // time, date
    put32(&out, crc32(e.data));
    put32(&out, static_cast<uint32_t>(e.data.size()));
    put32(&out, static_cast<uint32_t>(e.data.size()));
    put16(&out, static_cast<uint16_t>(local_name.size()));
    put16(&out, static_cast<uint16_t>(e.local_extra.size()));
    out += local_name + e.local_extra + e.data;
  }
  const size_t directory_offset = out.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const FakeEntry& e = entries[i];
    offsets.central_headers.push_back(out.size());
    put32(&out, 0x02014b50);
    put16(&out, 20);
    put16(&out, 20);
    put16(&out, e.flags);
    put16(&out, e.method);
    put32(&out, 0);
    put32(&out, crc32(e.data));
    put32(&out, static_cast<uint32_t>(e.data.size()));
    put32(&out, static_cast<uint32_t>(e.data.size()));
    put16(&out, static_cast<uint16_t>(e.name.size()));
    put16(&out, static_cast<uint16_t>(e.central_extra.size()));
    put16(&out, 0);  // comment
    put16(&out, 0);  // disk
    put16(&out, 0);  // internal attributes
    put32(&out, 0);  // external attributes
    put32(&out, static_cast<uint32_t>(offsets.local_headers[i]));
    out += e.name + e.central_extra;
  }
  offsets.end_record = out.size();
  put32(&out, 0x06054b50);
  put16(&out, 0);
  put16(&out, 0);
  put16(&out, static_cast<uint16_t>(entries.size()));
  put16(&out, static_cast<uint16_t>(entries.size()));
  put32(&out, static_cast<uint32_t>(offsets.end_record - directory_offset));
  put32(&out, static_cast<uint32_t>(directory_offset));
  put16(&out, static_cast<uint16_t>(comment.size()));
  out += comment;
  if (layout != nullptr) *layout = offsets;
  return out;
}

ZipArchive open_ok(std::string_view bytes) {
  Result<ZipArchive> archive = ZipArchive::open(bytes);
  EXPECT_TRUE(archive.ok()) << archive.status().to_string();
  static const std::string kEmpty = build_zip({});
  return archive.ok() ? std::move(archive).value() : *ZipArchive::open(kEmpty);
}

std::string read_ok(const ZipArchive& archive, std::string_view name) {
  const ZipEntry* entry = archive.find(name);
  EXPECT_NE(entry, nullptr) << name;
  if (entry == nullptr) return "";
  std::string storage;
  Result<std::string_view> data = archive.read(*entry, &storage);
  EXPECT_TRUE(data.ok()) << data.status().to_string();
  if (!data.ok()) return "";
  EXPECT_TRUE(verify_crc(*entry, *data).ok()) << name;
  return std::string(*data);
}

// Opens and reads every entry; any outcome but a crash is acceptable.
void open_and_read_everything(std::string_view bytes) {
  Result<ZipArchive> archive = ZipArchive::open(bytes);
  if (!archive.ok()) {
    const StatusCode code = archive.status().code();
    EXPECT_TRUE(code == StatusCode::kDataLoss || code == StatusCode::kUnsupported)
        << archive.status().to_string();
    return;
  }
  for (const ZipEntry& entry : archive->entries()) {
    std::string storage;
    Result<std::string_view> data = archive->read(entry, &storage);
    if (data.ok()) (void)verify_crc(entry, *data).ok();
  }
}

TEST(ZipArchiveTest, StoredEntriesAreZeroCopy) {
  const std::string bytes = fixture("stored.zip");
  ZipArchive archive = open_ok(bytes);
  ASSERT_EQ(archive.entries().size(), 3u);
  EXPECT_EQ(archive.entries()[0].name, "hello.txt");
  EXPECT_EQ(archive.entries()[1].name, "dir/empty.bin");
  EXPECT_EQ(archive.entries()[2].name, "data/pattern.bin");
  const ZipEntry* hello = archive.find("hello.txt");
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->method, 0);
  EXPECT_EQ(hello->uncompressed_size, 13u);
  std::string storage;
  Result<std::string_view> data = archive.read(*hello, &storage);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, "hello, world\n");
  EXPECT_EQ(data->data(), bytes.data() + hello->data_offset);  // a view into the archive
  EXPECT_TRUE(storage.empty());
  EXPECT_EQ(read_ok(archive, "dir/empty.bin"), "");
  EXPECT_EQ(read_ok(archive, "data/pattern.bin"), pattern_bytes(1000));
  EXPECT_EQ(archive.find("missing"), nullptr);
  EXPECT_EQ(archive.find("hello"), nullptr);
}

TEST(ZipArchiveTest, DeflatedEntries) {
  const std::string bytes = fixture("deflated.zip");
  ZipArchive archive = open_ok(bytes);
  ASSERT_EQ(archive.entries().size(), 4u);
  const ZipEntry* text = archive.find("text.txt");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->method, 8);
  EXPECT_EQ(text->uncompressed_size, 40000u);
  EXPECT_LT(text->compressed_size, 40000u);
  std::string storage;
  Result<std::string_view> data = archive.read(*text, &storage);
  ASSERT_TRUE(data.ok()) << data.status().to_string();
  EXPECT_EQ(*data, lcg_text(40000));
  EXPECT_EQ(data->data(), storage.data());
  EXPECT_TRUE(verify_crc(*text, *data).ok());
  EXPECT_EQ(read_ok(archive, "hello.txt"), "hello, world\n");
  EXPECT_EQ(archive.find("stored.bin")->method, 0);
  EXPECT_EQ(read_ok(archive, "stored.bin"), pattern_bytes(1000));
  EXPECT_EQ(read_ok(archive, "empty.txt"), "");

  Result<std::string_view> no_storage = archive.read(*text, nullptr);
  EXPECT_EQ(no_storage.status().code(), StatusCode::kInvalidArgument);
}

TEST(ZipArchiveTest, Zip64ExtraFieldsInLocalHeaders) {
  const std::string bytes = fixture("zip64_local.zip");
  ZipArchive archive = open_ok(bytes);
  ASSERT_EQ(archive.entries().size(), 2u);
  const ZipEntry& text = archive.entries()[0];
  // The local header carries a 20-byte ZIP64 extra field that the central directory lacks.
  EXPECT_EQ(text.data_offset, 30u + text.name.size() + 20u);
  EXPECT_EQ(read_ok(archive, "text.txt"), lcg_text(5000));
  EXPECT_EQ(read_ok(archive, "pattern.bin"), pattern_bytes(1000));
}

TEST(ZipArchiveTest, Zip64EndRecordAndCentralExtraFields) {
  const std::string bytes = fixture("zip64_full.zip");
  ASSERT_NE(bytes.find(std::string("PK\x06\x06", 4)), std::string::npos);
  ASSERT_NE(bytes.find(std::string("PK\x06\x07", 4)), std::string::npos);
  ZipArchive archive = open_ok(bytes);
  ASSERT_EQ(archive.entries().size(), 3u);
  EXPECT_EQ(read_ok(archive, "a.txt"), "first entry, stored");
  EXPECT_EQ(read_ok(archive, "b.bin"), pattern_bytes(500));
  EXPECT_EQ(read_ok(archive, "c.txt"), lcg_text(3000));
  EXPECT_EQ(archive.find("c.txt")->method, 8);
}

TEST(ZipArchiveTest, UnsupportedMethodNamesTheEntry) {
  const std::string bytes = fixture("bzip2.zip");
  ZipArchive archive = open_ok(bytes);
  const ZipEntry* entry = archive.find("hello.txt");
  ASSERT_NE(entry, nullptr);
  std::string storage;
  Result<std::string_view> data = archive.read(*entry, &storage);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(data.status().message(),
            "ZIP entry 'hello.txt' uses compression method 12; kiln reads only methods 0 (stored) "
            "and 8 (deflate)");
}

TEST(ZipArchiveTest, Crc32) {
  EXPECT_EQ(crc32(""), 0u);
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
  const std::string text = lcg_text(10007);
  for (size_t split : {0, 1, 7, 8, 9, 5000, 10007}) {
    EXPECT_EQ(crc32(text.substr(split), crc32(text.substr(0, split))), crc32(text)) << split;
  }
}

TEST(ZipArchiveTest, CrcMismatch) {
  const std::string bytes = fixture("stored.zip");
  ZipArchive archive = open_ok(bytes);
  ZipEntry entry = *archive.find("hello.txt");
  entry.crc32 ^= 1;
  std::string storage;
  Status status = verify_crc(entry, *archive.read(entry, &storage));
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("ZIP entry 'hello.txt' is corrupt: expected CRC-32 0x"),
            std::string::npos);
}

TEST(ZipArchiveTest, LocalHeadersWithPadding) {
  // PyTorch's writer pads local headers with an extra field so that data is 64-byte aligned.
  FakeEntry entry{"archive/data/0", "weights!"};
  entry.local_extra = "FB" + std::string("\x26\x00", 2) + std::string(38, 'Z');
  const std::string bytes = build_zip({entry, {"archive/version", "1\n"}});
  ZipArchive archive = open_ok(bytes);
  EXPECT_EQ(archive.find("archive/data/0")->data_offset, 30u + 14u + 42u);
  EXPECT_EQ(read_ok(archive, "archive/data/0"), "weights!");
  EXPECT_EQ(read_ok(archive, "archive/version"), "1\n");
}

TEST(ZipArchiveTest, EmptyArchiveAndComments) {
  EXPECT_TRUE(open_ok(build_zip({})).entries().empty());
  const std::string with_comment_bytes = build_zip({{"a", "x"}}, std::string(65535, 'c'));
  ZipArchive with_comment = open_ok(with_comment_bytes);
  EXPECT_EQ(read_ok(with_comment, "a"), "x");
  // A comment that itself holds an end-record signature does not fool the search.
  const std::string tricky_bytes =
      build_zip({{"a", "x"}}, std::string("PK\x05\x06", 4) + std::string(30, 'z'));
  ZipArchive tricky = open_ok(tricky_bytes);
  EXPECT_EQ(read_ok(tricky, "a"), "x");
  // Bytes after the end record whose comment length does not cover them are tolerated.
  const std::string trailing_bytes = build_zip({{"a", "x"}}) + "junk";
  ZipArchive trailing = open_ok(trailing_bytes);
  EXPECT_EQ(read_ok(trailing, "a"), "x");
}

TEST(ZipArchiveTest, DuplicateNamesFindTheLast) {
  const std::string bytes = build_zip({{"a", "first"}, {"b", "b"}, {"a", "second"}});
  ZipArchive archive = open_ok(bytes);
  EXPECT_EQ(archive.entries().size(), 3u);
  EXPECT_EQ(read_ok(archive, "a"), "second");
}

TEST(ZipArchiveTest, EncryptedEntriesAreUnsupported) {
  FakeEntry entry{"secret.bin", "xxxx"};
  entry.flags = 1;
  const std::string bytes = build_zip({entry});
  ZipArchive archive = open_ok(bytes);
  std::string storage;
  Result<std::string_view> data = archive.read(archive.entries()[0], &storage);
  EXPECT_EQ(data.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(data.status().message(),
            "ZIP entry 'secret.bin' is encrypted, which kiln does not support");
}

Status open_error(const std::string& bytes) {
  return ZipArchive::open(bytes).take_status();
}

TEST(ZipArchiveTest, CorruptHeaders) {
  {
    FakeEntry entry{"a.bin", "abcdef"};
    entry.local_name = "b.bin";
    Status status = open_error(build_zip({entry}));
    EXPECT_EQ(status.code(), StatusCode::kDataLoss);
    EXPECT_EQ(status.message(),
              "ZIP archive is corrupt: the local header of entry 'a.bin' names another file");
  }
  FakeLayout layout;
  const std::string good = build_zip({{"a.bin", "abcdef"}, {"b.bin", "xyz"}}, "", &layout);
  {  // Sizes past the end of the archive.
    std::string bytes = good;
    set32(&bytes, layout.central_headers[1] + 20, 1000);
    set32(&bytes, layout.central_headers[1] + 24, 1000);
    const size_t data_offset = layout.local_headers[1] + 30 + 5;
    Status status = open_error(bytes);
    EXPECT_EQ(status.code(), StatusCode::kDataLoss);
    EXPECT_EQ(status.message(),
              str_cat("ZIP archive is truncated: entry 'b.bin' ends at byte ", data_offset + 1000,
                      " but the archive has ", bytes.size(), " bytes"));
  }
  {  // A local header offset past the end.
    std::string bytes = good;
    set32(&bytes, layout.central_headers[0] + 42, 0x7FFFFFF0);
    EXPECT_NE(open_error(bytes).message().find("has its header at byte 2147483632"),
              std::string::npos);
  }
  {  // A local header offset that points at something else.
    std::string bytes = good;
    set32(&bytes, layout.central_headers[1] + 42, 1);
    EXPECT_NE(open_error(bytes).message().find("expected the local header of entry 'b.bin'"),
              std::string::npos);
  }
  {  // Stored, but the sizes disagree.
    std::string bytes = good;
    set32(&bytes, layout.central_headers[0] + 24, 5);
    ZipArchive archive = open_ok(bytes);
    std::string storage;
    EXPECT_NE(archive.read(archive.entries()[0], &storage)
                  .status()
                  .message()
                  .find("is stored, but its size is 6 bytes and its uncompressed size 5 bytes"),
              std::string::npos);
  }
  {  // More entries than the central directory can hold.
    std::string bytes = good;
    set16(&bytes, layout.end_record + 8, 1000);
    set16(&bytes, layout.end_record + 10, 1000);
    EXPECT_NE(open_error(bytes).message().find("1000 entries cannot fit"), std::string::npos);
  }
  {  // One entry more than listed: the next record is the end record.
    std::string bytes = good;
    set16(&bytes, layout.end_record + 8, 3);
    set16(&bytes, layout.end_record + 10, 3);
    set32(&bytes, layout.end_record + 12,
          static_cast<uint32_t>(layout.end_record + 22 - layout.central_headers[0]));
    EXPECT_FALSE(ZipArchive::open(bytes).ok());
  }
  {  // The central directory past its end record.
    std::string bytes = good;
    set32(&bytes, layout.end_record + 16, static_cast<uint32_t>(layout.end_record));
    EXPECT_NE(open_error(bytes).message().find("the central directory ends at byte"),
              std::string::npos);
  }
  {  // A name length that runs past the central directory.
    std::string bytes = good;
    set16(&bytes, layout.central_headers[1] + 28, 500);
    EXPECT_NE(open_error(bytes).message().find("runs past the end of the central directory"),
              std::string::npos);
  }
  {  // Multi-disk archives.
    std::string bytes = good;
    set16(&bytes, layout.end_record + 4, 1);
    EXPECT_EQ(open_error(bytes).code(), StatusCode::kUnsupported);
  }
  {  // ZIP64 markers without a ZIP64 record.
    std::string bytes = good;
    set32(&bytes, layout.end_record + 16, 0xFFFFFFFF);
    EXPECT_NE(open_error(bytes).message().find("no ZIP64 locator"), std::string::npos);
  }
  EXPECT_NE(open_error("PK").message().find("expected at least 22 bytes, found 2"),
            std::string::npos);
  EXPECT_NE(open_error(std::string(100, 'x')).message().find("no end of central directory"),
            std::string::npos);
}

TEST(ZipArchiveTest, BadZip64ExtraFields) {
  FakeEntry entry{"big.bin", "abc"};
  entry.central_extra = std::string("\x01\x00\x04\x00", 4) + "1234";  // too short for a size
  FakeLayout layout;
  std::string bytes = build_zip({entry}, "", &layout);
  set32(&bytes, layout.central_headers[0] + 24, 0xFFFFFFFF);
  EXPECT_EQ(open_error(bytes).message(), "ZIP entry 'big.bin': the ZIP64 extra field is too short");

  entry.central_extra = std::string("\x07\x00\x40\x00", 4) + "1234";  // claims 64 bytes
  bytes = build_zip({entry});
  EXPECT_NE(open_error(bytes).message().find("runs past the end of the extra data"),
            std::string::npos);
}

TEST(ZipArchiveTest, BadZip64EndRecord) {
  const std::string good = fixture("zip64_full.zip");
  const size_t locator = good.rfind(std::string("PK\x06\x07", 4));
  const size_t record = good.rfind(std::string("PK\x06\x06", 4));
  ASSERT_NE(locator, std::string::npos);
  {
    std::string bytes = good;
    set32(&bytes, locator + 8, 0x7FFFFFFF);
    EXPECT_NE(open_error(bytes).message().find("ZIP64 end of central directory record at"),
              std::string::npos);
  }
  {
    std::string bytes = good;
    bytes[record] = 'X';
    EXPECT_NE(open_error(bytes).message().find("expected the ZIP64 end of central directory"),
              std::string::npos);
  }
  {
    std::string bytes = good;
    set32(&bytes, record + 48, static_cast<uint32_t>(record));  // directory offset at the record
    EXPECT_EQ(open_error(bytes).code(), StatusCode::kDataLoss);
  }
}

TEST(ZipArchiveTest, CorruptDeflateDataNamesTheEntry) {
  std::string bytes = fixture("deflated.zip");
  ZipArchive archive = open_ok(bytes);
  const ZipEntry entry = *archive.find("text.txt");
  bytes[entry.data_offset] = static_cast<char>(0xFF);  // block type 3
  ZipArchive corrupt = open_ok(bytes);
  std::string storage;
  Result<std::string_view> data = corrupt.read(*corrupt.find("text.txt"), &storage);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(data.status().message().rfind("ZIP entry 'text.txt': DEFLATE stream", 0), 0u)
      << data.status().message();
}

TEST(ZipArchiveTest, EveryPrefixFails) {
  for (const char* name : {"stored.zip", "deflated.zip", "zip64_local.zip", "zip64_full.zip"}) {
    const std::string bytes = fixture(name);
    for (size_t n = 0; n < bytes.size(); ++n) {
      Result<ZipArchive> archive = ZipArchive::open(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(archive.ok()) << name << " prefix " << n;
      EXPECT_EQ(archive.status().code(), StatusCode::kDataLoss);
    }
  }
}

TEST(ZipArchiveTest, MutatedArchivesFailCleanly) {
  for (const char* name : {"stored.zip", "zip64_local.zip", "zip64_full.zip", "bzip2.zip"}) {
    const std::string original = fixture(name);
    for (size_t i = 0; i < original.size(); ++i) {
      for (const int delta : {0x01, 0x80, 0xFF}) {
        std::string bytes = original;
        bytes[i] = static_cast<char>(bytes[i] ^ delta);
        open_and_read_everything(bytes);
      }
    }
  }
  const std::string deflated = fixture("deflated.zip");
  std::mt19937 rng(99);
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bytes = deflated;
    bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    open_and_read_everything(bytes);
  }
}

}  // namespace
}  // namespace kiln
