// The kernel library's row kernels: softmax, log_softmax, attention softmax, layer and RMS norm
// (kernel_library.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "cuda/cuda_check.h"
#include "cuda/kernel_library.h"
#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kSoftmaxSource =
#include "cuda/kernels/softmax.cuh.inc"
    ;
constexpr std::string_view kNormSource =
#include "cuda/kernels/norm.cuh.inc"
    ;

}  // namespace

using namespace kernel_lib;

// --- softmax ----------------------------------------------------------------------------------

std::string softmax_kernel(ModuleSource& module, DType in, DType out, bool log) {
  add_family(module, "softmax.cuh", kSoftmaxSource);
  const std::string name =
      str_cat("kiln_softmax_", dtype_tag(in), "_", dtype_tag(out), log ? "_log" : "");
  return add_entry(
      module, name, kBlockRowThreads,
      "KTensor in, KTensor out, i64 rows, i64 n, i64 xs, i64 ys, int mode",
      str_cat("kiln_softmax::softmax<", device_type_name(in), ", ", device_type_name(out), ", ",
              log ? "true" : "false", ">(in, out, rows, n, xs, ys, mode);"));
}

Status launch_softmax(cudaKernel_t kernel, const Tensor& in, const Tensor& out, int64_t dim,
                      cudaStream_t stream) {
  constexpr std::string_view kWhat = "softmax";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  KILN_RETURN_IF_ERROR(check_same_sizes(in, "input", out, "output", kWhat));
  const int64_t rank = in.dim();
  if (dim < 0 || dim >= std::max<int64_t>(rank, 1)) {
    return invalid_argument("softmax: expected dim in [0, ", std::max<int64_t>(rank, 1),
                            ") for input ", in.description(), ", found ", dim);
  }
  if (in.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));

  Shape row_sizes, row_in, row_out;
  for (int64_t d = 0; d < rank; ++d) {
    if (d == dim) continue;
    row_sizes.push_back(in.size(d));
    row_in.push_back(in.strides()[d]);
    row_out.push_back(out.strides()[d]);
  }
  const Walk rows_walk = coalesce(row_sizes, {row_in, row_out});
  int64_t rows = numel_of(rows_walk.sizes);
  int64_t n = rank == 0 ? 1 : in.size(dim);
  int64_t xs = rank == 0 ? 1 : in.strides()[dim], ys = rank == 0 ? 1 : out.strides()[dim];
  if (n == 1) xs = ys = 1;
  KTensor kin = view(in.raw_data(), rows_walk.sizes, rows_walk.strides[0]);
  KTensor kout = view(out.raw_data(), rows_walk.sizes, rows_walk.strides[1]);

  const int64_t rows_inner = rows_walk.sizes.empty() ? 0 : std::llabs(rows_walk.strides[0].back());
  const bool contiguous = xs == 1 && ys == 1;
  // A thread per row for very short rows, or for strided rows whose neighbours are adjacent.
  const bool column =
      rows > 1 && (n <= 8 || (!contiguous && rows_inner < std::llabs(xs) && rows >= 128));
  RowLaunch launch = row_launch(rows, n);
  if (column) launch = RowLaunch{kColumn, dim3(grid_for(rows, 256)), dim3(256)};
  void* args[] = {&kin, &kout, &rows, &n, &xs, &ys, &launch.mode};
  return launch_kernel(kernel, launch.grid, launch.block, 0, stream, args);
}

std::string attention_softmax_kernel(ModuleSource& module, DType scores,
                                     std::optional<DType> mask) {
  add_family(module, "softmax.cuh", kSoftmaxSource);
  const std::string name = str_cat("kiln_attention_softmax_", dtype_tag(scores),
                                   mask ? str_cat("_mask_", dtype_tag(*mask)) : std::string());
  const std::string_view mask_type = mask ? device_type_name(*mask) : "float";
  return add_entry(
      module, name, kBlockRowThreads,
      "char* scores, i64 rows, i64 heads, i64 lq, i64 lk, KTensor mask, float scale, int causal, "
      "int mode",
      str_cat("kiln_softmax::attention_softmax<", device_type_name(scores), ", ", mask_type, ", ",
              mask ? "true" : "false",
              ">(scores, rows, heads, lq, lk, mask, scale, causal, mode);"));
}

