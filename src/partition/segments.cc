// From a partitioner's blocks to named segments with their inputs and outputs.
#include <algorithm>

#include "partition/partition_internal.h"

namespace kiln::partition::internal {
namespace {

struct GraphFacts {
  std::vector<int> input_kind;  // by Value::id: the InputKind of graph inputs, -1 otherwise
  std::vector<bool> is_output;  // by Value::id
  explicit GraphFacts(const ir::Graph& graph)
      : input_kind(graph.num_values(), -1), is_output(graph.num_values(), false) {
    for (const ir::GraphInput& in : graph.inputs()) {
      input_kind[in.value->id] = static_cast<int>(in.kind);
    }
    for (const ir::Value* out : graph.outputs()) is_output[out->id] = true;
  }
  bool is_weight(const ir::Value& v) const {
    return input_kind[v.id] >= 0 && input_kind[v.id] != static_cast<int>(ir::InputKind::kUserInput);
  }
};

// Adds the symbolic node producing `v` and, recursively, those producing its symbolic inputs.
void add_symbolic_chain(const ir::Value* v, const SupportAnalysis& analysis,
                        std::vector<bool>& in_segment, std::vector<const ir::Node*>& nodes) {
  const ir::Node* producer = v->producer;
  if (!producer || in_segment[producer->id]) return;
  if (analysis.nodes[producer->id].role != NodeRole::kSymbolic) return;
  in_segment[producer->id] = true;
  nodes.push_back(producer);
  for (const ir::Value* in : producer->input_values()) {
    if (in->kind != ir::ValueKind::kTensor) add_symbolic_chain(in, analysis, in_segment, nodes);
  }
}

void sort_by_program_order(std::vector<const ir::Node*>& nodes) {
  std::sort(nodes.begin(), nodes.end(),
            [](const ir::Node* a, const ir::Node* b) { return a->id < b->id; });
}

// Inputs in first-use order; weights read by an accelerated segment are not inputs.
void find_inputs(Segment& segment, const GraphFacts& facts, std::vector<bool>& produced,
                 std::vector<bool>& listed) {
  for (const ir::Node* node : segment.nodes) {
    for (const ir::Value* out : node->outputs) {
      if (out) produced[out->id] = true;
    }
  }
  for (const ir::Node* node : segment.nodes) {
    for (const ir::Value* in : node->input_values()) {
      if (produced[in->id] || listed[in->id]) continue;
      if (segment.kind == SegmentKind::kAccelerated && facts.is_weight(*in)) continue;
      listed[in->id] = true;
      segment.inputs.push_back(in);
    }
  }
  for (const ir::Node* node : segment.nodes) {
    for (const ir::Value* out : node->outputs) {
      if (out) produced[out->id] = false;
    }
  }
  for (const ir::Value* in : segment.inputs) listed[in->id] = false;
}

}  // namespace

std::vector<Segment> build_segments(const ir::Program& program, const SupportAnalysis& analysis,
                                    const std::vector<Block>& blocks) {
  const ir::Graph& graph = program.graph;
  const GraphFacts facts(graph);
  const size_t num_nodes = graph.nodes().size();
  std::vector<Segment> segments;
  std::vector<bool> in_segment(num_nodes, false);
  for (const Block& block : blocks) {
    Segment& segment = segments.emplace_back();
    segment.kind = block.accelerated ? SegmentKind::kAccelerated : SegmentKind::kTorch;
    segment.compute_ops = block.compute_ops;
    for (uint32_t i : block.nodes) {
      segment.nodes.push_back(analysis.placed[i]);
      in_segment[analysis.placed[i]->id] = true;
    }
    // Symbolic values never cross a boundary: each segment computes the ones it reads.
    for (size_t k = 0, placed = segment.nodes.size(); k < placed; ++k) {
      for (const ir::Value* in : segment.nodes[k]->input_values()) {
        if (in->kind != ir::ValueKind::kTensor) {
          add_symbolic_chain(in, analysis, in_segment, segment.nodes);
        }
      }
    }
    sort_by_program_order(segment.nodes);
    for (const ir::Node* node : segment.nodes) in_segment[node->id] = false;
  }
  // Symbolic program outputs (x.shape[0] * 2) come from a torch segment at the end: engines
  // return tensors only.
  std::vector<const ir::Value*> symbolic_outputs;
  for (const ir::Value* out : graph.outputs()) {
    if (out->kind != ir::ValueKind::kTensor && out->producer &&
        analysis.nodes[out->producer->id].role == NodeRole::kSymbolic &&
        std::find(symbolic_outputs.begin(), symbolic_outputs.end(), out) ==
            symbolic_outputs.end()) {
      symbolic_outputs.push_back(out);
    }
  }
  if (!symbolic_outputs.empty()) {
    if (segments.empty() || segments.back().kind != SegmentKind::kTorch) {
      segments.emplace_back().kind = SegmentKind::kTorch;
    }
    Segment& last = segments.back();
    for (const ir::Node* node : last.nodes) in_segment[node->id] = true;
    for (const ir::Value* out : symbolic_outputs) {
      add_symbolic_chain(out, analysis, in_segment, last.nodes);
    }
    for (const ir::Node* node : last.nodes) in_segment[node->id] = false;
    sort_by_program_order(last.nodes);
  }

  // Inputs, and which values some other segment (or the program's result) reads.
  std::vector<bool> produced(graph.num_values(), false);
  std::vector<bool> listed(graph.num_values(), false);
  std::vector<bool> read_elsewhere(graph.num_values(), false);
  for (size_t s = 0; s < segments.size(); ++s) {
    Segment& segment = segments[s];
    segment.name =
        str_cat(segment.kind == SegmentKind::kAccelerated ? "_run_on_acc_" : "_run_on_gpu_", s);
    find_inputs(segment, facts, produced, listed);
    for (const ir::Value* in : segment.inputs) read_elsewhere[in->id] = true;
  }
  // Outputs: values of the segment's own nodes (not its copies of symbolic nodes) that others
  // read, plus the symbolic program outputs of the final torch segment.
  for (size_t s = 0; s < segments.size(); ++s) {
    Segment& segment = segments[s];
    const bool last_torch = !symbolic_outputs.empty() && s + 1 == segments.size();
    for (const ir::Node* node : segment.nodes) {
      const bool copy = analysis.nodes[node->id].role == NodeRole::kSymbolic;
      for (const ir::Value* out : node->outputs) {
        if (!out) continue;
        const bool wanted = copy ? last_torch && facts.is_output[out->id]
                                 : read_elsewhere[out->id] || facts.is_output[out->id];
        if (wanted) segment.outputs.push_back(out);
      }
    }
  }
  return segments;
}

Segment whole_program_segment(const ir::Program& program) {
  const ir::Graph& graph = program.graph;
  const GraphFacts facts(graph);
  Segment segment;
  segment.kind = SegmentKind::kTorch;
  segment.name = "_run_on_gpu_0";
  for (const ir::Node& node : graph.nodes()) segment.nodes.push_back(&node);
  std::vector<bool> produced(graph.num_values(), false);
  std::vector<bool> listed(graph.num_values(), false);
  find_inputs(segment, facts, produced, listed);
  for (const ir::Node& node : graph.nodes()) {
    for (const ir::Value* out : node.outputs) {
      if (out && facts.is_output[out->id]) segment.outputs.push_back(out);
    }
  }
  return segment;
}

}  // namespace kiln::partition::internal
