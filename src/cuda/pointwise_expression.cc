#include "cuda/pointwise_expression.h"

#include <cmath>
#include <cstdio>
#include <variant>

#include "cuda/kernel_library.h"
#include "kiln/status.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

bool is_float_math(DType dtype) { return is_floating(dtype); }

std::string float_literal(double x, std::string_view type) {
  if (std::isnan(x)) return type == "double" ? "__longlong_as_double(0x7ff8000000000000LL)"
                                            : "__int_as_float(0x7fc00000)";
  if (std::isinf(x)) {
    if (type == "double") {
      return x > 0 ? "__longlong_as_double(0x7ff0000000000000LL)"
                   : "__longlong_as_double(0xfff0000000000000LL)";
    }
    return x > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float(0xff800000)";
  }
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.17g", x);
  std::string text = buffer;
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return type == "double" ? text : str_cat("((float)", text, ")");
}

// A constant argument as a literal of `type`.
std::optional<std::string> literal(const ir::Argument& arg, std::string_view type) {
  double value = 0;
  bool is_float = false;
  if (const int64_t* i = std::get_if<int64_t>(&arg)) {
    value = static_cast<double>(*i);
    if (type == "i64") return str_cat("((i64)", *i, "LL)");
    if (type == "bool") return *i != 0 ? std::string("true") : std::string("false");
  } else if (const double* d = std::get_if<double>(&arg)) {
    value = *d;
    is_float = true;
  } else if (const bool* b = std::get_if<bool>(&arg)) {
    if (type == "bool") return *b ? std::string("true") : std::string("false");
    value = *b ? 1.0 : 0.0;
  } else {
    return std::nullopt;
  }
  if (type == "i64") {
    if (is_float) return std::nullopt;  // int math with a float scalar would promote: not here
    return str_cat("((i64)", static_cast<int64_t>(value), "LL)");
  }
  if (type == "bool") return value != 0 ? std::string("true") : std::string("false");
  return float_literal(value, type);
}

bool is_float_scalar(const ir::Argument& arg) { return std::holds_alternative<double>(arg); }
std::optional<double> scalar_value(const ir::Argument& arg) {
  if (const int64_t* i = std::get_if<int64_t>(&arg)) return static_cast<double>(*i);
  if (const double* d = std::get_if<double>(&arg)) return *d;
  if (const bool* b = std::get_if<bool>(&arg)) return *b ? 1.0 : 0.0;
  return std::nullopt;
}

// The math type of a comparison: PyTorch's promotion of its operands (a float scalar makes an
// integer comparison a float one).
std::string_view comparison_type(const ir::Node& node) {
  std::optional<DType> promoted;
  bool float_scalar = false;
  for (size_t i = 0; i < 2 && i < node.args.size(); ++i) {
    if (const ir::Value* v = tensor_arg(node, i)) {
      promoted = promoted ? promote_types(*promoted, v->dtype) : v->dtype;
    } else if (is_float_scalar(node.args[i])) {
      float_scalar = true;
    }
  }
  if (!promoted) return "float";
  if (float_scalar && !is_floating(*promoted)) return "float";
  if (*promoted == DType::kBool) return "i64";
  return opmath(*promoted);
}

// The CUDA math function `name`, spelled for float, for values of math type `t`.
std::string math_fn(std::string_view name, std::string_view t) {
  return std::string(t == "double" ? name.substr(0, name.size() - 1) : name);
}

