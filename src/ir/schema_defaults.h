// Turning a schema's default text ("1", "[0, 1]", "False", "long", "Mean") into an Argument.
#pragma once

#include "ir/graph.h"

namespace kiln::ir {

// The default of an argument the program omitted. Fails when the argument has no default.
Result<Argument> default_argument(const ArgSchema& schema);

}  // namespace kiln::ir
