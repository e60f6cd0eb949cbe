// The CUDA planner: classify nodes, group them into steps, walk the program at its largest
// shapes, and lay out the activation arena. See plan.h.
#include <algorithm>
#include <cmath>
#include <set>

#include "cuda/kernel_library_conv_direct.h"
#include "cuda/attention_chain.h"
#include "cuda/composed_view.h"
#include "cuda/steps.h"
#include "ir/shape_inference.h"
#include "ir/sym_expr.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/shape_op_util.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

// The most nodes one generated pointwise kernel fuses.
constexpr size_t kMaxPointwiseNodes = 24;

enum class NodeClass : uint8_t { kNumber, kView, kPointwise, kGemm, kConv, kAttention, kLibrary };

bool has_tensor_output(const ir::Node& node) {
  for (const ir::Value* v : node.outputs) {
    if (v && v->kind == ir::ValueKind::kTensor) return true;
  }
  return false;
}

}  // namespace

bool is_reshape_op(OpKey op) {
  return op == OpKey::aten_view_default || op == OpKey::aten__unsafe_view_default ||
         op == OpKey::aten_reshape_default;
}

bool is_conv_op(OpKey op) {
  return op == OpKey::aten_convolution_default || op == OpKey::aten_conv1d_default ||
         op == OpKey::aten_conv2d_default || op == OpKey::aten_conv3d_default;
}

bool single_user(const ir::Value* v, const ir::Graph& graph) {
  if (v->users.size() != 1) return false;
  for (const ir::Value* out : graph.outputs()) {
    if (out == v) return false;
  }
  return true;
}

bool is_view_node(const ir::Node& node) {
  if (is_reshape_op(node.op)) return true;
  return node.schema().has_tag(ir::kTagView);
}

namespace {

bool is_gemm(OpKey op) {
  return op == OpKey::aten_mm_default || op == OpKey::aten_addmm_default ||
         op == OpKey::aten_bmm_default || op == OpKey::aten_linear_default ||
         op == OpKey::aten_matmul_default;
}

NodeClass classify(const ir::Node& node) {
  if (!has_tensor_output(node)) return NodeClass::kNumber;
  if (is_view_node(node)) return NodeClass::kView;
  if (is_gemm(node.op)) return NodeClass::kGemm;
  if (is_conv_op(node.op)) {
    // The transposed convolutions cuDNN declines run as kiln's direct kernel: a library step,
    // with nothing folded into it.
    return needs_direct_conv(node) ? NodeClass::kLibrary : NodeClass::kConv;
  }
  if (node.op == OpKey::aten_scaled_dot_product_attention_default) return NodeClass::kAttention;
  if (is_library_op(node.op)) return NodeClass::kLibrary;
  return NodeClass::kPointwise;
}

bool same_shape(const ir::Value& a, const ir::Value& b) {
  if (a.shape.size() != b.shape.size()) return false;
  for (size_t d = 0; d < a.shape.size(); ++d) {
    const ir::SymDim& x = a.shape[d];
    const ir::SymDim& y = b.shape[d];
    if (x.is_static() != y.is_static()) return false;
    if (x.is_static() ? x.value != y.value
                      : ir::sym_dim_to_string(x) != ir::sym_dim_to_string(y)) {
      return false;
    }
  }
  return true;
}

// A planned step before it is made: the nodes it covers (in order) and its kind.
struct Group {
  NodeClass kind;
  std::vector<const ir::Node*> nodes;
  bool closed = false;  // a node outside the group already read one of its values
};


class Planner {
 public:
  Planner(const ir::Program& program, const std::map<std::string, int64_t>& max_symbols,
          const PlanOptions& options)
      : program_(program), graph_(program.graph), max_symbols_(max_symbols), options_(options) {}

  Result<Plan> run() {
    match_attention_chains();
    group_nodes();
    KILN_RETURN_IF_ERROR(walk());
    KILN_RETURN_IF_ERROR(check_every_buffer_written());
    // The runtime copies outputs into the caller's tensors, with the strided copy kernel where
    // an output is a view.
    for (const ir::Value* out : graph_.outputs()) {
      if (out->kind == ir::ValueKind::kTensor) copy_kernel(plan_.module, out->dtype, out->dtype);
    }
    place_buffers();
    return std::move(plan_);
  }

 private:
  int group_of(const ir::Node* n) const { return node_group_[n->id]; }

  void start_group(NodeClass kind, const ir::Node* node) {
    node_group_[node->id] = static_cast<int>(groups_.size());
    groups_.push_back(Group{kind, {node}});
  }
  void join(int g, const ir::Node* node) {
    node_group_[node->id] = g;
    groups_[g].nodes.push_back(node);
  }

