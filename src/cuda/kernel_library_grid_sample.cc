// The grid_sample family's host half (kernel_library_grid_sample.h).
#include "cuda/kernel_library_grid_sample.h"

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kGridSampleSource =
#include "cuda/kernels/grid_sample.cuh.inc"
    ;

using namespace kernel_lib;

constexpr int kThreads = 256;

std::string_view mode_name(GridInterpolation mode) {
  switch (mode) {
    case GridInterpolation::kBilinear: return "bilinear";
    case GridInterpolation::kNearest: return "nearest";
    case GridInterpolation::kBicubic: return "bicubic";
  }
  return "?";
}

std::string_view padding_name(GridPadding padding) {
  switch (padding) {
    case GridPadding::kZeros: return "zeros";
    case GridPadding::kBorder: return "border";
    case GridPadding::kReflection: return "reflection";
  }
  return "?";
}

bool is_float_type(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

}  // namespace

std::string grid_sample_kernel(ModuleSource& module, GridInterpolation mode, GridPadding padding,
                               DType dtype) {
  add_family(module, "grid_sample.cuh", kGridSampleSource);
  return add_entry(
      module,
      str_cat("kiln_grid_sample_", mode_name(mode), "_", padding_name(padding), "_",
              dtype_tag(dtype)),
      kThreads, "KTensor in, KTensor grid, KTensor out, int align_corners, i64 total",
      str_cat("kiln_grid_sample::grid_sample<", static_cast<int>(mode), ", ",
              static_cast<int>(padding), ", ", device_type_name(dtype),
              ">(in, grid, out, align_corners != 0, total);"));
}

Status launch_grid_sample(cudaKernel_t kernel, const Tensor& input, const Tensor& grid,
                          const Tensor& out, bool align_corners, cudaStream_t stream) {
  constexpr std::string_view kWhat = "grid_sample";
  if (input.dim() != 4 || grid.dim() != 4 || out.dim() != 4 || grid.size(3) != 2 ||
      grid.size(0) != input.size(0)) {
    return invalid_argument(
        "grid_sample: expected input [N, C, H, W], grid [N, Ho, Wo, 2] and out [N, C, Ho, Wo], "
        "found ",
        input.description(), ", ", grid.description(), " and ", out.description());
  }
  if (out.size(0) != input.size(0) || out.size(1) != input.size(1) ||
      out.size(2) != grid.size(1) || out.size(3) != grid.size(2)) {
    return invalid_argument("grid_sample: expected out [", input.size(0), ", ", input.size(1),
                            ", ", grid.size(1), ", ", grid.size(2), "] for input ",
                            input.description(), " and grid ", grid.description(), ", found ",
                            out.description());
  }
  if (!is_float_type(input.dtype()) || grid.dtype() != input.dtype() ||
      out.dtype() != input.dtype()) {
    return invalid_argument(
        "grid_sample: expected input, grid and out of one float dtype, found ", input.description(),
        ", ", grid.description(), " and ", out.description());
  }
  if (out.numel() == 0) return ok_status();
  // Eager's coordinate arithmetic takes the plane's sizes as int.
  if (input.size(2) == 0 || input.size(3) == 0 || input.size(2) > INT32_MAX ||
      input.size(3) > INT32_MAX) {
    return invalid_argument("grid_sample: expected a non-empty input plane of int sizes, found ",
                            input.description());
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&input, &grid, &out}, kWhat));
  KTensor kin = view(input.raw_data(), input.sizes(), input.strides());
  KTensor kgrid = view(grid.raw_data(), grid.sizes(), grid.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  int align = align_corners ? 1 : 0;
  // A thread per output point; each loops over the channels.
  int64_t total = out.size(0) * out.size(2) * out.size(3);
  void* args[] = {&kin, &kgrid, &kout, &align, &total};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

}  // namespace kiln::cuda
