// The resample family's host half (kernel_library_resample.h).
#include "cuda/kernel_library_resample.h"

#include <algorithm>
#include <cmath>

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kResampleSource =
#include "cuda/kernels/resample.cuh.inc"
    ;

using namespace kernel_lib;

constexpr int kThreads = 256;
constexpr int kDistThreads = 256;  // kiln_resample::kDistThreads: one block per distance

void add_resample(ModuleSource& module) { add_family(module, "resample.cuh", kResampleSource); }

bool is_float_type(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// The host mirror of kiln_resample::UpsampleArgs.
struct UpsampleArgs {
  float scale_h, scale_w;
  int32_t identity_h, identity_w;
  int32_t copy;
  int32_t align_corners;
  int32_t channels_last;
  int32_t pad_ = 0;
};

// PyTorch's compute_scales_value<float>: 1 / factor where a positive factor was given, else
// in / out, in float as eager computes it on the host.
float scales_value(std::optional<double> factor, int64_t in, int64_t out) {
  return factor && *factor > 0.0 ? static_cast<float>(1.0 / *factor)
                                 : static_cast<float>(in) / static_cast<float>(out);
}

// PyTorch's area_pixel_compute_scale<float>.
float area_scale(std::optional<double> factor, int64_t in, int64_t out, bool align_corners) {
  if (align_corners) {
    return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  }
  return scales_value(factor, in, out);
}

std::string_view mode_name(UpsampleMode mode) {
  switch (mode) {
    case UpsampleMode::kNearest: return "nearest";
    case UpsampleMode::kNearestExact: return "nearest_exact";
    case UpsampleMode::kLinear: return "linear";
  }
  return "?";
}

// The (n, c, h, w) view of a 1-D resize's [N, C, W] tensor.
Tensor as_2d(const Tensor& t) {
  return t.view_as({t.size(0), t.size(1), 1, t.size(2)}, {t.strides()[0], t.strides()[1], 0,
                                                          t.strides()[2]},
                   t.offset());
}

}  // namespace

// --- upsampling -------------------------------------------------------------------------------

std::string upsample_kernel(ModuleSource& module, UpsampleMode mode, int spatial_dims,
                            DType dtype) {
  add_resample(module);
  const int dims = spatial_dims == 1 ? 1 : 2;
  return add_entry(module,
                   str_cat("kiln_upsample_", mode_name(mode), "_", dims, "d_", dtype_tag(dtype)),
                   kThreads, "KTensor in, KTensor out, kiln_resample::UpsampleArgs args, i64 total",
                   str_cat("kiln_resample::upsample<", static_cast<int>(mode), ", ", dims, ", ",
                           device_type_name(dtype), ">(in, out, args, total);"));
}