  // Pass 0: attention written out, as default decompositions leave it:
  //   matmul(q, k^T) [/ c or * c] [+ mask] -> softmax(-1) -> matmul(., v)
  // over 4-D q, k, v, each intermediate read only by the next node, runs as one attention step
  // (cuDNN's fused kernel in half precision) like scaled_dot_product_attention.
  void match_attention_chains() {
    in_chain_.assign(graph_.nodes().size(), false);
    for (const ir::Node& node : graph_.nodes()) {
      auto chain = match_attention_chain(node, graph_);
      if (!chain) continue;
      bool taken = false;
      for (const ir::Node* n : chain->second) taken = taken || in_chain_[n->id];
      if (taken) continue;
      for (const ir::Node* n : chain->second) in_chain_[n->id] = true;
      chain_ends_[node.id] = std::move(*chain);
    }
  }

  // Pass 1: which nodes share a step. Pointwise chains fuse while the group has no outside reader
  // yet (so the group can run where its last node stands); an activation (and a residual add for
  // convolutions) right after a GEMM or convolution joins it.
  void group_nodes() {
    node_group_.assign(graph_.nodes().size(), -1);
    for (const ir::Node& node : graph_.nodes()) {
      const NodeClass kind = classify(node);
      std::set<int> feeding;
      for (const ir::Value* v : node.input_values()) {
        if (v && v->producer && group_of(v->producer) >= 0) feeding.insert(group_of(v->producer));
      }
      if (auto chain = chain_ends_.find(node.id); chain != chain_ends_.end() || in_chain_[node.id]) {
        // A matched attention chain: one group, made at its last node.
        for (int g : feeding) groups_[g].closed = true;
        if (chain == chain_ends_.end()) continue;
        const std::vector<const ir::Node*>& nodes = chain->second.second;
        start_group(NodeClass::kAttention, nodes.front());
        const int g = static_cast<int>(groups_.size()) - 1;
        for (size_t i = 1; i < nodes.size(); ++i) join(g, nodes[i]);
        matched_attention_[g] = chain->second.first;
        continue;
      }
      // A group whose node's second or later output this node reads (batch norm's saved
      // statistics) stays apart: only first outputs are the group's expressions, so the value is
      // stored by its own step and read back.
      std::set<int> apart;
      for (const ir::Value* v : node.input_values()) {
        if (v && v->producer && group_of(v->producer) >= 0 &&
            v != v->producer->outputs.front()) {
          apart.insert(group_of(v->producer));
        }
      }
      int joined = -1;
      if (kind == NodeClass::kPointwise) {
        for (int g : feeding) {
          Group& group = groups_[g];
          if (apart.count(g)) continue;
          if (group.closed || group.nodes.size() >= kMaxPointwiseNodes) continue;
          if (group.kind == NodeClass::kPointwise &&
              same_shape(*group.nodes.back()->outputs[0], *node.outputs[0])) {
            joined = g;
            break;
          }
          if (try_epilogue(group, node)) {
            joined = g;
            break;
          }
        }
        if (joined >= 0 && groups_[joined].kind == NodeClass::kPointwise) {
          // Other open pointwise chains this node joins up (two branches from one tensor, as in
          // 0.5 * x * (1 + tanh(...))) become one kernel: x is read once, the branch that ended
          // first is never stored.
          for (int g : feeding) {
            if (g != joined && !apart.count(g) &&
                mergeable_into(groups_[g], groups_[joined], node)) {
              merge(g, joined);
            }
          }
        }
      }
      for (int g : feeding) {
        if (g != joined) groups_[g].closed = true;
      }
      if (kind == NodeClass::kNumber || kind == NodeClass::kView) continue;
      if (joined >= 0) {
        join(joined, &node);
      } else {
        start_group(kind, &node);
        if (kind != NodeClass::kPointwise) groups_.back().closed = false;
      }
    }
  }

  bool mergeable_into(const Group& from, const Group& into, const ir::Node& node) const {
    return !from.closed && !from.nodes.empty() && from.kind == NodeClass::kPointwise &&
           from.nodes.size() + into.nodes.size() < kMaxPointwiseNodes &&
           same_shape(*from.nodes.back()->outputs[0], *node.outputs[0]);
  }

  // Moves group `from`'s nodes into `into`, keeping program order (node ids are topological).
  // Neither group has a reader outside itself yet, so the merged one may run where its last node
  // stands. `from` is left empty and is never emitted.
  void merge(int from, int into) {
    Group& a = groups_[from];
    Group& b = groups_[into];
    for (const ir::Node* n : a.nodes) node_group_[n->id] = into;
    b.nodes.insert(b.nodes.end(), a.nodes.begin(), a.nodes.end());
    std::sort(b.nodes.begin(), b.nodes.end(),
              [](const ir::Node* x, const ir::Node* y) { return x->id < y->id; });
    a.nodes.clear();
    a.closed = true;
  }

