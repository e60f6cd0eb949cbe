#include "base/dtype.h"

#include <array>

namespace kiln {
namespace {

struct DTypeInfo {
  DType dtype;
  size_t size;
  std::string_view name;
  int64_t export_code;
  std::string_view npy;  // empty: NumPy has no such type
};

constexpr std::array<DTypeInfo, 11> kInfo = {{
    {DType::kFloat32, 4, "float32", 7, "<f4"},
    {DType::kFloat16, 2, "float16", 6, "<f2"},
    {DType::kBFloat16, 2, "bfloat16", 13, ""},
    {DType::kFloat64, 8, "float64", 8, "<f8"},
    {DType::kInt64, 8, "int64", 5, "<i8"},
    {DType::kInt32, 4, "int32", 4, "<i4"},
    {DType::kInt16, 2, "int16", 3, "<i2"},
    {DType::kInt8, 1, "int8", 2, "|i1"},
    {DType::kUInt8, 1, "uint8", 1, "|u1"},
    {DType::kBool, 1, "bool", 12, "|b1"},
    {DType::kComplex64, 8, "complex64", 10, "<c8"},
}};

const DTypeInfo& info(DType dtype) {
  return kInfo[static_cast<size_t>(dtype)];
}

// Promotion categories in PyTorch order: bool < integral < floating < complex.
int category(DType d) {
  return d == DType::kBool ? 0 : is_integral(d) ? 1 : is_complex(d) ? 3 : 2;
}

}  // namespace

size_t dtype_size(DType dtype) {
  return info(dtype).size;
}
std::string_view dtype_name(DType dtype) {
  return info(dtype).name;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo) {
    if (i.name == name) return i.dtype;
  }
  if (name == "float") return DType::kFloat32;
  if (name == "half") return DType::kFloat16;
  if (name == "long") return DType::kInt64;
  if (name == "int") return DType::kInt32;
  return std::nullopt;
}

bool is_floating(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kBFloat16 ||
         d == DType::kFloat64;
}
bool is_integral(DType d) {
  return d == DType::kInt64 || d == DType::kInt32 || d == DType::kInt16 || d == DType::kInt8 ||
         d == DType::kUInt8;
}

bool is_complex(DType d) {
  return d == DType::kComplex64;
}

std::optional<DType> dtype_from_export_code(int64_t code) {
  for (const auto& i : kInfo) {
    if (i.export_code == code) return i.dtype;
  }
  return std::nullopt;
}
int64_t export_code(DType dtype) {
  return info(dtype).export_code;
}

std::optional<std::string_view> npy_descr(DType dtype) {
  if (info(dtype).npy.empty()) return std::nullopt;
  return info(dtype).npy;
}
std::optional<DType> dtype_from_npy_descr(std::string_view descr) {
  for (const auto& i : kInfo) {
    if (!i.npy.empty() && i.npy == descr) return i.dtype;
  }
  if (descr == "<b1") return DType::kBool;
  if (descr == "<u1") return DType::kUInt8;
  if (descr == "<i1") return DType::kInt8;
  return std::nullopt;
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 2) {
    // float16 with bfloat16 gives float32; otherwise the wider type.
    if ((a == DType::kFloat16 && b == DType::kBFloat16) ||
        (a == DType::kBFloat16 && b == DType::kFloat16)) {
      return DType::kFloat32;
    }
    return dtype_size(a) >= dtype_size(b) ? a : b;
  }
  // Integral: uint8 with a signed type needs the next wider signed type.
  if (a == DType::kUInt8 || b == DType::kUInt8) {
    DType other = a == DType::kUInt8 ? b : a;
    return other == DType::kInt8 ? DType::kInt16 : other;
  }
  return dtype_size(a) >= dtype_size(b) ? a : b;
}

}  // namespace kiln