Status launch_upsample(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                       const UpsampleParams& params, cudaStream_t stream) {
  constexpr std::string_view kWhat = "upsample";
  const int64_t rank = in.dim();
  if ((rank != 3 && rank != 4) || out.dim() != rank) {
    return invalid_argument(
        "upsample: expected input and output [N, C, W] or [N, C, H, W] of one rank, found ",
        in.description(), " and ", out.description());
  }
  if (in.size(0) != out.size(0) || in.size(1) != out.size(1) || in.dtype() != out.dtype()) {
    return invalid_argument("upsample: expected an output of the input's N, C and dtype for ",
                            in.description(), ", found ", out.description());
  }
  const bool linear = params.mode == UpsampleMode::kLinear;
  if (linear ? !is_float_type(in.dtype()) : !is_float_type(in.dtype()) &&
                                                in.dtype() != DType::kUInt8) {
    return invalid_argument("upsample: expected a float", linear ? "" : " or uint8",
                            " input for ", mode_name(params.mode), ", found ", in.description());
  }
  if (out.numel() == 0) return ok_status();
  for (int64_t d = 2; d < rank; ++d) {
    if (in.size(d) == 0) {
      return invalid_argument("upsample: expected a non-empty input plane, found ",
                              in.description());
    }
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  const Tensor x = rank == 3 ? as_2d(in) : in;
  const Tensor y = rank == 3 ? as_2d(out) : out;
  const int64_t ih = x.size(2), iw = x.size(3), oh = y.size(2), ow = y.size(3);
  // The scale of dim d of the resize (H, W; W alone for 1-D) from its factor.
  const std::optional<double> factor_h = rank == 4 ? params.scales[0] : std::nullopt;
  const std::optional<double> factor_w = rank == 4 ? params.scales[1] : params.scales[0];
  UpsampleArgs args{};
  if (linear) {
    args.scale_h = area_scale(factor_h, ih, oh, params.align_corners);
    args.scale_w = area_scale(factor_w, iw, ow, params.align_corners);
    args.copy = ih == oh && iw == ow ? 1 : 0;
  } else {
    args.scale_h = scales_value(factor_h, ih, oh);
    args.scale_w = scales_value(factor_w, iw, ow);
    // Eager's 2-D nearest kernels map an unchanged dim to itself; its 1-D kernel does not.
    args.identity_h = rank == 4 && ih == oh ? 1 : 0;
    args.identity_w = rank == 4 && iw == ow ? 1 : 0;
  }
  args.align_corners = params.align_corners ? 1 : 0;
  args.channels_last = y.size(1) > 1 && y.strides()[1] == 1 ? 1 : 0;
  KTensor kin = view(x.raw_data(), x.sizes(), x.strides());
  KTensor kout = view(y.raw_data(), y.sizes(), y.strides());
  int64_t total = y.numel();
  void* launch_args[] = {&kin, &kout, &args, &total};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream,
                       launch_args);
}

// --- col2im -----------------------------------------------------------------------------------

namespace {

// The host mirror of kiln_resample::Col2imWindow.
struct Col2imWindow {
  int64_t kh, kw, dh, dw, ph, pw, sh, sw;
  int64_t cols_h, cols_w;
};

}  // namespace

std::string col2im_kernel(ModuleSource& module, DType dtype) {
  add_resample(module);
  return add_entry(module, str_cat("kiln_col2im_", dtype_tag(dtype)), kThreads,
                   "KTensor cols, KTensor out, kiln_resample::Col2imWindow window, i64 total",
                   str_cat("kiln_resample::col2im<", device_type_name(dtype),
                           ">(cols, out, window, total);"));
}

Status launch_col2im(cudaKernel_t kernel, const Tensor& columns, const Tensor& out,
                     const Col2imParams& params, cudaStream_t stream) {
  constexpr std::string_view kWhat = "col2im";
  const bool batched = columns.dim() == 3;
  if ((columns.dim() != 2 && columns.dim() != 3) || out.dim() != columns.dim() + 1) {
    return invalid_argument(
        "col2im: expected columns [N, C*kh*kw, L] with out [N, C, H, W], or [C*kh*kw, L] with "
        "[C, H, W], found ",
        columns.description(), " and ", out.description());
  }
  for (int i = 0; i < 2; ++i) {
    if (params.kernel[i] < 1 || params.dilation[i] < 1 || params.stride[i] < 1 ||
        params.padding[i] < 0) {
      return invalid_argument(
          "col2im: expected kernel, dilation and stride >= 1 and padding >= 0, found kernel ",
          params.kernel[i], ", dilation ", params.dilation[i], ", stride ", params.stride[i],
          ", padding ", params.padding[i]);
    }
  }
  const Tensor cols = batched ? columns
                              : columns.view_as({1, columns.size(0), columns.size(1)},
                                                {0, columns.strides()[0], columns.strides()[1]},
                                                columns.offset());
  const Tensor y = batched ? out
                           : out.view_as({1, out.size(0), out.size(1), out.size(2)},
                                         {0, out.strides()[0], out.strides()[1], out.strides()[2]},
                                         out.offset());
  int64_t cols_hw[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t span = y.size(2 + i) + 2 * params.padding[i] -
                         (params.dilation[i] * (params.kernel[i] - 1) + 1);
    cols_hw[i] = span < 0 ? 0 : span / params.stride[i] + 1;
  }
  const int64_t kernel_area = params.kernel[0] * params.kernel[1];
  if (cols.size(0) != y.size(0) || cols.size(1) != y.size(1) * kernel_area ||
      cols.size(2) != cols_hw[0] * cols_hw[1] || cols.dtype() != y.dtype()) {
    return invalid_argument("col2im: expected columns [", y.size(0), ", ", y.size(1) * kernel_area,
                            ", ", cols_hw[0] * cols_hw[1], "] in ", dtype_name(y.dtype()),
                            " for output ", out.description(), ", found ",
                            columns.description());
  }
  if (!is_float_type(y.dtype())) {
    return invalid_argument("col2im: expected a float tensor, found ", columns.description());
  }
  if (y.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&columns, &out}, kWhat));
  Col2imWindow window{params.kernel[0],   params.kernel[1],  params.dilation[0],
                      params.dilation[1], params.padding[0], params.padding[1],
                      params.stride[0],   params.stride[1],  cols_hw[0],
                      cols_hw[1]};
  KTensor kcols = view(cols.raw_data(), cols.sizes(), cols.strides());
  KTensor kout = view(y.raw_data(), y.sizes(), y.strides());
  int64_t total = y.numel();
  void* args[] = {&kcols, &kout, &window, &total};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

