// The extra pooling family of library ops (steps.h, LibraryFamily): 3-D max pooling with indices,
// 3-D average and adaptive average pooling, and the backward ops of 2-D average, max and adaptive
// average pooling, through kernel_library_pooling_extra.h. The steps view every operand as
// [N, C, D, H, W] (pool_view_5d), so unbatched inputs and 2-D pools share the 3-D kernels.
#include <optional>
#include <vector>

#include "cuda/kernel_library_pooling_extra.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

constexpr DType kTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt64};

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}

// An `int[N]` argument of constants (a single int counts as one element); nullopt otherwise.
std::optional<std::vector<int64_t>> int_list(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const auto* list = std::get_if<std::vector<ir::SymInt>>(&node.args[i])) {
    std::vector<int64_t> out;
    for (const ir::SymInt& s : *list) {
      if (s.value) return std::nullopt;
      out.push_back(s.constant);
    }
    return out;
  }
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return std::vector<int64_t>{*v};
  return std::nullopt;
}

// What each op reads: where its pooled input (`self`) and its window arguments sit.
struct OpLayout {
  int spatial = 3;            // pooled dims
  size_t self = 0;            // the pooling input (the backward ops: the forward's input)
  int window = -1;            // kernel_size; stride and padding follow; -1: adaptive
  int dilation = -1;          // -1: none
  int ceil_mode = -1;         // a bool argument
  int count_include_pad = -1;
  int divisor_override = -1;  // int or None
};

std::optional<OpLayout> layout_of(OpKey op) {
  switch (op) {
    case OpKey::aten_avg_pool3d_default:
      return OpLayout{3, 0, 1, -1, 4, 5, 6};
    case OpKey::aten_max_pool3d_with_indices_default:
      return OpLayout{3, 0, 1, 4, 5};
    case OpKey::aten__adaptive_avg_pool3d_default:
      return OpLayout{3, 0};
    case OpKey::aten_avg_pool2d_backward_default:
      return OpLayout{2, 1, 2, -1, 5, 6, 7};
    case OpKey::aten_max_pool2d_with_indices_backward_default:
      return OpLayout{2, 1, 2, 5, 6};
    case OpKey::aten__adaptive_avg_pool2d_backward_default:
      return OpLayout{2, 1};
    default:
      return std::nullopt;
  }
}

bool takes(OpKey op) { return layout_of(op).has_value(); }

// The window arguments as Pool3dParams (a 2-D pool's depth window stays 1); an error names the
// argument that is not a constant of the expected length.
Result<Pool3dParams> window_params(const ir::Node& node, const OpLayout& layout) {
  Pool3dParams params;
  if (layout.window < 0) return params;
  const size_t n = static_cast<size_t>(layout.spatial);
  const size_t first = 3 - n;  // where the op's dims start among depth, height, width
  auto read = [&](int arg, const char* name, bool empty_ok,
                  int64_t (&into)[3]) -> Result<bool> {
    std::optional<std::vector<int64_t>> v = int_list(node, static_cast<size_t>(arg));
    if (!v) return unsupported(name, " is not a list of constants");
    if (v->empty() && empty_ok) return false;
    if (v->size() == 1) v->resize(n, (*v)[0]);
    if (v->size() != n) {
      return unsupported("expected ", name, " of 1 or ", n, " ints, found ", v->size());
    }
    for (size_t i = 0; i < n; ++i) into[first + i] = (*v)[i];
    return true;
  };
  KILN_ASSIGN_OR_RETURN(bool has_stride, read(layout.window + 1, "stride", true, params.stride));
  KILN_RETURN_IF_ERROR(read(layout.window, "kernel_size", false, params.kernel));
  KILN_RETURN_IF_ERROR(read(layout.window + 2, "padding", false, params.padding));
  if (!has_stride) {
    for (size_t i = first; i < 3; ++i) params.stride[i] = params.kernel[i];
  }
  if (layout.dilation >= 0) {
    KILN_RETURN_IF_ERROR(read(layout.dilation, "dilation", false, params.dilation));
  }
  if (layout.ceil_mode >= 0 && !std::holds_alternative<bool>(node.args.at(layout.ceil_mode))) {
    return unsupported("ceil_mode is not a constant");
  }
  if (layout.count_include_pad >= 0) {
    const bool* v = std::get_if<bool>(&node.args.at(layout.count_include_pad));
    if (!v) return unsupported("count_include_pad is not a constant");
    params.count_include_pad = *v;
  }
  if (layout.divisor_override >= 0) {
    const ir::Argument& arg = node.args.at(layout.divisor_override);
    if (const int64_t* v = std::get_if<int64_t>(&arg)) {
      if (*v <= 0) return unsupported("divisor_override ", *v, " (expected > 0)");
      params.divisor_override = *v;
    } else if (!std::holds_alternative<ir::NoneArg>(arg)) {
      return unsupported("divisor_override is not a constant");
    }
  }
  return params;
}

