// GEMMs on cuBLASLt. kiln's matrices are row-major and cuBLASLt's column-major; a row-major
// [r, c] matrix with leading dim ld is, byte for byte, a column-major [c, r] one with the same ld.
// So D = op(A)·op(B) runs as cuBLASLt's D^T = op(B)^T·op(A)^T: the operands swap places, m and n
// swap, and each operand keeps its own transpose flag. kiln's bias, added to every row of D, is
// then the per-row bias of cuBLASLt's D^T (length n), which is what its BIAS epilogues take.
#include "cuda/gemm.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "cuda/cuda_check.h"

namespace kiln::cuda {
namespace {

// Pointer alignment the plan's main algorithm may assume. Arena buffers and cudaMalloc give 256
// bytes, but views (a slice of a packed QKV projection, a column offset) can start anywhere on
// an element; cuBLASLt's fastest kernels want 16-byte vectors, so the plan also keeps a fallback
// algorithm chosen for element-aligned pointers and run() picks one from the actual pointers.
constexpr uint32_t kAssumedAlignment = 16;
constexpr int kMaxCandidates = 8;
// Scratch bytes for timing: 0x30 repeated is a small normal number in f32, f16 and bf16 (6e-10,
// 0.13, 6e-10), so products stay finite and normal: no NaN, overflow or denormal effects.
constexpr int kScratchFill = 0x30;
// Bounds the element count of one operand so that byte sizes cannot overflow.
constexpr int64_t kMaxElements = int64_t{1} << 56;

// kiln's four operands as stored: row-major [rows, cols] matrices `ld` elements apart per row,
// `batch` of them `stride` elements apart.
struct StoredMatrix {
  const char* name;
  const char* ld_name;
  int64_t rows, cols, ld, stride;
};

StoredMatrix stored_a(const GemmDesc& d) {
  return {"A", "lda", d.trans_a ? d.k : d.m, d.trans_a ? d.m : d.k, d.lda, d.stride_a};
}
StoredMatrix stored_b(const GemmDesc& d) {
  return {"B", "ldb", d.trans_b ? d.n : d.k, d.trans_b ? d.k : d.n, d.ldb, d.stride_b};
}
StoredMatrix stored_c(const GemmDesc& d) {
  return {"C", "ldc", d.m, d.n, d.ldc, d.stride_c};
}
StoredMatrix stored_d(const GemmDesc& d) {
  return {"D", "ldd", d.m, d.n, d.ldd, d.stride_d};
}

// Elements from the first to one past the last that a batched operand touches; nullopt past
// kMaxElements.
std::optional<int64_t> span_elements(const StoredMatrix& s, int64_t batch) {
  int64_t rows_span = 0, batch_span = 0, total = 0;
  if (__builtin_mul_overflow(s.rows - 1, s.ld, &rows_span) ||
      __builtin_mul_overflow(batch - 1, s.stride, &batch_span) ||
      __builtin_add_overflow(rows_span, s.cols, &total) ||
      __builtin_add_overflow(total, batch_span, &total) || total > kMaxElements) {
    return std::nullopt;
  }
  return total;
}

bool is_gemm_dtype(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

cudaDataType_t lt_data_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return CUDA_R_16F;
    case DType::kBFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;  // validate() admits only the three
  }
}

cublasLtEpilogue_t lt_epilogue(const GemmDesc& d) {
  switch (d.epilogue) {
    case GemmEpilogue::kRelu:
      return d.has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case GemmEpilogue::kGeluTanh:
      return d.has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    case GemmEpilogue::kNone: break;
  }
  return d.has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
}

// "m=128 n=768 k=3072 batch=1 f16 nt bias+gelu_tanh": the problem as errors and describe() name it.
std::string problem_text(const GemmDesc& d) {
  std::string dtype = d.dtype == DType::kFloat32    ? (d.allow_tf32 ? "f32(tf32)" : "f32")
                      : d.dtype == DType::kFloat16  ? "f16"
                      : d.dtype == DType::kBFloat16 ? "bf16"
                                                    : std::string(dtype_name(d.dtype));
  std::string text = str_cat("m=", d.m, " n=", d.n, " k=", d.k, " batch=", d.batch, " ", dtype, " ",
                             d.trans_a ? "t" : "n", d.trans_b ? "t" : "n");
  if (d.alpha != 1.0f) text += str_cat(" alpha=", d.alpha);
  if (d.has_c) text += str_cat(" +beta*C(beta=", d.beta, ")");
  const char* activation = d.epilogue == GemmEpilogue::kRelu       ? "relu"
                           : d.epilogue == GemmEpilogue::kGeluTanh ? "gelu_tanh"
                                                                   : nullptr;
  if (d.has_bias && activation) return str_cat(text, " bias+", activation);
  if (d.has_bias) return text + " bias";
  if (activation) return str_cat(text, " ", activation);
  return text + " no-epilogue";
}

Status validate_matrix(const StoredMatrix& s, int64_t batch) {
  if (s.ld < s.cols) {
    return invalid_argument("GEMM ", s.ld_name, ": expected at least ", s.cols,
                            " (the row length of ", s.name, ", stored as [", s.rows, ", ", s.cols,
                            "]), found ", s.ld);
  }
  if (s.stride < 0) {
    return invalid_argument("GEMM batch stride of ", s.name, ": expected >= 0, found ", s.stride);
  }
  if (!span_elements(s, batch)) {
    return invalid_argument("GEMM operand ", s.name, " [", s.rows, ", ", s.cols, "] with ld ", s.ld,
                            ", batch ", batch, " and stride ", s.stride, " spans more than ",
                            kMaxElements, " elements");
  }
  return ok_status();
}

// Checks what create() can without a GPU. An empty D (m or n = 0) is a valid no-op plan; k = 0
// (D = beta·C + bias, activated) is not something cuBLASLt is asked to do, so it is unsupported.
Status validate(const GemmDesc& d) {
  if (!is_gemm_dtype(d.dtype)) {
    return unsupported("GEMM on ", dtype_name(d.dtype),
                       ": cuBLASLt plans take float32, float16 or bfloat16");
  }
  if (d.m < 0 || d.n < 0 || d.k < 0) {
    return invalid_argument("GEMM sizes: expected m, n, k >= 0, found m=", d.m, " n=", d.n,
                            " k=", d.k);
  }
  if (d.batch < 1 || d.batch > std::numeric_limits<int32_t>::max()) {
    return invalid_argument("GEMM batch: expected a count in [1, 2147483647], found ", d.batch);
  }
  if (d.epilogue != GemmEpilogue::kNone && d.epilogue != GemmEpilogue::kRelu &&
      d.epilogue != GemmEpilogue::kGeluTanh) {
    return invalid_argument("GEMM epilogue: expected none, relu or gelu_tanh, found value ",
                            static_cast<int>(d.epilogue));
  }
  if (d.m == 0 || d.n == 0) return ok_status();
  if (d.k == 0) {
    return unsupported("GEMM ", problem_text(d),
                       ": an empty inner dim (k = 0) is not planned on cuBLASLt");
  }
  KILN_RETURN_IF_ERROR(validate_matrix(stored_a(d), d.batch));
  KILN_RETURN_IF_ERROR(validate_matrix(stored_b(d), d.batch));
  if (d.has_c) {
    KILN_RETURN_IF_ERROR(validate_matrix(stored_c(d), d.batch));
  }
  KILN_RETURN_IF_ERROR(validate_matrix(stored_d(d), d.batch));
  if (d.batch > 1 && d.stride_d == 0) {
    return invalid_argument("GEMM stride_d: expected a nonzero stride for batch ", d.batch,
                            " (every entry would write the same D), found 0");
  }
  return ok_status();
}

struct Layouts {
  cublasLtMatrixLayoutOpaque_t a, b, c, d;  // kiln's operands; the swap happens in enqueue()
};

Status init_layout(cublasLtMatrixLayout_t layout, DType dtype, const StoredMatrix& s,
                   int64_t batch) {
  // The row-major [rows, cols] matrix is cuBLASLt's column-major [cols, rows].
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutInit(layout, lt_data_type(dtype),
                                             static_cast<uint64_t>(s.cols),
                                             static_cast<uint64_t>(s.rows), s.ld));
  const int32_t count = static_cast<int32_t>(batch);
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                     &count, sizeof(count)));
  const int64_t stride = s.stride;  // 0 reuses one matrix for every entry
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
      layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  return ok_status();
}

