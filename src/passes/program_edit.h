// Small edits of a Program that several lowering passes share: reading the tensor behind a weight
// input, adding a constant input, dropping what nothing refers to, and the debug log.
//
// These functions mutate the program they are given; none is thread-safe on the same program.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ir/program.h"

namespace kiln::passes {

// The tensor behind a parameter, buffer or constant input; null for a user input, for a value a
// node produces, and for a weight input whose tensor is missing. Relies on the Program's invariant
// that `weights` holds exactly the non-user inputs.
const Tensor* weight_tensor(const ir::Program& program, const ir::Value* value);

// Whether `value` is one of the graph's outputs.
bool is_graph_output(const ir::Graph& graph, const ir::Value* value);
// The same question for every value at once, indexed by Value::id.
std::vector<bool> graph_output_mask(const ir::Graph& graph);

// `base` if no value has that name yet, else `base_1`, `base_2`, ...
std::string unique_value_name(const ir::Graph& graph, std::string_view base);

// The name of a constant made from `name` by a pass: `_folded_<name>`, without stacking the
// prefix when `name` was itself folded (add_constant makes it unique).
std::string folded_name(std::string_view name);

// Adds `tensor` as a new constant input (InputKind::kConstant) named unique_value_name(name), which
// is also its target. Its recorded meta is the tensor's dtype and (static) shape. The program's
// weights hold the tensor from then on.
ir::Value* add_constant(ir::Program& program, std::string_view name, Tensor tensor);

// Drops values nothing refers to any more and renumbers the rest, keeping `weights` keyed by the
// new ids. Invalidates pointers to Values.
void compact(ir::Program& program);

// Appends one line to a pass's debug log; `log` may be null (then nothing is formatted).
template <typename... Args>
void log_change(std::vector<std::string>* log, const Args&... parts) {
  if (log) log->push_back(str_cat(parts...));
}

}  // namespace kiln::passes
