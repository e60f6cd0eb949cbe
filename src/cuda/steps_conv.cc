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

// An unbatched input or output (PyTorch's conv1d/2d/3d take one image as [C, spatial...]) as a
// batch of one.
Tensor with_batch(const Tensor& t, bool unbatched) {
  if (!unbatched) return t;
  Shape sizes = t.sizes(), strides = t.strides();
  sizes.insert(sizes.begin(), 1);
  strides.insert(strides.begin(), std::max<int64_t>(t.numel(), 1));
  return t.view_as(sizes, strides, t.offset());
}

// 1-D convolutions run as 2-D ones with a height of 1.
Tensor as_2d(const Tensor& t) {
  if (t.dim() != 3) return t;
  Shape sizes{t.size(0), t.size(1), 1, t.size(2)};
  Shape strides{t.strides()[0], t.strides()[1], t.size(2) * t.strides()[2], t.strides()[2]};
  return t.view_as(sizes, strides, t.offset());
}

struct ConvArgsOfNode {
  std::vector<int64_t> stride, padding, dilation, output_padding;
  bool transposed = false;
  int64_t groups = 1;
};

// aten.convolution(x, w, b, stride, padding, dilation, transposed, output_padding, groups), or
// the kept-whole aten.conv1d/conv2d/conv3d(x, w, b, stride, padding, dilation, groups); single
// values stand for every spatial dim.
Result<ConvArgsOfNode> conv_args(const ir::Node& node, size_t spatial) {
  ConvArgsOfNode c;
  const bool generic = node.op == ir::OpKey::aten_convolution_default;
  if (node.args.size() < (generic ? 9u : 7u)) {
    return unsupported("convolution '", node.name, "': bad arguments");
  }
  c.stride = int_list(node.args[3]);
  c.padding = int_list(node.args[4]);
  c.dilation = int_list(node.args[5]);
  const bool* transposed = generic ? std::get_if<bool>(&node.args[6]) : nullptr;
  if (generic && !transposed) return unsupported("convolution '", node.name, "': bad arguments");
  c.transposed = transposed && *transposed;
  if (generic) c.output_padding = int_list(node.args[7]);
  const int64_t* groups = std::get_if<int64_t>(&node.args[generic ? 8 : 6]);
  if (!groups) return unsupported("convolution '", node.name, "': bad arguments");
  c.groups = *groups;
  for (std::vector<int64_t>* list : {&c.stride, &c.padding, &c.dilation, &c.output_padding}) {
    if (list->size() == 1 && spatial > 1) list->assign(spatial, (*list)[0]);
  }
  return c;
}

// A 2-D convolution whose kernel tiles its input: stride == kernel size, no padding, no
// dilation, one group, not transposed (ViT's patch embedding).
bool tiles_input(const ConvArgsOfNode& c, const Shape& w) {
  if (w.size() != 4 || c.transposed || c.groups != 1 || c.stride.size() != 2) return false;
  for (int64_t p : c.padding) {
    if (p != 0) return false;
  }
  for (int64_t d : c.dilation) {
    if (d != 1) return false;
  }
  return c.stride[0] == w[2] && c.stride[1] == w[3] && w[2] * w[3] > 1;
}

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v ? *v : nullptr;
}

// The patch convolution as a GEMM: the patches copied into rows [N*Ho*Wo, C*kh*kw] (one pass
// over x, in scratch), times the OIHW filter as [O, C*kh*kw]^T, bias and ReLU in the epilogue,
// written straight into the NHWC output.
Result<std::unique_ptr<Step>> make_patch_gemm_step(const ir::Node& node, const ir::Node* relu,
                                                   const Slots& slots, ModuleSource& module) {
  const ir::Value* x = tensor_arg(node, 0);
  const ir::Value* w = tensor_arg(node, 1);
  const ir::Value* bias = tensor_arg(node, 2);
  const ir::Value* out = (relu ? relu : &node)->outputs[0];
  const std::string name = (relu ? relu : &node)->name;
  const std::string copy = copy_kernel(module, x->dtype, x->dtype);
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
    const Tensor& tx = slot_tensor(slots, x);
    const Tensor& tw = slot_tensor(slots, w);
    const Tensor& ty = slot_tensor(slots, out);
    const int64_t n = tx.size(0), c = tx.size(1), o = tw.size(0), kh = tw.size(2),
                  kw = tw.size(3), ho = ty.size(2), wo = ty.size(3);
    if (!tw.is_contiguous() || ty.strides() != layout_strides(ty.sizes(), Layout::channels_last())) {
      return internal_error("patch GEMM '", name, "': expected an OIHW filter and an NHWC output, "
                            "found ", tw.description(), " and ", ty.description());
    }
    const Shape& s = tx.strides();
    const Tensor patches = tx.view_as(Shape{n, ho, wo, c, kh, kw},
                                      Shape{s[0], s[2] * kh, s[3] * kw, s[1], s[2], s[3]},
                                      tx.offset());
    KILN_ASSIGN_OR_RETURN(Tensor rows, scratch_tensor(ctx, index, 0, patches,
                                                      contiguous_strides(patches.sizes())));
    KILN_ASSIGN_OR_RETURN(cudaKernel_t copy_fn, ctx.kernel(copy));
    GemmDesc desc;
    desc.dtype = ty.dtype();
    desc.m = n * ho * wo;
    desc.n = o;
    desc.k = c * kh * kw;
    desc.lda = desc.k;
    desc.trans_b = true;  // B = filter^T
    desc.ldb = desc.k;
    desc.ldd = o;
    desc.stride_d = desc.m * o;
    desc.has_bias = bias != nullptr;
    desc.epilogue = relu ? GemmEpilogue::kRelu : GemmEpilogue::kNone;
    if (desc.m == 0 || desc.n == 0) return Launch([](cudaStream_t) { return ok_status(); });
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<const GemmPlan> plan, ctx.gemm_plan(desc),
                          "patch GEMM '", name, "'");
    GemmArgs args;
    args.a = rows.raw_data();
    args.b = tw.raw_data();
    args.bias = bias ? slot_tensor(slots, bias).raw_data() : nullptr;
    args.d = ty.raw_data();
    args.workspace = ctx.workspace();
    args.workspace_bytes = ctx.workspace_bytes();
    return Launch([plan, args, patches, rows, copy_fn](cudaStream_t stream) -> Status {
      KILN_RETURN_IF_ERROR(launch_copy(copy_fn, patches, rows, stream));
      KILN_ASSIGN_OR_RETURN(cublasLtHandle_t handle, cublaslt_handle());
      return plan->run(handle, args, stream);
    });
  };
  std::string what = "patch-gemm";
  if (bias) what += "+bias";
  if (relu) what += "+relu";
  auto step = std::make_unique<FunctionStep>("gemm", str_cat(what, " -> ", out->name), bind);
  step->reads = {x->id, w->id};
  if (bias) step->reads.push_back(bias->id);
  step->writes = {out->id};
  step->name = name;
  // The patch rows at the largest shapes: N * Ho * Wo * C * kh * kw elements.
  const Tensor& ty = slots[out->id].tensor;
  const Tensor& tw = slots[w->id].tensor;
  step->scratch_bytes = {static_cast<size_t>(ty.size(0) * ty.size(2) * ty.size(3) * tw.size(1) *
                                             tw.size(2) * tw.size(3)) *
                         dtype_size(x->dtype)};
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace

