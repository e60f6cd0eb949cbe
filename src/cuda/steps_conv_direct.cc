// Direct convolution steps (kernel_library_conv_direct.h): the transposed convolutions with
// output_padding that cuDNN has no engine for, and the conv_direct family of library ops
// (aten.convolution_backward).
#include <algorithm>
#include <optional>
#include <vector>

#include "cuda/kernel_library_conv_direct.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

// --- reading arguments ---------------------------------------------------------------------------

std::optional<std::vector<int64_t>> constant_ints(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  const auto* list = std::get_if<std::vector<ir::SymInt>>(&node.args[i]);
  if (!list) return std::nullopt;
  std::vector<int64_t> out;
  for (const ir::SymInt& s : *list) {
    if (s.value) return std::nullopt;
    out.push_back(s.constant);
  }
  return out;
}
std::optional<bool> constant_bool(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  const bool* v = std::get_if<bool>(&node.args[i]);
  return v ? std::optional<bool>(*v) : std::nullopt;
}
std::optional<int64_t> constant_int(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  const int64_t* v = std::get_if<int64_t>(&node.args[i]);
  return v ? std::optional<int64_t>(*v) : std::nullopt;
}

// Where the window arguments stand: aten.convolution (x, w, bias?, stride, padding, dilation,
// transposed, output_padding, groups) and aten.convolution_backward (grad_output, input, weight,
// bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask).
struct ArgLayout {
  size_t stride, transposed, output_padding, groups;
};
constexpr ArgLayout kForward{3, 6, 7, 8};
constexpr ArgLayout kBackward{4, 7, 8, 9};

struct Window {
  ConvWindowParams params;
  bool transposed = false;
};

// The window arguments, each a constant list of 1 or `spatial` values, or why not.
std::optional<Window> window_args(const ir::Node& node, const ArgLayout& at, size_t spatial,
                                  std::string& problem) {
  Window w;
  std::vector<int64_t>* lists[] = {&w.params.stride, &w.params.padding, &w.params.dilation};
  const char* names[] = {"stride", "padding", "dilation"};
  for (size_t i = 0; i < 3; ++i) {
    auto values = constant_ints(node, at.stride + i);
    if (!values) {
      problem = str_cat(names[i], " known only at run time");
      return std::nullopt;
    }
    if (values->size() != 1 && values->size() != spatial) {
      problem = str_cat(names[i], " of ", values->size(), " values for ", spatial, " spatial dims");
      return std::nullopt;
    }
    *lists[i] = std::move(*values);
  }
  const std::optional<bool> transposed = constant_bool(node, at.transposed);
  const std::optional<int64_t> groups = constant_int(node, at.groups);
  if (!transposed || !groups) {
    problem = "transposed or groups known only at run time";
    return std::nullopt;
  }
  if (!constant_ints(node, at.output_padding)) {
    problem = "output_padding known only at run time";
    return std::nullopt;
  }
  w.transposed = *transposed;
  w.params.groups = *groups;
  return w;
}

// The weight's rank is the convolution's: 3-5, with operands of that rank (or, where
// `unbatched_input` allows, one less: PyTorch's single-image form).
Verdict check_ranks(const ir::Value* x, const ir::Value* w, bool unbatched_input) {
  if (!x || !w) return Verdict::reject("operands are not tensors");
  const size_t wr = w->shape.size(), xr = x->shape.size();
  if (wr < 3 || wr > 5) return Verdict::reject(str_cat("a weight of rank ", wr, " (expected 3-5)"));
  if (xr != wr && !(unbatched_input && xr + 1 == wr)) {
    return Verdict::reject(str_cat("input rank ", xr, " for a weight of rank ", wr));
  }
  return Verdict::accept();
}

// An unbatched [C, spatial...] tensor as a batch of one.
Tensor with_batch(const Tensor& t, bool unbatched) {
  if (!unbatched) return t;
  Shape sizes = t.sizes(), strides = t.strides();
  sizes.insert(sizes.begin(), 1);
  strides.insert(strides.begin(), std::max<int64_t>(t.numel(), 1));
  return t.view_as(sizes, strides, t.offset());
}

