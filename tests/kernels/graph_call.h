// Test support for the kernel tests whose calls run_op cannot spell (a bool[] argument, a
// symbolic result): one node built from ir::Arguments, run on the CPU reference backend.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "ir/program.h"
#include "ir/schema_defaults.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/executor.h"

namespace kiln::testing {

// Input i of `inputs` as an argument of graph_call.
struct GraphInput {
  int index;
};
using GraphArg = std::variant<GraphInput, ir::Argument>;

// Runs `target` on `inputs` with `args` (positional; the rest take their defaults). Output i is
// declared of `kinds[i]` (a tensor where not given). Returns every output's runtime value: an
// empty one for an output the op did not produce (a gradient output_mask turned off).
inline Result<std::vector<ir::RtValue>> graph_call(const std::string& target,
                                                   const std::vector<Tensor>& inputs,
                                                   const std::vector<GraphArg>& args,
                                                   std::vector<ir::ValueKind> kinds = {}) {
  auto key = ir::find_op(target);
  if (!key) return not_found("no op named ", target);
  const ir::OpSchema& schema = ir::op_schema(*key);
  auto program = std::make_shared<ir::Program>();
  ir::Graph& g = program->graph;
  std::vector<ir::Value*> values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ir::Value* v = g.add_value("input_" + std::to_string(i), ir::ValueKind::kTensor);
    v->dtype = inputs[i].dtype();
    for (int64_t s : inputs[i].sizes()) v->shape.push_back(ir::SymDim{s, nullptr});
    g.add_input(v, ir::InputKind::kUserInput, "");
    values.push_back(v);
  }
  ir::Node* node = g.add_node("op", *key);
  const auto schema_args = schema.args();
  for (size_t i = 0; i < schema_args.size(); ++i) {
    if (i < args.size()) {
      if (const auto* in = std::get_if<GraphInput>(&args[i])) {
        node->args.push_back(ir::Argument(values.at(in->index)));
      } else {
        node->args.push_back(std::get<ir::Argument>(args[i]));
      }
      continue;
    }
    KILN_ASSIGN_OR_RETURN(ir::Argument a, ir::default_argument(schema_args[i]));
    node->args.push_back(std::move(a));
  }
  const size_t outputs = schema.returns().size();
  for (size_t i = 0; i < outputs; ++i) {
    ir::Value* out = g.add_value("out_" + std::to_string(i),
                                 i < kinds.size() ? kinds[i] : ir::ValueKind::kTensor);
    node->outputs.push_back(out);
    g.add_output(out);
  }
  g.link();
  KILN_ASSIGN_OR_RETURN(auto executor, Executor::create(program, cpu::cpu_backend()));
  return executor->run(inputs);
}

}  // namespace kiln::testing
