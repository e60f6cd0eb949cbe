#include "ir/op_context.h"

namespace kiln::ir {
namespace {
const Tensor kEmptyTensor;
const std::string kEmptyString;
}  // namespace

void OpContext::fail(size_t i, std::string_view expected) {
  if (!error_.ok()) return;
  std::string found = i < node_.args.size() ? argument_to_string(node_.args[i]) : "nothing";
  error_ = internal_error("node '", node_.name, "' (", op_name(node_.op), ") argument ", i,
                          ": expected ", expected, ", found ", found);
}

bool OpContext::is_none(size_t i) const {
  return i >= node_.args.size() || std::holds_alternative<NoneArg>(node_.args[i]);
}

const Tensor& OpContext::tensor(size_t i) {
  if (const Tensor* t = optional_tensor(i)) return *t;
  fail(i, "a tensor");
  return kEmptyTensor;
}

const Tensor* OpContext::optional_tensor(size_t i) {
  if (is_none(i)) return nullptr;
  if (auto* v = std::get_if<Value*>(&node_.args[i])) {
    const RtValue& rv = slot(*v);
    if (rv.kind == RtValue::Kind::kTensor) return &rv.tensor;
  }
  fail(i, "a tensor");
  return nullptr;
}

std::vector<const Tensor*> OpContext::tensors(size_t i) {
  std::vector<const Tensor*> result;
  if (i < node_.args.size()) {
    if (auto* vs = std::get_if<std::vector<Value*>>(&node_.args[i])) {
      for (Value* v : *vs) result.push_back(v ? &slot(v).tensor : nullptr);
      return result;
    }
  }
  fail(i, "a list of tensors");
  return result;
}

int64_t OpContext::resolve_int(const SymInt& s) {
  if (!s.value) return s.constant;
  const RtValue& rv = slot(s.value);
  if (rv.kind == RtValue::Kind::kInt) return rv.i;
  if (rv.kind == RtValue::Kind::kBool) return rv.b;
  if (error_.ok()) error_ = internal_error("symbolic int '", s.value->name, "' has no value yet");
  return 0;
}

int64_t OpContext::int_arg(size_t i) {
  if (auto v = optional_int(i)) return *v;
  fail(i, "an int");
  return 0;
}

std::optional<int64_t> OpContext::optional_int(size_t i) {
  if (is_none(i)) return std::nullopt;
  const Argument& arg = node_.args[i];
  if (auto* x = std::get_if<int64_t>(&arg)) return *x;
  if (auto* b = std::get_if<bool>(&arg)) return *b;
  if (auto* v = std::get_if<Value*>(&arg)) return resolve_int(SymInt{0, *v});
  fail(i, "an int");
  return 0;
}

std::vector<int64_t> OpContext::ints(size_t i) {
  if (auto v = optional_ints(i)) return *v;
  fail(i, "a list of ints");
  return {};
}

std::optional<std::vector<int64_t>> OpContext::optional_ints(size_t i) {
  if (is_none(i)) return std::nullopt;
  const Argument& arg = node_.args[i];
  if (auto* list = std::get_if<std::vector<SymInt>>(&arg)) {
    std::vector<int64_t> result;
    result.reserve(list->size());
    for (const SymInt& s : *list) result.push_back(resolve_int(s));
    return result;
  }
  if (auto* x = std::get_if<int64_t>(&arg)) return std::vector<int64_t>{*x};  // `int[1] dim=3`
  fail(i, "a list of ints");
  return std::vector<int64_t>{};
}

double OpContext::float_arg(size_t i) {
  if (auto v = optional_float(i)) return *v;
  fail(i, "a float");
  return 0.0;
}

std::optional<double> OpContext::optional_float(size_t i) {
  if (is_none(i)) return std::nullopt;
  const Argument& arg = node_.args[i];
  if (auto* x = std::get_if<double>(&arg)) return *x;
  if (auto* x = std::get_if<int64_t>(&arg)) return static_cast<double>(*x);
  if (auto* v = std::get_if<Value*>(&arg)) {
    const RtValue& rv = slot(*v);
    if (rv.is_number()) return rv.as_double();
  }
  fail(i, "a float");
  return 0.0;
}

std::optional<std::vector<double>> OpContext::optional_floats(size_t i) {
  if (is_none(i)) return std::nullopt;
  const Argument& arg = node_.args[i];
  if (auto* list = std::get_if<std::vector<double>>(&arg)) return *list;
  if (auto* ints = std::get_if<std::vector<SymInt>>(&arg)) {  // [2, 2] written as ints
    std::vector<double> result;
    for (const SymInt& s : *ints) result.push_back(static_cast<double>(resolve_int(s)));
    return result;
  }
  fail(i, "a list of floats");
  return std::vector<double>{};
}

bool OpContext::bool_arg(size_t i) {
  if (auto v = optional_bool(i)) return *v;
  fail(i, "a bool");
  return false;
}

std::optional<bool> OpContext::optional_bool(size_t i) {
  if (is_none(i)) return std::nullopt;
  const Argument& arg = node_.args[i];
  if (auto* x = std::get_if<bool>(&arg)) return *x;
  if (auto* x = std::get_if<int64_t>(&arg)) return *x != 0;
  if (auto* v = std::get_if<Value*>(&arg)) {
    const RtValue& rv = slot(*v);
    if (rv.kind == RtValue::Kind::kBool) return rv.b;
  }
  fail(i, "a bool");
  return false;
}

Scalar OpContext::scalar(size_t i) {
  if (auto v = optional_scalar(i)) return *v;
  fail(i, "a scalar");
  return Scalar{};
}

std::optional<Scalar> OpContext::optional_scalar(size_t i) {
  if (is_none(i)) return std::nullopt;
  const Argument& arg = node_.args[i];
  Scalar s;
  if (auto* x = std::get_if<int64_t>(&arg)) {
    s.kind = Scalar::Kind::kInt;
    s.i = *x;
  } else if (auto* d = std::get_if<double>(&arg)) {
    s.kind = Scalar::Kind::kFloat;
    s.f = *d;
  } else if (auto* b = std::get_if<bool>(&arg)) {
    s.kind = Scalar::Kind::kBool;
    s.i = *b;
  } else if (auto* v = std::get_if<Value*>(&arg)) {
    const RtValue& rv = slot(*v);
    if (rv.kind == RtValue::Kind::kFloat) {
      s.kind = Scalar::Kind::kFloat;
      s.f = rv.f;
    } else if (rv.kind == RtValue::Kind::kBool) {
      s.kind = Scalar::Kind::kBool;
      s.i = rv.b;
    } else if (rv.kind == RtValue::Kind::kInt) {
      s.i = rv.i;
    } else {
      fail(i, "a scalar");
    }
  } else {
    fail(i, "a scalar");
  }
  return s;
}

std::optional<DType> OpContext::scalar_type(size_t i) {
  if (is_none(i)) return std::nullopt;
  if (auto* d = std::get_if<DType>(&node_.args[i])) return *d;
  fail(i, "a dtype");
  return std::nullopt;
}

std::optional<MemoryFormat> OpContext::memory_format(size_t i) {
  if (is_none(i)) return std::nullopt;
  if (auto* f = std::get_if<MemoryFormat>(&node_.args[i])) return *f;
  fail(i, "a memory format");
  return std::nullopt;
}

const std::string& OpContext::string_arg(size_t i) {
  if (i < node_.args.size()) {
    if (auto* s = std::get_if<std::string>(&node_.args[i])) return *s;
  }
  fail(i, "a string");
  return kEmptyString;
}

RtValue OpContext::any(size_t i) {
  if (i < node_.args.size()) {
    const Argument& arg = node_.args[i];
    if (auto* v = std::get_if<Value*>(&arg)) return slot(*v);
    if (auto* x = std::get_if<int64_t>(&arg)) return RtValue::of_int(*x);
    if (auto* d = std::get_if<double>(&arg)) return RtValue::of_float(*d);
    if (auto* b = std::get_if<bool>(&arg)) return RtValue::of_bool(*b);
  }
  fail(i, "a value");
  return RtValue{};
}

RtValue& OpContext::output(size_t i) {
  if (i < node_.outputs.size() && node_.outputs[i]) return slots_[node_.outputs[i]->id];
  // An output the program never names (none are left unnamed by torch.export, but be safe).
  if (error_.ok() && i >= node_.outputs.size()) {
    error_ = internal_error("node '", node_.name, "' has no output ", i);
  }
  return scratch_;
}

}  // namespace kiln::ir
