#include "passes/no_op_removal.h"

#include "ir/sym_expr.h"
#include "passes/program_edit.h"

namespace kiln::passes {
namespace {

using ir::OpKey;

bool same_dim(const ir::SymDim& a, const ir::SymDim& b) {
  if (a.is_static() != b.is_static()) return false;
  if (a.is_static()) return a.value == b.value;
  // Equal expressions over the same symbols are equal at every binding.
  return a.expr->to_string() == b.expr->to_string();
}

// Same dtype and the same recorded shape, dim for dim.
bool same_meta(const ir::Value& a, const ir::Value& b) {
  if (a.kind != ir::ValueKind::kTensor || b.kind != ir::ValueKind::kTensor) return false;
  if (!a.has_recorded_meta || !b.has_recorded_meta) return false;
  if (a.dtype != b.dtype || a.shape.size() != b.shape.size()) return false;
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (!same_dim(a.shape[i], b.shape[i])) return false;
  }
  return true;
}

std::optional<int64_t> constant_int(const ir::Argument& arg) {
  if (auto* v = std::get_if<int64_t>(&arg)) return *v;
  return std::nullopt;
}

// The argument at the schema position named `name`, or null.
const ir::Argument* named_arg(const ir::Node& node, std::string_view name) {
  const auto args = node.schema().args();
  for (size_t i = 0; i < args.size() && i < node.args.size(); ++i) {
    if (name == args[i].name) return &node.args[i];
  }
  return nullptr;
}

// None, preserve_format or contiguous_format: kiln's tensors carry no layout of their own, so a
// copy into one of these is a copy of the values.
bool keeps_memory_format(const ir::Node& node) {
  const ir::Argument* arg = named_arg(node, "memory_format");
  if (!arg || std::holds_alternative<ir::NoneArg>(*arg)) return true;
  const auto* format = std::get_if<ir::MemoryFormat>(arg);
  return format &&
         (*format == ir::MemoryFormat::kPreserve || *format == ir::MemoryFormat::kContiguous);
}

int64_t normalize_dim(int64_t dim, size_t rank) {
  return dim < 0 ? dim + static_cast<int64_t>(rank) : dim;
}

// Whether the node's only output equals its first argument (beyond same dtype and shape, which the
// caller checks).
bool is_no_op(const ir::Node& node) {
  const ir::Value* in = std::get<ir::Value*>(node.args[0]);
  const size_t rank = in->shape.size();
  switch (node.op) {
    case OpKey::aten_view_default:
    case OpKey::aten__unsafe_view_default:
    case OpKey::aten_view_copy_default:
    case OpKey::aten_reshape_default:
    case OpKey::aten_expand_default:
    case OpKey::aten_expand_copy_default:
    case OpKey::aten_squeeze_default:
    case OpKey::aten_squeeze_dim:
    case OpKey::aten_squeeze_dims:
    case OpKey::aten_squeeze_copy_default:
    case OpKey::aten_squeeze_copy_dim:
    case OpKey::aten_squeeze_copy_dims:
    case OpKey::aten_flatten_using_ints:
    case OpKey::aten_alias_default:
    case OpKey::aten_alias_copy_default:
    case OpKey::aten_detach_default:
    case OpKey::aten_detach_copy_default:
    case OpKey::aten_lift_fresh_copy_default: return true;
    case OpKey::aten_clone_default:
    case OpKey::aten_contiguous_default: return keeps_memory_format(node);
    case OpKey::aten__to_copy_default: {
      const ir::Argument* dtype = named_arg(node, "dtype");
      const bool same_dtype =
          !dtype || std::holds_alternative<ir::NoneArg>(*dtype) ||
          (std::holds_alternative<DType>(*dtype) && std::get<DType>(*dtype) == in->dtype);
      return same_dtype && keeps_memory_format(node);
    }
    case OpKey::aten_dropout_default: {
      const auto* train = std::get_if<bool>(&node.args[2]);
      return train && !*train;
    }
    case OpKey::aten_permute_default:
    case OpKey::aten_permute_copy_default: {
      const auto* dims = std::get_if<std::vector<ir::SymInt>>(&node.args[1]);
      if (!dims || dims->size() != rank) return false;
      for (size_t i = 0; i < dims->size(); ++i) {
        if ((*dims)[i].value || normalize_dim((*dims)[i].constant, rank) != static_cast<int64_t>(i))
          return false;
      }
      return true;
    }
    case OpKey::aten_transpose_int:
    case OpKey::aten_transpose_copy_int: {
      auto d0 = constant_int(node.args[1]);
      auto d1 = constant_int(node.args[2]);
      return d0 && d1 && normalize_dim(*d0, rank) == normalize_dim(*d1, rank);
    }
    case OpKey::aten_t_default:
    case OpKey::aten_t_copy_default: return rank < 2;
    case OpKey::aten_slice_Tensor:
    case OpKey::aten_slice_copy_Tensor: {
      // Same length with step 1 can only be the whole dim.
      auto step = constant_int(node.args[4]);
      return step && *step == 1;
    }
    default: return false;
  }
}

// The value a tensor shares memory with: follows view ops back to a value that owns its data.
const ir::Value* alias_root(const ir::Value* value) {
  while (value->producer && value->producer->schema().has_tag(ir::kTagView) &&
         !value->producer->args.empty()) {
    const auto* in = std::get_if<ir::Value*>(&value->producer->args[0]);
    if (!in || !*in) break;
    value = *in;
  }
  return value;
}

// Whether `out` (a graph output) may become `in`: not when `in`'s memory is a graph input's or
// another graph output's, which would make two program results (or a result and an argument) one
// buffer.
bool may_replace_output(const ir::Graph& graph, const ir::Value* out, const ir::Value* in) {
  const ir::Value* root = alias_root(in);
  if (!root->producer) return false;  // a graph input, or a view of one
  for (const ir::Value* other : graph.outputs()) {
    if (other != out && alias_root(other) == root) return false;
  }
  return true;
}

}  // namespace

Result<int> remove_no_ops(ir::Program& program, std::vector<std::string>* log) {
  ir::Graph& graph = program.graph;
  graph.link();
  std::vector<bool> removed(graph.nodes().size(), false);
  int changes = 0;
  for (ir::Node& node : graph.nodes()) {
    if (node.outputs.size() != 1 || !node.outputs[0] || node.args.empty()) continue;
    auto* in_slot = std::get_if<ir::Value*>(&node.args[0]);
    if (!in_slot || !*in_slot) continue;
    ir::Value* in = *in_slot;
    ir::Value* out = node.outputs[0];
    if (!same_meta(*in, *out) || !is_no_op(node)) continue;
    if (is_graph_output(graph, out)) {
      if (!may_replace_output(graph, out, in)) continue;
      // The output keeps its name: `in`'s producer now produces it, and `in`'s readers read it.
      ir::Node* producer = in->producer;
      for (ir::Value*& produced : producer->outputs) {
        if (produced == in) produced = out;
      }
      graph.replace_all_uses(in, out);
      out->producer = producer;
      in->producer = nullptr;
    } else {
      graph.replace_all_uses(out, in);
    }
    removed[node.id] = true;
    ++changes;
    log_change(log, "no_op_removal: removed node '", node.name, "' (", ir::op_name(node.op), ")");
  }
  if (changes == 0) return 0;
  graph.erase_nodes([&](const ir::Node& node) { return removed[node.id]; });
  compact(program);
  return changes;
}

}  // namespace kiln::passes
