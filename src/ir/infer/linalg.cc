// Shape and dtype inference for the linalg ops: matrix products (mm, addmm, bmm, baddbmm, matmul,
// dot, mv, addmv, linear), convolutions (convolution, _convolution, conv{1,2,3}d,
// conv_transpose{1,2,3}d) and p-norm distances (_pdist_forward, _cdist_forward). PyTorch requires every operand of these ops to share one dtype and has
// no bool kernels for them; kiln has no integer kernel for transposed convolution (PyTorch's CPU
// has one), so inference answers Unsupported for it and support analysis declines the node.
#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

Status check_rank(OpContext& ctx, const Tensor& t, std::string_view name, int64_t rank) {
  if (t.dim() != rank) {
    return op_error(ctx, "expected ", name, " to be ", rank, "-D, found ", t.description());
  }
  return ok_status();
}

Status check_same_dtype(OpContext& ctx, const Tensor& a, std::string_view a_name, const Tensor& b,
                        std::string_view b_name) {
  if (a.dtype() != b.dtype()) {
    return op_error(ctx, "expected ", a_name, " and ", b_name, " to have the same dtype, found ",
                    dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  }
  return ok_status();
}

Status check_not_bool(OpContext& ctx, DType dtype) {
  if (dtype == DType::kBool) return op_error(ctx, "expected a numeric dtype, found bool");
  return ok_status();
}

// The inner dims of a product: `a_name` has `a_cols` columns, `b_name` `b_rows` rows.
Status check_inner(OpContext& ctx, const Tensor& a, std::string_view a_name, int64_t a_cols,
                   const Tensor& b, std::string_view b_name, int64_t b_rows) {
  if (a_cols != b_rows) {
    return op_error(ctx, "expected ", b_name, " with ", b_rows, " rows to match ", a_name, "'s ",
                    a_cols, " columns, found ", a_name, " ", a.description(), " and ", b_name, " ",
                    b.description());
  }
  return ok_status();
}

// `bias` must expand to `shape` (PyTorch's expand: no more dims, each equal or 1).
Status check_expandable(OpContext& ctx, const Tensor& bias, std::string_view name,
                        const Shape& shape) {
  bool ok = bias.dim() <= static_cast<int64_t>(shape.size());
  for (int64_t i = 0; ok && i < bias.dim(); ++i) {
    const int64_t s = bias.size(bias.dim() - 1 - i);
    ok = s == 1 || s == shape[shape.size() - 1 - i];
  }
  if (!ok) {
    return op_error(ctx, "expected ", name, " to broadcast to the product's shape ",
                    shape_to_string(shape), ", found ", bias.description());
  }
  return ok_status();
}

// mm, bmm and the product part of addmm / baddbmm: `rank` is 2 or 3.
Result<Shape> product_shape(OpContext& ctx, const Tensor& a, const Tensor& b, int64_t rank) {
  const char* a_name = rank == 2 ? "mat1" : "batch1";
  const char* b_name = rank == 2 ? "mat2" : "batch2";
  KILN_RETURN_IF_ERROR(check_rank(ctx, a, a_name, rank));
  KILN_RETURN_IF_ERROR(check_rank(ctx, b, b_name, rank));
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, a, a_name, b, b_name));
  KILN_RETURN_IF_ERROR(check_not_bool(ctx, a.dtype()));
  if (rank == 3 && a.size(0) != b.size(0)) {
    return op_error(ctx, "expected batch2 to have batch size ", a.size(0), ", found ",
                    b.description(), " for batch1 ", a.description());
  }
  KILN_RETURN_IF_ERROR(check_inner(ctx, a, a_name, a.size(rank - 1), b, b_name, b.size(rank - 2)));
  if (rank == 2) return Shape{a.size(0), b.size(1)};
  return Shape{a.size(0), a.size(1), b.size(2)};
}

