#include "passes/constant_folding.h"

#include "ir/shape_inference.h"
#include "ir/verifier.h"
#include "kernels/cpu/cpu_backend.h"
#include "passes/dead_code_elimination.h"
#include "passes/program_edit.h"

namespace kiln::passes {
namespace {

using ir::OpKey;

// Static, recorded, and small enough to keep.
bool can_hold(const ir::Value& v, size_t max_bytes) {
  if (v.kind != ir::ValueKind::kTensor || !v.has_recorded_meta) return false;
  size_t bytes = dtype_size(v.dtype);
  for (const ir::SymDim& dim : v.shape) {
    if (!dim.is_static() || dim.value < 0) return false;
    if (dim.value != 0 && bytes > max_bytes / static_cast<size_t>(dim.value)) return false;
    bytes *= static_cast<size_t>(dim.value);
  }
  return bytes <= max_bytes;
}

bool can_fold(const ir::Node& node, const std::vector<bool>& constant,
              const std::vector<bool>& is_output, const ConstantFoldingOptions& options) {
  if (node.outputs.empty() || has_side_effects(node.op) || !is_deterministic(node.op) ||
      node.schema().has_tag(ir::kTagPythonOp)) {
    return false;
  }
  for (const ir::Value* in : node.input_values()) {
    if (!constant[in->id]) return false;
  }
  for (const ir::Value* out : node.outputs) {
    if (!out) continue;
    if (is_output[out->id] || !can_hold(*out, options.max_folded_bytes)) return false;
  }
  return ir::shape_inference_table().find(node.op) != nullptr &&
         cpu::cpu_backend().supports(node) &&
         ir::infer_node(node).ok();  // not a node support analysis declines
}

// Runs one node the way the executor does: shape inference, then the kernel into fresh outputs.
Status evaluate(const ir::Node& node, std::span<ir::RtValue> slots) {
  ir::OpContext ctx(node, slots);
  KILN_RETURN_IF_ERROR(ir::shape_inference_table().find(node.op)(ctx));
  KILN_RETURN_IF_ERROR(ctx.error());
  const bool is_view = node.schema().has_tag(ir::kTagView);
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    ir::RtValue& out = ctx.output(i);
    if (out.kind != ir::RtValue::Kind::kTensor || is_view) continue;
    KILN_ASSIGN_OR_RETURN(out.tensor, Tensor::empty(out.tensor.dtype(), out.tensor.sizes()));
  }
  KILN_RETURN_IF_ERROR(cpu::cpu_backend().execute(ctx));
  return ctx.error();
}

// The nodes to fold, in program order, and the folded values the rest of the program reads (they
// become constants; the others are intermediates).
struct FoldPlan {
  std::vector<const ir::Node*> nodes;
  std::vector<bool> folded;    // by node id
  std::vector<bool> boundary;  // by value id
};

FoldPlan plan_folding(const ir::Program& program, const ConstantFoldingOptions& options) {
  const ir::Graph& graph = program.graph;
  const std::vector<bool> is_output = graph_output_mask(graph);
  std::vector<bool> constant(graph.num_values(), false);
  for (const ir::GraphInput& in : graph.inputs()) {
    constant[in.value->id] = weight_tensor(program, in.value) != nullptr;
  }
  FoldPlan plan;
  plan.folded.assign(graph.nodes().size(), false);
  plan.boundary.assign(graph.num_values(), false);
  for (const ir::Node& node : graph.nodes()) {
    if (!can_fold(node, constant, is_output, options)) continue;
    plan.folded[node.id] = true;
    plan.nodes.push_back(&node);
    for (const ir::Value* out : node.outputs) {
      if (out) constant[out->id] = true;
    }
  }
  for (const ir::Node* node : plan.nodes) {
    for (const ir::Value* out : node->outputs) {
      if (!out) continue;
      for (const ir::Node* user : out->users) {
        if (!plan.folded[user->id]) plan.boundary[out->id] = true;
      }
    }
  }
  return plan;
}

// Runs the plan's nodes in order; returns the slots, in which the boundary values are set.
// Intermediates are released after their last folded reader, so memory stays near the largest
// live set rather than the sum of every folded tensor.
Result<std::vector<ir::RtValue>> evaluate_plan(const ir::Program& program, const FoldPlan& plan) {
  const ir::Graph& graph = program.graph;
  std::vector<int> pending_reads(graph.num_values(), 0);
  for (const ir::Node* node : plan.nodes) {
    for (const ir::Value* in : node->input_values()) ++pending_reads[in->id];
  }
  std::vector<ir::RtValue> slots(graph.num_values());
  for (const ir::GraphInput& in : graph.inputs()) {
    if (const Tensor* weight = weight_tensor(program, in.value))
      slots[in.value->id] = ir::RtValue::of(*weight);
  }
  auto release_if_done = [&](const ir::Value* v) {
    if (v->producer && !plan.boundary[v->id] && pending_reads[v->id] == 0) {
      slots[v->id] = ir::RtValue{};
    }
  };
  for (const ir::Node* node : plan.nodes) {
    KILN_RETURN_IF_ERROR(evaluate(*node, slots), "while folding node '", node->name, "' (",
                         ir::op_name(node->op), ")");
    for (const ir::Value* in : node->input_values()) {
      --pending_reads[in->id];
      release_if_done(in);
    }
    for (const ir::Value* out : node->outputs) {
      if (out) release_if_done(out);
    }
  }
  return slots;
}

Shape recorded_shape(const ir::Value& v) {
  Shape shape;
  for (const ir::SymDim& dim : v.shape) shape.push_back(dim.value);
  return shape;
}

}  // namespace

