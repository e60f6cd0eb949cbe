// The extra pooling family's host half (kernel_library_pooling_extra.h).
#include "cuda/kernel_library_pooling_extra.h"

#include <string_view>

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

using namespace kernel_lib;

constexpr std::string_view kSource =
#include "cuda/kernels/pooling_extra.cuh.inc"
    ;
constexpr std::string_view kFile = "pooling_extra.cuh";
constexpr int kThreads = 256;

// The host mirror of kiln_pool3::Window (pooling_extra.cuh).
struct DeviceWindow {
  int64_t k[3], s[3], p[3], d[3];
  int64_t divisor_override;
  int32_t count_include_pad;
  int32_t pad_ = 0;
};

DeviceWindow device_window(const Pool3dParams& params) {
  DeviceWindow w{};
  for (int i = 0; i < 3; ++i) {
    w.k[i] = params.kernel[i];
    w.s[i] = params.stride[i];
    w.p[i] = params.padding[i];
    w.d[i] = params.dilation[i];
  }
  w.divisor_override = params.divisor_override;
  w.count_include_pad = params.count_include_pad ? 1 : 0;
  return w;
}

bool is_floating_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// `a` is [N, C, D, H, W] in a floating dtype; `b` has its dtype and its N and C.
Status check_pair(const Tensor& a, std::string_view a_name, const Tensor& b,
                  std::string_view b_name, std::string_view what) {
  if (a.dim() != 5 || b.dim() != 5) {
    return invalid_argument(what, ": expected 5-D ", a_name, " and ", b_name,
                            " [N, C, D, H, W], found ", a.description(), " and ",
                            b.description());
  }
  if (!is_floating_dtype(a.dtype())) {
    return invalid_argument(what, ": expected a float32, float16 or bfloat16 ", a_name,
                            ", found ", a.description());
  }
  if (a.size(0) != b.size(0) || a.size(1) != b.size(1) || a.dtype() != b.dtype()) {
    return invalid_argument(what, ": expected ", b_name, " [", a.size(0), ", ", a.size(1),
                            ", ...] in ", dtype_name(a.dtype()), " for ", a_name, " ",
                            a.description(), ", found ", b.description());
  }
  return ok_status();
}

Status check_indices(const Tensor& indices, const Tensor& like, std::string_view what) {
  if (indices.dtype() != DType::kInt64 || indices.sizes() != like.sizes()) {
    return invalid_argument(what, ": expected int64 indices of sizes ",
                            shape_to_string(like.sizes()), ", found ", indices.description());
  }
  return ok_status();
}

// PyTorch's pooling_output_shape for one dim.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  const int64_t num = span + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// The window arguments are PyTorch's legal ones, and `pooled`'s spatial sizes are what they give
// `in` with or without ceil_mode.
Status check_window(const Tensor& in, const Tensor& pooled, const Pool3dParams& params,
                    std::string_view what) {
  for (int i = 0; i < 3; ++i) {
    const int64_t k = params.kernel[i], s = params.stride[i], p = params.padding[i],
                  d = params.dilation[i];
    if (k < 1 || s < 1 || d < 1 || p < 0 || 2 * p > k) {
      return invalid_argument(what,
                              ": expected kernel, stride and dilation >= 1 and padding in [0, "
                              "kernel / 2], found kernel ",
                              k, ", stride ", s, ", dilation ", d, ", padding ", p, " (dim ",
                              i, " of depth, height, width)");
    }
    const int64_t size = in.size(2 + i), out = pooled.size(2 + i);
    const int64_t floor_size = pooled_size(size, k, s, p, d, false);
    const int64_t ceil_size = pooled_size(size, k, s, p, d, true);
    if (out != floor_size && out != ceil_size) {
      return invalid_argument(what, ": expected pooled size ", floor_size,
                              floor_size == ceil_size ? "" : str_cat(" or ", ceil_size),
                              " for input size ", size, " (dim ", 2 + i, "), found ",
                              pooled.description());
    }
  }
  if (params.divisor_override < 0) {
    return invalid_argument(what, ": expected divisor_override >= 0 (0: none), found ",
                            params.divisor_override);
  }
  return ok_status();
}

// Channels-last tensors number their elements with C innermost.
int channels_last(const Tensor& t) {
  return t.size(1) > 1 && t.strides()[1] == 1 ? 1 : 0;
}