// --- p-norm distances -------------------------------------------------------------------------

namespace {

std::string_view norm_name(DistanceNorm norm) {
  switch (norm) {
    case DistanceNorm::kZero: return "p0";
    case DistanceNorm::kOne: return "p1";
    case DistanceNorm::kTwo: return "p2";
    case DistanceNorm::kInf: return "pinf";
    case DistanceNorm::kP: return "p";
    case DistanceNorm::kTwoByProduct: return "p2mm";
  }
  return "?";
}

Status check_distance_input(const Tensor& t, std::string_view name, std::string_view what) {
  if (!is_float_type(t.dtype())) {
    return invalid_argument(what, ": expected a float ", name, ", found ", t.description());
  }
  return check_rank(t, what);
}

Status check_p(double p, std::string_view what) {
  if (!(p >= 0.0)) return invalid_argument(what, ": expected p >= 0, found ", p);
  return ok_status();
}

unsigned distance_blocks(int64_t total) { return grid_for(total, 1); }

}  // namespace

DistanceNorm distance_norm(double p) {
  if (p == 0.0) return DistanceNorm::kZero;
  if (p == 1.0) return DistanceNorm::kOne;
  if (p == 2.0) return DistanceNorm::kTwo;
  if (std::isinf(p)) return DistanceNorm::kInf;
  return DistanceNorm::kP;
}

DistanceNorm cdist_norm(double p, int64_t compute_mode, int64_t rows1, int64_t rows2) {
  const bool product =
      p == 2.0 && (compute_mode == 1 || (compute_mode == 0 && (rows1 > 25 || rows2 > 25)));
  return product ? DistanceNorm::kTwoByProduct : distance_norm(p);
}

std::string cdist_kernel(ModuleSource& module, DType dtype, DistanceNorm norm) {
  add_resample(module);
  return add_entry(module, str_cat("kiln_cdist_", norm_name(norm), "_", dtype_tag(dtype)),
                   kDistThreads, "KTensor x1, KTensor x2, KTensor out, float p, i64 total",
                   str_cat("kiln_resample::cdist<", static_cast<int>(norm), ", ",
                           device_type_name(dtype), ">(x1, x2, out, p, total);"));
}

