#include "ir/verifier.h"

#include <algorithm>

#include "ir/shape_inference.h"
#include "ir/sym_expr.h"

namespace kiln::ir {

Status verify(const Graph& graph) {
  std::vector<bool> defined(graph.num_values(), false);
  for (const GraphInput& in : graph.inputs()) {
    if (defined[in.value->id])
      return data_loss("graph input '", in.value->name, "' is listed twice");
    defined[in.value->id] = true;
  }
  for (const Node& node : graph.nodes()) {
    if (node.op == OpKey::kInvalid) return internal_error("node '", node.name, "' has no op");
    if (node.args.size() != node.schema().args().size()) {
      return internal_error("node '", node.name, "' has ", node.args.size(),
                            " arguments, its schema ", node.schema().args().size());
    }
    for (const Value* in : node.input_values()) {
      if (!defined[in->id]) {
        return data_loss("node '", node.name, "' reads '", in->name, "' before it is defined");
      }
    }
    for (const Value* out : node.outputs) {
      if (!out) continue;
      if (defined[out->id]) return data_loss("value '", out->name, "' is defined twice");
      defined[out->id] = true;
    }
  }
  for (const Value* out : graph.outputs()) {
    if (!defined[out->id]) return data_loss("program output '", out->name, "' is never defined");
  }
  return ok_status();
}

namespace {

SymBindings hint_bindings(const Graph& graph) {
  SymBindings bindings;
  for (const GraphInput* in : graph.user_inputs()) {
    for (const SymDim& dim : in->value->shape) {
      if (dim.is_static() || dim.expr->evaluate(bindings).ok()) continue;
      auto solved = dim.expr->solve_for_unbound(dim.value, bindings);
      if (solved.ok()) bindings.set(solved->first, solved->second);
    }
  }
  return bindings;
}

// The recorded shape, made concrete with the hints; nullopt if some dim cannot be evaluated.
std::optional<Shape> concrete_shape(const Value& v, const SymBindings& bindings) {
  Shape shape;
  for (const SymDim& dim : v.shape) {
    if (dim.is_static()) {
      shape.push_back(dim.value);
      continue;
    }
    auto value = dim.expr->evaluate(bindings);
    if (!value.ok()) return std::nullopt;
    shape.push_back(*value);
  }
  return shape;
}

std::string recorded_to_string(const Value& v) {
  std::string dims;
  for (size_t i = 0; i < v.shape.size(); ++i)
    dims += str_cat(i ? ", " : "", sym_dim_to_string(v.shape[i]));
  return str_cat(dtype_name(v.dtype), "[", dims, "]");
}

Status compare(const Node& node, const Value& v, const RtValue& inferred, const SymBindings& b) {
  if (v.kind != ValueKind::kTensor || !v.has_recorded_meta) return ok_status();
  if (inferred.kind != RtValue::Kind::kTensor) {
    return internal_error("shape inference gave no tensor for output '", v.name, "' of node '",
                          node.name, "' (", op_name(node.op), ")");
  }
  auto recorded = concrete_shape(v, b);
  if (!recorded) return ok_status();  // data-dependent dims: nothing to compare with
  if (inferred.tensor.dtype() != v.dtype || inferred.tensor.sizes() != *recorded) {
    return internal_error("shape inference disagrees with the program at node '", node.name, "' (",
                          op_name(node.op), "): kiln infers ", inferred.tensor.description(),
                          ", the program records ", recorded_to_string(v), " = ",
                          dtype_name(v.dtype), shape_to_string(*recorded));
  }
  return ok_status();
}

}  // namespace

Status check_inference(const Program& program) {
  const Graph& graph = program.graph;
  KILN_RETURN_IF_ERROR(shape_inference_status());
  const SymBindings bindings = hint_bindings(graph);
  std::vector<RtValue> slots(graph.num_values());
  for (const GraphInput& in : graph.inputs()) {
    auto shape = concrete_shape(*in.value, bindings);
    if (!shape) continue;
    slots[in.value->id] = RtValue::of(Tensor::meta(in.value->dtype, std::move(*shape)));
  }
  const OpFunctionTable& table = shape_inference_table();
  for (const Node& node : graph.nodes()) {
    OpFn infer = table.find(node.op);
    bool inputs_known = infer != nullptr;
    for (const Value* in : node.input_values()) {
      inputs_known = inputs_known && slots[in->id].kind != RtValue::Kind::kEmpty;
    }
    if (!inputs_known) continue;
    OpContext ctx(node, slots);
    Status inferred = check_complex_values(node);
    if (inferred.ok()) inferred = infer(ctx);
    if (inferred.code() == StatusCode::kUnsupported) {
      // A program PyTorch runs that kiln cannot: support analysis declines the node (see
      // infer_node), so the load goes on with the outputs the program records.
      for (const Value* out : node.outputs) {
        if (!out || out->kind != ValueKind::kTensor || !out->has_recorded_meta) continue;
        if (auto shape = concrete_shape(*out, bindings)) {
          slots[out->id] = RtValue::of(Tensor::meta(out->dtype, std::move(*shape)));
        }
      }
      continue;
    }
    KILN_RETURN_IF_ERROR(inferred, "node '", node.name, "' (", op_name(node.op), ")");
    KILN_RETURN_IF_ERROR(ctx.error());
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i])
        KILN_RETURN_IF_ERROR(compare(node, *node.outputs[i], slots[node.outputs[i]->id], bindings));
    }
  }
  return ok_status();
}

Status infer_node(const Node& node) {
  const OpFn infer = shape_inference_table().find(node.op);
  if (!infer) return ok_status();
  KILN_RETURN_IF_ERROR(check_complex_values(node));
  const std::vector<Value*> inputs = node.input_values();
  uint32_t slot_count = 0;
  for (const Value* v : inputs) slot_count = std::max(slot_count, v->id + 1);
  for (const Value* v : node.outputs) {
    if (v) slot_count = std::max(slot_count, v->id + 1);
  }
  std::vector<RtValue> slots(slot_count);
  for (const Value* v : inputs) {
    if (v->kind != ValueKind::kTensor || !v->has_recorded_meta) return ok_status();
    Shape shape;
    for (const SymDim& dim : v->shape) shape.push_back(dim.value);  // a symbol's example value
    slots[v->id] = RtValue::of(Tensor::meta(v->dtype, std::move(shape)));
  }
  OpContext ctx(node, slots);
  KILN_RETURN_IF_ERROR(infer(ctx));
  return ctx.error();
}

}  // namespace kiln::ir
