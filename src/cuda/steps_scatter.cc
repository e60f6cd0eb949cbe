// The scatter family of library ops (steps.h, LibraryFamily): gather, scatter (src, value,
// reduce), scatter_add, scatter_reduce.two, index_put (and _unsafe_index_put) and masked_scatter,
// run by kernel_library_scatter.h's kernels. The functional scatters copy self into the output
// first and then scatter into it, one step.
#include <algorithm>
#include <optional>

#include "cuda/kernel_library_scatter.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kAllButDouble[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                   DType::kInt64,   DType::kInt32,   DType::kInt16,
                                   DType::kInt8,    DType::kUInt8,   DType::kBool};

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
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return double(*v);
  if (const double* v = std::get_if<double>(&node.args[i])) return *v;
  if (const bool* v = std::get_if<bool>(&node.args[i])) return *v ? 1.0 : 0.0;
  return std::nullopt;
}
const std::string* string_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  return std::get_if<std::string>(&node.args[i]);
}
const std::vector<ir::Value*>* list_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  return std::get_if<std::vector<ir::Value*>>(&node.args[i]);
}
int64_t rank_of(const ir::Value* v) {
  return static_cast<int64_t>(v->shape.size());
}

bool is_scatter(OpKey op) {
  return op == OpKey::aten_scatter_src || op == OpKey::aten_scatter_value ||
         op == OpKey::aten_scatter_reduce || op == OpKey::aten_scatter_value_reduce ||
         op == OpKey::aten_scatter_add_default || op == OpKey::aten_scatter_reduce_two;
}
bool is_index_put(OpKey op) {
  return op == OpKey::aten_index_put_default || op == OpKey::aten__unsafe_index_put_default;
}

bool takes(OpKey op) {
  return op == OpKey::aten_gather_default || is_scatter(op) || is_index_put(op) ||
         op == OpKey::aten_masked_scatter_default;
}

// A scatter node's static arguments.
struct ScatterForm {
  ScatterParams params;
  bool from_value = false;
};
Result<ScatterForm> scatter_form(const ir::Node& node) {
  ScatterForm form;
  const OpKey op = node.op;
  form.from_value = op == OpKey::aten_scatter_value || op == OpKey::aten_scatter_value_reduce;
  if (form.from_value) {
    auto value = number_arg(node, 3);
    if (!value) return unsupported("a scattered value known only at run time");
    form.params.value = *value;
  }
  if (op == OpKey::aten_scatter_add_default) form.params.reduce = ScatterReduce::kSum;
  if (op == OpKey::aten_scatter_reduce || op == OpKey::aten_scatter_value_reduce ||
      op == OpKey::aten_scatter_reduce_two) {
    const std::string* name = string_arg(node, 4);
    auto reduce = name ? parse_scatter_reduce(*name) : std::nullopt;
    if (!reduce) return unsupported("reduce '", name ? *name : "?", "'");
    form.params.reduce = *reduce;
  }
  if (op == OpKey::aten_scatter_reduce_two) {
    auto include_self = bool_arg(node, 5);
    if (!include_self) return unsupported("include_self known only at run time");
    form.params.include_self = *include_self;
  }
  return form;
}

Verdict within_rank(const ir::Node& node) {
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor && rank_of(v) > kMaxKernelDims) {
      return Verdict::reject(
          str_cat("a tensor of rank ", rank_of(v), " (the kernels take <= ", kMaxKernelDims, ")"));
    }
  }
  if (rank_of(node.outputs[0]) > kMaxKernelDims) {
    return Verdict::reject(str_cat("an output of rank ", rank_of(node.outputs[0]),
                                   " (the kernels take <= ", kMaxKernelDims, ")"));
  }
  return Verdict::accept();
}

// Whether a dim of v is 0 whatever the inputs' sizes.
bool statically_empty(const ir::Value& v) {
  return std::any_of(v.shape.begin(), v.shape.end(),
                     [](const ir::SymDim& d) { return d.is_static() && d.value == 0; });
}

// Whether two dims are the same size whatever the inputs (equal constants or one symbol).
bool same_dim(const ir::SymDim& a, const ir::SymDim& b) {
  return ir::sym_dim_to_string(a) == ir::sym_dim_to_string(b);
}

// index_put(self, [mask], values): a single bool or uint8 index, leading.
bool is_masked_put(const ir::Node& node) {
  const auto* list = list_arg(node, 1);
  return list && list->size() == 1 && (*list)[0] &&
         ((*list)[0]->dtype == DType::kBool || (*list)[0]->dtype == DType::kUInt8);
}

