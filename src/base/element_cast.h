// Converting one element between kiln's C++ element types with PyTorch's rules: to bool is "!= 0",
// 16-bit floats go through float, floating to integral truncates toward zero.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "base/dtype.h"

namespace kiln {

template <typename T>
constexpr bool kIsReducedFloat = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// The type arithmetic on T is done in: float for 16-bit floats, T otherwise.
template <typename T>
using ComputeType = std::conditional_t<kIsReducedFloat<T>, float, T>;

template <typename To, typename From>
inline To element_cast(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (kIsReducedFloat<From>) {
    return element_cast<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (kIsReducedFloat<To>) {
    return To(static_cast<float>(v));
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    // Out-of-range and NaN are undefined in C++; PyTorch on x86 gets what the truncating
    // conversion instruction gives: the 32-bit (64-bit for int64) "integer indefinite" value for
    // NaN and out-of-range, then narrower types keep the low bits (-1.0 -> uint8 is 255).
    if constexpr (sizeof(To) == 8) {
      if (!(v >= -9.2233720368547758e18 && v < 9.2233720368547758e18)) {
        return static_cast<To>(std::numeric_limits<int64_t>::min());
      }
      return static_cast<To>(static_cast<int64_t>(v));
    } else {
      const int32_t i = (v >= From(-2147483648.0) && v < From(2147483648.0))
                            ? static_cast<int32_t>(v)
                            : std::numeric_limits<int32_t>::min();
      return static_cast<To>(i);
    }
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace kiln
