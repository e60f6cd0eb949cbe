// The kernel library's pooling and gathers (kernel_library.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "cuda/cuda_check.h"
#include "cuda/kernel_library.h"
#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kPoolSource =
#include "cuda/kernels/pool.cuh.inc"
    ;
constexpr std::string_view kGatherSource =
#include "cuda/kernels/gather.cuh.inc"
    ;

}  // namespace

using namespace kernel_lib;

// --- pooling ----------------------------------------------------------------------------------

namespace {

// The host mirror of kiln_pool::Window (pool.cuh).
struct PoolWindow {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t divisor_override;
  int32_t count_include_pad;
  int32_t pad_ = 0;
};

Status check_pool_tensors(const Tensor& in, const Tensor& out, std::string_view what) {
  if (in.dim() != 4 || out.dim() != 4) {
    return invalid_argument(what, ": expected 4-D input and output [N, C, H, W], found ",
                            in.description(), " and ", out.description());
  }
  if (in.size(0) != out.size(0) || in.size(1) != out.size(1) || in.dtype() != out.dtype()) {
    return invalid_argument(what, ": expected output [", in.size(0), ", ", in.size(1),
                            ", Ho, Wo] in ", dtype_name(in.dtype()), " for input ",
                            in.description(), ", found ", out.description());
  }
  return ok_status();
}

// Channels-last inputs number outputs with C innermost, so neighbouring threads read neighbours.
int channels_last(const Tensor& in) {
  return in.size(1) > 1 && in.strides()[1] == 1 ? 1 : 0;
}

// max and avg pooling; `indices` (max only) may be null.
Status launch_pool2d_impl(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                          const Tensor* indices, const Pool2dParams& params, cudaStream_t stream);

}  // namespace

std::string pool2d_kernel(ModuleSource& module, PoolKind kind, DType dtype) {
  add_family(module, "pool.cuh", kPoolSource);
  const bool max = kind == PoolKind::kMax;
  const std::string name = str_cat(max ? "kiln_max_pool2d_" : "kiln_avg_pool2d_", dtype_tag(dtype));
  return add_entry(module, name, 256,
                   "KTensor in, KTensor out, kiln_pool::Window win, i64 total, int channels_last",
                   str_cat("kiln_pool::pool<", max ? 0 : 1, ", ", device_type_name(dtype),
                           ">(in, out, win, total, channels_last);"));
}

std::string max_pool2d_indices_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "pool.cuh", kPoolSource);
  return add_entry(module, str_cat("kiln_max_pool2d_indices_", dtype_tag(dtype)), 256,
                   "KTensor in, KTensor out, kiln_pool::Window win, i64 total, int channels_last, "
                   "KTensor indices",
                   str_cat("kiln_pool::pool<0, ", device_type_name(dtype),
                           ">(in, out, win, total, channels_last, indices);"));
}

Status launch_max_pool2d_indices(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                 const Tensor& indices, const Pool2dParams& params,
                                 cudaStream_t stream) {
  if (indices.dtype() != DType::kInt64 || indices.sizes() != out.sizes()) {
    return invalid_argument("max_pool2d_with_indices: expected int64 indices of the output's ",
                            "sizes ", shape_to_string(out.sizes()), ", found ",
                            indices.description());
  }
  return launch_pool2d_impl(kernel, in, out, &indices, params, stream);
}

Status launch_pool2d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                     const Pool2dParams& params, cudaStream_t stream) {
  return launch_pool2d_impl(kernel, in, out, nullptr, params, stream);
}

