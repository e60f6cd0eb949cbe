// scaled_dot_product_attention, two ways:
//   - fused, through cuDNN's flash-attention engines (attention.h) for fp16/bf16 with head dims
//     cuDNN takes: q, k, v read in place (views of a packed projection included), a mask turned
//     into an additive bias in scratch only when it is boolean or not already in cuDNN's layout;
//   - unfused, as three launches, for everything else (fp32 above all): S = scale * Q·K^T
//     (cuBLASLt, batched over batch x heads), P = softmax(S + mask) in place (kernel library, fp32
//     statistics, causal mask built in), O = P·V (cuBLASLt). Q, K and V whose batch and head dims
//     do not merge into one stride are first copied into scratch.
// The choice is made when planning, from the dtype, head dims and strides at the profile's
// largest shapes, so the arena holds the unfused path's score matrix only where it is used.
#include <cmath>

#include "cuda/attention.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {


using AttentionNode = AttentionOperands;

Status check_rank(const AttentionNode& a, const Slots& slots) {
  for (const ir::Value* t : {a.q, a.k, a.v}) {
    if (slots[t->id].tensor.dim() != 4) {
      return unsupported("attention '", a.name, "': the CUDA backend runs 4-D q, k, v; found ",
                         slots[t->id].tensor.description());
    }
  }
  return ok_status();
}