Status init_layouts(const GemmDesc& d, Layouts* layouts) {
  KILN_RETURN_IF_ERROR(init_layout(&layouts->a, d.dtype, stored_a(d), d.batch), "layout of A");
  KILN_RETURN_IF_ERROR(init_layout(&layouts->b, d.dtype, stored_b(d), d.batch), "layout of B");
  // Without C, cuBLASLt still gets a C: D itself, read with beta = 0.
  KILN_RETURN_IF_ERROR(
      init_layout(&layouts->c, d.dtype, d.has_c ? stored_c(d) : stored_d(d), d.batch),
      "layout of C");
  KILN_RETURN_IF_ERROR(init_layout(&layouts->d, d.dtype, stored_d(d), d.batch), "layout of D");
  return ok_status();
}

template <typename T>
Status set_operation_attribute(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attribute,
                               const T& value, const char* name) {
  const cublasStatus_t error = cublasLtMatmulDescSetAttribute(op, attribute, &value, sizeof(value));
  if (error != CUBLAS_STATUS_SUCCESS) {
    return cublas_status(error, str_cat("cublasLtMatmulDescSetAttribute(", name, ")"));
  }
  return ok_status();
}

// The operation descriptor, in caller-provided storage (no allocation, so run() can build one per
// call and stay capturable). It carries the bias pointer: cuBLASLt's heuristics read only that
// pointer's alignment, so they get a stand-in address of the alignment being planned for.
Status init_operation(cublasLtMatmulDesc_t op, const GemmDesc& d, const void* bias) {
  const cublasComputeType_t compute = d.dtype == DType::kFloat32 && d.allow_tf32
                                          ? CUBLAS_COMPUTE_32F_FAST_TF32
                                          : CUBLAS_COMPUTE_32F;
  KILN_CUBLAS_CHECK(cublasLtMatmulDescInit(op, compute, CUDA_R_32F));
  // cuBLASLt's A is kiln's B and its B is kiln's A (see the top of the file).
  const int32_t trans_lt_a = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int32_t trans_lt_b = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_RETURN_IF_ERROR(
      set_operation_attribute(op, CUBLASLT_MATMUL_DESC_TRANSA, trans_lt_a, "TRANSA"));
  KILN_RETURN_IF_ERROR(
      set_operation_attribute(op, CUBLASLT_MATMUL_DESC_TRANSB, trans_lt_b, "TRANSB"));
  const uint32_t epilogue = lt_epilogue(d);
  KILN_RETURN_IF_ERROR(
      set_operation_attribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue, "EPILOGUE"));
  if (d.has_bias) {
    KILN_RETURN_IF_ERROR(
        set_operation_attribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias, "BIAS_POINTER"));
    const int32_t bias_type = lt_data_type(d.dtype);
    KILN_RETURN_IF_ERROR(set_operation_attribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type,
                                                 "BIAS_DATA_TYPE"));
  }
  return ok_status();
}

