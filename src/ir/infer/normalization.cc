// Shape and dtype inference for the normalization ops: softmax and log_softmax, layer norm, batch
// norm (inference mode), group norm, instance norm and RMS norm. The composite forms (layer_norm,
// group_norm, instance_norm) are kept whole by kiln's lowering and return the output alone.
#include <vector>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

Status check_floating(OpContext& ctx, const Tensor& t, std::string_view what) {
  if (!is_floating(t.dtype())) {
    return op_error(ctx, "expected a floating point ", what, ", found ", dtype_name(t.dtype()));
  }
  return ok_status();
}

// _softmax / _log_softmax (self, dim, half_to_float). PyTorch's CPU kernel rejects half_to_float;
// its CUDA kernel (which exported programs may come from) gives float32 for a float16 or bfloat16
// input, and kiln follows that.
Status softmax(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(check_floating(ctx, self, "input"));
  KILN_RETURN_IF_ERROR(wrap_dim(ctx.int_arg(1), self.dim()), op_name(ctx.node().op), ": ");
  DType out = self.dtype();
  if (ctx.bool_arg(2)) {
    if (out != DType::kFloat16 && out != DType::kBFloat16) {
      return op_error(ctx, "half_to_float expects a float16 or bfloat16 input, found ",
                      dtype_name(out));
    }
    out = DType::kFloat32;
  }
  ctx.set_output(0, Tensor::meta(out, self.sizes()));
  return ctx.error();
}

// softmax.int / log_softmax.int (self, dim, dtype?): the input is converted to `dtype` first.
Status softmax_int(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(wrap_dim(ctx.int_arg(1), self.dim()), op_name(ctx.node().op), ": ");
  const DType out = ctx.scalar_type(2).value_or(self.dtype());
  if (!is_floating(out)) {
    return op_error(ctx, "expected a floating point input or dtype argument, found ",
                    dtype_name(out));
  }
  ctx.set_output(0, Tensor::meta(out, self.sizes()));
  return ctx.error();
}

// The dtype of the statistics outputs. As on PyTorch's CPU, parameters either share the input's
// dtype, or (mixed precision) the input is float16/bfloat16 and every parameter is float32, in
// which case the statistics are float32.
Result<DType> stats_dtype(OpContext& ctx, const Tensor& input,
                          std::initializer_list<std::pair<const char*, const Tensor*>> params) {
  const Tensor* first = nullptr;
  for (const auto& [name, t] : params) {
    if (t && !first) first = t;
  }
  const bool mixed = first && first->dtype() != input.dtype();
  const DType want = mixed ? DType::kFloat32 : input.dtype();
  if (mixed && input.dtype() != DType::kFloat16 && input.dtype() != DType::kBFloat16) {
    return op_error(ctx, "expected parameters of the input's dtype ", dtype_name(input.dtype()),
                    ", found ", dtype_name(first->dtype()),
                    " (mixed dtypes need a float16/bfloat16 input and float32 parameters)");
  }
  for (const auto& [name, t] : params) {
    if (t && t->dtype() != want) {
      return op_error(ctx, "expected ", name, " to have dtype ", dtype_name(want), ", found ",
                      dtype_name(t->dtype()));
    }
  }
  return want;
}

// Checks that `normalized_shape` is the trailing shape of `input` (and of weight/bias when given);
// returns the number of leading dims.
Result<int64_t> check_normalized_shape(
    OpContext& ctx, const Tensor& input, const Shape& normalized,
    std::initializer_list<std::pair<const char*, const Tensor*>> params) {
  if (normalized.empty()) {
    return op_error(ctx, "expected normalized_shape to have at least one element, found []");
  }
  const int64_t axis = input.dim() - static_cast<int64_t>(normalized.size());
  if (axis < 0 || !std::equal(normalized.begin(), normalized.end(), input.sizes().begin() + axis)) {
    return op_error(ctx, "expected an input of shape [*, ", shape_to_string(normalized).substr(1),
                    " for normalized_shape ", shape_to_string(normalized), ", found ",
                    shape_to_string(input.sizes()));
  }
  for (const auto& [name, t] : params) {
    if (t && t->sizes() != normalized) {
      return op_error(ctx, "expected ", name, " of shape ", shape_to_string(normalized),
                      " (normalized_shape), found ", shape_to_string(t->sizes()));
    }
  }
  return axis;
}

// input.shape[:axis] followed by ones: the shape of per-row statistics.
Shape row_stats_shape(const Tensor& input, int64_t axis) {
  Shape shape(input.sizes().begin(), input.sizes().begin() + axis);
  shape.resize(input.sizes().size(), 1);
  return shape;
}

