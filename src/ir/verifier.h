// Checks on a graph: structure (every value defined once, before it is used; outputs defined) and
// shape inference against what the program records.
#pragma once

#include "ir/program.h"

namespace kiln::ir {

Status verify(const Graph& graph);

// Runs shape inference over the whole program with its symbols at their example values (the export
// hints) and compares every inferred output dtype and shape with the recorded one. Nodes of ops
// without inference are skipped (they are reported as unsupported when a backend is chosen); so are
// the values that depend on them.
// A node whose inference says Unsupported (a program PyTorch runs that kiln cannot, such as an
// integer transposed convolution) is no error here: its outputs keep the recorded shapes, and
// support analysis declines it (infer_node).
Status check_inference(const Program& program);

// Runs `node`'s shape inference alone, on meta tensors of the shapes its inputs record (symbols at
// their example values). OK where it cannot tell: an op without inference, or an input that is not
// a tensor with recorded meta. Support analysis declines a node for which this gives Unsupported.
Status infer_node(const Node& node);

}  // namespace kiln::ir
