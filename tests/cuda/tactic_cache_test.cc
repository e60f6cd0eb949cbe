// The timing cache: choices kept in memory and in its file, read back by another cache, with
// lines it cannot read skipped (no GPU needed).
#include "cuda/tactic_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace kiln::cuda {
namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "kiln_tactic_cache_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::filesystem::remove(path);
  return path.string();
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

}  // namespace
}  // namespace kiln::cuda