bool is_16bit_float(DType dtype) {
  return dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// `x` as a float cast to `dtype`, as c10 casts a Scalar (through float for the 16-bit types).
double cast_to(double x, DType dtype) {
  const float f = static_cast<float>(x);
  if (dtype == DType::kFloat16) return static_cast<float>(Half(f));
  if (dtype == DType::kBFloat16) return static_cast<float>(BFloat16(f));
  return dtype == DType::kFloat64 ? x : f;
}

bool fits_integer(int64_t v, DType dtype) {
  switch (dtype) {
    case DType::kInt32: return v >= INT32_MIN && v <= INT32_MAX;
    case DType::kInt16: return v >= INT16_MIN && v <= INT16_MAX;
    case DType::kInt8: return v >= INT8_MIN && v <= INT8_MAX;
    case DType::kUInt8: return v >= 0 && v <= UINT8_MAX;
    default: return true;
  }
}

// The binary ops whose eager CUDA kernels take operands of the common dtype `dtype` (fmod,
// remainder, atan2, a rounding division by a tensor) see a number or a tensor of another dtype
// cast to it first: a 16-bit float rounds the value, an integer type wraps it (declined here).
std::optional<std::string> common_operand(const ir::Node& node, const Emitter& e, size_t i,
                                          DType dtype, std::string* why) {
  const std::string_view t = opmath(dtype);
  if (const ir::Value* v = tensor_arg(node, i)) {
    auto x = e.operand(node, i, t);
    if (!x || !is_16bit_float(dtype) || v->dtype == dtype) return x;
    return str_cat("to_float(from_float<", device_type_name(dtype), ">(", *x, "))");
  }
  if (i >= node.args.size()) return std::nullopt;
  const int64_t* n = std::get_if<int64_t>(&node.args[i]);
  if (n && !is_floating(dtype) && !fits_integer(*n, dtype)) {
    *why = str_cat("scalar ", *n, " does not fit ", dtype_name(dtype), " (eager would wrap it)");
    return std::nullopt;
  }
  auto value = scalar_value(node.args[i]);
  if (value && is_floating(dtype)) return float_literal(cast_to(*value, dtype), t);
  return literal(node.args[i], t);
}

// An integer divisor (argument 1) that may be zero: eager raises on the CPU, and CUDA's integer
// division by zero has no defined result, so only nonzero numbers are taken.
bool integer_divisor_ok(const ir::Node& node, std::string* why) {
  if (tensor_arg(node, 1)) {
    *why = "integer division by a tensor (a zero divisor has no defined result on CUDA)";
    return false;
  }
  auto divisor = node.args.size() > 1 ? scalar_value(node.args[1]) : std::nullopt;
  if (divisor && *divisor == 0) {
    *why = "integer division by zero";
    return false;
  }
  return divisor.has_value();
}

// fmod.Tensor / fmod.Scalar: C's fmod; integers take the truncated remainder.
std::optional<std::string> fmod_expression(const ir::Node& node, const Emitter& e, DType dtype,
                                           std::string* why) {
  const std::string_view t = opmath(dtype);
  if (t == "bool" || (t == "i64" && !integer_divisor_ok(node, why))) return std::nullopt;
  auto x = common_operand(node, e, 0, dtype, why), y = common_operand(node, e, 1, dtype, why);
  if (!x || !y) return std::nullopt;
  if (t == "i64") return str_cat("(", *x, " % ", *y, ")");
  return str_cat(math_fn("fmodf", t), "(", *x, ", ", *y, ")");
}

// remainder.Tensor / remainder.Scalar: Python's modulo, the sign of the divisor (eager's CUDA
// kernel, BinaryRemainderKernel.cu, for floats and integers alike).
std::optional<std::string> remainder_expression(const ir::Node& node, const Emitter& e, DType dtype,
                                                std::string* why) {
  const std::string_view t = opmath(dtype);
  if (t == "bool" || (t == "i64" && !integer_divisor_ok(node, why))) return std::nullopt;
  auto x = common_operand(node, e, 0, dtype, why), y = common_operand(node, e, 1, dtype, why);
  if (!x || !y) return std::nullopt;
  const std::string mod = t == "i64" ? "a % b" : str_cat(math_fn("fmodf", t), "(a, b)");
  return str_cat("([](", t, " a, ", t, " b) { ", t, " r = ", mod,
                 "; if (r != 0 && ((r < 0) != (b < 0))) r += b; return r; }(", *x, ", ", *y, "))");
}

// c10::div_floor_floating; with a number divisor eager multiplies by its reciprocal instead.
std::string floor_divide_float(std::string_view t, const std::string& x, const std::string& y,
                               const std::optional<std::string>& inverse = std::nullopt) {
  const std::string f = str_cat(t, " ");
  const std::string quotient = inverse ? str_cat("(a - mod) * ", *inverse) : "(a - mod) / b";
  const std::string sign = inverse ? str_cat("a * ", *inverse) : "a / b";
  return str_cat("([](", f, "a, ", f, "b) { ", inverse ? "" : "if (b == 0) return a / b; ", f,
                 "mod = ", math_fn("fmodf", t), "(a, b); ", f, "div = ", quotient,
                 "; if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1; if (div == 0) return ",
                 math_fn("copysignf", t), "((", t, ")0, ", sign, "); ", f,
                 "q = ", math_fn("floorf", t), "(div); if (div - q > (", t,
                 ")0.5) q += 1; return q; }(", x, ", ", y, "))");
}

// div.Tensor_mode / div.Scalar_mode: rounding_mode None, "trunc" or "floor", as eager's CUDA
// kernels (BinaryDivTrueKernel.cu, BinaryDivTruncKernel.cu, BinaryDivFloorKernel.cu).
std::optional<std::string> div_mode_expression(const ir::Node& node, const Emitter& e, DType dtype,
                                               std::string* why) {
  const std::string* mode =
      node.args.size() > 2 ? std::get_if<std::string>(&node.args[2]) : nullptr;
  const std::string_view t = opmath(dtype);
  if (t == "bool" || (mode && *mode != "trunc" && *mode != "floor")) return std::nullopt;
  if (!mode && !is_floating(dtype)) {
    *why = "integer output of true division";
    return std::nullopt;
  }
  if (t == "i64" && !integer_divisor_ok(node, why)) return std::nullopt;
  auto x = common_operand(node, e, 0, dtype, why);
  if (!x) return std::nullopt;
  // A number divisor: the floating kernels read it in opmath, not rounded to a 16-bit dtype, and
  // multiply by its reciprocal; floor division by zero is true division.
  auto divisor = scalar_value(node.args[1]);
  if (t != "i64" && !tensor_arg(node, 1) && divisor) {
    const double b = t == "double" ? *divisor : static_cast<float>(*divisor);
    const std::string inverse =
        float_literal(t == "double" ? 1.0 / b : 1.0f / static_cast<float>(b), t);
    if (mode && *mode == "floor" && b != 0) {
      return floor_divide_float(t, *x, float_literal(b, t), inverse);
    }
    const std::string product = str_cat("(", *x, " * ", inverse, ")");
    return mode && *mode == "trunc" ? str_cat(math_fn("truncf", t), product) : product;
  }
  auto y = common_operand(node, e, 1, dtype, why);
  if (!y) return std::nullopt;
  if (t == "i64") {
    if (*mode == "trunc") return str_cat("(", *x, " / ", *y, ")");
    return str_cat("([](i64 a, i64 b) { const i64 q = a / b; ",
                   "return (a < 0) != (b < 0) && a % b != 0 ? q - 1 : q; }(", *x, ", ", *y, "))");
  }
  if (!mode) return str_cat("(", *x, " / ", *y, ")");
  if (*mode == "floor") return floor_divide_float(t, *x, *y);
  // trunc(a / b) with a / b in the dtype: a 16-bit quotient rounds before it is truncated.
  std::string quotient = str_cat("(", *x, " / ", *y, ")");
  if (is_16bit_float(dtype)) {
    quotient = str_cat("to_float(from_float<", device_type_name(dtype), ">", quotient, ")");
  }
  return str_cat(math_fn("truncf", t), "(", quotient, ")");
}

// clamp.Tensor: min and max are tensors or None. With both, NaN propagates from the input, then
// min, then max; with one, as maximum / minimum (the input's NaN first).
std::optional<std::string> clamp_tensor_expression(const ir::Node& node, const Emitter& e,
                                                   DType dtype) {
  const std::string_view t = opmath(dtype);
  const bool fp = is_floating(dtype);
  auto x = e.operand(node, 0, t);
  const bool has_lo = node.args.size() > 1 && !std::holds_alternative<ir::NoneArg>(node.args[1]);
  const bool has_hi = node.args.size() > 2 && !std::holds_alternative<ir::NoneArg>(node.args[2]);
  auto lo = has_lo ? e.operand(node, 1, t) : std::nullopt;
  auto hi = has_hi ? e.operand(node, 2, t) : std::nullopt;
  if (!x || (has_lo && !lo) || (has_hi && !hi) || (!has_lo && !has_hi)) return std::nullopt;
  if (!fp) {
    std::string body = *x;
    if (lo) body = str_cat("(", body, " < ", *lo, " ? ", *lo, " : ", body, ")");
    if (hi) body = str_cat("(", body, " > ", *hi, " ? ", *hi, " : ", body, ")");
    return body;
  }
  const std::string f = str_cat(t, " ");
  if (lo && hi) {
    return str_cat("([](", f, "v, ", f, "lo, ", f, "hi) { if (v != v) return v; ",
                   "if (lo != lo) return lo; if (hi != hi) return hi; return ", math_fn("fminf", t),
                   "(", math_fn("fmaxf", t), "(v, lo), hi); }(", *x, ", ", *lo, ", ", *hi, "))");
  }
  return str_cat("([](", f, "v, ", f, "b) { if (v != v) return v; if (b != b) return b; return ",
                 math_fn(lo ? "fmaxf" : "fminf", t), "(v, b); }(", *x, ", ", lo ? *lo : *hi, "))");
}

// elu(x, alpha, scale, input_scale), with eager's coefficients (alpha * scale in float).
std::optional<std::string> elu_expression(const ir::Node& node, const Emitter& e, DType dtype) {
  const std::string_view t = opmath(dtype);
  auto x = e.operand(node, 0, t);
  std::optional<double> coef[3];
  for (size_t i = 0; i < 3; ++i) {
    coef[i] = node.args.size() > i + 1 ? scalar_value(node.args[i + 1]) : std::optional(1.0);
  }
  if (!x || !is_floating(dtype) || !coef[0] || !coef[1] || !coef[2]) return std::nullopt;
  const float alpha = static_cast<float>(*coef[0]), scale = static_cast<float>(*coef[1]);
  const std::string negative = float_literal(alpha * scale, t);
  return str_cat("(", *x, " > 0 ? ", *x, " * ", float_literal(scale, t), " : ",
                 math_fn("expm1f", t), "(", *x, " * ",
                 float_literal(static_cast<float>(*coef[2]), t), ") * ", negative, ")");
}

}  // namespace