// A mask selects rows whose count is known only from its values; values that broadcast to one
// row (launch_masked_put) make the result's shape self's anyway.
Verdict masked_put_verdict(const ir::Node& node) {
  const ir::Value* self = value_arg(node, 0);
  const ir::Value* mask = (*list_arg(node, 1))[0];
  const ir::Value* values = value_arg(node, 2);
  if (!values) return Verdict::reject("values is not a tensor");
  const size_t rank = rank_of(self), lead = rank_of(mask);
  if (lead == 0 || lead > rank) {
    return Verdict::reject(str_cat("a ", lead, "-D mask for a ", rank, "-D tensor"));
  }
  for (size_t d = 0; d < lead; ++d) {
    if (!same_dim(mask->shape[d], self->shape[d])) {
      return Verdict::reject("a mask whose sizes are not the leading dims' of self");
    }
  }
  const size_t row = rank - lead, vrank = rank_of(values);
  const auto one = [](const ir::SymDim& d) { return d.is_static() && d.value == 1; };
  if (vrank > row + 1 || (vrank == row + 1 && !one(values->shape[0]))) {
    return Verdict::reject("values with a dim for the masked rows (their count depends on the "
                           "mask's values)");
  }
  for (size_t j = 0; j < std::min(vrank, row); ++j) {
    const ir::SymDim& v = values->shape[vrank - 1 - j];
    if (!one(v) && !same_dim(v, self->shape[rank - 1 - j])) {
      return Verdict::reject("values that do not broadcast to a masked row");
    }
  }
  auto accumulate = bool_arg(node, 3);
  if (!accumulate) return Verdict::reject("accumulate known only at run time");
  if (*accumulate && self->dtype != DType::kFloat32 && self->dtype != DType::kFloat16 &&
      self->dtype != DType::kBFloat16) {
    return Verdict::reject(str_cat("an accumulating masked index_put of ",
                                   dtype_name(self->dtype)));
  }
  return Verdict::accept();
}

Verdict verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kAllButDouble); !v.accepted()) return v;
  if (Verdict v = within_rank(node); !v.accepted()) return v;
  const OpKey op = node.op;
  const ir::Value* self = value_arg(node, 0);
  if (!self) return Verdict::reject("self is not a tensor");
  if (op == OpKey::aten_gather_default || is_scatter(op)) {
    if (!int_arg(node, 1)) return Verdict::reject("dim known only at run time");
    const ir::Value* index = value_arg(node, 2);
    if (!index) return Verdict::reject("the index is not a tensor");
    if (index->dtype != DType::kInt64 && index->dtype != DType::kInt32 &&
        !(op == OpKey::aten_gather_default && statically_empty(*index))) {
      // Eager takes an index of another dtype only when it is empty (nothing to gather).
      return Verdict::reject("an index that is not an int64 or int32 tensor");
    }
    if (op == OpKey::aten_gather_default) return Verdict::accept();
    auto form = scatter_form(node);
    if (!form.ok()) return Verdict::reject(form.status().message());
    if (!form->from_value && !value_arg(node, 3)) return Verdict::reject("src is not a tensor");
    if (form->params.reduce != ScatterReduce::kAssign && !scatter_reduce_takes(self->dtype)) {
      return Verdict::reject(str_cat("a reducing scatter of ", dtype_name(self->dtype)));
    }
    return Verdict::accept();
  }
  if (is_index_put(op)) {
    const auto* list = list_arg(node, 1);
    if (!list) return Verdict::reject("the indices are not a list of tensors");
    if (is_masked_put(node)) return masked_put_verdict(node);
    bool any = false;
    for (size_t i = 0; i < list->size(); ++i) {
      const ir::Value* index = (*list)[i];
      if (!index) continue;
      if (index->dtype == DType::kBool || index->dtype == DType::kUInt8) {
        return Verdict::reject(str_cat("index ", i, " is a ", dtype_name(index->dtype),
                                       " mask (kiln takes int64 and int32 indices)"));
      }
      any = true;
    }
    if (!any) return Verdict::reject("no index tensor (only None entries)");
    if (!value_arg(node, 2)) return Verdict::reject("values is not a tensor");
    auto accumulate = bool_arg(node, 3);
    if (!accumulate) return Verdict::reject("accumulate known only at run time");
    if (*accumulate && !scatter_reduce_takes(self->dtype)) {
      return Verdict::reject(str_cat("an accumulating index_put of ", dtype_name(self->dtype)));
    }
    return Verdict::accept();
  }
  if (op == OpKey::aten_masked_scatter_default) {
    const ir::Value* mask = value_arg(node, 1);
    if (!mask || mask->dtype != DType::kBool) return Verdict::reject("a mask that is not bool");
    if (!value_arg(node, 2)) return Verdict::reject("source is not a tensor");
    return Verdict::accept();
  }
  return Verdict::reject(str_cat("not a scatter-family op: ", ir::op_name(op)));
}