const void* stand_in_pointer(uint32_t alignment) {
  return reinterpret_cast<const void*>(static_cast<uintptr_t>(alignment));
}

// cuBLASLt's candidates for pointers aligned to `alignment` bytes, fastest first by its estimate;
// empty when it has none.
Result<std::vector<cublasLtMatmulHeuristicResult_t>> find_algorithms(
    cublasLtHandle_t handle, const GemmDesc& d, Layouts& layouts, size_t workspace_limit,
    uint32_t alignment, int count) {
  cublasLtMatmulDescOpaque_t op;
  KILN_RETURN_IF_ERROR(init_operation(&op, d, stand_in_pointer(alignment)));
  cublasLtMatmulPreferenceOpaque_t preference;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceInit(&preference));
  const uint64_t max_workspace = workspace_limit;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&preference,
                                                         CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                         &max_workspace, sizeof(max_workspace)));
  for (cublasLtMatmulPreferenceAttributes_t attribute :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(&preference, attribute, &alignment,
                                                           sizeof(alignment)));
  }
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int returned = 0;
  const cublasStatus_t error =
      cublasLtMatmulAlgoGetHeuristic(handle, &op, &layouts.b, &layouts.a, &layouts.c, &layouts.d,
                                     &preference, count, results.data(), &returned);
  if (error == CUBLAS_STATUS_NOT_SUPPORTED) return std::vector<cublasLtMatmulHeuristicResult_t>{};
  if (error != CUBLAS_STATUS_SUCCESS) return cublas_status(error, "cublasLtMatmulAlgoGetHeuristic");
  results.resize(static_cast<size_t>(std::clamp(returned, 0, count)));
  std::erase_if(results, [&](const cublasLtMatmulHeuristicResult_t& r) {
    return r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > workspace_limit;
  });
  return results;
}

