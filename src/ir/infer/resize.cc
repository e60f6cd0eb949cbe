// Shape inference for the upsample (resize) ops.
#include "ir/infer/resize.h"

#include <cmath>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

struct ResizeOp {
  OpKey key;
  ResizeMode mode;
  int spatial;
  bool vec;  // (input, output_size?, [align_corners,] scale_factors?) vs (.., output_size,
             // [align_corners,] scales...)
};

constexpr ResizeOp kResizeOps[] = {
    {OpKey::aten_upsample_nearest1d_vec, ResizeMode::kNearest, 1, true},
    {OpKey::aten_upsample_nearest2d_vec, ResizeMode::kNearest, 2, true},
    {OpKey::aten__upsample_nearest_exact1d_vec, ResizeMode::kNearestExact, 1, true},
    {OpKey::aten__upsample_nearest_exact2d_vec, ResizeMode::kNearestExact, 2, true},
    {OpKey::aten_upsample_linear1d_vec, ResizeMode::kLinear, 1, true},
    {OpKey::aten_upsample_bilinear2d_vec, ResizeMode::kLinear, 2, true},
    {OpKey::aten_upsample_nearest1d_default, ResizeMode::kNearest, 1, false},
    {OpKey::aten_upsample_nearest2d_default, ResizeMode::kNearest, 2, false},
    {OpKey::aten__upsample_nearest_exact1d_default, ResizeMode::kNearestExact, 1, false},
    {OpKey::aten__upsample_nearest_exact2d_default, ResizeMode::kNearestExact, 2, false},
    {OpKey::aten_upsample_linear1d_default, ResizeMode::kLinear, 1, false},
    {OpKey::aten_upsample_bilinear2d_default, ResizeMode::kLinear, 2, false},
};

const ResizeOp* find_resize_op(OpKey key) {
  for (const ResizeOp& op : kResizeOps) {
    if (op.key == key) return &op;
  }
  return nullptr;
}

Status infer_resize(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ResizeArgs args, resize_args(ctx));
  const Tensor& input = ctx.tensor(0);
  Shape out(input.sizes().begin(),
            input.sizes().end() - static_cast<int64_t>(args.output_size.size()));
  out.insert(out.end(), args.output_size.begin(), args.output_size.end());
  ctx.set_output(0, Tensor::meta(input.dtype(), std::move(out)));
  return ctx.error();
}

}  // namespace

Result<ResizeArgs> resize_args(OpContext& ctx) {
  const ResizeOp* op = find_resize_op(ctx.node().op);
  if (!op) return internal_error("not a resize op: ", op_name(ctx.node().op));
  const Tensor& input = ctx.tensor(0);
  const int k = op->spatial;
  if (input.dim() != k + 2) {
    return op_error(ctx, "expected a ", k + 2, "-d input (batch, channels and ", k,
                    " spatial dims), found ", input.description());
  }
  if (!is_floating(input.dtype())) {
    return op_error(ctx, "expected a floating-point input, found ", dtype_name(input.dtype()));
  }
  ResizeArgs args;
  args.mode = op->mode;
  const bool linear = op->mode == ResizeMode::kLinear;
  if (linear) args.align_corners = ctx.bool_arg(2);
  const size_t scale_arg = linear ? 3 : 2;
  auto output_size = ctx.optional_ints(1);
  if (op->vec) {
    auto factors = ctx.optional_floats(scale_arg);
    if (output_size.has_value() == factors.has_value()) {
      return op_error(ctx, "expected exactly one of output_size and scale_factors");
    }
    if (factors) {
      if (static_cast<int>(factors->size()) != k) {
        return op_error(ctx, "expected ", k, " scale factors, found ", factors->size());
      }
      output_size = Shape();
      for (int d = 0; d < k; ++d) {
        const double in = static_cast<double>(input.size(2 + d));
        output_size->push_back(static_cast<int64_t>(std::floor(in * (*factors)[d])));
        args.scales.push_back((*factors)[d]);
      }
    } else {
      args.scales.assign(k, std::nullopt);
    }
  } else {
    for (int d = 0; d < k; ++d) {
      auto s = ctx.optional_float(scale_arg + d);
      args.scales.push_back(s);
    }
  }
  KILN_RETURN_IF_ERROR(ctx.error());
  if (static_cast<int>(output_size->size()) != k) {
    return op_error(ctx, "expected an output_size of ", k, " dims, found ",
                    shape_to_string(*output_size));
  }
  for (int64_t s : *output_size) {
    if (s <= 0)
      return op_error(ctx, "output size must be positive, found ", shape_to_string(*output_size));
  }
  args.output_size = std::move(*output_size);
  return args;
}

namespace {

// grid_sampler_2d(input [N, C, H, W], grid [N, Ho, Wo, 2], interpolation_mode, padding_mode,
// align_corners) -> [N, C, Ho, Wo].
Status infer_grid_sampler_2d(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& grid = ctx.tensor(1);
  const int64_t interpolation = ctx.int_arg(2);
  const int64_t padding = ctx.int_arg(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (input.dim() != 4 || grid.dim() != 4 || grid.size(3) != 2 ||
      grid.size(0) != input.size(0)) {
    return op_error(ctx, "expected a 4-D input and a grid [N, H_out, W_out, 2] of its batch, "
                         "found input ", input.description(), " and grid ", grid.description());
  }
  if (!is_floating(input.dtype()) || grid.dtype() != input.dtype()) {
    return op_error(ctx, "expected a floating input and a grid of its dtype, found ",
                    input.description(), " and ", grid.description());
  }
  if (input.size(2) == 0 || input.size(3) == 0) {
    return op_error(ctx, "expected an input with non-empty spatial dims, found ",
                    input.description());
  }
  if (interpolation < 0 || interpolation > 2 || padding < 0 || padding > 2) {
    return op_error(ctx, "expected interpolation_mode and padding_mode in 0..2, found ",
                    interpolation, " and ", padding);
  }
  ctx.set_output(0, Tensor::meta(input.dtype(),
                                 {input.size(0), input.size(1), grid.size(1), grid.size(2)}));
  return ok_status();
}

}  // namespace

Status register_resize_inference(OpFunctionTable& table) {
  for (const ResizeOp& op : kResizeOps) KILN_RETURN_IF_ERROR(table.add(op.key, infer_resize));
  return table.add(OpKey::aten_grid_sampler_2d_default, infer_grid_sampler_2d);
}

}  // namespace kiln::ir