Status launch_attention_softmax(cudaKernel_t kernel, const Tensor& scores, const Tensor* mask,
                                float scale, bool causal, cudaStream_t stream) {
  constexpr std::string_view kWhat = "attention softmax";
  if (scores.dim() != 4) {
    return invalid_argument("attention softmax: expected scores [B, H, Lq, Lk], found ",
                            scores.description());
  }
  KILN_RETURN_IF_ERROR(check_contiguous(scores, "scores", kWhat));
  KTensor kmask;
  if (mask) {
    if (mask->dim() > 4) {
      return invalid_argument("attention softmax: expected a mask of rank <= 4, found ",
                              mask->description());
    }
    if (mask->dtype() != DType::kBool && !is_floating(mask->dtype())) {
      return invalid_argument("attention softmax: expected a bool or floating mask, found ",
                              mask->description());
    }
    // Right-aligned broadcast to the scores' four dims.
    kmask.data = mask->raw_data();
    kmask.rank = 4;
    const int64_t lead = 4 - mask->dim();
    for (int64_t d = 0; d < 4; ++d) {
      kmask.sizes[d] = scores.size(d);
      if (d < lead) continue;
      const int64_t size = mask->size(d - lead);
      if (size == scores.size(d)) {
        kmask.strides[d] = size == 1 ? 0 : mask->strides()[d - lead];
      } else if (size != 1) {
        return invalid_argument("attention softmax: mask ", mask->description(),
                                " does not broadcast to scores ", scores.description());
      }
    }
  }
  int64_t heads = scores.size(1), lq = scores.size(2), lk = scores.size(3);
  int64_t rows = scores.size(0) * heads * lq;
  if (scores.numel() == 0) return ok_status();
  if (mask) {
    KILN_RETURN_IF_ERROR(check_launchable(kernel, {&scores, mask}, kWhat));
  } else {
    KILN_RETURN_IF_ERROR(check_launchable(kernel, {&scores}, kWhat));
  }
  RowLaunch launch = row_launch(rows, lk);
  void* data = scores.raw_data();
  int causal_flag = causal ? 1 : 0;
  void* args[] = {&data, &rows, &heads, &lq, &lk, &kmask, &scale, &causal_flag, &launch.mode};
  return launch_kernel(kernel, launch.grid, launch.block, 0, stream, args);
}

// --- normalization ----------------------------------------------------------------------------

namespace {
Status launch_layer_norm_impl(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                              const Tensor* bias, const Tensor& out, const Tensor* mean,
                              const Tensor* rstd, int64_t normalized_numel, double eps,
                              cudaStream_t stream);
}  // namespace

std::string layer_norm_kernel(ModuleSource& module, DType dtype, bool has_weight, bool has_bias,
                              bool rms) {
  add_family(module, "norm.cuh", kNormSource);
  const std::string name = str_cat(rms ? "kiln_rms_norm_" : "kiln_layer_norm_", dtype_tag(dtype),
                                   has_weight ? "_w" : "", has_bias ? "_b" : "");
  const std::string_view t = device_type_name(dtype);
  return add_entry(module, name, kBlockRowThreads,
                   str_cat("const ", t, "* x, const ", t, "* w, const ", t, "* b, ", t,
                           "* y, i64 rows, i64 n, float eps, int mode"),
                   str_cat("kiln_norm::norm<", t, ", ", has_weight ? "true" : "false", ", ",
                           has_bias ? "true" : "false", ", ", rms ? "true" : "false",
                           ">(x, w, b, y, rows, n, eps, mode);"));
}

std::string layer_norm_stats_kernel(ModuleSource& module, DType dtype, DType stats,
                                    bool has_weight, bool has_bias) {
  add_family(module, "norm.cuh", kNormSource);
  const std::string name = str_cat("kiln_layer_norm_stats_", dtype_tag(dtype), "_",
                                   dtype_tag(stats), has_weight ? "_w" : "", has_bias ? "_b" : "");
  const std::string_view t = device_type_name(dtype);
  const std::string_view s = device_type_name(stats);
  return add_entry(module, name, kBlockRowThreads,
                   str_cat("const ", t, "* x, const ", t, "* w, const ", t, "* b, ", t,
                           "* y, i64 rows, i64 n, float eps, int mode, ", s, "* mean, ", s,
                           "* rstd"),
                   str_cat("kiln_norm::norm<", t, ", ", has_weight ? "true" : "false", ", ",
                           has_bias ? "true" : "false", ", false, ", s,
                           ">(x, w, b, y, rows, n, eps, mode, mean, rstd);"));
}

