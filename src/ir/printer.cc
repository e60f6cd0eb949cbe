#include "ir/printer.h"

#include <sstream>

namespace kiln::ir {

std::string value_type_to_string(const Value& value) {
  switch (value.kind) {
    case ValueKind::kSymInt: return "SymInt";
    case ValueKind::kSymFloat: return "SymFloat";
    case ValueKind::kSymBool: return "SymBool";
    case ValueKind::kTensor: break;
  }
  if (!value.has_recorded_meta) return "Tensor";
  std::string dims;
  for (size_t i = 0; i < value.shape.size(); ++i) {
    dims += str_cat(i ? ", " : "", sym_dim_to_string(value.shape[i]));
  }
  return str_cat(dtype_name(value.dtype), "[", dims, "]");
}

std::string print_node(const Node& node) {
  std::ostringstream out;
  if (node.outputs.size() == 1 && node.outputs[0]) {
    out << '%' << node.outputs[0]->name << ": " << value_type_to_string(*node.outputs[0]);
  } else {
    out << '(';
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      out << (i ? ", " : "");
      if (node.outputs[i]) {
        out << '%' << node.outputs[i]->name << ": " << value_type_to_string(*node.outputs[i]);
      } else {
        out << '_';
      }
    }
    out << ')';
  }
  out << " = " << op_name(node.op) << '(';
  const auto args = node.schema().args();
  bool first = true;
  for (size_t i = 0; i < node.args.size(); ++i) {
    // Keyword-only arguments left at None are noise (layout, device, pin_memory).
    if (i < args.size() && args[i].kwarg_only && std::holds_alternative<NoneArg>(node.args[i]))
      continue;
    out << (first ? "" : ", ");
    if (i < args.size() && args[i].kwarg_only) out << args[i].name << '=';
    out << argument_to_string(node.args[i]);
    first = false;
  }
  out << ')';
  return out.str();
}

std::string print_graph(const Graph& graph) {
  static const char* kKinds[] = {"parameter", "buffer", "constant", ""};
  std::ostringstream out;
  out << "graph(";
  for (size_t i = 0; i < graph.inputs().size(); ++i) {
    const GraphInput& in = graph.inputs()[i];
    out << (i ? ",\n      " : "") << '%' << in.value->name << ": "
        << value_type_to_string(*in.value);
    if (in.kind != InputKind::kUserInput) {
      out << " = " << kKinds[static_cast<int>(in.kind)] << ' ' << in.target;
    }
  }
  out << ") {\n";
  for (const Node& node : graph.nodes()) out << "  " << print_node(node) << '\n';
  out << "  return (";
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    out << (i ? ", " : "") << '%' << graph.outputs()[i]->name;
  }
  out << ")\n}\n";
  return out.str();
}

}  // namespace kiln::ir
