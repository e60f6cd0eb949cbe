// The index reduction family of library ops (steps.h, LibraryFamily): argmax/argmin, max/min
// along a dim (values and indices), var/std and var_mean, run by
// kernel_library_index_reduction.h's kernels.
#include <optional>
#include <vector>

#include "cuda/kernel_library_index_reduction.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
constexpr DType kAllButDouble[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                   DType::kInt64,   DType::kInt32,   DType::kInt16,
                                   DType::kInt8,    DType::kUInt8,   DType::kBool};

enum class Kind { kArg, kMoments };

// What a node asks for, read from its arguments.
struct Reduction {
  Kind kind = Kind::kArg;
  bool max = true;          // kArg: max or min
  bool sqrt = false;        // kMoments: std rather than var
  double correction = 1.0;  // kMoments
  std::vector<bool> reduced;  // per input dim
};

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}

// The dims an argument names: nullopt for None, an error for a dim known only at run time.
Result<std::optional<std::vector<int64_t>>> dims_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size() || std::holds_alternative<ir::NoneArg>(node.args[i])) {
    return std::optional<std::vector<int64_t>>();
  }
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) {
    return std::optional<std::vector<int64_t>>(std::vector<int64_t>{*v});
  }
  if (const auto* list = std::get_if<std::vector<ir::SymInt>>(&node.args[i])) {
    std::vector<int64_t> dims;
    for (const ir::SymInt& s : *list) {
      if (s.value) return unsupported("a dim known only at run time");
      dims.push_back(s.constant);
    }
    return std::optional<std::vector<int64_t>>(std::move(dims));
  }
  return unsupported("a dim argument that is not an int or a list of ints");
}

Result<bool> bool_arg(const ir::Node& node, size_t i, bool fallback) {
  if (i >= node.args.size() || std::holds_alternative<ir::NoneArg>(node.args[i])) return fallback;
  if (const bool* v = std::get_if<bool>(&node.args[i])) return *v;
  return unsupported("a bool argument known only at run time");
}

// var's `Scalar? correction`: None is 1.
Result<double> correction_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size() || std::holds_alternative<ir::NoneArg>(node.args[i])) return 1.0;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return static_cast<double>(*v);
  if (const double* v = std::get_if<double>(&node.args[i])) return *v;
  if (const bool* v = std::get_if<bool>(&node.args[i])) return *v ? 1.0 : 0.0;
  return unsupported("a correction known only at run time");
}

// Which dims of `in` a node reduces. `all_if_empty`: an empty list means every dim (var's
// `int[1]? dim`), as PyTorch and kiln's shape inference read it.
Result<std::vector<bool>> reduced_dims(const ir::Value& in,
                                       const std::optional<std::vector<int64_t>>& dims,
                                       bool all_if_empty) {
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  if (!dims || (all_if_empty && dims->empty())) return std::vector<bool>(rank, true);
  std::vector<bool> reduced(rank, false);
  for (int64_t d : *dims) {
    // A 0-d input takes dim 0 or -1 and reduces its one element.
    const int64_t bound = std::max<int64_t>(rank, 1);
    if (d < -bound || d >= bound) {
      return invalid_argument("dim ", d, " out of range for an input of rank ", rank);
    }
    if (rank > 0) reduced[d < 0 ? d + rank : d] = true;
  }
  return reduced;
}

Result<Reduction> read_reduction(const ir::Node& node) {
  const ir::Value* in = tensor_arg(node, 0);
  if (!in) return unsupported("the input is not a tensor");
  Reduction r;
  std::optional<std::vector<int64_t>> dims;
  switch (node.op) {
    case OpKey::aten_argmax_default:
    case OpKey::aten_argmin_default:
    case OpKey::aten_max_dim:
    case OpKey::aten_min_dim: {
      r.kind = Kind::kArg;
      r.max = node.op == OpKey::aten_argmax_default || node.op == OpKey::aten_max_dim;
      KILN_ASSIGN_OR_RETURN(dims, dims_arg(node, 1));
      if (!dims && (node.op == OpKey::aten_max_dim || node.op == OpKey::aten_min_dim)) {
        return unsupported("max/min.dim without a dim");
      }
      KILN_ASSIGN_OR_RETURN(r.reduced, reduced_dims(*in, dims, false));
      return r;
    }
    case OpKey::aten_var_dim: {
      r.kind = Kind::kMoments;
      KILN_ASSIGN_OR_RETURN(dims, dims_arg(node, 1));
      KILN_ASSIGN_OR_RETURN(bool unbiased, bool_arg(node, 2, true));
      r.correction = unbiased ? 1.0 : 0.0;
      KILN_ASSIGN_OR_RETURN(r.reduced, reduced_dims(*in, dims, true));
      return r;
    }
    case OpKey::aten_var_correction:
    case OpKey::aten_std_correction:
    case OpKey::aten_var_mean_correction: {
      r.kind = Kind::kMoments;
      r.sqrt = node.op == OpKey::aten_std_correction;
      KILN_ASSIGN_OR_RETURN(dims, dims_arg(node, 1));
      KILN_ASSIGN_OR_RETURN(r.correction, correction_arg(node, 2));
      KILN_ASSIGN_OR_RETURN(r.reduced, reduced_dims(*in, dims, true));
      return r;
    }
    default:
      return unsupported("not an index reduction: ", ir::op_name(node.op));
  }
}

