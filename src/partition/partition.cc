// The partitioning driver: support analysis, the report of what is unsupported, the
// require_full_compilation check, then the chosen partitioner.
#include "partition/partition.h"

#include <algorithm>

#include "convert/op_registry.h"
#include "partition/partition_internal.h"

namespace kiln::partition {
namespace {

using internal::Block;
using internal::NodeRole;
using internal::SupportAnalysis;

// Unsupported placed nodes by op, most frequent first (ties: first seen first).
std::vector<UnsupportedOp> unsupported_ops(const SupportAnalysis& analysis) {
  std::vector<UnsupportedOp> ops;
  std::vector<int> index(static_cast<size_t>(ir::OpKey::kCount), -1);
  for (const ir::Node* node : analysis.placed) {
    const internal::NodeSupport& support = analysis.nodes[node->id];
    if (support.supported) continue;
    int& slot = index[static_cast<size_t>(node->op)];
    if (slot < 0) {
      slot = static_cast<int>(ops.size());
      ops.push_back(UnsupportedOp{std::string(ir::op_name(node->op)), support.reason, {}});
    }
    ops[slot].nodes.push_back(node->name);
  }
  std::stable_sort(ops.begin(), ops.end(), [](const UnsupportedOp& a, const UnsupportedOp& b) {
    return a.nodes.size() > b.nodes.size();
  });
  return ops;
}

std::string node_list(const std::vector<std::string>& nodes) {
  constexpr size_t kShown = 5;
  std::string names;
  for (size_t i = 0; i < nodes.size() && i < kShown; ++i) {
    names += str_cat(i ? ", " : "", nodes[i]);
  }
  if (nodes.size() > kShown) names += str_cat(", ... (", nodes.size() - kShown, " more)");
  return str_cat(nodes.size(), nodes.size() == 1 ? " node: " : " nodes: ", names);
}

Status full_compilation_error(const std::vector<UnsupportedOp>& ops) {
  size_t count = 0;
  std::string lines;
  for (const UnsupportedOp& op : ops) {
    count += op.nodes.size();
    lines += str_cat("\n  ", op.op, " (", node_list(op.nodes), "): ", op.reason);
  }
  return unsupported("require_full_compilation=True, but ", count,
                     count == 1 ? " op is" : " ops are", " not supported by kiln:", lines);
}

std::vector<Block> run_partitioner(const SupportAnalysis& analysis,
                                   const PartitionSettings& settings, int min_block_size) {
  return settings.use_fast_partitioner ? internal::fast_partition(analysis, min_block_size)
                                       : internal::global_partition(analysis, min_block_size);
}

}  // namespace

Result<PartitionPlan> partition(const ir::Program& program, const convert::OpRegistry& registry,
                                const PartitionSettings& settings) {
  if (settings.min_block_size < 1) {
    return invalid_argument("min_block_size: expected a value >= 1, found ",
                            settings.min_block_size);
  }
  KILN_ASSIGN_OR_RETURN(SupportAnalysis analysis,
                        internal::analyze_support(program, registry, settings));
  PartitionPlan plan;
  plan.total_ops = analysis.total_ops;
  plan.supported_ops = analysis.supported_ops;
  plan.unsupported = unsupported_ops(analysis);
  if (settings.require_full_compilation && !plan.unsupported.empty()) {
    return full_compilation_error(plan.unsupported);
  }
  for (const Block& block : run_partitioner(analysis, settings, /*min_block_size=*/1)) {
    if (block.accelerated) plan.candidate_block_sizes.push_back(block.compute_ops);
  }
  if (plan.supported_ops == 0 || plan.supported_ops < settings.min_block_size) {
    plan.segments.push_back(internal::whole_program_segment(program));
    return plan;
  }
  std::vector<Block> blocks = run_partitioner(analysis, settings, settings.min_block_size);
  if (std::none_of(blocks.begin(), blocks.end(), [](const Block& b) { return b.accelerated; })) {
    plan.segments.push_back(internal::whole_program_segment(program));
    return plan;
  }
  plan.segments = internal::build_segments(program, analysis, blocks);
  return plan;
}

}  // namespace kiln::partition