bool is_patch_conv(const ir::Node& node, const Slots& slots, bool channels_last) {
  const ir::Value* x = tensor_arg(node, 0);
  const ir::Value* w = tensor_arg(node, 1);
  if (!channels_last || !x || !w || x->shape.size() != 4) return false;
  auto c = conv_args(node, 2);
  return c.ok() && tiles_input(*c, slots[w->id].tensor.sizes());
}

Result<std::unique_ptr<Step>> make_conv_step(const ir::Node& node, const ir::Node* residual_add,
                                             const ir::Node* relu, const Slots& slots,
                                             const PlanOptions& options, bool channels_last,
                                             ModuleSource& module) {
  const ir::Value* x = tensor_arg(node, 0);
  const ir::Value* w = tensor_arg(node, 1);
  const ir::Value* bias = tensor_arg(node, 2);
  if (!x || !w) return unsupported("convolution '", node.name, "' without tensor operands");
  // The weight's rank is the convolution's; an input of one dim less is unbatched.
  const bool unbatched = x->shape.size() + 1 == w->shape.size();
  const size_t spatial = w->shape.size() - 2;
  KILN_ASSIGN_OR_RETURN(ConvArgsOfNode c, conv_args(node, spatial));
  if (!residual_add && is_patch_conv(node, slots, channels_last)) {
    return make_patch_gemm_step(node, relu, slots, module);
  }
  std::vector<int64_t> stride = c.stride, padding = c.padding, dilation = c.dilation,
                       output_padding = c.output_padding;
  const ir::Value* residual = nullptr;
  if (residual_add) {
    for (const ir::Value* v : residual_add->input_values()) {
      if (v != node.outputs[0]) residual = v;
    }
  }
  const ir::Node* last = relu ? relu : residual_add ? residual_add : &node;
  const ir::Value* out = last->outputs[0];
  const bool one_d = spatial == 1;
  if (one_d) {
    stride.insert(stride.begin(), 1);
    padding.insert(padding.begin(), 0);
    dilation.insert(dilation.begin(), 1);
    if (!output_padding.empty()) output_padding.insert(output_padding.begin(), 0);
  }
  const bool allow_tf32 = options.allow_tf32;
  const bool is_transposed = c.transposed;
  const int64_t group_count = c.groups;
  const std::string name = last->name;
  const std::string copy = channels_last ? copy_kernel(module, x->dtype, x->dtype) : "";
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
    Tensor tx = as_2d(with_batch(slot_tensor(slots, x), unbatched));
    std::optional<std::pair<Tensor, Tensor>> to_nhwc;
    cudaKernel_t copy_fn = nullptr;
    if (channels_last && tx.dim() == 4 &&
        tx.strides() != layout_strides(tx.sizes(), Layout::channels_last())) {
      KILN_ASSIGN_OR_RETURN(
          Tensor nhwc,
          scratch_tensor(ctx, index, 0, tx, layout_strides(tx.sizes(), Layout::channels_last())));
      KILN_ASSIGN_OR_RETURN(copy_fn, ctx.kernel(copy));
      to_nhwc = std::pair(tx, nhwc);
      tx = nhwc;
    }
    const Tensor tw = as_2d(slot_tensor(slots, w));
    const Tensor ty = as_2d(with_batch(slot_tensor(slots, out), unbatched));
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
      Tensor tr = as_2d(with_batch(slot_tensor(slots, residual), unbatched));
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
