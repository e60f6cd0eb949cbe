// Host halves of the index reduction family (kernel_library_index_reduction.h).
#include "cuda/kernel_library_index_reduction.h"

#include <algorithm>
#include <cstdlib>

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

using namespace kernel_lib;

constexpr std::string_view kIndexReductionSource =
#include "cuda/kernels/index_reduction.cuh.inc"
    ;

// The schedules, as kernels/index_reduction.cuh numbers them.
enum : int { kModeRowWarp = 0, kModeRowBlock = 1, kModeColumn = 2 };
constexpr int kMaxThreads = 512;

// An input split into kept and reduced views for up to two outputs in keepdim form (a missing
// output walks the input's strides and has no data).
struct Split {
  KTensor in, out0, out1, red;
  int64_t outputs = 0, count = 0;
  int mode = kModeRowWarp;
  dim3 grid, block;
};

Result<Split> split(const Tensor& in, const Tensor* out0, const Tensor* out1,
                    std::string_view what) {
  KILN_RETURN_IF_ERROR(check_rank(in, what));
  const Tensor* shape = out0 ? out0 : out1;
  for (const Tensor* out : {out0, out1}) {
    if (!out) continue;
    if (out->dim() != in.dim()) {
      return invalid_argument(what, ": expected outputs in keepdim form, of rank ", in.dim(),
                              " like the input ", in.description(), ", found ",
                              out->description());
    }
    if (out->sizes() != shape->sizes()) {
      return invalid_argument(what, ": expected both outputs of the same sizes, found ",
                              shape->description(), " and ", out->description());
    }
  }
  Shape kept_sizes, kept_in, kept_out0, kept_out1, red_sizes, red_in;
  for (int64_t d = 0; d < in.dim(); ++d) {
    const int64_t size = shape->size(d);
    if (size == in.size(d)) {
      kept_sizes.push_back(size);
      kept_in.push_back(in.strides()[d]);
      kept_out0.push_back(out0 ? out0->strides()[d] : in.strides()[d]);
      kept_out1.push_back(out1 ? out1->strides()[d] : in.strides()[d]);
    } else if (size == 1) {
      red_sizes.push_back(in.size(d));
      red_in.push_back(in.strides()[d]);
    } else {
      return invalid_argument(what, ": output ", shape->description(), " dim ", d, " has size ",
                              size, "; expected ", in.size(d), " (kept) or 1 (reduced) for input ",
                              in.description());
    }
  }
  const Walk kept = coalesce(kept_sizes, {kept_in, kept_out0, kept_out1});
  Walk red = coalesce(red_sizes, {red_in});
  if (red.sizes.empty()) red = Walk{{1}, {{1}}};  // nothing reduced: each output is one element
  Split s;
  s.outputs = numel_of(kept.sizes);
  s.count = numel_of(red.sizes);
  s.in = view(in.raw_data(), kept.sizes, kept.strides[0]);
  s.out0 = view(out0 ? out0->raw_data() : nullptr, kept.sizes, kept.strides[1]);
  s.out1 = view(out1 ? out1->raw_data() : nullptr, kept.sizes, kept.strides[2]);
  s.red = view(nullptr, red.sizes, red.strides[0]);

  // A thread per output when there are enough outputs to fill the GPU and either the rows are
  // short or the outputs' inputs lie closer together than a row's elements (then neighbouring
  // threads read neighbouring elements); otherwise a warp per output, or a block for long rows
  // of few outputs.
  const bool contiguous_rows = red.sizes.size() == 1 && red.strides[0][0] == 1;
  const int64_t red_inner = std::llabs(red.strides[0].back());
  const int64_t kept_inner = kept.sizes.empty() ? 0 : std::llabs(kept.strides[0].back());
  if (s.outputs >= 2048 && (s.count <= 16 || (!contiguous_rows && kept_inner < red_inner))) {
    s.mode = kModeColumn;
    s.block = dim3(256);
    s.grid = dim3(grid_for(s.outputs, 256));
  } else if (s.count > 1024 || (s.count > 256 && s.outputs < 1024)) {
    s.mode = kModeRowBlock;
    s.block = dim3(static_cast<unsigned>(
        std::clamp<int64_t>(pow2_at_least(s.count / 8), 64, kMaxThreads)));
    s.grid = dim3(grid_for(s.outputs, 1));
  } else {
    s.mode = kModeRowWarp;
    s.block = dim3(256);
    s.grid = dim3(grid_for(s.outputs, 8));
  }
  return s;
}

