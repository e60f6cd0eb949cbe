// Test support: build a one-node program by hand and run it on the CPU reference backend, so each
// kernel can be tested in C++ without an exported archive.
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "base/tensor.h"
#include "ir/graph.h"

namespace kiln::testing {

struct TensorArg {
  int index;  // into the `inputs` passed to run_op
};
struct OptionalTensorList {
  std::vector<int> indices;  // -1 for a None hole
};
using TestArg = std::variant<ir::NoneArg, TensorArg, std::vector<TensorArg>, OptionalTensorList,
                             int64_t, double, bool, std::vector<int64_t>, DType, std::string>;

struct OpCall {
  std::string target;                     // "aten.add.Tensor"
  std::vector<Tensor> inputs;             // tensors the arguments refer to
  std::vector<TestArg> args;              // positional; the rest take their defaults
  std::map<std::string, TestArg> kwargs;  // by schema name
  int num_outputs = -1;  // for Tensor[] returns (split): how many; else from schema
};

// Builds the program, runs shape inference and the CPU kernel, returns the tensor outputs.
Result<std::vector<Tensor>> run_op(const OpCall& call);

Tensor make_tensor(DType dtype, Shape sizes, const std::vector<double>& values);
Tensor arange_tensor(DType dtype, Shape sizes, double start = 0.0, double step = 1.0);
// In logical (row-major) order, any strides; none for a tensor without data (the empty Tensor a
// failed run gives back), so that a comparison fails on the size instead of aborting.
std::vector<double> to_doubles(const Tensor& t);

}  // namespace kiln::testing