// The type math is done in for values of `dtype`.
std::string_view opmath(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16: return "float";
    case DType::kFloat64: return "double";
    case DType::kBool:
      return "bool";
    default:
      return "i64";
  }
}

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}

std::optional<std::string> Emitter::operand(const ir::Node& node, size_t i,
                                            std::string_view type) const {
  if (i >= node.args.size()) return std::nullopt;
  if (const ir::Value* v = tensor_arg(node, i)) {
    auto it = names_.find(v->id);
    if (it == names_.end()) return std::nullopt;
    return convert(it->second, opmath(v->dtype), type);
  }
  return literal(node.args[i], type);
}

std::string Emitter::convert(const std::string& expr, std::string_view from, std::string_view to) {
  if (from == to) return expr;
  if (to == "bool") return str_cat("(", expr, " != 0)");
  return str_cat("((", to, ")(", expr, "))");
}

std::optional<std::string> node_expression(const ir::Node& node, const Emitter& e,
                                           std::string* why) {
  const ir::Value* out = node.outputs.empty() ? nullptr : node.outputs[0];
  if (!out || out->kind != ir::ValueKind::kTensor) {
    *why = "no tensor output";
    return std::nullopt;
  }
  const std::string t(opmath(out->dtype));
  const bool fp = is_float_math(out->dtype);
  auto a = [&](size_t i) { return e.operand(node, i, t); };
  auto need = [&](std::initializer_list<std::optional<std::string>> parts) {
    for (const auto& p : parts) {
      if (!p) return false;
    }
    return true;
  };
  auto unary_float = [&](std::string_view f_float, std::string_view f_double)
      -> std::optional<std::string> {
    if (!fp) {
      *why = "integer input to a float function";
      return std::nullopt;
    }
    auto x = a(0);
    if (!x) return std::nullopt;
    return str_cat(t == "double" ? f_double : f_float, "(", *x, ")");
  };
  auto scaled = [&](size_t i, size_t alpha_index) -> std::optional<std::string> {
    auto x = a(i);
    if (!x) return std::nullopt;
    if (alpha_index < node.args.size()) {
      auto alpha = scalar_value(node.args[alpha_index]);
      if (alpha && *alpha != 1.0) {
        auto lit = literal(node.args[alpha_index], t);
        if (!lit) return std::nullopt;
        return str_cat("(", *lit, " * ", *x, ")");
      }
    }
    return x;
  };
  auto compare = [&](std::string_view op) -> std::optional<std::string> {
    const std::string_view ct = comparison_type(node);
    auto x = e.operand(node, 0, ct);
    auto y = e.operand(node, 1, ct);
    if (!x || !y) return std::nullopt;
    return str_cat("(", *x, " ", op, " ", *y, ")");
  };
  auto nan_aware = [&](const std::string& x, const std::string& body) {
    return fp ? str_cat("((", x, ") != (", x, ") ? (", x, ") : (", body, "))") : body;
  };

  std::optional<std::string> expr;  // set by the cases built by a helper, which then break
  switch (node.op) {
    case OpKey::aten_add_Tensor:
    case OpKey::aten_add_Scalar: {
      auto x = a(0), y = scaled(1, 2);
      if (!need({x, y})) break;
      if (t == "bool") return str_cat("(", *x, " || ", *y, ")");
      return str_cat("(", *x, " + ", *y, ")");
    }
    case OpKey::aten_sub_Tensor:
    case OpKey::aten_sub_Scalar: {
      auto x = a(0), y = scaled(1, 2);
      if (!need({x, y})) break;
      return str_cat("(", *x, " - ", *y, ")");
    }
    case OpKey::aten_mul_Tensor:
    case OpKey::aten_mul_Scalar: {
      auto x = a(0), y = a(1);
      if (!need({x, y})) break;
      if (t == "bool") return str_cat("(", *x, " && ", *y, ")");
      return str_cat("(", *x, " * ", *y, ")");
    }
    case OpKey::aten_div_Tensor:
    case OpKey::aten_div_Scalar: {
      if (!fp) {
        *why = "integer output of true division";
        return std::nullopt;
      }
      auto x = a(0), y = a(1);
      if (!need({x, y})) break;
      return str_cat("(", *x, " / ", *y, ")");
    }
    case OpKey::aten_div_Tensor_mode:
    case OpKey::aten_div_Scalar_mode: expr = div_mode_expression(node, e, out->dtype, why); break;
    case OpKey::aten_fmod_Tensor:
    case OpKey::aten_fmod_Scalar: expr = fmod_expression(node, e, out->dtype, why); break;
    case OpKey::aten_remainder_Tensor:
    case OpKey::aten_remainder_Scalar: expr = remainder_expression(node, e, out->dtype, why); break;
    case OpKey::aten_atan2_default: {
      auto x = common_operand(node, e, 0, out->dtype, why);
      auto y = common_operand(node, e, 1, out->dtype, why);
      if (!need({x, y}) || !fp) break;
      return str_cat(math_fn("atan2f", t), "(", *x, ", ", *y, ")");
    }
    case OpKey::aten_neg_default: {
      auto x = a(0);
      if (!x) break;
      return str_cat("(-", *x, ")");
    }
    case OpKey::aten_abs_default: {
      auto x = a(0);
      if (!x) break;
      if (t == "bool") return x;
      return fp ? str_cat("fabsf(", *x, ")") : str_cat("(", *x, " < 0 ? -", *x, " : ", *x, ")");
    }
    case OpKey::aten_exp_default: return unary_float("expf", "exp");
    case OpKey::aten_exp2_default: return unary_float("exp2f", "exp2");
    case OpKey::aten_expm1_default: return unary_float("expm1f", "expm1");
    case OpKey::aten_log_default: return unary_float("logf", "log");
    case OpKey::aten_log2_default: return unary_float("log2f", "log2");
    case OpKey::aten_log1p_default: return unary_float("log1pf", "log1p");
    case OpKey::aten_sqrt_default: return unary_float("sqrtf", "sqrt");
    case OpKey::aten_rsqrt_default: return unary_float("rsqrtf", "rsqrt");
    case OpKey::aten_sin_default: return unary_float("sinf", "sin");
    case OpKey::aten_cos_default: return unary_float("cosf", "cos");
    case OpKey::aten_tanh_default: return unary_float("tanhf", "tanh");
    case OpKey::aten_erf_default: return unary_float("erff", "erf");
    case OpKey::aten_log10_default: return unary_float("log10f", "log10");
    case OpKey::aten_tan_default: return unary_float("tanf", "tan");
    case OpKey::aten_asin_default: return unary_float("asinf", "asin");
    case OpKey::aten_acos_default: return unary_float("acosf", "acos");
    case OpKey::aten_atan_default: return unary_float("atanf", "atan");
    case OpKey::aten_sinh_default: return unary_float("sinhf", "sinh");
    case OpKey::aten_cosh_default: return unary_float("coshf", "cosh");
    case OpKey::aten_asinh_default: return unary_float("asinhf", "asinh");
    case OpKey::aten_acosh_default: return unary_float("acoshf", "acosh");
    case OpKey::aten_atanh_default: return unary_float("atanhf", "atanh");
    case OpKey::aten_floor_default:
      if (!fp) return a(0);
      return unary_float("floorf", "floor");
    case OpKey::aten_ceil_default:
      if (!fp) return a(0);
      return unary_float("ceilf", "ceil");
    case OpKey::aten_trunc_default:
      if (!fp) return a(0);
      return unary_float("truncf", "trunc");
    case OpKey::aten_round_default:
      if (!fp) return a(0);
      return unary_float("rintf", "rint");
    case OpKey::aten_reciprocal_default: {
      auto x = a(0);
      if (!x || !fp) break;
      return str_cat("(1.0f / ", *x, ")");
    }
    case OpKey::aten_sigmoid_default: {
      auto x = a(0);
      if (!x || !fp) break;
      return str_cat("(1.0f / (1.0f + expf(-", *x, ")))");
    }
    case OpKey::aten_relu_default: {
      auto x = a(0);
      if (!x) break;
      if (t == "bool") return x;
      return nan_aware(*x, str_cat(*x, " > 0 ? ", *x, " : 0"));
    }
    case OpKey::aten_silu_default: {
      auto x = a(0);
      if (!x || !fp) break;
      return str_cat("(", *x, " / (1.0f + expf(-", *x, ")))");
    }
    case OpKey::aten_gelu_default: {
      auto x = a(0);
      if (!x || !fp) break;
      const std::string* approx =
          node.args.size() > 1 ? std::get_if<std::string>(&node.args[1]) : nullptr;
      if (approx && *approx == "tanh") {
        return str_cat("(0.5f * ", *x, " * (1.0f + tanhf(0.7978845608028654f * (", *x,
                       " + 0.044715f * ", *x, " * ", *x, " * ", *x, "))))");
      }
      return str_cat("(0.5f * ", *x, " * (1.0f + erff(", *x, " * 0.7071067811865476f)))");
    }
    case OpKey::aten_hardswish_default: {
      auto x = a(0);
      if (!x || !fp) break;
      return str_cat("(", *x, " * fminf(fmaxf(", *x, " + 3.0f, 0.0f), 6.0f) / 6.0f)");
    }
    case OpKey::aten_softplus_default: {
      auto x = a(0);
      auto beta = node.args.size() > 1 ? scalar_value(node.args[1]) : std::optional(1.0);
      auto threshold = node.args.size() > 2 ? scalar_value(node.args[2]) : std::optional(20.0);
      if (!x || !fp || !beta || !threshold) break;
      const std::string b = float_literal(*beta, "float");
      return str_cat("(", *x, " * ", b, " > ", float_literal(*threshold, "float"), " ? ", *x,
                     " : log1pf(expf(", *x, " * ", b, ")) / ", b, ")");
    }
    case OpKey::aten_mish_default: {
      auto x = a(0);
      if (!x || !fp) break;
      return str_cat("(", *x, " * tanhf(", *x, " > 20.0f ? ", *x, " : log1pf(expf(", *x,
                     "))))");
    }
    case OpKey::aten_hardsigmoid_default: {
      auto x = a(0);
      if (!x || !fp) break;
      // Eager's std::min / std::max keep a NaN, and it multiplies by a sixth.
      return nan_aware(*x, str_cat("fminf(fmaxf(", *x, " + 3.0f, 0.0f), 6.0f) * ",
                                   float_literal(1.0f / 6.0f, "float")));
    }
    case OpKey::aten_elu_default: expr = elu_expression(node, e, out->dtype); break;
    case OpKey::aten_leaky_relu_default: {
      auto x = a(0), s = a(1);
      if (!need({x, s}) || !fp) break;
      return str_cat("(", *x, " > 0 ? ", *x, " : ", *x, " * ", *s, ")");
    }
    case OpKey::aten_hardtanh_default:
    case OpKey::aten_clamp_default: {
      auto x = a(0);
      if (!x) break;
      std::string body = *x;
      auto lo = node.args.size() > 1 ? literal(node.args[1], t) : std::nullopt;
      auto hi = node.args.size() > 2 ? literal(node.args[2], t) : std::nullopt;
      if (lo) body = str_cat("(", body, " < ", *lo, " ? ", *lo, " : ", body, ")");
      if (hi) body = str_cat("(", body, " > ", *hi, " ? ", *hi, " : ", body, ")");
      return nan_aware(*x, body);
    }
    case OpKey::aten_clamp_Tensor: expr = clamp_tensor_expression(node, e, out->dtype); break;
    case OpKey::aten_clamp_min_default:
    case OpKey::aten_clamp_max_default: {
      auto x = a(0), b = a(1);
      if (!need({x, b})) break;
      const bool is_min = node.op == OpKey::aten_clamp_min_default;
      return nan_aware(*x, str_cat("(", *x, is_min ? " < " : " > ", *b, " ? ", *b, " : ", *x, ")"));
    }
    case OpKey::aten_pow_Tensor_Scalar: {
      auto x = a(0);
      auto exponent = node.args.size() > 1 ? scalar_value(node.args[1]) : std::nullopt;
      if (!x || !exponent) break;
      if (*exponent == 1.0) return x;
      if (*exponent == 2.0) return str_cat("(", *x, " * ", *x, ")");
      if (*exponent == 3.0) return str_cat("(", *x, " * ", *x, " * ", *x, ")");
      if (!fp) {
        *why = "integer pow with an exponent other than 1, 2, 3";
        return std::nullopt;
      }
      if (*exponent == 0.5) return str_cat("sqrtf(", *x, ")");
      if (*exponent == -0.5) return str_cat("rsqrtf(", *x, ")");
      if (*exponent == -1.0) return str_cat("(1.0f / ", *x, ")");
      return str_cat("powf(", *x, ", ", float_literal(*exponent, "float"), ")");
    }
    case OpKey::aten_pow_Tensor_Tensor:
    case OpKey::aten_pow_Scalar: {
      auto x = a(0), y = a(1);
      if (!need({x, y}) || !fp) break;
      return str_cat("powf(", *x, ", ", *y, ")");
    }
    case OpKey::aten_maximum_default:
    case OpKey::aten_minimum_default: {
      auto x = a(0), y = a(1);
      if (!need({x, y})) break;
      const bool is_max = node.op == OpKey::aten_maximum_default;
      const std::string body = str_cat("(", *x, is_max ? " > " : " < ", *y, " ? ", *x, " : ", *y,
                                       ")");
      if (!fp) return body;
      return str_cat("((", *x, ") != (", *x, ") ? (", *x, ") : ((", *y, ") != (", *y, ") ? (", *y,
                     ") : ", body, "))");
    }
    case OpKey::aten_where_self: {
      auto c = e.operand(node, 0, "bool");
      auto x = a(1), y = a(2);
      if (!need({c, x, y})) break;
      return str_cat("(", *c, " ? ", *x, " : ", *y, ")");
    }
    case OpKey::aten_masked_fill_Scalar:
    case OpKey::aten_masked_fill_Tensor: {
      auto x = a(0), m = e.operand(node, 1, "bool"), v = a(2);
      if (!need({x, m, v})) break;
      return str_cat("(", *m, " ? ", *v, " : ", *x, ")");
    }
    case OpKey::aten_eq_Tensor:
    case OpKey::aten_eq_Scalar: return compare("==");
    case OpKey::aten_ne_Tensor:
    case OpKey::aten_ne_Scalar: return compare("!=");
    case OpKey::aten_lt_Tensor:
    case OpKey::aten_lt_Scalar: return compare("<");
    case OpKey::aten_le_Tensor:
    case OpKey::aten_le_Scalar: return compare("<=");
    case OpKey::aten_gt_Tensor:
    case OpKey::aten_gt_Scalar: return compare(">");
    case OpKey::aten_ge_Tensor:
    case OpKey::aten_ge_Scalar: return compare(">=");
    case OpKey::aten_logical_not_default: {
      auto x = e.operand(node, 0, "bool");
      if (!x) break;
      return Emitter::convert(str_cat("(!", *x, ")"), "bool", t);
    }
    case OpKey::aten_logical_and_default:
    case OpKey::aten_logical_or_default:
    case OpKey::aten_logical_xor_default: {
      auto x = e.operand(node, 0, "bool"), y = e.operand(node, 1, "bool");
      if (!need({x, y})) break;
      const char* op = node.op == OpKey::aten_logical_and_default  ? " && "
                       : node.op == OpKey::aten_logical_or_default ? " || "
                                                                   : " != ";
      return Emitter::convert(str_cat("(", *x, op, *y, ")"), "bool", t);
    }
    case OpKey::aten_bitwise_not_default: {
      auto x = a(0);
      if (!x || fp) break;
      return t == "bool" ? str_cat("(!", *x, ")") : str_cat("(~", *x, ")");
    }
    case OpKey::aten_bitwise_and_Tensor:
    case OpKey::aten_bitwise_or_Tensor:
    case OpKey::aten_bitwise_xor_Tensor:
    case OpKey::aten_bitwise_and_Scalar:
    case OpKey::aten_bitwise_or_Scalar:
    case OpKey::aten_bitwise_xor_Scalar: {
      auto x = a(0), y = a(1);
      if (!need({x, y}) || fp) break;
      const bool is_and = node.op == OpKey::aten_bitwise_and_Tensor ||
                          node.op == OpKey::aten_bitwise_and_Scalar;
      const bool is_or = node.op == OpKey::aten_bitwise_or_Tensor ||
                         node.op == OpKey::aten_bitwise_or_Scalar;
      const char* op = is_and ? " & " : is_or ? " | " : " ^ ";
      return str_cat("(", *x, op, *y, ")");
    }
    case OpKey::aten_isnan_default: {
      const ir::Value* in = tensor_arg(node, 0);
      auto x = in ? e.operand(node, 0, opmath(in->dtype)) : std::nullopt;
      if (!x) break;
      return is_floating(in->dtype) ? str_cat("(", *x, " != ", *x, ")") : std::string("false");
    }
    case OpKey::aten_isinf_default: {
      const ir::Value* in = tensor_arg(node, 0);
      auto x = in ? e.operand(node, 0, opmath(in->dtype)) : std::nullopt;
      if (!x) break;
      if (!is_floating(in->dtype)) return std::string("false");
      const std::string_view type = opmath(in->dtype);
      return str_cat("(", math_fn("fabsf", type), "(", *x, ") == ", float_literal(INFINITY, type),
                     ")");
    }
    case OpKey::aten_sign_default: {
      auto x = a(0);
      if (!x) break;
      return str_cat("((", t, ")((", *x, " > 0) - (", *x, " < 0)))");
    }
    case OpKey::aten__native_batch_norm_legit_no_training_default: {
      // (input, weight?, bias?, running_mean, running_var, momentum, eps): per-channel affine;
      // the step views the channel vectors along dim 1.
      auto x = a(0), mean = a(3), var = a(4);
      auto eps = node.args.size() > 6 ? scalar_value(node.args[6]) : std::nullopt;
      if (!need({x, mean, var}) || !eps || !fp) break;
      std::string y = str_cat("((", *x, " - ", *mean, ") * rsqrtf(", *var, " + ",
                              float_literal(*eps, "float"), "))");
      if (tensor_arg(node, 1)) {
        auto w = a(1);
        if (!w) break;
        y = str_cat("(", y, " * ", *w, ")");
      }
      if (tensor_arg(node, 2)) {
        auto b = a(2);
        if (!b) break;
        y = str_cat("(", y, " + ", *b, ")");
      }
      return y;
    }
    case OpKey::aten__to_copy_default:
    case OpKey::aten_clone_default:
    case OpKey::aten_alias_copy_default:
    case OpKey::aten_copy_default: {  // copy(self, src): src in self's dtype, broadcast
      const size_t from = node.op == OpKey::aten_copy_default ? 1 : 0;
      const ir::Value* in = tensor_arg(node, from);
      if (!in) break;
      auto x = e.operand(node, from, opmath(in->dtype));
      if (!x) break;
      if (is_floating(in->dtype) && !fp && t != "bool") {
        return str_cat("((i64)(", *x, "))");  // truncation toward zero, as PyTorch
      }
      // A cast to a 16-bit float rounds, even though the value stays in fp32 registers.
      if ((out->dtype == DType::kFloat16 || out->dtype == DType::kBFloat16) &&
          in->dtype != out->dtype) {
        const std::string_view type = device_type_name(out->dtype);
        return str_cat("to_float(from_float<", type, ">(",
                       Emitter::convert(*x, opmath(in->dtype), "float"), "))");
      }
      return Emitter::convert(*x, opmath(in->dtype), t);
    }
    default:
      *why = "no pointwise code for this op";
      return std::nullopt;
  }
  if (expr) return expr;
  if (why->empty()) *why = "unsupported arguments (dtypes or symbolic scalars)";
  return std::nullopt;
}


}  // namespace kiln::cuda