bool is_deterministic(ir::OpKey op) {
  switch (op) {
    case OpKey::aten_rand_default:
    case OpKey::aten_rand_generator:
    case OpKey::aten_rand_like_default:
    case OpKey::aten_rand_like_generator:
    case OpKey::aten_randint_default:
    case OpKey::aten_randint_generator:
    case OpKey::aten_randint_low:
    case OpKey::aten_randint_low_generator:
    case OpKey::aten_randint_like_default:
    case OpKey::aten_randint_like_generator:
    case OpKey::aten_randint_like_Tensor:
    case OpKey::aten_randint_like_Tensor_generator:
    case OpKey::aten_randint_like_low_dtype:
    case OpKey::aten_randint_like_low_generator_dtype:
    case OpKey::aten_randn_default:
    case OpKey::aten_randn_generator:
    case OpKey::aten_randn_like_default:
    case OpKey::aten_randn_like_generator:
    case OpKey::aten_randperm_default:
    case OpKey::aten_randperm_generator:
    case OpKey::aten_bernoulli_default:
    case OpKey::aten_bernoulli_p:
    case OpKey::aten_normal_functional_default:
    case OpKey::aten_normal_Tensor_float:
    case OpKey::aten_normal_float_Tensor:
    case OpKey::aten_normal_Tensor_Tensor:
    case OpKey::aten_normal_float_float:
    case OpKey::aten_multinomial_default:
    case OpKey::aten_poisson_default:
    case OpKey::aten_rrelu_default:
    case OpKey::aten_dropout_default:
    case OpKey::aten_native_dropout_default:
    case OpKey::aten_empty_memory_format:
    case OpKey::aten_empty_permuted_default:
    case OpKey::aten_empty_like_default:
    case OpKey::aten_empty_strided_default:
    case OpKey::aten_new_empty_default:
    case OpKey::aten_new_empty_strided_default: return false;
    default: return !ir::op_schema(op).has_tag(ir::kTagNondeterministic);
  }
}

Result<int> fold_constants(ir::Program& program, const ConstantFoldingOptions& options,
                           std::vector<std::string>* log) {
  KILN_RETURN_IF_ERROR(ir::shape_inference_status());
  KILN_RETURN_IF_ERROR(cpu::cpu_backend_status());
  ir::Graph& graph = program.graph;
  graph.link();
  const FoldPlan plan = plan_folding(program, options);
  if (plan.nodes.empty()) return 0;
  KILN_ASSIGN_OR_RETURN(std::vector<ir::RtValue> slots, evaluate_plan(program, plan));
  for (const ir::Node* node : plan.nodes) {
    for (ir::Value* out : node->outputs) {
      if (!out || !plan.boundary[out->id]) continue;
      const Tensor& result = slots[out->id].tensor;
      if (result.dtype() != out->dtype || result.sizes() != recorded_shape(*out)) {
        return internal_error("folding node '", node->name, "' (", ir::op_name(node->op), ") gave ",
                              result.description(), " for '", out->name, "', the program records ",
                              dtype_name(out->dtype), shape_to_string(recorded_shape(*out)));
      }
      KILN_ASSIGN_OR_RETURN(Tensor tensor, result.contiguous());
      ir::Value* replacement = add_constant(program, folded_name(out->name), std::move(tensor));
      graph.replace_all_uses(out, replacement);
      log_change(log, "constant_folding: '", out->name, "' (", ir::op_name(node->op),
                 ") is now the constant '", replacement->name, "' ", result.description());
    }
  }
  slots.clear();
  const size_t erased =
      graph.erase_nodes([&](const ir::Node& node) { return plan.folded[node.id]; });
  compact(program);
  return static_cast<int>(erased);
}

}  // namespace kiln::passes
