#include "ir/graph.h"

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