convert::Verdict verdict(const ir::Node& node) {
  using convert::Verdict;
  const std::optional<OpLayout> layout = layout_of(node.op);
  if (!layout) return Verdict::reject("not a pooling op of this family");
  if (Verdict v = convert::check_value_types(node, kTypes); !v.accepted()) return v;
  const ir::Value* self = tensor_arg(node, layout->self);
  if (!self) return Verdict::reject("the pooled input is not a tensor");
  if (self->dtype == DType::kInt64) return Verdict::reject("int64 pooling (floating types only)");
  const size_t rank = self->shape.size();
  const size_t spatial = static_cast<size_t>(layout->spatial);
  if (rank != spatial + 1 && rank != spatial + 2) {
    return Verdict::reject(str_cat("expected a ", spatial + 1, "-D or ", spatial + 2,
                                   "-D input, found rank ", rank));
  }
  Result<Pool3dParams> params = window_params(node, *layout);
  if (!params.ok()) return Verdict::reject(std::string(params.status().message()));
  return Verdict::accept();
}

// A node's operand as [N, C, D, H, W].
Result<Tensor> as_5d(const Slots& slots, const ir::Value* v, int spatial) {
  std::optional<Tensor> t = pool_view_5d(slot_tensor(slots, v), spatial);
  if (!t) {
    return invalid_argument("pooling: expected a batched or unbatched ", spatial,
                            "-D pooling tensor for '", v->name, "', found ",
                            slot_tensor(slots, v).description());
  }
  return *t;
}

std::unique_ptr<Step> new_step(const ir::Node& node, std::vector<const ir::Value*> reads,
                               std::vector<const ir::Value*> writes, BindFn bind) {
  auto step = std::make_unique<FunctionStep>(
      "pool", str_cat("pool[", ir::op_name(node.op), "] -> ", writes.front()->name),
      std::move(bind));
  for (const ir::Value* v : reads) step->reads.push_back(v->id);
  for (const ir::Value* v : writes) step->writes.push_back(v->id);
  step->name = node.name;
  return step;
}