// The copy of self into out that the functional scatters start with, then `scatter`.
template <typename F>
Result<Launch> copy_then(BindContext& ctx, const std::string& copy, const std::string& kernel,
                         Tensor self, Tensor out, F scatter) {
  KILN_ASSIGN_OR_RETURN(cudaKernel_t copy_fn, ctx.kernel(copy));
  KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernel));
  return Launch([=](cudaStream_t stream) -> Status {
    KILN_RETURN_IF_ERROR(launch_copy(copy_fn, self, out, stream));
    return scatter(fn, stream);
  });
}

Result<std::unique_ptr<Step>> make_gather(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* index = value_arg(node, 2);
  const ir::Value* out = node.outputs[0];
  auto dim = int_arg(node, 1);
  if (!in || !index || !dim) return unsupported("gather '", node.name, "': args");
  const int64_t d = *dim < 0 ? *dim + std::max<int64_t>(rank_of(in), 1) : *dim;
  // An index of another dtype is empty (the verdict): the kernel is never launched.
  const DType index_type = index->dtype == DType::kInt32 ? DType::kInt32 : DType::kInt64;
  const std::string kernel = gather_kernel(module, in->dtype, index_type);
  return make_step(
      node, "gather", {in, index},
      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
        const Tensor x = slot_tensor(slots, in), i = slot_tensor(slots, index),
                     y = slot_tensor(slots, out);
        KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernel));
        return Launch([=](cudaStream_t s) { return launch_gather(fn, x, d, i, y, s); });
      });
}

Result<std::unique_ptr<Step>> make_scatter(const ir::Node& node, const Slots& slots,
                                           ModuleSource& module) {
  const ir::Value* self = value_arg(node, 0);
  const ir::Value* index = value_arg(node, 2);
  const ir::Value* out = node.outputs[0];
  auto dim = int_arg(node, 1);
  KILN_ASSIGN_OR_RETURN(ScatterForm form, scatter_form(node), "scatter '", node.name, "': ");
  const ir::Value* src = form.from_value ? nullptr : value_arg(node, 3);
  if (!self || !index || !dim || (!form.from_value && !src)) {
    return unsupported("scatter '", node.name, "': args");
  }
  const int64_t d = *dim < 0 ? *dim + std::max<int64_t>(rank_of(self), 1) : *dim;
  const std::string copy = copy_kernel(module, self->dtype, out->dtype);
  const std::string kernel =
      scatter_kernel(module, form.params.reduce, self->dtype, index->dtype, form.from_value);
  const bool mean = form.params.reduce == ScatterReduce::kMean;
  const ScatterParams params = form.params;
  auto step = make_step(
      node, "scatter", {self, index, src},
      [=](const Slots& slots, BindContext& ctx, size_t step_index) -> Result<Launch> {
        const Tensor x = slot_tensor(slots, self), i = slot_tensor(slots, index),
                     y = slot_tensor(slots, out);
        const Tensor s = src ? slot_tensor(slots, src) : Tensor();
        Tensor counts;
        if (mean) {
          KILN_ASSIGN_OR_RETURN(
              counts,
              scratch_tensor(ctx, step_index, 0, Tensor::meta(DType::kInt32, {y.numel()}), {1}));
        }
        return copy_then(ctx, copy, kernel, x, y, [=](cudaKernel_t fn, cudaStream_t stream) {
          return launch_scatter(fn, y, d, i, src ? &s : nullptr, params, mean ? &counts : nullptr,
                                stream);
        });
      });
  if (mean) {
    const int64_t n = slot_tensor(slots, out).numel();
    step->scratch_bytes = {static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(int32_t)};
  }
  return step;
}

