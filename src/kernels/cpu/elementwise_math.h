// Private to the CPU elementwise kernels: scalar math written to match PyTorch's CPU kernels —
// wrapping integer arithmetic, Python-style floor division and remainder, NaN-propagating
// maximum/minimum, erfinv.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>

#include "base/dtype.h"

namespace kiln::cpu::elementwise {

template <typename C>
constexpr bool kIsInt = std::is_integral_v<C> && !std::is_same_v<C, bool>;

template <typename C>
constexpr bool is_negative(C v) {
  if constexpr (std::is_signed_v<C>) {
    return v < C(0);
  } else {
    return false;
  }
}

// Integer arithmetic wraps around (two's complement), as PyTorch's does; in C++ signed overflow is
// undefined, so it is done in an unsigned type at least as wide as `unsigned`.
template <typename C>
using Wrapping =
    std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;

template <typename C>
C add_wrap(C a, C b) {
  if constexpr (kIsInt<C>) {
    return static_cast<C>(static_cast<Wrapping<C>>(a) + static_cast<Wrapping<C>>(b));
  } else {
    return static_cast<C>(a + b);
  }
}
template <typename C>
C mul_wrap(C a, C b) {
  if constexpr (kIsInt<C>) {
    return static_cast<C>(static_cast<Wrapping<C>>(a) * static_cast<Wrapping<C>>(b));
  } else {
    return static_cast<C>(a * b);
  }
}
template <typename C>
C neg_wrap(C a) {
  if constexpr (kIsInt<C>) {
    return static_cast<C>(Wrapping<C>(0) - static_cast<Wrapping<C>>(a));
  } else if constexpr (std::is_same_v<C, bool>) {
    return a;
  } else {
    return -a;
  }
}

// Set by integer division kernels on a zero divisor (PyTorch's ZeroDivisionError); written from
// several threads.
struct ZeroDivisor {
  std::atomic<bool> seen{false};
  void set() { seen.store(true, std::memory_order_relaxed); }
};

template <typename C>
C div_trunc_int(C a, C b, ZeroDivisor& zero) {
  if (b == C(0)) {
    zero.set();
    return C(0);
  }
  if (is_negative(b) && b == C(-1)) return neg_wrap(a);  // INT_MIN / -1 wraps
  return static_cast<C>(a / b);
}

template <typename C>
C div_floor_int(C a, C b, ZeroDivisor& zero) {
  if (b == C(0)) {
    zero.set();
    return C(0);
  }
  if (is_negative(b) && b == C(-1)) return neg_wrap(a);
  const C q = static_cast<C>(a / b);
  const bool inexact = static_cast<C>(a % b) != C(0);
  return inexact && is_negative(a) != is_negative(b) ? static_cast<C>(q - 1) : q;
}

// Python's %: the result takes the divisor's sign.
template <typename C>
C remainder_int(C a, C b, ZeroDivisor& zero) {
  if (b == C(0)) {
    zero.set();
    return C(0);
  }
  if (is_negative(b) && b == C(-1)) return C(0);
  C r = static_cast<C>(a % b);
  if (r != C(0) && is_negative(r) != is_negative(b)) r = static_cast<C>(r + b);
  return r;
}

// C's %: the result takes the dividend's sign.
template <typename C>
C fmod_int(C a, C b, ZeroDivisor& zero) {
  if (b == C(0)) {
    zero.set();
    return C(0);
  }
  if (is_negative(b) && b == C(-1)) return C(0);
  return static_cast<C>(a % b);
}

// PyTorch's floor division of floats (div_floor_floating): exact where a / b would round.
template <typename C>
C div_floor_float(C a, C b) {
  if (b == C(0)) return a / b;
  const C mod = std::fmod(a, b);
  C div = (a - mod) / b;
  if (mod != C(0) && (b < C(0)) != (mod < C(0))) div -= C(1);
  if (div == C(0)) return std::copysign(C(0), a / b);
  C floordiv = std::floor(div);
  if (div - floordiv > C(0.5)) floordiv += C(1);
  return floordiv;
}

template <typename C>
C remainder_float(C a, C b) {
  C mod = std::fmod(a, b);
  if (mod != C(0) && (b < C(0)) != (mod < C(0))) mod += b;
  return mod;
}

// Integer power by squaring (PyTorch's powi): negative exponents give 0 except for bases 1 and -1.
template <typename C>
C pow_int(C a, C b) {
  if (is_negative(b)) {
    if (a == C(1)) return C(1);
    if (is_negative(a) && a == C(-1)) return b % C(2) != C(0) ? C(-1) : C(1);
    return C(0);
  }
  C result = C(1);
  while (b != C(0)) {
    if ((b & C(1)) != C(0)) result = mul_wrap(result, a);
    b = static_cast<C>(b / C(2));
    a = mul_wrap(a, a);
  }
  return result;
}

// maximum/minimum propagate NaN from either side.
template <typename C>
C max_nan(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (a != a || b != b) return std::numeric_limits<C>::quiet_NaN();
  }
  return std::max(a, b);
}
template <typename C>
C min_nan(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (a != a || b != b) return std::numeric_limits<C>::quiet_NaN();
  }
  return std::min(a, b);
}

// The largest finite value of element type T (nan_to_num's default for +inf).
template <typename T>
double max_finite() {
  if constexpr (std::is_same_v<T, Half>) {
    return 65504.0;
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return 3.3895313892515355e38;
  } else {
    return static_cast<double>(std::numeric_limits<T>::max());
  }
}

// The inverse error function, in double: a rational first guess refined by Newton steps on erf.
double erfinv(double y);

}  // namespace kiln::cpu::elementwise
