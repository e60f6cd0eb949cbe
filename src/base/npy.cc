#include "base/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "base/mapped_file.h"

namespace kiln {

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kAlignment = 64;  // NumPy pads the header so that the data starts aligned

std::string shape_string(std::span<const int64_t> shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  out += ")";
  return out;
}

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// This reads just the subset NumPy writes: string keys, a string or list, a bool, a tuple of ints.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  Status parse(NpyArray* array) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    KILN_RETURN_IF_ERROR(expect('{'));
    while (true) {
      skip_spaces();
      if (peek() == '}') break;
      std::string key;
      KILN_RETURN_IF_ERROR(parse_string(&key));
      KILN_RETURN_IF_ERROR(expect(':'));
      skip_spaces();
      if (key == "descr") {
        if (peek() == '[') {
          return unsupported("structured .npy dtypes (a list descr) are not supported");
        }
        KILN_RETURN_IF_ERROR(parse_string(&array->descr));
        seen_descr = true;
      } else if (key == "fortran_order") {
        KILN_RETURN_IF_ERROR(parse_bool(&array->fortran_order));
        seen_order = true;
      } else if (key == "shape") {
        KILN_RETURN_IF_ERROR(parse_shape(&array->shape));
        seen_shape = true;
      } else {
        return fail(
            str_cat("one of the keys 'descr', 'fortran_order', 'shape', found '", key, "'"));
      }
      skip_spaces();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        return fail("',' or '}'");
      }
    }
    if (!seen_descr || !seen_order || !seen_shape) {
      return fail("the keys 'descr', 'fortran_order' and 'shape'");
    }
    return ok_status();
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_spaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\t' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  Status fail(std::string_view expected) const {
    const std::string found =
        pos_ < text_.size() ? str_cat("'", text_[pos_], "' at offset ", pos_) : "its end";
    return data_loss("invalid .npy header: expected ", expected, ", found ", found);
  }

  Status expect(char c) {
    skip_spaces();
    if (peek() != c) return fail(str_cat("'", c, "'"));
    ++pos_;
    return ok_status();
  }

  Status parse_string(std::string* out) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') return fail("a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) return fail("a closing quote");
    out->assign(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return ok_status();
  }

  Status parse_bool(bool* out) {
    if (text_.substr(pos_, 4) == "True") {
      *out = true;
      pos_ += 4;
    } else if (text_.substr(pos_, 5) == "False") {
      *out = false;
      pos_ += 5;
    } else {
      return fail("True or False");
    }
    return ok_status();
  }

  Status parse_shape(std::vector<int64_t>* shape) {
    KILN_RETURN_IF_ERROR(expect('('));
    shape->clear();
    while (true) {
      skip_spaces();
      if (peek() == ')') break;
      int64_t dim;
      const char* begin = text_.data() + pos_;
      const auto [end, error] = std::from_chars(begin, text_.data() + text_.size(), dim);
      if (error != std::errc() || dim < 0) return fail("a non-negative dimension");
      pos_ += end - begin;
      if (peek() == 'L') ++pos_;  // written by Python 2
      shape->push_back(dim);
      skip_spaces();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        return fail("',' or ')'");
      }
    }
    ++pos_;
    return ok_status();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// Elements in `shape`, or an error if the product overflows.
Result<uint64_t> element_count(std::span<const int64_t> shape) {
  uint64_t count = 1;
  for (const int64_t dim : shape) {
    if (dim < 0)
      return invalid_argument("expected non-negative dims, found shape ", shape_string(shape));
    if (dim != 0 && count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim)) {
      return invalid_argument("shape ", shape_string(shape), " has too many elements");
    }
    count *= static_cast<uint64_t>(dim);
  }
  return count;
}

Result<uint64_t> byte_count(std::string_view descr, std::span<const int64_t> shape) {
  KILN_ASSIGN_OR_RETURN(const size_t item_size, npy_item_size(descr));
  KILN_ASSIGN_OR_RETURN(const uint64_t count, element_count(shape));
  if (count > std::numeric_limits<uint64_t>::max() / item_size) {
    return invalid_argument("shape ", shape_string(shape), " has too many bytes");
  }
  return count * item_size;
}

std::string npy_header(std::string_view descr, std::span<const int64_t> shape) {
  std::string dict = str_cat("{'descr': '", descr,
                             "', 'fortran_order': False, 'shape': ", shape_string(shape), ", }");
  // Version 1.0 has a 2-byte header length; version 2.0 exists for longer headers.
  size_t prefix = kMagic.size() + 2 + 2;
  if (dict.size() + 1 + prefix + kAlignment > 0xFFFF) prefix = kMagic.size() + 2 + 4;
  const size_t total = (prefix + dict.size() + 1 + kAlignment - 1) / kAlignment * kAlignment;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string header(kMagic);
  const uint32_t length = static_cast<uint32_t>(dict.size());
  if (prefix == kMagic.size() + 4) {
    header += {'\x01', '\x00', static_cast<char>(length & 0xFF), static_cast<char>(length >> 8)};
  } else {
    header += {'\x02', '\x00'};
    for (int i = 0; i < 4; ++i) header.push_back(static_cast<char>((length >> (8 * i)) & 0xFF));
  }
  return header + dict;
}

