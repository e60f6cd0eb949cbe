// Unary math: the floating-point functions (exp, log, trig, erf, sigmoid, ...; integral inputs are
// computed in float32), and the dtype-preserving ops abs, neg, sign, rounding, square, nan_to_num.
#include <cmath>

#include "kernels/cpu/elementwise_loops.h"
#include "kernels/cpu/elementwise_math.h"

namespace kiln::cpu::elementwise {

double erfinv(double y) {
  if (!(y > -1.0 && y < 1.0)) {
    if (y == 1.0) return std::numeric_limits<double>::infinity();
    if (y == -1.0) return -std::numeric_limits<double>::infinity();
    return std::numeric_limits<double>::quiet_NaN();
  }
  // M. Giles' single-precision approximation, then two Newton steps on erf in double.
  double w = -std::log((1.0 - y) * (1.0 + y));
  double p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941}) {
      p = c + p * w;
    }
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682}) {
      p = c + p * w;
    }
  }
  double x = p * y;
  const double two_over_sqrt_pi = 1.1283791670955126;
  for (int i = 0; i < 2; ++i) x -= (std::erf(x) - y) / (two_over_sqrt_pi * std::exp(-x * x));
  return x;
}

namespace {

constexpr uint8_t kNumeric = kIntOk | kFloatOk;

// A floating-point function; the output is floating (float32 for integral inputs).
template <auto kFn>
Status float_math(ir::OpContext& ctx) {
  return run_unary<kFloatOk>(
      ctx, []<typename C>() { return [](C x) -> C { return static_cast<C>(kFn(x)); }; });
}

// Rounding ops leave integers as they are.
template <auto kFn>
Status rounding(ir::OpContext& ctx) {
  return run_unary<kNumeric>(ctx, []<typename C>() {
    return [](C x) -> C {
      if constexpr (std::is_floating_point_v<C>) {
        return kFn(x);
      } else {
        return x;
      }
    };
  });
}

Status abs_kernel(ir::OpContext& ctx) {
  return run_unary<kNumeric>(ctx, []<typename C>() {
    return [](C x) -> C {
      if constexpr (std::is_floating_point_v<C>) {
        return std::abs(x);
      } else {
        return is_negative(x) ? neg_wrap(x) : x;
      }
    };
  });
}

Status neg_kernel(ir::OpContext& ctx) {
  return run_unary<kNumeric>(ctx, []<typename C>() { return [](C x) { return neg_wrap(x); }; });
}

// sign(NaN) is 0, as PyTorch's (0 < x) - (x < 0).
Status sign_kernel(ir::OpContext& ctx) {
  return run_unary<kAnyOk>(ctx, []<typename C>() {
    return [](C x) { return static_cast<C>(int(C(0) < x) - int(is_negative(x))); };
  });
}

Status square_kernel(ir::OpContext& ctx) {
  return run_unary<kNumeric>(ctx, []<typename C>() { return [](C x) { return mul_wrap(x, x); }; });
}

Status frac_kernel(ir::OpContext& ctx) {
  return run_unary<kFloatOk>(
      ctx, []<typename C>() { return [](C x) -> C { return x - std::trunc(x); }; });
}

// round(x, decimals): scales by 10^|decimals| in the compute type, rounds half to even, unscales.
Status round_decimals_kernel(ir::OpContext& ctx) {
  const int64_t decimals = ctx.int_arg(1);
  return run_unary<kFloatOk>(ctx, [&]<typename C>() {
    const bool negative = decimals < 0;
    const C scale =
        static_cast<C>(std::pow(10.0, static_cast<double>(negative ? -decimals : decimals)));
    return [negative, scale](C x) -> C {
      return negative ? std::nearbyint(x / scale) * scale : std::nearbyint(x * scale) / scale;
    };
  });
}

// `v` rounded to `dtype` and back, as PyTorch converts nan_to_num's replacements to the dtype.
double round_to(double v, DType dtype) {
  return dispatch_dtype(dtype,
                        [&]<typename T>() { return element_cast<double>(element_cast<T>(v)); });
}

double dtype_max_finite(DType dtype) {
  return dispatch_dtype(dtype, [&]<typename T>() { return max_finite<T>(); });
}

Status nan_to_num_kernel(ir::OpContext& ctx) {
  const DType dtype = ctx.tensor(0).dtype();
  const double nan = round_to(ctx.optional_float(1).value_or(0.0), dtype);
  const double posinf = round_to(ctx.optional_float(2).value_or(dtype_max_finite(dtype)), dtype);
  const double neginf = round_to(ctx.optional_float(3).value_or(-dtype_max_finite(dtype)), dtype);
  return run_unary<kAnyOk>(ctx, [&]<typename C>() {
    return [n = C(nan), p = C(posinf), m = C(neginf)](C x) -> C {
      if constexpr (std::is_floating_point_v<C>) {
        if (x != x) return n;
        if (std::isinf(x)) return x > 0 ? p : m;
      }
      return x;
    };
  });
}

}  // namespace