struct Operands {
  const void* a;
  const void* b;
  const void* c;  // D itself when the desc has no C
  void* d;
};

cublasStatus_t enqueue(cublasLtHandle_t handle, cublasLtMatmulDesc_t op, const GemmDesc& d,
                       Layouts& layouts, const cublasLtMatmulAlgo_t& algo, const Operands& x,
                       void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const float beta = d.has_c ? d.beta : 0.0f;  // host scalars: read when the call is enqueued
  return cublasLtMatmul(handle, op, &d.alpha, x.b, &layouts.b, x.a, &layouts.a, &beta, x.c,
                        &layouts.c, x.d, &layouts.d, &algo, workspace, workspace_bytes, stream);
}

// Device buffers for timing, freed in stream order when timing ends, however it ends.
class Scratch {
 public:
  explicit Scratch(cudaStream_t stream) : stream_(stream) {}
  ~Scratch() {
    for (void* buffer : buffers_) cudaFreeAsync(buffer, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  Result<void*> alloc(size_t bytes) {
    void* buffer = nullptr;
    KILN_CUDA_CHECK(cudaMallocAsync(&buffer, std::max<size_t>(bytes, 1), stream_));
    buffers_.push_back(buffer);
    KILN_CUDA_CHECK(cudaMemsetAsync(buffer, kScratchFill, bytes, stream_));
    return buffer;
  }

 private:
  cudaStream_t stream_;
  std::vector<void*> buffers_;
};

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~EventPair() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

Result<void*> alloc_operand(Scratch& scratch, const StoredMatrix& s, const GemmDesc& d) {
  return scratch.alloc(static_cast<size_t>(*span_elements(s, d.batch)) * dtype_size(d.dtype));
}

// Runs each candidate once to warm up, then `iterations` times between two events, on scratch
// operands; returns the index of the fastest. Candidates cuBLASLt refuses to run are skipped.
Result<size_t> time_candidates(cublasLtHandle_t handle, const GemmDesc& d, Layouts& layouts,
                               const std::vector<cublasLtMatmulHeuristicResult_t>& candidates,
                               int iterations, cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KILN_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) {
    return failed_precondition(
        "cannot time GEMM algorithms on a stream that is capturing a CUDA graph; plan before "
        "capturing or pass timing_iterations = 0");
  }
  Scratch scratch(stream);
  Operands x{};
  KILN_ASSIGN_OR_RETURN(x.a, alloc_operand(scratch, stored_a(d), d));
  KILN_ASSIGN_OR_RETURN(x.b, alloc_operand(scratch, stored_b(d), d));
  KILN_ASSIGN_OR_RETURN(x.d, alloc_operand(scratch, stored_d(d), d));
  x.c = x.d;
  if (d.has_c) {
    KILN_ASSIGN_OR_RETURN(x.c, alloc_operand(scratch, stored_c(d), d));
  }
  void* bias = nullptr;
  if (d.has_bias) {
    KILN_ASSIGN_OR_RETURN(bias, scratch.alloc(d.n * dtype_size(d.dtype)));
  }
  size_t workspace_bytes = 0;
  for (const auto& c : candidates) workspace_bytes = std::max(workspace_bytes, c.workspaceSize);
  void* workspace = nullptr;
  if (workspace_bytes > 0) {
    KILN_ASSIGN_OR_RETURN(workspace, scratch.alloc(workspace_bytes));
  }
  cublasLtMatmulDescOpaque_t op;
  KILN_RETURN_IF_ERROR(init_operation(&op, d, bias));
  EventPair events;
  KILN_CUDA_CHECK(cudaEventCreate(&events.start));
  KILN_CUDA_CHECK(cudaEventCreate(&events.stop));

  size_t best = candidates.size();
  float best_ms = 0.0f;
  Status last_failure;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const cublasLtMatmulAlgo_t& algo = candidates[i].algo;
    cublasStatus_t error =
        enqueue(handle, &op, d, layouts, algo, x, workspace, workspace_bytes, stream);
    if (error == CUBLAS_STATUS_SUCCESS) {
      KILN_CUDA_CHECK(cudaEventRecord(events.start, stream));
      for (int it = 0; it < iterations && error == CUBLAS_STATUS_SUCCESS; ++it) {
        error = enqueue(handle, &op, d, layouts, algo, x, workspace, workspace_bytes, stream);
      }
      KILN_CUDA_CHECK(cudaEventRecord(events.stop, stream));
      KILN_CUDA_CHECK(cudaEventSynchronize(events.stop));
    }
    if (error != CUBLAS_STATUS_SUCCESS) {
      cudaGetLastError();  // a refused launch must not surface in a later, unrelated check
      last_failure = cublas_status(error, "cublasLtMatmul");
      continue;
    }
    float ms = 0.0f;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
    if (best == candidates.size() || ms < best_ms) {
      best = i;
      best_ms = ms;
    }
  }
  if (best == candidates.size()) {
    return unsupported("none of cuBLASLt's ", candidates.size(),
                       " candidate algorithms ran; the last said: ", last_failure.message());
  }
  return best;
}