KTensor kview(const Tensor& t) {
  return view(t.raw_data(), t.sizes(), t.strides());
}

Status launch_elements(cudaKernel_t kernel, int64_t total, void** args, cudaStream_t stream) {
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

}  // namespace

std::optional<Tensor> pool_view_5d(const Tensor& t, int spatial) {
  const int64_t rank = t.dim();
  if ((spatial != 2 && spatial != 3) || (rank != spatial + 1 && rank != spatial + 2)) {
    return std::nullopt;
  }
  Shape sizes = t.sizes(), strides = t.strides();
  if (rank == spatial + 1) {
    sizes.insert(sizes.begin(), 1);
    strides.insert(strides.begin(), 1);
  }
  if (spatial == 2) {
    sizes.insert(sizes.begin() + 2, 1);
    strides.insert(strides.begin() + 2, 1);
  }
  return t.view_as(std::move(sizes), std::move(strides), t.offset());
}

std::string pool3d_kernel(ModuleSource& module, PoolKind kind, DType dtype) {
  add_family(module, kFile, kSource);
  const bool max = kind == PoolKind::kMax;
  return add_entry(module, str_cat(max ? "kiln_max_pool3d_" : "kiln_avg_pool3d_", dtype_tag(dtype)),
                   kThreads,
                   "KTensor in, KTensor out, KTensor indices, kiln_pool3::Window win, i64 total, "
                   "int channels_last",
                   str_cat("const kiln_pool3::Forward<", max ? 0 : 1, ", ",
                           device_type_name(dtype),
                           "> op = {in, out, indices, win, channels_last != 0};\n"
                           "  kiln_pool3::run(op, total);"));
}

Status launch_pool3d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                     const Tensor* indices, const Pool3dParams& params, cudaStream_t stream) {
  constexpr std::string_view kWhat = "pool3d";
  KILN_RETURN_IF_ERROR(check_pair(in, "input", out, "output", kWhat));
  KILN_RETURN_IF_ERROR(check_window(in, out, params, kWhat));
  if (indices) KILN_RETURN_IF_ERROR(check_indices(*indices, out, kWhat));
  const int64_t total = out.numel();
  if (total == 0) return ok_status();
  // An unused output has no data and is not written; the input and one output are needed.
  const bool has_indices = indices && indices->raw_data();
  if (!out.raw_data() && !has_indices) {
    return invalid_argument("pool3d: expected an output with device data, found none");
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in}, kWhat));
  KTensor kin = kview(in), kout = kview(out);
  KTensor kindices = has_indices ? kview(*indices) : KTensor{};
  DeviceWindow win = device_window(params);
  int64_t n = total;
  int layout = channels_last(out.raw_data() ? out : *indices);
  void* args[] = {&kin, &kout, &kindices, &win, &n, &layout};
  return launch_elements(kernel, total, args, stream);
}

std::string adaptive_avg_pool3d_kernel(ModuleSource& module, DType dtype) {
  add_family(module, kFile, kSource);
  return add_entry(module, str_cat("kiln_adaptive_avg_pool3d_", dtype_tag(dtype)), kThreads,
                   "KTensor in, KTensor out, i64 total, int channels_last",
                   str_cat("const kiln_pool3::Forward<2, ", device_type_name(dtype),
                           "> op = {in, out, KTensor{}, kiln_pool3::Window{}, "
                           "channels_last != 0};\n  kiln_pool3::run(op, total);"));
}

