#include "cuda/cuda_support.h"

#include <algorithm>
#include <optional>

#include "cuda/kernel_library_conv_direct.h"
#include "cuda/plan.h"
#include "cuda/pointwise_codegen.h"
#include "cuda/steps.h"
#include "ir/shape_inference.h"
#include "kernels/cpu/cpu_backend.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
constexpr DType kAllButDouble[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                   DType::kInt64,   DType::kInt32,   DType::kInt16,
                                   DType::kInt8,    DType::kUInt8,   DType::kBool};
constexpr DType kAllTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                               DType::kFloat64, DType::kInt64,   DType::kInt32,
                               DType::kInt16,   DType::kInt8,    DType::kUInt8,
                               DType::kBool};

// cat into float64: copies that widen (or keep) every part exactly, as eager's cast does.
bool cat_into_float64(const ir::Node& node) {
  return node.op == OpKey::aten_cat_default && !node.outputs.empty() && node.outputs[0] &&
         node.outputs[0]->dtype == DType::kFloat64;
}

bool has_tensor_output(const ir::Node& node) {
  for (const ir::Value* v : node.outputs) {
    if (v && v->kind == ir::ValueKind::kTensor) return true;
  }
  return false;
}

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}

size_t rank(const ir::Value* v) { return v ? v->shape.size() : 0; }

Verdict gemm_verdict(const ir::Node& node) {
  const ir::Value* a = tensor_arg(node, node.op == OpKey::aten_addmm_default ? 1 : 0);
  const ir::Value* b = tensor_arg(node, node.op == OpKey::aten_addmm_default ? 2 : 1);
  if (!a || !b) return Verdict::reject("operands are not tensors");
  // matmul's vector forms (dot, matrix-vector, vector-matrix) and a linear of one row run as
  // GEMMs with the vector as a row or column; a vector against a batch of matrices does not.
  if (rank(a) == 0 || rank(b) == 0) return Verdict::reject("0-d operands");
  if ((rank(a) == 1 && rank(b) > 2) || (rank(b) == 1 && rank(a) > 2)) {
    return Verdict::reject("a vector against a batch of matrices");
  }
  if (node.op == OpKey::aten_matmul_default && rank(b) > 2 && rank(a) != rank(b)) {
    return Verdict::reject("broadcast batch dims");
  }
  if (node.op == OpKey::aten_matmul_default && rank(b) > 2) {
    for (size_t d = 0; d + 2 < rank(a); ++d) {
      if (sym_dim_to_string(a->shape[d]) != sym_dim_to_string(b->shape[d])) {
        return Verdict::reject("broadcast batch dims");
      }
    }
  }
  if (node.op == OpKey::aten_linear_default && rank(b) != 2) return Verdict::reject("weight rank");
  // An empty inner dim (K = 0) runs as K = 1 over zeros (make_gemm_step).
  return Verdict::accept();
}