std::unique_ptr<Step> new_step(const ir::Node& node, std::vector<const ir::Value*> reads,
                               const std::vector<const ir::Value*>& writes, BindFn bind) {
  const std::string target = writes.empty() ? std::string("(nothing read)") : writes[0]->name;
  auto step = std::make_unique<FunctionStep>(
      "conv_direct", str_cat("conv_direct[", ir::op_name(node.op), "] -> ", target),
      std::move(bind));
  for (const ir::Value* v : reads) {
    if (v) step->reads.push_back(v->id);
  }
  for (const ir::Value* v : writes) step->writes.push_back(v->id);
  step->name = node.name;
  return step;
}

// --- convolution_backward ------------------------------------------------------------------------

Verdict backward_verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  const ir::Value* grad_output = value_arg(node, 0);
  const ir::Value* input = value_arg(node, 1);
  const ir::Value* weight = value_arg(node, 2);
  if (!grad_output) return Verdict::reject("grad_output is not a tensor");
  if (Verdict v = check_ranks(input, weight, false); !v.accepted()) return v;
  if (grad_output->shape.size() != weight->shape.size()) {
    return Verdict::reject(str_cat("grad_output rank ", grad_output->shape.size(),
                                   " for a weight of rank ", weight->shape.size()));
  }
  std::string problem;
  if (!window_args(node, kBackward, weight->shape.size() - 2, problem)) {
    return Verdict::reject(problem);
  }
  const auto* mask =
      node.args.size() > 10 ? std::get_if<std::vector<bool>>(&node.args[10]) : nullptr;
  if (!mask || mask->size() != 3) return Verdict::reject("output_mask is not 3 constants");
  return Verdict::accept();
}

bool takes(OpKey op) {
  return op == OpKey::aten_convolution_backward_default;
}

// grad_input is the opposite convolution of grad_output with the same weight (a plain
// convolution's is transposed, a transposed one's plain); grad_weight and grad_bias are sums.
Result<std::unique_ptr<Step>> make_backward(const ir::Node& node, const Slots& slots,
                                            ModuleSource& module) {
  if (Verdict v = backward_verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  const ir::Value* gy = value_arg(node, 0);
  const ir::Value* x = value_arg(node, 1);
  const ir::Value* w = value_arg(node, 2);
  std::string problem;
  const Window win = *window_args(node, kBackward, w->shape.size() - 2, problem);
  // Outputs PyTorch returns (output_mask) that something reads have buffers; the others (None in
  // the program, or read by nothing) are not computed.
  auto stored = [&](size_t i) -> const ir::Value* {
    const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
    return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v : nullptr;
  };
  const ir::Value* gi = stored(0);
  const ir::Value* gw = stored(1);
  const ir::Value* gb = stored(2);
  std::vector<const ir::Value*> writes;
  for (const ir::Value* v : {gi, gw, gb}) {
    if (v) writes.push_back(v);
  }
  const DType dtype = gy->dtype;
  const std::string input_kernel = gi ? conv_direct_kernel(module, !win.transposed, dtype) : "";
  const std::string weight_kernel = gw ? conv_weight_grad_kernel(module, dtype) : "";
  const std::string bias_kernel = gb ? conv_bias_grad_kernel(module, dtype) : "";
  const ConvWindowParams params = win.params;
  const bool transposed = win.transposed;
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
    cudaKernel_t kin = nullptr, kw = nullptr, kb = nullptr;
    if (gi) {
      KILN_ASSIGN_OR_RETURN(kin, ctx.kernel(input_kernel));
    }
    if (gw) {
      KILN_ASSIGN_OR_RETURN(kw, ctx.kernel(weight_kernel));
    }
    if (gb) {
      KILN_ASSIGN_OR_RETURN(kb, ctx.kernel(bias_kernel));
    }
    const Tensor tgy = slot_tensor(slots, gy);
    const Tensor tx = gw ? slot_tensor(slots, x) : Tensor();
    const Tensor tw = gi ? slot_tensor(slots, w) : Tensor();
    const Tensor tgi = gi ? slot_tensor(slots, gi) : Tensor();
    const Tensor tgw = gw ? slot_tensor(slots, gw) : Tensor();
    const Tensor tgb = gb ? slot_tensor(slots, gb) : Tensor();
    const bool want_input = gi != nullptr, want_weight = gw != nullptr, want_bias = gb != nullptr;
    return Launch([=](cudaStream_t s) -> Status {
      if (want_input) {
        KILN_RETURN_IF_ERROR(
            launch_conv_direct(kin, tgy, tw, nullptr, tgi, params, !transposed, s));
      }
      if (want_weight) {
        KILN_RETURN_IF_ERROR(launch_conv_weight_grad(kw, tgy, tx, tgw, params, transposed, s));
      }
      if (want_bias) KILN_RETURN_IF_ERROR(launch_conv_bias_grad(kb, tgy, tgb, s));
      return ok_status();
    });
  };
  return new_step(node, {gy, gw ? x : nullptr, gi ? w : nullptr}, writes, bind);
}

}  // namespace

