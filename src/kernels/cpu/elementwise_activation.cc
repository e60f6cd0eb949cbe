// Activations (relu, relu6, hardtanh, gelu, silu, mish, hardswish, hardsigmoid, leaky_relu, elu,
// softplus) and clamp in all its overloads. Formulas follow PyTorch's CPU kernels, NaN included:
// a NaN input stays NaN; clamp with a NaN Scalar bound gives NaN only when both bounds are given,
// while tensor bounds always propagate NaN.
#include <cmath>
#include <limits>

#include "kernels/cpu/elementwise_loops.h"
#include "kernels/cpu/elementwise_math.h"

namespace kiln::cpu::elementwise {
namespace {

constexpr uint8_t kNumeric = kIntOk | kFloatOk;

Status relu_kernel(ir::OpContext& ctx) {
  return run_unary<kNumeric>(
      ctx, []<typename C>() { return [](C x) { return is_negative(x) ? C(0) : x; }; });
}

// min(max(x, lo), hi) with the bounds converted to the compute type.
Status clamp_both(ir::OpContext& ctx, const ir::Scalar& lo, const ir::Scalar& hi) {
  return run_unary<kNumeric>(ctx, [&]<typename C>() {
    return
        [l = scalar_to<C>(lo), h = scalar_to<C>(hi)](C x) { return std::min(std::max(x, l), h); };
  });
}

Status hardtanh_kernel(ir::OpContext& ctx) {
  return clamp_both(ctx, ctx.scalar(1), ctx.scalar(2));
}

Status relu6_kernel(ir::OpContext& ctx) {
  return clamp_both(ctx, ir::Scalar{ir::Scalar::Kind::kInt, 0, 0.0},
                    ir::Scalar{ir::Scalar::Kind::kInt, 6, 0.0});
}

Status gelu_kernel(ir::OpContext& ctx) {
  if (ctx.string_arg(1) == "tanh") {
    return run_unary<kFloatOk>(ctx, []<typename C>() {
      return [](C x) -> C {
        const C beta = static_cast<C>(0.7978845608028654);  // sqrt(2 / pi)
        const C kappa = static_cast<C>(0.044715);
        const C inner = beta * (x + kappa * x * x * x);
        return C(0.5) * x * (C(1) + std::tanh(inner));
      };
    });
  }
  return run_unary<kFloatOk>(ctx, []<typename C>() {
    return [](C x) -> C {
      const C sqrt_half = static_cast<C>(0.7071067811865476);
      return x * C(0.5) * (C(1) + std::erf(x * sqrt_half));
    };
  });
}

Status silu_kernel(ir::OpContext& ctx) {
  return run_unary<kFloatOk>(
      ctx, []<typename C>() { return [](C x) -> C { return x / (C(1) + std::exp(-x)); }; });
}

Status mish_kernel(ir::OpContext& ctx) {
  return run_unary<kFloatOk>(ctx, []<typename C>() {
    return [](C x) -> C { return x * std::tanh(std::log1p(std::exp(x))); };
  });
}

Status hardsigmoid_kernel(ir::OpContext& ctx) {
  return run_unary<kFloatOk>(ctx, []<typename C>() {
    return [](C x) -> C { return std::min(std::max(x + C(3), C(0)), C(6)) / C(6); };
  });
}

Status hardswish_kernel(ir::OpContext& ctx) {
  return run_unary<kFloatOk>(ctx, []<typename C>() {
    return [](C x) -> C { return x * std::min(std::max(x + C(3), C(0)), C(6)) / C(6); };
  });
}

Status leaky_relu_kernel(ir::OpContext& ctx) {
  const ir::Scalar slope = ctx.scalar(1);
  return run_unary<kFloatOk>(ctx, [&]<typename C>() {
    return [s = scalar_to<C>(slope)](C x) -> C { return x > C(0) ? x : x * s; };
  });
}

// elu(x, alpha, scale, input_scale).
Status elu_kernel(ir::OpContext& ctx) {
  const double alpha = ctx.scalar(1).to_double();
  const double scale = ctx.scalar(2).to_double();
  const double input_scale = ctx.scalar(3).to_double();
  return run_unary<kFloatOk>(ctx, [&]<typename C>() {
    const C neg = static_cast<C>(alpha * scale), pos = static_cast<C>(scale);
    return [neg, pos, in = static_cast<C>(input_scale)](C x) -> C {
      return x <= C(0) ? std::expm1(x * in) * neg : x * pos;
    };
  });
}

// softplus(x, beta, threshold): linear above the threshold.
Status softplus_kernel(ir::OpContext& ctx) {
  const ir::Scalar beta = ctx.scalar(1), threshold = ctx.scalar(2);
  return run_unary<kFloatOk>(ctx, [&]<typename C>() {
    return [b = scalar_to<C>(beta), t = scalar_to<C>(threshold)](C x) -> C {
      return x * b > t ? x : std::log1p(std::exp(x * b)) / b;
    };
  });
}

Status clamp_min_by(ir::OpContext& ctx, const ir::Scalar& bound) {
  return run_unary<kNumeric>(
      ctx, [&]<typename C>() { return [b = scalar_to<C>(bound)](C x) { return std::max(x, b); }; });
}

Status clamp_max_by(ir::OpContext& ctx, const ir::Scalar& bound) {
  return run_unary<kNumeric>(
      ctx, [&]<typename C>() { return [b = scalar_to<C>(bound)](C x) { return std::min(x, b); }; });
}

Status clamp_min_kernel(ir::OpContext& ctx) {
  return clamp_min_by(ctx, ctx.scalar(1));
}
Status clamp_max_kernel(ir::OpContext& ctx) {
  return clamp_max_by(ctx, ctx.scalar(1));
}

// clamp(x, min?, max?) with Scalar bounds.
Status clamp_kernel(ir::OpContext& ctx) {
  const std::optional<ir::Scalar> lo = ctx.optional_scalar(1), hi = ctx.optional_scalar(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (lo && hi) {
    if (std::isnan(lo->to_double()) || std::isnan(hi->to_double())) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      return fill_with(ctx.output_tensor(0), ir::Scalar{ir::Scalar::Kind::kFloat, 0, nan});
    }
    return clamp_both(ctx, *lo, *hi);
  }
  if (lo) return clamp_min_by(ctx, *lo);
  if (hi) return clamp_max_by(ctx, *hi);
  return internal_error("clamp without bounds passed shape inference");
}

// clamp(x, min?, max?) with tensor bounds: one bound is maximum/minimum, two a ternary loop.
Status clamp_tensor_kernel(ir::OpContext& ctx) {
  const bool has_min = !ctx.is_none(1), has_max = !ctx.is_none(2);
  if (has_min != has_max) {
    const BinaryOptions options{.a = 0, .b = has_min ? 1u : 2u};
    return run_binary<kAnyOk>(ctx, options, [has_min]<typename C>() {
      return [has_min](C a, C b) { return has_min ? max_nan(a, b) : min_nan(a, b); };
    });
  }
  Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  const DType dtype = out.dtype();
  Tensor ops[3];
  for (size_t i = 0; i < 3; ++i) {
    KILN_ASSIGN_OR_RETURN(Operand op, read_operand(ctx, i));
    KILN_ASSIGN_OR_RETURN(ops[i], operand_tensor(op, dtype));
  }
  return dispatch_classes<kNumeric>(dtype, [&]<typename T>() -> Status {
    using C = ComputeType<T>;
    ternary_loop<T, T, T, T>(out, ops[0], ops[1], ops[2], [](C x, C l, C h) -> C {
      if constexpr (std::is_floating_point_v<C>) {
        if (l != l || h != h) return std::numeric_limits<C>::quiet_NaN();
      }
      return std::min(std::max(x, l), h);
    });
    return ok_status();
  });
}

}  // namespace

Status register_activation_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(table, {
                                {OpKey::aten_relu_default, relu_kernel},
                                {OpKey::aten_relu6_default, relu6_kernel},
                                {OpKey::aten_hardtanh_default, hardtanh_kernel},
                                {OpKey::aten_gelu_default, gelu_kernel},
                                {OpKey::aten_silu_default, silu_kernel},
                                {OpKey::aten_mish_default, mish_kernel},
                                {OpKey::aten_hardsigmoid_default, hardsigmoid_kernel},
                                {OpKey::aten_hardswish_default, hardswish_kernel},
                                {OpKey::aten_leaky_relu_default, leaky_relu_kernel},
                                {OpKey::aten_elu_default, elu_kernel},
                                {OpKey::aten_softplus_default, softplus_kernel},
                                {OpKey::aten_clamp_default, clamp_kernel},
                                {OpKey::aten_clamp_min_default, clamp_min_kernel},
                                {OpKey::aten_clamp_max_default, clamp_max_kernel},
                                {OpKey::aten_clamp_Tensor, clamp_tensor_kernel},
                            });
}

}  // namespace kiln::cpu::elementwise
