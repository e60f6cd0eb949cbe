// Binary arithmetic: add, sub, rsub, mul, div (true, trunc, floor), floor_divide, remainder, fmod,
// pow, maximum, minimum, atan2. Integer division by zero is an error, as in PyTorch.
#include <cmath>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/elementwise_loops.h"
#include "kernels/cpu/elementwise_math.h"

namespace kiln::cpu::elementwise {
namespace {

constexpr uint8_t kNumeric = kIntOk | kFloatOk;

template <typename C>
constexpr bool kIsFloat = std::is_floating_point_v<C>;

Status check_divisor(ir::OpContext& ctx, const ZeroDivisor& zero) {
  if (!zero.seen.load()) return ok_status();
  return ir::op_error(ctx, "integer division by zero (ZeroDivisionError)");
}

// add, sub and rsub are `a + alpha * b`: sub negates alpha, rsub also swaps the operands.
template <bool kNegateAlpha, bool kSwap>
Status add_kernel(ir::OpContext& ctx) {
  const ir::Scalar alpha = ctx.scalar(2);
  const BinaryOptions options{.a = kSwap ? 1u : 0u, .b = kSwap ? 0u : 1u, .exact_scalar = true};
  return run_binary<kAnyOk>(ctx, options, [&]<typename C>() {
    const C al = kNegateAlpha ? neg_wrap(scalar_to<C>(alpha)) : scalar_to<C>(alpha);
    return [al](C a, C b) { return add_wrap(a, mul_wrap(al, b)); };
  });
}

Status mul_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(ctx, {.exact_scalar = true},
                            []<typename C>() { return [](C a, C b) { return mul_wrap(a, b); }; });
}

// True division: inference made the output floating, so the op computes in it.
Status true_div_kernel(ir::OpContext& ctx) {
  return run_binary<kFloatOk>(ctx, {.exact_scalar = true},
                              []<typename C>() { return [](C a, C b) { return a / b; }; });
}

Status div_trunc(ir::OpContext& ctx) {
  ZeroDivisor zero;
  KILN_RETURN_IF_ERROR(run_binary<kNumeric>(ctx, {.exact_scalar = true}, [&]<typename C>() {
    return [&zero](C a, C b) -> C {
      if constexpr (kIsFloat<C>) {
        return std::trunc(a / b);
      } else {
        return div_trunc_int(a, b, zero);
      }
    };
  }));
  return check_divisor(ctx, zero);
}

Status div_floor(ir::OpContext& ctx) {
  ZeroDivisor zero;
  KILN_RETURN_IF_ERROR(run_binary<kNumeric>(ctx, {.exact_scalar = true}, [&]<typename C>() {
    return [&zero](C a, C b) -> C {
      if constexpr (kIsFloat<C>) {
        return div_floor_float(a, b);
      } else {
        return div_floor_int(a, b, zero);
      }
    };
  }));
  return check_divisor(ctx, zero);
}

Status div_mode_kernel(ir::OpContext& ctx) {
  if (ctx.is_none(2)) return true_div_kernel(ctx);
  return ctx.string_arg(2) == "trunc" ? div_trunc(ctx) : div_floor(ctx);
}

Status remainder_kernel(ir::OpContext& ctx) {
  ZeroDivisor zero;
  KILN_RETURN_IF_ERROR(run_binary<kNumeric>(ctx, {}, [&]<typename C>() {
    return [&zero](C a, C b) -> C {
      if constexpr (kIsFloat<C>) {
        return remainder_float(a, b);
      } else {
        return remainder_int(a, b, zero);
      }
    };
  }));
  return check_divisor(ctx, zero);
}

Status fmod_kernel(ir::OpContext& ctx) {
  ZeroDivisor zero;
  KILN_RETURN_IF_ERROR(run_binary<kNumeric>(ctx, {}, [&]<typename C>() {
    return [&zero](C a, C b) -> C {
      if constexpr (kIsFloat<C>) {
        return std::fmod(a, b);
      } else {
        return fmod_int(a, b, zero);
      }
    };
  }));
  return check_divisor(ctx, zero);
}

Status pow_kernel(ir::OpContext& ctx) {
  return run_binary<kNumeric>(ctx, {}, []<typename C>() {
    return [](C a, C b) -> C {
      if constexpr (kIsFloat<C>) {
        return std::pow(a, b);
      } else {
        return pow_int(a, b);
      }
    };
  });
}

// pow(Tensor, Scalar) takes PyTorch's shortcuts for common exponents, whose results differ from
// std::pow in the last bit (and at -inf for 0.5).
template <typename Fn>
Status pow_float(ir::OpContext& ctx, Fn fn) {
  return run_unary<kFloatOk>(ctx, [&]<typename C>() { return [fn](C x) -> C { return fn(x); }; });
}

Status pow_tensor_scalar_kernel(ir::OpContext& ctx) {
  const ir::Scalar exponent = ctx.scalar(1);
  const Tensor& x = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  const double e = exponent.to_double();
  if (e == 0.0) return fill_with(out, ir::Scalar{ir::Scalar::Kind::kInt, 1, 0.0});
  if (e == 1.0) return copy_into(out, x);
  if (!is_floating(out.dtype())) {
    return run_unary<kIntOk>(ctx, [&]<typename C>() {
      const C ec = scalar_to<C>(exponent);
      return [ec](C v) { return pow_int(v, ec); };
    });
  }
  if (e == 2.0) return pow_float(ctx, [](auto v) { return v * v; });
  if (e == 3.0) return pow_float(ctx, [](auto v) { return v * v * v; });
  if (e == 0.5) return pow_float(ctx, [](auto v) { return std::sqrt(v); });
  if (e == -0.5) return pow_float(ctx, [](auto v) { return decltype(v)(1) / std::sqrt(v); });
  if (e == -1.0) return pow_float(ctx, [](auto v) { return decltype(v)(1) / v; });
  if (e == -2.0) return pow_float(ctx, [](auto v) { return decltype(v)(1) / (v * v); });
  return run_unary<kFloatOk>(ctx, [&]<typename C>() {
    const C ec = scalar_to<C>(exponent);
    return [ec](C v) -> C { return std::pow(v, ec); };
  });
}

Status maximum_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(ctx, {},
                            []<typename C>() { return [](C a, C b) { return max_nan(a, b); }; });
}

