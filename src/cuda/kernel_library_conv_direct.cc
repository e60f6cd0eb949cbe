// The direct convolutions' host half (kernel_library_conv_direct.h).
#include "cuda/kernel_library_conv_direct.h"

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kConvDirectSource =
#include "cuda/kernels/conv_direct.cuh.inc"
    ;

using namespace kernel_lib;

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = 8;  // kiln_conv_direct::kWarpsPerBlock: a warp per sum

void add_conv_direct(ModuleSource& module) {
  add_family(module, "conv_direct.cuh", kConvDirectSource);
}

bool is_float_type(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// The host mirror of kiln_conv_direct::ConvWindow: three spatial dims, the missing leading ones
// of a 1-D or 2-D convolution of size 1 (stride 1, no padding).
struct ConvWindow {
  int64_t stride[3] = {1, 1, 1};
  int64_t padding[3] = {0, 0, 0};
  int64_t dilation[3] = {1, 1, 1};
  int64_t groups = 1;
};

// `params` for `spatial` dims, or why they do not fit.
Result<ConvWindow> window_for(const ConvWindowParams& params, int64_t spatial,
                              std::string_view what) {
  ConvWindow win;
  struct Field {
    const std::vector<int64_t>* values;
    int64_t* dst;
    const char* name;
    int64_t min;
  };
  const Field fields[] = {{&params.stride, win.stride, "stride", 1},
                          {&params.padding, win.padding, "padding", 0},
                          {&params.dilation, win.dilation, "dilation", 1}};
  for (const Field& f : fields) {
    const size_t n = f.values->size();
    if (n != 1 && n != static_cast<size_t>(spatial)) {
      return invalid_argument(what, ": expected ", f.name, " of 1 or ", spatial, " values, found ",
                              n);
    }
    for (int64_t d = 0; d < spatial; ++d) {
      const int64_t v = (*f.values)[n == 1 ? 0 : d];
      if (v < f.min) {
        return invalid_argument(what, ": expected every ", f.name, " value >= ", f.min, ", found ",
                                v);
      }
      f.dst[3 - spatial + d] = v;
    }
  }
  if (params.groups < 1) {
    return invalid_argument(what, ": expected groups >= 1, found ", params.groups);
  }
  win.groups = params.groups;
  return win;
}

// t [N, C, spatial...] (or the weight [W0, W1, kernel...]) as 5-D, size-1 dims in front of the
// spatial ones.
KTensor view5(const Tensor& t) {
  Shape sizes{t.size(0), t.size(1)}, strides{t.strides()[0], t.strides()[1]};
  for (int64_t d = t.dim(); d < 5; ++d) {
    sizes.push_back(1);
    strides.push_back(0);
  }
  for (int64_t d = 2; d < t.dim(); ++d) {
    sizes.push_back(t.size(d));
    strides.push_back(t.strides()[d]);
  }
  return view(t.raw_data(), sizes, strides);
}

Status check_conv_rank(const Tensor& t, std::string_view name, int64_t rank,
                       std::string_view what) {
  if (t.dim() < 3 || t.dim() > 5 || (rank != 0 && t.dim() != rank)) {
    return invalid_argument(what, ": expected ", name, " [N, C, spatial...] with 1-3 spatial dims",
                            rank ? str_cat(" (rank ", rank, ")") : std::string(), ", found ",
                            t.description());
  }
  return ok_status();
}

Status check_dtypes(std::initializer_list<const Tensor*> tensors, std::string_view what) {
  const DType dtype = (*tensors.begin())->dtype();
  for (const Tensor* t : tensors) {
    if (t->dtype() != dtype || !is_float_type(t->dtype())) {
      return invalid_argument(what,
                              ": expected float32, float16 or bfloat16 tensors of one dtype, "
                              "found ",
                              t->description(), " beside ", (*tensors.begin())->description());
    }
  }
  return ok_status();
}

// The a side (strided side) has W0 channels, the b side W1 per group: a plain convolution's
// output and input, a transposed one's input and output.
Status check_channels(const Tensor& a_side, const Tensor& b_side, const Tensor& w, int64_t groups,
                      std::string_view what) {
  const int64_t w0 = w.size(0), w1 = w.size(1);
  if (w0 % groups != 0 || a_side.size(1) != w0 || b_side.size(1) != w1 * groups ||
      a_side.size(0) != b_side.size(0)) {
    return invalid_argument(what, ": expected one batch size, ", w0,
                            " channels on the strided side and ", w1 * groups,
                            " on the other for weight ", w.description(), " and groups=", groups,
                            " (weight dim 0 a multiple of groups), found ", a_side.description(),
                            " and ", b_side.description());
  }
  return ok_status();
}

// Empty tensors need no data: a launch reads only the elements that exist.
Status check_nonempty_data(std::initializer_list<const Tensor*> tensors, std::string_view what) {
  for (const Tensor* t : tensors) {
    if (t->numel() > 0 && t->raw_data() == nullptr) {
      return invalid_argument(what, ": tensor ", t->description(), " has no device data");
    }
  }
  return ok_status();
}

unsigned warp_grid(int64_t sums) {
  return grid_for(sums, kWarpsPerBlock);
}

}  // namespace

