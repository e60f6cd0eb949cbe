// Constant folding: evaluates once, on the CPU reference backend, every node that reads only
// parameters, buffers, constants and other foldable nodes (no user input, no symbolic size), and
// replaces the values that the rest of the program reads by new constant inputs named
// `_folded_<value name>` (kind kConstant, exact dtype and shape). The folded nodes are removed; the
// weights they read stay until dead code elimination drops the unused ones.
//
// Not folded: ops with side effects, random ops and uninitialized factories (empty*), ops the CPU
// backend cannot run, nodes with a symbolic or unrecorded output shape or an output larger than
// `max_folded_bytes` (so `zeros([65536, 65536])` stays a factory), and nodes that produce a graph
// output (graph outputs keep their producing node, and so their name).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ir/program.h"

namespace kiln::passes {

struct ConstantFoldingOptions {
  // The largest tensor, in bytes, that folding may create (each output of each folded node).
  size_t max_folded_bytes = size_t{64} << 20;
};

// Whether an op's outputs depend only on its inputs' values: false for random ops and for the
// factories whose contents are uninitialized (`empty`, `new_empty`, ...).
bool is_deterministic(ir::OpKey op);

// Returns how many nodes it folded away (0: unchanged); appends one line per new constant to `log`
// when not null. Fails only when a kernel fails on constant inputs. Invalidates pointers to the
// program's Nodes and Values.
Result<int> fold_constants(ir::Program& program, const ConstantFoldingOptions& options = {},
                           std::vector<std::string>* log = nullptr);

}  // namespace kiln::passes
