// The group norm family's host half (kernel_library_group_norm.h): entry points, argument checks,
// and how each op's sets of elements map onto the kernel's (hi, lo, row, plane) walk.
#include "cuda/kernel_library_group_norm.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <utility>

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kGroupNormSource =
#include "cuda/kernels/group_norm.cuh.inc"
    ;

constexpr int kThreads = 512;  // the entry's __launch_bounds__
static_assert(sizeof(GroupNormWalk) == 36 * 8 + 5 * 4 + 4,  // five int32, padded to 8 bytes
              "must match kiln_group_norm::Shape");

using namespace kernel_lib;

// The dims after N and C of x and out, merged where both step through them as one.
// Without an output, x's strides stand in for its.
Status set_plane(GroupNormWalk& s, const Tensor& x, const Tensor* out, std::string_view what) {
  Shape sizes, xs, ys;
  for (int64_t d = 2; d < x.dim(); ++d) {
    sizes.push_back(x.size(d));
    xs.push_back(x.strides()[d]);
    ys.push_back((out ? *out : x).strides()[d]);
  }
  const Walk walk = coalesce(sizes, {xs, ys});
  if (walk.sizes.size() > static_cast<size_t>(GroupNormWalk::kPlaneDims)) {
    return invalid_argument(what, ": expected at most ", GroupNormWalk::kPlaneDims,
                            " spatial dims, found ", x.description());
  }
  s.plane = numel_of(walk.sizes);
  s.plane_dims = static_cast<int32_t>(walk.sizes.size());
  for (size_t d = 0; d < walk.sizes.size(); ++d) {
    s.plane_sizes[d] = walk.sizes[d];
    s.x_plane[d] = walk.strides[0][d];
    s.y_plane[d] = walk.strides[1][d];
  }
  return ok_status();
}

// Numbering and fast paths, once rows, plane and the row strides are set.
void set_order(GroupNormWalk& s) {
  // Channels-last: the row (channel) stride is below the plane's innermost one, so neighbouring
  // threads take neighbouring channels.
  const int64_t inner = s.plane_dims > 0 ? std::llabs(s.x_plane[s.plane_dims - 1]) : 0;
  s.rows_inner = s.rows > 1 && s.plane_dims > 0 && std::llabs(s.x_row) < inner ? 1 : 0;
  auto flat = [&](int64_t row_stride, const int64_t* plane) {
    if (s.rows_inner) return false;
    const bool plane_unit = s.plane_dims == 0 || (s.plane_dims == 1 && plane[0] == 1);
    return plane_unit && (s.rows == 1 || row_stride == s.plane);
  };
  s.x_flat = flat(s.x_row, s.x_plane) ? 1 : 0;
  s.y_flat = flat(s.y_row, s.y_plane) ? 1 : 0;
}

Status check_common(const Tensor& x, const Tensor* out, std::string_view what) {
  KILN_RETURN_IF_ERROR(check_rank(x, what));
  if (x.dim() < 2) {
    return invalid_argument(what, ": expected an input of shape [N, C, *] (rank >= 2), found ",
                            x.description());
  }
  if (out) {
    KILN_RETURN_IF_ERROR(check_same_sizes(x, "input", *out, "output", what));
    if (out->dtype() != x.dtype()) {
      return invalid_argument(what, ": expected output ", out->description(), " in ",
                              dtype_name(x.dtype()), " like the input");
    }
  }
  if (!is_floating(x.dtype())) {
    return invalid_argument(what, ": expected a floating input, found ", x.description());
  }
  return ok_status();
}

