// ir::Graph <-> the engine schema's Graph table (engine.fbs).
//
// Values and nodes are stored by index (their id), ops by their target name ("torch.ops.aten.
// add.Tensor") so that regenerating the op table never invalidates an engine, and symbolic
// expressions once each, in sympy's str form.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include "format/engine_generated.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::format {

// Fails with invalid_argument when the graph is not self-contained: a node without an op, or a
// reference to a value that is not one of this graph's.
Result<flatbuffers::Offset<fb::Graph>> encode_graph(flatbuffers::FlatBufferBuilder& fbb,
                                                    const ir::Graph& graph);

// Fills `graph` (empty) from a verified table. Every value reference is checked against the value
// count and every expression parsed (data_loss); ops, enum codes and argument kinds this kiln does
// not know are unsupported, naming them. Does not link the graph.
Status decode_graph(const fb::Graph& table, ir::Graph& graph);

// A string field: absent strings read as empty.
inline std::string_view fb_str(const flatbuffers::String* s) {
  return s ? s->string_view() : std::string_view();
}

}  // namespace kiln::format