// native_layer_norm(input, normalized_shape, weight?, bias?, eps) -> (out, mean, rstd) and
// layer_norm(input, normalized_shape, weight?, bias?, eps, cudnn_enable) -> out.
Status layer_norm(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor* weight = ctx.optional_tensor(2);
  const Tensor* bias = ctx.optional_tensor(3);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  KILN_ASSIGN_OR_RETURN(int64_t axis, check_normalized_shape(ctx, input, ctx.ints(1),
                                                             {{"weight", weight}, {"bias", bias}}));
  KILN_ASSIGN_OR_RETURN(DType stats, stats_dtype(ctx, input, {{"weight", weight}, {"bias", bias}}));
  // PyTorch's CUDA kernel keeps mean and rstd in the accumulation type, float32 for a float16 or
  // bfloat16 input, where its CPU kernel uses the rule above: follow what the program recorded
  // when it is one of the two. (native_group_norm has one rule on both devices; native batch
  // norm's saved statistics are handled in batch_norm_outputs.)
  const ir::Node& node = ctx.node();
  if (ctx.num_outputs() > 1 && (input.dtype() == DType::kFloat16 ||
                                input.dtype() == DType::kBFloat16)) {
    const ir::Value* recorded = node.outputs.size() > 1 ? node.outputs[1] : nullptr;
    if (recorded && recorded->has_recorded_meta && recorded->dtype == DType::kFloat32) {
      stats = DType::kFloat32;
    }
  }
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  if (ctx.num_outputs() > 1) {
    ctx.set_output(1, Tensor::meta(stats, row_stats_shape(input, axis)));
    ctx.set_output(2, Tensor::meta(stats, row_stats_shape(input, axis)));
  }
  return ctx.error();
}

// rms_norm(input, normalized_shape, weight?, eps?) -> out and
// _fused_rms_norm(input, normalized_shape, weight?, eps?) -> (out, rstd). The weight may have any
// floating dtype; rstd is float32 (float64 for a float64 input).
Status rms_norm(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor* weight = ctx.optional_tensor(2);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  if (weight) KILN_RETURN_IF_ERROR(check_floating(ctx, *weight, "weight"));
  KILN_ASSIGN_OR_RETURN(int64_t axis,
                        check_normalized_shape(ctx, input, ctx.ints(1), {{"weight", weight}}));
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  if (ctx.num_outputs() > 1) {
    const DType stats = input.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    ctx.set_output(1, Tensor::meta(stats, row_stats_shape(input, axis)));
  }
  return ctx.error();
}

Status check_rank_at_least_2(OpContext& ctx, const Tensor& input) {
  if (input.dim() < 2) {
    return op_error(ctx, "expected an input of shape [N, C, *] (rank >= 2), found ",
                    shape_to_string(input.sizes()));
  }
  return ok_status();
}

// Checks a per-channel parameter: one value per channel.
Status check_channel_param(OpContext& ctx, const Tensor* t, const char* name, int64_t channels) {
  if (t && (t->dim() != 1 || t->size(0) != channels)) {
    return op_error(ctx, "expected ", name, " of shape [", channels, "] (one per channel), found ",
                    shape_to_string(t->sizes()));
  }
  return ok_status();
}

// Batch norm with running statistics: (input, weight?, bias?, running_mean, running_var) at
// positions 0..4. save_mean and save_invstd are empty, as PyTorch returns them outside training.
Status batch_norm_outputs(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor* weight = ctx.optional_tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  const Tensor* mean = ctx.optional_tensor(3);
  const Tensor* var = ctx.optional_tensor(4);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  KILN_RETURN_IF_ERROR(check_rank_at_least_2(ctx, input));
  if (!mean || !var) {
    return op_error(ctx, "expected running_mean and running_var when training is False");
  }
  const int64_t channels = input.size(1);
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, weight, "weight", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, bias, "bias", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, mean, "running_mean", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, var, "running_var", channels));
  KILN_ASSIGN_OR_RETURN(
      DType stats,
      stats_dtype(
          ctx, input,
          {{"weight", weight}, {"bias", bias}, {"running_mean", mean}, {"running_var", var}}));
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  // The saved statistics of an inference batch norm are empty on CPU but hold C values where
  // PyTorch ran cuDNN's kernel (CUDA exports): follow what the program recorded.
  // (cuDNN keeps them in float32 for half-precision inputs.)
  int64_t saved = 0;
  DType saved_dtype = stats;
  const ir::Node& node = ctx.node();
  if (node.outputs.size() > 1 && node.outputs[1] && node.outputs[1]->shape.size() == 1 &&
      node.outputs[1]->shape[0].is_static() && node.outputs[1]->shape[0].value == channels) {
    saved = channels;
    if (node.outputs[1]->has_recorded_meta && is_floating(node.outputs[1]->dtype)) {
      saved_dtype = node.outputs[1]->dtype;
    }
  }
  ctx.set_output(1, Tensor::meta(saved_dtype, {saved}));
  ctx.set_output(2, Tensor::meta(saved_dtype, {saved}));
  return ctx.error();
}

