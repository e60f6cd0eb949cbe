#include "runtime/executor.h"

#include <map>

#include "ir/shape_inference.h"
#include "runtime/input_binding.h"

namespace kiln {

std::vector<std::string> unsupported_ops(const ir::Graph& graph, const Backend& backend) {
  std::map<std::string_view, std::vector<std::string_view>> missing;
  for (const ir::Node& node : graph.nodes()) {
    if (!backend.supports(node)) missing[ir::op_name(node.op)].push_back(node.name);
  }
  std::vector<std::string> lines;
  for (const auto& [op, nodes] : missing) {
    std::string names;
    for (size_t i = 0; i < nodes.size() && i < 5; ++i) names += str_cat(i ? ", " : "", nodes[i]);
    if (nodes.size() > 5) names += ", ...";
    lines.push_back(
        str_cat(op, " (", nodes.size(), nodes.size() == 1 ? " node: " : " nodes: ", names, ")"));
  }
  return lines;
}

Result<std::unique_ptr<Executor>> Executor::create(std::shared_ptr<const ir::Program> program,
                                                   const Backend& backend) {
  KILN_RETURN_IF_ERROR(ir::shape_inference_status());
  auto missing = unsupported_ops(program->graph, backend);
  if (!missing.empty()) {
    std::string list;
    for (const auto& line : missing) list += "\n  " + line;
    return unsupported("the ", backend.name(), " backend cannot run ", missing.size(),
                       missing.size() == 1 ? " op" : " ops", " of this program:", list);
  }
  return std::unique_ptr<Executor>(new Executor(std::move(program), backend));
}

Executor::Executor(std::shared_ptr<const ir::Program> program, const Backend& backend)
    : program_(std::move(program)), backend_(backend) {
  const ir::Graph& graph = program_->graph;
  release_after_.resize(graph.nodes().size());
  std::vector<bool> keep(graph.num_values(), false);
  for (const ir::Value* out : graph.outputs()) keep[out->id] = true;
  for (const ir::GraphInput& in : graph.inputs()) keep[in.value->id] = true;
  for (const ir::Value& v : graph.values()) {
    if (keep[v.id]) continue;
    // Release after the last reader, or right after the producer when nothing reads it.
    const ir::Node* last = v.users.empty() ? v.producer : v.users.back();
    if (last) release_after_[last->id].push_back(v.id);
  }
}

Status Executor::run_node(const ir::Node& node, std::span<ir::RtValue> slots) const {
  ir::OpContext ctx(node, slots);
  ir::OpFn infer = ir::shape_inference_table().find(node.op);
  KILN_RETURN_IF_ERROR(infer(ctx));
  KILN_RETURN_IF_ERROR(ctx.error());
  const bool is_view = node.schema().has_tag(ir::kTagView);
  bool has_tensor_output = false;
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    ir::RtValue& out = ctx.output(i);
    if (out.kind != ir::RtValue::Kind::kTensor) continue;
    has_tensor_output = true;
    if (!is_view) {
      KILN_ASSIGN_OR_RETURN(out.tensor, Tensor::empty(out.tensor.dtype(), out.tensor.sizes()));
    }
  }
  if (has_tensor_output) {
    KILN_RETURN_IF_ERROR(backend_.execute(ctx));
    KILN_RETURN_IF_ERROR(ctx.error());
  }
  return ok_status();
}

Result<std::vector<ir::RtValue>> Executor::run(std::span<const Tensor> inputs) const {
  const ir::Graph& graph = program_->graph;
  KILN_ASSIGN_OR_RETURN(ir::SymBindings bindings, bind_inputs(graph, inputs));
  (void)bindings;  // symbols are read back through sym_size nodes; binding validates the shapes
  std::vector<ir::RtValue> slots(graph.num_values());
  size_t next_user = 0;
  for (const ir::GraphInput& in : graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) {
      slots[in.value->id] = ir::RtValue::of(inputs[next_user++]);
    } else {
      auto it = program_->weights.find(in.value->id);
      if (it == program_->weights.end()) {
        return internal_error("no tensor loaded for '", in.target, "'");
      }
      slots[in.value->id] = ir::RtValue::of(it->second);
    }
  }
  for (const ir::Node& node : graph.nodes()) {
    KILN_RETURN_IF_ERROR(run_node(node, slots), "while running node '", node.name, "' (",
                         ir::op_name(node.op), ")");
    for (uint32_t id : release_after_[node.id]) slots[id] = ir::RtValue{};
  }
  std::vector<ir::RtValue> outputs;
  outputs.reserve(graph.outputs().size());
  for (const ir::Value* out : graph.outputs()) outputs.push_back(slots[out->id]);
  return outputs;
}

}  // namespace kiln