std::optional<std::vector<int64_t>> static_ints(const ir::Node& node, size_t i) {
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

// aten.convolution and the kept-whole conv1d/2d/3d. The weight's rank says the convolution's:
// an input of one dim less is PyTorch's unbatched form (one image), which the conv step runs with
// a batch of one.
Verdict conv_verdict(const ir::Node& node) {
  const ir::Value* x = tensor_arg(node, 0);
  const ir::Value* w = tensor_arg(node, 1);
  if (!x || !w) return Verdict::reject("operands are not tensors");
  const size_t wr = rank(w);
  if (wr < 3 || wr > 5) return Verdict::reject("input rank other than 3, 4, 5");
  if (rank(x) != wr && rank(x) + 1 != wr) {
    return Verdict::reject(str_cat("input rank ", rank(x), " for a weight of rank ", wr));
  }
  if (node.op != OpKey::aten_convolution_default) return Verdict::accept();
  const bool* transposed = node.args.size() > 6 ? std::get_if<bool>(&node.args[6]) : nullptr;
  if (!transposed || !*transposed) return Verdict::accept();
  // A transposed conv runs as cuDNN's data gradient with y's dims carrying the output padding.
  // On the H100 and H200, cuDNN 9 had no engine for those in float32 (k=3, s=2, p=1 or 2,
  // output_padding=1, TF32 on or off) nor for 1-D ones (run as 2-D with a height of 1) in
  // float16, while 2-D float16 ones ran. Which configurations have one is known only by asking
  // cuDNN on a GPU, which the verdict cannot: all but the 2-D half-precision ones run as kiln's
  // direct kernel rather than fail at run time.
  const auto output_padding = static_ints(node, 7);
  if (!output_padding) {
    return Verdict::reject("transposed convolution with symbolic output_padding");
  }
  const bool padded = std::any_of(output_padding->begin(), output_padding->end(),
                                  [](int64_t op) { return op != 0; });
  const bool half = x->dtype == DType::kFloat16 || x->dtype == DType::kBFloat16;
  // Those run as kiln's direct kernel (kernel_library_conv_direct.h) instead.
  if (padded && (!half || wr != 4)) return direct_conv_verdict(node);
  return Verdict::accept();
}

Verdict attention_verdict(const ir::Node& node) {
  for (size_t i = 0; i < 3; ++i) {
    if (rank(tensor_arg(node, i)) != 4) return Verdict::reject("q, k, v must be 4-D");
  }
  if (node.args.size() > 4) {
    const double* p = std::get_if<double>(&node.args[4]);
    if (p && *p != 0.0) return Verdict::reject("dropout_p != 0");
  }
  if (node.args.size() > 7) {
    const bool* gqa = std::get_if<bool>(&node.args[7]);
    if (gqa && *gqa) return Verdict::reject("enable_gqa");
  }
  const ir::Value* q = tensor_arg(node, 0);
  const ir::Value* k = tensor_arg(node, 1);
  if (sym_dim_to_string(q->shape[1]) != sym_dim_to_string(k->shape[1])) {
    return Verdict::reject("different head counts for q and k");
  }
  return Verdict::accept();
}

Verdict within_kernel_rank(const ir::Node& node) {
  constexpr size_t kMaxRank = kMaxKernelDims;
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor && rank(v) > kMaxRank) {
      return Verdict::reject(str_cat("a tensor of rank ", rank(v), " (the kernels take <= ",
                                     kMaxKernelDims, ")"));
    }
  }
  if (rank(node.outputs[0]) > kMaxRank) {
    return Verdict::reject(str_cat("an output of rank ", rank(node.outputs[0]),
                                   " (the kernels take <= ", kMaxKernelDims, ")"));
  }
  return Verdict::accept();
}

// index.Tensor with int64/int32 index tensors; a bool or uint8 entry is a mask, whose result has
// as many rows as the mask has true elements: a shape known only from the data. (For index.Tensor
// check_static_output_shape says so first; _unsafe_index has no dynamic-shape tag.)
Verdict index_verdict(const ir::Node& node) {
  const auto* list =
      node.args.size() > 1 ? std::get_if<std::vector<ir::Value*>>(&node.args[1]) : nullptr;
  if (!list) return Verdict::reject("the indices are not a list of tensors");
  for (size_t i = 0; i < list->size(); ++i) {
    const ir::Value* index = (*list)[i];
    if (index && (index->dtype == DType::kBool || index->dtype == DType::kUInt8)) {
      return Verdict::reject(str_cat("index ", i, " is a ", dtype_name(index->dtype),
                                     " mask: the result's shape depends on the mask's values"));
    }
  }
  return within_kernel_rank(node);
}