// Per-channel tensors: 1-D with C elements, one dtype (the input's, or float32 for a 16-bit
// input). Returns the first one's dtype (the input's when there is none).
Result<DType> check_channel_tensors(
    const Tensor& x, std::initializer_list<std::pair<const Tensor*, std::string_view>> tensors,
    std::string_view what) {
  const int64_t channels = x.size(1);
  std::optional<DType> dtype;
  for (const auto& [t, name] : tensors) {
    if (!t) continue;
    if (t->dim() != 1 || t->size(0) != channels) {
      return invalid_argument(what, ": expected ", name, " of shape [", channels,
                              "] (one per channel), found ", t->description());
    }
    const bool allowed = t->dtype() == x.dtype() ||
                         (t->dtype() == DType::kFloat32 &&
                          (x.dtype() == DType::kFloat16 || x.dtype() == DType::kBFloat16));
    if (!allowed || (dtype && *dtype != t->dtype())) {
      return invalid_argument(what, ": expected ", name, " in ",
                              dtype ? dtype_name(*dtype) : dtype_name(x.dtype()),
                              " (the input's dtype, or float32 for a 16-bit input, the same for "
                              "every parameter), found ",
                              t->description());
    }
    dtype = t->dtype();
  }
  return dtype.value_or(x.dtype());
}

// Statistics outputs: `count` elements of float32 or the input's dtype, both of one dtype.
Status check_stats(const Tensor& x, const Tensor* mean, const Tensor* rstd, const Shape& sizes,
                   std::string_view what) {
  std::optional<DType> dtype;
  for (const auto& [t, name] : {std::pair{mean, "mean"}, std::pair{rstd, "rstd"}}) {
    if (!t) continue;
    if (t->sizes() != sizes) {
      return invalid_argument(what, ": expected ", name, " of shape ", shape_to_string(sizes),
                              ", found ", t->description());
    }
    if ((t->dtype() != DType::kFloat32 && t->dtype() != x.dtype()) ||
        (dtype && *dtype != t->dtype())) {
      return invalid_argument(what, ": expected ", name, " in float32 or ", dtype_name(x.dtype()),
                              " (both statistics alike), found ", t->description());
    }
    dtype = t->dtype();
  }
  return ok_status();
}

void set_param_strides(GroupNormWalk& s, const ChannelParams& params) {
  s.w_stride = params.weight ? params.weight->strides()[0] : 0;
  s.b_stride = params.bias ? params.bias->strides()[0] : 0;
}

void* data_of(const Tensor* t) {
  return t ? t->raw_data() : nullptr;
}

// Launches with one block per set. Nothing to write: no launch; an empty input with statistics
// to write still launches (the sets are empty and x is never read).
Status launch_sets(cudaKernel_t kernel, const Tensor& x, const ChannelParams& params,
                   const Tensor* running_mean, const Tensor* running_var, const Tensor* out,
                   const Tensor* mean, const Tensor* rstd, const GroupNormWalk& shape, double eps,
                   std::string_view what, cudaStream_t stream) {
  const int64_t sets = shape.blocks_hi * shape.blocks_lo;
  const bool stats = (mean && mean->numel() > 0) || (rstd && rstd->numel() > 0);
  const bool write_out = out && x.numel() > 0;
  if (sets == 0 || (!write_out && !stats)) return ok_status();
  if (kernel == nullptr) return invalid_argument(what, ": no kernel was given");
  if (x.numel() > 0) {
    KILN_RETURN_IF_ERROR(check_data({&x}, what));
  }
  if (write_out) {
    KILN_RETURN_IF_ERROR(check_data({out}, what));
  }
  for (const Tensor* t : {params.weight, params.bias, running_mean, running_var, mean, rstd}) {
    if (t && t->numel() > 0) {
      KILN_RETURN_IF_ERROR(check_data({t}, what));
    }
  }
  const int64_t n = shape.rows * shape.plane;
  const unsigned threads =
      static_cast<unsigned>(std::clamp<int64_t>(pow2_at_least(n), 32, kThreads));
  void* xp = x.numel() > 0 ? x.raw_data() : nullptr;
  void* yp = write_out ? out->raw_data() : nullptr;
  void* wp = data_of(params.weight);
  void* bp = data_of(params.bias);
  void* rmp = data_of(running_mean);
  void* rvp = data_of(running_var);
  void* mp = data_of(mean);
  void* rp = data_of(rstd);
  GroupNormWalk s = shape;
  float e = static_cast<float>(eps);
  void* args[] = {&xp, &yp, &s, &wp, &bp, &rmp, &rvp, &mp, &rp, &e};
  return launch_kernel(kernel, dim3(grid_for(sets, 1)), dim3(threads), 0, stream, args);
}