int32_t algo_id(const cublasLtMatmulAlgo_t& algo) {
  int32_t id = -1;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id),
                                           &written) != CUBLAS_STATUS_SUCCESS) {
    return -1;
  }
  return id;
}

bool aligned_to(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

Status check_args(const GemmDesc& d, const GemmArgs& args, size_t needed_workspace) {
  const size_t element = dtype_size(d.dtype);
  struct Named {
    const char* name;
    const void* pointer;
    bool required;
  };
  for (const Named& p :
       {Named{"A", args.a, true}, Named{"B", args.b, true}, Named{"C", args.c, d.has_c},
        Named{"bias", args.bias, d.has_bias}, Named{"D", args.d, true}}) {
    if (!p.required) continue;
    if (!p.pointer)
      return invalid_argument("GEMM run: expected a device pointer for ", p.name, ", found null");
    if (!aligned_to(p.pointer, element)) {
      return invalid_argument("GEMM run: ", p.name, " at ", p.pointer, " is not aligned to its ",
                              element, "-byte elements");
    }
  }
  if (args.workspace_bytes < needed_workspace) {
    return invalid_argument("GEMM run: expected a workspace of at least ", needed_workspace,
                            " bytes, found ", args.workspace_bytes);
  }
  if (needed_workspace > 0 && !args.workspace) {
    return invalid_argument("GEMM run: expected a workspace of ", needed_workspace,
                            " bytes, found a null pointer");
  }
  // cuBLASLt computes in place only when C and D share one layout.
  if (d.has_c && args.c == args.d && (d.ldc != d.ldd || d.stride_c != d.stride_d)) {
    return invalid_argument(
        "GEMM run: C is D (in place), so expected ldc = ldd and stride_c = "
        "stride_d, found ldc=",
        d.ldc, " ldd=", d.ldd, " stride_c=", d.stride_c, " stride_d=", d.stride_d);
  }
  return ok_status();
}

bool all_aligned(const GemmDesc& d, const GemmArgs& args, uint32_t alignment) {
  return aligned_to(args.a, alignment) && aligned_to(args.b, alignment) &&
         aligned_to(args.d, alignment) && (!d.has_c || aligned_to(args.c, alignment)) &&
         (!d.has_bias || aligned_to(args.bias, alignment));
}

}  // namespace

