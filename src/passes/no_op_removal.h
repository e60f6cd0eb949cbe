// No-op removal: nodes whose output equals their input, so that every reader can read the input
// instead. Covered: views and reshapes to the same shape (view, _unsafe_view, reshape, expand,
// squeeze, flatten and their _copy forms), the identity permute or transpose, t of a 0-D or 1-D
// tensor, a step-1 slice over the whole dim, alias, detach, dropout in eval mode, and the copies
// that change nothing (clone, contiguous, lift_fresh_copy, _to_copy to the same dtype; memory
// formats other than contiguous or preserve stay). _to_copy's device is not looked at: a lowered
// segment runs on one device.
//
// Graph outputs keep their names: when the removed node's output is a graph output, the node
// producing its input produces the output value instead. A node stays when removing it would make
// a graph output alias a graph input or another graph output (`return x.clone()` keeps its clone).
#pragma once

#include <string>
#include <vector>

#include "ir/program.h"

namespace kiln::passes {

// Returns how many nodes it removed (0: unchanged); appends one line per node to `log` when not
// null. Invalidates pointers to the program's Nodes and Values.
Result<int> remove_no_ops(ir::Program& program, std::vector<std::string>* log = nullptr);

}  // namespace kiln::passes
