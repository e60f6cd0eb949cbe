// Support analysis: which nodes an accelerated segment can hold, and why the others cannot.
#include <algorithm>
#include <unordered_map>

#include "convert/op_registry.h"
#include "partition/partition_internal.h"

namespace kiln::partition::internal {
namespace {

// The Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

NodeRole role_of(const ir::Node& node) {
  int tensors = 0;
  int symbols = 0;
  for (const ir::Value* v : node.outputs) {
    if (!v) continue;
    (v->kind == ir::ValueKind::kTensor ? tensors : symbols) += 1;
  }
  if (tensors == 0) return symbols == 0 ? NodeRole::kMetadata : NodeRole::kSymbolic;
  const ir::OpSchema& schema = node.schema();
  if (schema.has_tag(ir::kTagView) || schema.has_tag(ir::kTagPythonOp)) return NodeRole::kView;
  return NodeRole::kCompute;
}

bool has_symbolic_output(const ir::Node& node) {
  return std::any_of(node.outputs.begin(), node.outputs.end(),
                     [](const ir::Value* v) { return v && v->kind != ir::ValueKind::kTensor; });
}

std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& candidates) {
  std::string match = closest_match(name, candidates);
  return match.empty() ? std::string() : str_cat("; did you mean '", match, "'?");
}

struct OpNameIndex {
  std::vector<std::string_view> names;  // "aten.sort.default" and "aten.sort"
  std::vector<std::string> packets;

  OpNameIndex() {
    for (const ir::OpSchema& schema : ir::all_op_schemas()) {
      if (schema.key == ir::OpKey::kInvalid) continue;
      names.push_back(ir::op_name(schema.key));
      std::string packet(schema.qualified_name);
      if (auto sep = packet.find("::"); sep != std::string::npos) packet.replace(sep, 2, ".");
      packets.push_back(std::move(packet));
    }
    std::sort(packets.begin(), packets.end());
    packets.erase(std::unique(packets.begin(), packets.end()), packets.end());
    for (const std::string& p : packets) names.push_back(p);
  }
};

const OpNameIndex& op_name_index() {
  static const OpNameIndex index;
  return index;
}

// Forced fallback, by op and by node name.
struct Forced {
  std::vector<bool> ops;    // by OpKey
  std::vector<bool> nodes;  // by Node::id
};

Result<Forced> resolve_forced(const ir::Graph& graph, const PartitionSettings& settings) {
  Forced forced{std::vector<bool>(static_cast<size_t>(ir::OpKey::kCount), false),
                std::vector<bool>(graph.nodes().size(), false)};
  for (const std::string& name : settings.torch_executed_ops) {
    KILN_ASSIGN_OR_RETURN(std::vector<ir::OpKey> keys, resolve_op_name(name), "torch_executed_ops");
    for (ir::OpKey key : keys) forced.ops[static_cast<size_t>(key)] = true;
  }
  if (settings.torch_executed_nodes.empty()) return forced;
  std::unordered_map<std::string_view, uint32_t> by_name;
  std::vector<std::string_view> names;
  for (const ir::Node& node : graph.nodes()) {
    by_name.emplace(node.name, node.id);
    names.push_back(node.name);
  }
  for (const std::string& name : settings.torch_executed_nodes) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return invalid_argument("torch_executed_nodes: the program has no node named '", name, "'",
                              did_you_mean(name, names));
    }
    forced.nodes[it->second] = true;
  }
  return forced;
}

class Analyzer {
 public:
  Analyzer(const ir::Graph& graph, const convert::OpRegistry& registry,
           const PartitionSettings& settings, Forced forced)
      : graph_(graph), registry_(registry), settings_(settings), forced_(std::move(forced)) {
    const size_t n = graph.nodes().size();
    result_.nodes.resize(n);
    result_.placed_index.assign(n, SupportAnalysis::kNotPlaced);
    sym_sources_.resize(n);
  }

  SupportAnalysis run() {
    for (const ir::Node& node : graph_.nodes()) visit(node);
    return std::move(result_);
  }

 private:
  void visit(const ir::Node& node) {
    NodeSupport& support = result_.nodes[node.id];
    support.role = role_of(node);
    if (support.role == NodeRole::kMetadata) return;
    support.reason = rejection(node, support.role);
    support.supported = support.reason.empty();
    std::vector<uint32_t> sources = tensor_sources(node);
    if (support.role == NodeRole::kSymbolic) {
      sym_sources_[node.id] = std::move(sources);
      return;
    }
    result_.placed_index[node.id] = static_cast<uint32_t>(result_.placed.size());
    result_.placed.push_back(&node);
    result_.deps.push_back(std::move(sources));
    if (support.role == NodeRole::kCompute) {
      result_.total_ops += 1;
      result_.supported_ops += support.supported ? 1 : 0;
    }
  }

