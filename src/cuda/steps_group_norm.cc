// The group norm family of library ops (steps.h, LibraryFamily): native_group_norm and the
// kept-whole group_norm, instance_norm (input statistics, or running statistics in eval mode),
// and training-mode batch norm without running statistics (_native_batch_norm_legit.no_stats),
// all run by kernel_library_group_norm.h's one kernel.
#include <optional>

#include "cuda/kernel_library_group_norm.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}
std::optional<int64_t> int_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return *v;
  return std::nullopt;
}
std::optional<bool> bool_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const bool* v = std::get_if<bool>(&node.args[i])) return *v;
  return std::nullopt;
}
std::optional<double> number_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const double* v = std::get_if<double>(&node.args[i])) return *v;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return static_cast<double>(*v);
  return std::nullopt;
}

// Where each op keeps its arguments.
struct NormArgs {
  const ir::Value* input = nullptr;
  const ir::Value* weight = nullptr;
  const ir::Value* bias = nullptr;
  const ir::Value* running_mean = nullptr;  // instance_norm only
  const ir::Value* running_var = nullptr;
  std::optional<int64_t> groups;  // group norm; instance norm: one per channel
  std::optional<double> eps;
  std::optional<bool> flag;  // instance_norm's use_input_stats, no_stats' training
};

NormArgs norm_args(const ir::Node& node) {
  NormArgs a;
  a.input = tensor_arg(node, 0);
  switch (node.op) {
    case OpKey::aten_native_group_norm_default:  // input, weight?, bias?, N, C, HxW, group, eps
      a.weight = tensor_arg(node, 1);
      a.bias = tensor_arg(node, 2);
      a.groups = int_arg(node, 6);
      a.eps = number_arg(node, 7);
      break;
    case OpKey::aten_group_norm_default:  // input, num_groups, weight?, bias?, eps, cudnn_enabled
      a.weight = tensor_arg(node, 2);
      a.bias = tensor_arg(node, 3);
      a.groups = int_arg(node, 1);
      a.eps = number_arg(node, 4);
      break;
    case OpKey::aten_instance_norm_default:
      // input, weight?, bias?, running_mean?, running_var?, use_input_stats, momentum, eps,
      // cudnn_enabled
      a.weight = tensor_arg(node, 1);
      a.bias = tensor_arg(node, 2);
      a.running_mean = tensor_arg(node, 3);
      a.running_var = tensor_arg(node, 4);
      a.flag = bool_arg(node, 5);
      a.eps = number_arg(node, 7);
      break;
    default:  // _native_batch_norm_legit.no_stats: input, weight?, bias?, training, momentum, eps
      a.weight = tensor_arg(node, 1);
      a.bias = tensor_arg(node, 2);
      a.flag = bool_arg(node, 3);
      a.eps = number_arg(node, 5);
      break;
  }
  return a;
}

bool takes(OpKey op) {
  return op == OpKey::aten_native_group_norm_default || op == OpKey::aten_group_norm_default ||
         op == OpKey::aten_instance_norm_default ||
         op == OpKey::aten__native_batch_norm_legit_no_stats;
}

// A per-channel tensor's dtype must be the input's, or float32 for a 16-bit input (mixed
// precision), the same for all of them.
std::optional<std::string> param_dtype_problem(const NormArgs& a) {
  std::optional<DType> first;
  for (const ir::Value* v : {a.weight, a.bias, a.running_mean, a.running_var}) {
    if (!v) continue;
    const bool half = a.input->dtype == DType::kFloat16 || a.input->dtype == DType::kBFloat16;
    if ((v->dtype != a.input->dtype && !(half && v->dtype == DType::kFloat32)) ||
        (first && *first != v->dtype)) {
      return str_cat("a ", dtype_name(v->dtype), " parameter for a ", dtype_name(a.input->dtype),
                     " input");
    }
    first = v->dtype;
  }
  return std::nullopt;
}

Verdict verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  const NormArgs a = norm_args(node);
  if (!a.input) return Verdict::reject("the input is not a tensor");
  const size_t rank = a.input->shape.size();
  if (rank < 2 || rank > static_cast<size_t>(kMaxKernelDims)) {
    return Verdict::reject(str_cat("an input of rank ", rank,
                                   " (the kernel takes [N, C, *] of rank 2 to ", kMaxKernelDims,
                                   ")"));
  }
  if (!a.eps) return Verdict::reject("eps known only at run time");
  if (node.op == OpKey::aten_native_group_norm_default ||
      node.op == OpKey::aten_group_norm_default) {
    if (!a.groups) return Verdict::reject("a number of groups known only at run time");
  }
  if (node.op == OpKey::aten_instance_norm_default) {
    if (!a.flag) return Verdict::reject("use_input_stats known only at run time");
    // use_input_stats=True with running statistics normalizes with the input's statistics.
    // Eager also blends them into the running tensors in place, but instance_norm's schema
    // declares no mutation, so an exported program has no such output: the normalized tensor
    // is all it computes (the reference backend agrees).
    if (!*a.flag && (!a.running_mean || !a.running_var)) {
      return Verdict::reject("use_input_stats=False without running statistics");
    }
  }
  if (node.op == OpKey::aten__native_batch_norm_legit_no_stats && a.flag != std::optional(true)) {
    return Verdict::reject("batch norm without running statistics outside training mode");
  }
  if (auto problem = param_dtype_problem(a)) return Verdict::reject(*problem);
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    const ir::Value* v = node.outputs[i];
    if (v && v->kind == ir::ValueKind::kTensor && v->dtype != DType::kFloat32 &&
        v->dtype != a.input->dtype) {
      return Verdict::reject(str_cat("statistics in ", dtype_name(v->dtype), " for a ",
                                     dtype_name(a.input->dtype), " input"));
    }
  }
  return Verdict::accept();
}

