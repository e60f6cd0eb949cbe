#include "format/graph_codec.h"

#include <algorithm>
#include <unordered_map>

#include "format/enum_codec.h"
#include "ir/sym_expr.h"

namespace kiln::format {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

constexpr int32_t kNoValue = -1;

// ---------------------------------------------------------------------------------------------
// Encoding

class GraphEncoder {
 public:
  GraphEncoder(FlatBufferBuilder& fbb, const ir::Graph& graph) : fbb_(fbb), graph_(graph) {}

  Result<Offset<fb::Graph>> encode();

 private:
  Result<int32_t> ref(const ir::Value* v, std::string_view where) const;
  int32_t expr_index(const ir::SymExprPtr& expr);
  Result<Offset<fb::Value>> value(const ir::Value& v);
  Result<std::pair<fb::Argument, Offset<void>>> argument(const ir::Argument& arg,
                                                         std::string_view where);
  Result<Offset<fb::Node>> node(const ir::Node& n);

  FlatBufferBuilder& fbb_;
  const ir::Graph& graph_;
  std::vector<std::string> exprs_;
  std::unordered_map<std::string, int32_t> expr_ids_;
};

Result<int32_t> GraphEncoder::ref(const ir::Value* v, std::string_view where) const {
  if (v == nullptr) return invalid_argument(where, ": expected a value, found null");
  if (v->id >= graph_.num_values() || &graph_.values()[v->id] != v) {
    return invalid_argument(where, ": value '", v->name, "' (id ", v->id,
                            ") is not a value of this graph");
  }
  return static_cast<int32_t>(v->id);
}

int32_t GraphEncoder::expr_index(const ir::SymExprPtr& expr) {
  if (!expr) return kNoValue;
  std::string text = expr->to_string();
  auto [it, inserted] = expr_ids_.emplace(text, static_cast<int32_t>(exprs_.size()));
  if (inserted) exprs_.push_back(std::move(text));
  return it->second;
}

Result<Offset<fb::Value>> GraphEncoder::value(const ir::Value& v) {
  std::vector<fb::Dim> dims;
  dims.reserve(v.shape.size());
  for (const ir::SymDim& d : v.shape) dims.emplace_back(d.value, expr_index(d.expr));
  const int32_t expr = expr_index(v.expr);
  auto name = fbb_.CreateString(v.name);
  auto shape = fbb_.CreateVectorOfStructs(dims);
  return fb::CreateValue(fbb_, name, to_fb(v.kind), to_fb(v.dtype), shape, v.has_recorded_meta,
                         expr);
}

Result<std::pair<fb::Argument, Offset<void>>> GraphEncoder::argument(const ir::Argument& arg,
                                                                     std::string_view where) {
  using Out = std::pair<fb::Argument, Offset<void>>;
  if (std::holds_alternative<ir::NoneArg>(arg)) {
    return Out{fb::Argument::NoneArg, fb::CreateNoneArg(fbb_).Union()};
  }
  if (auto* v = std::get_if<ir::Value*>(&arg)) {
    KILN_ASSIGN_OR_RETURN(int32_t id, ref(*v, where));
    return Out{fb::Argument::ValueArg, fb::CreateValueArg(fbb_, id).Union()};
  }
  if (auto* vs = std::get_if<std::vector<ir::Value*>>(&arg)) {
    std::vector<int32_t> ids;
    for (const ir::Value* v : *vs) {
      if (v == nullptr) {
        ids.push_back(kNoValue);
        continue;
      }
      KILN_ASSIGN_OR_RETURN(int32_t id, ref(v, where));
      ids.push_back(id);
    }
    return Out{fb::Argument::ValueListArg,
               fb::CreateValueListArg(fbb_, fbb_.CreateVector(ids)).Union()};
  }
  if (auto* x = std::get_if<int64_t>(&arg)) {
    return Out{fb::Argument::IntArg, fb::CreateIntArg(fbb_, *x).Union()};
  }
  if (auto* x = std::get_if<double>(&arg)) {
    return Out{fb::Argument::FloatArg, fb::CreateFloatArg(fbb_, *x).Union()};
  }
  if (auto* x = std::get_if<bool>(&arg)) {
    return Out{fb::Argument::BoolArg, fb::CreateBoolArg(fbb_, *x).Union()};
  }
  if (auto* s = std::get_if<std::string>(&arg)) {
    return Out{fb::Argument::StringArg,
               fb::CreateStringArg(fbb_, fbb_.CreateSharedString(*s)).Union()};
  }
  if (auto* ints = std::get_if<std::vector<ir::SymInt>>(&arg)) {
    std::vector<fb::SymIntItem> items;
    for (const ir::SymInt& s : *ints) {
      int32_t id = kNoValue;
      if (s.value) {
        KILN_ASSIGN_OR_RETURN(id, ref(s.value, where));
      }
      items.emplace_back(s.value ? 0 : s.constant, id);
    }
    return Out{fb::Argument::SymIntListArg,
               fb::CreateSymIntListArg(fbb_, fbb_.CreateVectorOfStructs(items)).Union()};
  }
  if (auto* xs = std::get_if<std::vector<double>>(&arg)) {
    return Out{fb::Argument::FloatListArg,
               fb::CreateFloatListArg(fbb_, fbb_.CreateVector(*xs)).Union()};
  }
  if (auto* xs = std::get_if<std::vector<bool>>(&arg)) {
    std::vector<uint8_t> bytes(xs->begin(), xs->end());
    return Out{fb::Argument::BoolListArg,
               fb::CreateBoolListArg(fbb_, fbb_.CreateVector(bytes)).Union()};
  }
  if (auto* d = std::get_if<DType>(&arg)) {
    return Out{fb::Argument::DTypeArg, fb::CreateDTypeArg(fbb_, to_fb(*d)).Union()};
  }
  if (auto* f = std::get_if<ir::MemoryFormat>(&arg)) {
    return Out{fb::Argument::MemoryFormatArg, fb::CreateMemoryFormatArg(fbb_, to_fb(*f)).Union()};
  }
  const auto& device = std::get<ir::Device>(arg);
  return Out{fb::Argument::DeviceArg,
             fb::CreateDeviceArg(fbb_, fbb_.CreateSharedString(device.type), device.index).Union()};
}

Result<Offset<fb::Node>> GraphEncoder::node(const ir::Node& n) {
  if (n.op == ir::OpKey::kInvalid || n.op >= ir::OpKey::kCount) {
    return invalid_argument("node '", n.name, "': expected an op, found none");
  }
  std::vector<Offset<fb::Arg>> args;
  for (size_t i = 0; i < n.args.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(auto arg,
                          argument(n.args[i], str_cat("node '", n.name, "' argument ", i)));
    args.push_back(fb::CreateArg(fbb_, arg.first, arg.second));
  }
  std::vector<int32_t> outputs;
  for (const ir::Value* out : n.outputs) {
    int32_t id = kNoValue;
    if (out) {
      KILN_ASSIGN_OR_RETURN(id, ref(out, str_cat("node '", n.name, "' output")));
    }
    outputs.push_back(id);
  }
  auto name = fbb_.CreateString(n.name);
  auto op = fbb_.CreateSharedString(n.schema().target);
  auto args_vec = fbb_.CreateVector(args);
  auto outputs_vec = fbb_.CreateVector(outputs);
  Offset<flatbuffers::String> trace;
  if (!n.stack_trace.empty()) trace = fbb_.CreateSharedString(n.stack_trace);
  return fb::CreateNode(fbb_, name, op, args_vec, outputs_vec, trace);
}

Result<Offset<fb::Graph>> GraphEncoder::encode() {
  std::vector<Offset<fb::Value>> values;
  values.reserve(graph_.num_values());
  for (const ir::Value& v : graph_.values()) {
    KILN_ASSIGN_OR_RETURN(auto offset, value(v));
    values.push_back(offset);
  }
  std::vector<Offset<fb::Node>> nodes;
  nodes.reserve(graph_.nodes().size());
  for (const ir::Node& n : graph_.nodes()) {
    KILN_ASSIGN_OR_RETURN(auto offset, node(n));
    nodes.push_back(offset);
  }
  std::vector<Offset<fb::GraphInput>> inputs;
  for (const ir::GraphInput& in : graph_.inputs()) {
    KILN_ASSIGN_OR_RETURN(int32_t id, ref(in.value, "graph input"));
    inputs.push_back(fb::CreateGraphInput(fbb_, id, to_fb(in.kind), fbb_.CreateString(in.target)));
  }
  std::vector<int32_t> outputs;
  for (const ir::Value* out : graph_.outputs()) {
    KILN_ASSIGN_OR_RETURN(int32_t id, ref(out, "graph output"));
    outputs.push_back(id);
  }
  // The ranges live in a hash map: sorted, so that one graph always gives the same bytes.
  std::vector<std::pair<std::string, ir::SymbolRange>> ranges(graph_.symbol_ranges().begin(),
                                                              graph_.symbol_ranges().end());
  std::sort(ranges.begin(), ranges.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Offset<fb::SymbolRange>> range_offsets;
  for (const auto& [symbol, range] : ranges) {
    range_offsets.push_back(
        fb::CreateSymbolRange(fbb_, fbb_.CreateString(symbol), range.min, range.max));
  }
  auto values_vec = fbb_.CreateVector(values);
  auto nodes_vec = fbb_.CreateVector(nodes);
  auto inputs_vec = fbb_.CreateVector(inputs);
  auto outputs_vec = fbb_.CreateVector(outputs);
  auto ranges_vec = fbb_.CreateVector(range_offsets);
  auto exprs_vec = fbb_.CreateVectorOfStrings(exprs_);
  return fb::CreateGraph(fbb_, values_vec, nodes_vec, inputs_vec, outputs_vec, ranges_vec,
                         exprs_vec);
}

// ---------------------------------------------------------------------------------------------
// Decoding

class GraphDecoder {
 public:
  GraphDecoder(const fb::Graph& table, ir::Graph& graph) : table_(table), graph_(graph) {}

  Status decode();

 private:
  Status exprs();
  Status values();
  Status node(const fb::Node& n, size_t index);
  Result<ir::Argument> argument(const fb::Node& n, size_t i, std::string_view where);
  Result<ir::Value*> ref(int32_t id, std::string_view where, bool allow_none = false) const;
  Result<ir::SymExprPtr> expr(int32_t index, std::string_view where) const;

  const fb::Graph& table_;
  ir::Graph& graph_;
  std::vector<ir::SymExprPtr> exprs_;
  std::vector<ir::Value*> values_;
};

Result<ir::Value*> GraphDecoder::ref(int32_t id, std::string_view where, bool allow_none) const {
  if (id == kNoValue && allow_none) return nullptr;
  if (id < 0 || static_cast<size_t>(id) >= values_.size()) {
    return data_loss(where, ": expected a value id in [0, ", values_.size(), "), found ", id);
  }
  return values_[id];
}

Result<ir::SymExprPtr> GraphDecoder::expr(int32_t index, std::string_view where) const {
  if (index == kNoValue) return ir::SymExprPtr();
  if (index < 0 || static_cast<size_t>(index) >= exprs_.size()) {
    return data_loss(where, ": expected an expression index in [0, ", exprs_.size(),
                     ") or -1, found ", index);
  }
  return exprs_[index];
}

Status GraphDecoder::exprs() {
  if (!table_.exprs()) return ok_status();
  for (flatbuffers::uoffset_t i = 0; i < table_.exprs()->size(); ++i) {
    std::string_view text = fb_str(table_.exprs()->Get(i));
    auto parsed = ir::parse_sym_expr(text);
    if (!parsed.ok()) {
      return data_loss("expression ", i, " '", text, "': ", parsed.status().message());
    }
    exprs_.push_back(std::move(parsed).value());
  }
  return ok_status();
}

Status GraphDecoder::values() {
  if (!table_.values()) return ok_status();
  values_.reserve(table_.values()->size());
  for (const fb::Value* v : *table_.values()) {
    const std::string where = str_cat("value ", values_.size());
    auto kind = from_fb(v->kind());
    if (!kind) {
      return unsupported(where, ": ", unknown_code("value kind", v->kind()));
    }
    auto dtype = from_fb(v->dtype());
    if (!dtype)
      return unsupported(where, ": ", unknown_code("dtype", v->dtype(), fb::DType::Float32));
    ir::Value* value = graph_.add_value(std::string(fb_str(v->name())), *kind);
    value->dtype = *dtype;
    value->has_recorded_meta = v->has_recorded_meta();
    if (v->shape()) {
      for (const fb::Dim* d : *v->shape()) {
        KILN_ASSIGN_OR_RETURN(ir::SymExprPtr e, expr(d->expr(), str_cat(where, " shape")));
        value->shape.push_back(ir::SymDim{d->value(), std::move(e)});
      }
    }
    KILN_ASSIGN_OR_RETURN(value->expr, expr(v->expr(), where));
    values_.push_back(value);
  }
  return ok_status();
}

Result<ir::Argument> GraphDecoder::argument(const fb::Node& n, size_t i, std::string_view where) {
  const fb::Arg* wrapper = n.args()->Get(static_cast<flatbuffers::uoffset_t>(i));
  const auto type = wrapper->value_type();
  const void* arg = wrapper->value();
  switch (type) {
    case fb::Argument::NONE: break;
    case fb::Argument::NoneArg: return ir::Argument(ir::NoneArg{});
    case fb::Argument::ValueArg: {
      KILN_ASSIGN_OR_RETURN(ir::Value * v,
                            ref(static_cast<const fb::ValueArg*>(arg)->value(), where));
      return ir::Argument(v);
    }
    case fb::Argument::ValueListArg: {
      std::vector<ir::Value*> values;
      if (auto* ids = static_cast<const fb::ValueListArg*>(arg)->values()) {
        for (int32_t id : *ids) {
          KILN_ASSIGN_OR_RETURN(ir::Value * v, ref(id, where, /*allow_none=*/true));
          values.push_back(v);
        }
      }
      return ir::Argument(std::move(values));
    }
    case fb::Argument::IntArg: return ir::Argument(static_cast<const fb::IntArg*>(arg)->value());
    case fb::Argument::FloatArg:
      return ir::Argument(static_cast<const fb::FloatArg*>(arg)->value());
    case fb::Argument::BoolArg: return ir::Argument(static_cast<const fb::BoolArg*>(arg)->value());
    case fb::Argument::StringArg:
      return ir::Argument(std::string(fb_str(static_cast<const fb::StringArg*>(arg)->value())));
    case fb::Argument::SymIntListArg: {
      std::vector<ir::SymInt> ints;
      if (auto* items = static_cast<const fb::SymIntListArg*>(arg)->items()) {
        for (const fb::SymIntItem* item : *items) {
          KILN_ASSIGN_OR_RETURN(ir::Value * v, ref(item->value(), where, /*allow_none=*/true));
          ints.push_back(ir::SymInt{item->constant(), v});
        }
      }
      return ir::Argument(std::move(ints));
    }
    case fb::Argument::FloatListArg: {
      auto* xs = static_cast<const fb::FloatListArg*>(arg)->values();
      return ir::Argument(xs ? std::vector<double>(xs->begin(), xs->end()) : std::vector<double>());
    }
    case fb::Argument::BoolListArg: {
      std::vector<bool> bools;
      if (auto* xs = static_cast<const fb::BoolListArg*>(arg)->values()) {
        for (uint8_t x : *xs) bools.push_back(x != 0);
      }
      return ir::Argument(std::move(bools));
    }
    case fb::Argument::DTypeArg: {
      auto code = static_cast<const fb::DTypeArg*>(arg)->value();
      auto dtype = from_fb(code);
      if (!dtype) return unsupported(where, ": ", unknown_code("dtype", code, fb::DType::Float32));
      return ir::Argument(*dtype);
    }
    case fb::Argument::MemoryFormatArg: {
      auto code = static_cast<const fb::MemoryFormatArg*>(arg)->value();
      auto format = from_fb(code);
      if (!format) {
        return unsupported(where, ": ", unknown_code("memory format", code));
      }
      return ir::Argument(*format);
    }
    case fb::Argument::DeviceArg: {
      auto* d = static_cast<const fb::DeviceArg*>(arg);
      return ir::Argument(ir::Device{std::string(fb_str(d->type())), d->index()});
    }
    default:
      return unsupported(where, ": ", unknown_code("argument kind", type, fb::Argument::NoneArg));
  }
  return data_loss(where, ": expected an argument, found none");
}

Status GraphDecoder::node(const fb::Node& n, size_t index) {
  const std::string name(fb_str(n.name()));
  const std::string_view target = fb_str(n.op());
  auto op = ir::find_op(target);
  if (!op) {
    if (target.empty())
      return data_loss("node ", index, " '", name, "': expected an op, found none");
    return unsupported("node '", name, "' uses op '", target,
                       "', which this kiln does not know: the engine needs a newer kiln");
  }
  ir::Node* node = graph_.add_node(name, *op);
  node->stack_trace = std::string(fb_str(n.stack_trace()));
  const size_t num_args = n.args() ? n.args()->size() : 0;
  const size_t expected = node->schema().args().size();
  if (num_args != expected) {
    return unsupported("node '", name, "' (", ir::op_name(*op), "): expected ", expected,
                       " arguments (this kiln's schema), found ", num_args,
                       ": the engine was built with a different op table");
  }
  for (size_t i = 0; i < num_args; ++i) {
    KILN_ASSIGN_OR_RETURN(ir::Argument arg,
                          argument(n, i, str_cat("node '", name, "' argument ", i)));
    node->args.push_back(std::move(arg));
  }
  if (n.outputs()) {
    for (int32_t id : *n.outputs()) {
      KILN_ASSIGN_OR_RETURN(ir::Value * v,
                            ref(id, str_cat("node '", name, "' output"), /*allow_none=*/true));
      node->outputs.push_back(v);
    }
  }
  return ok_status();
}

Status GraphDecoder::decode() {
  KILN_RETURN_IF_ERROR(exprs());
  KILN_RETURN_IF_ERROR(values());
  if (table_.nodes()) {
    for (flatbuffers::uoffset_t i = 0; i < table_.nodes()->size(); ++i) {
      KILN_RETURN_IF_ERROR(node(*table_.nodes()->Get(i), i));
    }
  }
  if (table_.inputs()) {
    for (const fb::GraphInput* in : *table_.inputs()) {
      KILN_ASSIGN_OR_RETURN(ir::Value * v, ref(in->value(), "graph input"));
      auto kind = from_fb(in->kind());
      if (!kind) {
        return unsupported("graph input '", v->name, "': ", unknown_code("input kind", in->kind()));
      }
      graph_.add_input(v, *kind, std::string(fb_str(in->target())));
    }
  }
  if (table_.outputs()) {
    for (int32_t id : *table_.outputs()) {
      KILN_ASSIGN_OR_RETURN(ir::Value * v, ref(id, "graph output"));
      graph_.add_output(v);
    }
  }
  if (table_.symbol_ranges()) {
    for (const fb::SymbolRange* r : *table_.symbol_ranges()) {
      const std::string symbol(fb_str(r->symbol()));
      if (symbol.empty()) return data_loss("symbol range: expected a symbol name, found none");
      if (r->min() > r->max()) {
        return data_loss("symbol '", symbol, "': expected min <= max, found [", r->min(), ", ",
                         r->max(), "]");
      }
      graph_.set_symbol_range(symbol, ir::SymbolRange{r->min(), r->max()});
    }
  }
  return ok_status();
}

}  // namespace

Result<flatbuffers::Offset<fb::Graph>> encode_graph(flatbuffers::FlatBufferBuilder& fbb,
                                                    const ir::Graph& graph) {
  return GraphEncoder(fbb, graph).encode();
}

Status decode_graph(const fb::Graph& table, ir::Graph& graph) {
  return GraphDecoder(table, graph).decode();
}

}  // namespace kiln::format