// mm, bmm (rank 2 or 3, args self, mat2).
template <int kRank>
Status infer_product(OpContext& ctx) {
  const Tensor& a = ctx.tensor(0);
  const Tensor& b = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Shape shape, product_shape(ctx, a, b, kRank));
  ctx.set_output(0, Tensor::meta(a.dtype(), std::move(shape)));
  return ok_status();
}

// addmm, baddbmm: (self, mat1, mat2, beta, alpha).
template <int kRank>
Status infer_add_product(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& a = ctx.tensor(1);
  const Tensor& b = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Shape shape, product_shape(ctx, a, b, kRank));
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, self, "self", a, kRank == 2 ? "mat1" : "batch1"));
  KILN_RETURN_IF_ERROR(check_expandable(ctx, self, "self", shape));
  ctx.set_output(0, Tensor::meta(a.dtype(), std::move(shape)));
  return ok_status();
}

Status infer_dot(OpContext& ctx) {
  const Tensor& a = ctx.tensor(0);
  const Tensor& b = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_rank(ctx, a, "self", 1));
  KILN_RETURN_IF_ERROR(check_rank(ctx, b, "other", 1));
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, a, "self", b, "other"));
  KILN_RETURN_IF_ERROR(check_not_bool(ctx, a.dtype()));
  if (a.size(0) != b.size(0)) {
    return op_error(ctx, "expected vectors of the same length, found ", a.description(), " and ",
                    b.description());
  }
  ctx.set_output(0, Tensor::meta(a.dtype(), {}));
  return ok_status();
}

Result<Shape> mv_shape(OpContext& ctx, const Tensor& mat, const Tensor& vec) {
  KILN_RETURN_IF_ERROR(check_rank(ctx, mat, "mat", 2));
  KILN_RETURN_IF_ERROR(check_rank(ctx, vec, "vec", 1));
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, mat, "mat", vec, "vec"));
  KILN_RETURN_IF_ERROR(check_not_bool(ctx, mat.dtype()));
  KILN_RETURN_IF_ERROR(check_inner(ctx, mat, "mat", mat.size(1), vec, "vec", vec.size(0)));
  return Shape{mat.size(0)};
}

Status infer_mv(OpContext& ctx) {
  const Tensor& mat = ctx.tensor(0);
  const Tensor& vec = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Shape shape, mv_shape(ctx, mat, vec));
  ctx.set_output(0, Tensor::meta(mat.dtype(), std::move(shape)));
  return ok_status();
}

Status infer_addmv(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& mat = ctx.tensor(1);
  const Tensor& vec = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Shape shape, mv_shape(ctx, mat, vec));
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, self, "self", mat, "mat"));
  KILN_RETURN_IF_ERROR(check_expandable(ctx, self, "self", shape));
  ctx.set_output(0, Tensor::meta(mat.dtype(), std::move(shape)));
  return ok_status();
}

// torch.matmul: 1-D operands gain a unit dim (removed again from the result); batch dims broadcast.
Status infer_matmul(OpContext& ctx) {
  const Tensor& a = ctx.tensor(0);
  const Tensor& b = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (a.dim() == 0 || b.dim() == 0) {
    return op_error(ctx, "expected operands of at least 1 dim, found ", a.description(), " and ",
                    b.description());
  }
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, a, "self", b, "other"));
  KILN_RETURN_IF_ERROR(check_not_bool(ctx, a.dtype()));
  const Shape& as = a.sizes();
  const Shape& bs = b.sizes();
  const int64_t k_a = as.back();
  const int64_t k_b = b.dim() == 1 ? bs[0] : bs[bs.size() - 2];
  KILN_RETURN_IF_ERROR(check_inner(ctx, a, "self", k_a, b, "other", k_b));
  const std::span<const int64_t> a_batch(as.data(), as.size() - std::min<size_t>(as.size(), 2));
  const std::span<const int64_t> b_batch(bs.data(), bs.size() - std::min<size_t>(bs.size(), 2));
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(a_batch, b_batch), op_name(ctx.node().op),
                        ": batch dims");
  if (a.dim() >= 2) shape.push_back(as[as.size() - 2]);
  if (b.dim() >= 2) shape.push_back(bs.back());
  ctx.set_output(0, Tensor::meta(a.dtype(), std::move(shape)));
  return ok_status();
}

