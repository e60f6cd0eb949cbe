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
Status check_inference(const Program& program);

}  // namespace kiln::ir
