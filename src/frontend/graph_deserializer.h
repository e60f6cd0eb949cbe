// Turns the JSON of a torch.export program (`models/<name>.json`, schema major version 8) into
// kiln's IR: values with their recorded dtypes and shapes, nodes with typed op keys and every
// argument by schema position (omitted ones filled from the op table's defaults), the graph
// signature, and the symbols' ranges.
#pragma once

#include "base/json.h"
#include "ir/graph.h"

namespace kiln::frontend {

// The export schema version this reader was written for; archives with another major version are
// rejected with a message naming both.
inline constexpr int64_t kSchemaMajorVersion = 8;

// Fills `graph` (inputs carry their kind and FQN from the graph signature) from the program JSON
// (the object holding "graph_module", "range_constraints", "schema_version"). Every malformed or
// unsupported construct is an error naming the node. `torch_keeps_signature`: see ReadOptions.
Status deserialize_graph(const JsonValue& program, ir::Graph& graph,
                         bool torch_keeps_signature = false);

}  // namespace kiln::frontend