// The statistics' strides (dims `hi` and `lo` of mean and rstd; lo only for 1-D ones): both
// tensors are walked with one set.
Status set_stat_strides(GroupNormWalk& s, const Tensor* mean, const Tensor* rstd,
                        std::string_view what) {
  const Tensor* first = mean ? mean : rstd;
  if (!first) return ok_status();
  if (mean && rstd && mean->strides() != rstd->strides()) {
    return invalid_argument(what, ": expected mean and rstd with the same strides, found ",
                            shape_to_string(mean->strides()), " and ",
                            shape_to_string(rstd->strides()));
  }
  if (first->dim() == 2) {
    s.stat_hi = first->strides()[0];
    s.stat_lo = first->strides()[1];
  } else {
    s.stat_lo = first->strides()[0];
  }
  return ok_status();
}

}  // namespace

std::string group_norm_kernel(ModuleSource& module, DType dtype, DType param, DType stats) {
  add_family(module, "group_norm.cuh", kGroupNormSource);
  const std::string name =
      str_cat("kiln_group_norm_", dtype_tag(dtype), "_", dtype_tag(param), "_", dtype_tag(stats));
  const std::string_view t = device_type_name(dtype), p = device_type_name(param),
                         s = device_type_name(stats);
  return add_entry(module, name, kThreads,
                   str_cat("const ", t, "* x, ", t, "* y, kiln_group_norm::Shape shape, const ", p,
                           "* w, const ", p, "* b, const ", p, "* running_mean, const ", p,
                           "* running_var, ", s, "* mean, ", s, "* rstd, float eps"),
                   str_cat("kiln_group_norm::group_norm<", t, ", ", p, ", ", s,
                           ">(x, y, shape, w, b, running_mean, running_var, mean, rstd, eps);"));
}

Result<GroupNormWalk> group_norm_walk(const Tensor& x, const ChannelParams& params,
                                      const Tensor* out, const Tensor* mean, const Tensor* rstd,
                                      int64_t groups) {
  constexpr std::string_view kWhat = "group norm";
  KILN_RETURN_IF_ERROR(check_common(x, out, kWhat));
  const int64_t batch = x.size(0), channels = x.size(1);
  if (groups <= 0 || channels % groups != 0) {
    return invalid_argument("group norm: expected the number of channels (", channels,
                            ") to be divisible by a positive number of groups, found ", groups);
  }
  KILN_RETURN_IF_ERROR(
      check_channel_tensors(x, {{params.weight, "weight"}, {params.bias, "bias"}}, kWhat).status());
  KILN_RETURN_IF_ERROR(check_stats(x, mean, rstd, {batch, groups}, kWhat));
  GroupNormWalk s;
  const int64_t per_group = channels / groups;
  s.blocks_hi = batch;
  s.blocks_lo = groups;
  s.rows = per_group;
  s.channel_lo = per_group;
  s.channel_row = 1;
  s.x_hi = x.strides()[0];
  s.x_lo = per_group * x.strides()[1];
  s.x_row = x.strides()[1];
  const Tensor& y = out ? *out : x;
  s.y_hi = y.strides()[0];
  s.y_lo = per_group * y.strides()[1];
  s.y_row = y.strides()[1];
  KILN_RETURN_IF_ERROR(set_plane(s, x, out, kWhat));
  KILN_RETURN_IF_ERROR(set_stat_strides(s, mean, rstd, kWhat));
  set_param_strides(s, params);
  set_order(s);
  return s;
}

