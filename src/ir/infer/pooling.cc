// Shape and dtype inference for the pooling ops: max and average pooling (1-D to 3-D), adaptive
// average/max pooling, and the backward ops of 2-D pooling. Inputs are batched ([N, C, *spatial])
// or not ([C, *spatial]).
#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

struct Window {
  int64_t kernel, stride, padding, dilation;
};

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// PyTorch's pooling_output_shape: with ceil_mode the last window must start inside the input or
// its left padding.
int64_t pooled_size(int64_t in, const Window& w, bool ceil_mode) {
  const int64_t span = in + 2 * w.padding - w.dilation * (w.kernel - 1) - 1;
  int64_t out = floor_div(span + (ceil_mode ? w.stride - 1 : 0), w.stride) + 1;
  if (ceil_mode && (out - 1) * w.stride >= in + w.padding) --out;
  return out;
}

// Reads an `int[N]` argument: N values, or one value repeated (also `allow_empty`: [] -> nullopt).
Result<std::vector<int64_t>> window_arg(OpContext& ctx, size_t arg, size_t n, const char* name,
                                        bool allow_empty) {
  std::vector<int64_t> v = ctx.ints(arg);
  if (v.empty() && allow_empty) return v;
  if (v.size() == 1) v.resize(n, v[0]);
  if (v.size() != n) {
    return op_error(ctx, "expected ", name, " to be ", allow_empty ? "empty, " : "",
                    n == 1 ? "a single int" : "a single int or " + std::to_string(n) + " ints",
                    ", found ", shape_to_string(ctx.ints(arg)));
  }
  return v;
}

// The spatial windows of a max/avg pool, validated: kernel_size, stride and padding from argument
// `first` on. `dilation_arg` < 0: no dilation argument.
Result<std::vector<Window>> parse_windows(OpContext& ctx, size_t first, size_t n,
                                          int dilation_arg) {
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> kernel,
                        window_arg(ctx, first, n, "kernel_size", false));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> stride, window_arg(ctx, first + 1, n, "stride", true));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> padding,
                        window_arg(ctx, first + 2, n, "padding", false));
  std::vector<int64_t> dilation(n, 1);
  if (dilation_arg >= 0) {
    KILN_ASSIGN_OR_RETURN(dilation,
                          window_arg(ctx, static_cast<size_t>(dilation_arg), n, "dilation", false));
  }
  if (stride.empty()) stride = kernel;
  std::vector<Window> windows;
  for (size_t i = 0; i < n; ++i) {
    const Window w{kernel[i], stride[i], padding[i], dilation[i]};
    if (w.kernel <= 0) return op_error(ctx, "expected kernel_size > 0, found ", w.kernel);
    if (w.stride <= 0) return op_error(ctx, "expected stride > 0, found ", w.stride);
    if (w.dilation <= 0) return op_error(ctx, "expected dilation > 0, found ", w.dilation);
    if (w.padding < 0) return op_error(ctx, "expected padding >= 0, found ", w.padding);
    // PyTorch checks padding against the effective (dilated) kernel in one place and against the
    // plain kernel in another; the second is the stricter.
    if (w.padding > w.kernel / 2) {
      return op_error(ctx, "expected padding to be at most half of kernel_size, found padding=",
                      w.padding, " with kernel_size=", w.kernel);
    }
    windows.push_back(w);
  }
  return windows;
}

// Which dims must be non-empty differs between PyTorch's pooling ops (an empty batch is fine).
enum class NonEmpty {
  kAllButBatch,  // max/avg pool: C and the spatial dims
  kFromDim1,     // adaptive max pool: dims 1.. (so an unbatched input may have no channels)
  kSpatial,      // adaptive avg pool: the spatial dims only
};

// Checks the rank (n spatial dims after C, and an optional batch dim before) and empty dims.
Status check_pool_input(OpContext& ctx, const Tensor& self, size_t n, NonEmpty rule) {
  const int64_t rank = self.dim(), spatial = static_cast<int64_t>(n);
  if (rank != spatial + 1 && rank != spatial + 2) {
    return op_error(ctx, "expected a ", spatial + 1, "-D (unbatched) or ", spatial + 2,
                    "-D (batched) input, found shape ", shape_to_string(self.sizes()));
  }
  const bool batched = rank == spatial + 2;
  const int64_t from = rule == NonEmpty::kSpatial    ? rank - spatial
                       : rule == NonEmpty::kFromDim1 ? 1
                                                     : (batched ? 1 : 0);
  for (int64_t d = from; d < rank; ++d) {
    if (self.size(d) == 0) {
      return op_error(ctx, "expected non-empty non-batch dims, found shape ",
                      shape_to_string(self.sizes()), " with dim ", d, " empty");
    }
  }
  return ok_status();
}

