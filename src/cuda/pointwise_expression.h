// The expression of one pointwise node in CUDA C++: what the pointwise code generator
// (pointwise_codegen.h) evaluates per element for each node of a fused group.
//
// Math is done in "opmath" types (fp32 for fp16/bf16/fp32, int64 for integers, bool for bool),
// as PyTorch's fused kernels do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/dtype.h"
#include "ir/graph.h"

namespace kiln::cuda {

// The type math is done in for values of `dtype`: "float", "double", "bool" or "i64".
std::string_view opmath(DType dtype);

// Argument i of `node` when it is a tensor value, else null.
const ir::Value* tensor_arg(const ir::Node& node, size_t i);

// Names the values a node's expression reads (a group's inputs and earlier nodes' results).
class Emitter {
 public:
  // Expression of argument i in `type`: a named tensor's variable converted, or a literal;
  // nullopt for an unnamed tensor or an argument with no literal in `type`.
  std::optional<std::string> operand(const ir::Node& node, size_t i, std::string_view type) const;

  // `expr`, an opmath value of type `from`, as type `to`.
  static std::string convert(const std::string& expr, std::string_view from, std::string_view to);

  void name(uint32_t value, std::string variable) { names_[value] = std::move(variable); }

 private:
  std::map<uint32_t, std::string> names_;
};

// The expression for one node's first output in its math type, or nullopt (with `why`).
std::optional<std::string> node_expression(const ir::Node& node, const Emitter& e,
                                           std::string* why);

}  // namespace kiln::cuda