// max_pool3d_with_indices writes whichever of its values and indices have buffers.
Result<std::unique_ptr<Step>> max_pool3d(const ir::Node& node, const Slots& slots,
                                         const Pool3dParams& params, ModuleSource& module) {
  const ir::Value* in = tensor_arg(node, 0);
  auto stored = [&](size_t i) -> const ir::Value* {
    const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
    return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v
                                                                                      : nullptr;
  };
  const ir::Value* out = stored(0);
  const ir::Value* indices = stored(1);
  std::vector<const ir::Value*> writes;
  for (const ir::Value* v : {out, indices}) {
    if (v) writes.push_back(v);
  }
  if (writes.empty()) writes.push_back(node.outputs[0]);  // nothing read: write the values
  // An unused values output has no data: the kernel skips it.
  const ir::Value* values = node.outputs[0];
  const std::string kernel = pool3d_kernel(module, PoolKind::kMax, in->dtype);
  return new_step(node, {in}, writes,
                  [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
                    KILN_ASSIGN_OR_RETURN(Tensor x, as_5d(slots, in, 3));
                    KILN_ASSIGN_OR_RETURN(Tensor y, as_5d(slots, values, 3));
                    std::optional<Tensor> i;
                    if (indices) {
                      KILN_ASSIGN_OR_RETURN(i, as_5d(slots, indices, 3));
                    }
                    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                      return launch_pool3d(fn, x, y, i ? &*i : nullptr, params, s);
                    });
                  });
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots,
                                   ModuleSource& module) {
  const std::optional<OpLayout> layout = layout_of(node.op);
  if (!layout) return unsupported("no CUDA kernel for ", ir::op_name(node.op));
  KILN_ASSIGN_OR_RETURN(const Pool3dParams params, window_params(node, *layout),
                        "pooling node '", node.name, "'");
  const int spatial = layout->spatial;
  const ir::Value* out = node.outputs[0];
  const ir::Value* self = tensor_arg(node, layout->self);
  if (!self) return unsupported("pooling node '", node.name, "': the input is not a tensor");
  const DType dtype = self->dtype;
  switch (node.op) {
    case OpKey::aten_max_pool3d_with_indices_default:
      return max_pool3d(node, slots, params, module);
    case OpKey::aten_avg_pool3d_default:
    case OpKey::aten__adaptive_avg_pool3d_default: {
      const bool adaptive = node.op == OpKey::aten__adaptive_avg_pool3d_default;
      const std::string kernel = adaptive ? adaptive_avg_pool3d_kernel(module, dtype)
                                          : pool3d_kernel(module, PoolKind::kAvg, dtype);
      return new_step(node, {self}, {out},
                      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
                        KILN_ASSIGN_OR_RETURN(Tensor x, as_5d(slots, self, spatial));
                        KILN_ASSIGN_OR_RETURN(Tensor y, as_5d(slots, out, spatial));
                        return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                          return adaptive ? launch_adaptive_avg_pool3d(fn, x, y, s)
                                          : launch_pool3d(fn, x, y, nullptr, params, s);
                        });
                      });
    }
    default:
      break;
  }
  // The backward ops read grad_output (argument 0) and, for max, the indices (argument 7); the
  // forward's input (`self`) only gives grad_input's sizes, which the output has.
  const ir::Value* grad_out = tensor_arg(node, 0);
  const ir::Value* indices =
      node.op == OpKey::aten_max_pool2d_with_indices_backward_default ? tensor_arg(node, 7)
                                                                      : nullptr;
  if (!grad_out || (node.op == OpKey::aten_max_pool2d_with_indices_backward_default &&
                    !indices)) {
    return unsupported("pooling node '", node.name, "': grad_output or indices not a tensor");
  }
  std::string kernel;
  if (node.op == OpKey::aten_avg_pool2d_backward_default) {
    kernel = avg_pool_backward_kernel(module, dtype);
  } else if (indices) {
    kernel = max_pool_backward_kernel(module, dtype);
  } else {
    kernel = adaptive_avg_pool_backward_kernel(module, dtype);
  }
  std::vector<const ir::Value*> reads = {grad_out};
  if (indices) reads.push_back(indices);
  const OpKey op = node.op;
  return new_step(node, reads, {out},
                  [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
                    KILN_ASSIGN_OR_RETURN(Tensor g, as_5d(slots, grad_out, spatial));
                    KILN_ASSIGN_OR_RETURN(Tensor gi, as_5d(slots, out, spatial));
                    std::optional<Tensor> i;
                    if (indices) {
                      KILN_ASSIGN_OR_RETURN(i, as_5d(slots, indices, spatial));
                    }
                    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                      if (op == OpKey::aten_avg_pool2d_backward_default) {
                        return launch_avg_pool_backward(fn, g, gi, params, s);
                      }
                      if (i) return launch_max_pool_backward(fn, g, *i, gi, params, s);
                      return launch_adaptive_avg_pool_backward(fn, g, gi, s);
                    });
                  });
}

}  // namespace

const LibraryFamily& pooling_extra_family() {
  static const LibraryFamily family{"pooling extra", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
