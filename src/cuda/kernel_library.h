// kiln's hand-written CUDA kernel families, compiled with NVRTC into each engine's kernel module:
// reductions, softmax, attention softmax, layer/RMS norm, pooling, gathers, advanced indexing,
// scans, copies, fills.
// (Chains of pointwise ops are generated per engine by the planner, not kept here.)
//
// Each family has two halves:
//   - `<family>_kernel(ModuleSource&, ...)` adds the family's device code (once) and an extern "C"
//     entry point for the given dtypes to the module, and returns that entry point's name; the
//     same arguments always give the same name and code (engines are deterministic).
//   - `launch_<family>(kernel, tensors..., stream)` computes the launch configuration from the
//     tensors' actual sizes and launches the entry point loaded from the engine's module.
// Tensors here are kiln Tensors whose storage is device memory (only pointers, sizes and strides
// are read on the host). Launch functions check what they rely on (ranks, matching sizes,
// contiguity where stated) and fail with invalid_argument naming what they found, never launching
// a kernel that would read out of bounds. Floating-point math is done in fp32 (statistics of
// softmax and norms too) whatever the storage type.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/tensor.h"
#include "kiln/status.h"

namespace kiln::cuda {

inline constexpr int kMaxKernelDims = 8;

// The host mirror of the device KTensor (kernels/prelude.cuh): passed to kernels by value.
struct KTensor {
  void* data = nullptr;  // element 0 of the view
  int64_t sizes[kMaxKernelDims] = {};
  int64_t strides[kMaxKernelDims] = {};
  int32_t rank = 0;
  int32_t pad_ = 0;
};
// Fails (unsupported) for rank > kMaxKernelDims.
Result<KTensor> make_ktensor(const Tensor& t);

// The source of one engine's kernel module: the prelude, then each piece once, in the order added.
class ModuleSource {
 public:
  // Adds `code` unless a piece with this key was added before. Returns whether it was added.
  bool add_once(const std::string& key, const std::string& code);
  bool contains(const std::string& key) const;
  std::string text() const;
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

 private:
  std::vector<std::string> keys_;
  std::vector<std::string> pieces_;
};

// The C type kernels use for a dtype: "float", "kiln_half", "kiln_bf16", "double", "i64", "int",
// "short", "signed char", "unsigned char", "bool". Also a short tag for names: "f32", "f16", ...
std::string_view device_type_name(DType dtype);
std::string_view dtype_tag(DType dtype);

// --- reductions -------------------------------------------------------------------------------
enum class ReduceOp : uint8_t { kSum, kMean, kMax, kMin, kProd, kAny, kAll };
// `out` is viewed with the input's rank (keepdim form): the reduced dims are those where out has
// size 1 and `in` does not. Sum/mean/prod accumulate in fp32 for floating types and in int64 for
// integer types; max/min propagate NaN like PyTorch; any/all read nonzero as true and write bool.
std::string reduce_kernel(ModuleSource& module, ReduceOp op, DType in, DType out);
Status launch_reduce(cudaKernel_t kernel, const Tensor& in, const Tensor& out_keepdim,
                     cudaStream_t stream);

// --- softmax ----------------------------------------------------------------------------------
// softmax / log_softmax of `in` along `dim` (in [0, rank)), any strides, written to `out` (same
// sizes, any strides). `in` and `out` may be the same tensor.
std::string softmax_kernel(ModuleSource& module, DType in, DType out, bool log);
Status launch_softmax(cudaKernel_t kernel, const Tensor& in, const Tensor& out, int64_t dim,
                      cudaStream_t stream);

// The softmax step of attention, in place on scores [B, H, Lq, Lk] (contiguous):
// p = softmax(scores * scale + mask) along the last dim, where mask (if any) broadcasts to the
// scores (any strides, stride 0 for broadcast dims) and is either bool (false -> -inf) or of the
// scores' dtype (added); `causal` masks key j > query i (top-left aligned, as PyTorch's
// is_causal, also when Lq != Lk). A row with every key masked
// gives zeros (not NaN).
std::string attention_softmax_kernel(ModuleSource& module, DType scores,
                                     std::optional<DType> mask);
Status launch_attention_softmax(cudaKernel_t kernel, const Tensor& scores, const Tensor* mask,
                                float scale, bool causal, cudaStream_t stream);

// --- normalization ----------------------------------------------------------------------------
// Layer norm (or RMS norm when `rms`) over the trailing dims holding `normalized_numel` elements:
// x and out contiguous with x's sizes; weight and bias (if any) contiguous with normalized_numel
// elements. Statistics in fp32: var = mean((x - mean)^2), out = (x - mean) * rsqrt(var + eps) *
// weight + bias (rms: x * rsqrt(mean(x^2) + eps) * weight).
std::string layer_norm_kernel(ModuleSource& module, DType dtype, bool has_weight, bool has_bias,
                              bool rms);
Status launch_layer_norm(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                         const Tensor* bias, const Tensor& out, int64_t normalized_numel,
                         double eps, cudaStream_t stream);
// native_layer_norm's form, which also writes each row's mean and rstd (contiguous, one per row,
// in `stats`: float32, or the input's dtype as on PyTorch's CPU); either may be null.
std::string layer_norm_stats_kernel(ModuleSource& module, DType dtype, DType stats,
                                    bool has_weight, bool has_bias);
Status launch_layer_norm_stats(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                               const Tensor* bias, const Tensor& out, const Tensor* mean,
                               const Tensor* rstd, int64_t normalized_numel, double eps,
                               cudaStream_t stream);

// --- pooling ----------------------------------------------------------------------------------
// 2-D pooling of in [N, C, H, W] into out [N, C, Ho, Wo], both any strides (NCHW or NHWC).
// Max: padding counts as -inf, NaN propagates. Avg: PyTorch's avg_pool2d rules for
// count_include_pad and divisor_override (0 = none), and ceil_mode windows that start in the
// padding are handled as PyTorch does (the caller computed Ho, Wo).
enum class PoolKind : uint8_t { kMax, kAvg };
struct Pool2dParams {
  int64_t kernel[2] = {1, 1};
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  bool count_include_pad = true;
  int64_t divisor_override = 0;
};
std::string pool2d_kernel(ModuleSource& module, PoolKind kind, DType dtype);
Status launch_pool2d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                     const Pool2dParams& params, cudaStream_t stream);
// max_pool2d_with_indices: max pooling that also writes int64 `indices` (out's sizes, any
// strides), each the argmax's h * W + w within its [H, W] input plane, as PyTorch does.
std::string max_pool2d_indices_kernel(ModuleSource& module, DType dtype);
Status launch_max_pool2d_indices(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                 const Tensor& indices, const Pool2dParams& params,
                                 cudaStream_t stream);
