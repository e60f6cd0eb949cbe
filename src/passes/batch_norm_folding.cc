#include "passes/batch_norm_folding.h"

#include <cmath>

#include "passes/program_edit.h"

namespace kiln::passes {
namespace {

using ir::OpKey;

struct BatchNorm {
  const Tensor* gamma = nullptr;  // null: 1
  const Tensor* beta = nullptr;   // null: 0
  const Tensor* mean = nullptr;
  const Tensor* var = nullptr;
  double eps = 0.0;
};

// How a layer's weight holds its output channels.
enum class ChannelAxis : uint8_t {
  kFirst,       // [out, ...]: convolution, linear
  kTransposed,  // [in, out / groups, ...]: transposed convolution
  kLast,        // [in, out]: addmm's mat2
};

struct Layer {
  size_t weight_arg = 0;
  size_t bias_arg = 0;
  ChannelAxis axis = ChannelAxis::kFirst;
  int64_t groups = 1;
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;  // null: no bias
  int64_t channels = 0;
};

std::optional<double> constant_number(const ir::Argument& arg) {
  if (auto* d = std::get_if<double>(&arg)) return *d;
  if (auto* i = std::get_if<int64_t>(&arg)) return static_cast<double>(*i);
  return std::nullopt;
}

// A `Tensor?` argument: `*tensor` is null for None; false when the argument is a non-constant.
bool optional_weight(const ir::Program& program, const ir::Argument& arg, const Tensor** tensor) {
  *tensor = nullptr;
  if (std::holds_alternative<ir::NoneArg>(arg)) return true;
  const auto* v = std::get_if<ir::Value*>(&arg);
  if (!v || !*v) return false;
  *tensor = weight_tensor(program, *v);
  return *tensor != nullptr;
}

bool unused(const ir::Value* v, const std::vector<bool>& is_output) {
  return !v || (v->users.empty() && !is_output[v->id]);
}

std::optional<BatchNorm> match_batch_norm(const ir::Program& program, const ir::Node& node,
                                          const std::vector<bool>& is_output) {
  size_t eps_arg = 0;
  switch (node.op) {
    case OpKey::aten__native_batch_norm_legit_no_training_default: eps_arg = 6; break;
    case OpKey::aten_batch_norm_default:
    case OpKey::aten_native_batch_norm_default: {
      const auto* training = std::get_if<bool>(&node.args[5]);
      if (!training || *training) return std::nullopt;
      eps_arg = 7;
      break;
    }
    default: return std::nullopt;
  }
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (!unused(node.outputs[i], is_output)) return std::nullopt;
  }
  BatchNorm bn;
  if (!optional_weight(program, node.args[1], &bn.gamma) ||
      !optional_weight(program, node.args[2], &bn.beta) ||
      !optional_weight(program, node.args[3], &bn.mean) ||
      !optional_weight(program, node.args[4], &bn.var) || !bn.mean || !bn.var) {
    return std::nullopt;
  }
  auto eps = constant_number(node.args[eps_arg]);
  if (!eps) return std::nullopt;
  bn.eps = *eps;
  return bn;
}

std::optional<Layer> match_layer(const ir::Program& program, const ir::Node& node) {
  Layer layer;
  std::optional<int64_t> groups = 1;
  auto int_arg = [&](size_t i) -> std::optional<int64_t> {
    if (auto* v = std::get_if<int64_t>(&node.args[i])) return *v;
    return std::nullopt;
  };
  switch (node.op) {
    case OpKey::aten_convolution_default:
    case OpKey::aten__convolution_default: {
      const auto* transposed = std::get_if<bool>(&node.args[6]);
      if (!transposed) return std::nullopt;
      layer = {1, 2, *transposed ? ChannelAxis::kTransposed : ChannelAxis::kFirst};
      groups = int_arg(8);
      break;
    }
    case OpKey::aten_conv1d_default:
    case OpKey::aten_conv2d_default:
    case OpKey::aten_conv3d_default:
    case OpKey::aten_conv1d_padding:
    case OpKey::aten_conv2d_padding:
    case OpKey::aten_conv3d_padding:
      layer = {1, 2, ChannelAxis::kFirst};
      groups = int_arg(6);
      break;
    case OpKey::aten_conv_transpose1d_default:
    case OpKey::aten_conv_transpose2d_input:
    case OpKey::aten_conv_transpose3d_input:
      layer = {1, 2, ChannelAxis::kTransposed};
      groups = int_arg(6);
      break;
    case OpKey::aten_addmm_default: {
      auto beta = constant_number(node.args[3]);
      auto alpha = constant_number(node.args[4]);
      if (!beta || !alpha || *beta != 1.0 || *alpha != 1.0) return std::nullopt;
      layer = {2, 0, ChannelAxis::kLast};
      break;
    }
    case OpKey::aten_linear_default: {
      const ir::Value* out = node.outputs[0];
      if (!out || !out->has_recorded_meta || out->shape.size() != 2) return std::nullopt;
      layer = {1, 2, ChannelAxis::kFirst};
      break;
    }
    default: return std::nullopt;
  }
  if (!groups || *groups < 1) return std::nullopt;
  layer.groups = *groups;
  const auto* weight = std::get_if<ir::Value*>(&node.args[layer.weight_arg]);
  layer.weight = weight ? weight_tensor(program, *weight) : nullptr;
  if (!layer.weight || !is_floating(layer.weight->dtype()) ||
      !optional_weight(program, node.args[layer.bias_arg], &layer.bias)) {
    return std::nullopt;
  }
  const Tensor& w = *layer.weight;
  switch (layer.axis) {
    case ChannelAxis::kFirst:
      if (w.dim() < 1) return std::nullopt;
      layer.channels = w.size(0);
      break;
    case ChannelAxis::kTransposed:
      if (w.dim() < 2 || w.size(0) % layer.groups != 0) return std::nullopt;
      layer.channels = w.size(1) * layer.groups;
      break;
    case ChannelAxis::kLast:
      if (w.dim() != 2) return std::nullopt;
      layer.channels = w.size(1);
      break;
  }
  if (node.op == OpKey::aten_addmm_default && (!layer.bias || layer.bias->dim() != 1)) {
    return std::nullopt;  // a broadcast [M, N] bias is not per channel
  }
  if (layer.bias && layer.bias->numel() != layer.channels) return std::nullopt;
  return layer;
}

Result<std::vector<double>> to_doubles(const Tensor* t, int64_t n, double absent) {
  if (!t) return std::vector<double>(static_cast<size_t>(n), absent);
  KILN_ASSIGN_OR_RETURN(Tensor d, t->to(DType::kFloat64));
  const double* data = d.data<double>();
  return std::vector<double>(data, data + d.numel());
}

Result<Tensor> from_doubles(const std::vector<double>& values, Shape sizes, DType dtype) {
  KILN_ASSIGN_OR_RETURN(Tensor d, Tensor::empty(DType::kFloat64, std::move(sizes)));
  std::copy(values.begin(), values.end(), d.data<double>());
  return d.to(dtype);
}

// Which output channel element `e` (row-major) of the layer's weight belongs to.
int64_t channel_of(const Layer& layer, const Tensor& w, int64_t e) {
  const int64_t inner = w.numel() / std::max<int64_t>(w.size(0), 1);
  switch (layer.axis) {
    case ChannelAxis::kFirst: return e / inner;
    case ChannelAxis::kLast: return e % layer.channels;
    case ChannelAxis::kTransposed: {
      const int64_t in = e / inner;
      const int64_t out_in_group = (e % inner) / (inner / w.size(1));
      return (in / (w.size(0) / layer.groups)) * w.size(1) + out_in_group;
    }
  }
  return 0;
}

struct Folded {
  Tensor weight;
  Tensor bias;
};

Result<Folded> fold(const Layer& layer, const BatchNorm& bn) {
  const int64_t c = layer.channels;
  KILN_ASSIGN_OR_RETURN(auto gamma, to_doubles(bn.gamma, c, 1.0));
  KILN_ASSIGN_OR_RETURN(auto beta, to_doubles(bn.beta, c, 0.0));
  KILN_ASSIGN_OR_RETURN(auto mean, to_doubles(bn.mean, c, 0.0));
  KILN_ASSIGN_OR_RETURN(auto var, to_doubles(bn.var, c, 0.0));
  KILN_ASSIGN_OR_RETURN(auto bias, to_doubles(layer.bias, c, 0.0));
  std::vector<double> scale(static_cast<size_t>(c));
  for (size_t i = 0; i < scale.size(); ++i) {
    scale[i] = gamma[i] / std::sqrt(var[i] + bn.eps);
    bias[i] = (bias[i] - mean[i]) * scale[i] + beta[i];
  }
  const Tensor& w = *layer.weight;
  KILN_ASSIGN_OR_RETURN(auto weight, to_doubles(&w, w.numel(), 0.0));
  for (int64_t e = 0; e < w.numel(); ++e) weight[e] *= scale[channel_of(layer, w, e)];
  Folded folded;
  KILN_ASSIGN_OR_RETURN(folded.weight, from_doubles(weight, w.sizes(), w.dtype()));
  KILN_ASSIGN_OR_RETURN(folded.bias,
                        from_doubles(bias, {c}, layer.bias ? layer.bias->dtype() : w.dtype()));
  return folded;
}

}  // namespace

