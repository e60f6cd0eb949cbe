#include "frontend/graph_deserializer.h"

#include <limits>
#include <unordered_map>

#include "ir/schema_defaults.h"
#include "ir/sym_expr.h"

namespace kiln::frontend {
namespace {

using ir::BaseType;

// The export schema writes non-finite floats as strings ("-Infinity", "NaN").
Result<double> json_float(const JsonValue& v) {
  if (v.is_string()) {
    const std::string& s = v.as_string();
    if (s == "Infinity" || s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "NaN" || s == "nan") return std::numeric_limits<double>::quiet_NaN();
    return data_loss("expected a float, found the string '", s, "'");
  }
  return v.expect_double();
}

class Deserializer {
 public:
  Deserializer(ir::Graph& graph, bool torch_keeps_signature)
      : graph_(graph), torch_keeps_signature_(torch_keeps_signature) {}

  Status run(const JsonValue& program);

 private:
  Status read_ranges(const JsonValue& program);
  Status read_value_tables(const JsonValue& graph);
  Status read_inputs(const JsonValue& graph, const JsonValue& signature);
  Status read_node(const JsonValue& node);
  Status read_outputs(const JsonValue& graph, const JsonValue& signature);

  Result<ir::SymExprPtr> expr(std::string_view text);
  Result<ir::SymDim> sym_dim(const JsonValue& j);
  Result<ir::Value*> tensor_value(std::string_view name);
  Result<ir::Value*> defined(std::string_view name, std::string_view where);
  Result<ir::Value*> sym_value(const JsonValue& j, ir::ValueKind kind);
  Result<ir::Argument> argument(const JsonValue& arg, const ir::ArgSchema* schema);
  Result<ir::Argument> sym_ints(std::span<const JsonValue> items);
  Result<ir::Value*> define_output(const JsonValue& out, ir::ValueKind kind, std::string_view key);
  Status read_node_outputs(const JsonValue& outputs, ir::Node& node);