// --- the convolution -----------------------------------------------------------------------------

std::string conv_direct_kernel(ModuleSource& module, bool transposed, DType dtype) {
  add_conv_direct(module);
  return add_entry(
      module, str_cat("kiln_conv_direct_", transposed ? "transposed_" : "plain_", dtype_tag(dtype)),
      kThreads,
      "KTensor x, KTensor w, KTensor bias, KTensor y, "
      "kiln_conv_direct::ConvWindow window, i64 total",
      str_cat("kiln_conv_direct::conv<", transposed ? "true" : "false", ", ",
              device_type_name(dtype), ">(x, w, bias, y, window, total);"));
}

Status launch_conv_direct(cudaKernel_t kernel, const Tensor& x, const Tensor& w, const Tensor* bias,
                          const Tensor& y, const ConvWindowParams& params, bool transposed,
                          cudaStream_t stream) {
  const std::string_view what = transposed ? "conv_transpose (direct)" : "convolution (direct)";
  KILN_RETURN_IF_ERROR(check_conv_rank(x, "input", 0, what));
  KILN_RETURN_IF_ERROR(check_conv_rank(w, "weight", x.dim(), what));
  KILN_RETURN_IF_ERROR(check_conv_rank(y, "output", x.dim(), what));
  KILN_RETURN_IF_ERROR(check_dtypes({&x, &w, &y}, what));
  KILN_ASSIGN_OR_RETURN(const ConvWindow win, window_for(params, x.dim() - 2, what));
  KILN_RETURN_IF_ERROR(transposed ? check_channels(x, y, w, win.groups, what)
                                  : check_channels(y, x, w, win.groups, what));
  if (bias && (bias->dim() != 1 || bias->size(0) != y.size(1) || bias->dtype() != y.dtype())) {
    return invalid_argument(what, ": expected a bias [", y.size(1), "] in ", dtype_name(y.dtype()),
                            ", found ", bias->description());
  }
  if (y.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_nonempty_data({&x, &w, &y}, what));
  if (bias) KILN_RETURN_IF_ERROR(check_nonempty_data({bias}, what));
  if (kernel == nullptr) return invalid_argument(what, ": no kernel was given");
  KTensor kx = view5(x), kw = view5(w), ky = view5(y);
  KTensor kbias;  // data null: no bias
  if (bias) kbias = view(bias->raw_data(), bias->sizes(), bias->strides());
  ConvWindow window = win;
  int64_t total = y.numel();
  void* args[] = {&kx, &kw, &kbias, &ky, &window, &total};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

// --- the gradients -------------------------------------------------------------------------------

std::string conv_weight_grad_kernel(ModuleSource& module, DType dtype) {
  add_conv_direct(module);
  return add_entry(module, str_cat("kiln_conv_weight_grad_", dtype_tag(dtype)), kThreads,
                   "KTensor a_side, KTensor b_side, KTensor gw, "
                   "kiln_conv_direct::ConvWindow window, i64 total",
                   str_cat("kiln_conv_direct::weight_grad<", device_type_name(dtype),
                           ">(a_side, b_side, gw, window, total);"));
}

Status launch_conv_weight_grad(cudaKernel_t kernel, const Tensor& grad_output, const Tensor& input,
                               const Tensor& grad_weight, const ConvWindowParams& params,
                               bool transposed, cudaStream_t stream) {
  constexpr std::string_view kWhat = "convolution grad_weight";
  KILN_RETURN_IF_ERROR(check_conv_rank(input, "input", 0, kWhat));
  KILN_RETURN_IF_ERROR(check_conv_rank(grad_output, "grad_output", input.dim(), kWhat));
  KILN_RETURN_IF_ERROR(check_conv_rank(grad_weight, "grad_weight", input.dim(), kWhat));
  KILN_RETURN_IF_ERROR(check_dtypes({&input, &grad_output, &grad_weight}, kWhat));
  KILN_ASSIGN_OR_RETURN(const ConvWindow win, window_for(params, input.dim() - 2, kWhat));
  const Tensor& a_side = transposed ? input : grad_output;
  const Tensor& b_side = transposed ? grad_output : input;
  KILN_RETURN_IF_ERROR(check_channels(a_side, b_side, grad_weight, win.groups, kWhat));
  if (grad_weight.numel() == 0) return ok_status();
  // An empty batch or side still launches: its sums are zeros.
  KILN_RETURN_IF_ERROR(check_nonempty_data({&input, &grad_output, &grad_weight}, kWhat));
  if (kernel == nullptr) return invalid_argument(kWhat, ": no kernel was given");
  KTensor ka = view5(a_side), kb = view5(b_side), kgw = view5(grad_weight);
  ConvWindow window = win;
  int64_t total = grad_weight.numel();
  void* args[] = {&ka, &kb, &kgw, &window, &total};
  return launch_kernel(kernel, dim3(warp_grid(total)), dim3(kThreads), 0, stream, args);
}

std::string conv_bias_grad_kernel(ModuleSource& module, DType dtype) {
  add_conv_direct(module);
  return add_entry(
      module, str_cat("kiln_conv_bias_grad_", dtype_tag(dtype)), kThreads,
      "KTensor gy, KTensor gb, i64 channels",
      str_cat("kiln_conv_direct::bias_grad<", device_type_name(dtype), ">(gy, gb, channels);"));
}

Status launch_conv_bias_grad(cudaKernel_t kernel, const Tensor& grad_output,
                             const Tensor& grad_bias, cudaStream_t stream) {
  constexpr std::string_view kWhat = "convolution grad_bias";
  KILN_RETURN_IF_ERROR(check_conv_rank(grad_output, "grad_output", 0, kWhat));
  if (grad_bias.dim() != 1 || grad_bias.size(0) != grad_output.size(1)) {
    return invalid_argument(kWhat, ": expected grad_bias [", grad_output.size(1),
                            "] for grad_output ", grad_output.description(), ", found ",
                            grad_bias.description());
  }
  KILN_RETURN_IF_ERROR(check_dtypes({&grad_output, &grad_bias}, kWhat));
  if (grad_bias.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_nonempty_data({&grad_output, &grad_bias}, kWhat));
  if (kernel == nullptr) return invalid_argument(kWhat, ": no kernel was given");
  KTensor kgy = view5(grad_output);
  KTensor kgb = view(grad_bias.raw_data(), grad_bias.sizes(), grad_bias.strides());
  int64_t channels = grad_bias.size(0);
  void* args[] = {&kgy, &kgb, &channels};
  return launch_kernel(kernel, dim3(warp_grid(channels)), dim3(kThreads), 0, stream, args);
}

}  // namespace kiln::cuda