// The output shape of a max or avg pool over the last `n` dims of the tensor at argument `self`,
// checked; the window arguments follow it in the forward op's order (the backward ops put
// grad_output first and shift them all by one).
Result<Shape> pooled_shape(OpContext& ctx, size_t self_arg, size_t n, bool is_max) {
  const Tensor& self = ctx.tensor(self_arg);
  KILN_RETURN_IF_ERROR(check_pool_input(ctx, self, n, NonEmpty::kAllButBatch));
  const int dilation_arg = is_max ? static_cast<int>(self_arg) + 4 : -1;
  KILN_ASSIGN_OR_RETURN(std::vector<Window> windows,
                        parse_windows(ctx, self_arg + 1, n, dilation_arg));
  const bool ceil_mode = ctx.bool_arg(self_arg + (is_max ? 5 : 4));
  if (!is_max && n >= 2) {
    if (auto divisor = ctx.optional_int(self_arg + 6); divisor && *divisor == 0) {
      return op_error(ctx, "expected divisor_override to be non-zero");
    }
  }
  Shape out = self.sizes();
  const size_t first = out.size() - n;
  for (size_t i = 0; i < n; ++i) {
    out[first + i] = pooled_size(self.size(first + i), windows[i], ceil_mode);
  }
  for (size_t i = 0; i < n; ++i) {
    if (out[first + i] < 1) {
      return op_error(ctx, "the output is too small: input ", shape_to_string(self.sizes()),
                      " pools to ", shape_to_string(out));
    }
  }
  return out;
}

// Max pool (values and int64 indices) or avg pool over the last `n` dims.
Status pool(OpContext& ctx, size_t n, bool is_max, bool with_indices) {
  const DType dtype = ctx.tensor(0).dtype();
  // PyTorch's CPU max_pool1d (without indices) has a floating-point-only kernel.
  const bool floating_only = is_max && n == 1 && !with_indices;
  if (dtype == DType::kBool || (!is_max && !is_floating(dtype) && dtype != DType::kInt64) ||
      (floating_only && !is_floating(dtype))) {
    return op_error(ctx, is_max ? "max" : "avg", " pooling does not support dtype ",
                    dtype_name(dtype));
  }
  KILN_ASSIGN_OR_RETURN(Shape out, pooled_shape(ctx, 0, n, is_max));
  ctx.set_output(0, Tensor::meta(dtype, out));
  if (with_indices) ctx.set_output(1, Tensor::meta(DType::kInt64, out));
  return ctx.error();
}

Status max_pool2d_with_indices(OpContext& ctx) {
  return pool(ctx, 2, true, true);
}
Status max_pool2d(OpContext& ctx) {
  return pool(ctx, 2, true, false);
}
Status max_pool1d_with_indices(OpContext& ctx) {
  return pool(ctx, 1, true, true);
}
Status max_pool1d(OpContext& ctx) {
  return pool(ctx, 1, true, false);
}
Status avg_pool2d(OpContext& ctx) {
  return pool(ctx, 2, false, false);
}
Status avg_pool1d(OpContext& ctx) {
  return pool(ctx, 1, false, false);
}
Status max_pool3d_with_indices(OpContext& ctx) {
  return pool(ctx, 3, true, true);
}
Status avg_pool3d(OpContext& ctx) {
  return pool(ctx, 3, false, false);
}

// `what` (grad_output or indices) must have the pooled shape `want`.
Status check_pooled(OpContext& ctx, const Tensor& t, const char* what, const Shape& want) {
  if (t.sizes() != want) {
    return op_error(ctx, "expected ", what, " of shape ", shape_to_string(want), ", found ",
                    shape_to_string(t.sizes()));
  }
  return ok_status();
}

// A backward op's grad_output (argument 0) must have self's (argument 1) dtype.
Status check_grad_dtype(OpContext& ctx) {
  const DType grad = ctx.tensor(0).dtype(), self = ctx.tensor(1).dtype();
  if (grad != self) {
    return op_error(ctx, "expected grad_output of dtype ", dtype_name(self), ", found ",
                    dtype_name(grad));
  }
  return ok_status();
}

// avg_pool2d_backward and max_pool2d_with_indices_backward: grad_input has self's shape and dtype.
Status pool_backward(OpContext& ctx, size_t n, bool is_max) {
  const Tensor& self = ctx.tensor(1);
  const DType dtype = self.dtype();
  if (!is_floating(dtype) && (is_max || dtype != DType::kInt64)) {
    return op_error(ctx, is_max ? "max" : "avg", " pooling backward does not support dtype ",
                    dtype_name(dtype));
  }
  KILN_RETURN_IF_ERROR(check_grad_dtype(ctx));
  KILN_ASSIGN_OR_RETURN(Shape out, pooled_shape(ctx, 1, n, is_max));
  KILN_RETURN_IF_ERROR(check_pooled(ctx, ctx.tensor(0), "grad_output", out));
  if (is_max) {
    const Tensor& indices = ctx.tensor(7);
    if (indices.dtype() != DType::kInt64) {
      return op_error(ctx, "expected int64 indices, found ", dtype_name(indices.dtype()));
    }
    KILN_RETURN_IF_ERROR(check_pooled(ctx, indices, "indices", out));
  }
  ctx.set_output(0, Tensor::meta(dtype, self.sizes()));
  return ctx.error();
}