  // Whether pointwise `node` folds into the GEMM or convolution group's epilogue: an activation,
  // or a residual add (for GEMMs: of a GEMM without activation whose C operand is free).
  bool try_epilogue(Group& group, const ir::Node& node) {
    const ir::Node* last = group.nodes.back();
    const ir::Value* produced = last->outputs[0];
    // (A convolution_backward whose output_mask drops grad_input has no first output.)
    if (!produced || !single_user(produced, graph_)) return false;
    if (group.kind == NodeClass::kGemm && group.nodes.size() == 1) {
      if (gemm_epilogue_for(node).has_value() && node.input_values().size() == 1) return true;
      return residual_operand(node, *produced) && gemm_takes_residual(*last);
    }
    if (group.kind != NodeClass::kConv) return false;
    const bool has_relu =
        group.nodes.size() > 1 && group.nodes.back()->op == OpKey::aten_relu_default;
    if (has_relu) return false;
    if (node.op == OpKey::aten_relu_default) return true;
    return group.nodes.size() == 1 && residual_operand(node, *produced);
  }

  // For `node` = add(produced, other) (either order, alpha 1) with other of produced's shape and
  // dtype: other. Else null.
  static const ir::Value* residual_operand(const ir::Node& node, const ir::Value& produced) {
    if (node.op != OpKey::aten_add_Tensor) return nullptr;
    const auto inputs = node.input_values();
    if (inputs.size() != 2 || inputs[0] == inputs[1]) return nullptr;
    if (node.args.size() > 2) {
      const int64_t* alpha = std::get_if<int64_t>(&node.args[2]);
      const double* alpha_f = std::get_if<double>(&node.args[2]);
      if ((alpha && *alpha != 1) || (alpha_f && *alpha_f != 1.0)) return nullptr;
    }
    const ir::Value* other = inputs[0] == &produced ? inputs[1] : inputs[0];
    const bool fits = same_shape(*other, produced) && other->dtype == produced.dtype;
    return fits ? other : nullptr;
  }

  // GEMMs whose C operand is free for a residual: linear and matmul with a 2-D weight, mm, and
  // addmm with a row bias (a full-matrix addmm input is C already).
  static bool gemm_takes_residual(const ir::Node& gemm) {
    const auto inputs = gemm.input_values();
    switch (gemm.op) {
      case OpKey::aten_linear_default:
      case OpKey::aten_matmul_default:
        return inputs.size() >= 2 && inputs[1]->shape.size() == 2;
      case OpKey::aten_mm_default:
        return true;
      case OpKey::aten_addmm_default: {
        // Only a row bias under beta 1 runs as cuBLASLt's bias; any other input is C.
        const double* beta_f = gemm.args.size() > 3 ? std::get_if<double>(&gemm.args[3]) : nullptr;
        const int64_t* beta_i =
            gemm.args.size() > 3 ? std::get_if<int64_t>(&gemm.args[3]) : nullptr;
        const bool beta_one = (!beta_f || *beta_f == 1.0) && (!beta_i || *beta_i == 1);
        if (inputs.empty() || inputs[0]->shape.size() != 1 || !beta_one) return false;
        const ir::SymDim& n = gemm.outputs[0]->shape.back();
        const ir::SymDim& bias_n = inputs[0]->shape[0];
        return n.is_static() ? bias_n.is_static() && bias_n.value == n.value
                             : ir::sym_dim_to_string(n) == ir::sym_dim_to_string(bias_n);
      }
      default:
        return false;
    }
  }

  bool stored(const ir::Value* v, int g) const {
    for (const ir::Value* out : graph_.outputs()) {
      if (out == v) return true;
    }
    for (const ir::Node* user : v->users) {
      if (group_of(user) != g) return true;
    }
    return false;
  }

  Tensor fake_buffer(const Tensor& meta, const Layout& layout = Layout{}) {
    const Shape strides = layout_strides(meta.sizes(), layout);
    const size_t bytes = std::max<size_t>(meta.nbytes(), 1);
    auto storage = Storage::borrow(reinterpret_cast<void*>(uintptr_t{1} << 40), bytes, nullptr);
    if (meta.has_data()) return meta;
    auto tensor = Tensor::from_storage(storage, meta.dtype(), meta.sizes(), strides, 0);
    return tensor.ok() ? std::move(tensor).value() : Tensor();
  }

