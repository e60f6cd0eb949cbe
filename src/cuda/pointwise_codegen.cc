#include "cuda/pointwise_codegen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "base/hash.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

// The type math is done in for values of `dtype`.
std::string_view opmath(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16:
      return "float";
    case DType::kFloat64:
      return "double";
    case DType::kBool:
      return "bool";
    default:
      return "i64";
  }
}

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

bool is_scalar_arg(const ir::Argument& arg) {
  return std::holds_alternative<int64_t>(arg) || std::holds_alternative<double>(arg) ||
         std::holds_alternative<bool>(arg);
}
bool is_float_scalar(const ir::Argument& arg) { return std::holds_alternative<double>(arg); }
const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}
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

class Emitter {
 public:
  // Expression of argument i in `type`: a tensor's variable converted, or a literal.
  std::optional<std::string> operand(const ir::Node& node, size_t i, std::string_view type) const {
    if (i >= node.args.size()) return std::nullopt;
    if (const ir::Value* v = tensor_arg(node, i)) {
      auto it = names_.find(v->id);
      if (it == names_.end()) return std::nullopt;
      return convert(it->second, opmath(v->dtype), type);
    }
    return literal(node.args[i], type);
  }

  static std::string convert(const std::string& expr, std::string_view from, std::string_view to) {
    if (from == to) return expr;
    if (to == "bool") return str_cat("(", expr, " != 0)");
    return str_cat("((", to, ")(", expr, "))");
  }

  void name(uint32_t value, std::string variable) { names_[value] = std::move(variable); }

 private:
  std::map<uint32_t, std::string> names_;
};

// The expression for one node's first output in its math type, or nullopt (with `why`).
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
    case OpKey::aten_div_Tensor_mode: {
      const std::string* mode = node.args.size() > 2 ? std::get_if<std::string>(&node.args[2])
                                                     : nullptr;
      auto x = a(0), y = a(1);
      if (!need({x, y})) break;
      if (!mode) return fp ? std::optional(str_cat("(", *x, " / ", *y, ")")) : std::nullopt;
      if (fp) {
        return str_cat(*mode == "floor" ? "floorf" : "truncf", "(", *x, " / ", *y, ")");
      }
      if (*mode == "trunc") return str_cat("(", *y, " == 0 ? (i64)0 : ", *x, " / ", *y, ")");
      *why = "integer floor division";
      return std::nullopt;
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
      return str_cat("(fminf(fmaxf(", *x, " + 3.0f, 0.0f), 6.0f) / 6.0f)");
    }
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
    case OpKey::aten_alias_copy_default: {
      const ir::Value* in = tensor_arg(node, 0);
      if (!in) break;
      auto x = e.operand(node, 0, opmath(in->dtype));
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
  if (why->empty()) *why = "unsupported arguments (dtypes or symbolic scalars)";
  return std::nullopt;
}

// Wraps an opmath value into what a value of `dtype` holds (integers wrap, bools normalize).
std::string round_trip(const std::string& expr, DType dtype) {
  switch (dtype) {
    case DType::kInt32: return str_cat("((i64)(int)(", expr, "))");
    case DType::kInt16: return str_cat("((i64)(short)(", expr, "))");
    case DType::kInt8: return str_cat("((i64)(signed char)(", expr, "))");
    case DType::kUInt8: return str_cat("((i64)(unsigned char)(", expr, "))");
    default: return expr;
  }
}

// The opmath value of `element`, an element of `dtype` as stored.
std::string loaded(const std::string& element, DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: return str_cat("to_float(", element, ")");
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kBool: return element;
    default: return str_cat("((i64)", element, ")");
  }
}

// The opmath `value` as an element of `dtype`.
std::string stored(const std::string& value, DType dtype) {
  const std::string type(device_type_name(dtype));
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: return str_cat("from_float<", type, ">(", value, ")");
    default: return str_cat("(", type, ")(", value, ")");
  }
}

std::string element_ref(std::string_view pointer, std::string_view offset, DType dtype) {
  return str_cat("ktensor_ptr<", device_type_name(dtype), ">(", pointer, ")[", offset, "]");
}