// linear(input, weight, bias?): input [..., k] times weight [n, k] (or [k]) transposed, plus bias.
Status infer_linear(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& weight = ctx.tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (input.dim() == 0)
    return op_error(ctx, "expected input of at least 1 dim, found a 0-D tensor");
  if (weight.dim() != 1 && weight.dim() != 2) {
    return op_error(ctx, "expected weight to be 1-D or 2-D, found ", weight.description());
  }
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, input, "input", weight, "weight"));
  KILN_RETURN_IF_ERROR(check_not_bool(ctx, input.dtype()));
  const int64_t k = input.sizes().back();
  KILN_RETURN_IF_ERROR(
      check_inner(ctx, input, "input", k, weight, "weight^T", weight.sizes().back()));
  Shape shape(input.sizes().begin(), input.sizes().end() - 1);
  if (weight.dim() == 2) shape.push_back(weight.size(0));
  if (bias) {
    KILN_RETURN_IF_ERROR(check_same_dtype(ctx, input, "input", *bias, "bias"));
    KILN_RETURN_IF_ERROR(check_expandable(ctx, *bias, "bias", shape));
  }
  ctx.set_output(0, Tensor::meta(input.dtype(), std::move(shape)));
  return ok_status();
}

// ---- convolution
// ---------------------------------------------------------------------------------

struct ConvArgs {
  std::vector<int64_t> stride, padding, dilation, output_padding;
  bool transposed = false;
  int64_t groups = 1;
};

// A parameter list of 1 or `spatial` values, expanded to `spatial`.
Result<std::vector<int64_t>> expand_param(OpContext& ctx, std::vector<int64_t> values,
                                          const char* name, int64_t spatial, int64_t min) {
  if (values.size() == 1) values.assign(spatial, values[0]);
  if (static_cast<int64_t>(values.size()) != spatial) {
    return op_error(ctx, "expected ", name, " to have 1 or ", spatial, " values, found ",
                    shape_to_string(values));
  }
  for (int64_t v : values) {
    if (v < min) {
      return op_error(ctx, "expected every ", name, " value to be at least ", min, ", found ",
                      shape_to_string(values));
    }
  }
  return values;
}

Status check_conv_channels(OpContext& ctx, const Tensor& input, const Tensor& weight,
                           const ConvArgs& args) {
  const int64_t w0 = weight.size(0);
  if (w0 < args.groups || w0 % args.groups != 0) {
    return op_error(ctx, "expected weight dim 0 to be a positive multiple of groups=", args.groups,
                    ", found weight ", weight.description());
  }
  const int64_t expected = args.transposed ? w0 : weight.size(1) * args.groups;
  if (input.size(1) != expected) {
    return op_error(ctx, "expected input with ", expected, " channels for weight ",
                    weight.description(), " and groups=", args.groups, ", found input ",
                    input.description());
  }
  return ok_status();
}

Status check_conv_dtypes(OpContext& ctx, const Tensor& input, const Tensor& weight,
                         const Tensor* bias, bool transposed) {
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, input, "input", weight, "weight"));
  if (bias) KILN_RETURN_IF_ERROR(check_same_dtype(ctx, input, "input", *bias, "bias"));
  KILN_RETURN_IF_ERROR(check_not_bool(ctx, input.dtype()));
  if (transposed && !is_floating(input.dtype())) {
    return op_unsupported(ctx, "a transposed convolution of ", dtype_name(input.dtype()),
                          " (kiln's kernels take floating dtypes)");
  }
  return ok_status();
}

