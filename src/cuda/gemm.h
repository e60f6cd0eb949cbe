// Matrix products through cuBLASLt: D = alpha * op(A) · op(B) (+ beta * C) (+ bias), then an
// optional activation, for one matrix or a strided batch.
//
// Everything here is row-major, as PyTorch stores matrices: A is [m, k] (or [k, m] when trans_a),
// B is [k, n] (or [n, k] when trans_b, as a linear layer's weight), C and D are [m, n]. Leading
// dims are the elements between consecutive rows. Batches are `batch` matrices `stride_*` elements
// apart; a stride of 0 reuses one matrix for every batch entry (a broadcast weight).
// Accumulation is always fp32 (fp32 inputs may use TF32 when allowed); the bias has D's dtype.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/dtype.h"
#include "kiln/status.h"

namespace kiln::cuda {

enum class GemmEpilogue : uint8_t {
  kNone,
  kRelu,
  kGeluTanh,  // 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), aten.gelu(approximate="tanh")
};

struct GemmDesc {
  DType dtype = DType::kFloat32;  // A, B, C, D and bias: kFloat32, kFloat16 or kBFloat16
  int64_t m = 0, n = 0, k = 0;
  int64_t batch = 1;
  bool trans_a = false;
  bool trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0, ldd = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0, stride_d = 0;
  float alpha = 1.0f;
  float beta = 0.0f;    // used only when has_c
  bool has_c = false;   // D = alpha·A·B + beta·C (C may be D itself)
  bool has_bias = false;  // bias[n] added to every row before the activation
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  bool allow_tf32 = true;  // fp32 only: TF32 tensor cores (compute type 32F_FAST_TF32)
};

struct GemmArgs {
  const void* a = nullptr;
  const void* b = nullptr;
  const void* c = nullptr;  // when has_c
  const void* bias = nullptr;  // when has_bias
  void* d = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// One GEMM with its layouts and chosen algorithm. Immutable after create(); run() may be called
// from several threads with different buffers (each with its own workspace).
class GemmPlan {
 public:
  // Builds the cuBLASLt descriptors and picks an algorithm whose workspace fits
  // `workspace_limit`. With `timing_iterations` > 0, times up to 8 of the heuristic's candidates
  // on scratch buffers (allocated and freed here, on `stream`) and keeps the fastest; with 0,
  // takes the heuristic's first. `known_choice` >= 0 takes that candidate (a choice() made before,
  // from the timing cache) without timing, when the heuristic still offers it. Fails
  // (unsupported) when cuBLASLt has no algorithm for the desc.
  static Result<std::shared_ptr<const GemmPlan>> create(cublasLtHandle_t handle,
                                                        const GemmDesc& desc,
                                                        size_t workspace_limit,
                                                        int timing_iterations,
                                                        cudaStream_t stream,
                                                        int known_choice = -1);
  ~GemmPlan();
  GemmPlan(const GemmPlan&) = delete;
  GemmPlan& operator=(const GemmPlan&) = delete;

  Status run(cublasLtHandle_t handle, const GemmArgs& args, cudaStream_t stream) const;

  const GemmDesc& desc() const { return desc_; }
  size_t workspace_bytes() const { return workspace_bytes_; }  // what run() needs at most
  int choice() const { return choice_; }  // the chosen candidate's index in the heuristic's list
  std::string describe() const;  // "gemm 128x768x3072 f16 bias+gelu_tanh algo 21 (timed)"

 private:
  GemmPlan() = default;
  struct Descriptors;
  GemmDesc desc_;
  size_t workspace_bytes_ = 0;
  std::unique_ptr<Descriptors> lt_;
  std::string algo_note_;
  int choice_ = 0;
};

// The timing-cache key of a desc under a workspace limit: every field, and the cuBLASLt version.
std::string gemm_tactic_key(const GemmDesc& desc, size_t workspace_limit);

// The process's cuBLASLt handle (created on first use, thread-safe to share).
Result<cublasLtHandle_t> cublaslt_handle();

}  // namespace kiln::cuda
