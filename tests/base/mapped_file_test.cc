#include "base/mapped_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

namespace kiln {
namespace {

// A file with the given contents in a fresh directory, both removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    const char* base = std::getenv("TMPDIR");
    dir_ = std::string(base != nullptr ? base : "/tmp") + "/kiln_mapped_file_test_XXXXXX";
    if (::mkdtemp(dir_.data()) == nullptr) dir_.clear();
    path_ = dir_ + "/file.bin";
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string path_;
};

TEST(MappedFileTest, MapsContents) {
  std::string contents;
  for (int i = 0; i < 100000; ++i) contents.push_back(static_cast<char>(i * 31));
  TempFile file(contents);
  Result<MappedFile> mapped = MappedFile::open(file.path());
  ASSERT_TRUE(mapped.ok()) << mapped.status().to_string();
  EXPECT_EQ(mapped->size(), contents.size());
  EXPECT_EQ(mapped->bytes(), contents);
  EXPECT_EQ(mapped->path(), file.path());
}

TEST(MappedFileTest, EmptyFile) {
  TempFile file("");
  Result<MappedFile> mapped = MappedFile::open(file.path());
  ASSERT_TRUE(mapped.ok()) << mapped.status().to_string();
  EXPECT_EQ(mapped->size(), 0u);
  EXPECT_TRUE(mapped->bytes().empty());
}

TEST(MappedFileTest, DefaultIsEmpty) {
  MappedFile file;
  EXPECT_TRUE(file.bytes().empty());
  EXPECT_EQ(file.size(), 0u);
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  Result<MappedFile> mapped = MappedFile::open("/nonexistent/kiln/file.pt2");
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(mapped.status().message(),
            "cannot open '/nonexistent/kiln/file.pt2': No such file or directory");
}

TEST(MappedFileTest, DirectoryIsIoError) {
  TempFile file("x");
  Result<MappedFile> mapped = MappedFile::open(file.dir());
  ASSERT_FALSE(mapped.ok());
  EXPECT_EQ(mapped.status().code(), StatusCode::kIoError);
  EXPECT_NE(mapped.status().message().find(file.dir()), std::string::npos);
  EXPECT_NE(mapped.status().message().find("directory"), std::string::npos);
}

TEST(MappedFileTest, MoveKeepsTheMapping) {
  TempFile file("hello, mapped world");
  Result<MappedFile> mapped = MappedFile::open(file.path());
  ASSERT_TRUE(mapped.ok());
  const char* data = mapped->bytes().data();
  MappedFile moved = std::move(mapped).value();
  EXPECT_EQ(moved.bytes(), "hello, mapped world");
  EXPECT_EQ(moved.bytes().data(), data);

  TempFile other("second");
  Result<MappedFile> second = MappedFile::open(other.path());
  ASSERT_TRUE(second.ok());
  MappedFile assigned = std::move(second).value();
  EXPECT_EQ(assigned.bytes(), "second");
  assigned = std::move(moved);  // unmaps "second", takes over the first mapping
  EXPECT_EQ(assigned.bytes(), "hello, mapped world");
  EXPECT_EQ(assigned.bytes().data(), data);
  EXPECT_TRUE(moved.bytes().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(MappedFileTest, OutlivesTheFileName) {
  auto file = std::make_unique<TempFile>("still here");
  Result<MappedFile> mapped = MappedFile::open(file->path());
  ASSERT_TRUE(mapped.ok());
  file.reset();  // unlinks the file; the mapping keeps the bytes
  EXPECT_EQ(mapped->bytes(), "still here");
}

}  // namespace
}  // namespace kiln