Status avg_pool2d_backward(OpContext& ctx) {
  return pool_backward(ctx, 2, false);
}
Status max_pool2d_with_indices_backward(OpContext& ctx) {
  return pool_backward(ctx, 2, true);
}

// Adaptive pooling to `output_size` over the last `n` dims; floating inputs only.
Status adaptive(OpContext& ctx, size_t n, bool is_max) {
  const Tensor& self = ctx.tensor(0);
  // PyTorch's 3-D adaptive avg pool checks all non-batch dims, its 2-D and 1-D only the spatial.
  KILN_RETURN_IF_ERROR(
      check_pool_input(ctx, self, n, is_max || n == 3 ? NonEmpty::kFromDim1 : NonEmpty::kSpatial));
  if (!is_floating(self.dtype())) {
    return op_error(ctx, "expected a floating point input, found ", dtype_name(self.dtype()));
  }
  const std::vector<int64_t> size = ctx.ints(1);
  if (size.size() != n) {
    return op_error(ctx, "expected output_size to have ", n, " element", n == 1 ? "" : "s",
                    ", found ", shape_to_string(size));
  }
  Shape out = self.sizes();
  for (size_t i = 0; i < n; ++i) {
    if (size[i] < 0)
      return op_error(ctx, "expected output_size >= 0, found ", shape_to_string(size));
    out[out.size() - n + i] = size[i];
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), out));
  if (is_max) ctx.set_output(1, Tensor::meta(DType::kInt64, out));
  return ctx.error();
}

Status adaptive_avg_pool2d(OpContext& ctx) {
  return adaptive(ctx, 2, false);
}
Status adaptive_avg_pool1d(OpContext& ctx) {
  return adaptive(ctx, 1, false);
}
Status adaptive_max_pool2d(OpContext& ctx) {
  return adaptive(ctx, 2, true);
}
Status adaptive_max_pool1d(OpContext& ctx) {
  return adaptive(ctx, 1, true);
}
Status adaptive_avg_pool3d(OpContext& ctx) {
  return adaptive(ctx, 3, false);
}

// _adaptive_avg_pool2d_backward(grad_output, self): grad_output's spatial size is the pooled size
// (any, as in PyTorch); its other dims must be self's.
Status adaptive_avg_pool2d_backward(OpContext& ctx) {
  const Tensor &grad = ctx.tensor(0), &self = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(check_pool_input(ctx, grad, 2, NonEmpty::kFromDim1));
  KILN_RETURN_IF_ERROR(check_pool_input(ctx, self, 2, NonEmpty::kSpatial));
  if (!is_floating(self.dtype())) {
    return op_error(ctx, "expected a floating point input, found ", dtype_name(self.dtype()));
  }
  KILN_RETURN_IF_ERROR(check_grad_dtype(ctx));
  const auto leading = [](const Tensor& t) {
    return std::span(t.sizes()).first(t.sizes().size() - 2);
  };
  if (self.dim() != grad.dim() || !std::ranges::equal(leading(self), leading(grad))) {
    return op_error(ctx, "expected grad_output of shape ", shape_to_string(leading(self)),
                    " + [H, W], found ", shape_to_string(grad.sizes()));
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ctx.error();
}

}  // namespace

Status register_pooling_inference(OpFunctionTable& table) {
  return add_all(
      table,
      {
          {OpKey::aten_max_pool2d_with_indices_default, max_pool2d_with_indices},
          {OpKey::aten_max_pool2d_default, max_pool2d},
          {OpKey::aten_max_pool1d_with_indices_default, max_pool1d_with_indices},
          {OpKey::aten_max_pool1d_default, max_pool1d},
          {OpKey::aten_avg_pool2d_default, avg_pool2d},
          {OpKey::aten_avg_pool1d_default, avg_pool1d},
          {OpKey::aten__adaptive_avg_pool2d_default, adaptive_avg_pool2d},
          {OpKey::aten_adaptive_avg_pool2d_default, adaptive_avg_pool2d},
          {OpKey::aten_adaptive_avg_pool1d_default, adaptive_avg_pool1d},
          {OpKey::aten_adaptive_max_pool2d_default, adaptive_max_pool2d},
          {OpKey::aten_adaptive_max_pool1d_default, adaptive_max_pool1d},
          {OpKey::aten_max_pool3d_with_indices_default, max_pool3d_with_indices},
          {OpKey::aten_avg_pool3d_default, avg_pool3d},
          {OpKey::aten__adaptive_avg_pool3d_default, adaptive_avg_pool3d},
          {OpKey::aten_avg_pool2d_backward_default, avg_pool2d_backward},
          {OpKey::aten__adaptive_avg_pool2d_backward_default, adaptive_avg_pool2d_backward},
          {OpKey::aten_max_pool2d_with_indices_backward_default, max_pool2d_with_indices_backward},
      });
}

}  // namespace kiln::ir