  // A value's sizes at the largest shapes, from its (possibly symbolic) shape.
  Result<Shape> max_sizes(const ir::Value& v) {
    Shape sizes;
    for (const ir::SymDim& d : v.shape) {
      if (d.is_static()) {
        sizes.push_back(d.value);
        continue;
      }
      KILN_ASSIGN_OR_RETURN(int64_t value, d.expr->evaluate(bindings_), "value '", v.name, "'");
      sizes.push_back(value);
    }
    return sizes;
  }

  Result<Tensor> input_tensor(const ir::Value& v) {
    KILN_ASSIGN_OR_RETURN(Shape sizes, max_sizes(v));
    return fake_buffer(Tensor::meta(v.dtype, sizes));
  }

  // A value given a buffer (read outside its step, or a program output) that no step writes
  // would have no place in the arena: the engine would fail at run time. Say so at build time.
  Status check_every_buffer_written() const {
    std::vector<bool> written(graph_.num_values(), false);
    for (uint32_t id : input_values_) written[id] = true;
    for (const auto& step : plan_.steps) {
      for (uint32_t id : step->writes) written[id] = true;
    }
    for (const ir::Value& v : graph_.values()) {
      if (plan_.has_buffer[v.id] && !written[v.id]) {
        const std::string producer(v.producer ? ir::op_name(v.producer->op) : "no node");
        return internal_error("CUDA plan: no step writes '", v.name, "' (an output of ",
                              producer, " that is read later or returned); a kiln planning bug");
      }
    }
    return ok_status();
  }

  // Pass 2: the walk at the largest shapes.
  Status walk() {
    const size_t n = graph_.num_values();
    plan_.has_buffer.assign(n, false);
    plan_.layout.assign(n, Layout{});
    plan_.composed.assign(n, false);
    root_.assign(n, UINT32_MAX);
    for (const auto& [symbol, value] : max_symbols_) bindings_.set(symbol, value);
    slots_.assign(n, ir::RtValue{});
    for (const ir::GraphInput& in : graph_.inputs()) {
      if (in.value->kind != ir::ValueKind::kTensor) continue;
      KILN_ASSIGN_OR_RETURN(slots_[in.value->id].tensor, input_tensor(*in.value));
      slots_[in.value->id].kind = ir::RtValue::Kind::kTensor;
      if (in.kind == ir::InputKind::kUserInput) {
        plan_.has_buffer[in.value->id] = true;  // staged in the arena
        root_[in.value->id] = in.value->id;
        input_values_.push_back(in.value->id);
      }
    }
    const ir::OpFunctionTable& inference = ir::shape_inference_table();
    for (const ir::Node& node : graph_.nodes()) {
      ir::OpContext ctx(node, slots_);
      ir::OpFn infer = inference.find(node.op);
      if (!infer) return unsupported("no shape inference for ", ir::op_name(node.op));
      KILN_RETURN_IF_ERROR(infer(ctx), "planning node '", node.name, "'");
      KILN_RETURN_IF_ERROR(ctx.error(), "planning node '", node.name, "'");
      const NodeClass kind = classify(node);
      if (kind == NodeClass::kNumber) continue;
      if (kind == NodeClass::kView) {
        KILN_RETURN_IF_ERROR(plan_view(node, ctx), "planning view '", node.name, "'");
        continue;
      }
      const int g = group_of(&node);
      const Layout layout = output_layout(node, groups_[g]);
      for (const ir::Value* v : node.outputs) {
        if (!v || v->kind != ir::ValueKind::kTensor) continue;
        if (stored(v, g)) {
          const Layout l = static_cast<int64_t>(layout.order.size()) == slots_[v->id].tensor.dim()
                               ? layout
                               : Layout{};
          slots_[v->id].tensor = fake_buffer(slots_[v->id].tensor, l);
          plan_.has_buffer[v->id] = true;
          plan_.layout[v->id] = l;
          root_[v->id] = v->id;
        }
      }
      if (groups_[g].nodes.back() == &node) {
        KILN_RETURN_IF_ERROR(emit(groups_[g]), "planning node '", node.name, "' (",
                             ir::op_name(node.op), ")");
      }
    }
    return ok_status();
  }

  static bool is_channels_last(const Tensor& t) {
    return t.dim() == 4 && t.has_data() && t.size(1) > 1 &&
           t.strides() == layout_strides(t.sizes(), Layout::channels_last());
  }

  // How a step stores its outputs:
  //  - a linear whose rows are a permuted view (x.permute(1, 0, 2)) writes its output in the same
  //    order, so it reads x in place;
  //  - an attention or pointwise output whose only reader is a permute that reshapes then
  //    flatten is stored in the permuted order, so the reshapes are views;
  //  - channels-last (NHWC) around half-precision convolutions: their outputs, and the pointwise
  //    ops and pooling that follow them;
  //  - everything else row-major.
  Layout output_layout(const ir::Node& node, const Group& group) {
    const ir::Value* out = node.outputs.empty() ? nullptr : node.outputs[0];
    if (!out) return Layout{};
    if (group.kind == NodeClass::kGemm) return gemm_output_layout(*group.nodes.front());
    if (group.kind == NodeClass::kAttention || group.kind == NodeClass::kPointwise) {
      if (auto layout = layout_for_permuted_reader(group, *out)) return *layout;
    }
    return channels_last_layout(node, group, *out);
  }