Status check_same_batch_heads(const Tensor& q, const Tensor& k, const Tensor& v,
                              const std::string& name) {
  if (k.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(0) != q.size(0) ||
      v.size(1) != q.size(1) || v.size(2) != k.size(2)) {
    return invalid_argument("attention '", name, "': q ", q.description(), ", k ",
                            k.description(), ", v ", v.description(),
                            " differ in batch, heads or key length (grouped-query attention is "
                            "not run)");
  }
  return ok_status();
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

// ---- fused (cuDNN) ----

std::vector<int64_t> strides_of(const Tensor& t) {
  return std::vector<int64_t>(t.strides().begin(), t.strides().end());
}

// The mask as a [B, H, Lq, Lk] view (leading dims added, broadcast dims at stride 0).
Result<Tensor> broadcast_mask(const Tensor& mask, const Shape& target, const std::string& name) {
  if (mask.dim() > 4) {
    return unsupported("attention '", name, "': mask ", mask.description(), " has more than 4 dims");
  }
  Shape strides(4, 0);
  for (int64_t d = 0; d < mask.dim(); ++d) {
    const int64_t t = 4 - mask.dim() + d;
    if (mask.size(d) == target[t]) {
      strides[t] = target[t] == 1 ? 0 : mask.strides()[d];
    } else if (mask.size(d) != 1) {
      return invalid_argument("attention '", name, "': mask ", mask.description(),
                              " does not broadcast to the scores ", shape_to_string(target));
    }
  }
  return mask.view_as(target, strides, mask.offset());
}

// How the mask reaches cuDNN: as it is, or first written into a [B or 1, H or 1, Lq, Lk] bias in
// scratch (boolean masks, other dtypes, broadcast or strided rows).
struct BiasSource {
  Tensor view;          // the mask broadcast to [Bm, Hm, Lq, Lk]
  bool convert = false;
};

BiasSource bias_source(const Tensor& broadcast, DType io) {
  Shape strides = broadcast.strides();
  Shape sizes = broadcast.sizes();
  const bool rows_dense = (strides[3] == 1 || sizes[3] == 1) && (strides[2] != 0 || sizes[2] == 1);
  // Broadcast batch or head dims become size 1, with the stride a dense tensor would have.
  if (strides[1] == 0) {
    sizes[1] = 1;
    strides[1] = strides[2] * sizes[2];
  }
  if (strides[0] == 0) {
    sizes[0] = 1;
    strides[0] = strides[1] * sizes[1];
  }
  BiasSource src{broadcast.view_as(sizes, strides, broadcast.offset()), false};
  src.convert = broadcast.dtype() != io || !rows_dense;
  return src;
}

AttentionDesc fused_desc(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                         const Tensor* bias, bool causal, std::optional<double> scale) {
  AttentionDesc d;
  d.dtype = o.dtype();
  d.batch = q.size(0);
  d.heads = q.size(1);
  d.lq = q.size(2);
  d.lk = k.size(2);
  d.e = q.size(3);
  d.ev = v.size(3);
  d.q_strides = strides_of(q);
  d.k_strides = strides_of(k);
  d.v_strides = strides_of(v);
  d.o_strides = strides_of(o);
  d.causal = causal;
  d.scale = static_cast<float>(scale ? *scale : 1.0 / std::sqrt(static_cast<double>(d.e)));
  if (bias) {
    d.has_bias = true;
    d.bias_dims.assign(bias->sizes().begin(), bias->sizes().end());
    d.bias_strides = strides_of(*bias);
  }
  return d;
}

Result<std::unique_ptr<Step>> make_fused_step(const AttentionNode& a,
                                              const Slots& slots, ModuleSource& module) {
  const DType io = a.out->dtype;
  std::string convert_kernel;
  size_t bias_bytes = 0;
  if (a.mask) {
    const Tensor& mq = slots[a.q->id].tensor;
    const Shape scores{mq.size(0), mq.size(1), mq.size(2), slots[a.k->id].tensor.size(2)};
    KILN_ASSIGN_OR_RETURN(Tensor mask, broadcast_mask(slots[a.mask->id].tensor, scores, a.name));
    const BiasSource src = bias_source(mask, io);
    if (src.convert) {
      convert_kernel = a.mask->dtype == DType::kBool ? mask_bias_kernel(module, io)
                                                     : copy_kernel(module, a.mask->dtype, io);
      bias_bytes = static_cast<size_t>(src.view.numel()) * dtype_size(io);
    }
  }
  const AttentionNode at = a;
  const std::string name = a.name;
  auto bind = [at, name, convert_kernel](const Slots& slots, BindContext& ctx,
                                         size_t index) -> Result<Launch> {
    const Tensor tq = slot_tensor(slots, at.q), tk = slot_tensor(slots, at.k),
                 tv = slot_tensor(slots, at.v), to = slot_tensor(slots, at.out);
    KILN_RETURN_IF_ERROR(check_same_batch_heads(tq, tk, tv, name));
    std::optional<Tensor> bias, bias_from;
    cudaKernel_t convert_fn = nullptr;
    if (at.mask) {
      const Shape scores{tq.size(0), tq.size(1), tq.size(2), tk.size(2)};
      KILN_ASSIGN_OR_RETURN(Tensor mask, broadcast_mask(slot_tensor(slots, at.mask), scores, name));
      BiasSource src = bias_source(mask, to.dtype());
      bias = src.view;
      if (src.convert != !convert_kernel.empty()) {
        return internal_error("attention '", name, "': the mask ", mask.description(),
                              " needs a different bias path than the plan made");
      }
      if (src.convert) {
        KILN_ASSIGN_OR_RETURN(convert_fn, ctx.kernel(convert_kernel));
        bias_from = src.view;
        KILN_ASSIGN_OR_RETURN(bias, scratch_tensor(ctx, index, 0,
                                                   Tensor::meta(to.dtype(), src.view.sizes()),
                                                   contiguous_strides(src.view.sizes())));
      }
    }
    const AttentionDesc desc =
        fused_desc(tq, tk, tv, to, bias ? &*bias : nullptr, at.causal, at.scale);
    KILN_ASSIGN_OR_RETURN(auto plan, ctx.attention_plan(desc), "attention '", name, "'");
    AttentionArgs args{tq.raw_data(), tk.raw_data(), tv.raw_data(),
                       bias ? bias->raw_data() : nullptr, to.raw_data(), ctx.workspace(),
                       ctx.workspace_bytes()};
    return Launch([=](cudaStream_t stream) -> Status {
      if (bias_from) KILN_RETURN_IF_ERROR(launch_copy(convert_fn, *bias_from, *bias, stream));
      return plan->run(args, stream);
    });
  };
  auto step = std::make_unique<FunctionStep>(
      "attention", str_cat("attention[fused", a.causal ? " causal" : "", a.mask ? " masked" : "",
                           "] -> ", a.out->name),
      bind);
  step->reads = {a.q->id, a.k->id, a.v->id};
  if (a.mask) step->reads.push_back(a.mask->id);
  step->writes = {a.out->id};
  step->name = a.name;
  if (bias_bytes) step->scratch_bytes = {bias_bytes};
  return std::unique_ptr<Step>(std::move(step));
}

// ---- unfused ----

Result<std::unique_ptr<Step>> make_unfused_step(const AttentionNode& a,
                                                const Slots& slots, const PlanOptions& options,
                                                ModuleSource& module) {
  const ir::Value *q = a.q, *k = a.k, *v = a.v, *mask = a.mask, *out = a.out;
  const bool causal = a.causal;
  const std::optional<double> scale = a.scale;
  const Tensor& mq = slots[q->id].tensor;
  const Tensor& mk = slots[k->id].tensor;
  const Tensor& mv = slots[v->id].tensor;
  const DType dtype = out->dtype;
  const size_t element = dtype_size(dtype);
  const int64_t bh = mq.size(0) * mq.size(1);
  const std::string softmax =
      attention_softmax_kernel(module, dtype, mask ? std::optional(mask->dtype) : std::nullopt);
  const std::string copy = copy_kernel(module, dtype, dtype);
  const bool allow_tf32 = options.allow_tf32;
  const std::string name = a.name;
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
    Tensor tq = slot_tensor(slots, q), tk = slot_tensor(slots, k), tv = slot_tensor(slots, v);
    const Tensor to = slot_tensor(slots, out);
    const Tensor* tm = mask ? &slot_tensor(slots, mask) : nullptr;
    const int64_t B = tq.size(0), H = tq.size(1), Lq = tq.size(2), E = tq.size(3);
    const int64_t Lk = tk.size(2), Ev = tv.size(3);
    KILN_RETURN_IF_ERROR(check_same_batch_heads(tq, tk, tv, name));
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
  step->name = a.name;
  step->scratch_bytes = {size_t(bh * mq.size(2) * mk.size(2)) * element, mq.nbytes(),
                         mk.nbytes(), mv.nbytes()};
  return std::unique_ptr<Step>(std::move(step));
}


}  // namespace

