// What an op implementation sees of one node while it runs: its arguments resolved to runtime
// values (tensors, and ints that may come from symbolic values), and its outputs.
//
// The same context serves shape inference (tensors are meta: shape and dtype, no data) and kernels
// (tensors have data). Argument types were checked against the op's schema when the program was
// loaded; asking for an argument as the wrong type is a kiln bug, recorded in `error()` (the
// executor turns it into an Internal status) instead of crashing.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "base/tensor.h"
#include "ir/graph.h"

namespace kiln::ir {

// The runtime value of one IR Value: a tensor, or a symbolic int/float/bool made concrete.
struct RtValue {
  enum class Kind : uint8_t { kEmpty, kTensor, kInt, kFloat, kBool };
  Kind kind = Kind::kEmpty;
  Tensor tensor;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;

  static RtValue of(Tensor t) {
    RtValue v;
    v.kind = Kind::kTensor;
    v.tensor = std::move(t);
    return v;
  }
  static RtValue of_int(int64_t x) {
    RtValue v;
    v.kind = Kind::kInt;
    v.i = x;
    return v;
  }
  static RtValue of_float(double x) {
    RtValue v;
    v.kind = Kind::kFloat;
    v.f = x;
    return v;
  }
  static RtValue of_bool(bool x) {
    RtValue v;
    v.kind = Kind::kBool;
    v.b = x;
    return v;
  }
  bool is_number() const {
    return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool;
  }
  double as_double() const {
    return kind == Kind::kFloat ? f : kind == Kind::kInt ? double(i) : double(b);
  }
};

// A resolved Scalar argument, keeping whether the program wrote an int, a float or a bool: type
// promotion with tensors depends on it (int tensor * 2.5 is float, int tensor * 2 stays int).
struct Scalar {
  enum class Kind : uint8_t { kInt, kFloat, kBool };
  Kind kind = Kind::kInt;
  int64_t i = 0;
  double f = 0.0;
  double to_double() const { return kind == Kind::kFloat ? f : static_cast<double>(i); }
  int64_t to_int() const { return kind == Kind::kFloat ? static_cast<int64_t>(f) : i; }
};

class OpContext {
 public:
  // `slots` holds one RtValue per graph value (indexed by Value::id); outputs are written there.
  OpContext(const Node& node, std::span<RtValue> slots) : node_(node), slots_(slots) {}

  const Node& node() const { return node_; }
  size_t num_args() const { return node_.args.size(); }
  bool is_none(size_t i) const;

  const Tensor& tensor(size_t i);
  const Tensor* optional_tensor(size_t i);       // null for None
  std::vector<const Tensor*> tensors(size_t i);  // Tensor[] (null entries for Tensor?[] holes)
  int64_t int_arg(size_t i);                     // int or SymInt
  std::optional<int64_t> optional_int(size_t i);
  std::vector<int64_t> ints(size_t i);  // int[] or SymInt[]
  std::optional<std::vector<int64_t>> optional_ints(size_t i);
  double float_arg(size_t i);
  std::optional<double> optional_float(size_t i);
  std::optional<std::vector<double>> optional_floats(size_t i);  // float[]?
  bool bool_arg(size_t i);
  std::optional<bool> optional_bool(size_t i);
  Scalar scalar(size_t i);
  std::optional<Scalar> optional_scalar(size_t i);
  std::optional<DType> scalar_type(size_t i);  // ScalarType? (None -> nullopt)
  std::optional<MemoryFormat> memory_format(size_t i);
  const std::string& string_arg(size_t i);
  // An `Any` argument of a Python operator (_operator.mul): the runtime value of a sym or a
  // constant.
  RtValue any(size_t i);

  size_t num_outputs() const { return node_.outputs.size(); }
  // Output i's slot. Shape inference sets meta tensors or numbers; the executor then allocates
  // tensor outputs (except for view ops) before the kernel runs and fills them.
  RtValue& output(size_t i);
  Tensor& output_tensor(size_t i) { return output(i).tensor; }
  void set_output(size_t i, Tensor t) { output(i) = RtValue::of(std::move(t)); }

  // The first misuse of the argument accessors, if any.
  const Status& error() const { return error_; }

 private:
  const RtValue& slot(const Value* v) const { return slots_[v->id]; }
  void fail(size_t i, std::string_view expected);
  int64_t resolve_int(const SymInt& s);

  const Node& node_;
  std::span<RtValue> slots_;
  Status error_;
  RtValue scratch_;
};

}  // namespace kiln::ir