  Layout gemm_output_layout(const ir::Node& gemm) {
    if (gemm.op != OpKey::aten_linear_default && gemm.op != OpKey::aten_matmul_default) {
      return Layout{};
    }
    const auto inputs = gemm.input_values();
    if (inputs.size() < 2 || slots_[inputs[1]->id].tensor.dim() != 2) return Layout{};
    const Tensor& a = slots_[inputs[0]->id].tensor;
    if (!a.has_data() || a.dim() != static_cast<int64_t>(gemm.outputs[0]->shape.size())) {
      return Layout{};
    }
    auto order = leading_dims_in_memory_order(a);
    if (!order) return Layout{};
    return Layout{std::vector<int8_t>(order->begin(), order->end())};
  }

  // The permuted order for `out` when its only reader is a permute (keeping the last dim last)
  // whose readers are all reshapes, and the step can write that order.
  std::optional<Layout> layout_for_permuted_reader(const Group& group, const ir::Value& out) {
    if (!single_user(&out, graph_)) return std::nullopt;
    const ir::Node& permute = *out.users[0];
    const int64_t rank = static_cast<int64_t>(out.shape.size());
    if (rank < 3 || permute.outputs.empty() || permute.outputs[0]->users.empty()) {
      return std::nullopt;
    }
    for (const ir::Node* reader : permute.outputs[0]->users) {
      if (!is_reshape_op(reader->op)) return std::nullopt;
    }
    const Tensor& meta = slots_[out.id].tensor;
    std::vector<int64_t> order = permute_order(permute, rank);
    if (order.empty() || order.back() != rank - 1) return std::nullopt;
    bool moved = false;
    for (int64_t d = 0; d < rank; ++d) moved = moved || order[d] != d;
    if (!moved) return std::nullopt;
    Layout layout{std::vector<int8_t>(order.begin(), order.end())};
    if (group.kind == NodeClass::kAttention) {
      auto a = attention_of(group);
      if (!a.ok() ||
          !attention_writes_strides(*a, slots_, options_, layout_strides(meta.sizes(), layout))) {
        return std::nullopt;
      }
    }
    return layout;
  }

  // The operands of an attention group: a matched chain's, or its sdpa node's.
  Result<AttentionOperands> attention_of(const Group& group) {
    const int g = group_of(group.nodes.front());
    if (auto it = matched_attention_.find(g); it != matched_attention_.end()) return it->second;
    return attention_operands(*group.nodes.front(), slots_);
  }

  static std::vector<int64_t> permute_order(const ir::Node& permute, int64_t rank) {
    std::vector<int64_t> order(rank);
    for (int64_t d = 0; d < rank; ++d) order[d] = d;
    if (permute.op == OpKey::aten_permute_default && permute.args.size() > 1) {
      const auto* dims = std::get_if<std::vector<ir::SymInt>>(&permute.args[1]);
      if (!dims || static_cast<int64_t>(dims->size()) != rank) return {};
      for (int64_t d = 0; d < rank; ++d) {
        if ((*dims)[d].value) return {};
        order[d] = (*dims)[d].constant < 0 ? (*dims)[d].constant + rank : (*dims)[d].constant;
      }
      return order;
    }
    if (permute.op == OpKey::aten_transpose_int && permute.args.size() > 2) {
      const int64_t* a = std::get_if<int64_t>(&permute.args[1]);
      const int64_t* b = std::get_if<int64_t>(&permute.args[2]);
      if (!a || !b) return {};
      std::swap(order[*a < 0 ? *a + rank : *a], order[*b < 0 ? *b + rank : *b]);
      return order;
    }
    return {};
  }