Status launch_cdist(cudaKernel_t kernel, const Tensor& x1, const Tensor& x2, const Tensor& out,
                    double p, cudaStream_t stream) {
  constexpr std::string_view kWhat = "cdist";
  KILN_RETURN_IF_ERROR(check_distance_input(x1, "x1", kWhat));
  KILN_RETURN_IF_ERROR(check_distance_input(x2, "x2", kWhat));
  KILN_RETURN_IF_ERROR(check_rank(out, kWhat));
  KILN_RETURN_IF_ERROR(check_p(p, kWhat));
  if (x1.dim() < 2 || x2.dim() < 2 || x1.size(x1.dim() - 1) != x2.size(x2.dim() - 1)) {
    return invalid_argument("cdist: expected x1 [*, P, M] and x2 [*, R, M], found ",
                            x1.description(), " and ", x2.description());
  }
  // out [*, P, R]: its batch dims are x1's and x2's broadcast.
  const int64_t rank = out.dim();
  const int64_t rows1 = x1.size(x1.dim() - 2), rows2 = x2.size(x2.dim() - 2);
  const int64_t m = x1.size(x1.dim() - 1);
  bool fits = rank >= std::max(x1.dim(), x2.dim()) && out.dtype() == x1.dtype() &&
              x2.dtype() == x1.dtype() && out.size(rank - 2) == rows1 &&
              out.size(rank - 1) == rows2;
  // Each input as [out's batch dims, rows, M], stride 0 where it broadcasts.
  auto batched = [&](const Tensor& x, Shape& sizes, Shape& strides) {
    sizes = out.sizes();
    strides.assign(static_cast<size_t>(rank), 0);
    sizes[rank - 2] = x.size(x.dim() - 2);
    sizes[rank - 1] = m;
    const int64_t lead = rank - x.dim();
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (d < x.dim() - 2) {
        const int64_t want = out.size(lead + d);
        if (x.size(d) != want && x.size(d) != 1) fits = false;
        strides[lead + d] = x.size(d) == 1 ? 0 : x.strides()[d];
      } else {
        strides[lead + d] = x.strides()[d];
      }
    }
  };
  Shape s1, st1, s2, st2;
  if (fits) {
    batched(x1, s1, st1);
    batched(x2, s2, st2);
  }
  if (!fits) {
    Shape expected;
    if (rank >= 2) expected.assign(out.sizes().begin(), out.sizes().end() - 2);
    expected.push_back(rows1);
    expected.push_back(rows2);
    return invalid_argument("cdist: expected an output [broadcast batch dims, ", rows1, ", ", rows2,
                            "] in ", dtype_name(x1.dtype()), " for x1 ", x1.description(),
                            " and x2 ", x2.description(), ", found ", out.description());
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&x1, &x2, &out}, kWhat));
  KTensor k1 = view(x1.raw_data(), s1, st1);
  KTensor k2 = view(x2.raw_data(), s2, st2);
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  float pf = static_cast<float>(p);
  int64_t total = out.numel();
  void* args[] = {&k1, &k2, &kout, &pf, &total};
  return launch_kernel(kernel, dim3(distance_blocks(total)), dim3(kDistThreads), 0, stream, args);
}

std::string pdist_kernel(ModuleSource& module, DType dtype, DistanceNorm norm) {
  add_resample(module);
  if (norm == DistanceNorm::kTwoByProduct) norm = DistanceNorm::kTwo;
  return add_entry(module, str_cat("kiln_pdist_", norm_name(norm), "_", dtype_tag(dtype)),
                   kDistThreads, "KTensor x, KTensor out, float p, i64 total",
                   str_cat("kiln_resample::pdist<", static_cast<int>(norm), ", ",
                           device_type_name(dtype), ">(x, out, p, total);"));
}

Status launch_pdist(cudaKernel_t kernel, const Tensor& x, const Tensor& out, double p,
                    cudaStream_t stream) {
  constexpr std::string_view kWhat = "pdist";
  KILN_RETURN_IF_ERROR(check_distance_input(x, "input", kWhat));
  KILN_RETURN_IF_ERROR(check_p(p, kWhat));
  if (x.dim() != 2) {
    return invalid_argument("pdist: expected a 2-D input [N, M], found ", x.description());
  }
  const int64_t n = x.size(0);
  const int64_t pairs = n * (n - 1) / 2;
  if (out.dim() != 1 || out.size(0) != pairs || out.dtype() != x.dtype()) {
    return invalid_argument("pdist: expected an output [", pairs, "] in ", dtype_name(x.dtype()),
                            " for input ", x.description(), ", found ", out.description());
  }
  if (pairs == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&x, &out}, kWhat));
  KTensor kx = view(x.raw_data(), x.sizes(), x.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  float pf = static_cast<float>(p);
  int64_t total = pairs;
  void* args[] = {&kx, &kout, &pf, &total};
  return launch_kernel(kernel, dim3(distance_blocks(total)), dim3(kDistThreads), 0, stream, args);
}

}  // namespace kiln::cuda
