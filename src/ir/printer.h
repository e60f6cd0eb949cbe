// The IR's text form, for `kiln inspect`, messages and tests:
//
//   graph(%x: float32[s77, 4], %p_l_weight: float32[3, 4] = parameter l.weight) {
//     %permute: float32[4, 3] = aten.permute.default(%p_l_weight, [1, 0])
//     ...
//     return (%add_6, %mul_6)
//   }
#pragma once

#include <string>

#include "ir/graph.h"

namespace kiln::ir {

std::string value_type_to_string(const Value& value);  // "float32[s77, 4]", "SymInt"
std::string print_node(const Node& node);
std::string print_graph(const Graph& graph);

}  // namespace kiln::ir
