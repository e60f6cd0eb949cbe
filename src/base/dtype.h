// Element types and the 16-bit float formats. Conversions round to nearest even, as PyTorch does.
#pragma once

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>

#include "kiln/status.h"

namespace kiln {

enum class DType : uint8_t {
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat64,
  kInt64,
  kInt32,
  kInt16,
  kInt8,
  kUInt8,
  kBool,
  // Complex values (two interleaved float32s), which only the spectral ops (_fft_r2c, _fft_c2r,
  // _fft_c2c) read or produce; every other kernel declines them, and dispatch_dtype has no C++
  // type for them.
  kComplex64,
};

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // PyTorch's spelling: "float32", "float16", "int64", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool is_floating(DType dtype);
bool is_integral(DType dtype);  // integer types, not bool
bool is_complex(DType dtype);
// The export schema's ScalarType codes (torch/_export/serde/schema.py).
std::optional<DType> dtype_from_export_code(int64_t code);
int64_t export_code(DType dtype);
// NumPy's .npy descriptor ("<f4", "|b1"); nullopt for types NumPy has no spelling for (bfloat16).
std::optional<std::string_view> npy_descr(DType dtype);
std::optional<DType> dtype_from_npy_descr(std::string_view descr);

// PyTorch's type promotion for two tensor operands (torch.result_type of two tensors).
DType promote_types(DType a, DType b);

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: scale into a normal float
      float f = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant * 2^-24
      bits = std::bit_cast<uint32_t>(f) | sign;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t float_to_half(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan
    return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    // Adding 0.5 (2^-1) aligns the mantissa so that the float adder rounds to nearest even for us.
    float scaled = std::bit_cast<float>(abs) + 0.5f;
    return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(scaled) - 0x3f000000u);
  }
  uint32_t mant_odd = (abs >> 13) & 1;
  uint32_t rounded = abs + 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round
  return sign | static_cast<uint16_t>(rounded >> 13);
}

inline float bfloat16_to_float(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

inline uint16_t float_to_bfloat16(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // nan
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

// 16-bit storage types, so kernels can be written once as templates over the element type.
struct Half {
  uint16_t bits;
  Half() = default;
  explicit Half(float f) : bits(float_to_half(f)) {}
  operator float() const { return half_to_float(bits); }  // NOLINT: implicit, like a builtin float
};
struct BFloat16 {
  uint16_t bits;
  BFloat16() = default;
  explicit BFloat16(float f) : bits(float_to_bfloat16(f)) {}
  operator float() const { return bfloat16_to_float(bits); }  // NOLINT
};

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<Half> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::kBFloat16;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::kInt64;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<int16_t> {
  static constexpr DType value = DType::kInt16;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::kInt8;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::kUInt8;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::kBool;
};

// Calls fn.template operator()<T>() with the C++ type of `dtype`. complex64 has none: kernels
// decline it before dispatching, so reaching here with it is a bug, reported as an internal error
// where fn returns a Status or Result (and ending the process otherwise).
template <typename Fn>
decltype(auto) dispatch_dtype(DType dtype, Fn&& fn) {
  using R = decltype(fn.template operator()<float>());
  switch (dtype) {
    case DType::kComplex64:
      if constexpr (std::is_convertible_v<Status, R>) {
        return R(internal_error("a kernel dispatched on complex64, which it does not take"));
      } else {
        std::abort();
      }
    case DType::kFloat32: return fn.template operator()<float>();
    case DType::kFloat16: return fn.template operator()<Half>();
    case DType::kBFloat16: return fn.template operator()<BFloat16>();
    case DType::kFloat64: return fn.template operator()<double>();
    case DType::kInt64: return fn.template operator()<int64_t>();
    case DType::kInt32: return fn.template operator()<int32_t>();
    case DType::kInt16: return fn.template operator()<int16_t>();
    case DType::kInt8: return fn.template operator()<int8_t>();
    case DType::kUInt8: return fn.template operator()<uint8_t>();
    case DType::kBool: return fn.template operator()<bool>();
  }
  return fn.template operator()<float>();
}

}  // namespace kiln
