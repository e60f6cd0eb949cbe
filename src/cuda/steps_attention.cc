// scaled_dot_product_attention as three launches: S = scale * Q·K^T (cuBLASLt, batched over
// batch x heads), P = softmax(S + mask) in place (kernel library, fp32 statistics, causal mask
// built in), O = P·V (cuBLASLt). Q, K and V whose batch and head dims do not merge into one
// stride are first copied into scratch.
#include <cmath>

#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

const ir::Value* value_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}

// Whether the [B, H, L, E] tensor's (B, H) dims merge into one batch stride with unit-stride
// rows.
bool mergeable(const Tensor& t) {
  if (t.strides()[3] != 1 && t.size(3) != 1) return false;
  return t.size(0) == 1 || t.size(1) == 1 || t.strides()[0] == t.strides()[1] * t.size(1);
}
int64_t batch_stride(const Tensor& t) {
  return t.size(1) == 1 ? t.strides()[0] : t.strides()[1];
}

}  // namespace

Result<std::unique_ptr<Step>> make_attention_step(const ir::Node& node, const Slots& slots,
                                                  const PlanOptions& options,
                                                  ModuleSource& module) {
  const ir::Value* q = value_arg(node, 0);
  const ir::Value* k = value_arg(node, 1);
  const ir::Value* v = value_arg(node, 2);
  const ir::Value* mask = value_arg(node, 3);
  const ir::Value* out = node.outputs[0];
  if (!q || !k || !v) return unsupported("attention '", node.name, "': bad arguments");
  const bool causal = node.args.size() > 5 && std::get_if<bool>(&node.args[5]) &&
                      *std::get_if<bool>(&node.args[5]);
  std::optional<double> scale;
  if (node.args.size() > 6) {
    if (const double* s = std::get_if<double>(&node.args[6])) scale = *s;
  }
  const Tensor& mq = slots[q->id].tensor;
  const Tensor& mk = slots[k->id].tensor;
  const Tensor& mv = slots[v->id].tensor;
  if (mq.dim() != 4 || mk.dim() != 4 || mv.dim() != 4) {
    return unsupported("attention '", node.name, "': the CUDA backend runs 4-D q, k, v");
  }
  const DType dtype = out->dtype;
  const size_t element = dtype_size(dtype);
  const int64_t bh = mq.size(0) * mq.size(1);
  const std::string softmax =
      attention_softmax_kernel(module, dtype, mask ? std::optional(mask->dtype) : std::nullopt);
  const std::string copy = copy_kernel(module, dtype, dtype);
  const bool allow_tf32 = options.allow_tf32;
  const std::string name = node.name;
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
    Tensor tq = slot_tensor(slots, q), tk = slot_tensor(slots, k), tv = slot_tensor(slots, v);
    const Tensor to = slot_tensor(slots, out);
    const Tensor* tm = mask ? &slot_tensor(slots, mask) : nullptr;
    const int64_t B = tq.size(0), H = tq.size(1), Lq = tq.size(2), E = tq.size(3);
    const int64_t Lk = tk.size(2), Ev = tv.size(3);
    if (tk.size(0) != B || tk.size(1) != H || tv.size(0) != B || tv.size(1) != H) {
      return invalid_argument("attention '", name, "': q ", tq.description(), ", k ",
                              tk.description(), ", v ", tv.description(),
                              " differ in batch or heads (grouped-query attention is not run)");
    }
    KILN_ASSIGN_OR_RETURN(cudaKernel_t copy_fn, ctx.kernel(copy));
    KILN_ASSIGN_OR_RETURN(cudaKernel_t softmax_fn, ctx.kernel(softmax));
    std::vector<std::pair<Tensor, Tensor>> copies;
    auto packed = [&](Tensor& t, size_t which) -> Status {
      if (mergeable(t)) return ok_status();
      KILN_ASSIGN_OR_RETURN(Tensor dst,
                            scratch_tensor(ctx, index, which, t, contiguous_strides(t.sizes())));
      copies.push_back({t, dst});
      t = dst;
      return ok_status();
    };
    KILN_RETURN_IF_ERROR(packed(tq, 1));
    KILN_RETURN_IF_ERROR(packed(tk, 2));
    KILN_RETURN_IF_ERROR(packed(tv, 3));
    void* scores = ctx.scratch(index, 0);
    const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(E));
    GemmDesc qk;
    qk.dtype = dtype;
    qk.allow_tf32 = allow_tf32;
    qk.m = Lq;
    qk.n = Lk;
    qk.k = E;
    qk.batch = B * H;
    qk.lda = tq.strides()[2];
    qk.stride_a = batch_stride(tq);
    qk.trans_b = true;
    qk.ldb = tk.strides()[2];
    qk.stride_b = batch_stride(tk);
    qk.ldd = Lk;
    qk.stride_d = Lq * Lk;
    qk.alpha = static_cast<float>(s);
    GemmDesc pv;
    pv.dtype = dtype;
    pv.allow_tf32 = allow_tf32;
    pv.m = Lq;
    pv.n = Ev;
    pv.k = Lk;
    pv.batch = B * H;
    pv.lda = Lk;
    pv.stride_a = Lq * Lk;
    pv.ldb = tv.strides()[2];
    pv.stride_b = batch_stride(tv);
    if (!(to.strides()[3] == 1 && mergeable(to))) {
      return internal_error("attention '", name, "': output ", to.description(),
                            " is not contiguous");
    }
    pv.ldd = to.strides()[2];
    pv.stride_d = batch_stride(to);
    KILN_ASSIGN_OR_RETURN(auto qk_plan, ctx.gemm_plan(qk), "attention '", name, "' Q·K^T");
    KILN_ASSIGN_OR_RETURN(auto pv_plan, ctx.gemm_plan(pv), "attention '", name, "' P·V");
    auto scores_storage = Storage::borrow(scores, size_t(B * H * Lq * Lk) * dtype_size(dtype),
                                          nullptr);
    const Tensor score_tensor =
        Tensor::from_storage(scores_storage, dtype, Shape{B, H, Lq, Lk},
                             contiguous_strides(Shape{B, H, Lq, Lk}), 0)
            .value();
    std::optional<Tensor> mask_tensor;
    if (tm) mask_tensor = *tm;
    GemmArgs a1{tq.raw_data(), tk.raw_data(), nullptr, nullptr, scores, ctx.workspace(),
                ctx.workspace_bytes()};
    GemmArgs a2{scores, tv.raw_data(), nullptr, nullptr, to.raw_data(), ctx.workspace(),
                ctx.workspace_bytes()};
    return Launch([=](cudaStream_t stream) -> Status {
      for (const auto& [src, dst] : copies) {
        KILN_RETURN_IF_ERROR(launch_copy(copy_fn, src, dst, stream));
      }
      KILN_ASSIGN_OR_RETURN(cublasLtHandle_t handle, cublaslt_handle());
      KILN_RETURN_IF_ERROR(qk_plan->run(handle, a1, stream));
      KILN_RETURN_IF_ERROR(launch_attention_softmax(
          softmax_fn, score_tensor, mask_tensor ? &*mask_tensor : nullptr, 1.0f, causal, stream));
      return pv_plan->run(handle, a2, stream);
    });
  };
  auto step = std::make_unique<FunctionStep>(
      "attention", str_cat("attention[", causal ? "causal" : "", mask ? " masked" : "", "] -> ",
                           out->name),
      bind);
  step->reads = {q->id, k->id, v->id};
  if (mask) step->reads.push_back(mask->id);
  step->writes = {out->id};
  step->name = node.name;
  step->scratch_bytes = {size_t(bh * mq.size(2) * mk.size(2)) * element, mq.nbytes(),
                         mk.nbytes(), mv.nbytes()};
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace kiln::cuda