Verdict library_verdict(const ir::Node& node) {
  switch (node.op) {
    case OpKey::aten_native_layer_norm_default:
      // The norm step writes mean and rstd where they are read (a program output counts, which
      // a Value's users do not show).
      return Verdict::accept();
    case OpKey::aten_max_pool2d_with_indices_default:  // the pool step writes the indices
    case OpKey::aten_max_pool2d_default:
    case OpKey::aten_avg_pool2d_default:
    case OpKey::aten_adaptive_avg_pool2d_default:
    case OpKey::aten__adaptive_avg_pool2d_default:
      // Unbatched [C, H, W] inputs run as a batch of one.
      if (rank(tensor_arg(node, 0)) != 4 && rank(tensor_arg(node, 0)) != 3) {
        return Verdict::reject("not 3-D or 4-D ([N,] C, H, W)");
      }
      return Verdict::accept();
    case OpKey::aten_index_Tensor:
    case OpKey::aten__unsafe_index_Tensor:
      return index_verdict(node);
    case OpKey::aten_cumsum_default:
      return within_kernel_rank(node);
    case OpKey::aten_arange_start_step:
    case OpKey::aten_arange_start:
    case OpKey::aten_full_default:
    case OpKey::aten_full_like_default:
    case OpKey::aten_scalar_tensor_default: {
      // A fill value computed in the graph from sizes (sym_size and arithmetic on it) is known
      // once the engine binds an input shape; one that enters as an input may come from data.
      const bool fill = node.op != OpKey::aten_arange_start_step &&
                        node.op != OpKey::aten_arange_start;
      for (const ir::Argument& arg : node.args) {
        if (const ir::Value* const* v = std::get_if<ir::Value*>(&arg)) {
          if (*v && (*v)->kind != ir::ValueKind::kTensor && !(fill && (*v)->producer)) {
            return Verdict::reject("a value known only at run time");
          }
        }
      }
      return Verdict::accept();
    }
    default:
      return Verdict::accept();
  }
}

class CudaSupport final : public Backend {
 public:
  std::string_view name() const override { return "cuda"; }
  bool supports(const ir::Node& node) const override { return cuda_verdict(node).accepted(); }
  Status execute(ir::OpContext& ctx) const override {
    return unsupported("the cuda backend runs engines through plans, not node by node");
  }
};

}  // namespace

Verdict cuda_verdict(const ir::Node& node) {
  if (!ir::shape_inference_table().find(node.op)) return Verdict::reject("no shape inference");
  if (!has_tensor_output(node)) return Verdict::accept();
  // Random ops draw from the random family's own generators (values random, not eager's), so
  // the determinism check, which leaves them to PyTorch elsewhere, does not apply.
  if (random_family().takes(node.op)) return random_family().verdict(node);
  if (Verdict v = convert::check_deterministic(node); !v.accepted()) return v;
  if (Verdict v = convert::check_static_output_shape(node); !v.accepted()) return v;
  if (Verdict v = convert::check_inference_mode(node); !v.accepted()) return v;
  if (is_view_node(node)) {
    if (!cpu::cpu_backend().supports(node)) return Verdict::reject("no view rule");
    return convert::check_value_types(node, kAllButDouble);
  }
  const OpKey op = node.op;
  if (op == OpKey::aten_mm_default || op == OpKey::aten_addmm_default ||
      op == OpKey::aten_bmm_default || op == OpKey::aten_linear_default ||
      op == OpKey::aten_matmul_default) {
    if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
    return gemm_verdict(node);
  }
  if (is_conv_op(op)) {
    if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
    return conv_verdict(node);
  }
  if (op == OpKey::aten_scaled_dot_product_attention_default) {
    const DType types[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kBool};
    if (Verdict v = convert::check_value_types(node, types); !v.accepted()) return v;
    return attention_verdict(node);
  }
  if (const LibraryFamily* family = library_family(op)) return family->verdict(node);
  if (is_library_op(op)) {
    const std::span<const DType> types =
        cat_into_float64(node) ? std::span<const DType>(kAllTypes) : kAllButDouble;
    if (Verdict v = convert::check_value_types(node, types); !v.accepted()) return v;
    return library_verdict(node);
  }
  const std::string reason = pointwise_unsupported_reason(node);
  if (!reason.empty()) return Verdict::reject(reason);
  return convert::check_value_types(
      node, pointwise_takes_float64(node) ? std::span<const DType>(kAllTypes) : kAllButDouble);
}

const Backend& cuda_backend() {
  static const CudaSupport backend;
  return backend;
}

}  // namespace kiln::cuda

namespace kiln::convert {

Status register_cuda_implementations(OpRegistry& registry) {
  for (const ir::OpSchema& schema : ir::all_op_schemas()) {
    if (schema.key == ir::OpKey::kInvalid) continue;
    if (!ir::shape_inference_table().find(schema.key)) continue;
    KILN_RETURN_IF_ERROR(registry.add(OpImplementation{
        .op = schema.key,
        .backend = "cuda",
        .priority = Priority::kStandard,
        .supports_dynamic_shapes = true,
        .validator = [](const ir::Node& node) { return cuda::cuda_verdict(node); },
    }));
  }
  return ok_status();
}

}  // namespace kiln::convert
