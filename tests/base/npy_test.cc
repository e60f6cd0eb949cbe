#include "base/npy.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kiln {
namespace {

std::string data_path(const std::string& name) {
  return std::string(KILN_TEST_DATA_DIR) + "/npy/" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

template <typename T>
std::vector<T> values_of(const NpyArray& array) {
  std::vector<T> values(array.data.size() / sizeof(T));
  std::memcpy(values.data(), array.data.data(), values.size() * sizeof(T));
  return values;
}

template <typename T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

NpyArray read_ok(const std::string& name) {
  Result<NpyArray> result = read_npy_file(data_path(name));
  EXPECT_TRUE(result.ok()) << name << ": " << result.status().to_string();
  return result.ok() ? std::move(result).value() : NpyArray();
}

// A fresh directory under TMPDIR, removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    path_ = std::string(base != nullptr ? base : "/tmp") + "/kiln_npy_test_XXXXXX";
    if (::mkdtemp(path_.data()) == nullptr) path_.clear();
  }
  ~TempDir() {
    for (const std::string& name : files()) ::unlink((path_ + "/" + name).c_str());
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    if (DIR* dir = ::opendir(path_.c_str())) {
      while (dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
      }
      ::closedir(dir);
    }
    return names;
  }

 private:
  std::string path_;
};

TEST(NpyTest, ReadsNumpyFiles) {
  NpyArray f4 = read_ok("f4_2x3.npy");
  EXPECT_EQ(f4.descr, "<f4");
  EXPECT_EQ(f4.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(f4.fortran_order);
  EXPECT_EQ(values_of<float>(f4), (std::vector<float>{0, 0.5, 1, 1.5, 2, 2.5}));

  NpyArray f2 = read_ok("f2_3.npy");
  EXPECT_EQ(f2.descr, "<f2");
  EXPECT_EQ(values_of<uint16_t>(f2), (std::vector<uint16_t>{0x3C00, 0xC100, 0x7BFF}));

  NpyArray f8 = read_ok("f8_scalar.npy");
  EXPECT_EQ(f8.descr, "<f8");
  EXPECT_TRUE(f8.shape.empty());
  EXPECT_EQ(values_of<double>(f8), (std::vector<double>{3.25}));

  NpyArray i8 = read_ok("i8_2x2.npy");
  EXPECT_EQ(i8.descr, "<i8");
  EXPECT_EQ(values_of<int64_t>(i8), (std::vector<int64_t>{1, -2, 3, int64_t{1} << 40}));

  NpyArray i4 = read_ok("i4_empty.npy");
  EXPECT_EQ(i4.descr, "<i4");
  EXPECT_EQ(i4.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(i4.data.empty());

  EXPECT_EQ(values_of<int16_t>(read_ok("i2_3.npy")), (std::vector<int16_t>{1, -2, 300}));
  NpyArray i1 = read_ok("i1_3.npy");
  EXPECT_EQ(i1.descr, "|i1");
  EXPECT_EQ(values_of<int8_t>(i1), (std::vector<int8_t>{1, -2, 127}));
  NpyArray u1 = read_ok("u1_4.npy");
  EXPECT_EQ(u1.descr, "|u1");
  EXPECT_EQ(values_of<uint8_t>(u1), (std::vector<uint8_t>{0, 1, 200, 255}));
  NpyArray b1 = read_ok("b1_4.npy");
  EXPECT_EQ(b1.descr, "|b1");
  EXPECT_EQ(values_of<uint8_t>(b1), (std::vector<uint8_t>{1, 0, 0, 1}));
}

TEST(NpyTest, ReadsVersions2And3) {
  for (const char* name : {"f4_v2.npy", "f4_v3.npy"}) {
    NpyArray array = read_ok(name);
    EXPECT_EQ(array.shape, (std::vector<int64_t>{4})) << name;
    EXPECT_EQ(values_of<float>(array), (std::vector<float>{0, 1, 2, 3})) << name;
  }
}

TEST(NpyTest, RejectsWhatItCannotRead) {
  Result<NpyArray> big = read_npy_file(data_path("f4_big_endian.npy"));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(big.status().message().find("big-endian .npy dtype '>f4'"), std::string::npos);

  Result<NpyArray> fortran = read_npy_file(data_path("f4_fortran.npy"));
  ASSERT_FALSE(fortran.ok());
  EXPECT_EQ(fortran.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(fortran.status().message().find("Fortran order"), std::string::npos);

  Result<NpyArray> structured = read_npy_file(data_path("structured.npy"));
  ASSERT_FALSE(structured.ok());
  EXPECT_EQ(structured.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(structured.status().message().find("structured"), std::string::npos);

  Result<NpyArray> missing = read_npy_file(data_path("no_such_file.npy"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no_such_file.npy"), std::string::npos);
}

// The .npy image of a hand-written header dict, padded like NumPy's.
std::string with_header(const std::string& dict, std::string_view data, char major = 1) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += major;
  out += '\0';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + std::string(data);
}

TEST(NpyTest, FortranOrderEqualToCOrderIsAccepted) {
  const std::string bytes =
      with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 1), }",
                  bytes_of(std::vector<float>{1, 2, 3}));
  Result<NpyArray> array = read_npy(bytes);
  ASSERT_TRUE(array.ok()) << array.status().to_string();
  EXPECT_TRUE(array->fortran_order);
  EXPECT_EQ(values_of<float>(*array), (std::vector<float>{1, 2, 3}));
}

TEST(NpyTest, HeaderVariants) {
  // Double quotes, no trailing comma, other key order, Python 2 long suffix.
  Result<NpyArray> array =
      read_npy(with_header("{\"shape\": (2L,), \"fortran_order\": False, \"descr\": \"<i4\"}",
                           bytes_of(std::vector<int32_t>{7, 8})));
  ASSERT_TRUE(array.ok()) << array.status().to_string();
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(values_of<int32_t>(*array), (std::vector<int32_t>{7, 8}));
  // One-byte types may carry any byte-order mark; they read back as '|'.
  Result<NpyArray> u1 = read_npy(with_header(
      "{'descr': '<u1', 'fortran_order': False, 'shape': (1,), }", std::string(1, 'x')));
  ASSERT_TRUE(u1.ok()) << u1.status().to_string();
  EXPECT_EQ(u1->descr, "|u1");
}

TEST(NpyTest, CorruptHeaders) {
  const std::string four_floats = bytes_of(std::vector<float>{1, 2, 3, 4});
  struct Case {
    std::string dict;
    StatusCode code;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"{'descr': '<f4', 'fortran_order': False, }", StatusCode::kDataLoss, "the keys"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", StatusCode::kDataLoss,
       "found 'x'"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (4,), }", StatusCode::kDataLoss,
       "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", StatusCode::kDataLoss,
       "non-negative"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4 4), }", StatusCode::kDataLoss,
       "',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [4], }", StatusCode::kDataLoss, "'('"},
      {"{'descr': <f4, 'fortran_order': False, 'shape': (4,), }", StatusCode::kDataLoss,
       "quoted string"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (4,), }", StatusCode::kDataLoss, "':'"},
      {"'descr': '<f4'", StatusCode::kDataLoss, "'{'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,) ", StatusCode::kDataLoss,
       "',' or '}'"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (4,), }", StatusCode::kUnsupported,
       "'<c8'"},
      {"{'descr': '=f4', 'fortran_order': False, 'shape': (4,), }", StatusCode::kUnsupported,
       "'=f4'"},
      {"{'descr': 'O', 'fortran_order': False, 'shape': (4,), }", StatusCode::kUnsupported, "'O'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
       StatusCode::kDataLoss, "non-negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
       StatusCode::kDataLoss, "too many"},
  };
  for (const Case& c : cases) {
    Result<NpyArray> result = read_npy(with_header(c.dict, four_floats));
    ASSERT_FALSE(result.ok()) << c.dict;
    EXPECT_EQ(result.status().code(), c.code) << c.dict << ": " << result.status().to_string();
    EXPECT_NE(result.status().message().find(c.message_part), std::string::npos)
        << c.dict << ": " << result.status().message();
  }
}