  ir::Graph& graph_;
  bool torch_keeps_signature_ = false;
  const JsonValue* tensor_values_ = nullptr;
  const JsonValue* sym_int_values_ = nullptr;
  const JsonValue* sym_float_values_ = nullptr;
  const JsonValue* sym_bool_values_ = nullptr;
  std::unordered_map<std::string, ir::SymExprPtr> expr_cache_;
  std::unordered_map<std::string_view, bool> defined_;  // value name -> has been produced
  std::string where_;  // "node 'x' (aten.add.Tensor)" while reading a node, for messages
};

Result<ir::SymExprPtr> Deserializer::expr(std::string_view text) {
  std::string key(text);
  if (auto it = expr_cache_.find(key); it != expr_cache_.end()) return it->second;
  KILN_ASSIGN_OR_RETURN(ir::SymExprPtr e, ir::parse_sym_expr(text));
  expr_cache_.emplace(std::move(key), e);
  return e;
}

// {"as_int": 3} or {"as_expr": {"expr_str": "...", "hint": {"as_int": 5}}}
Result<ir::SymDim> Deserializer::sym_dim(const JsonValue& j) {
  if (const JsonValue* v = j.find("as_int")) {
    KILN_ASSIGN_OR_RETURN(int64_t n, v->expect_int());
    return ir::SymDim{n, nullptr};
  }
  KILN_ASSIGN_OR_RETURN(const JsonValue* e, j.get("as_expr"));
  KILN_ASSIGN_OR_RETURN(std::string_view text, e->get_string("expr_str"));
  ir::SymDim dim;
  KILN_ASSIGN_OR_RETURN(dim.expr, expr(text));
  if (auto c = dim.expr->constant_value()) {
    return ir::SymDim{*c, nullptr};
  }
  if (const JsonValue* hint = e->find("hint"); hint && hint->is_object()) {
    if (const JsonValue* h = hint->find("as_int"); h && h->is_int()) dim.value = h->as_int();
  }
  return dim;
}

Status Deserializer::read_ranges(const JsonValue& program) {
  const JsonValue* ranges = program.find("range_constraints");
  if (!ranges) return ok_status();
  for (const JsonMember& m : ranges->members()) {
    ir::SymbolRange range;
    if (const JsonValue* lo = m.value.find("min_val"); lo && lo->is_number()) {
      range.min = lo->is_int() ? lo->as_int() : static_cast<int64_t>(lo->as_double());
    }
    // Unbounded ranges are written as null or as a huge number (int_oo).
    if (const JsonValue* hi = m.value.find("max_val"); hi && hi->is_int()) range.max = hi->as_int();
    KILN_ASSIGN_OR_RETURN(ir::SymExprPtr e, expr(m.key), "in range_constraints");
    const std::string* symbol = e->as_symbol();
    graph_.set_symbol_range(symbol ? *symbol : e->to_string(), range);
  }
  return ok_status();
}

Status Deserializer::read_value_tables(const JsonValue& graph) {
  KILN_ASSIGN_OR_RETURN(tensor_values_, graph.get_object("tensor_values"));
  sym_int_values_ = graph.find("sym_int_values");
  sym_float_values_ = graph.find("sym_float_values");
  sym_bool_values_ = graph.find("sym_bool_values");
  return ok_status();
}

// Creates the tensor value `name` from its entry in tensor_values (dtype, sizes).
Result<ir::Value*> Deserializer::tensor_value(std::string_view name) {
  ir::Value* v = graph_.add_value(std::string(name), ir::ValueKind::kTensor);
  const JsonValue* meta = tensor_values_->find(name);
  if (!meta) {
    // Outputs nothing reads (`..._unused_1`) may have no recorded meta; inference supplies it.
    return v;
  }
  KILN_ASSIGN_OR_RETURN(int64_t code, meta->get_int("dtype"), "tensor '", name, "'");
  auto dtype = dtype_from_export_code(code);
  if (!dtype)
    return unsupported("tensor '", name, "' has dtype code ", code,
                       ", which kiln does not support");
  v->dtype = *dtype;
  KILN_ASSIGN_OR_RETURN(auto sizes, meta->get_array("sizes"), "tensor '", name, "'");
  for (const JsonValue& s : sizes) {
    KILN_ASSIGN_OR_RETURN(ir::SymDim d, sym_dim(s), "tensor '", name, "' sizes");
    v->shape.push_back(std::move(d));
  }
  v->has_recorded_meta = true;
  if (const JsonValue* layout = meta->find("layout");
      layout && layout->is_int() && layout->as_int() != 7) {
    return unsupported("tensor '", name, "' has a non-strided layout (code ", layout->as_int(),
                       ")");
  }
  return v;
}

Result<ir::Value*> Deserializer::defined(std::string_view name, std::string_view where) {
  ir::Value* v = graph_.find_value(name);
  if (!v) return data_loss(where, " uses '", name, "', which no earlier node or input defines");
  return v;
}

// {"as_name": "sym_size_int_1"} (a SymInt value) or {"as_int": 3} (a constant; returns null).
Result<ir::Value*> Deserializer::sym_value(const JsonValue& j, ir::ValueKind kind) {
  if (const JsonValue* name = j.find("as_name")) {
    KILN_ASSIGN_OR_RETURN(std::string_view n, name->expect_string());
    return defined(n, where_);
  }
  return nullptr;
}

Result<ir::Argument> Deserializer::sym_ints(std::span<const JsonValue> items) {
  std::vector<ir::SymInt> ints;
  ints.reserve(items.size());
  for (const JsonValue& item : items) {
    if (item.is_int()) {  // as_ints: plain numbers
      ints.push_back(ir::SymInt{item.as_int(), nullptr});
    } else if (const JsonValue* c = item.find("as_int")) {
      KILN_ASSIGN_OR_RETURN(int64_t n, c->expect_int());
      ints.push_back(ir::SymInt{n, nullptr});
    } else {
      KILN_ASSIGN_OR_RETURN(ir::Value * v, sym_value(item, ir::ValueKind::kSymInt));
      if (!v) return data_loss(where_, ": malformed symbolic int ", item.to_json());
      ints.push_back(ir::SymInt{0, v});
    }
  }
  return ir::Argument(std::move(ints));
}

Result<ir::Argument> Deserializer::argument(const JsonValue& arg, const ir::ArgSchema* schema) {
  if (!arg.is_object() || arg.size() != 1)
    return data_loss(where_, ": malformed argument ", arg.to_json());
  const JsonMember& m = arg.members()[0];
  const std::string_view kind = m.key;
  const JsonValue& v = m.value;
  const bool wants_float = schema && schema->base == BaseType::kFloat;
  if (kind == "as_none") return ir::Argument(ir::NoneArg{});
  if (kind == "as_tensor" || kind == "as_optional_tensor") {
    if (v.find("as_none")) return ir::Argument(ir::NoneArg{});
    const JsonValue& t = kind == "as_optional_tensor" ? *v.find("as_tensor") : v;
    KILN_ASSIGN_OR_RETURN(std::string_view name, t.get_string("name"));
    KILN_ASSIGN_OR_RETURN(ir::Value * value, defined(name, where_));
    return ir::Argument(value);
  }
  if (kind == "as_tensors" || kind == "as_optional_tensors") {
    KILN_ASSIGN_OR_RETURN(auto items, v.expect_array());
    std::vector<ir::Value*> values;
    for (const JsonValue& item : items) {
      const JsonValue* t = kind == "as_tensors" ? &item : item.find("as_tensor");
      if (!t) {
        values.push_back(nullptr);  // {"as_none": true} hole of a Tensor?[]
        continue;
      }
      KILN_ASSIGN_OR_RETURN(std::string_view name, t->get_string("name"));
      KILN_ASSIGN_OR_RETURN(ir::Value * value, defined(name, where_));
      values.push_back(value);
    }
    return ir::Argument(std::move(values));
  }
  if (kind == "as_int") {
    KILN_ASSIGN_OR_RETURN(int64_t n, v.expect_int());
    if (wants_float) return ir::Argument(static_cast<double>(n));
    if (schema && schema->is_list) return ir::Argument(std::vector<ir::SymInt>{{n, nullptr}});
    return ir::Argument(n);
  }
  if (kind == "as_float") {
    KILN_ASSIGN_OR_RETURN(double d, json_float(v));
    return ir::Argument(d);
  }
  if (kind == "as_bool") {
    KILN_ASSIGN_OR_RETURN(bool b, v.expect_bool());
    return ir::Argument(b);
  }
  if (kind == "as_string") {
    KILN_ASSIGN_OR_RETURN(std::string_view s, v.expect_string());
    return ir::Argument(std::string(s));
  }
  if (kind == "as_ints" || kind == "as_sym_ints") {
    KILN_ASSIGN_OR_RETURN(auto items, v.expect_array());
    return sym_ints(items);
  }
  if (kind == "as_floats") {
    KILN_ASSIGN_OR_RETURN(auto items, v.expect_array());
    std::vector<double> values;
    for (const JsonValue& item : items) {
      KILN_ASSIGN_OR_RETURN(double d, json_float(item));
      values.push_back(d);
    }
    return ir::Argument(std::move(values));
  }
  if (kind == "as_bools") {
    KILN_ASSIGN_OR_RETURN(auto items, v.expect_array());
    std::vector<bool> values;
    for (const JsonValue& item : items) {
      KILN_ASSIGN_OR_RETURN(bool b, item.expect_bool());
      values.push_back(b);
    }
    return ir::Argument(std::move(values));
  }
  if (kind == "as_sym_int" || kind == "as_sym_float" || kind == "as_sym_bool") {
    if (const JsonValue* c = v.find("as_int")) {
      KILN_ASSIGN_OR_RETURN(int64_t n, c->expect_int());
      return wants_float ? ir::Argument(static_cast<double>(n)) : ir::Argument(n);
    }
    if (const JsonValue* c = v.find("as_float")) {
      KILN_ASSIGN_OR_RETURN(double d, json_float(*c));
      return ir::Argument(d);
    }
    if (const JsonValue* c = v.find("as_bool")) {
      KILN_ASSIGN_OR_RETURN(bool b, c->expect_bool());
      return ir::Argument(b);
    }
    KILN_ASSIGN_OR_RETURN(ir::Value * value, sym_value(v, ir::ValueKind::kSymInt));
    if (!value) return data_loss(where_, ": malformed symbolic argument ", arg.to_json());
    return ir::Argument(value);
  }
  if (kind == "as_scalar_type") {
    KILN_ASSIGN_OR_RETURN(int64_t code, v.expect_int());
    auto dtype = dtype_from_export_code(code);
    if (!dtype) return unsupported(where_, ": dtype code ", code, " is not supported");
    return ir::Argument(*dtype);
  }
  if (kind == "as_memory_format") {
    KILN_ASSIGN_OR_RETURN(int64_t code, v.expect_int());
    if (code < 1 || code > 4) return unsupported(where_, ": memory format code ", code);
    return ir::Argument(static_cast<ir::MemoryFormat>(code - 1));
  }
  if (kind == "as_layout") {
    KILN_ASSIGN_OR_RETURN(int64_t code, v.expect_int());
    if (code != 7)
      return unsupported(where_, ": only the strided layout is supported, found code ", code);
    return ir::Argument(ir::NoneArg{});  // strided is the only layout: nothing to carry
  }
  if (kind == "as_device") {
    ir::Device device;
    KILN_ASSIGN_OR_RETURN(std::string_view type, v.get_string("type"));
    device.type = std::string(type);
    if (const JsonValue* index = v.find("index"); index && index->is_int()) {
      device.index = static_cast<int>(index->as_int());
    }
    return ir::Argument(std::move(device));
  }
  return unsupported(where_, ": arguments of kind '", kind, "' (control flow, custom objects, ",
                     "operators) are not supported");
}

Result<ir::Value*> Deserializer::define_output(const JsonValue& out, ir::ValueKind kind,
                                               std::string_view key) {
  std::string_view name;
  if (kind == ir::ValueKind::kTensor) {
    KILN_ASSIGN_OR_RETURN(name, out.get_string("name"));
  } else {
    KILN_ASSIGN_OR_RETURN(name, out.get_string("as_name"));
  }
  if (graph_.find_value(name)) return data_loss(where_, ": value '", name, "' is defined twice");
  if (kind == ir::ValueKind::kTensor) return tensor_value(name);
  ir::Value* v = graph_.add_value(std::string(name), kind);
  const JsonValue* table = kind == ir::ValueKind::kSymInt     ? sym_int_values_
                           : kind == ir::ValueKind::kSymFloat ? sym_float_values_
                                                              : sym_bool_values_;
  if (const JsonValue* rec = table ? table->find(name) : nullptr) {
    if (const JsonValue* e = rec->find("as_expr")) {
      if (const JsonValue* text = e->find("expr_str"); text && text->is_string()) {
        auto parsed = expr(text->as_string());
        if (parsed.ok()) v->expr = *parsed;  // a recorded expression is only used for checking
      }
    }
  }
  return v;
}

Status Deserializer::read_node_outputs(const JsonValue& outputs, ir::Node& node) {
  KILN_ASSIGN_OR_RETURN(auto items, outputs.expect_array());
  for (const JsonValue& out : items) {
    if (!out.is_object() || out.size() != 1) return data_loss(where_, ": malformed output");
    const JsonMember& m = out.members()[0];
    if (m.key == "as_tensor") {
      KILN_ASSIGN_OR_RETURN(ir::Value * v, define_output(m.value, ir::ValueKind::kTensor, m.key));
      node.outputs.push_back(v);
    } else if (m.key == "as_tensors") {
      KILN_ASSIGN_OR_RETURN(auto list, m.value.expect_array());
      for (const JsonValue& t : list) {
        KILN_ASSIGN_OR_RETURN(ir::Value * v, define_output(t, ir::ValueKind::kTensor, m.key));
        node.outputs.push_back(v);
      }
    } else if (m.key == "as_sym_int" || m.key == "as_sym_float" || m.key == "as_sym_bool") {
      const ir::ValueKind kind = m.key == "as_sym_int"     ? ir::ValueKind::kSymInt
                                 : m.key == "as_sym_float" ? ir::ValueKind::kSymFloat
                                                           : ir::ValueKind::kSymBool;
      KILN_ASSIGN_OR_RETURN(ir::Value * v, define_output(m.value, kind, m.key));
      node.outputs.push_back(v);
    } else if (m.key == "as_none") {
      node.outputs.push_back(nullptr);
    } else {
      return unsupported(where_, ": outputs of kind '", m.key, "' are not supported");
    }
  }
  return ok_status();
}

Status Deserializer::read_node(const JsonValue& node) {
  KILN_ASSIGN_OR_RETURN(std::string_view target, node.get_string("target"));
  std::string_view name = target;
  if (const JsonValue* n = node.find("name"); n && n->is_string()) name = n->as_string();
  auto key = ir::find_op(target);
  if (!key) {
    return unsupported("node '", name, "' calls ", target, ", which is not an op kiln knows ",
                       "(kiln reads functional ATen ops and torch.export's symbolic operators)");
  }
  ir::Node* ir_node = graph_.add_node(std::string(name), *key);
  where_ = str_cat("node '", name, "' (", ir::op_name(*key), ")");
  if (const JsonValue* meta = node.find("metadata")) {
    if (const JsonValue* trace = meta->find("stack_trace"); trace && trace->is_string()) {
      ir_node->stack_trace = trace->as_string();
    }
  }
  KILN_ASSIGN_OR_RETURN(auto inputs, node.get_array("inputs"), where_);
  const ir::OpSchema& schema = ir::op_schema(*key);
  const auto args = schema.args();
  std::vector<const JsonValue*> given(args.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(std::string_view arg_name, inputs[i].get_string("name"), where_);
    size_t pos = args.size();
    for (size_t a = 0; a < args.size(); ++a) {
      if (arg_name == args[a].name) pos = a;
    }
    // The Python operators' argument names are not part of any schema: take them in order.
    if (pos == args.size() && schema.has_tag(ir::kTagPythonOp) && i < args.size()) pos = i;
    if (pos == args.size()) {
      return data_loss(where_, ": argument '", arg_name, "' is not in the schema of ",
                       schema.qualified_name);
    }
    KILN_ASSIGN_OR_RETURN(given[pos], inputs[i].get("arg"), where_);
  }
  ir_node->args.reserve(args.size());
  for (size_t a = 0; a < args.size(); ++a) {
    if (given[a]) {
      KILN_ASSIGN_OR_RETURN(ir::Argument arg, argument(*given[a], &args[a]), "argument '",
                            args[a].name, "'");
      ir_node->args.push_back(std::move(arg));
    } else {
      KILN_ASSIGN_OR_RETURN(ir::Argument arg, ir::default_argument(args[a]), where_);
      ir_node->args.push_back(std::move(arg));
    }
  }
  KILN_ASSIGN_OR_RETURN(const JsonValue* outputs, node.get("outputs"), where_);
  KILN_RETURN_IF_ERROR(read_node_outputs(*outputs, *ir_node));
  // Serialized nodes carry no name of their own: take the first output's, which is the FX node's
  // name for single-output nodes (and its first getitem's otherwise), so partitions and messages
  // name nodes as the user's graph does.
  if (!node.find("name")) {
    for (const ir::Value* out : ir_node->outputs) {
      if (out) {
        ir_node->name = out->name;
        break;
      }
    }
  }
  return ok_status();
}

Status Deserializer::read_inputs(const JsonValue& graph, const JsonValue& signature) {
  KILN_ASSIGN_OR_RETURN(auto specs, signature.get_array("input_specs"), "graph signature");
  for (const JsonValue& spec : specs) {
    if (!spec.is_object() || spec.size() != 1) return data_loss("malformed input spec");
    const JsonMember& m = spec.members()[0];
    ir::InputKind kind;
    std::string_view target_key;
    if (m.key == "parameter") {
      kind = ir::InputKind::kParameter;
      target_key = "parameter_name";
    } else if (m.key == "buffer") {
      kind = ir::InputKind::kBuffer;
      target_key = "buffer_name";
    } else if (m.key == "tensor_constant") {
      kind = ir::InputKind::kConstant;
      target_key = "tensor_constant_name";
    } else if (m.key == "user_input") {
      kind = ir::InputKind::kUserInput;
    } else {
      return unsupported("graph inputs of kind '", m.key,
                         "' (custom objects, tokens) are not supported");
    }
    KILN_ASSIGN_OR_RETURN(const JsonValue* arg, m.value.get("arg"));
    // User inputs hold an Argument ({"as_tensor": {"name": ..}}); the others a TensorArgument.
    const JsonValue* tensor = kind == ir::InputKind::kUserInput ? arg->find("as_tensor") : arg;
    if (!tensor) {
      return unsupported("user input ", arg->to_json(),
                         " is not a tensor; only tensor inputs are supported");
    }
    KILN_ASSIGN_OR_RETURN(std::string_view name, tensor->get_string("name"));
    KILN_ASSIGN_OR_RETURN(ir::Value * v, tensor_value(name));
    std::string target;
    if (!target_key.empty()) {
      KILN_ASSIGN_OR_RETURN(std::string_view t, m.value.get_string(target_key));
      target = std::string(t);
    }
    graph_.add_input(v, kind, std::move(target));
  }
  return ok_status();
}

Status Deserializer::read_outputs(const JsonValue& graph, const JsonValue& signature) {
  KILN_ASSIGN_OR_RETURN(auto specs, signature.get_array("output_specs"), "graph signature");
  for (const JsonValue& spec : specs) {
    if (!spec.is_object() || spec.size() != 1) return data_loss("malformed output spec");
    const JsonMember& m = spec.members()[0];
    if (m.key == "buffer_mutation") {
      std::string buffer = "?";
      if (const JsonValue* b = m.value.find("buffer_name"); b && b->is_string())
        buffer = b->as_string();
      return unsupported("the program mutates buffer '", buffer,
                         "'; buffer mutation is not supported yet (export the model in eval mode, "
                         "or make the update functional)");
    }
    const bool mutation = m.key == "user_input_mutation";
    if (m.key != "user_output" && !(mutation && torch_keeps_signature_)) {
      return unsupported("program outputs of kind '", m.key, "' are not supported",
                         mutation ? " in an engine that runs on its own (kiln.compile's module "
                                    "carries them out)"
                                  : "");
    }
    KILN_ASSIGN_OR_RETURN(const JsonValue* arg, m.value.get("arg"));
    if (!arg->is_object() || arg->size() != 1)
      return data_loss("malformed output ", arg->to_json());
    const JsonMember& a = arg->members()[0];
    if (a.key == "as_none" && torch_keeps_signature_) continue;
    // A user output's arg is an Argument ({"as_tensor": {"name"}}); a mutation's a TensorArgument.
    const JsonValue* name = mutation              ? arg->find("name")
                            : a.key == "as_tensor" ? a.value.find("name")
                                                   : a.value.find("as_name");
    if (!name || !name->is_string()) {
      return unsupported("program output ", arg->to_json(), " is a constant; only tensor and ",
                         "symbolic outputs are supported");
    }
    KILN_ASSIGN_OR_RETURN(ir::Value * v, defined(name->as_string(), "the program's output"));
    graph_.add_output(v);
  }
  return ok_status();
}

Status Deserializer::run(const JsonValue& program) {
  KILN_ASSIGN_OR_RETURN(const JsonValue* gm, program.get_object("graph_module"));
  KILN_ASSIGN_OR_RETURN(const JsonValue* graph, gm->get_object("graph"));
  KILN_ASSIGN_OR_RETURN(const JsonValue* signature, gm->get_object("signature"));
  KILN_RETURN_IF_ERROR(read_ranges(program));
  KILN_RETURN_IF_ERROR(read_value_tables(*graph));
  KILN_RETURN_IF_ERROR(read_inputs(*graph, *signature));
  KILN_ASSIGN_OR_RETURN(auto nodes, graph->get_array("nodes"));
  for (const JsonValue& node : nodes) KILN_RETURN_IF_ERROR(read_node(node));
  where_.clear();
  KILN_RETURN_IF_ERROR(read_outputs(*graph, *signature));
  graph_.link();
  return ok_status();
}

}  // namespace

Status deserialize_graph(const JsonValue& program, ir::Graph& graph,
                         bool torch_keeps_signature) {
  if (const JsonValue* version = program.find("schema_version")) {
    KILN_ASSIGN_OR_RETURN(int64_t major, version->get_int("major"), "schema_version");
    if (major != kSchemaMajorVersion) {
      return unsupported("the program uses export schema version ", major, "; kiln reads version ",
                         kSchemaMajorVersion, " (archives of torch.export.save in PyTorch >= 2.9)");
    }
  }
  return Deserializer(graph, torch_keeps_signature).run(program);
}

}  // namespace kiln::frontend