std::string indented(const std::string& lines, std::string_view by) {
  std::string out;
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string::npos) end = lines.size() - 1;
    out += str_cat(by, std::string_view(lines).substr(start, end - start + 1));
    start = end + 1;
  }
  return out;
}

// Packets: a thread's run of consecutive elements, moved with one access per operand when the
// packet is whole and every operand's part of it is aligned to its size (at most 16 bytes), else
// element by element (lanes past the packet's end repeat its first element and are not stored).
// Used by every group's _vec and _rows kernels.
constexpr std::string_view kPacketKey = "kiln_pw_packet";
constexpr std::string_view kPacketCode = R"(template <int Bytes> struct kiln_pw_raw;
template <> struct kiln_pw_raw<1> { typedef unsigned char type; };
template <> struct kiln_pw_raw<2> { typedef unsigned short type; };
template <> struct kiln_pw_raw<4> { typedef unsigned int type; };
template <> struct kiln_pw_raw<8> { typedef uint2 type; };
template <> struct kiln_pw_raw<16> { typedef uint4 type; };
template <typename T, int N> union kiln_pw_packet {
  typename kiln_pw_raw<sizeof(T) * N>::type raw;
  T v[N];
};
template <typename T, int N> __device__ __forceinline__ bool kiln_pw_aligned(const T* p) {
  return ((u64)p & (sizeof(T) * N - 1)) == 0;
}
// The packet at p: every lane p[0] when `broadcast`, one access when `whole`, else p[0, n).
template <typename T, int N>
__device__ __forceinline__ kiln_pw_packet<T, N> kiln_pw_load(const T* p, bool broadcast,
                                                             bool whole, int n) {
  kiln_pw_packet<T, N> r;
  if (broadcast) {
    const T e = p[0];
#pragma unroll
    for (int j = 0; j < N; ++j) r.v[j] = e;
  } else if (whole) {
    r.raw = *reinterpret_cast<const typename kiln_pw_raw<sizeof(T) * N>::type*>(p);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) r.v[j] = p[j < n ? j : 0];
  }
  return r;
}
template <typename T, int N>
__device__ __forceinline__ void kiln_pw_store(T* p, const kiln_pw_packet<T, N>& r, bool whole,
                                              int n) {
  if (whole) {
    *reinterpret_cast<typename kiln_pw_raw<sizeof(T) * N>::type*>(p) = r.raw;
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      if (j < n) p[j] = r.v[j];
    }
  }
}
)";

// What every kernel of a group shares: its parameters, its operands' dtypes and the
// computation of one element (statements over x<k>, the inputs' opmath values, defining the
// variables the outputs store).
struct GroupCode {
  std::string params;
  std::vector<DType> inputs, outputs;
  std::vector<std::string> stored;  // the variable output k stores
  std::string compute;
};

Result<GroupCode> group_code(const PointwiseGroup& group) {
  GroupCode code;
  Emitter e;
  auto add_param = [&](const std::string& p) {
    code.params += str_cat(code.params.empty() ? "" : ", ", p);
  };
  for (size_t k = 0; k < group.inputs.size(); ++k) {
    add_param(str_cat("KTensor in", k));
    code.inputs.push_back(group.inputs[k]->dtype);
    e.name(group.inputs[k]->id, str_cat("x", k));
  }
  for (const ir::Node* node : group.nodes) {
    std::string why;
    auto expr = node_expression(*node, e, &why);
    if (!expr) {
      return unsupported("no CUDA pointwise code for node '", node->name, "' (",
                         ir::op_name(node->op), "): ", why);
    }
    const ir::Value* out = node->outputs[0];
    const std::string var = str_cat("v", out->id);
    code.compute += str_cat("const ", opmath(out->dtype), " ", var, " = ",
                            round_trip(*expr, out->dtype), ";\n");
    e.name(out->id, var);
  }
  for (size_t k = 0; k < group.outputs.size(); ++k) {
    add_param(str_cat("KTensor out", k));
    code.outputs.push_back(group.outputs[k]->dtype);
    code.stored.push_back(str_cat("v", group.outputs[k]->id));
  }
  add_param("i64 numel");
  return code;
}