Result<AttentionOperands> attention_operands(const ir::Node& node, const Slots& slots) {
  // aten.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)
  AttentionOperands a;
  a.q = value_arg(node, 0);
  a.k = value_arg(node, 1);
  a.v = value_arg(node, 2);
  a.mask = value_arg(node, 3);
  a.out = node.outputs.empty() ? nullptr : node.outputs[0];
  a.name = node.name;
  if (!a.q || !a.k || !a.v || !a.out) {
    return unsupported("attention '", node.name, "': expected tensor q, k and v");
  }
  if (node.args.size() > 5) {
    if (const bool* c = std::get_if<bool>(&node.args[5])) a.causal = *c;
  }
  if (node.args.size() > 6) {
    if (const double* s = std::get_if<double>(&node.args[6])) a.scale = *s;
  }
  KILN_RETURN_IF_ERROR(check_rank(a, slots));
  return a;
}

bool attention_writes_strides(const AttentionOperands& a, const Slots& slots,
                              const PlanOptions& options, const Shape& o_strides) {
  if (!check_rank(a, slots).ok()) return false;
  const Tensor& meta = slots[a.out->id].tensor;
  if (meta.dim() != 4 || o_strides.size() != 4) return false;
  const Tensor& q = slots[a.q->id].tensor;
  const Tensor o = q.view_as(meta.sizes(), o_strides, 0);
  if (options.fused_attention &&
      fused_attention_eligible(fused_desc(q, slots[a.k->id].tensor, slots[a.v->id].tensor, o,
                                          nullptr, a.causal, a.scale))
          .ok()) {
    return true;
  }
  return (o_strides[3] == 1 || meta.size(3) == 1) && mergeable(o);
}

Result<std::unique_ptr<Step>> make_attention_step(const AttentionOperands& a, const Slots& slots,
                                                  const PlanOptions& options,
                                                  ModuleSource& module) {
  KILN_RETURN_IF_ERROR(check_rank(a, slots));
  const Tensor& q = slots[a.q->id].tensor;
  const Tensor& k = slots[a.k->id].tensor;
  const Tensor& v = slots[a.v->id].tensor;
  const Tensor& o = slots[a.out->id].tensor;
  if (options.fused_attention &&
      fused_attention_eligible(fused_desc(q, k, v, o, nullptr, a.causal, a.scale)).ok()) {
    return make_fused_step(a, slots, module);
  }
  return make_unfused_step(a, slots, options, module);
}

}  // namespace kiln::cuda
