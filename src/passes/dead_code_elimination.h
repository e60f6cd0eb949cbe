// Dead code elimination: removes the nodes whose outputs nothing reads (directly or through other
// live nodes) and that have no side effects, then the parameter, buffer and constant inputs that
// nothing reads any more. Graph outputs and user inputs always stay, even when unused: they are the
// program's interface.
#pragma once

#include <string>
#include <vector>

#include "ir/program.h"

namespace kiln::passes {

// Whether a node of this op must run even when nothing reads its outputs: runtime assertions,
// symbol range constraints, printing, and every op that returns nothing (it exists only for its
// effect).
bool has_side_effects(ir::OpKey op);

// Returns how many nodes and inputs it removed (0: the program is unchanged). Appends one line per
// removal to `log` when it is not null. Invalidates pointers to the program's Nodes and Values.
Result<int> eliminate_dead_code(ir::Program& program, std::vector<std::string>* log = nullptr);

}  // namespace kiln::passes