bool takes(OpKey op) {
  switch (op) {
    case OpKey::aten_argmax_default:
    case OpKey::aten_argmin_default:
    case OpKey::aten_max_dim:
    case OpKey::aten_min_dim:
    case OpKey::aten_var_correction:
    case OpKey::aten_var_dim:
    case OpKey::aten_std_correction:
    case OpKey::aten_var_mean_correction:
      return true;
    default:
      return false;
  }
}

Verdict verdict(const ir::Node& node) {
  auto r = read_reduction(node);
  if (!r.ok()) return Verdict::reject(std::string(r.status().message()));
  const bool moments = r->kind == Kind::kMoments;
  if (moments) {
    if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  } else {
    if (Verdict v = convert::check_value_types(node, kAllButDouble); !v.accepted()) return v;
  }
  const ir::Value* in = tensor_arg(node, 0);
  if (in->shape.size() > static_cast<size_t>(kMaxKernelDims)) {
    return Verdict::reject(str_cat("an input of rank ", in->shape.size(),
                                   " (the kernels take <= ", kMaxKernelDims, ")"));
  }
  if (!moments) {
    for (size_t d = 0; d < in->shape.size(); ++d) {
      const ir::SymDim& size = in->shape[d];
      if (r->reduced[d] && size.is_static() && size.value == 0) {
        return Verdict::reject(str_cat("a reduction over the empty dim ", d,
                                       " (max and min have no identity: PyTorch raises)"));
      }
    }
  }
  return Verdict::accept();
}

// `t` (an output of the node) in keepdim form: a size-1 dim inserted at each reduced dim that
// keepdim=False dropped. Its stride is never stepped.
Tensor keepdim_view(const Tensor& t, const std::vector<bool>& reduced) {
  if (t.dim() == static_cast<int64_t>(reduced.size())) return t;
  Shape sizes, strides;
  int64_t at = 0;
  for (bool r : reduced) {
    if (r) {
      sizes.push_back(1);
      strides.push_back(1);
    } else {
      sizes.push_back(t.size(at));
      strides.push_back(t.strides()[at]);
      ++at;
    }
  }
  return t.view_as(sizes, strides, t.offset());
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots,
                                   ModuleSource& module) {
  KILN_ASSIGN_OR_RETURN(Reduction r, read_reduction(node), "node '", node.name, "': ");
  const ir::Value* in = tensor_arg(node, 0);
  // The outputs with a buffer (read later or returned); an unread one is neither written nor
  // listed. argmax/argmin's one output is the indices (out1); the others' first is out0.
  auto stored = [&](size_t i) -> const ir::Value* {
    const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
    return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v
                                                                                      : nullptr;
  };
  const bool index_only = node.op == OpKey::aten_argmax_default ||
                          node.op == OpKey::aten_argmin_default;
  const ir::Value* out0 = index_only ? nullptr : stored(0);
  const ir::Value* out1 = index_only ? stored(0) : stored(1);
  const std::string kernel = r.kind == Kind::kArg ? arg_reduce_kernel(module, r.max, in->dtype)
                                                  : moments_kernel(module, in->dtype, r.sqrt);
  const std::string kind = r.kind == Kind::kArg ? "arg_reduce" : "moments";
  const std::vector<bool> reduced = r.reduced;
  const Reduction params = r;
  auto step = std::make_unique<FunctionStep>(
      kind, str_cat(kind, "[", ir::op_name(node.op), "] -> ", node.outputs[0]->name),
      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
        const Tensor x = slot_tensor(slots, in);
        const std::optional<Tensor> y0 =
            out0 ? std::optional<Tensor>(keepdim_view(slot_tensor(slots, out0), reduced))
                 : std::nullopt;
        const std::optional<Tensor> y1 =
            out1 ? std::optional<Tensor>(keepdim_view(slot_tensor(slots, out1), reduced))
                 : std::nullopt;
        return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
          const Tensor* p0 = y0 ? &*y0 : nullptr;
          const Tensor* p1 = y1 ? &*y1 : nullptr;
          return params.kind == Kind::kArg
                     ? launch_arg_reduce(fn, x, p0, p1, s)
                     : launch_moments(fn, x, p0, p1, params.correction, s);
        });
      });
  step->reads = {in->id};
  for (const ir::Value* v : {out0, out1}) {
    if (v) step->writes.push_back(v->id);
  }
  step->name = node.name;
  return step;
}

}  // namespace

const LibraryFamily& index_reduction_family() {
  static const LibraryFamily family{"index reduction", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