  Layout channels_last_layout(const ir::Node& node, const Group& group, const ir::Value& out) {
    if (!options_.channels_last || out.shape.size() != 4) return Layout{};
    if (group.kind == NodeClass::kConv) {
      const ir::Node& conv = *group.nodes.front();
      const auto inputs = conv.input_values();
      const ir::Value* x = inputs.empty() ? nullptr : inputs[0];
      const ir::Value* w = inputs.size() > 1 ? inputs[1] : nullptr;
      const bool half = out.dtype == DType::kFloat16 || out.dtype == DType::kBFloat16;
      // A batched 2-D convolution: a 4-D unbatched 3-D one's output is [C, D, H, W], not NCHW.
      const bool nchw = x && w && x->shape.size() == 4 && w->shape.size() == 4;
      return half && nchw ? Layout::channels_last() : Layout{};
    }
    const bool follows = group.kind == NodeClass::kPointwise ||
                         node.op == OpKey::aten_max_pool2d_default ||
                         node.op == OpKey::aten_max_pool2d_with_indices_default ||
                         node.op == OpKey::aten_avg_pool2d_default;
    if (!follows) return Layout{};
    for (const ir::Node* member : group.nodes) {
      for (const ir::Value* v : member->input_values()) {
        if (v && v->kind == ir::ValueKind::kTensor && is_channels_last(slots_[v->id].tensor) &&
            slots_[v->id].tensor.sizes() == slots_[out.id].tensor.sizes()) {
          return Layout::channels_last();
        }
        if (v && v->kind == ir::ValueKind::kTensor && node.op != OpKey::aten_relu_default &&
            group.kind != NodeClass::kPointwise && is_channels_last(slots_[v->id].tensor)) {
          return Layout::channels_last();  // pooling keeps its input's layout
        }
      }
    }
    return Layout{};
  }

  Status plan_view(const ir::Node& node, ir::OpContext& ctx) {
    const ir::Value* in = node.input_values().empty() ? nullptr : node.input_values()[0];
    if (!in) return internal_error("view without input");
    const Tensor& x = slots_[in->id].tensor;
    const ir::Value* out = node.outputs.empty() ? nullptr : node.outputs[0];
    if (plan_.composed[in->id]) {
      const Composed& from = composed_.at(in->id);
      KILN_ASSIGN_OR_RETURN(ComposedView view,
                            compose_view(from.view, node, ctx.output_tensor(0).sizes()));
      return place_composed(*in, *out, from.base, view);
    }
    if (!x.has_data()) {
      return internal_error("view of a value without storage: ", in->name);
    }
    if (is_reshape_op(node.op)) {
      const Tensor& meta = ctx.output_tensor(0);
      if (!cpu::view_strides(x.sizes(), x.strides(), meta.sizes())) {
        auto view = ComposedView::of(x).reshape(meta.sizes());
        if (view.ok() && resolves(*out, *view)) return place_composed(*in, *out, x, *view);
        slots_[out->id].tensor = fake_buffer(meta);
        plan_.has_buffer[out->id] = true;
        root_[out->id] = out->id;
        add_step(make_reshape_copy_step(*in, *out, plan_.module));
        return ok_status();
      }
    }
    KILN_RETURN_IF_ERROR(cpu::cpu_backend().execute(ctx));
    for (const ir::Value* v : node.outputs) {
      if (v && v->kind == ir::ValueKind::kTensor) root_[v->id] = root_[in->id];
    }
    return ok_status();
  }

  // `out` as `view` of `base`'s storage: a strided view when the composition has one stride per
  // dim, else a composed value only views read.
  Status place_composed(const ir::Value& in, const ir::Value& out, const Tensor& base,
                        const ComposedView& view) {
    root_[out.id] = root_[in.id];
    if (auto strides = view.strides()) {
      slots_[out.id].tensor = base.view_as(view.sizes(), *strides, view.offset());
      return ok_status();
    }
    plan_.composed[out.id] = true;
    composed_[out.id] = Composed{view, base};
    return ok_status();
  }

  // Whether every path of views from `v` (seen as `view`) reaches strides before anything but a
  // composable view reads it: then no copy is needed anywhere along it.
  bool resolves(const ir::Value& v, const ComposedView& view) {
    if (view.strides()) return true;
    for (const ir::Value* out : graph_.outputs()) {
      if (out == &v) return false;
    }
    for (const ir::Node* user : v.users) {
      if (!is_composable_view(*user) || user->input_values().empty() ||
          user->input_values()[0] != &v || user->outputs.empty()) {
        return false;
      }
      auto sizes = max_sizes(*user->outputs[0]);
      if (!sizes.ok()) return false;
      auto next = compose_view(view, *user, *sizes);
      if (!next.ok() || !resolves(*user->outputs[0], *next)) return false;
    }
    return true;
  }

  void add_step(std::unique_ptr<Step> step) { plan_.steps.push_back(std::move(step)); }

