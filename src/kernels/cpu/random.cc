// CPU reference kernels for the random ops the reference backend runs: rand, randn, randperm and
// native_dropout. They draw from one generator per process (a 64-bit Mersenne Twister seeded from
// std::random_device at first use, behind a mutex), not from torch's: the values are random, not
// eager's, and the conformance harness compares them by distribution (tests/conformance/compare.py).
// Only the reference backend takes these ops (convert::validate_on_cpu); the CUDA backend declines
// them (convert::check_deterministic).
#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>
#include <type_traits>
#include <vector>

#include "base/element_cast.h"
#include "kernels/cpu/cpu_backend.h"

namespace kiln::cpu {
namespace {

class ProcessGenerator {
 public:
  static ProcessGenerator& instance() {
    static ProcessGenerator generator;
    return generator;
  }

  // `count` 64-bit draws, taken under the lock in one go.
  std::vector<uint64_t> draw(size_t count) {
    std::vector<uint64_t> bits(count);
    std::lock_guard<std::mutex> lock(mutex_);
    for (uint64_t& b : bits) b = engine_();
    return bits;
  }

 private:
  ProcessGenerator() : engine_(std::random_device{}()) {}
  std::mutex mutex_;
  std::mt19937_64 engine_;
};

// Mantissa bits of T (with the implicit one): a uniform draw keeps that many random bits, so
// every value is exact in T and below 1 (a float draw rounded to half could round up to 1).
template <typename T>
constexpr int uniform_bits() {
  if constexpr (std::is_same_v<T, double>) return 53;
  if constexpr (std::is_same_v<T, float>) return 24;
  if constexpr (std::is_same_v<T, BFloat16>) return 8;
  return 11;  // Half
}

template <typename T>
double uniform(uint64_t bits) {
  constexpr int kBits = uniform_bits<T>();
  return std::ldexp(static_cast<double>(bits >> (64 - kBits)), -kBits);
}

// rand(size, dtype, ...): uniform on [0, 1).
Status rand_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  const std::vector<uint64_t> bits = ProcessGenerator::instance().draw(out.numel());
  return dispatch_dtype(out.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      T* dst = out.data<T>();
      for (size_t i = 0; i < bits.size(); ++i) dst[i] = element_cast<T>(uniform<T>(bits[i]));
      return ok_status();
    } else {
      return invalid_argument("rand: expected a floating dtype, found ", dtype_name(out.dtype()));
    }
  });
}

// randn(size, dtype, ...): standard normal, by the Box-Muller transform in double.
Status randn_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  const int64_t n = out.numel();
  const std::vector<uint64_t> bits = ProcessGenerator::instance().draw(2 * ((n + 1) / 2));
  std::vector<double> values(bits.size());
  for (size_t i = 0; i + 1 < bits.size(); i += 2) {
    const double u1 = 1.0 - uniform<double>(bits[i]);  // (0, 1]: log is finite
    const double u2 = uniform<double>(bits[i + 1]);
    const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * M_PI * u2;
    values[i] = r * std::cos(theta);
    values[i + 1] = r * std::sin(theta);
  }
  return dispatch_dtype(out.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      T* dst = out.data<T>();
      for (int64_t i = 0; i < n; ++i) dst[i] = element_cast<T>(values[i]);
      return ok_status();
    } else {
      return invalid_argument("randn: expected a floating dtype, found ", dtype_name(out.dtype()));
    }
  });
}

// randperm(n, dtype=int64, ...): a uniformly random permutation of 0..n-1 (Fisher-Yates).
Status randperm_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  const int64_t n = out.numel();
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  const std::vector<uint64_t> bits = ProcessGenerator::instance().draw(n);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(bits[i] % static_cast<uint64_t>(i + 1));
    std::swap(perm[i], perm[j]);
  }
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    T* dst = out.data<T>();
    for (int64_t i = 0; i < n; ++i) dst[i] = element_cast<T>(static_cast<double>(perm[i]));
  });
  return ok_status();
}

// native_dropout(input, p, train) -> (input * mask * (1 / (1 - p)), mask): each element kept with
// probability 1 - p in training (train None counts as training, as in PyTorch); p == 1 keeps
// none. Outside training the output is the input and the mask all true.
Status native_dropout_kernel(ir::OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const double p = ctx.float_arg(1);
  const bool train = ctx.optional_bool(2).value_or(true);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  Tensor& mask = ctx.output_tensor(1);
  bool* keep = mask.data<bool>();
  const int64_t n = out.numel();
  if (!train) {
    std::fill(keep, keep + n, true);
    return out.copy_from(input);
  }
  const std::vector<uint64_t> bits = ProcessGenerator::instance().draw(n);
  for (int64_t i = 0; i < n; ++i) keep[i] = p < 1.0 && uniform<double>(bits[i]) >= p;
  KILN_ASSIGN_OR_RETURN(Tensor x, input.contiguous());
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  return dispatch_dtype(out.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      using C = ComputeType<T>;
      const T* src = x.data<T>();
      T* dst = out.data<T>();
      // input * mask * scale, as eager computes it: a dropped NaN or inf stays NaN.
      for (int64_t i = 0; i < n; ++i) {
        dst[i] = element_cast<T>(static_cast<C>(src[i]) * C(keep[i] ? 1 : 0) *
                                 static_cast<C>(scale));
      }
      return ok_status();
    } else {
      return invalid_argument("native_dropout: expected a floating input, found ",
                              input.description());
    }
  });
}

}  // namespace

Status register_random_kernels(ir::OpFunctionTable& table) {
  return add_all(table, {
                            {ir::OpKey::aten_rand_default, rand_kernel},
                            {ir::OpKey::aten_randn_default, randn_kernel},
                            {ir::OpKey::aten_randperm_default, randperm_kernel},
                            {ir::OpKey::aten_native_dropout_default, native_dropout_kernel},
                        });
}

}  // namespace kiln::cpu
