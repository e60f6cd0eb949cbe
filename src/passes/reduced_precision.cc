#include "passes/reduced_precision.h"

#include <algorithm>

#include "ir/schema_defaults.h"
#include "ir/verifier.h"
#include "passes/program_edit.h"

namespace kiln::passes {
namespace {

// A `_to_copy(value, dtype=to)` node producing a new value named after `value`.
Result<ir::Node> cast_node(ir::Graph& graph, ir::Value* value, DType to, ir::Value* out) {
  ir::Node node;
  node.op = ir::OpKey::aten__to_copy_default;
  node.name = out->name;
  const auto schema = ir::op_schema(node.op).args();
  node.args.push_back(value);
  for (size_t i = 1; i < schema.size(); ++i) {
    if (schema[i].name == std::string_view("dtype")) {
      node.args.push_back(to);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(ir::Argument arg, ir::default_argument(schema[i]));
    node.args.push_back(std::move(arg));
  }
  node.outputs = {out};
  out->kind = ir::ValueKind::kTensor;
  out->dtype = to;
  out->shape = value->shape;
  out->has_recorded_meta = true;
  return node;
}

}  // namespace

Result<size_t> run_in_reduced_precision(ir::Program& program, DType reduced,
                                        std::vector<std::string>* log) {
  if (reduced != DType::kFloat16 && reduced != DType::kBFloat16) {
    return invalid_argument("reduced precision must be float16 or bfloat16, found ",
                            dtype_name(reduced));
  }
  ir::Graph& graph = program.graph;
  std::vector<bool> user_input(graph.num_values(), false);
  for (const ir::GraphInput& in : graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) user_input[in.value->id] = true;
  }
  size_t changed = 0;
  for (ir::Value& v : graph.values()) {
    if (v.kind == ir::ValueKind::kTensor && v.dtype == DType::kFloat32 && !user_input[v.id]) {
      ++changed;
    }
  }
  if (changed == 0) return size_t{0};

  // Weights: converted once, here.
  for (auto& [id, tensor] : program.weights) {
    if (tensor.dtype() != DType::kFloat32 || !tensor.has_data()) continue;
    KILN_ASSIGN_OR_RETURN(tensor, tensor.to(reduced));
  }
  std::vector<ir::Value*> float_outputs;  // each once
  for (ir::Value* out : graph.outputs()) {
    if (out->kind == ir::ValueKind::kTensor && out->dtype == DType::kFloat32 &&
        !user_input[out->id] &&
        std::find(float_outputs.begin(), float_outputs.end(), out) == float_outputs.end()) {
      float_outputs.push_back(out);
    }
  }
  for (ir::Value& v : graph.values()) {
    if (v.kind == ir::ValueKind::kTensor && v.dtype == DType::kFloat32 && !user_input[v.id]) {
      v.dtype = reduced;
    }
  }
  // dtype arguments (to_copy, full, arange, sum's dtype) follow.
  for (ir::Node& node : graph.nodes()) {
    for (ir::Argument& arg : node.args) {
      if (DType* d = std::get_if<DType>(&arg); d && *d == DType::kFloat32) *d = reduced;
    }
  }
  // Float32 user inputs: cast on entry (new nodes at the front, in input order).
  std::vector<ir::Node> entry;
  for (const ir::GraphInput& in : graph.inputs()) {
    ir::Value* v = in.value;
    if (in.kind != ir::InputKind::kUserInput || v->kind != ir::ValueKind::kTensor ||
        v->dtype != DType::kFloat32 || v->users.empty()) {
      continue;
    }
    ir::Value* cast = graph.add_value(unique_value_name(graph, v->name + "_reduced"),
                                      ir::ValueKind::kTensor);
    const std::vector<ir::Node*> users = v->users;
    for (ir::Node* user : users) {
      for (ir::Argument& arg : user->args) {
        if (ir::Value** p = std::get_if<ir::Value*>(&arg); p && *p == v) *p = cast;
        if (auto* list = std::get_if<std::vector<ir::Value*>>(&arg)) {
          for (ir::Value*& item : *list) {
            if (item == v) item = cast;
          }
        }
      }
    }
    KILN_ASSIGN_OR_RETURN(ir::Node node, cast_node(graph, v, reduced, cast));
    entry.push_back(std::move(node));
    log_change(log, "cast input ", v->name, " to ", dtype_name(reduced));
  }
  for (auto it = entry.rbegin(); it != entry.rend(); ++it) graph.nodes().push_front(*it);
  // Float32 outputs: cast back on exit.
  for (ir::Value* out : float_outputs) {
    ir::Value* cast = graph.add_value(unique_value_name(graph, out->name + "_float32"),
                                      ir::ValueKind::kTensor);
    KILN_ASSIGN_OR_RETURN(ir::Node node, cast_node(graph, out, DType::kFloat32, cast));
    graph.nodes().push_back(std::move(node));
    log_change(log, "cast output ", out->name, " back to float32");
  }
  // Graph outputs read the float32 casts (an output listed twice gets the same cast).
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    for (size_t k = 0; k < float_outputs.size(); ++k) {
      if (graph.outputs()[i] == float_outputs[k]) {
        graph.set_output(i, graph.nodes()[graph.nodes().size() - float_outputs.size() + k].outputs[0]);
        break;
      }
    }
  }
  uint32_t id = 0;
  for (ir::Node& node : graph.nodes()) node.id = id++;
  graph.link();
  KILN_RETURN_IF_ERROR(ir::verify(graph), "after converting to ", dtype_name(reduced));
  log_change(log, "ran ", changed, " float32 values in ", dtype_name(reduced));
  return changed;
}

}  // namespace kiln::passes