  Status emit(const Group& group) {
    const ir::Node& first = *group.nodes.front();
    switch (group.kind) {
      case NodeClass::kPointwise: {
        PointwiseGroup pw;
        pw.nodes = group.nodes;
        std::set<const ir::Node*> members(group.nodes.begin(), group.nodes.end());
        std::set<const ir::Value*> seen;
        for (const ir::Node* n : group.nodes) {
          for (const ir::Value* v : n->input_values()) {
            if (!v || v->kind != ir::ValueKind::kTensor) continue;
            if (v->producer && members.count(v->producer)) continue;
            if (seen.insert(v).second) pw.inputs.push_back(v);
          }
          for (const ir::Value* v : n->outputs) {
            if (v && plan_.has_buffer[v->id]) pw.outputs.push_back(v);
          }
        }
        // Batch norm's saved statistics are per channel, not of the group's shape: a step of
        // their own stores them (the verdict leaves batch norms whose statistics are read to
        // PyTorch; program outputs remain).
        for (const ir::Node* n : group.nodes) {
          if (n->op != OpKey::aten__native_batch_norm_legit_no_training_default) continue;
          std::vector<const ir::Value*> stats;
          for (size_t i = 1; i < n->outputs.size(); ++i) {
            if (n->outputs[i] && plan_.has_buffer[n->outputs[i]->id]) {
              stats.push_back(n->outputs[i]);
            }
          }
          if (stats.empty()) continue;
          std::erase_if(pw.outputs, [&](const ir::Value* v) {
            return std::find(stats.begin(), stats.end(), v) != stats.end();
          });
          KILN_ASSIGN_OR_RETURN(auto step, make_batch_norm_stats_step(*n, stats, plan_.module));
          add_step(std::move(step));
        }
        if (pw.outputs.empty()) return ok_status();  // nothing read: dead code
        const int rank = static_cast<int>(group.nodes.back()->outputs[0]->shape.size());
        KILN_ASSIGN_OR_RETURN(auto step, make_pointwise_step(pw, rank, plan_.module));
        add_step(std::move(step));
        return ok_status();
      }
      case NodeClass::kGemm: {
        const ir::Node* second = group.nodes.size() > 1 ? group.nodes[1] : nullptr;
        const bool add = second && second->op == OpKey::aten_add_Tensor;
        KILN_ASSIGN_OR_RETURN(auto step,
                              make_gemm_step(first, add ? nullptr : second, add ? second : nullptr,
                                             slots_, options_, plan_.module));
        add_step(std::move(step));
        return ok_status();
      }
      case NodeClass::kConv: {
        const ir::Node* add = nullptr;
        const ir::Node* relu = nullptr;
        for (size_t i = 1; i < group.nodes.size(); ++i) {
          if (group.nodes[i]->op == OpKey::aten_relu_default) {
            relu = group.nodes[i];
          } else {
            add = group.nodes[i];
          }
        }
        const ir::Node* last = group.nodes.back();
        const bool nhwc = plan_.layout[last->outputs[0]->id].is_channels_last();
        if (nhwc && !(add == nullptr && is_patch_conv(first, slots_, nhwc))) {
          const ir::Value* w = first.input_values()[1];
          if (!w->producer && slots_[w->id].tensor.dim() == 4) {
            if (std::find(plan_.channels_last_weights.begin(), plan_.channels_last_weights.end(),
                          w->id) == plan_.channels_last_weights.end()) {
              plan_.channels_last_weights.push_back(w->id);
            }
            Tensor& wt = slots_[w->id].tensor;
            wt = wt.view_as(wt.sizes(), layout_strides(wt.sizes(), Layout::channels_last()),
                            wt.offset());
          }
        }
        KILN_ASSIGN_OR_RETURN(auto step,
                              make_conv_step(first, add, relu, slots_, options_, nhwc,
                                             plan_.module));
        add_step(std::move(step));
        return ok_status();
      }
      case NodeClass::kAttention: {
        KILN_ASSIGN_OR_RETURN(AttentionOperands a, attention_of(group));
        KILN_ASSIGN_OR_RETURN(auto step, make_attention_step(a, slots_, options_, plan_.module));
        add_step(std::move(step));
        return ok_status();
      }
      case NodeClass::kLibrary: {
        KILN_ASSIGN_OR_RETURN(auto step, make_library_step(first, slots_, plan_.module));
        add_step(std::move(step));
        return ok_status();
      }
      default:
        return internal_error("unexpected group kind");
    }
  }