std::string add_index_reduction_entry(ModuleSource& module, const std::string& name,
                                      const std::string& params, const std::string& body) {
  add_family(module, "index_reduction.cuh", kIndexReductionSource);
  return add_entry(module, name, kMaxThreads, params, body);
}

}  // namespace

std::string arg_reduce_kernel(ModuleSource& module, bool max, DType in) {
  return add_index_reduction_entry(
      module, str_cat("kiln_arg", max ? "max" : "min", "_", dtype_tag(in)),
      "KTensor in, KTensor values, KTensor indices, KTensor red, i64 outputs, i64 count, int mode",
      str_cat("kiln_index_reduce::arg_reduce<", max ? "true" : "false", ", ",
              device_type_name(in), ">(in, values, indices, red, outputs, count, mode);"));
}

Status launch_arg_reduce(cudaKernel_t kernel, const Tensor& in, const Tensor* values_keepdim,
                         const Tensor* indices_keepdim, cudaStream_t stream) {
  constexpr std::string_view kWhat = "argmax/argmin";
  if (indices_keepdim && indices_keepdim->dtype() != DType::kInt64) {
    return invalid_argument(kWhat, ": expected int64 indices, found ",
                            indices_keepdim->description());
  }
  if (values_keepdim && values_keepdim->dtype() != in.dtype()) {
    return invalid_argument(kWhat, ": expected values of the input's dtype ",
                            dtype_name(in.dtype()), ", found ", values_keepdim->description());
  }
  if (!values_keepdim && !indices_keepdim) return ok_status();  // nothing is read
  KILN_ASSIGN_OR_RETURN(Split s, split(in, values_keepdim, indices_keepdim, kWhat));
  if (s.outputs == 0) return ok_status();
  if (s.count == 0) {
    return invalid_argument(kWhat, ": expected a non-empty reduction of ", in.description(),
                            ", found none to reduce (max and min have no identity)");
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in}, kWhat));
  for (const Tensor* out : {values_keepdim, indices_keepdim}) {
    if (out) KILN_RETURN_IF_ERROR(check_data({out}, kWhat));
  }
  int64_t outputs = s.outputs, count = s.count;
  int mode = s.mode;
  void* args[] = {&s.in, &s.out0, &s.out1, &s.red, &outputs, &count, &mode};
  return launch_kernel(kernel, s.grid, s.block, 0, stream, args);
}

std::string moments_kernel(ModuleSource& module, DType in, bool sqrt) {
  return add_index_reduction_entry(
      module, str_cat("kiln_", sqrt ? "std" : "var", "_", dtype_tag(in)),
      "KTensor in, KTensor var, KTensor mean, KTensor red, i64 outputs, i64 count, int mode, "
      "float correction",
      str_cat("kiln_index_reduce::moments<", device_type_name(in), ", ", sqrt ? "true" : "false",
              ">(in, var, mean, red, outputs, count, mode, correction);"));
}

Status launch_moments(cudaKernel_t kernel, const Tensor& in, const Tensor* var_keepdim,
                      const Tensor* mean_keepdim, double correction, cudaStream_t stream) {
  constexpr std::string_view kWhat = "var/std";
  for (const Tensor* out : {var_keepdim, mean_keepdim}) {
    if (out && out->dtype() != in.dtype()) {
      return invalid_argument(kWhat, ": expected outputs of the input's dtype ",
                              dtype_name(in.dtype()), ", found ", out->description());
    }
  }
  if (!var_keepdim && !mean_keepdim) return ok_status();  // nothing is read
  KILN_ASSIGN_OR_RETURN(Split s, split(in, var_keepdim, mean_keepdim, kWhat));
  if (s.outputs == 0) return ok_status();
  // With no elements to reduce the kernel reads nothing but still writes each output's NaN.
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {}, kWhat));
  if (s.count > 0) KILN_RETURN_IF_ERROR(check_data({&in}, kWhat));
  for (const Tensor* out : {var_keepdim, mean_keepdim}) {
    if (out) KILN_RETURN_IF_ERROR(check_data({out}, kWhat));
  }
  int64_t outputs = s.outputs, count = s.count;
  int mode = s.mode;
  float c = static_cast<float>(correction);
  void* args[] = {&s.in, &s.out0, &s.out1, &s.red, &outputs, &count, &mode, &c};
  return launch_kernel(kernel, s.grid, s.block, 0, stream, args);
}

}  // namespace kiln::cuda
