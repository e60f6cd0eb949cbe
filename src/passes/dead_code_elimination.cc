#include "passes/dead_code_elimination.h"

#include "passes/program_edit.h"

namespace kiln::passes {

bool has_side_effects(ir::OpKey op) {
  using ir::OpKey;
  switch (op) {
    case OpKey::aten__assert_async_default:
    case OpKey::aten__assert_async_msg:
    case OpKey::aten__assert_scalar_default:
    case OpKey::aten__functional_assert_scalar_default:
    case OpKey::aten__functional_assert_async_msg:
    case OpKey::aten__assert_tensor_metadata_default:
    case OpKey::aten__print_default:
    case OpKey::aten_sym_constrain_range_default:
    case OpKey::aten_sym_constrain_range_for_size_default:
    case OpKey::aten__functional_sym_constrain_range_default:
    case OpKey::aten__functional_sym_constrain_range_for_size_default: return true;
    default: return ir::op_schema(op).returns().empty();
  }
}

Result<int> eliminate_dead_code(ir::Program& program, std::vector<std::string>* log) {
  ir::Graph& graph = program.graph;
  std::vector<bool> needed = graph_output_mask(graph);
  std::vector<bool> dead(graph.nodes().size(), false);
  // Reverse program order: every reader of a value comes after it, so a node's liveness is known
  // once all later nodes are decided.
  for (auto it = graph.nodes().rbegin(); it != graph.nodes().rend(); ++it) {
    const ir::Node& node = *it;
    bool live = has_side_effects(node.op);
    for (const ir::Value* out : node.outputs) live = live || (out && needed[out->id]);
    if (!live) {
      dead[node.id] = true;
      continue;
    }
    for (const ir::Value* in : node.input_values()) needed[in->id] = true;
  }
  int changes = 0;
  for (const ir::Node& node : graph.nodes()) {
    if (!dead[node.id]) continue;
    log_change(log, "dead_code_elimination: removed node '", node.name, "' (", ir::op_name(node.op),
               ")");
    ++changes;
  }
  graph.erase_nodes([&](const ir::Node& node) { return dead[node.id]; });
  changes += static_cast<int>(graph.erase_inputs([&](const ir::GraphInput& in) {
    if (in.kind == ir::InputKind::kUserInput || needed[in.value->id]) return false;
    log_change(log, "dead_code_elimination: dropped unused input '", in.value->name, "' (",
               in.target, ")");
    program.weights.erase(in.value->id);
    return true;
  }));
  if (changes > 0) compact(program);
  return changes;
}

}  // namespace kiln::passes
