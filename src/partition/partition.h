// Splitting a program into segments that kiln runs as engines ("accelerated") and segments left to
// PyTorch, the way Torch-TensorRT's partitioners do.
//
// Support comes from the op registry (convert/op_registry.h): a node is supported when some
// implementation for the target backend accepts it (dtypes, arguments, static or dynamic shapes)
// and its op is not in `torch_executed_ops`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/program.h"
#include "kiln/status.h"

namespace kiln::convert {
class OpRegistry;
}

namespace kiln::partition {

struct PartitionSettings {
  // Adjacency partitioning (contiguous runs in program order) when true, else the global
  // partitioner (merges supported nodes across the graph as long as no cycle forms).
  bool use_fast_partitioner = true;
  // An accelerated segment needs at least this many compute ops (views and symbolic-size
  // arithmetic do not count); smaller ones go back to PyTorch.
  int min_block_size = 5;
  // Ops that must run in PyTorch, by name: "torch.ops.aten.sort.default", "aten.sort.default",
  // "aten::sort.default" or "aten.sort" (every overload).
  std::vector<std::string> torch_executed_ops;
  bool require_full_compilation = false;
  // Nodes that must run in PyTorch, by name (Python fills this from `torch_executed_modules`).
  std::vector<std::string> torch_executed_nodes;
  // Treat every implementation as handling dynamic shapes.
  bool assume_dynamic_shape_support = false;
  // Whose implementations in the registry count ("cpu", "cuda").
  std::string backend = "cpu";
};

enum class SegmentKind : uint8_t { kAccelerated, kTorch };

struct Segment {
  SegmentKind kind = SegmentKind::kTorch;
  // "_run_on_acc_N" / "_run_on_gpu_N": N is the segment's position in `PartitionPlan::segments`.
  std::string name;
  // The nodes in program order. A node producing only symbolic values (sym_size and the
  // arithmetic over it) may appear in several segments: it is copied into each one that uses it,
  // and the symbolic values the program returns are computed by a torch segment at the end.
  // Nodes without outputs (assertions such as _assert_scalar) belong to no segment, except in
  // the single torch segment of an unpartitioned plan, which holds every node.
  std::vector<const ir::Node*> nodes;
  // Values read from outside (user inputs or other segments' outputs), in first-use order.
  // Parameters, buffers and constants read by an accelerated segment are not inputs: they become
  // the engine's weights. Only tensors cross the boundary of an accelerated segment.
  std::vector<const ir::Value*> inputs;
  // Values produced here and read by later segments or by the graph's outputs, in program order.
  // An accelerated segment outputs tensors only.
  std::vector<const ir::Value*> outputs;
  int compute_ops = 0;  // the nodes that are neither views nor symbolic arithmetic
};

struct UnsupportedOp {
  std::string op;  // "aten.sort.default"
  // Why the first of its nodes was rejected: "no cpu implementation", "torch_executed_ops",
  // "float64 input", "reads the program's symbolic input 'n' (...)", ...
  std::string reason;
  std::vector<std::string> nodes;  // node names, in program order
};

struct PartitionPlan {
  // In an order that runs: every segment's inputs are produced by earlier segments or are user
  // inputs or weights.
  std::vector<Segment> segments;
  int total_ops = 0;      // compute ops in the program
  int supported_ops = 0;  // compute ops that kiln can run
  // Compute and view nodes kiln cannot run, by op: most frequent first, then in program order.
  std::vector<UnsupportedOp> unsupported;
  // The compute-op count of every block the partitioner would accelerate with min_block_size = 1
  // (the dry run's min_block_size recommendations come from these).
  std::vector<int> candidate_block_sizes;
};

// Decides support for each node and partitions. require_full_compilation with any unsupported op
// fails with kUnsupported listing each op with its count, reason and nodes. When fewer than
// min_block_size ops are supported, or no block reaches min_block_size, the plan has a single
// torch segment holding every node (the caller warns and keeps the program). Unknown names in
// torch_executed_ops / torch_executed_nodes and min_block_size < 1 are invalid_argument.
// The plan points into `program`, which must outlive it. Thread-safe for distinct plans.
Result<PartitionPlan> partition(const ir::Program& program, const convert::OpRegistry& registry,
                                const PartitionSettings& settings);

// A standalone program for one segment: its inputs become the user inputs (same names, dtypes and
// symbolic shapes), the weights it reads without taking them as inputs (an accelerated segment's)
// become weight inputs with the same kinds and targets, sharing the program's tensors; its outputs
// are the outputs. Symbols keep the program's ranges; the specs are empty. The result passes
// ir::verify; a segment whose nodes read values it neither takes nor makes is invalid_argument.
Result<std::shared_ptr<ir::Program>> extract_segment(const ir::Program& program,
                                                     const Segment& segment);

}  // namespace kiln::partition