// --- transposed convolutions with output_padding -------------------------------------------------

bool needs_direct_conv(const ir::Node& node) {
  if (node.op != OpKey::aten_convolution_default) return false;
  const std::optional<bool> transposed = constant_bool(node, kForward.transposed);
  if (!transposed || !*transposed) return false;
  const auto output_padding = constant_ints(node, kForward.output_padding);
  if (!output_padding || std::all_of(output_padding->begin(), output_padding->end(),
                                     [](int64_t p) { return p == 0; })) {
    return false;
  }
  // cuDNN 9 ran the 2-D half-precision ones on the H100 (cuda_support.cc's conv_verdict).
  const ir::Value* x = value_arg(node, 0);
  const ir::Value* w = value_arg(node, 1);
  const bool half = x && (x->dtype == DType::kFloat16 || x->dtype == DType::kBFloat16);
  return !(half && w && w->shape.size() == 4);
}

Verdict direct_conv_verdict(const ir::Node& node) {
  if (node.op != OpKey::aten_convolution_default) {
    return Verdict::reject("the direct kernel takes aten.convolution only");
  }
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  const ir::Value* x = value_arg(node, 0);
  const ir::Value* w = value_arg(node, 1);
  if (Verdict v = check_ranks(x, w, true); !v.accepted()) return v;
  std::string problem;
  if (!window_args(node, kForward, w->shape.size() - 2, problem)) return Verdict::reject(problem);
  return Verdict::accept();
}

Result<std::unique_ptr<Step>> make_direct_conv_step(const ir::Node& node, const Slots& slots,
                                                    ModuleSource& module) {
  (void)slots;  // the step writes its one output, always stored by the planner
  if (Verdict v = direct_conv_verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  const ir::Value* x = value_arg(node, 0);
  const ir::Value* w = value_arg(node, 1);
  const ir::Value* bias = value_arg(node, 2);
  const ir::Value* out = node.outputs[0];
  std::string problem;
  const Window win = *window_args(node, kForward, w->shape.size() - 2, problem);
  const bool unbatched = x->shape.size() + 1 == w->shape.size();
  const bool transposed = win.transposed;
  const ConvWindowParams params = win.params;
  const std::string kernel = conv_direct_kernel(module, transposed, x->dtype);
  return new_step(node, {x, w, bias}, {out},
                  [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
                    const Tensor tx = with_batch(slot_tensor(slots, x), unbatched);
                    const Tensor ty = with_batch(slot_tensor(slots, out), unbatched);
                    const Tensor tw = slot_tensor(slots, w);
                    const Tensor tb = bias ? slot_tensor(slots, bias) : Tensor();
                    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                      return launch_conv_direct(fn, tx, tw, bias ? &tb : nullptr, ty, params,
                                                transposed, s);
                    });
                  });
}

const LibraryFamily& conv_direct_family() {
  static const LibraryFamily family{"conv_direct", takes, backward_verdict, make_backward};
  return family;
}

}  // namespace kiln::cuda