// The dtype of training batch norm's saved statistics: the parameters' rule, or float32 for a
// 16-bit input where the program recorded that (PyTorch's CUDA kernel keeps them in its
// accumulation type).
DType saved_stats_dtype(OpContext& ctx, const Tensor& input, DType stats) {
  const ir::Node& node = ctx.node();
  const ir::Value* recorded = node.outputs.size() > 1 ? node.outputs[1] : nullptr;
  if ((input.dtype() == DType::kFloat16 || input.dtype() == DType::kBFloat16) && recorded &&
      recorded->has_recorded_meta && recorded->dtype == DType::kFloat32) {
    return DType::kFloat32;
  }
  return stats;
}

// _native_batch_norm_legit.no_stats(input, weight?, bias?, training, momentum, eps)
// -> (out, save_mean, save_invstd): training-mode batch norm by the batch's own statistics, with
// no running statistics to update. The saved statistics hold one value per channel.
Status batch_norm_batch_stats(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor* weight = ctx.optional_tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  KILN_RETURN_IF_ERROR(check_rank_at_least_2(ctx, input));
  if (!ctx.bool_arg(3)) {
    return op_error(ctx, "expected training=True (without running statistics there is nothing "
                         "to normalize by outside training), found training=False");
  }
  const int64_t channels = input.size(1);
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, weight, "weight", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, bias, "bias", channels));
  KILN_ASSIGN_OR_RETURN(DType stats,
                        stats_dtype(ctx, input, {{"weight", weight}, {"bias", bias}}));
  stats = saved_stats_dtype(ctx, input, stats);
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  ctx.set_output(1, Tensor::meta(stats, {channels}));
  ctx.set_output(2, Tensor::meta(stats, {channels}));
  return ctx.error();
}

// _native_batch_norm_legit_functional(input, weight?, bias?, running_mean, running_var, training,
// momentum, eps) -> (out, save_mean, save_invstd, running_mean_out, running_var_out): what
// torch.export makes of _native_batch_norm_legit, which updates the running statistics in place;
// the updated ones are outputs here (the program copies them back). Outside training the running
// statistics normalize and come back unchanged.
Status batch_norm_functional(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& mean = ctx.tensor(3);
  const Tensor& var = ctx.tensor(4);
  if (!ctx.bool_arg(5)) {
    KILN_RETURN_IF_ERROR(batch_norm_outputs(ctx));
  } else {
    KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
    KILN_RETURN_IF_ERROR(check_rank_at_least_2(ctx, input));
    const Tensor* weight = ctx.optional_tensor(1);
    const Tensor* bias = ctx.optional_tensor(2);
    const int64_t channels = input.size(1);
    KILN_RETURN_IF_ERROR(check_channel_param(ctx, weight, "weight", channels));
    KILN_RETURN_IF_ERROR(check_channel_param(ctx, bias, "bias", channels));
    KILN_RETURN_IF_ERROR(check_channel_param(ctx, &mean, "running_mean", channels));
    KILN_RETURN_IF_ERROR(check_channel_param(ctx, &var, "running_var", channels));
    KILN_ASSIGN_OR_RETURN(
        DType stats,
        stats_dtype(
            ctx, input,
            {{"weight", weight}, {"bias", bias}, {"running_mean", &mean}, {"running_var", &var}}));
    stats = saved_stats_dtype(ctx, input, stats);
    ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
    ctx.set_output(1, Tensor::meta(stats, {channels}));
    ctx.set_output(2, Tensor::meta(stats, {channels}));
  }
  // The running statistics come back in their own dtype, or where the program recorded float32
  // (torch's meta function for it upcasts 16-bit ones; the program then casts them back), in that.
  const ir::Node& node = ctx.node();
  for (int i : {3, 4}) {
    const Tensor& running = i == 3 ? mean : var;
    const ir::Value* recorded = node.outputs.size() > static_cast<size_t>(i) ? node.outputs[i]
                                                                             : nullptr;
    const bool upcast = recorded && recorded->has_recorded_meta &&
                        recorded->dtype == DType::kFloat32 &&
                        (running.dtype() == DType::kFloat16 || running.dtype() == DType::kBFloat16);
    ctx.set_output(i, Tensor::meta(upcast ? DType::kFloat32 : running.dtype(), running.sizes()));
  }
  return ctx.error();
}

// native_batch_norm(input, weight?, bias?, running_mean?, running_var?, training, momentum, eps)
Status native_batch_norm(OpContext& ctx) {
  if (ctx.bool_arg(5)) {
    return unsupported(op_name(ctx.node().op), " (node '", ctx.node().name,
                       "'): training=True (batch statistics and running-stat updates) is not "
                       "supported; export the model in eval mode");
  }
  return batch_norm_outputs(ctx);
}