Status minimum_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(ctx, {},
                            []<typename C>() { return [](C a, C b) { return min_nan(a, b); }; });
}

Status atan2_kernel(ir::OpContext& ctx) {
  return run_binary<kFloatOk>(
      ctx, {}, []<typename C>() { return [](C a, C b) -> C { return std::atan2(a, b); }; });
}

}  // namespace

Status register_arithmetic_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(table, {
                                {OpKey::aten_add_Tensor, add_kernel<false, false>},
                                {OpKey::aten_add_Scalar, add_kernel<false, false>},
                                {OpKey::aten_sub_Tensor, add_kernel<true, false>},
                                {OpKey::aten_sub_Scalar, add_kernel<true, false>},
                                {OpKey::aten_subtract_Tensor, add_kernel<true, false>},
                                {OpKey::aten_subtract_Scalar, add_kernel<true, false>},
                                {OpKey::aten_rsub_Tensor, add_kernel<true, true>},
                                {OpKey::aten_rsub_Scalar, add_kernel<true, true>},
                                {OpKey::aten_mul_Tensor, mul_kernel},
                                {OpKey::aten_mul_Scalar, mul_kernel},
                                {OpKey::aten_multiply_Tensor, mul_kernel},
                                {OpKey::aten_multiply_Scalar, mul_kernel},
                                {OpKey::aten_div_Tensor, true_div_kernel},
                                {OpKey::aten_div_Scalar, true_div_kernel},
                                {OpKey::aten_true_divide_Tensor, true_div_kernel},
                                {OpKey::aten_true_divide_Scalar, true_div_kernel},
                                {OpKey::aten_div_Tensor_mode, div_mode_kernel},
                                {OpKey::aten_div_Scalar_mode, div_mode_kernel},
                                {OpKey::aten_floor_divide_default, div_floor},
                                {OpKey::aten_floor_divide_Scalar, div_floor},
                                {OpKey::aten_remainder_Tensor, remainder_kernel},
                                {OpKey::aten_remainder_Scalar, remainder_kernel},
                                {OpKey::aten_remainder_Scalar_Tensor, remainder_kernel},
                                {OpKey::aten_fmod_Tensor, fmod_kernel},
                                {OpKey::aten_fmod_Scalar, fmod_kernel},
                                {OpKey::aten_pow_Tensor_Tensor, pow_kernel},
                                {OpKey::aten_pow_Scalar, pow_kernel},
                                {OpKey::aten_pow_Tensor_Scalar, pow_tensor_scalar_kernel},
                                {OpKey::aten_maximum_default, maximum_kernel},
                                {OpKey::aten_minimum_default, minimum_kernel},
                                {OpKey::aten_clamp_min_Tensor, maximum_kernel},
                                {OpKey::aten_clamp_max_Tensor, minimum_kernel},
                                {OpKey::aten_atan2_default, atan2_kernel},
                            });
}

}  // namespace kiln::cpu::elementwise
