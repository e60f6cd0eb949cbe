#include "passes/program_edit.h"

namespace kiln::passes {

const Tensor* weight_tensor(const ir::Program& program, const ir::Value* value) {
  if (!value || value->producer) return nullptr;
  auto it = program.weights.find(value->id);
  return it == program.weights.end() ? nullptr : &it->second;
}

bool is_graph_output(const ir::Graph& graph, const ir::Value* value) {
  for (const ir::Value* out : graph.outputs()) {
    if (out == value) return true;
  }
  return false;
}

std::vector<bool> graph_output_mask(const ir::Graph& graph) {
  std::vector<bool> mask(graph.num_values(), false);
  for (const ir::Value* out : graph.outputs()) mask[out->id] = true;
  return mask;
}

std::string unique_value_name(const ir::Graph& graph, std::string_view base) {
  std::string name(base);
  for (int suffix = 1; graph.find_value(name) != nullptr; ++suffix)
    name = str_cat(base, "_", suffix);
  return name;
}

std::string folded_name(std::string_view name) {
  constexpr std::string_view kPrefix = "_folded_";
  return name.starts_with(kPrefix) ? std::string(name) : str_cat(kPrefix, name);
}

ir::Value* add_constant(ir::Program& program, std::string_view name, Tensor tensor) {
  ir::Graph& graph = program.graph;
  ir::Value* value = graph.add_value(unique_value_name(graph, name), ir::ValueKind::kTensor);
  value->dtype = tensor.dtype();
  for (int64_t size : tensor.sizes()) value->shape.push_back(ir::SymDim{size, nullptr});
  value->has_recorded_meta = true;
  graph.add_input(value, ir::InputKind::kConstant, value->name);
  program.weights[value->id] = std::move(tensor);
  return value;
}

void compact(ir::Program& program) {
  const std::vector<uint32_t> new_id = program.graph.compact_values();
  std::unordered_map<uint32_t, Tensor> weights;
  weights.reserve(program.weights.size());
  for (auto& [id, tensor] : program.weights) {
    if (id < new_id.size() && new_id[id] != ir::Graph::kDroppedValue) {
      weights.emplace(new_id[id], std::move(tensor));
    }
  }
  program.weights = std::move(weights);
}

}  // namespace kiln::passes