Result<GroupNormWalk> batch_norm_batch_stats_walk(const Tensor& x, const ChannelParams& params,
                                                  const Tensor* out, const Tensor* mean,
                                                  const Tensor* invstd) {
  constexpr std::string_view kWhat = "batch norm";
  KILN_RETURN_IF_ERROR(check_common(x, out, kWhat));
  const int64_t channels = x.size(1);
  KILN_RETURN_IF_ERROR(
      check_channel_tensors(x, {{params.weight, "weight"}, {params.bias, "bias"}}, kWhat).status());
  KILN_RETURN_IF_ERROR(check_stats(x, mean, invstd, {channels}, kWhat));
  GroupNormWalk s;
  s.blocks_hi = 1;
  s.blocks_lo = channels;
  s.rows = x.size(0);
  s.channel_lo = 1;
  s.channel_row = 0;
  s.infinite_mean = 1;
  s.x_lo = x.strides()[1];
  s.x_row = x.strides()[0];
  const Tensor& y = out ? *out : x;
  s.y_lo = y.strides()[1];
  s.y_row = y.strides()[0];
  KILN_RETURN_IF_ERROR(set_plane(s, x, out, kWhat));
  KILN_RETURN_IF_ERROR(set_stat_strides(s, mean, invstd, kWhat));
  set_param_strides(s, params);
  set_order(s);
  return s;
}

Result<GroupNormWalk> instance_norm_running_walk(const Tensor& x, const ChannelParams& params,
                                                 const Tensor& running_mean,
                                                 const Tensor& running_var, const Tensor& out) {
  constexpr std::string_view kWhat = "instance norm";
  KILN_RETURN_IF_ERROR(check_common(x, &out, kWhat));
  KILN_RETURN_IF_ERROR(check_channel_tensors(x,
                                             {{params.weight, "weight"},
                                              {params.bias, "bias"},
                                              {&running_mean, "running_mean"},
                                              {&running_var, "running_var"}},
                                             kWhat)
                           .status());
  GroupNormWalk s;
  s.blocks_hi = x.size(0);
  s.blocks_lo = x.size(1);
  s.rows = 1;
  s.channel_lo = 1;
  s.x_hi = x.strides()[0];
  s.x_lo = x.strides()[1];
  s.y_hi = out.strides()[0];
  s.y_lo = out.strides()[1];
  KILN_RETURN_IF_ERROR(set_plane(s, x, &out, kWhat));
  set_param_strides(s, params);
  s.rm_stride = running_mean.strides()[0];
  s.rv_stride = running_var.strides()[0];
  set_order(s);
  return s;
}

Status launch_group_norm(cudaKernel_t kernel, const Tensor& x, const ChannelParams& params,
                         const Tensor* out, const Tensor* mean, const Tensor* rstd, int64_t groups,
                         double eps, cudaStream_t stream) {
  KILN_ASSIGN_OR_RETURN(GroupNormWalk walk, group_norm_walk(x, params, out, mean, rstd, groups));
  return launch_sets(kernel, x, params, nullptr, nullptr, out, mean, rstd, walk, eps, "group norm",
                     stream);
}

Status launch_batch_norm_batch_stats(cudaKernel_t kernel, const Tensor& x,
                                     const ChannelParams& params, const Tensor* out,
                                     const Tensor* mean, const Tensor* invstd, double eps,
                                     cudaStream_t stream) {
  KILN_ASSIGN_OR_RETURN(GroupNormWalk walk,
                        batch_norm_batch_stats_walk(x, params, out, mean, invstd));
  return launch_sets(kernel, x, params, nullptr, nullptr, out, mean, invstd, walk, eps,
                     "batch norm", stream);
}

Status launch_instance_norm_running(cudaKernel_t kernel, const Tensor& x,
                                    const ChannelParams& params, const Tensor& running_mean,
                                    const Tensor& running_var, const Tensor& out, double eps,
                                    cudaStream_t stream) {
  KILN_ASSIGN_OR_RETURN(GroupNormWalk walk,
                        instance_norm_running_walk(x, params, running_mean, running_var, out));
  return launch_sets(kernel, x, params, &running_mean, &running_var, &out, nullptr, nullptr, walk,
                     eps, "instance norm", stream);
}

}  // namespace kiln::cuda
