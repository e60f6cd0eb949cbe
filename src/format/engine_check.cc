#include "format/engine_check.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "ir/sym_expr.h"
#include "ir/verifier.h"

namespace kiln::format {
namespace {

bool owns(const ir::Graph& graph, const ir::Value* v) {
  return v != nullptr && v->id < graph.num_values() && &graph.values()[v->id] == v;
}

// ir::verify indexes by value id, so first make sure every pointer is one of the graph's own.
Status check_references(const ir::Graph& graph) {
  for (const ir::GraphInput& in : graph.inputs()) {
    if (!owns(graph, in.value))
      return invalid_argument("a graph input is not a value of the graph");
  }
  for (const ir::Value* out : graph.outputs()) {
    if (!owns(graph, out)) return invalid_argument("a graph output is not a value of the graph");
  }
  for (const ir::Node& node : graph.nodes()) {
    if (node.op == ir::OpKey::kInvalid || node.op >= ir::OpKey::kCount) {
      return invalid_argument("node '", node.name, "': expected an op, found none");
    }
    for (const ir::Value* v : node.input_values()) {
      if (!owns(graph, v)) {
        return invalid_argument("node '", node.name, "' reads a value that is not the graph's");
      }
    }
    for (const ir::Value* v : node.outputs) {
      if (v && !owns(graph, v)) {
        return invalid_argument("node '", node.name, "' writes a value that is not the graph's");
      }
    }
  }
  return ok_status();
}

Status check_names(const ir::Graph& graph) {
  std::unordered_set<std::string_view> names;
  for (const ir::Value& v : graph.values()) {
    if (!names.insert(v.name).second) {
      return invalid_argument("value ", v.id, ": expected a unique name, found '", v.name,
                              "' a second time");
    }
  }
  return ok_status();
}

Status check_weights(const ir::Program& program) {
  const ir::Graph& graph = program.graph;
  size_t expected = 0;
  for (const ir::GraphInput& in : graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) continue;
    ++expected;
    const ir::Value& v = *in.value;
    auto it = program.weights.find(v.id);
    if (it == program.weights.end()) {
      return invalid_argument("graph input '", v.name, "' ('", in.target,
                              "'): expected a weight, found none");
    }
    const Tensor& t = it->second;
    if (!v.has_recorded_meta) continue;
    bool same = t.dtype() == v.dtype && t.dim() == static_cast<int64_t>(v.shape.size());
    for (size_t d = 0; same && d < v.shape.size(); ++d) {
      same = v.shape[d].is_static() && v.shape[d].value == t.size(static_cast<int64_t>(d));
    }
    if (!same) {
      std::string recorded = str_cat(dtype_name(v.dtype), "[");
      for (size_t d = 0; d < v.shape.size(); ++d) {
        recorded += str_cat(d ? ", " : "", ir::sym_dim_to_string(v.shape[d]));
      }
      return invalid_argument("weight '", in.target, "' (value '", v.name, "'): expected ",
                              recorded, "], found ", t.description());
    }
  }
  if (program.weights.size() != expected) {
    for (const auto& [id, tensor] : program.weights) {
      bool is_weight_input = std::any_of(
          graph.inputs().begin(), graph.inputs().end(), [id = id](const ir::GraphInput& in) {
            return in.value->id == id && in.kind != ir::InputKind::kUserInput;
          });
      if (!is_weight_input) {
        const std::string name = id < graph.num_values() ? graph.values()[id].name : "?";
        return invalid_argument("weight of value ", id, " ('", name,
                                "'): expected a parameter, buffer or constant input, found none "
                                "of that id");
      }
    }
  }
  return ok_status();
}

// The symbols that the input bindings' dims are made of (as builder::input_symbols collects them).
std::vector<std::string> input_symbols(const ir::Graph& graph) {
  std::vector<std::string> symbols;
  for (const ir::GraphInput* in : graph.user_inputs()) {
    for (const ir::SymDim& dim : in->value->shape) {
      if (dim.expr) dim.expr->collect_symbols(&symbols);
    }
  }
  return symbols;
}

Status check_profile(const Profile& profile, size_t index, const ir::Graph& graph,
                     const std::vector<std::string>& symbols) {
  std::unordered_set<std::string_view> seen;
  for (const SymbolProfile& s : profile.symbols) {
    const std::string where = str_cat("profile ", index, " symbol '", s.symbol, "'");
    if (!seen.insert(s.symbol).second) return invalid_argument(where, ": listed twice");
    if (std::find(symbols.begin(), symbols.end(), s.symbol) == symbols.end()) {
      return invalid_argument(where,
                              ": expected a symbol of the input bindings, found one that "
                              "no input uses");
    }
    if (!(0 <= s.min && s.min <= s.opt && s.opt <= s.max)) {
      return invalid_argument(where, ": expected 0 <= min <= opt <= max, found min ", s.min,
                              ", opt ", s.opt, ", max ", s.max);
    }
    auto range = graph.symbol_ranges().find(s.symbol);
    if (range != graph.symbol_ranges().end() &&
        (s.min < range->second.min || s.max > range->second.max)) {
      return invalid_argument(where, ": expected [min, max] inside the program's range [",
                              range->second.min, ", ", range->second.max, "], found [", s.min, ", ",
                              s.max, "]");
    }
  }
  for (const std::string& symbol : symbols) {
    if (!seen.count(symbol)) {
      return invalid_argument("profile ", index, ": expected a range for symbol '", symbol,
                              "' of the input bindings, found none");
    }
  }
  return ok_status();
}

}  // namespace

Status check_engine(const Engine& engine) {
  if (!engine.program) return invalid_argument("expected a program, found none");
  const ir::Program& program = *engine.program;
  KILN_RETURN_IF_ERROR(check_references(program.graph));
  KILN_RETURN_IF_ERROR(ir::verify(program.graph));
  KILN_RETURN_IF_ERROR(check_names(program.graph));
  KILN_RETURN_IF_ERROR(check_weights(program));
  if (engine.target.backend.empty())
    return invalid_argument("expected a target backend, found none");
  if (engine.profiles.empty()) {
    return invalid_argument("expected at least one optimization profile, found none");
  }
  if (engine.memory.size() != engine.profiles.size()) {
    return invalid_argument("expected one memory plan per profile (", engine.profiles.size(),
                            "), found ", engine.memory.size());
  }
  const std::vector<std::string> symbols = input_symbols(program.graph);
  for (size_t i = 0; i < engine.profiles.size(); ++i) {
    KILN_RETURN_IF_ERROR(check_profile(engine.profiles[i], i, program.graph, symbols));
  }
  std::unordered_set<std::string_view> kernel_names;
  for (const KernelImage& k : engine.kernels) {
    if (k.name.empty()) return invalid_argument("kernel image: expected a name, found none");
    if (!kernel_names.insert(k.name).second) {
      return invalid_argument("kernel image '", k.name,
                              "': expected a unique name, found it twice");
    }
  }
  return ok_status();
}

}  // namespace kiln::format