struct GemmPlan::Descriptors {
  Layouts layouts;
  cublasLtMatmulAlgo_t algo{};
  uint32_t algo_alignment = 0;  // bytes: every pointer `algo` was chosen for is this aligned
  bool has_fallback = false;
  cublasLtMatmulAlgo_t fallback{};  // for pointers aligned only to their element size
};

Result<std::shared_ptr<const GemmPlan>> GemmPlan::create(cublasLtHandle_t handle,
                                                         const GemmDesc& desc,
                                                         size_t workspace_limit,
                                                         int timing_iterations,
                                                         cudaStream_t stream,
                                                         int known_choice) {
  KILN_RETURN_IF_ERROR(validate(desc));
  if (timing_iterations < 0) {
    return invalid_argument("GEMM timing iterations: expected >= 0, found ", timing_iterations);
  }
  std::shared_ptr<GemmPlan> plan(new GemmPlan());
  plan->desc_ = desc;
  if (desc.m == 0 || desc.n == 0) {
    plan->algo_note_ = "(empty D: run() does nothing)";
    return std::shared_ptr<const GemmPlan>(std::move(plan));
  }
  if (!handle) return invalid_argument("GEMM plan: expected a cuBLASLt handle, found null");
  auto lt = std::make_unique<Descriptors>();
  KILN_RETURN_IF_ERROR(init_layouts(desc, &lt->layouts), "GEMM ", problem_text(desc));
  const uint32_t element = static_cast<uint32_t>(dtype_size(desc.dtype));
  KILN_ASSIGN_OR_RETURN(auto candidates,
                        find_algorithms(handle, desc, lt->layouts, workspace_limit,
                                        kAssumedAlignment, kMaxCandidates),
                        "GEMM ", problem_text(desc));
  // The fallback is a convenience: if cuBLASLt cannot answer for element-aligned pointers, the
  // plan still serves aligned ones, and run() says why it refuses the others.
  auto unaligned_or =
      find_algorithms(handle, desc, lt->layouts, workspace_limit, element, /*count=*/1);
  std::vector<cublasLtMatmulHeuristicResult_t> unaligned;
  if (unaligned_or.ok()) unaligned = std::move(unaligned_or).value();
  lt->algo_alignment = kAssumedAlignment;
  if (candidates.empty()) {
    candidates = unaligned;
    lt->algo_alignment = element;
  }
  if (candidates.empty()) {
    return unsupported("cuBLASLt has no algorithm for GEMM ", problem_text(desc),
                       " within a workspace of ", workspace_limit, " bytes");
  }
  size_t chosen = 0;
  std::string how = str_cat("(heuristic's first of ", candidates.size(), ")");
  if (known_choice >= 0 && static_cast<size_t>(known_choice) < candidates.size()) {
    chosen = static_cast<size_t>(known_choice);
    how = str_cat("(candidate ", chosen, " of ", candidates.size(), ", timed before)");
  } else if (timing_iterations > 0 && candidates.size() > 1) {
    KILN_ASSIGN_OR_RETURN(
        chosen, time_candidates(handle, desc, lt->layouts, candidates, timing_iterations, stream),
        "while timing GEMM ", problem_text(desc));
    how = str_cat("(timed ", candidates.size(), " candidates)");
  }
  plan->choice_ = static_cast<int>(chosen);
  lt->algo = candidates[chosen].algo;
  plan->workspace_bytes_ = candidates[chosen].workspaceSize;
  plan->algo_note_ = str_cat("algo ", algo_id(lt->algo), " ", how);
  if (lt->algo_alignment > element && !unaligned.empty()) {
    lt->has_fallback = true;
    lt->fallback = unaligned[0].algo;
    plan->workspace_bytes_ = std::max(plan->workspace_bytes_, unaligned[0].workspaceSize);
    plan->algo_note_ += str_cat(", algo ", algo_id(lt->fallback), " for unaligned pointers");
  }
  plan->lt_ = std::move(lt);
  return std::shared_ptr<const GemmPlan>(std::move(plan));
}

