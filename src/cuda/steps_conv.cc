// Convolution steps on cuDNN: aten.convolution with its bias, and a residual add and ReLU that
// follow it folded into the same cuDNN graph.
#include "cuda/conv.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

std::vector<int64_t> int_list(const ir::Argument& arg) {
  std::vector<int64_t> out;
  if (const auto* list = std::get_if<std::vector<ir::SymInt>>(&arg)) {
    for (const ir::SymInt& s : *list) out.push_back(s.constant);
  }
  return out;
}

// 1-D convolutions run as 2-D ones with a height of 1.
Tensor as_2d(const Tensor& t) {
  if (t.dim() != 3) return t;
  Shape sizes{t.size(0), t.size(1), 1, t.size(2)};
  Shape strides{t.strides()[0], t.strides()[1], t.size(2) * t.strides()[2], t.strides()[2]};
  return t.view_as(sizes, strides, t.offset());
}

}  // namespace

Result<std::unique_ptr<Step>> make_conv_step(const ir::Node& node, const ir::Node* residual_add,
                                             const ir::Node* relu, const Slots& slots,
                                             const PlanOptions& options, bool channels_last,
                                             ModuleSource& module) {
  auto value_arg = [&](size_t i) -> const ir::Value* {
    if (i >= node.args.size()) return nullptr;
    const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
    return v ? *v : nullptr;
  };
  const ir::Value* x = value_arg(0);
  const ir::Value* w = value_arg(1);
  const ir::Value* bias = value_arg(2);
  if (!x || !w) return unsupported("convolution '", node.name, "' without tensor operands");
  // aten.convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups), or
  // the kept-whole aten.conv1d/conv2d/conv3d(x, w, b, stride, padding, dilation, groups).
  const bool generic = node.op == ir::OpKey::aten_convolution_default;
  std::vector<int64_t> stride = int_list(node.args[3]);
  std::vector<int64_t> padding = int_list(node.args[4]);
  std::vector<int64_t> dilation = int_list(node.args[5]);
  const bool not_transposed = false;
  const bool* transposed = generic ? std::get_if<bool>(&node.args[6]) : &not_transposed;
  std::vector<int64_t> output_padding = generic ? int_list(node.args[7]) : std::vector<int64_t>{};
  const int64_t* groups = std::get_if<int64_t>(&node.args[generic ? 8 : 6]);
  if (!transposed || !groups) return unsupported("convolution '", node.name, "': bad arguments");
  // Single values stand for every spatial dim.
  const size_t spatial = x->shape.size() - 2;
  for (std::vector<int64_t>* list : {&stride, &padding, &dilation}) {
    if (list->size() == 1 && spatial > 1) list->assign(spatial, (*list)[0]);
  }
  if (!output_padding.empty() && output_padding.size() == 1 && spatial > 1) {
    output_padding.assign(spatial, output_padding[0]);
  }
  const ir::Value* residual = nullptr;
  if (residual_add) {
    for (const ir::Value* v : residual_add->input_values()) {
      if (v != node.outputs[0]) residual = v;
    }
  }
  const ir::Node* last = relu ? relu : residual_add ? residual_add : &node;
  const ir::Value* out = last->outputs[0];
  const bool one_d = x->shape.size() == 3;
  if (one_d) {
    stride.insert(stride.begin(), 1);
    padding.insert(padding.begin(), 0);
    dilation.insert(dilation.begin(), 1);
    if (!output_padding.empty()) output_padding.insert(output_padding.begin(), 0);
  }
  const bool allow_tf32 = options.allow_tf32;
  const bool is_transposed = *transposed;
  const int64_t group_count = *groups;
  const std::string name = last->name;
  const std::string copy = channels_last ? copy_kernel(module, x->dtype, x->dtype) : "";
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
    Tensor tx = as_2d(slot_tensor(slots, x));
    std::optional<std::pair<Tensor, Tensor>> to_nhwc;
    cudaKernel_t copy_fn = nullptr;
    if (channels_last && tx.dim() == 4 &&
        tx.strides() != layout_strides(tx.sizes(), Layout::kChannelsLast)) {
      KILN_ASSIGN_OR_RETURN(
          Tensor nhwc,
          scratch_tensor(ctx, index, 0, tx, layout_strides(tx.sizes(), Layout::kChannelsLast)));
      KILN_ASSIGN_OR_RETURN(copy_fn, ctx.kernel(copy));
      to_nhwc = std::pair(tx, nhwc);
      tx = nhwc;
    }
    const Tensor tw = as_2d(slot_tensor(slots, w));
    const Tensor ty = as_2d(slot_tensor(slots, out));
    ConvDesc desc;
    desc.dtype = ty.dtype();
    desc.x_dims = tx.sizes();
    desc.x_strides = tx.strides();
    desc.w_dims = tw.sizes();
    desc.w_strides = tw.strides();
    desc.y_dims = ty.sizes();
    desc.y_strides = ty.strides();
    desc.stride = stride;
    desc.padding = padding;
    desc.dilation = dilation;
    desc.output_padding = output_padding;
    desc.groups = group_count;
    desc.transposed = is_transposed;
    desc.has_bias = bias != nullptr;
    desc.has_residual = residual != nullptr;
    desc.activation = relu ? ConvActivation::kRelu : ConvActivation::kNone;
    desc.allow_tf32 = allow_tf32;
    ConvArgs args;
    std::optional<std::pair<Tensor, Tensor>> residual_copy;
    if (residual) {
      Tensor tr = as_2d(slot_tensor(slots, residual));
      if (tr.sizes() != ty.sizes()) {
        return internal_error("convolution step '", name, "': residual ", tr.description(),
                              " differs in shape from the output ", ty.description());
      }
      if (tr.strides() != ty.strides() && !channels_last) {
        return internal_error("convolution step '", name, "': residual strides ",
                              shape_to_string(tr.strides()), " differ from the output's ",
                              shape_to_string(ty.strides()));
      }
      if (tr.strides() != ty.strides()) {  // cuDNN adds it in the output's layout
        KILN_ASSIGN_OR_RETURN(Tensor same, scratch_tensor(ctx, index, 1, ty, ty.strides()));
        if (!copy_fn) {
          KILN_ASSIGN_OR_RETURN(copy_fn, ctx.kernel(copy));
        }
        residual_copy = std::pair(tr, same);
        tr = same;
      }
      args.residual = tr.raw_data();
    }
    if (ty.numel() == 0) return Launch([](cudaStream_t) { return ok_status(); });
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<const ConvPlan> plan, ctx.conv_plan(desc),
                          "convolution step '", name, "'");
    args.x = tx.raw_data();
    args.w = tw.raw_data();
    args.bias = bias ? slot_tensor(slots, bias).raw_data() : nullptr;
    args.y = ty.raw_data();
    args.workspace = ctx.workspace();
    args.workspace_bytes = ctx.workspace_bytes();
    return Launch([plan, args, to_nhwc, residual_copy, copy_fn](cudaStream_t stream) -> Status {
      if (to_nhwc) {
        KILN_RETURN_IF_ERROR(launch_copy(copy_fn, to_nhwc->first, to_nhwc->second, stream));
      }
      if (residual_copy) {
        KILN_RETURN_IF_ERROR(
            launch_copy(copy_fn, residual_copy->first, residual_copy->second, stream));
      }
      return plan->run(args, stream);
    });
  };
  std::string what = "conv";
  if (bias) what += "+bias";
  if (residual_add) what += "+add";
  if (relu) what += "+relu";
  auto step = std::make_unique<FunctionStep>("conv", str_cat(what, " -> ", out->name), bind);
  step->reads = {x->id, w->id};
  if (bias) step->reads.push_back(bias->id);
  if (residual) step->reads.push_back(residual->id);
  step->writes = {out->id};
  step->name = name;
  if (channels_last) {
    step->scratch_bytes = {slots[x->id].tensor.nbytes(),
                           residual ? slots[residual->id].tensor.nbytes() : 0};
  }
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace kiln::cuda
