// Test support: the values kernel tests are built from: dtype shorthands, NaN and infinity,
// deterministic pseudo-random inputs and non-contiguous views.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "base/tensor.h"

namespace kiln::testing {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

inline constexpr DType kF32 = DType::kFloat32, kF16 = DType::kFloat16, kBF16 = DType::kBFloat16,
                       kF64 = DType::kFloat64;
inline constexpr DType kI64 = DType::kInt64, kI32 = DType::kInt32, kI16 = DType::kInt16,
                       kI8 = DType::kInt8, kU8 = DType::kUInt8, kBool = DType::kBool;

// `count` floats uniform in [-1, 1) from a Mersenne twister seeded with `seed`; none if count <= 0.
std::vector<float> random_floats(int64_t count, uint32_t seed);
// `count` doubles uniform in [-bound, bound), each rounded to float so that a float32 tensor holds
// them exactly, from a Mersenne twister seeded with `seed`.
std::vector<double> random_float_values(int64_t count, uint32_t seed, double bound);

// The transpose of a 2-D tensor, as a strided view of the same storage.
Tensor transposed(const Tensor& t);

}  // namespace kiln::testing