TEST(NpyTest, CorruptPreamble) {
  const std::string good = read_bytes(data_path("f4_2x3.npy"));
  EXPECT_EQ(read_npy("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(read_npy("\x93NUMPX\x01\x00\x00\x00").status().code(), StatusCode::kDataLoss);
  std::string v4 = good;
  v4[6] = 4;
  EXPECT_EQ(read_npy(v4).status().code(), StatusCode::kUnsupported);
  EXPECT_NE(read_npy(v4).status().message().find("version 4.0"), std::string::npos);
  std::string long_header = good;
  long_header[9] = 0x7F;
  EXPECT_NE(read_npy(long_header).status().message().find("truncated"), std::string::npos);
}

TEST(NpyTest, SizeMismatch) {
  const std::string good = read_bytes(data_path("f4_2x3.npy"));
  Result<NpyArray> short_data = read_npy(good.substr(0, good.size() - 1));
  ASSERT_FALSE(short_data.ok());
  EXPECT_EQ(short_data.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(short_data.status().message(),
            ".npy data size mismatch: shape (2, 3) of <f4 needs 24 bytes, found 23");
  Result<NpyArray> long_data = read_npy(good + "x");
  ASSERT_FALSE(long_data.ok());
  EXPECT_NE(long_data.status().message().find("needs 24 bytes, found 25"), std::string::npos);
}

TEST(NpyTest, EveryPrefixAndMutationFailsCleanly) {
  for (const char* name : {"f4_2x3.npy", "f4_v2.npy", "f4_v3.npy", "b1_4.npy"}) {
    const std::string bytes = read_bytes(data_path(name));
    ASSERT_FALSE(bytes.empty()) << name;
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(read_npy(bytes.substr(0, n)).ok()) << name << " prefix " << n;
    }
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (const int delta : {1, 0x20, 0x80, 0xFF}) {
        std::string mutated = bytes;
        mutated[i] = static_cast<char>(mutated[i] ^ delta);
        (void)read_npy(mutated).ok();  // must not crash
      }
    }
  }
}

TEST(NpyTest, WriteMatchesNumpyExactly) {
  // numpy.save's image of arange(6, dtype='<f4').reshape(2, 3) * 0.5.
  const std::string numpy_bytes = read_bytes(data_path("f4_2x3.npy"));
  const std::vector<int64_t> shape = {2, 3};
  const std::string ours =
      write_npy("<f4", shape, bytes_of(std::vector<float>{0, 0.5, 1, 1.5, 2, 2.5}));
  EXPECT_EQ(ours, numpy_bytes);
  EXPECT_EQ(
      write_npy("|u1", std::vector<int64_t>{4}, bytes_of(std::vector<uint8_t>{0, 1, 200, 255})),
      read_bytes(data_path("u1_4.npy")));
  EXPECT_EQ(write_npy("<f8", {}, bytes_of(std::vector<double>{3.25})),
            read_bytes(data_path("f8_scalar.npy")));
}

TEST(NpyTest, WriteReadRoundTrip) {
  struct Case {
    std::string descr;
    std::vector<int64_t> shape;
    size_t item_size;
  };
  const std::vector<Case> cases = {
      {"<f4", {2, 3}, 4}, {"<f2", {5}, 2},
      {"<i4", {}, 4},     {"<i8", {0, 3}, 8},
      {"|b1", {2, 2}, 1}, {"<f8", {1, 1, 1}, 8},
      {"|u1", {7}, 1},    {"|i1", {3}, 1},
      {"<i2", {2, 1}, 2}, {"<f4", std::vector<int64_t>(32, 1), 4},
  };
  for (const Case& c : cases) {
    size_t count = 1;
    for (const int64_t dim : c.shape) count *= static_cast<size_t>(dim);
    std::string data(count * c.item_size, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + 1);
    ASSERT_TRUE(check_npy_array(c.descr, c.shape, data.size()).ok()) << c.descr;
    const std::string image = write_npy(c.descr, c.shape, data);
    EXPECT_EQ((image.size() - data.size()) % 64, 0u) << c.descr;  // data starts aligned
    Result<NpyArray> back = read_npy(image);
    ASSERT_TRUE(back.ok()) << c.descr << ": " << back.status().to_string();
    EXPECT_EQ(back->descr, c.descr);
    EXPECT_EQ(back->shape, c.shape);
    EXPECT_FALSE(back->fortran_order);
    EXPECT_EQ(back->data, data);
  }
}

TEST(NpyTest, CheckArray) {
  const std::vector<int64_t> shape = {2, 3};
  EXPECT_TRUE(check_npy_array("<f4", shape, 24).ok());
  Status wrong_size = check_npy_array("<f4", shape, 20);
  EXPECT_EQ(wrong_size.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong_size.message(), "shape (2, 3) of <f4 needs 24 bytes of data, found 20");
  EXPECT_EQ(check_npy_array("<c8", shape, 48).code(), StatusCode::kUnsupported);
  EXPECT_EQ(check_npy_array("<f4", std::vector<int64_t>{-1}, 0).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(*npy_item_size("<i8"), 8u);
  EXPECT_EQ(*npy_item_size("|b1"), 1u);
}

TEST(NpyTest, WriteFileAtomically) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/weights.npy";
  const std::vector<int64_t> shape = {3};
  ASSERT_TRUE(write_npy_file(path, "<i8", shape, bytes_of(std::vector<int64_t>{1, 2, 3})).ok());
  Result<NpyArray> first = read_npy_file(path);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(values_of<int64_t>(*first), (std::vector<int64_t>{1, 2, 3}));
  struct stat info;
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);

  // Overwriting replaces the file; no temporary file is left behind.
  ASSERT_TRUE(write_npy_file(path, "<f4", shape, bytes_of(std::vector<float>{4, 5, 6})).ok());
  EXPECT_EQ(values_of<float>(*read_npy_file(path)), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(dir.files(), std::vector<std::string>{"weights.npy"});

  // A bad array is refused before anything is written; the old file stays.
  Status bad = write_npy_file(path, "<f4", shape, "short");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("weights.npy"), std::string::npos);
  EXPECT_EQ(values_of<float>(*read_npy_file(path)), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(dir.files(), std::vector<std::string>{"weights.npy"});

  // Writing over a directory fails at the rename, and the temporary file is removed.
  const std::string subdir = dir.path() + "/sub";
  ASSERT_EQ(::mkdir(subdir.c_str(), 0755), 0);
  Status over_dir = write_npy_file(subdir, "<f4", shape, bytes_of(std::vector<float>{1, 2, 3}));
  EXPECT_EQ(over_dir.code(), StatusCode::kIoError);
  ::rmdir(subdir.c_str());
  EXPECT_EQ(dir.files(), std::vector<std::string>{"weights.npy"});

  Status no_dir = write_npy_file(dir.path() + "/missing/x.npy", "<f4", shape,
                                 bytes_of(std::vector<float>{1, 2, 3}));
  EXPECT_EQ(no_dir.code(), StatusCode::kIoError);
  EXPECT_NE(no_dir.message().find("missing/x.npy"), std::string::npos);
}

}  // namespace
}  // namespace kiln
