// The fast (adjacency) partitioner: contiguous runs of supported nodes in program order. It never
// reorders, so the blocks run in the order they come; the price is that an unsupported node
// splits the graph where a reordering would have let the two sides merge (the global partitioner
// finds those).
#include "partition/partition_internal.h"

namespace kiln::partition::internal {

std::vector<Block> fast_partition(const SupportAnalysis& analysis, int min_block_size) {
  std::vector<Block> blocks;
  for (uint32_t i = 0; i < analysis.placed.size(); ++i) {
    const bool accelerated = analysis.supported(i);
    if (blocks.empty() || blocks.back().accelerated != accelerated) {
      blocks.emplace_back().accelerated = accelerated;
    }
    blocks.back().nodes.push_back(i);
    blocks.back().compute_ops += analysis.is_compute(i) ? 1 : 0;
  }
  // Blocks too small to be worth an engine go back to PyTorch and merge with their neighbours.
  std::vector<Block> merged;
  for (Block& block : blocks) {
    if (block.accelerated && block.compute_ops < min_block_size) block.accelerated = false;
    if (!merged.empty() && !merged.back().accelerated && !block.accelerated) {
      Block& previous = merged.back();
      previous.nodes.insert(previous.nodes.end(), block.nodes.begin(), block.nodes.end());
      previous.compute_ops += block.compute_ops;
    } else {
      merged.push_back(std::move(block));
    }
  }
  return merged;
}

}  // namespace kiln::partition::internal