  // Pass 3: the arena. Each buffer lives from the step that writes it (step 0 for staged inputs)
  // to the last step that reads it or a view of it (the end for graph outputs); buffers are
  // placed largest first at the lowest offset free for their lifetime.
  void place_buffers() {
    const size_t steps = plan_.steps.size();
    struct Interval {
      uint32_t value;
      size_t step;
      size_t which;
      size_t first, last;
      uint64_t bytes;
    };
    std::vector<Interval> intervals;
    std::map<uint32_t, size_t> index;
    auto bytes_of = [&](uint32_t id) -> uint64_t {
      const Tensor& t = slots_[id].tensor;
      return std::max<uint64_t>(t.nbytes(), 1);
    };
    for (uint32_t id : input_values_) {
      index[id] = intervals.size();
      intervals.push_back({id, 0, 0, 0, 0, bytes_of(id)});
    }
    for (size_t s = 0; s < steps; ++s) {
      for (uint32_t id : plan_.steps[s]->writes) {
        if (!index.count(id)) {
          index[id] = intervals.size();
          intervals.push_back({id, 0, 0, s, s, bytes_of(id)});
        }
      }
    }
    auto extend = [&](uint32_t id, size_t s) {
      const uint32_t root = id < root_.size() ? root_[id] : UINT32_MAX;
      auto it = index.find(root);
      if (it != index.end()) intervals[it->second].last = std::max(intervals[it->second].last, s);
    };
    for (size_t s = 0; s < steps; ++s) {
      for (uint32_t id : plan_.steps[s]->reads) extend(id, s);
    }
    for (const ir::Value* out : graph_.outputs()) extend(out->id, steps);
    plan_.scratch.assign(steps, {});
    for (size_t s = 0; s < steps; ++s) {
      for (size_t w = 0; w < plan_.steps[s]->scratch_bytes.size(); ++w) {
        intervals.push_back({UINT32_MAX, s, w, s, s,
                             std::max<uint64_t>(plan_.steps[s]->scratch_bytes[w], 1)});
      }
    }
    std::vector<size_t> order(intervals.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return intervals[a].bytes > intervals[b].bytes;
    });
    constexpr uint64_t kAlign = 256;
    std::vector<std::pair<size_t, uint64_t>> placed;  // interval index, offset
    uint64_t arena = 0;
    for (size_t i : order) {
      const Interval& me = intervals[i];
      const uint64_t size = (me.bytes + kAlign - 1) / kAlign * kAlign;
      std::vector<std::pair<uint64_t, uint64_t>> busy;
      for (const auto& [j, offset] : placed) {
        const Interval& other = intervals[j];
        if (other.last < me.first || me.last < other.first) continue;
        busy.push_back({offset, offset + (other.bytes + kAlign - 1) / kAlign * kAlign});
      }
      std::sort(busy.begin(), busy.end());
      uint64_t offset = 0;
      for (const auto& [begin, end] : busy) {
        if (offset + size <= begin) break;
        offset = std::max(offset, end);
      }
      placed.push_back({i, offset});
      arena = std::max(arena, offset + size);
      if (me.value == UINT32_MAX) {
        auto& list = plan_.scratch[me.step];
        if (list.size() <= me.which) list.resize(me.which + 1);
        list[me.which] = BufferPlacement{UINT32_MAX, offset, me.bytes};
      } else {
        plan_.value_buffers[me.value] = BufferPlacement{me.value, offset, me.bytes};
      }
    }
    plan_.arena_bytes = arena;
  }

  const ir::Program& program_;
  const ir::Graph& graph_;
  const std::map<std::string, int64_t>& max_symbols_;
  PlanOptions options_;
  Plan plan_;
  std::vector<Group> groups_;
  std::vector<int> node_group_;
  Slots slots_;
  ir::SymBindings bindings_;
  std::vector<uint32_t> root_;
  std::vector<uint32_t> input_values_;
  struct Composed {
    ComposedView view;
    Tensor base;  // a tensor on the storage the view reads
  };
  std::map<uint32_t, Composed> composed_;  // by value id, for plan_.composed values
  // Matched attention chains: by the id of their last node (operands and nodes), the nodes they
  // cover, and the operands of their groups.
  std::map<uint32_t, std::pair<AttentionOperands, std::vector<const ir::Node*>>> chain_ends_;
  std::vector<bool> in_chain_;
  std::map<int, AttentionOperands> matched_attention_;
};

}  // namespace

Shape layout_strides(const Shape& sizes, const Layout& layout) {
  if (layout.order.empty() || layout.order.size() != sizes.size()) {
    return contiguous_strides(sizes);
  }
  Shape strides(sizes.size(), 0);
  int64_t stride = 1;
  for (size_t i = layout.order.size(); i-- > 0;) {
    strides[layout.order[i]] = stride;
    stride *= std::max<int64_t>(sizes[layout.order[i]], 1);
  }
  return strides;
}

std::string Plan::summary() const {
  std::string text;
  for (size_t i = 0; i < steps.size(); ++i) {
    text += str_cat(i, ": ", steps[i]->describe(), "\n");
  }
  return text;
}

Result<Plan> make_plan(const ir::Program& program, const std::map<std::string, int64_t>& max_symbols,
                       const PlanOptions& options) {
  return Planner(program, max_symbols, options).run();
}

}  // namespace kiln::cuda