// The spatial output size of one dim.
Result<int64_t> conv_out_size(OpContext& ctx, const ConvArgs& a, size_t d, int64_t in,
                              int64_t kernel) {
  const int64_t span = a.dilation[d] * (kernel - 1) + 1;
  if (a.transposed) {
    if (a.output_padding[d] >= a.stride[d] && a.output_padding[d] >= a.dilation[d]) {
      return op_error(ctx,
                      "expected output_padding to be smaller than the stride or the dilation, "
                      "found output_padding ",
                      shape_to_string(a.output_padding), ", stride ", shape_to_string(a.stride),
                      " and dilation ", shape_to_string(a.dilation));
    }
    const int64_t out = (in - 1) * a.stride[d] - 2 * a.padding[d] + span + a.output_padding[d];
    if (out < 0) {
      return op_error(ctx, "spatial dim ", d, ": input size ", in, " gives a negative output size ",
                      out);
    }
    return out;
  }
  if (in + 2 * a.padding[d] < span) {
    return op_error(ctx, "spatial dim ", d, ": expected the padded input size ",
                    in + 2 * a.padding[d], " to be at least the dilated kernel size ", span);
  }
  return (in + 2 * a.padding[d] - span) / a.stride[d] + 1;
}

// The output shape of a batched convolution (input and weight of the same rank, 3 to 5).
Result<Shape> conv_shape(OpContext& ctx, const Tensor& input, const Tensor& weight,
                         const Tensor* bias, ConvArgs& args) {
  if (weight.dim() < 3 || weight.dim() > 5) {
    return op_error(ctx, "expected a 3-D, 4-D or 5-D weight, found ", weight.description());
  }
  if (input.dim() != weight.dim()) {
    return op_error(ctx, "expected a ", weight.dim(), "-D input for weight ", weight.description(),
                    ", found input ", input.description());
  }
  KILN_RETURN_IF_ERROR(check_conv_dtypes(ctx, input, weight, bias, args.transposed));
  const int64_t spatial = weight.dim() - 2;
  KILN_ASSIGN_OR_RETURN(args.stride, expand_param(ctx, args.stride, "stride", spatial, 1));
  KILN_ASSIGN_OR_RETURN(args.padding, expand_param(ctx, args.padding, "padding", spatial, 0));
  KILN_ASSIGN_OR_RETURN(args.dilation, expand_param(ctx, args.dilation, "dilation", spatial, 1));
  KILN_ASSIGN_OR_RETURN(args.output_padding,
                        expand_param(ctx, args.output_padding, "output_padding", spatial, 0));
  if (args.groups < 1) return op_error(ctx, "expected groups >= 1, found ", args.groups);
  KILN_RETURN_IF_ERROR(check_conv_channels(ctx, input, weight, args));
  for (int64_t d = 2; d < weight.dim(); ++d) {
    if (weight.size(d) < 1)
      return op_error(ctx, "expected a non-empty kernel, found weight ", weight.description());
  }
  const int64_t out_channels = args.transposed ? weight.size(1) * args.groups : weight.size(0);
  if (bias && (bias->dim() != 1 || bias->size(0) != out_channels)) {
    return op_error(ctx, "expected a 1-D bias of ", out_channels, " elements, found ",
                    bias->description());
  }
  // PyTorch gives an input without channels an output without channels (it multiplies the empty
  // input by the weight instead of convolving).
  Shape shape{input.size(0), !args.transposed && input.size(1) == 0 ? 0 : out_channels};
  for (int64_t d = 0; d < spatial; ++d) {
    KILN_ASSIGN_OR_RETURN(int64_t out,
                          conv_out_size(ctx, args, d, input.size(d + 2), weight.size(d + 2)));
    shape.push_back(out);
  }
  return shape;
}