namespace {

Status launch_pool2d_impl(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                          const Tensor* indices, const Pool2dParams& params,
                          cudaStream_t stream) {
  constexpr std::string_view kWhat = "pool2d";
  KILN_RETURN_IF_ERROR(check_pool_tensors(in, out, kWhat));
  for (int i = 0; i < 2; ++i) {
    if (params.kernel[i] < 1 || params.stride[i] < 1 || params.dilation[i] < 1 ||
        params.padding[i] < 0) {
      return invalid_argument(
          "pool2d: expected kernel, stride and dilation >= 1 and padding >= 0, "
          "found kernel ",
          params.kernel[i], ", stride ", params.stride[i], ", dilation ", params.dilation[i],
          ", padding ", params.padding[i]);
    }
    if (params.padding[i] * 2 > params.kernel[i]) {
      return invalid_argument(
          "pool2d: expected padding at most half the kernel size (PyTorch's "
          "rule), found padding ",
          params.padding[i], " for kernel ", params.kernel[i]);
    }
  }
  if (params.divisor_override < 0) {
    return invalid_argument("pool2d: expected divisor_override >= 0 (0: none), found ",
                            params.divisor_override);
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  KTensor kin = view(in.raw_data(), in.sizes(), in.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  PoolWindow win{params.kernel[0],        params.kernel[1],
                 params.stride[0],        params.stride[1],
                 params.padding[0],       params.padding[1],
                 params.dilation[0],      params.dilation[1],
                 params.divisor_override, params.count_include_pad ? 1 : 0};
  int64_t total = out.numel();
  int layout = channels_last(in);
  if (indices) {
    KILN_RETURN_IF_ERROR(check_data({indices}, kWhat));
    KTensor kindices = view(indices->raw_data(), indices->sizes(), indices->strides());
    void* args[] = {&kin, &kout, &win, &total, &layout, &kindices};
    return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
  }
  void* args[] = {&kin, &kout, &win, &total, &layout};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

}  // namespace

std::string adaptive_avg_pool2d_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "pool.cuh", kPoolSource);
  return add_entry(module, str_cat("kiln_adaptive_avg_pool2d_", dtype_tag(dtype)), 256,
                   "KTensor in, KTensor out, i64 total, int channels_last",
                   str_cat("kiln_pool::Window win = {};\n  kiln_pool::pool<2, ",
                           device_type_name(dtype), ">(in, out, win, total, channels_last);"));
}

Status launch_adaptive_avg_pool2d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                  cudaStream_t stream) {
  constexpr std::string_view kWhat = "adaptive_avg_pool2d";
  KILN_RETURN_IF_ERROR(check_pool_tensors(in, out, kWhat));
  if (out.numel() == 0) return ok_status();
  if (in.size(2) == 0 || in.size(3) == 0) {
    return invalid_argument("adaptive_avg_pool2d: expected a non-empty input plane, found ",
                            in.description());
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  KTensor kin = view(in.raw_data(), in.sizes(), in.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  int64_t total = out.numel();
  int layout = channels_last(in);
  void* args[] = {&kin, &kout, &total, &layout};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

// --- gathers ----------------------------------------------------------------------------------

namespace {

Status check_index_dtype(const Tensor& index, std::string_view what) {
  if (index.dtype() != DType::kInt64 && index.dtype() != DType::kInt32) {
    return invalid_argument(what, ": expected int64 or int32 indices, found ", index.description());
  }
  return ok_status();
}

}  // namespace

std::string embedding_kernel(ModuleSource& module, DType weight, DType index) {
  add_family(module, "gather.cuh", kGatherSource);
  return add_entry(
      module, str_cat("kiln_embedding_", dtype_tag(weight), "_", dtype_tag(index)), 256,
      "const char* weight, KTensor indices, char* out, i64 vocab, i64 row_bytes, i64 rows, "
      "int unit",
      str_cat("kiln_gather::embedding<", device_type_name(index),
              ">(weight, indices, out, vocab, row_bytes, rows, unit);"));
}

Status launch_embedding(cudaKernel_t kernel, const Tensor& weight, const Tensor& indices,
                        const Tensor& out, cudaStream_t stream) {
  constexpr std::string_view kWhat = "embedding";
  if (weight.dim() != 2) {
    return invalid_argument("embedding: expected a [V, D] weight, found ", weight.description());
  }
  KILN_RETURN_IF_ERROR(check_contiguous(weight, "the weight", kWhat));
  KILN_RETURN_IF_ERROR(check_index_dtype(indices, kWhat));
  KILN_RETURN_IF_ERROR(check_rank(indices, "embedding indices"));
  Shape expected = indices.sizes();
  expected.push_back(weight.size(1));
  if (out.sizes() != expected || out.dtype() != weight.dtype()) {
    return invalid_argument("embedding: expected output ", dtype_name(weight.dtype()),
                            shape_to_string(expected), ", found ", out.description());
  }
  KILN_RETURN_IF_ERROR(check_contiguous(out, "the output", kWhat));
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&weight, &indices, &out}, kWhat));
  const void* wp = weight.raw_data();
  void* yp = out.raw_data();
  int64_t row_bytes = weight.size(1) * static_cast<int64_t>(dtype_size(weight.dtype()));
  int unit = 16;
  while (unit > 1 && (row_bytes % unit != 0 || reinterpret_cast<uintptr_t>(wp) % unit != 0 ||
                      reinterpret_cast<uintptr_t>(yp) % unit != 0)) {
    unit /= 2;
  }
  const int64_t units = row_bytes / unit;
  const unsigned tx = static_cast<unsigned>(std::clamp<int64_t>(pow2_at_least(units), 32, 256));
  const unsigned ty = 256 / tx;
  KTensor kindices = view(indices.raw_data(), indices.sizes(), indices.strides());
  int64_t vocab = weight.size(0), rows = indices.numel();
  void* args[] = {&wp, &kindices, &yp, &vocab, &row_bytes, &rows, &unit};
  return launch_kernel(kernel, dim3(grid_for(rows, ty)), dim3(tx, ty), 0, stream, args);
}

std::string index_select_kernel(ModuleSource& module, DType dtype, DType index) {
  add_family(module, "gather.cuh", kGatherSource);
  const std::string_view i = device_type_name(index);
  return add_entry(module, str_cat("kiln_index_select_", dtype_tag(dtype), "_", dtype_tag(index)),
                   256,
                   str_cat("KTensor in, KTensor out, const ", i,
                           "* index, i64 index_stride, int dim, i64 total"),
                   str_cat("kiln_gather::index_select<", device_type_name(dtype), ", ", i,
                           ">(in, out, index, index_stride, dim, total);"));
}

Status launch_index_select(cudaKernel_t kernel, const Tensor& in, int64_t dim, const Tensor& index,
                           const Tensor& out, cudaStream_t stream) {
  constexpr std::string_view kWhat = "index_select";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  if (in.dim() == 0 || dim < 0 || dim >= in.dim()) {
    return invalid_argument("index_select: expected dim in [0, ", in.dim(), ") of input ",
                            in.description(), ", found ", dim);
  }
  KILN_RETURN_IF_ERROR(check_index_dtype(index, kWhat));
  if (index.dim() > 1) {
    return invalid_argument("index_select: expected a 1-D index, found ", index.description());
  }
  Shape expected = in.sizes();
  expected[dim] = index.numel();
  if (out.sizes() != expected || out.dtype() != in.dtype()) {
    return invalid_argument("index_select: expected output ", dtype_name(in.dtype()),
                            shape_to_string(expected), ", found ", out.description());
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &index, &out}, kWhat));
  KTensor kin = view(in.raw_data(), in.sizes(), in.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  void* ip = index.raw_data();
  int64_t index_stride = index.dim() == 1 ? index.strides()[0] : 0;
  int d = static_cast<int>(dim);
  int64_t total = out.numel();
  void* args[] = {&kin, &kout, &ip, &index_stride, &d, &total};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

}  // namespace kiln::cuda
