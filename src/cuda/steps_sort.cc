// The sort family of library ops (steps.h, LibraryFamily): sort (default and stable overloads)
// and topk, through kernel_library_sort.h's block-per-row bitonic sort. Its order is the stable
// sort's for every overload: PyTorch's CUDA sort is stable above 32 elements, and below that the
// order of equal values is its bitonic network's to choose, so the stable one is as good and
// keeps the indices deterministic.
#include <optional>

#include "cuda/kernel_library_sort.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kSortTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                DType::kInt64,   DType::kInt32,   DType::kInt16,
                                DType::kInt8,    DType::kUInt8,   DType::kBool};

// What a sort or topk node asks for, its arguments read by schema position:
// sort(self, dim, descending), sort.stable(self, stable, dim, descending),
// topk(self, k, dim, largest, sorted).
struct SortArgs {
  const ir::Value* in = nullptr;
  int64_t dim = 0;  // wrapped; 0 for a 0-d input
  bool descending = false;
  bool topk = false;
  int64_t k = 0;  // topk only
};

template <typename T>
const T* arg_as(const ir::Node& node, size_t i) {
  return i < node.args.size() ? std::get_if<T>(&node.args[i]) : nullptr;
}

// The node's arguments, or why the family cannot take them.
Result<SortArgs> sort_args(const ir::Node& node) {
  SortArgs a;
  const ir::Value* const* in = arg_as<ir::Value*>(node, 0);
  if (!in || !*in || (*in)->kind != ir::ValueKind::kTensor) {
    return unsupported("the input is not a tensor");
  }
  a.in = *in;
  a.topk = node.op == OpKey::aten_topk_default;
  const size_t dim_at = node.op == OpKey::aten_sort_default ? 1 : 2;
  const int64_t* dim = arg_as<int64_t>(node, dim_at);
  const bool* direction = arg_as<bool>(node, dim_at + 1);
  if (!dim || !direction) return unsupported("dim or direction not given as constants");
  const int64_t rank = static_cast<int64_t>(a.in->shape.size());
  const int64_t span = rank == 0 ? 1 : rank;
  if (*dim < -span || *dim >= span) {
    return unsupported("dim ", *dim, " out of range for rank ", rank);
  }
  a.dim = *dim < 0 ? *dim + span : *dim;
  // topk's `largest` is a descending sort; its `sorted` asks for nothing more (PyTorch leaves
  // the order of an unsorted topk to the implementation: kiln's is sorted).
  a.descending = *direction;
  if (a.topk) {
    const int64_t* k = arg_as<int64_t>(node, 1);
    if (!k) return unsupported("k known only at run time");
    a.k = *k;
  }
  return a;
}

// The outputs given a buffer by the planner (read later or returned); null for the others.
const ir::Value* stored_output(const ir::Node& node, const Slots& slots, size_t i) {
  const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
  return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v
                                                                                     : nullptr;
}

bool takes(OpKey op) {
  return op == OpKey::aten_sort_default || op == OpKey::aten_sort_stable ||
         op == OpKey::aten_topk_default;
}

Verdict verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kSortTypes); !v.accepted()) return v;
  auto args = sort_args(node);
  if (!args.ok()) return Verdict::reject(std::string(args.status().message()));
  const ir::Value& in = *args->in;
  const int64_t rank = static_cast<int64_t>(in.shape.size());
  if (rank > kMaxKernelDims) {
    return Verdict::reject(str_cat("an input of rank ", rank, " (the kernels take <= ",
                                   kMaxKernelDims, ")"));
  }
  if (args->topk && in.dtype == DType::kBool) {
    return Verdict::reject("topk of a bool tensor (PyTorch has no such kernel)");
  }
  if (rank > 0) {
    const ir::SymDim& n = in.shape[args->dim];
    if (!n.is_static()) {
      return Verdict::reject(str_cat("the sorted dim ", args->dim, " has a symbolic size (",
                                     ir::sym_dim_to_string(n), "): the kernel's rows must be "
                                     "known to fit a block"));
    }
    if (n.value > kSortLongRowMax) {
      return Verdict::reject(str_cat("rows of ", n.value, " elements along dim ", args->dim,
                                     " (the kernel sorts rows of at most ", kSortLongRowMax,
                                     ")"));
    }
  }
  return Verdict::accept();
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots,
                                   ModuleSource& module) {
  KILN_ASSIGN_OR_RETURN(SortArgs args, sort_args(node), "sort '", node.name, "': ");
  const ir::Value* in = args.in;
  const ir::Value* values = stored_output(node, slots, 0);
  const ir::Value* indices = stored_output(node, slots, 1);
  const int64_t dim = args.dim;
  const bool descending = args.descending;
  // An output nobody reads has no buffer and is not written; with neither, nothing runs.
  const std::string kernel = values || indices ? sort_kernel(module, in->dtype) : std::string();
  const ir::Value* named = values ? values : indices ? indices : node.outputs[0];
  // Rows too long for shared memory sort in scratch, sized at the planning (largest) shape.
  const Tensor& planned = slot_tensor(slots, in);
  const int64_t n = planned.dim() == 0 ? 1 : planned.size(dim);
  const size_t scratch_bytes =
      kernel.empty() ? 0 : sort_scratch_bytes(n == 0 ? 0 : planned.numel() / n, n);
  auto step = std::make_unique<FunctionStep>(
      "sort", str_cat("sort[", ir::op_name(node.op), "] -> ", named->name),
      [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
        if (kernel.empty()) return Launch([](cudaStream_t) { return ok_status(); });
        KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernel));
        const Tensor x = slot_tensor(slots, in);
        const Tensor v = values ? slot_tensor(slots, values) : Tensor();
        const Tensor i = indices ? slot_tensor(slots, indices) : Tensor();
        const bool has_v = values != nullptr, has_i = indices != nullptr;
        void* scratch = scratch_bytes > 0 ? ctx.scratch(index, 0) : nullptr;
        return Launch([=](cudaStream_t stream) {
          return launch_sort(fn, x, has_v ? &v : nullptr, has_i ? &i : nullptr, dim, descending,
                             stream, scratch, scratch_bytes);
        });
      });
  step->reads = {in->id};
  for (const ir::Value* out : {values, indices}) {
    if (out) step->writes.push_back(out->id);
  }
  step->name = node.name;
  if (scratch_bytes > 0) step->scratch_bytes = {scratch_bytes};
  return step;
}

}  // namespace

const LibraryFamily& sort_family() {
  static const LibraryFamily family{"sort", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