// Loads x<k> from in<k>[offset(k)], computes, stores out<k>[offset(k)]: one element.
template <typename InOffset, typename OutOffset>
std::string element_body(const GroupCode& code, InOffset in_offset, OutOffset out_offset) {
  std::string body;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    body += str_cat(
        "const ", opmath(code.inputs[k]), " x", k, " = ",
        loaded(element_ref(str_cat("in", k), in_offset(k), code.inputs[k]), code.inputs[k]), ";\n");
  }
  body += code.compute;
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    body += str_cat(element_ref(str_cat("out", k), out_offset(k), code.outputs[k]), " = ",
                    stored(code.stored[k], code.outputs[k]), ";\n");
  }
  return body;
}

// One packet of `packet` elements: at entry, input k's packet starts at element a<k> of in<k>
// (b<k>: one element broadcast over the packet), output k's at o<k>; the packet holds n
// elements, and `whole` says every operand may be moved with one access. Each element is
// computed by the same statements as in the scalar kernels.
std::string packet_body(const GroupCode& code, int packet) {
  std::string body, lanes;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    const std::string_view type = device_type_name(code.inputs[k]);
    const std::string pk = str_cat("kiln_pw_packet<", type, ", ", packet, ">");
    body += str_cat("const ", pk, " p", k, " = kiln_pw_load<", type, ", ", packet, ">(ktensor_ptr<",
                    type, ">(in", k, ") + a", k, ", b", k, ", whole, n);\n");
    lanes += str_cat("const ", opmath(code.inputs[k]), " x", k, " = ",
                     loaded(str_cat("p", k, ".v[j]"), code.inputs[k]), ";\n");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    body += str_cat("kiln_pw_packet<", device_type_name(code.outputs[k]), ", ", packet, "> q", k,
                    ";\n");
  }
  lanes += code.compute;
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    lanes += str_cat("q", k, ".v[j] = ", stored(code.stored[k], code.outputs[k]), ";\n");
  }
  body += str_cat("#pragma unroll\nfor (int j = 0; j < ", packet, "; ++j) {\n",
                  indented(lanes, "  "), "}\n");
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    const std::string_view type = device_type_name(code.outputs[k]);
    body += str_cat("kiln_pw_store<", type, ", ", packet, ">(ktensor_ptr<", type, ">(out", k,
                    ") + o", k, ", q", k, ", whole, n);\n");
  }
  return body;
}

// Whether operand `tensor` of `dtype`, offset by `offset` elements, is aligned to its packet.
std::string aligned_expr(const std::string& tensor, DType dtype, int packet,
                         std::string_view offset) {
  const std::string_view type = device_type_name(dtype);
  return str_cat("kiln_pw_aligned<", type, ", ", packet, ">(ktensor_ptr<", type, ">(", tensor, ")",
                 offset.empty() ? "" : " + ", offset, ")");
}

std::string kernel_head(const std::string& name, std::string_view suffix, const GroupCode& code) {
  return str_cat("extern \"C\" __global__ void __launch_bounds__(256) ", name, suffix, "(",
                 code.params, ") {\n");
}

constexpr std::string_view kElementLoop =
    "  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < numel;\n"
    "       i += (i64)gridDim.x * blockDim.x) {\n";

std::string flat_kernel(const std::string& name, const GroupCode& code) {
  const std::string body = element_body(
      code, [](size_t k) { return str_cat("(in", k, ".rank == 0 ? 0 : i)"); },
      [](size_t) { return std::string("i"); });
  return str_cat(kernel_head(name, "_flat", code), kElementLoop, indented(body, "    "),
                 "  }\n}\n");
}

