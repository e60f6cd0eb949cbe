// The timing cache: choices kept in memory and in its file, read back by another cache, with
// lines it cannot read skipped; blobs (serialized plans) kept in the folder beside the file, read
// back whole or not at all, and trimmed to the folder's bound (no GPU needed).
#include "cuda/tactic_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace kiln::cuda {
namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "kiln_tactic_cache_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::filesystem::remove(path);
  std::filesystem::remove_all(path.string() + ".plans");
  return path.string();
}

// Every byte value, the line breaks and tabs among them.
std::vector<uint8_t> all_byte_values() {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 512; ++i) bytes.push_back(static_cast<uint8_t>(i * 7 + 3));
  bytes.insert(bytes.end(), {0, '\n', '\r', '\t', 0, 0, '\n'});
  return bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// The files in a cache's blob folder.
std::vector<std::string> blob_files(const std::string& cache_path) {
  std::vector<std::string> out;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(cache_path + ".plans", error)) {
    out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The blob file whose header names `key` ("" when none does).
std::string blob_file_of(const std::string& cache_path, const std::string& key) {
  for (const std::string& file : blob_files(cache_path)) {
    const std::string data = read_file(file);
    const std::string header = data.substr(0, data.find('\n'));
    if (header.size() > key.size() && header.substr(header.size() - key.size() - 1) == "\t" + key) {
      return file;
    }
  }
  return "";
}

TEST(TacticCacheTest, MemoryOnlyWithoutAPath) {
  TacticCache cache;
  EXPECT_TRUE(cache.find("gemm a").empty());
  cache.store("gemm a", {3});
  EXPECT_EQ(cache.find("gemm a"), std::vector<int64_t>{3});
  cache.store("gemm a", {});  // an empty choice is not a choice
  EXPECT_EQ(cache.find("gemm a"), std::vector<int64_t>{3});
}

TEST(TacticCacheTest, ChoicesSurviveInTheFile) {
  const std::string path = temp_path("roundtrip.txt");
  {
    TacticCache writer;
    writer.set_path(path);
    writer.store("H100 sm_90 gemm m1 n2", {5});
    writer.store("H100 sm_90 conv x", {1, 4});
  }
  TacticCache reader;
  reader.set_path(path);
  EXPECT_EQ(reader.find("H100 sm_90 gemm m1 n2"), std::vector<int64_t>{5});
  EXPECT_EQ(reader.find("H100 sm_90 conv x"), (std::vector<int64_t>{1, 4}));
  EXPECT_TRUE(reader.find("H100 sm_90 gemm m1 n3").empty());
}

TEST(TacticCacheTest, UnreadableLinesAreSkipped) {
  const std::string path = temp_path("damaged.txt");
  {
    std::ofstream out(path);
    out << "# a comment\n"
        << "no tab here\n"
        << "bad choice\tx,1\n"
        << "empty choice\t\n"
        << "huge\t12345678901234567890\n"
        << "good\t2,0\n"
        << "cut short";
  }
  TacticCache cache;
  cache.set_path(path);
  EXPECT_EQ(cache.find("good"), (std::vector<int64_t>{2, 0}));
  for (const char* key : {"no tab here", "bad choice", "empty choice", "huge", "cut short"}) {
    EXPECT_TRUE(cache.find(key).empty()) << key;
  }
}

TEST(TacticCacheTest, AnUnwritableFileKeepsChoicesInMemory) {
  TacticCache cache;
  cache.set_path("/proc/kiln-cannot-write-here/timing_cache.txt");
  cache.store("k", {7});
  EXPECT_EQ(cache.find("k"), std::vector<int64_t>{7});
}

TEST(TacticCacheTest, BlobsNeedAFile) {
  TacticCache cache;  // memory only: a process rebuilds its plans cheaply, cuDNN caches them
  EXPECT_FALSE(cache.keeps_blobs());
  cache.store_blob("plan a", {1, 2, 3});
  EXPECT_TRUE(cache.find_blob("plan a").empty());
  cache.set_path(temp_path("keeps.txt"));
  EXPECT_TRUE(cache.keeps_blobs());
}

TEST(TacticCacheTest, BlobsSurviveInTheFolderByteForByte) {
  const std::string path = temp_path("blobs.txt");
  const std::vector<uint8_t> bytes = all_byte_values();
  std::vector<uint8_t> large(3 << 20);
  std::mt19937 rng(1);
  for (uint8_t& b : large) b = static_cast<uint8_t>(rng());
  {
    TacticCache writer;
    writer.set_path(path);
    writer.store_blob("H100 sm_90 sdpa a", bytes);
    writer.store_blob("H100 sm_90 sdpa large", large);
    writer.store_blob("H100 sm_90 conv b", {42});
    writer.store_blob("H100 sm_90 conv b", {0, 43});  // the later one wins
    EXPECT_EQ(writer.find_blob("H100 sm_90 sdpa a"), bytes);
  }
  TacticCache reader;
  reader.set_path(path);
  EXPECT_EQ(reader.find_blob("H100 sm_90 sdpa a"), bytes);
  EXPECT_EQ(reader.find_blob("H100 sm_90 sdpa large"), large);
  EXPECT_EQ(reader.find_blob("H100 sm_90 conv b"), (std::vector<uint8_t>{0, 43}));
  EXPECT_TRUE(reader.find_blob("H100 sm_90 conv c").empty());
  EXPECT_EQ(blob_files(path).size(), 3u);  // one file per key, no temporary left
}

TEST(TacticCacheTest, BlobsAndChoicesAreApart) {
  const std::string path = temp_path("apart.txt");
  {
    TacticCache writer;
    writer.set_path(path);
    writer.store("k", {1, 2});
    writer.store_blob("k", {7, 8, 9});
    writer.store_blob("blob only", {5});
  }
  TacticCache reader;
  reader.set_path(path);
  EXPECT_EQ(reader.find("k"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(reader.find_blob("k"), (std::vector<uint8_t>{7, 8, 9}));
  EXPECT_TRUE(reader.find("blob only").empty());
  // The text file holds only choices, as kiln versions without blobs read it.
  EXPECT_EQ(read_file(path),
            "# kiln timing cache: problem<TAB>chosen algorithm, one per line\nk\t1,2\n");
}

TEST(TacticCacheTest, DamagedBlobsReadAsAbsent) {
  const std::string path = temp_path("damaged_blobs.txt");
  const std::vector<uint8_t> bytes = all_byte_values();
  TacticCache cache;
  cache.set_path(path);
  cache.store_blob("key", bytes);
  const std::string file = blob_file_of(path, "key");
  ASSERT_FALSE(file.empty());
  const std::string good = read_file(file);
  ASSERT_EQ(cache.find_blob("key"), bytes);

  std::string flipped = good;
  flipped[flipped.size() - 100] ^= 0x20;
  const size_t header_end = good.find('\n') + 1;
  std::string wrong_count = good;
  wrong_count.replace(good.find('\t') + 1, 3, "999");
  const std::vector<std::pair<const char*, std::string>> damages = {
      {"truncated", good.substr(0, good.size() - 1)},
      {"extended", good + "x"},
      {"header only", good.substr(0, header_end)},
      {"cut in the header", good.substr(0, 20)},
      {"a byte flipped", flipped},
      {"wrong count", wrong_count},
      {"empty", ""},
      {"not a blob", "hello\n"},
  };
  for (const auto& [what, data] : damages) {
    write_file(file, data);
    EXPECT_TRUE(cache.find_blob("key").empty()) << what;
  }
  // Another key's blob under this key's name (a digest collision) is not this key's.
  cache.store_blob("other", bytes);
  write_file(file, read_file(blob_file_of(path, "other")));
  EXPECT_TRUE(cache.find_blob("key").empty());
  // Storing again repairs it.
  cache.store_blob("key", bytes);
  EXPECT_EQ(cache.find_blob("key"), bytes);
}

TEST(TacticCacheTest, BlobsAreBounded) {
  const std::string path = temp_path("bounded.txt");
  TacticCache cache;
  cache.set_path(path);
  TacticCache::BlobLimits limits;
  limits.max_blob_bytes = 1000;
  limits.max_total_bytes = 2500;  // two 1000-byte blobs and their headers; not three
  cache.set_blob_limits(limits);
  cache.store_blob("too big", std::vector<uint8_t>(1001, 1));
  EXPECT_TRUE(cache.find_blob("too big").empty());
  EXPECT_TRUE(blob_files(path).empty());

  // Least recently used goes first: b, written after a but used before it.
  const auto now = std::filesystem::file_time_type::clock::now();
  cache.store_blob("a", std::vector<uint8_t>(1000, 2));
  cache.store_blob("b", std::vector<uint8_t>(1000, 3));
  std::filesystem::last_write_time(blob_file_of(path, "a"), now - std::chrono::hours(2));
  std::filesystem::last_write_time(blob_file_of(path, "b"), now - std::chrono::hours(1));
  EXPECT_FALSE(cache.find_blob("a").empty());  // a use: a is now the most recent
  cache.store_blob("c", std::vector<uint8_t>(1000, 4));
  EXPECT_TRUE(cache.find_blob("b").empty());
  EXPECT_EQ(cache.find_blob("a"), std::vector<uint8_t>(1000, 2));
  EXPECT_EQ(cache.find_blob("c"), std::vector<uint8_t>(1000, 4));
  EXPECT_EQ(blob_files(path).size(), 2u);
}

TEST(TacticCacheTest, UnusableBlobKeysAndFoldersKeepNothing) {
  const std::string path = temp_path("keys.txt");
  TacticCache cache;
  cache.set_path(path);
  cache.store_blob("new\nline", {1});
  cache.store_blob("a\ttab", {1});
  cache.store_blob("", {1});
  cache.store_blob("nothing", {});
  EXPECT_TRUE(blob_files(path).empty());
  EXPECT_TRUE(cache.find_blob("new\nline").empty());

  TacticCache unwritable;
  unwritable.set_path("/proc/kiln-cannot-write-here/timing_cache.txt");
  unwritable.store_blob("k", {7});
  EXPECT_TRUE(unwritable.find_blob("k").empty());
}

}  // namespace
}  // namespace kiln::cuda
