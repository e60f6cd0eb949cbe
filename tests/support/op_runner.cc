#include "support/op_runner.h"

#include "base/element_cast.h"
#include "ir/program.h"
#include "ir/schema_defaults.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/executor.h"

namespace kiln::testing {
namespace {

struct ArgConverter {
  std::vector<ir::Value*>& inputs;
  Result<ir::Argument> operator()(const ir::NoneArg&) { return ir::Argument(ir::NoneArg{}); }
  Result<ir::Argument> operator()(const TensorArg& t) { return ir::Argument(at(t.index)); }
  Result<ir::Argument> operator()(const std::vector<TensorArg>& ts) {
    std::vector<ir::Value*> values;
    for (const TensorArg& t : ts) values.push_back(at(t.index));
    return ir::Argument(values);
  }
  Result<ir::Argument> operator()(const OptionalTensorList& ts) {
    std::vector<ir::Value*> values;
    for (int i : ts.indices) values.push_back(i < 0 ? nullptr : at(i));
    return ir::Argument(values);
  }
  Result<ir::Argument> operator()(int64_t v) { return ir::Argument(v); }
  Result<ir::Argument> operator()(double v) { return ir::Argument(v); }
  Result<ir::Argument> operator()(bool v) { return ir::Argument(v); }
  Result<ir::Argument> operator()(const std::vector<int64_t>& vs) {
    std::vector<ir::SymInt> ints;
    for (int64_t v : vs) ints.push_back(ir::SymInt{v, nullptr});
    return ir::Argument(ints);
  }
  Result<ir::Argument> operator()(DType d) { return ir::Argument(d); }
  Result<ir::Argument> operator()(const std::string& s) { return ir::Argument(s); }
  ir::Value* at(int i) {
    return i >= 0 && i < static_cast<int>(inputs.size()) ? inputs[i] : nullptr;
  }
};

}  // namespace

Result<std::vector<Tensor>> run_op(const OpCall& call) {
  auto key = ir::find_op(call.target);
  if (!key) return not_found("no op named ", call.target);
  const ir::OpSchema& schema = ir::op_schema(*key);
  auto program = std::make_shared<ir::Program>();
  ir::Graph& g = program->graph;
  std::vector<ir::Value*> inputs;
  for (size_t i = 0; i < call.inputs.size(); ++i) {
    ir::Value* v = g.add_value(str_cat("input_", i), ir::ValueKind::kTensor);
    v->dtype = call.inputs[i].dtype();
    for (int64_t s : call.inputs[i].sizes()) v->shape.push_back(ir::SymDim{s, nullptr});
    g.add_input(v, ir::InputKind::kUserInput, "");
    inputs.push_back(v);
  }
  ir::Node* node = g.add_node("op", *key);
  const auto args = schema.args();
  for (size_t i = 0; i < args.size(); ++i) {
    const TestArg* given = i < call.args.size() ? &call.args[i] : nullptr;
    if (auto it = call.kwargs.find(args[i].name); it != call.kwargs.end()) given = &it->second;
    if (given) {
      KILN_ASSIGN_OR_RETURN(ir::Argument a, std::visit(ArgConverter{inputs}, *given));
      node->args.push_back(std::move(a));
    } else {
      KILN_ASSIGN_OR_RETURN(ir::Argument a, ir::default_argument(args[i]));
      node->args.push_back(std::move(a));
    }
  }
  size_t num_outputs =
      call.num_outputs >= 0 ? static_cast<size_t>(call.num_outputs) : schema.returns().size();
  for (size_t i = 0; i < num_outputs; ++i) {
    ir::Value* out = g.add_value(str_cat("out_", i), ir::ValueKind::kTensor);
    node->outputs.push_back(out);
    g.add_output(out);
  }
  g.link();
  KILN_ASSIGN_OR_RETURN(auto executor, Executor::create(program, cpu::cpu_backend()));
  // The hand-built graph records no output shapes; inputs are checked against their own shapes.
  KILN_ASSIGN_OR_RETURN(auto values, executor->run(call.inputs));
  std::vector<Tensor> result;
  for (auto& v : values) result.push_back(std::move(v.tensor));
  return result;
}

Tensor make_tensor(DType dtype, Shape sizes, const std::vector<double>& values) {
  Tensor t = Tensor::empty(dtype, std::move(sizes)).value();
  dispatch_dtype(dtype, [&]<typename T>() {
    T* data = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      data[i] =
          element_cast<T>(values[static_cast<size_t>(i) % std::max<size_t>(values.size(), 1)]);
    }
  });
  return t;
}

Tensor arange_tensor(DType dtype, Shape sizes, double start, double step) {
  std::vector<double> values(static_cast<size_t>(shape_numel(sizes)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = start + step * static_cast<double>(i);
  return make_tensor(dtype, std::move(sizes), values);
}

std::vector<double> to_doubles(const Tensor& t) {
  if (!t.has_data()) return {};
  Tensor c = t.to(DType::kFloat64).value();
  const double* data = c.data<double>();
  return std::vector<double>(data, data + c.numel());
}

}  // namespace kiln::testing
