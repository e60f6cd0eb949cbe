// The resample family of library ops (steps.h, LibraryFamily): upsample nearest / nearest-exact /
// (bi)linear in 1-D and 2-D (.vec and .default), col2im, _cdist_forward and _pdist_forward, each
// one kernel of kernel_library_resample.h.
#include <optional>
#include <vector>

#include "cuda/kernel_library_resample.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
// Eager's nearest kernels also take uint8 (kiln's shape inference does not, for now).
constexpr DType kNearestTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                   DType::kUInt8};

struct ResizeOp {
  OpKey key;
  UpsampleMode mode;
  int spatial;
  bool vec;  // (input, output_size?, [align_corners,] scale_factors?) vs (input, output_size,
             // [align_corners,] scales...)
};

// The resizes kiln's shape inference knows (ir/infer/resize.cc); 3-D and bicubic ones have none.
constexpr ResizeOp kResizeOps[] = {
    {OpKey::aten_upsample_nearest1d_vec, UpsampleMode::kNearest, 1, true},
    {OpKey::aten_upsample_nearest2d_vec, UpsampleMode::kNearest, 2, true},
    {OpKey::aten__upsample_nearest_exact1d_vec, UpsampleMode::kNearestExact, 1, true},
    {OpKey::aten__upsample_nearest_exact2d_vec, UpsampleMode::kNearestExact, 2, true},
    {OpKey::aten_upsample_linear1d_vec, UpsampleMode::kLinear, 1, true},
    {OpKey::aten_upsample_bilinear2d_vec, UpsampleMode::kLinear, 2, true},
    {OpKey::aten_upsample_nearest1d_default, UpsampleMode::kNearest, 1, false},
    {OpKey::aten_upsample_nearest2d_default, UpsampleMode::kNearest, 2, false},
    {OpKey::aten__upsample_nearest_exact1d_default, UpsampleMode::kNearestExact, 1, false},
    {OpKey::aten__upsample_nearest_exact2d_default, UpsampleMode::kNearestExact, 2, false},
    {OpKey::aten_upsample_linear1d_default, UpsampleMode::kLinear, 1, false},
    {OpKey::aten_upsample_bilinear2d_default, UpsampleMode::kLinear, 2, false},
};

const ResizeOp* find_resize(OpKey op) {
  for (const ResizeOp& r : kResizeOps) {
    if (r.key == op) return &r;
  }
  return nullptr;
}

// --- reading arguments --------------------------------------------------------------------------

bool is_none(const ir::Node& node, size_t i) {
  return i >= node.args.size() || std::holds_alternative<ir::NoneArg>(node.args[i]);
}
// A float the program wrote (an int counts), or nullopt: None, or known only at run time.
std::optional<double> constant_float(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const double* v = std::get_if<double>(&node.args[i])) return *v;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return static_cast<double>(*v);
  return std::nullopt;
}
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
std::optional<int64_t> static_dim(const ir::Value* v, size_t d) {
  if (!v || d >= v->shape.size() || !v->shape[d].is_static()) return std::nullopt;
  return v->shape[d].value;
}

// The resize's align_corners and per-dim scale factors, or why they cannot be read ahead of time.
struct ResizeArgs {
  UpsampleParams params;
  std::string problem;
};
ResizeArgs resize_args(const ir::Node& node, const ResizeOp& op) {
  ResizeArgs r;
  r.params.mode = op.mode;
  const bool linear = op.mode == UpsampleMode::kLinear;
  if (linear) {
    const bool* align = node.args.size() > 2 ? std::get_if<bool>(&node.args[2]) : nullptr;
    if (!align) {
      r.problem = "align_corners known only at run time";
      return r;
    }
    r.params.align_corners = *align;
  }
  const size_t scale_arg = linear ? 3 : 2;
  if (op.vec) {
    if (is_none(node, scale_arg)) return r;
    const auto* factors = std::get_if<std::vector<double>>(&node.args[scale_arg]);
    if (!factors || static_cast<int>(factors->size()) != op.spatial) {
      r.problem = str_cat("scale_factors other than ", op.spatial, " constants");
      return r;
    }
    for (int d = 0; d < op.spatial; ++d) r.params.scales[d] = (*factors)[d];
    return r;
  }
  for (int d = 0; d < op.spatial; ++d) {
    if (is_none(node, scale_arg + d)) continue;
    r.params.scales[d] = constant_float(node, scale_arg + d);
    if (!r.params.scales[d]) {
      r.problem = "a scale known only at run time";
      return r;
    }
  }
  return r;
}

// col2im(input, output_size, kernel_size, dilation, padding, stride), each list of 2.
std::optional<Col2imParams> col2im_args(const ir::Node& node) {
  Col2imParams params;
  int64_t* fields[] = {params.kernel, params.dilation, params.padding, params.stride};
  for (size_t i = 0; i < 4; ++i) {
    auto list = constant_ints(node, 2 + i);
    if (!list || list->size() != 2) return std::nullopt;
    fields[i][0] = (*list)[0];
    fields[i][1] = (*list)[1];
  }
  return params;
}

// _cdist_forward's compute_mode: None reads as 0.
std::optional<int64_t> compute_mode(const ir::Node& node) {
  if (is_none(node, 3)) return 0;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[3])) return *v;
  return std::nullopt;
}

