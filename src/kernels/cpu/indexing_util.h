// Helpers shared by the linalg, indexing and factory kernels: views (broadcast, unsqueeze), a walk
// over a strided view's elements, index values read with bounds checks, element moves by size, and
// PyTorch's checked conversion of a Scalar into an element type.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "base/element_cast.h"
#include "base/tensor.h"
#include "ir/op_context.h"

namespace kiln::cpu {

// `t` broadcast (NumPy rules, right-aligned) to `shape` as a view: stride 0 on broadcast dims. The
// caller has checked that it broadcasts.
Tensor expand_view(const Tensor& t, const Shape& shape);
// `t` with a unit dim inserted at `dim` (a view).
Tensor unsqueeze_view(const Tensor& t, int64_t dim);
// `t`'s elements under a new shape with contiguous strides: only for a contiguous `t`.
Tensor reshape_contiguous(const Tensor& t, const Shape& shape);

// Calls fn(offsets) for every element of `sizes` in row-major order, where offsets[i] is the
// element's offset under strides[i] (each a span of sizes.size() values). A 0-d shape has one
// element; a shape with a zero-size dim has none.
template <size_t N, typename Fn>
void for_each_element(std::span<const int64_t> sizes,
                      const std::array<std::span<const int64_t>, N>& strides, Fn&& fn) {
  const int64_t count = shape_numel(sizes);
  const size_t rank = sizes.size();
  std::vector<int64_t> counter(rank, 0);
  std::array<int64_t, N> offsets{};
  for (int64_t e = 0; e < count; ++e) {
    fn(static_cast<const std::array<int64_t, N>&>(offsets));
    for (size_t d = rank; d-- > 0;) {
      if (++counter[d] < sizes[d]) {
        for (size_t i = 0; i < N; ++i) offsets[i] += strides[i][d];
        break;
      }
      for (size_t i = 0; i < N; ++i) offsets[i] -= strides[i][d] * (sizes[d] - 1);
      counter[d] = 0;
    }
  }
}

// `index` (int32 or int64, any strides) as a contiguous int64 tensor.
Result<Tensor> index_as_int64(const Tensor& index);

// Wraps a negative index and checks it against the dim's size:
// "index 5 is out of bounds for dim 0 with size 2".
inline Status normalize_index(int64_t& index, int64_t size, int64_t dim) {
  if (index < -size || index >= size) {
    return out_of_range("index ", index, " is out of bounds for dim ", dim, " with size ", size);
  }
  if (index < 0) index += size;
  return ok_status();
}

// Calls fn.template operator()<U>() with the unsigned type the size of `dtype`'s elements.
template <typename Fn>
decltype(auto) dispatch_element_size(DType dtype, Fn&& fn) {
  switch (dtype_size(dtype)) {
    case 1: return fn.template operator()<uint8_t>();
    case 2: return fn.template operator()<uint16_t>();
    case 4: return fn.template operator()<uint32_t>();
    default: return fn.template operator()<uint64_t>();
  }
}

// a + b in T; integers wrap (no signed overflow), 16-bit floats round once, bools or.
template <typename T>
T add_elements(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a || b;
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(static_cast<int64_t>(a)) +
                          static_cast<uint64_t>(static_cast<int64_t>(b)));
  } else {
    return element_cast<T>(static_cast<ComputeType<T>>(a) + static_cast<ComputeType<T>>(b));
  }
}

// a * b in T, with the same conventions as add_elements (bools and).
template <typename T>
T mul_elements(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a && b;
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<uint64_t>(static_cast<int64_t>(a)) *
                          static_cast<uint64_t>(static_cast<int64_t>(b)));
  } else {
    return element_cast<T>(static_cast<ComputeType<T>>(a) * static_cast<ComputeType<T>>(b));
  }
}

// PyTorch's checked Scalar conversion (c10::checked_convert): an error when the value lies outside
// T's range ("value 300 cannot be converted to uint8 without overflow"). Floating types take any
// infinity or NaN; integer types wrap negative values into unsigned ones (-1 -> 255) but take no
// NaN or infinity; bool takes anything (nonzero is true). Floating values truncate toward zero.
Result<double> checked_scalar_double(ir::Scalar s, DType dtype);  // the value T will hold
template <typename T>
Result<T> checked_scalar(ir::Scalar s) {
  constexpr DType kDType = DTypeOf<T>::value;
  if constexpr (std::is_same_v<T, bool>) {
    return s.kind == ir::Scalar::Kind::kFloat ? s.f != 0.0 : s.i != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (s.kind != ir::Scalar::Kind::kFloat) {
      KILN_RETURN_IF_ERROR(checked_scalar_double(s, kDType));
      return static_cast<T>(s.i);
    }
    KILN_ASSIGN_OR_RETURN(double v, checked_scalar_double(s, kDType));
    return static_cast<T>(element_cast<int64_t>(v));
  } else {
    KILN_ASSIGN_OR_RETURN(double v, checked_scalar_double(s, kDType));
    return element_cast<T>(v);
  }
}

// Sets every element of the contiguous tensor `out` to `value` (checked_scalar's rules).
Status fill_scalar(const Tensor& out, ir::Scalar value);

}  // namespace kiln::cpu