// convolution / _convolution: (input, weight, bias?, stride, padding, dilation, transposed,
// output_padding, groups, ...).
Status infer_convolution(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& weight = ctx.tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  ConvArgs args{ctx.ints(3), ctx.ints(4),     ctx.ints(5),
                ctx.ints(7), ctx.bool_arg(6), ctx.int_arg(8)};
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Shape shape, conv_shape(ctx, input, weight, bias, args));
  ctx.set_output(0, Tensor::meta(input.dtype(), std::move(shape)));
  return ok_status();
}

// convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
// transposed, output_padding, groups, output_mask) -> (grad_input, grad_weight, grad_bias): the
// shapes of input, weight and [out_channels], each only where output_mask asks for it (PyTorch
// returns None for the others, which the program does not name).
Status infer_convolution_backward(OpContext& ctx) {
  const Tensor& grad_output = ctx.tensor(0);
  const Tensor& input = ctx.tensor(1);
  const Tensor& weight = ctx.tensor(2);
  ConvArgs args{ctx.ints(4), ctx.ints(5),     ctx.ints(6),
                ctx.ints(8), ctx.bool_arg(7), ctx.int_arg(9)};
  KILN_RETURN_IF_ERROR(ctx.error());
  const auto* mask = ctx.node().args.size() > 10
                         ? std::get_if<std::vector<bool>>(&ctx.node().args[10])
                         : nullptr;
  if (!mask || mask->size() != 3) {
    return op_error(ctx, "expected output_mask to be a list of 3 bools");
  }
  if (!is_floating(input.dtype())) {
    return op_unsupported(ctx, "gradients of ", dtype_name(input.dtype()),
                          " (kiln's kernel takes floating dtypes)");
  }
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, input, "input", grad_output, "grad_output"));
  KILN_ASSIGN_OR_RETURN(Shape shape, conv_shape(ctx, input, weight, nullptr, args));
  if (grad_output.sizes() != shape) {
    return op_error(ctx, "expected grad_output of shape ", shape_to_string(shape),
                    " (the convolution's output), found ", grad_output.description());
  }
  if ((*mask)[0]) ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  if ((*mask)[1]) ctx.set_output(1, Tensor::meta(weight.dtype(), weight.sizes()));
  if ((*mask)[2]) ctx.set_output(2, Tensor::meta(grad_output.dtype(), {grad_output.size(1)}));
  return ok_status();
}

// conv{1,2,3}d (and conv_transpose) take an unbatched input too: one dim less than the weight.
Status infer_conv_unbatched(OpContext& ctx, ConvArgs args) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& weight = ctx.tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  const bool unbatched = input.dim() == weight.dim() - 1;
  Tensor batched = input;
  if (unbatched) {
    Shape sizes = input.sizes();
    sizes.insert(sizes.begin(), 1);
    batched = Tensor::meta(input.dtype(), std::move(sizes));
  }
  KILN_ASSIGN_OR_RETURN(Shape shape, conv_shape(ctx, batched, weight, bias, args));
  if (unbatched) shape.erase(shape.begin());
  ctx.set_output(0, Tensor::meta(input.dtype(), std::move(shape)));
  return ok_status();
}

// conv{1,2,3}d: (input, weight, bias?, stride, padding, dilation, groups).
Status infer_conv_nd(OpContext& ctx) {
  return infer_conv_unbatched(
      ctx, ConvArgs{ctx.ints(3), ctx.ints(4), ctx.ints(5), {0}, false, ctx.int_arg(6)});
}

// conv_transpose{1,2,3}d: (input, weight, bias?, stride, padding, output_padding, groups,
// dilation).
Status infer_conv_transpose_nd(OpContext& ctx) {
  return infer_conv_unbatched(
      ctx, ConvArgs{ctx.ints(3), ctx.ints(4), ctx.ints(7), ctx.ints(5), true, ctx.int_arg(6)});
}