// A step writing the node's outputs that have buffers.
std::unique_ptr<Step> make_norm_step(const ir::Node& node, std::vector<const ir::Value*> reads,
                                const std::vector<const ir::Value*>& writes, BindFn bind) {
  const ir::Value* out = node.outputs[0];
  auto step = std::make_unique<FunctionStep>(
      "norm", str_cat("norm[", ir::op_name(node.op), "] -> ", out->name), std::move(bind));
  for (const ir::Value* v : reads) {
    if (v) step->reads.push_back(v->id);
  }
  for (const ir::Value* v : writes) step->writes.push_back(v->id);
  step->name = node.name;
  return step;
}

Tensor tensor_or_empty(const Slots& slots, const ir::Value* v) {
  return v ? slot_tensor(slots, v) : Tensor();
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots, ModuleSource& module) {
  const NormArgs a = norm_args(node);
  if (!a.input || !a.eps) return unsupported("norm '", node.name, "': bad arguments");
  // Outputs with buffers (a reader or a program output); the others are not written.
  auto stored = [&](size_t i) -> const ir::Value* {
    const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
    return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v : nullptr;
  };
  const ir::Value* out = stored(0);
  const ir::Value* mean = stored(1);
  const ir::Value* rstd = stored(2);
  std::vector<const ir::Value*> writes;
  for (const ir::Value* v : {out, mean, rstd}) {
    if (v) writes.push_back(v);
  }
  if (writes.empty()) return unsupported("norm '", node.name, "': no output has a buffer");

  DType param = a.input->dtype;
  for (const ir::Value* v : {a.weight, a.bias, a.running_mean, a.running_var}) {
    if (v) {
      param = v->dtype;
      break;
    }
  }
  const DType stats = mean ? mean->dtype : rstd ? rstd->dtype : DType::kFloat32;
  const std::string kernel = group_norm_kernel(module, a.input->dtype, param, stats);
  const double eps = *a.eps;
  const ir::Value *in = a.input, *weight = a.weight, *bias = a.bias;
  const ir::Value* y_value = node.outputs[0];
  const bool write_y = out != nullptr;

  if (node.op == OpKey::aten_instance_norm_default && !a.flag.value_or(true)) {
    const ir::Value *rm = a.running_mean, *rv = a.running_var;
    return make_norm_step(node, {in, weight, bias, rm, rv}, writes,
                     [=](const Slots& slots, BindContext& ctx, size_t) {
                       const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, y_value);
                       const Tensor w = tensor_or_empty(slots, weight),
                                    b = tensor_or_empty(slots, bias);
                       const Tensor m = slot_tensor(slots, rm), v = slot_tensor(slots, rv);
                       return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                         const ChannelParams p{weight ? &w : nullptr, bias ? &b : nullptr};
                         return launch_instance_norm_running(fn, x, p, m, v, y, eps, s);
                       });
                     });
  }

  const bool batch = node.op == OpKey::aten__native_batch_norm_legit_no_stats;
  const int64_t groups = a.groups.value_or(0);  // 0: one per channel (instance norm)
  return make_norm_step(
      node, {in, weight, bias}, writes, [=](const Slots& slots, BindContext& ctx, size_t) {
        const Tensor x = slot_tensor(slots, in);
        const Tensor y = write_y ? slot_tensor(slots, y_value) : Tensor();
        const Tensor w = tensor_or_empty(slots, weight), b = tensor_or_empty(slots, bias);
        const Tensor m = tensor_or_empty(slots, mean), r = tensor_or_empty(slots, rstd);
        return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
          const ChannelParams p{weight ? &w : nullptr, bias ? &b : nullptr};
          const Tensor* yp = write_y ? &y : nullptr;
          const Tensor* mp = mean ? &m : nullptr;
          const Tensor* rp = rstd ? &r : nullptr;
          if (batch) return launch_batch_norm_batch_stats(fn, x, p, yp, mp, rp, eps, s);
          const int64_t g = groups > 0 ? groups : (x.dim() > 1 ? x.size(1) : 1);
          return launch_group_norm(fn, x, p, yp, mp, rp, g, eps, s);
        });
      });
}

}  // namespace

const LibraryFamily& group_norm_family() {
  static const LibraryFamily family{"group norm", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