// Each element walks every dim of the output's multi-index.
std::string nd_kernel(const std::string& name, const GroupCode& code, int rank) {
  std::string walk = "i64 rem = i;\n";
  for (size_t k = 0; k < code.inputs.size(); ++k) walk += str_cat("i64 a", k, " = 0;\n");
  for (size_t k = 0; k < code.outputs.size(); ++k) walk += str_cat("i64 o", k, " = 0;\n");
  walk += str_cat("#pragma unroll\nfor (int d = ", rank - 1, "; d >= 0; --d) {\n",
                  "  const i64 idx = rem % out0.sizes[d];\n", "  rem /= out0.sizes[d];\n");
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    walk += str_cat("  a", k, " += idx * in", k, ".strides[d];\n");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    walk += str_cat("  o", k, " += idx * out", k, ".strides[d];\n");
  }
  walk += "}\n";
  const std::string body = element_body(
      code, [](size_t k) { return str_cat("a", k); }, [](size_t k) { return str_cat("o", k); });
  return str_cat(kernel_head(name, "_nd", code), kElementLoop, indented(walk + body, "    "),
                 "  }\n}\n");
}

// The flat walk in packets: whole packets are one access per operand when every base pointer is
// aligned (then every packet is), the last packet may be partial.
std::string vec_kernel(const std::string& name, const GroupCode& code, int packet) {
  std::string head, aligned, offsets;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    head += str_cat("const bool b", k, " = in", k, ".rank == 0;\n");
    aligned += str_cat(aligned.empty() ? "" : " &&\n    ", "(b", k, " || ",
                       aligned_expr(str_cat("in", k), code.inputs[k], packet, ""), ")");
    offsets += str_cat("const i64 a", k, " = b", k, " ? 0 : i;\n");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    aligned += str_cat(aligned.empty() ? "" : " &&\n    ",
                       aligned_expr(str_cat("out", k), code.outputs[k], packet, ""));
    offsets += str_cat("const i64 o", k, " = i;\n");
  }
  head += str_cat("const bool aligned = ", aligned, ";\n");
  head += str_cat("const i64 packets = (numel + ", packet - 1, ") / ", packet, ";\n");
  const std::string loop =
      str_cat("for (i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x; p < packets;\n",
              "     p += (i64)gridDim.x * blockDim.x) {\n");
  const std::string per_packet = str_cat(
      "const i64 i = p * ", packet, ";\n", "const int n = numel - i < ", packet,
      " ? (int)(numel - i) : ", packet, ";\n", "const bool whole = aligned && n == ", packet, ";\n",
      offsets, packet_body(code, packet));
  return str_cat(kernel_head(name, "_vec", code), indented(head + loop, "  "),
                 indented(per_packet, "    "), "  }\n}\n");
}

// Rows of the last dim in packets, for operands of rank `rank` (walks of fewer dims padded in
// front with size-1 dims): the outer dims are walked once per packet, in 32 bits (numel < 2^31),
// skipping size-1 dims; the last dim is contiguous for every output and contiguous or broadcast
// for every input. Packets are aligned or not row by row, so `whole` is decided per packet.
// Every dim index is a constant: the KTensors stay in parameter space.
std::string rows_kernel(const std::string& name, const GroupCode& code, int packet, int rank) {
  const int last = rank - 1;
  std::string head = str_cat("const unsigned cols = (unsigned)out0.sizes[", last, "];\n",
                             "const unsigned per_row = (cols + ", packet - 1, ") / ", packet, ";\n",
                             "const unsigned packets = (unsigned)(numel / cols) * per_row;\n");
  std::string offsets, walk, outermost, whole;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    head += str_cat("const bool b", k, " = in", k, ".strides[", last, "] == 0;\n");
    offsets += str_cat("i64 a", k, " = b", k, " ? 0 : c;\n");
    walk += str_cat("    a", k, " += idx * in", k, ".strides[d];\n");
    outermost += str_cat("a", k, " += row * in", k, ".strides[0];\n");
    whole += str_cat(" &&\n    (b", k, " || ",
                     aligned_expr(str_cat("in", k), code.inputs[k], packet, str_cat("a", k)), ")");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    offsets += str_cat("i64 o", k, " = c;\n");
    walk += str_cat("    o", k, " += idx * out", k, ".strides[d];\n");
    outermost += str_cat("o", k, " += row * out", k, ".strides[0];\n");
    whole += str_cat(" &&\n    ",
                     aligned_expr(str_cat("out", k), code.outputs[k], packet, str_cat("o", k)));
  }
  const std::string loop =
      "for (unsigned p = blockIdx.x * blockDim.x + threadIdx.x; p < packets;\n"
      "     p += gridDim.x * blockDim.x) {\n";
  std::string per_packet = str_cat(
      "unsigned row = p / per_row;\n", "const unsigned c = (p - row * per_row) * ", packet, ";\n",
      "const int n = cols - c < ", packet, " ? (int)(cols - c) : ", packet, ";\n", offsets);
  if (rank > 1) {
    per_packet += str_cat("#pragma unroll\nfor (int d = ", rank - 2, "; d > 0; --d) {\n",
                          "  const unsigned size = (unsigned)out0.sizes[d];\n",
                          "  if (size != 1) {\n", "    const unsigned idx = row % size;\n",
                          "    row /= size;\n", walk, "  }\n}\n", outermost);
  }
  per_packet +=
      str_cat("const bool whole = n == ", packet, whole, ";\n", packet_body(code, packet));
  return str_cat(kernel_head(name, "_rows", code), indented(head + loop, "  "),
                 indented(per_packet, "    "), "  }\n}\n");
}

}  // namespace