// --- verdicts -----------------------------------------------------------------------------------

Verdict within_kernel_rank(const ir::Node& node) {
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor && v->shape.size() > kMaxKernelDims) {
      return Verdict::reject(str_cat("a tensor of rank ", v->shape.size(), " (the kernels take <= ",
                                     kMaxKernelDims, ")"));
    }
  }
  if (node.outputs[0]->shape.size() > kMaxKernelDims) {
    return Verdict::reject(str_cat("an output of rank ", node.outputs[0]->shape.size(),
                                   " (the kernels take <= ", kMaxKernelDims, ")"));
  }
  return Verdict::accept();
}

Verdict resize_verdict(const ir::Node& node, const ResizeOp& op) {
  const bool linear = op.mode == UpsampleMode::kLinear;
  if (linear) {
    if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  } else if (Verdict v = convert::check_value_types(node, kNearestTypes); !v.accepted()) {
    return v;
  }
  const ir::Value* in = value_arg(node, 0);
  if (!in || static_cast<int>(in->shape.size()) != op.spatial + 2) {
    return Verdict::reject(str_cat("expected a ", op.spatial + 2, "-D input"));
  }
  ResizeArgs args = resize_args(node, op);
  if (!args.problem.empty()) return Verdict::reject(args.problem);
  return Verdict::accept();
}

Verdict col2im_verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  const ir::Value* in = value_arg(node, 0);
  if (!in || (in->shape.size() != 2 && in->shape.size() != 3)) {
    return Verdict::reject("expected a 2-D or 3-D input");
  }
  if (!col2im_args(node)) {
    return Verdict::reject("kernel_size, dilation, padding and stride must be 2 constants each");
  }
  return Verdict::accept();
}

Verdict distance_verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  if (Verdict v = within_kernel_rank(node); !v.accepted()) return v;
  const bool cdist = node.op == OpKey::aten__cdist_forward_default;
  for (size_t i = 0; i < (cdist ? 2u : 1u); ++i) {
    const ir::Value* x = value_arg(node, i);
    if (!x || x->shape.size() < 2 || (!cdist && x->shape.size() != 2)) {
      return Verdict::reject(cdist ? "expected inputs of at least 2 dims" : "expected a 2-D input");
    }
  }
  const size_t p_arg = cdist ? 2 : 1;
  const std::optional<double> p = constant_float(node, p_arg);
  if (!p) return Verdict::reject("p known only at run time");
  if (!(*p >= 0.0)) return Verdict::reject(str_cat("p = ", *p, " (expected p >= 0)"));
  if (cdist) {
    if (!compute_mode(node)) return Verdict::reject("compute_mode known only at run time");
    const ir::Value* out = node.outputs[0];
    const size_t rank = out->shape.size();
    if (!static_dim(out, rank - 2) || !static_dim(out, rank - 1)) {
      return Verdict::reject("row counts known only at run time");
    }
  }
  return Verdict::accept();
}

bool takes(OpKey op) {
  return find_resize(op) || op == OpKey::aten_col2im_default ||
         op == OpKey::aten__cdist_forward_default || op == OpKey::aten__pdist_forward_default;
}

Verdict verdict(const ir::Node& node) {
  if (const ResizeOp* op = find_resize(node.op)) return resize_verdict(node, *op);
  if (node.op == OpKey::aten_col2im_default) return col2im_verdict(node);
  return distance_verdict(node);
}

// --- steps --------------------------------------------------------------------------------------

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots&, ModuleSource& module) {
  if (Verdict v = verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  if (const ResizeOp* op = find_resize(node.op)) {
    const UpsampleParams params = resize_args(node, *op).params;
    const std::string kernel = upsample_kernel(module, op->mode, op->spatial, in->dtype);
    return make_step(node, "resample", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
      const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
      return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
        return launch_upsample(fn, x, y, params, s);
      });
    });
  }
  if (node.op == OpKey::aten_col2im_default) {
    const Col2imParams params = *col2im_args(node);
    const std::string kernel = col2im_kernel(module, in->dtype);
    return make_step(node, "resample", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
      const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
      return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
        return launch_col2im(fn, x, y, params, s);
      });
    });
  }
  if (node.op == OpKey::aten__pdist_forward_default) {
    const double p = *constant_float(node, 1);
    const std::string kernel = pdist_kernel(module, in->dtype, distance_norm(p));
    return make_step(node, "distance", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
      const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
      return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
        return launch_pdist(fn, x, y, p, s);
      });
    });
  }
  // _cdist_forward: eager's choice of form depends on the row counts, static here.
  const ir::Value* in2 = value_arg(node, 1);
  const double p = *constant_float(node, 2);
  const size_t rank = out->shape.size();
  const DistanceNorm norm =
      cdist_norm(p, *compute_mode(node), *static_dim(out, rank - 2), *static_dim(out, rank - 1));
  const std::string kernel = cdist_kernel(module, in->dtype, norm);
  return make_step(node, "distance", {in, in2}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor a = slot_tensor(slots, in), b = slot_tensor(slots, in2);
    const Tensor y = slot_tensor(slots, out);
    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
      return launch_cdist(fn, a, b, y, p, s);
    });
  });
}

}  // namespace

const LibraryFamily& resample_family() {
  static const LibraryFamily family{"resample", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