// adaptive_avg_pool2d: PyTorch's start = floor(i*H/Ho), end = ceil((i+1)*H/Ho) windows.
std::string adaptive_avg_pool2d_kernel(ModuleSource& module, DType dtype);
Status launch_adaptive_avg_pool2d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                  cudaStream_t stream);

// --- gathers ----------------------------------------------------------------------------------
// out[..., :] = weight[indices[...], :]; weight [V, D] contiguous, indices int64 or int32 of any
// shape and strides, out [*indices.sizes, D] contiguous. An index outside [0, V) writes zeros
// (and the kernel sets no error: PyTorch would assert on the device).
std::string embedding_kernel(ModuleSource& module, DType weight, DType index);
Status launch_embedding(cudaKernel_t kernel, const Tensor& weight, const Tensor& indices,
                        const Tensor& out, cudaStream_t stream);
// out = in.index_select(dim, index): index 1-D int64/int32; in and out any strides; negative
// indices wrap once as in PyTorch; out of range writes zeros.
std::string index_select_kernel(ModuleSource& module, DType dtype, DType index);
Status launch_index_select(cudaKernel_t kernel, const Tensor& in, int64_t dim,
                           const Tensor& index, const Tensor& out, cudaStream_t stream);

// --- advanced indexing and scans (kernel_library_index.cc) ------------------------------------
// out = in[indices] (aten.index.Tensor): one entry per leading dim of `in`, null for None (the
// whole dim); the others int64 or int32 tensors of any strides (int32 and int64 may mix) that
// broadcast together into the index block. As in PyTorch, the block's dims replace the indexed
// dims where those are adjacent, and come first otherwise. Negative indices wrap once; an index
// still outside its dim writes zeros, with no fault and no error (PyTorch asserts on the
// device), as the gathers do. in and out any strides; out has the result's sizes and in's dtype.
// Bool and uint8 (mask) indices are refused: the result's shape would depend on their values.
std::string index_tensor_kernel(ModuleSource& module, DType dtype);
Status launch_index_tensor(cudaKernel_t kernel, const Tensor& in,
                           const std::vector<const Tensor*>& indices, const Tensor& out,
                           cudaStream_t stream);
// out = cumsum(in, dim) (inclusive), in and out of the same sizes and any strides, dim in
// [0, rank) (0 for a 0-d input). Each element is first converted to out's dtype (PyTorch scans
// self.to(dtype); integer and bool inputs give int64 unless a dtype says otherwise), then added
// in fp32 for floating outputs and in int64 for integer ones; each output is rounded from the
// sum once. (PyTorch's CUDA kernel adds in the storage dtype, rounding every partial sum in fp16
// and bf16; its CPU kernel, like kiln's CPU reference, rounds once.)
std::string cumsum_kernel(ModuleSource& module, DType in, DType out);
Status launch_cumsum(cudaKernel_t kernel, const Tensor& in, const Tensor& out, int64_t dim,
                     cudaStream_t stream);

// --- data movement ----------------------------------------------------------------------------
// dst = src converted to dst's dtype; same sizes, any strides (stride 0 in src broadcasts). Same
// dtype and both contiguous: one cudaMemcpyAsync (the kernel may then be null).
std::string copy_kernel(ModuleSource& module, DType src, DType dst);
Status launch_copy(cudaKernel_t kernel, const Tensor& src, const Tensor& dst,
                   cudaStream_t stream);
// dst = (src ? 0 : -inf) for a bool src: an attention mask as an additive bias in dst's dtype.
// Launched with launch_copy (same arguments and rules).
std::string mask_bias_kernel(ModuleSource& module, DType bias);
// out[...] = value (converted to out's dtype); any strides.
std::string fill_kernel(ModuleSource& module, DType dtype);
Status launch_fill(cudaKernel_t kernel, const Tensor& out, double value, cudaStream_t stream);
// out[i] = start + i * step for a 1-D out (any stride), computed in double then converted.
std::string arange_kernel(ModuleSource& module, DType dtype);
Status launch_arange(cudaKernel_t kernel, const Tensor& out, double start, double step,
                     cudaStream_t stream);

}  // namespace kiln::cuda
