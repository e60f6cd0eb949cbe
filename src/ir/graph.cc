#include "ir/graph.h"

#include <algorithm>
#include <iterator>
#include <sstream>

#include "ir/sym_expr.h"

namespace kiln::ir {

std::string sym_dim_to_string(const SymDim& dim) {
  return dim.expr ? dim.expr->to_string() : std::to_string(dim.value);
}

namespace {

struct ArgPrinter {
  std::ostringstream& out;
  void operator()(const NoneArg&) { out << "None"; }
  void operator()(Value* v) { out << '%' << v->name; }
  void operator()(const std::vector<Value*>& vs) {
    out << '[';
    for (size_t i = 0; i < vs.size(); ++i) {
      out << (i ? ", " : "");
      if (vs[i])
        out << '%' << vs[i]->name;
      else
        out << "None";
    }
    out << ']';
  }
  void operator()(int64_t v) { out << v; }
  void operator()(double v) { out << v; }
  void operator()(bool v) { out << (v ? "True" : "False"); }
  void operator()(const std::string& v) { out << '"' << v << '"'; }
  void operator()(const std::vector<SymInt>& vs) {
    out << '[';
    for (size_t i = 0; i < vs.size(); ++i) {
      out << (i ? ", " : "");
      if (vs[i].value)
        out << '%' << vs[i].value->name;
      else
        out << vs[i].constant;
    }
    out << ']';
  }
  void operator()(const std::vector<double>& vs) {
    out << '[';
    for (size_t i = 0; i < vs.size(); ++i) out << (i ? ", " : "") << vs[i];
    out << ']';
  }
  void operator()(const std::vector<bool>& vs) {
    out << '[';
    for (size_t i = 0; i < vs.size(); ++i) out << (i ? ", " : "") << (vs[i] ? "True" : "False");
    out << ']';
  }
  void operator()(DType d) { out << "torch." << dtype_name(d); }
  void operator()(MemoryFormat f) {
    static const char* kNames[] = {"torch.contiguous_format", "torch.channels_last",
                                   "torch.channels_last_3d", "torch.preserve_format"};
    out << kNames[static_cast<int>(f)];
  }
  void operator()(const Device& d) {
    out << d.type;
    if (d.index >= 0) out << ':' << d.index;
  }
};

}  // namespace

std::string argument_to_string(const Argument& arg) {
  std::ostringstream out;
  std::visit(ArgPrinter{out}, arg);
  return out.str();
}

std::vector<Value*> Node::input_values() const {
  std::vector<Value*> result;
  for (const Argument& arg : args) {
    if (auto* v = std::get_if<Value*>(&arg)) {
      result.push_back(*v);
    } else if (auto* vs = std::get_if<std::vector<Value*>>(&arg)) {
      for (Value* v : *vs) {
        if (v) result.push_back(v);
      }
    } else if (auto* ints = std::get_if<std::vector<SymInt>>(&arg)) {
      for (const SymInt& s : *ints) {
        if (s.value) result.push_back(s.value);
      }
    }
  }
  return result;
}

Value* Graph::add_value(std::string name, ValueKind kind) {
  Value& v = values_.emplace_back();
  v.id = static_cast<uint32_t>(values_.size() - 1);
  v.name = std::move(name);
  v.kind = kind;
  by_name_[v.name] = &v;
  return &v;
}

Node* Graph::add_node(std::string name, OpKey op) {
  Node& n = nodes_.emplace_back();
  n.id = static_cast<uint32_t>(nodes_.size() - 1);
  n.name = std::move(name);
  n.op = op;
  return &n;
}

void Graph::add_input(Value* value, InputKind kind, std::string target) {
  inputs_.push_back(GraphInput{value, kind, std::move(target)});
}

void Graph::link() {
  for (Value& v : values_) {
    v.users.clear();
    v.producer = nullptr;
  }
  for (Node& n : nodes_) {
    for (Value* out : n.outputs) {
      if (out) out->producer = &n;
    }
    for (Value* in : n.input_values()) {
      if (in->users.empty() || in->users.back() != &n) in->users.push_back(&n);
    }
  }
}

Value* Graph::find_value(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const GraphInput*> Graph::user_inputs() const {
  std::vector<const GraphInput*> result;
  for (const GraphInput& in : inputs_) {
    if (in.kind == InputKind::kUserInput) result.push_back(&in);
  }
  return result;
}

}  // namespace kiln::ir

namespace kiln::ir {
namespace {

// Calls `fn(Value*&)` on every value slot of a node's arguments (null holes included).
template <typename Fn>
void for_each_argument_value(Node& node, Fn&& fn) {
  for (Argument& arg : node.args) {
    if (auto* v = std::get_if<Value*>(&arg)) {
      fn(*v);
    } else if (auto* vs = std::get_if<std::vector<Value*>>(&arg)) {
      for (Value*& v : *vs) fn(v);
    } else if (auto* ints = std::get_if<std::vector<SymInt>>(&arg)) {
      for (SymInt& s : *ints) fn(s.value);
    }
  }
}

}  // namespace

void Graph::replace_all_uses(Value* from, Value* to) {
  if (from == to) return;
  for (Node* user : from->users) {
    for_each_argument_value(*user, [&](Value*& v) {
      if (v == from) v = to;
    });
  }
  for (Value*& out : outputs_) {
    if (out == from) out = to;
  }
  // Users stay in node order: the executor releases a value after its last user.
  std::vector<Node*> merged;
  merged.reserve(from->users.size() + to->users.size());
  auto by_id = [](const Node* a, const Node* b) { return a->id < b->id; };
  std::merge(from->users.begin(), from->users.end(), to->users.begin(), to->users.end(),
             std::back_inserter(merged), by_id);
  merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
  to->users = std::move(merged);
  from->users.clear();
}

size_t Graph::erase_nodes(const std::function<bool(const Node&)>& erase) {
  std::vector<bool> erased(nodes_.size(), false);
  size_t count = 0;
  for (const Node& node : nodes_) {
    erased[node.id] = erase(node);
    count += erased[node.id] ? 1 : 0;
  }
  if (count == 0) return 0;
  std::deque<Node> kept;
  for (Node& node : nodes_) {
    if (erased[node.id]) continue;
    Node& moved = kept.emplace_back(std::move(node));
    moved.id = static_cast<uint32_t>(kept.size() - 1);
  }
  nodes_ = std::move(kept);
  link();
  return count;
}

size_t Graph::erase_inputs(const std::function<bool(const GraphInput&)>& erase) {
  const size_t before = inputs_.size();
  std::erase_if(inputs_, [&](const GraphInput& in) { return erase(in); });
  return before - inputs_.size();
}

std::vector<uint32_t> Graph::compact_values() {
  std::vector<bool> referenced(values_.size(), false);
  for (const GraphInput& in : inputs_) referenced[in.value->id] = true;
  for (const Value* out : outputs_) referenced[out->id] = true;
  for (const Node& node : nodes_) {
    for (const Value* out : node.outputs) {
      if (out) referenced[out->id] = true;
    }
    for (const Value* in : node.input_values()) referenced[in->id] = true;
  }
  std::vector<uint32_t> new_id(values_.size(), kDroppedValue);
  std::deque<Value> kept;
  std::vector<Value*> moved_to(values_.size(), nullptr);
  for (Value& v : values_) {
    if (!referenced[v.id]) continue;
    const uint32_t old_id = v.id;
    new_id[old_id] = static_cast<uint32_t>(kept.size());
    Value& moved = kept.emplace_back(std::move(v));
    moved.id = new_id[old_id];
    moved_to[old_id] = &moved;
  }
  // Pointers are remapped by old id; the old deque's objects are still there (moved-from) until
  // the swap below, so their ids still index `moved_to`.
  auto remap = [&](Value*& v) {
    if (v) v = moved_to[v->id];
  };
  for (Node& node : nodes_) {
    for_each_argument_value(node, remap);
    for (Value*& out : node.outputs) remap(out);
  }
  for (GraphInput& in : inputs_) remap(in.value);
  for (Value*& out : outputs_) remap(out);
  values_ = std::move(kept);
  by_name_.clear();
  for (Value& v : values_) by_name_[v.name] = &v;
  link();
  return new_id;
}

}  // namespace kiln::ir