Status launch_layer_norm_stats(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                               const Tensor* bias, const Tensor& out, const Tensor* mean,
                               const Tensor* rstd, int64_t normalized_numel, double eps,
                               cudaStream_t stream) {
  constexpr std::string_view kWhat = "layer norm";
  const int64_t rows = normalized_numel > 0 ? x.numel() / normalized_numel : 0;
  for (const auto& [t, name] : {std::pair{mean, "mean"}, std::pair{rstd, "rstd"}}) {
    if (!t) continue;
    if (t->numel() != rows || (t->dtype() != DType::kFloat32 && t->dtype() != x.dtype())) {
      return invalid_argument("layer norm: expected ", name, " of ", rows,
                              " float32 or ", dtype_name(x.dtype()), " elements, found ",
                              t->description());
    }
    KILN_RETURN_IF_ERROR(check_contiguous(*t, name, kWhat));
  }
  return launch_layer_norm_impl(kernel, x, weight, bias, out, mean, rstd, normalized_numel, eps,
                                stream);
}

Status launch_layer_norm(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                         const Tensor* bias, const Tensor& out, int64_t normalized_numel,
                         double eps, cudaStream_t stream) {
  return launch_layer_norm_impl(kernel, x, weight, bias, out, nullptr, nullptr, normalized_numel,
                                eps, stream);
}

namespace {

Status launch_layer_norm_impl(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                              const Tensor* bias, const Tensor& out, const Tensor* mean,
                              const Tensor* rstd, int64_t normalized_numel, double eps,
                              cudaStream_t stream) {
  constexpr std::string_view kWhat = "layer norm";
  KILN_RETURN_IF_ERROR(check_same_sizes(x, "input", out, "output", kWhat));
  KILN_RETURN_IF_ERROR(check_contiguous(x, "the input", kWhat));
  KILN_RETURN_IF_ERROR(check_contiguous(out, "the output", kWhat));
  if (out.dtype() != x.dtype()) {
    return invalid_argument("layer norm: expected output ", out.description(), " in ",
                            dtype_name(x.dtype()), " like the input");
  }
  // normalized_numel must be the product of a run of trailing dims.
  int64_t trailing = 1;
  for (int64_t d = x.dim(); d-- > 0 && trailing < normalized_numel;) trailing *= x.size(d);
  if (normalized_numel <= 0 || trailing != normalized_numel) {
    return invalid_argument(
        "layer norm: expected normalized_numel to be the element count of "
        "trailing dims of ",
        x.description(), ", found ", normalized_numel);
  }
  for (const auto& [t, name] : {std::pair{weight, "weight"}, std::pair{bias, "bias"}}) {
    if (!t) continue;
    if (t->numel() != normalized_numel || t->dtype() != x.dtype()) {
      return invalid_argument("layer norm: expected ", name, " of ", normalized_numel, " ",
                              dtype_name(x.dtype()), " elements, found ", t->description());
    }
    KILN_RETURN_IF_ERROR(check_contiguous(*t, name, kWhat));
  }
  if (x.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&x, &out}, kWhat));
  for (const Tensor* t : {weight, bias}) {
    if (t) {
      KILN_RETURN_IF_ERROR(check_data({t}, kWhat));
    }
  }
  int64_t n = normalized_numel, rows = x.numel() / n;
  RowLaunch launch = row_launch(rows, n);
  void* xp = x.raw_data();
  void* wp = weight ? weight->raw_data() : nullptr;
  void* bp = bias ? bias->raw_data() : nullptr;
  void* yp = out.raw_data();
  float eps_f = static_cast<float>(eps);
  if (mean || rstd) {
    void* mp = mean ? mean->raw_data() : nullptr;
    void* rp = rstd ? rstd->raw_data() : nullptr;
    void* args[] = {&xp, &wp, &bp, &yp, &rows, &n, &eps_f, &launch.mode, &mp, &rp};
    return launch_kernel(kernel, launch.grid, launch.block, 0, stream, args);
  }
  void* args[] = {&xp, &wp, &bp, &yp, &rows, &n, &eps_f, &launch.mode};
  return launch_kernel(kernel, launch.grid, launch.block, 0, stream, args);
}

}  // namespace

}  // namespace kiln::cuda
