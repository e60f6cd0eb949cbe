// Fused scaled-dot-product attention through cuDNN's graph API (its flash-attention engines):
// O = softmax(scale * Q·K^T + bias, causal mask) · V in one kernel, S never stored, softmax
// statistics in fp32. cuDNN runs it for fp16 and bf16 with head dims that are multiples of 8;
// kiln runs other attention (fp32, odd head dims) as GEMM, softmax, GEMM (steps_attention.cc).
//
// Tensors are given by dims [B, H, L, E] plus strides in elements, so q, k and v may be views of
// one packed projection ([B, L, 3, H, E] permuted) without copies; the last dim must be unit
// stride. The bias, added to the scaled scores, is [B or 1, H or 1, Lq, Lk] in the io dtype (a
// boolean mask is turned into a 0 / -inf bias first). `causal` masks key j > query i (top-left
// aligned, as PyTorch's is_causal).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "cuda/cudnn_library.h"
#include "cuda/tactic_cache.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct AttentionDesc {
  DType dtype = DType::kFloat16;  // q, k, v, o and bias: kFloat16 or kBFloat16
  int64_t batch = 0, heads = 0, lq = 0, lk = 0, e = 0, ev = 0;
  std::vector<int64_t> q_strides, k_strides, v_strides, o_strides;  // 4 each, [B, H, L, E] order
  bool has_bias = false;
  std::vector<int64_t> bias_dims, bias_strides;  // 4 each: [B or 1, H or 1, lq, lk]
  bool causal = false;
  float scale = 1.0f;
};

struct AttentionArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* bias = nullptr;  // when has_bias
  void* o = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// Whether the desc is one cuDNN's fused attention is asked to run at all (dtype, head dims,
// strides), checked without cuDNN or a GPU: the planner's choice between this and the unfused
// steps. cuDNN may still decline at create().
Status fused_attention_eligible(const AttentionDesc& desc);
std::string describe_attention(const AttentionDesc& desc);  // "sdpa 32x12x512x512 e64 f16 causal"
// The tactic-cache key of a desc under a workspace limit: everything that shapes its cuDNN graph
// (strides and the exact scale too). Prefix it with device_tactic_tag() for a PlanCacheSlot.
std::string attention_tactic_key(const AttentionDesc& desc, size_t workspace_limit);

// One attention graph with its execution plan. Immutable after create(); run() is safe from
// several threads with different buffers.
class AttentionPlan {
 public:
  // Builds the cuDNN graph on the current device and the heuristic's first plan whose workspace
  // fits. Fails (unsupported) when cuDNN has no engine for the desc, saying why. With a cache in
  // `cached`, first restores the plan kept under its key (skipping cuDNN's kernel compilation),
  // falling back to building when there is none or it does not restore; a built plan is then
  // kept there when cuDNN can serialize it.
  static Result<std::shared_ptr<const AttentionPlan>> create(const AttentionDesc& desc,
                                                             size_t workspace_limit,
                                                             cudaStream_t stream,
                                                             const PlanCacheSlot& cached = {});
  ~AttentionPlan();
  AttentionPlan(const AttentionPlan&) = delete;
  AttentionPlan& operator=(const AttentionPlan&) = delete;

  Status run(const AttentionArgs& args, cudaStream_t stream) const;

  const AttentionDesc& desc() const { return desc_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  // Whether create() restored the plan from the cache rather than building it.
  bool restored() const;
  std::string describe() const;

 private:
  AttentionPlan() = default;
  struct Graph;
  AttentionDesc desc_;
  size_t workspace_bytes_ = 0;
  std::unique_ptr<Graph> graph_;
};

}  // namespace kiln::cuda