Result<std::unique_ptr<Step>> make_index_put(const ir::Node& node, ModuleSource& module) {
  const ir::Value* self = value_arg(node, 0);
  const auto* list = list_arg(node, 1);
  const ir::Value* values = value_arg(node, 2);
  const ir::Value* out = node.outputs[0];
  auto accumulate = bool_arg(node, 3);
  if (!self || !list || !values || !accumulate) {
    return unsupported("index_put '", node.name, "': args");
  }
  if (is_masked_put(node)) {
    const ir::Value* mask = (*list)[0];
    const std::string copy = copy_kernel(module, self->dtype, out->dtype);
    const std::string kernel = masked_put_kernel(module, self->dtype, mask->dtype, *accumulate);
    return make_step(node, "scatter", {self, mask, values},
                     [=](const Slots& slots, BindContext& ctx, size_t) {
                       const Tensor x = slot_tensor(slots, self), m = slot_tensor(slots, mask),
                                    v = slot_tensor(slots, values), y = slot_tensor(slots, out);
                       return copy_then(ctx, copy, kernel, x, y,
                                        [=](cudaKernel_t fn, cudaStream_t stream) {
                                          return launch_masked_put(fn, y, m, v, stream);
                                        });
                     });
  }
  const std::vector<const ir::Value*> indices(list->begin(), list->end());
  std::vector<const ir::Value*> reads = {self, values};
  for (const ir::Value* v : indices) {
    if (v) reads.push_back(v);
  }
  const std::string copy = copy_kernel(module, self->dtype, out->dtype);
  const std::string kernel = index_put_kernel(module, self->dtype, *accumulate);
  return make_step(node, "scatter", reads, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor x = slot_tensor(slots, self), v = slot_tensor(slots, values),
                 y = slot_tensor(slots, out);
    std::vector<std::optional<Tensor>> index_tensors;
    for (const ir::Value* i : indices) {
      index_tensors.push_back(i ? std::optional<Tensor>(slot_tensor(slots, i)) : std::nullopt);
    }
    return copy_then(ctx, copy, kernel, x, y, [=](cudaKernel_t fn, cudaStream_t stream) {
      std::vector<const Tensor*> entries;
      for (const std::optional<Tensor>& t : index_tensors) entries.push_back(t ? &*t : nullptr);
      return launch_index_put(fn, y, entries, v, stream);
    });
  });
}

Result<std::unique_ptr<Step>> make_masked_scatter(const ir::Node& node, const Slots& slots,
                                                  ModuleSource& module) {
  const ir::Value* self = value_arg(node, 0);
  const ir::Value* mask = value_arg(node, 1);
  const ir::Value* source = value_arg(node, 2);
  const ir::Value* out = node.outputs[0];
  if (!self || !mask || !source) return unsupported("masked_scatter '", node.name, "': args");
  const std::string copy = copy_kernel(module, self->dtype, out->dtype);
  const std::string kernel = masked_scatter_kernel(module, self->dtype);
  auto step = make_step(
      node, "scatter", {self, mask, source},
      [=](const Slots& slots, BindContext& ctx, size_t step_index) -> Result<Launch> {
        const Tensor x = slot_tensor(slots, self), m = slot_tensor(slots, mask),
                     s = slot_tensor(slots, source), y = slot_tensor(slots, out);
        // self broadcast to out's sizes (masked_scatter broadcasts self against the mask).
        KILN_ASSIGN_OR_RETURN(Tensor x_wide,
                              scatter_broadcast_to(x, y.sizes(), "masked_scatter self"));
        const int64_t chunks = masked_scatter_scratch_elements(y.numel());
        KILN_ASSIGN_OR_RETURN(
            Tensor counts,
            scratch_tensor(ctx, step_index, 0, Tensor::meta(DType::kInt64, {chunks}), {1}));
        return copy_then(ctx, copy, kernel, x_wide, y, [=](cudaKernel_t fn, cudaStream_t stream) {
          return launch_masked_scatter(fn, y, m, s, counts, stream);
        });
      });
  const int64_t chunks = masked_scatter_scratch_elements(slot_tensor(slots, out).numel());
  step->scratch_bytes = {static_cast<size_t>(chunks) * sizeof(int64_t)};
  return step;
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots, ModuleSource& module) {
  const OpKey op = node.op;
  if (op == OpKey::aten_gather_default) return make_gather(node, module);
  if (is_scatter(op)) return make_scatter(node, slots, module);
  if (is_index_put(op)) return make_index_put(node, module);
  if (op == OpKey::aten_masked_scatter_default) return make_masked_scatter(node, slots, module);
  return unsupported("no CUDA kernel for ", ir::op_name(op));
}

}  // namespace

const LibraryFamily& scatter_family() {
  static const LibraryFamily family{"scatter", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
