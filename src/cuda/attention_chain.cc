#include "cuda/attention_chain.h"

#include <cmath>

namespace kiln::cuda {
using ir::OpKey;

std::optional<std::pair<AttentionOperands, std::vector<const ir::Node*>>> match_attention_chain(
    const ir::Node& pv, const ir::Graph& graph) {
  auto is_4d = [](const ir::Value* v) {
    return v && v->kind == ir::ValueKind::kTensor && v->shape.size() == 4;
  };
  auto only_next = [&](const ir::Value* v) { return single_user(v, graph); };
  if (pv.op != OpKey::aten_matmul_default || pv.input_values().size() != 2) return std::nullopt;
  const ir::Value* p = pv.input_values()[0];
  const ir::Value* v = pv.input_values()[1];
  if (!is_4d(p) || !is_4d(v) || !p->producer || !only_next(p)) return std::nullopt;
  const ir::Node* softmax = p->producer;
  if (softmax->op != OpKey::aten_softmax_int && softmax->op != OpKey::aten__softmax_default) {
    return std::nullopt;
  }
  const int64_t* dim = softmax->args.size() > 1 ? std::get_if<int64_t>(&softmax->args[1]) : nullptr;
  if (!dim || (*dim != -1 && *dim != 3)) return std::nullopt;
  if (softmax->op == OpKey::aten__softmax_default && softmax->args.size() > 2) {
    const bool* half_to_float = std::get_if<bool>(&softmax->args[2]);
    if (half_to_float && *half_to_float) return std::nullopt;
  }
  if (softmax->op == OpKey::aten_softmax_int && softmax->args.size() > 2 &&
      !std::holds_alternative<ir::NoneArg>(softmax->args[2])) {
    return std::nullopt;  // a dtype conversion
  }
  std::vector<const ir::Node*> nodes{softmax, &pv};
  AttentionOperands a;
  a.v = v;
  a.out = pv.outputs[0];
  a.name = pv.name;
  a.scale = 1.0;
  const ir::Value* scores = softmax->input_values().empty() ? nullptr : softmax->input_values()[0];
  auto producer_is = [&](const ir::Value* x, std::initializer_list<OpKey> ops) {
    if (!x || !x->producer || !only_next(x)) return false;
    for (OpKey op : ops) {
      if (x->producer->op == op) return true;
    }
    return false;
  };
  if (producer_is(scores, {OpKey::aten_add_Tensor})) {
    const ir::Node* add = scores->producer;
    const auto in = add->input_values();
    if (in.size() != 2 || in[0] == in[1]) return std::nullopt;
    if (add->args.size() > 2) {
      const int64_t* alpha = std::get_if<int64_t>(&add->args[2]);
      const double* alpha_f = std::get_if<double>(&add->args[2]);
      if ((alpha && *alpha != 1) || (alpha_f && *alpha_f != 1.0)) return std::nullopt;
    }
    const auto scores_side = [&](const ir::Value* x) {
      return producer_is(
          x, {OpKey::aten_matmul_default, OpKey::aten_div_Tensor, OpKey::aten_mul_Tensor});
    };
    const int side = scores_side(in[0]) ? 0 : scores_side(in[1]) ? 1 : -1;
    if (side < 0) return std::nullopt;
    a.mask = in[1 - side];
    if (a.mask->shape.size() > 4 || a.mask->dtype != scores->dtype) return std::nullopt;
    nodes.insert(nodes.begin(), add);
    scores = in[side];
  }
  if (producer_is(scores, {OpKey::aten_div_Tensor, OpKey::aten_mul_Tensor})) {
    const ir::Node* scale = scores->producer;
    if (scale->args.size() < 2 || scale->input_values().size() != 1) return std::nullopt;
    double c = 0;
    if (const double* d = std::get_if<double>(&scale->args[1])) {
      c = *d;
    } else if (const int64_t* i = std::get_if<int64_t>(&scale->args[1])) {
      c = static_cast<double>(*i);
    } else {
      return std::nullopt;
    }
    if (c == 0 || !std::isfinite(c)) return std::nullopt;
    a.scale = scale->op == OpKey::aten_div_Tensor ? 1.0 / c : c;
    nodes.insert(nodes.begin(), scale);
    scores = scale->input_values()[0];
  }
  if (!producer_is(scores, {OpKey::aten_matmul_default})) return std::nullopt;
  const ir::Node* qk = scores->producer;
  if (qk->input_values().size() != 2) return std::nullopt;
  const ir::Value* kt = qk->input_values()[1];
  if (!is_4d(qk->input_values()[0]) || !is_4d(kt) || !kt->producer) return std::nullopt;
  const ir::Node* transpose = kt->producer;
  bool swaps_last_two = false;
  if (transpose->op == OpKey::aten_permute_default && transpose->args.size() > 1) {
    const auto* dims = std::get_if<std::vector<ir::SymInt>>(&transpose->args[1]);
    swaps_last_two = dims && dims->size() == 4 && !(*dims)[0].value && !(*dims)[1].value &&
                     !(*dims)[2].value && !(*dims)[3].value && (*dims)[0].constant == 0 &&
                     (*dims)[1].constant == 1 && ((*dims)[2].constant & 3) == 3 &&
                     ((*dims)[3].constant & 3) == 2;
  } else if (transpose->op == OpKey::aten_transpose_int && transpose->args.size() > 2) {
    const int64_t* d0 = std::get_if<int64_t>(&transpose->args[1]);
    const int64_t* d1 = std::get_if<int64_t>(&transpose->args[2]);
    swaps_last_two = d0 && d1 && ((*d0 & 3) + (*d1 & 3)) == 5 && (*d0 & 3) != (*d1 & 3);
  }
  if (!swaps_last_two || transpose->input_values().empty()) return std::nullopt;
  a.q = qk->input_values()[0];
  a.k = transpose->input_values()[0];
  if (!is_4d(a.k)) return std::nullopt;
  for (const ir::Value* x : {a.q, a.k, a.v}) {
    if (x->dtype != a.out->dtype || !is_floating(x->dtype)) return std::nullopt;
  }
  nodes.insert(nodes.begin(), qk);
  return std::pair(std::move(a), std::move(nodes));
}

}  // namespace kiln::cuda
