// The partitioning pipeline's stages, shared by the files of src/partition/ (not a public API):
// support analysis → a partitioner's blocks → segments with their inputs and outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "partition/partition.h"

namespace kiln::partition::internal {

// How the partitioners treat a node.
enum class NodeRole : uint8_t {
  kCompute,   // counts toward total_ops and min_block_size
  kView,      // aliases its input (view ops, getitem of a tensor): placed, never counted
  kSymbolic,  // produces only SymInt/SymFloat/SymBool: copied into each segment that reads it
  kMetadata,  // produces nothing (assertions): left out of partitioned plans
};

struct NodeSupport {
  NodeRole role = NodeRole::kCompute;
  // Placed nodes: kiln can run it in an accelerated segment. Symbolic nodes: an accelerated
  // segment can compute it from tensors and constants.
  bool supported = false;
  std::string reason;  // why not, when !supported
};

struct SupportAnalysis {
  std::vector<NodeSupport> nodes;       // by Node::id
  std::vector<const ir::Node*> placed;  // compute and view nodes, in program order
  std::vector<uint32_t> placed_index;   // by Node::id: index into `placed`, or kNotPlaced
  // For each placed node, the placed nodes whose tensors it reads, directly or through the
  // symbolic nodes it reads (sym_size of a tensor ties the reader to that tensor's producer).
  std::vector<std::vector<uint32_t>> deps;
  int total_ops = 0;
  int supported_ops = 0;

  static constexpr uint32_t kNotPlaced = UINT32_MAX;
  bool supported(uint32_t placed_i) const { return nodes[placed[placed_i]->id].supported; }
  bool is_compute(uint32_t placed_i) const {
    return nodes[placed[placed_i]->id].role == NodeRole::kCompute;
  }
};

// Resolves the names in settings (torch_executed_ops, torch_executed_nodes; unknown names are
// invalid_argument with a close match) and asks the registry about every node.
Result<SupportAnalysis> analyze_support(const ir::Program& program,
                                        const convert::OpRegistry& registry,
                                        const PartitionSettings& settings);

// The ops a torch_executed_ops entry names: one overload, or every overload of "aten.sort".
Result<std::vector<ir::OpKey>> resolve_op_name(std::string_view name);

// A partitioner's answer: placed nodes grouped into blocks, in an order that runs.
struct Block {
  bool accelerated = false;
  std::vector<uint32_t> nodes;  // indices into SupportAnalysis::placed, in program order
  int compute_ops = 0;
};

// Contiguous runs in program order.
std::vector<Block> fast_partition(const SupportAnalysis& analysis, int min_block_size);
// As few accelerated blocks as the dependencies allow.
std::vector<Block> global_partition(const SupportAnalysis& analysis, int min_block_size);

// Named segments with their inputs and outputs; symbolic nodes are copied into each segment that
// reads them, and symbolic program outputs are computed by a torch segment at the end.
std::vector<Segment> build_segments(const ir::Program& program, const SupportAnalysis& analysis,
                                    const std::vector<Block>& blocks);
// The whole program as one torch segment (nothing worth accelerating).
Segment whole_program_segment(const ir::Program& program);

// The candidate closest to `name`, if it is close enough to be a plausible typo; else empty.
std::string closest_match(std::string_view name, const std::vector<std::string_view>& candidates);

}  // namespace kiln::partition::internal