Result<int> fold_batch_norms(ir::Program& program, std::vector<std::string>* log) {
  ir::Graph& graph = program.graph;
  graph.link();
  const std::vector<bool> is_output = graph_output_mask(graph);
  std::vector<bool> removed(graph.nodes().size(), false);
  int changes = 0;
  for (ir::Node& node : graph.nodes()) {
    if (node.outputs.empty() || !node.outputs[0] || node.args.empty()) continue;
    const auto* input = std::get_if<ir::Value*>(&node.args[0]);
    if (!input || !*input || !(*input)->producer) continue;
    ir::Value* x = *input;
    ir::Node& layer_node = *x->producer;
    if (x->users.size() != 1 || is_output[x->id] || layer_node.outputs.size() != 1 ||
        layer_node.outputs[0] != x || x->dtype != node.outputs[0]->dtype) {
      continue;
    }
    auto bn = match_batch_norm(program, node, is_output);
    if (!bn) continue;
    auto layer = match_layer(program, layer_node);
    if (!layer || bn->mean->numel() != layer->channels || bn->var->numel() != layer->channels ||
        (bn->gamma && bn->gamma->numel() != layer->channels) ||
        (bn->beta && bn->beta->numel() != layer->channels)) {
      continue;
    }
    if (x->shape.size() < 2 || (x->shape[1].is_static() && x->shape[1].value != layer->channels)) {
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Folded folded, fold(*layer, *bn), "while folding batch norm '", node.name,
                          "' into '", layer_node.name, "'");
    const ir::Value* old_weight = std::get<ir::Value*>(layer_node.args[layer->weight_arg]);
    const auto* old_bias = std::get_if<ir::Value*>(&layer_node.args[layer->bias_arg]);
    ir::Value* weight =
        add_constant(program, folded_name(old_weight->name), std::move(folded.weight));
    ir::Value* bias = add_constant(
        program,
        old_bias ? folded_name((*old_bias)->name) : folded_name(str_cat(layer_node.name, "_bias")),
        std::move(folded.bias));
    layer_node.args[layer->weight_arg] = weight;
    layer_node.args[layer->bias_arg] = bias;
    // The batch norm's result keeps its name: the layer produces it now.
    layer_node.outputs[0] = node.outputs[0];
    node.outputs[0] = nullptr;
    removed[node.id] = true;
    ++changes;
    log_change(log, "batch_norm_folding: folded '", node.name, "' (", ir::op_name(node.op),
               ") into '", layer_node.name, "' (", ir::op_name(layer_node.op), "): weight '",
               weight->name, "', bias '", bias->name, "'");
  }
  if (changes == 0) return 0;
  graph.erase_nodes([&](const ir::Node& node) { return removed[node.id]; });
  compact(program);
  return changes;
}

}  // namespace kiln::passes