// What both forms of group norm check: a positive number of groups dividing the channels, and
// per-channel weight and bias. Returns the statistics' dtype.
Result<DType> check_groups(OpContext& ctx, const Tensor& input, const Tensor* weight,
                           const Tensor* bias, int64_t channels, int64_t groups,
                           const char* groups_name) {
  if (groups <= 0 || channels % groups != 0) {
    return op_error(ctx, "expected the number of channels (", channels,
                    ") to be divisible by a positive number of groups, found ", groups_name, "=",
                    groups);
  }
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, weight, "weight", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, bias, "bias", channels));
  return stats_dtype(ctx, input, {{"weight", weight}, {"bias", bias}});
}

// native_group_norm(input, weight?, bias?, N, C, HxW, group, eps) -> (out, mean, rstd)
Status group_norm(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor* weight = ctx.optional_tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  const int64_t n = ctx.int_arg(3), c = ctx.int_arg(4), hxw = ctx.int_arg(5);
  const int64_t groups = ctx.int_arg(6);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  if (input.dim() < 2 || input.size(0) != n || input.size(1) != c ||
      shape_numel(std::span(input.sizes()).subspan(2)) != hxw) {
    return op_error(ctx, "expected an input of shape [N=", n, ", C=", c, ", *] with HxW=", hxw,
                    " elements per channel, found ", shape_to_string(input.sizes()));
  }
  KILN_ASSIGN_OR_RETURN(DType stats, check_groups(ctx, input, weight, bias, c, groups, "group"));
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  ctx.set_output(1, Tensor::meta(stats, {n, groups}));
  ctx.set_output(2, Tensor::meta(stats, {n, groups}));
  return ctx.error();
}

// group_norm(input, num_groups, weight?, bias?, eps, cudnn_enabled) -> out
Status group_norm_composite(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  KILN_RETURN_IF_ERROR(check_rank_at_least_2(ctx, input));
  KILN_RETURN_IF_ERROR(check_groups(ctx, input, ctx.optional_tensor(2), ctx.optional_tensor(3),
                                    input.size(1), ctx.int_arg(1), "num_groups"));
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  return ctx.error();
}

// instance_norm(input, weight?, bias?, running_mean?, running_var?, use_input_stats, momentum, eps,
// cudnn_enabled) -> out. With use_input_stats each (sample, channel) plane is normalized by its own
// statistics and the running statistics are not read (PyTorch only updates them, a training side
// effect); without, the running statistics normalize every sample, as batch norm does.
Status instance_norm(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor* weight = ctx.optional_tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  const Tensor* mean = ctx.optional_tensor(3);
  const Tensor* var = ctx.optional_tensor(4);
  KILN_RETURN_IF_ERROR(check_floating(ctx, input, "input"));
  KILN_RETURN_IF_ERROR(check_rank_at_least_2(ctx, input));
  if (!ctx.bool_arg(5) && (!mean || !var)) {
    return op_error(ctx, "expected running_mean and running_var when use_input_stats is False");
  }
  const int64_t channels = input.size(1);
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, weight, "weight", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, bias, "bias", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, mean, "running_mean", channels));
  KILN_RETURN_IF_ERROR(check_channel_param(ctx, var, "running_var", channels));
  KILN_RETURN_IF_ERROR(stats_dtype(
      ctx, input,
      {{"weight", weight}, {"bias", bias}, {"running_mean", mean}, {"running_var", var}}));
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  return ctx.error();
}

}  // namespace

Status register_normalization_inference(OpFunctionTable& table) {
  return add_all(table,
                 {
                     {OpKey::aten__softmax_default, softmax},
                     {OpKey::aten__log_softmax_default, softmax},
                     {OpKey::aten_softmax_int, softmax_int},
                     {OpKey::aten_log_softmax_int, softmax_int},
                     {OpKey::aten_native_layer_norm_default, layer_norm},
                     {OpKey::aten_layer_norm_default, layer_norm},
                     {OpKey::aten_rms_norm_default, rms_norm},
                     {OpKey::aten__fused_rms_norm_default, rms_norm},
                     {OpKey::aten__native_batch_norm_legit_no_training_default, batch_norm_outputs},
                     {OpKey::aten_native_batch_norm_default, native_batch_norm},
                     {OpKey::aten__native_batch_norm_legit_no_stats, batch_norm_batch_stats},
                     {OpKey::aten__native_batch_norm_legit_functional_default, batch_norm_functional},
                     {OpKey::aten_native_group_norm_default, group_norm},
                     {OpKey::aten_group_norm_default, group_norm_composite},
                     {OpKey::aten_instance_norm_default, instance_norm},
                 });
}

}  // namespace kiln::ir