  // Empty when an accelerated segment can hold the node.
  std::string rejection(const ir::Node& node, NodeRole role) const {
    if (forced_.ops[static_cast<size_t>(node.op)]) return "torch_executed_ops";
    if (forced_.nodes[node.id]) return "torch_executed_nodes";
    convert::Selection selection =
        registry_.select(node, settings_.backend, settings_.assume_dynamic_shape_support);
    if (!selection.ok()) return selection.reason();
    if (role != NodeRole::kSymbolic && has_symbolic_output(node)) {
      return "returns symbolic values next to tensors (only tensors leave an accelerated segment)";
    }
    for (const ir::Value* v : node.input_values()) {
      if (v->kind == ir::ValueKind::kTensor) continue;
      if (!v->producer) {
        return str_cat("reads the program's symbolic input '", v->name,
                       "' (only tensors enter an accelerated segment)");
      }
      const NodeSupport& producer = result_.nodes[v->producer->id];
      if (producer.role != NodeRole::kSymbolic) {
        return str_cat("reads symbolic value '", v->name, "' computed in PyTorch");
      }
      if (!producer.supported) {
        // Symbolic nodes pass their cause on unchanged, so a chain of them reads as one reason.
        return role == NodeRole::kSymbolic
                   ? producer.reason
                   : str_cat("needs symbolic value '", v->name, "': ", producer.reason);
      }
    }
    return {};
  }

  std::vector<uint32_t> tensor_sources(const ir::Node& node) const {
    std::vector<uint32_t> sources;
    for (const ir::Value* v : node.input_values()) {
      const ir::Node* producer = v->producer;
      if (!producer) continue;
      if (result_.nodes[producer->id].role == NodeRole::kSymbolic) {
        const auto& inner = sym_sources_[producer->id];
        sources.insert(sources.end(), inner.begin(), inner.end());
      } else if (result_.placed_index[producer->id] != SupportAnalysis::kNotPlaced) {
        sources.push_back(result_.placed_index[producer->id]);
      }
    }
    std::sort(sources.begin(), sources.end());
    sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
    return sources;
  }

  const ir::Graph& graph_;
  const convert::OpRegistry& registry_;
  const PartitionSettings& settings_;
  Forced forced_;
  SupportAnalysis result_;
  std::vector<std::vector<uint32_t>> sym_sources_;  // by Node::id, for symbolic nodes
};

}  // namespace

std::string closest_match(std::string_view name, const std::vector<std::string_view>& candidates) {
  // A typo changes a few characters; beyond that a suggestion is more confusing than helpful.
  const size_t limit = std::max<size_t>(2, name.size() / 5);
  size_t best = limit + 1;
  std::string_view match;
  for (std::string_view candidate : candidates) {
    const size_t length_gap = candidate.size() > name.size() ? candidate.size() - name.size()
                                                             : name.size() - candidate.size();
    if (length_gap >= best) continue;
    const size_t d = edit_distance(name, candidate);
    if (d < best) {
      best = d;
      match = candidate;
    }
  }
  return std::string(match);
}

Result<std::vector<ir::OpKey>> resolve_op_name(std::string_view name) {
  std::string normalized(name);
  if (normalized.starts_with("torch.ops.")) normalized.erase(0, 10);
  for (size_t pos; (pos = normalized.find("::")) != std::string::npos;) {
    normalized.replace(pos, 2, ".");
  }
  if (auto key = ir::find_op(normalized)) return std::vector<ir::OpKey>{*key};
  // "aten.sort": every overload of the op.
  std::vector<ir::OpKey> keys;
  if (auto sep = normalized.find('.'); sep != std::string::npos) {
    const std::string qualified =
        str_cat(normalized.substr(0, sep), "::", normalized.substr(sep + 1));
    for (const ir::OpSchema& schema : ir::all_op_schemas()) {
      if (schema.key != ir::OpKey::kInvalid && qualified == schema.qualified_name) {
        keys.push_back(schema.key);
      }
    }
  }
  if (!keys.empty()) return keys;
  std::string hint;
  if (normalized.find('.') == std::string::npos && resolve_op_name("aten." + normalized).ok()) {
    hint = str_cat("; did you mean 'aten.", normalized, "'?");
  } else {
    hint = did_you_mean(normalized, op_name_index().names);
  }
  return invalid_argument("unknown op '", name,
                          "' (expected a name like 'aten.sort.default', "
                          "'torch.ops.aten.sort.default' or 'aten.sort' for every overload)",
                          hint);
}

Result<SupportAnalysis> analyze_support(const ir::Program& program,
                                        const convert::OpRegistry& registry,
                                        const PartitionSettings& settings) {
  KILN_ASSIGN_OR_RETURN(Forced forced, resolve_forced(program.graph, settings));
  return Analyzer(program.graph, registry, settings, std::move(forced)).run();
}

}  // namespace kiln::partition::internal