GemmPlan::~GemmPlan() = default;

Status GemmPlan::run(cublasLtHandle_t handle, const GemmArgs& args, cudaStream_t stream) const {
  if (!lt_) return ok_status();  // an empty D
  if (!handle) return invalid_argument("GEMM run: expected a cuBLASLt handle, found null");
  KILN_RETURN_IF_ERROR(check_args(desc_, args, workspace_bytes_), "GEMM ", problem_text(desc_));
  const cublasLtMatmulAlgo_t* algo = &lt_->algo;
  if (!all_aligned(desc_, args, lt_->algo_alignment)) {
    if (!lt_->has_fallback) {
      return unsupported("GEMM ", problem_text(desc_), ": an operand is not ", lt_->algo_alignment,
                         "-byte aligned and cuBLASLt offered no algorithm for less aligned ones");
    }
    algo = &lt_->fallback;
  }
  cublasLtMatmulDescOpaque_t op;
  KILN_RETURN_IF_ERROR(init_operation(&op, desc_, args.bias), "GEMM ", problem_text(desc_));
  const Operands x{args.a, args.b, desc_.has_c ? args.c : args.d, args.d};
  const cublasStatus_t error = enqueue(handle, &op, desc_, lt_->layouts, *algo, x, args.workspace,
                                       args.workspace ? args.workspace_bytes : 0, stream);
  if (error != CUBLAS_STATUS_SUCCESS) {
    Status status = cublas_status(error, "cublasLtMatmul");
    return std::move(status.with_context(str_cat("GEMM ", problem_text(desc_))));
  }
  return ok_status();
}

std::string GemmPlan::describe() const {
  return str_cat("gemm ", problem_text(desc_), " ws=", workspace_bytes_, " ", algo_note_);
}

std::string gemm_tactic_key(const GemmDesc& d, size_t workspace_limit) {
  return str_cat("gemm cublasLt ", cublasLtGetVersion(), " ", dtype_name(d.dtype), " m", d.m,
                 " n", d.n, " k", d.k, " b", d.batch, " t", int(d.trans_a), int(d.trans_b), " ld",
                 d.lda, ",", d.ldb, ",", d.ldc, ",", d.ldd, " s", d.stride_a, ",", d.stride_b, ",",
                 d.stride_c, ",", d.stride_d, " c", int(d.has_c), " bias", int(d.has_bias), " ep",
                 int(d.epilogue), " tf32 ", int(d.allow_tf32), " ws", workspace_limit);
}

Result<cublasLtHandle_t> cublaslt_handle() {
  struct Shared {
    cublasLtHandle_t handle = nullptr;
    Status status;
  };
  // Created once, thread-safely, and never destroyed: destroying it from a static destructor
  // could run after the CUDA runtime has shut down.
  static const Shared shared = [] {
    Shared s;
    const cublasStatus_t error = cublasLtCreate(&s.handle);
    if (error == CUBLAS_STATUS_SUCCESS) return s;
    s.handle = nullptr;
    // Without a usable GPU cuBLASLt says only NOT_INITIALIZED; the runtime says why.
    int devices = 0;
    if (const cudaError_t no_gpu = cudaGetDeviceCount(&devices); no_gpu != cudaSuccess) {
      cudaGetLastError();
      s.status = cuda_status(no_gpu, "cudaGetDeviceCount");
    } else {
      s.status = cublas_status(error, "cublasLtCreate");
    }
    s.status.with_context("while creating the cuBLASLt handle");
    return s;
  }();
  if (!shared.status.ok()) return shared.status;
  return shared.handle;
}

}  // namespace kiln::cuda