Status check_floating_distance(OpContext& ctx, const Tensor& x, double p) {
  if (!is_floating(x.dtype())) {
    return op_error(ctx, "expected a floating tensor, found ", x.description());
  }
  if (!(p >= 0)) return op_error(ctx, "expected a non-negative p, found ", p);
  return ok_status();
}

// _pdist_forward(self [n, m], p): the n(n-1)/2 distances between its rows.
Status infer_pdist(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const double p = ctx.float_arg(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_rank(ctx, self, "self", 2));
  KILN_RETURN_IF_ERROR(check_floating_distance(ctx, self, p));
  const int64_t n = self.size(0);
  ctx.set_output(0, Tensor::meta(self.dtype(), {n * (n - 1) / 2}));
  return ctx.error();
}

// _cdist_forward(x1 [*, P, M], x2 [*, R, M], p, compute_mode) -> [broadcast(*), P, R].
Status infer_cdist(OpContext& ctx) {
  const Tensor& x1 = ctx.tensor(0);
  const Tensor& x2 = ctx.tensor(1);
  const double p = ctx.float_arg(2);
  const int64_t mode = ctx.optional_int(3).value_or(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (x1.dim() < 2 || x2.dim() < 2) {
    return op_error(ctx, "expected x1 and x2 of at least 2 dims, found ", x1.description(),
                    " and ", x2.description());
  }
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, x1, "x1", x2, "x2"));
  KILN_RETURN_IF_ERROR(check_floating_distance(ctx, x1, p));
  const int64_t rows1 = x1.size(x1.dim() - 2), rows2 = x2.size(x2.dim() - 2);
  if (x1.size(x1.dim() - 1) != x2.size(x2.dim() - 1)) {
    return op_error(ctx, "expected x1 and x2 with the same number of columns, found ",
                    x1.description(), " and ", x2.description());
  }
  if (mode < 0 || mode > 2) return op_error(ctx, "expected compute_mode 0, 1 or 2, found ", mode);
  const Shape b1(x1.sizes().begin(), x1.sizes().end() - 2);
  const Shape b2(x2.sizes().begin(), x2.sizes().end() - 2);
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(b1, b2), op_name(ctx.node().op),
                        " (node '", ctx.node().name, "'): batch dims");
  shape.push_back(rows1);
  shape.push_back(rows2);
  ctx.set_output(0, Tensor::meta(x1.dtype(), std::move(shape)));
  return ctx.error();
}

}  // namespace

Status register_linalg_inference(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_mm_default, infer_product<2>},
                            {OpKey::aten_bmm_default, infer_product<3>},
                            {OpKey::aten_addmm_default, infer_add_product<2>},
                            {OpKey::aten_baddbmm_default, infer_add_product<3>},
                            {OpKey::aten_dot_default, infer_dot},
                            {OpKey::aten_vdot_default, infer_dot},
                            {OpKey::aten_mv_default, infer_mv},
                            {OpKey::aten_addmv_default, infer_addmv},
                            {OpKey::aten_matmul_default, infer_matmul},
                            {OpKey::aten_linear_default, infer_linear},
                            {OpKey::aten_convolution_default, infer_convolution},
                            {OpKey::aten__convolution_default, infer_convolution},
                            {OpKey::aten_convolution_backward_default,
                             infer_convolution_backward},
                            {OpKey::aten_conv1d_default, infer_conv_nd},
                            {OpKey::aten_conv2d_default, infer_conv_nd},
                            {OpKey::aten_conv3d_default, infer_conv_nd},
                            {OpKey::aten_conv_transpose1d_default, infer_conv_transpose_nd},
                            {OpKey::aten_conv_transpose2d_input, infer_conv_transpose_nd},
                            {OpKey::aten_conv_transpose3d_input, infer_conv_transpose_nd},
                            {OpKey::aten__pdist_forward_default, infer_pdist},
                            {OpKey::aten__cdist_forward_default, infer_cdist},
                        });
}

}  // namespace kiln::ir
