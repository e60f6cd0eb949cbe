// The global partitioner: supported nodes from anywhere in the graph share a block unless a path
// leaves the block through PyTorch and comes back (block → torch node → block would be a cycle).
//
// Each supported node gets a level: the number of torch hops on the longest path reaching it
// (a node after a torch node that follows level-L nodes is at level L + 1). A path can only climb
// levels, so the blocks, one per level, never form a cycle, and there are as few of them as the
// longest alternation acc → torch → acc → ... forces. Torch nodes run between the levels they
// depend on and the levels that depend on them. Every node is then moved as late as its users
// allow, so that a value is made in the block that reads it rather than crossing a boundary, and
// torch nodes that feed no block gather at the end instead of opening the program.
#include <algorithm>

#include "partition/partition_internal.h"

namespace kiln::partition::internal {
namespace {

struct Levels {
  // Accelerated nodes: their block's level; torch nodes: their slot, the level of the block they
  // run after (-1: before the first).
  std::vector<int> of;
  int max_level = -1;
};

Levels assign_levels(const SupportAnalysis& analysis, const std::vector<bool>& accelerated,
                     const std::vector<std::vector<uint32_t>>& users) {
  const size_t n = accelerated.size();
  Levels levels{std::vector<int>(n, 0), -1};
  for (size_t i = 0; i < n; ++i) {
    int level = accelerated[i] ? 0 : -1;
    for (uint32_t d : analysis.deps[i]) {
      const int hop = accelerated[i] && !accelerated[d] ? 1 : 0;
      level = std::max(level, levels.of[d] + hop);
    }
    levels.of[i] = level;
    if (accelerated[i]) levels.max_level = std::max(levels.max_level, level);
  }
  // As late as the users allow: a block no later than any accelerated user's level or torch
  // user's slot (a torch node at slot L runs right after block L), a torch node no later than
  // the slot before any accelerated user's level or than any torch user's slot. The earliest
  // levels above bound how many blocks there are; these decide where each node goes.
  std::vector<int> late(n);
  for (size_t i = n; i-- > 0;) {
    int level = levels.max_level;
    for (uint32_t u : users[i]) {
      level = std::min(level, accelerated[u] && !accelerated[i] ? late[u] - 1 : late[u]);
    }
    late[i] = level;
  }
  levels.of = std::move(late);
  return levels;
}

}  // namespace

std::vector<Block> global_partition(const SupportAnalysis& analysis, int min_block_size) {
  const size_t n = analysis.placed.size();
  std::vector<bool> accelerated(n);
  std::vector<std::vector<uint32_t>> users(n);
  for (uint32_t i = 0; i < n; ++i) {
    accelerated[i] = analysis.supported(i);
    for (uint32_t d : analysis.deps[i]) users[d].push_back(i);
  }
  Levels levels;
  // Blocks too small to be worth an engine go back to PyTorch; that can let the remaining blocks
  // merge, so levels are assigned again until every block is big enough.
  for (;;) {
    levels = assign_levels(analysis, accelerated, users);
    std::vector<int> compute_ops(static_cast<size_t>(levels.max_level + 1), 0);
    for (size_t i = 0; i < n; ++i) {
      if (accelerated[i] && analysis.is_compute(i)) compute_ops[levels.of[i]] += 1;
    }
    bool demoted = false;
    for (size_t i = 0; i < n; ++i) {
      if (accelerated[i] && compute_ops[levels.of[i]] < min_block_size) {
        accelerated[i] = false;
        demoted = true;
      }
    }
    if (!demoted) break;
  }
  // Torch slot -1, block 0, torch slot 0, block 1, ...; a torch slot next to an empty level
  // merges with the one before it.
  const size_t num_slots = static_cast<size_t>(levels.max_level + 2);
  std::vector<Block> torch_slots(num_slots);
  std::vector<Block> acc_levels(num_slots);
  for (uint32_t i = 0; i < n; ++i) {
    Block& block = accelerated[i] ? acc_levels[levels.of[i]] : torch_slots[levels.of[i] + 1];
    block.accelerated = accelerated[i];
    block.nodes.push_back(i);
    block.compute_ops += analysis.is_compute(i) ? 1 : 0;
  }
  std::vector<Block> blocks;
  auto append = [&](Block& block) {
    if (block.nodes.empty()) return;
    if (block.accelerated || blocks.empty() || blocks.back().accelerated) {
      blocks.push_back(std::move(block));
      return;
    }
    // Program order is a topological order, so it stays one for the merged slots.
    Block& previous = blocks.back();
    previous.nodes.insert(previous.nodes.end(), block.nodes.begin(), block.nodes.end());
    std::sort(previous.nodes.begin(), previous.nodes.end());
    previous.compute_ops += block.compute_ops;
  };
  for (size_t slot = 0; slot < num_slots; ++slot) {
    if (slot > 0) append(acc_levels[slot - 1]);
    append(torch_slots[slot]);
  }
  return blocks;
}

}  // namespace kiln::partition::internal