Status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write '", path, "': ", std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return ok_status();
}

}  // namespace

Result<size_t> npy_item_size(std::string_view descr) {
  if (descr.size() == 3) {
    const std::string_view type = descr.substr(1);
    const char order = descr[0];
    if (type == "b1" || type == "u1" || type == "i1") {
      if (order == '|' || order == '<' || order == '>' || order == '=') return size_t{1};
    } else if (type == "f2" || type == "f4" || type == "f8" || type == "i2" || type == "i4" ||
               type == "i8") {
      if (order == '<') return static_cast<size_t>(type[1] - '0');
      if (order == '>') {
        return unsupported("big-endian .npy dtype '", descr, "' is not supported; save the ",
                           "array with a little-endian dtype (e.g. '<", type, "')");
      }
    }
  }
  return unsupported(
      ".npy dtype '", descr,
      "' is not supported; expected one of <f4, <f2, <f8, <i8, <i4, <i2, |i1, |u1, |b1");
}

Result<NpyArray> read_npy(std::string_view bytes) {
  if (bytes.size() < kMagic.size() + 4 || bytes.substr(0, kMagic.size()) != kMagic) {
    return data_loss("not a .npy file: expected the magic string \\x93NUMPY");
  }
  const auto major = static_cast<uint8_t>(bytes[6]), minor = static_cast<uint8_t>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return unsupported(".npy format version ", int{major}, ".", int{minor},
                       " is not supported; expected 1.0, 2.0 or 3.0");
  }
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t header_start = 10;
  uint64_t header_length = u[8] | u[9] << 8;
  if (major >= 2) {
    if (bytes.size() < 12) return data_loss(".npy file is truncated: it ends inside its preamble");
    header_start = 12;
    header_length =
        header_length | static_cast<uint64_t>(u[10]) << 16 | static_cast<uint64_t>(u[11]) << 24;
  }
  if (header_length > bytes.size() - header_start) {
    return data_loss(".npy file is truncated: expected a header of ", header_length,
                     " bytes, found ", bytes.size() - header_start);
  }
  NpyArray array;
  KILN_RETURN_IF_ERROR(HeaderParser(bytes.substr(header_start, header_length)).parse(&array));
  KILN_ASSIGN_OR_RETURN(const size_t item_size, npy_item_size(array.descr));
  if (item_size == 1) array.descr[0] = '|';
  size_t large_dims = 0;
  for (const int64_t dim : array.shape) large_dims += dim > 1 ? 1 : 0;
  if (array.fortran_order && large_dims > 1) {
    return unsupported(".npy array of shape ", shape_string(array.shape),
                       " is in Fortran order, which is not supported; save it C-contiguous");
  }
  Result<uint64_t> expected = byte_count(array.descr, array.shape);
  if (!expected.ok()) return data_loss("invalid .npy header: ", expected.status().message());
  const std::string_view data = bytes.substr(header_start + header_length);
  if (data.size() != *expected) {
    return data_loss(".npy data size mismatch: shape ", shape_string(array.shape), " of ",
                     array.descr, " needs ", *expected, " bytes, found ", data.size());
  }
  array.data.assign(data);
  return array;
}

Result<NpyArray> read_npy_file(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(const MappedFile file, MappedFile::open(path));
  KILN_ASSIGN_OR_RETURN(NpyArray array, read_npy(file.bytes()), "while reading '", path, "'");
  return array;
}

Status check_npy_array(std::string_view descr, std::span<const int64_t> shape, size_t data_size) {
  KILN_ASSIGN_OR_RETURN(const uint64_t expected, byte_count(descr, shape));
  if (expected != data_size) {
    return invalid_argument("shape ", shape_string(shape), " of ", descr, " needs ", expected,
                            " bytes of data, found ", data_size);
  }
  return ok_status();
}

std::string write_npy(std::string_view descr, std::span<const int64_t> shape,
                      std::string_view data) {
  std::string out = npy_header(descr, shape);
  out.append(data);
  return out;
}

Status write_npy_file(const std::string& path, std::string_view descr,
                      std::span<const int64_t> shape, std::string_view data) {
  KILN_RETURN_IF_ERROR(check_npy_array(descr, shape, data.size()), "while writing '", path, "'");
  std::string temp_path = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp_path.data());
  if (fd < 0) {
    return io_error("cannot create a temporary file beside '", path, "': ", std::strerror(errno));
  }
  Status status = write_all(fd, npy_header(descr, shape), path);
  if (status.ok()) status = write_all(fd, data, path);
  // mkstemp makes the file private; give it the mode an ordinary new file would have.
  if (status.ok() && ::fchmod(fd, 0644) != 0) {
    status = io_error("cannot set the mode of '", temp_path, "': ", std::strerror(errno));
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = io_error("cannot flush '", path, "': ", std::strerror(errno));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = io_error("cannot close '", path, "': ", std::strerror(errno));
  }
  if (status.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    status = io_error("cannot rename '", temp_path, "' to '", path, "': ", std::strerror(errno));
  }
  if (!status.ok()) ::unlink(temp_path.c_str());
  return status;
}

}  // namespace kiln