bool is_channel_operand(const ir::Node& node, const ir::Value* value) {
  if (node.op != OpKey::aten__native_batch_norm_legit_no_training_default) return false;
  for (size_t i = 1; i <= 4; ++i) {
    if (tensor_arg(node, i) == value) return true;
  }
  return false;
}

std::string pointwise_unsupported_reason(const ir::Node& node) {
  Emitter e;
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor) e.name(v->id, "x");
  }
  for (const ir::Argument& arg : node.args) {
    if (std::holds_alternative<std::vector<ir::SymInt>>(arg)) continue;
    if (const ir::Value* const* v = std::get_if<ir::Value*>(&arg)) {
      if (*v && (*v)->kind != ir::ValueKind::kTensor) return "a symbolic scalar argument";
    }
  }
  if (node.op == OpKey::aten__native_batch_norm_legit_no_training_default) {
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (node.outputs[i] && !node.outputs[i]->users.empty()) {
        return "uses the batch statistics outputs";
      }
    }
  }
  for (const ir::Value* v : node.outputs) {
    if (v && v->kind == ir::ValueKind::kTensor && v->dtype == DType::kFloat64) {
      return "float64 (the CUDA backend runs float32, float16 and bfloat16)";
    }
  }
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor && v->dtype == DType::kFloat64) {
      return "float64 (the CUDA backend runs float32, float16 and bfloat16)";
    }
  }
  std::string why;
  if (node_expression(node, e, &why)) return "";
  return why.empty() ? std::string("unsupported") : why;
}

int pointwise_packet(const PointwiseGroup& group) {
  size_t widest = 1;
  for (const ir::Value* v : group.inputs) widest = std::max(widest, dtype_size(v->dtype));
  for (const ir::Value* v : group.outputs) widest = std::max(widest, dtype_size(v->dtype));
  return static_cast<int>(16 / widest);
}

Result<std::string> pointwise_kernel(ModuleSource& module, const PointwiseGroup& group, int rank) {
  if (rank > kMaxKernelDims) return unsupported("pointwise kernel of rank ", rank);
  KILN_ASSIGN_OR_RETURN(GroupCode code, group_code(group));
  const int packet = pointwise_packet(group);
  // The flat kernel spells out every dtype and the computation; with the rank and the packet
  // (both fixed by them) that is everything the kernels are made from.
  const std::string flat = flat_kernel("", code);
  const std::string key = str_cat(flat, "|", rank, "|", packet);
  const std::string name = str_cat("kiln_pw_", xxhash64(key.data(), key.size()));
  module.add_once(std::string(kPacketKey), std::string(kPacketCode));
  // A rank-0 output is one element: the flat kernels take it, and there are no rows.
  module.add_once(name, str_cat(flat_kernel(name, code), vec_kernel(name, code, packet),
                                rank > 0 ? rows_kernel(name, code, packet, rank) : "",
                                nd_kernel(name, code, rank)));
  return name;
}

}  // namespace kiln::cuda