Status launch_adaptive_avg_pool3d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                  cudaStream_t stream) {
  constexpr std::string_view kWhat = "adaptive_avg_pool3d";
  KILN_RETURN_IF_ERROR(check_pair(in, "input", out, "output", kWhat));
  const int64_t total = out.numel();
  if (total == 0) return ok_status();
  if (in.size(2) == 0 || in.size(3) == 0 || in.size(4) == 0) {
    return invalid_argument("adaptive_avg_pool3d: expected a non-empty input volume, found ",
                            in.description());
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  KTensor kin = kview(in), kout = kview(out);
  int64_t n = total;
  int layout = channels_last(out);
  void* args[] = {&kin, &kout, &n, &layout};
  return launch_elements(kernel, total, args, stream);
}

std::string avg_pool_backward_kernel(ModuleSource& module, DType dtype) {
  add_family(module, kFile, kSource);
  return add_entry(module, str_cat("kiln_avg_pool_backward_", dtype_tag(dtype)), kThreads,
                   "KTensor grad_out, KTensor grad_in, kiln_pool3::Window win, i64 total, "
                   "int channels_last",
                   str_cat("const kiln_pool3::AvgBackward<", device_type_name(dtype),
                           "> op = {grad_out, grad_in, win, channels_last != 0};\n"
                           "  kiln_pool3::run(op, total);"));
}

Status launch_avg_pool_backward(cudaKernel_t kernel, const Tensor& grad_out,
                                const Tensor& grad_in, const Pool3dParams& params,
                                cudaStream_t stream) {
  constexpr std::string_view kWhat = "avg_pool backward";
  KILN_RETURN_IF_ERROR(check_pair(grad_in, "grad_input", grad_out, "grad_output", kWhat));
  KILN_RETURN_IF_ERROR(check_window(grad_in, grad_out, params, kWhat));
  const int64_t total = grad_in.numel();
  if (total == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&grad_out, &grad_in}, kWhat));
  KTensor kgrad_out = kview(grad_out), kgrad_in = kview(grad_in);
  DeviceWindow win = device_window(params);
  int64_t n = total;
  int layout = channels_last(grad_in);
  void* args[] = {&kgrad_out, &kgrad_in, &win, &n, &layout};
  return launch_elements(kernel, total, args, stream);
}

std::string max_pool_backward_kernel(ModuleSource& module, DType dtype) {
  add_family(module, kFile, kSource);
  return add_entry(module, str_cat("kiln_max_pool_backward_", dtype_tag(dtype)), kThreads,
                   "KTensor grad_out, KTensor indices, KTensor grad_in, kiln_pool3::Window win, "
                   "i64 total, int channels_last",
                   str_cat("const kiln_pool3::MaxBackward<", device_type_name(dtype),
                           "> op = {grad_out, indices, grad_in, win, channels_last != 0};\n"
                           "  kiln_pool3::run(op, total);"));
}

Status launch_max_pool_backward(cudaKernel_t kernel, const Tensor& grad_out,
                                const Tensor& indices, const Tensor& grad_in,
                                const Pool3dParams& params, cudaStream_t stream) {
  constexpr std::string_view kWhat = "max_pool backward";
  KILN_RETURN_IF_ERROR(check_pair(grad_in, "grad_input", grad_out, "grad_output", kWhat));
  KILN_RETURN_IF_ERROR(check_window(grad_in, grad_out, params, kWhat));
  KILN_RETURN_IF_ERROR(check_indices(indices, grad_out, kWhat));
  const int64_t total = grad_in.numel();
  if (total == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&grad_out, &indices, &grad_in}, kWhat));
  KTensor kgrad_out = kview(grad_out), kindices = kview(indices), kgrad_in = kview(grad_in);
  DeviceWindow win = device_window(params);
  int64_t n = total;
  int layout = channels_last(grad_in);
  void* args[] = {&kgrad_out, &kindices, &kgrad_in, &win, &n, &layout};
  return launch_elements(kernel, total, args, stream);
}

std::string adaptive_avg_pool_backward_kernel(ModuleSource& module, DType dtype) {
  add_family(module, kFile, kSource);
  return add_entry(module, str_cat("kiln_adaptive_avg_pool_backward_", dtype_tag(dtype)),
                   kThreads, "KTensor grad_out, KTensor grad_in, i64 total, int channels_last",
                   str_cat("const kiln_pool3::AdaptiveBackward<", device_type_name(dtype),
                           "> op = {grad_out, grad_in, channels_last != 0};\n"
                           "  kiln_pool3::run(op, total);"));
}

Status launch_adaptive_avg_pool_backward(cudaKernel_t kernel, const Tensor& grad_out,
                                         const Tensor& grad_in, cudaStream_t stream) {
  constexpr std::string_view kWhat = "adaptive_avg_pool backward";
  KILN_RETURN_IF_ERROR(check_pair(grad_in, "grad_input", grad_out, "grad_output", kWhat));
  const int64_t total = grad_in.numel();
  if (total == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&grad_out, &grad_in}, kWhat));
  KTensor kgrad_out = kview(grad_out), kgrad_in = kview(grad_in);
  int64_t n = total;
  int layout = channels_last(grad_in);
  void* args[] = {&kgrad_out, &kgrad_in, &n, &layout};
  return launch_elements(kernel, total, args, stream);
}

}  // namespace kiln::cuda