Status register_unary_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(
      table,
      {
          {OpKey::aten_exp_default, float_math<[](auto x) { return std::exp(x); }>},
          {OpKey::aten_exp2_default, float_math<[](auto x) { return std::exp2(x); }>},
          {OpKey::aten_expm1_default, float_math<[](auto x) { return std::expm1(x); }>},
          {OpKey::aten_log_default, float_math<[](auto x) { return std::log(x); }>},
          {OpKey::aten_log2_default, float_math<[](auto x) { return std::log2(x); }>},
          {OpKey::aten_log10_default, float_math<[](auto x) { return std::log10(x); }>},
          {OpKey::aten_log1p_default, float_math<[](auto x) { return std::log1p(x); }>},
          {OpKey::aten_sqrt_default, float_math<[](auto x) { return std::sqrt(x); }>},
          {OpKey::aten_rsqrt_default, float_math<[](auto x) { return 1 / std::sqrt(x); }>},
          {OpKey::aten_reciprocal_default, float_math<[](auto x) { return 1 / x; }>},
          {OpKey::aten_sin_default, float_math<[](auto x) { return std::sin(x); }>},
          {OpKey::aten_cos_default, float_math<[](auto x) { return std::cos(x); }>},
          {OpKey::aten_tan_default, float_math<[](auto x) { return std::tan(x); }>},
          {OpKey::aten_asin_default, float_math<[](auto x) { return std::asin(x); }>},
          {OpKey::aten_acos_default, float_math<[](auto x) { return std::acos(x); }>},
          {OpKey::aten_atan_default, float_math<[](auto x) { return std::atan(x); }>},
          {OpKey::aten_sinh_default, float_math<[](auto x) { return std::sinh(x); }>},
          {OpKey::aten_cosh_default, float_math<[](auto x) { return std::cosh(x); }>},
          {OpKey::aten_tanh_default, float_math<[](auto x) { return std::tanh(x); }>},
          {OpKey::aten_asinh_default, float_math<[](auto x) { return std::asinh(x); }>},
          {OpKey::aten_acosh_default, float_math<[](auto x) { return std::acosh(x); }>},
          {OpKey::aten_atanh_default, float_math<[](auto x) { return std::atanh(x); }>},
          {OpKey::aten_erf_default, float_math<[](auto x) { return std::erf(x); }>},
          {OpKey::aten_erfc_default, float_math<[](auto x) { return std::erfc(x); }>},
          {OpKey::aten_erfinv_default, float_math<[](auto x) { return erfinv(x); }>},
          {OpKey::aten_sigmoid_default, float_math<[](auto x) { return 1 / (1 + std::exp(-x)); }>},
          {OpKey::aten_floor_default, rounding<[](auto x) { return std::floor(x); }>},
          {OpKey::aten_ceil_default, rounding<[](auto x) { return std::ceil(x); }>},
          {OpKey::aten_trunc_default, rounding<[](auto x) { return std::trunc(x); }>},
          {OpKey::aten_round_default, rounding<[](auto x) { return std::nearbyint(x); }>},
          {OpKey::aten_round_decimals, round_decimals_kernel},
          {OpKey::aten_frac_default, frac_kernel},
          {OpKey::aten_abs_default, abs_kernel},
          {OpKey::aten_neg_default, neg_kernel},
          {OpKey::aten_sign_default, sign_kernel},
          {OpKey::aten_square_default, square_kernel},
          {OpKey::aten_nan_to_num_default, nan_to_num_kernel},
      });
}

}  // namespace kiln::cpu::elementwise
