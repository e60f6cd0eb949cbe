// Shape and dtype inference for the factory ops: full, zeros, ones, empty (and their _like / new_
// forms), scalar_tensor, arange, linspace and eye. Default dtypes follow PyTorch: float32 (the
// default dtype) for zeros/ones/empty/scalar_tensor/linspace/eye, the fill value's kind for full,
// the argument's kind for arange, and self's dtype for the _like and new_ forms. Layout, device and
// pin_memory do not change the result (kiln's CPU tensors are all strided), but a non-strided
// layout is an error. The random ops the reference backend runs (rand, randn, randperm,
// native_dropout) are here too; which backends may take them is convert's decision.
#include <cmath>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

// torch.strided in the export schema's Layout enum; the frontend turns it into None.
constexpr int64_t kStridedLayoutCode = 7;

Status check_layout(OpContext& ctx, size_t arg) {
  if (ctx.is_none(arg)) return ok_status();
  if (const auto* code = std::get_if<int64_t>(&ctx.node().args[arg])) {
    if (*code != kStridedLayoutCode) {
      return op_error(ctx, "expected the strided layout, found layout code ", *code);
    }
  }
  return ok_status();
}

Status check_sizes(OpContext& ctx, const Shape& sizes) {
  for (int64_t s : sizes) {
    if (s < 0) return op_error(ctx, "expected non-negative sizes, found ", shape_to_string(sizes));
  }
  return ok_status();
}

// Sets output 0 to a `sizes` tensor of `dtype`, or `fallback` when the dtype argument is None.
Status set_factory_output(OpContext& ctx, Shape sizes, size_t dtype_arg, DType fallback) {
  const std::optional<DType> dtype = ctx.scalar_type(dtype_arg);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_layout(ctx, dtype_arg + 1));
  KILN_RETURN_IF_ERROR(check_sizes(ctx, sizes));
  ctx.set_output(0, Tensor::meta(dtype.value_or(fallback), std::move(sizes)));
  return ok_status();
}

DType scalar_dtype(const Scalar& s) {
  switch (s.kind) {
    case Scalar::Kind::kBool: return DType::kBool;
    case Scalar::Kind::kInt: return DType::kInt64;
    case Scalar::Kind::kFloat: return DType::kFloat32;
  }
  return DType::kFloat32;
}

// zeros, ones, empty.memory_format: (size, dtype, layout, ...).
Status infer_sized(OpContext& ctx) {
  Shape sizes = ctx.ints(0);
  return set_factory_output(ctx, std::move(sizes), 1, DType::kFloat32);
}

// empty_strided(size, stride, dtype, layout, ...), empty_permuted(size, physical_layout, ...).
// The result is contiguous: kiln's tensors are; the values (zeros) are the same.
Status infer_sized_with_list(OpContext& ctx) {
  Shape sizes = ctx.ints(0);
  const std::vector<int64_t> list = ctx.ints(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (list.size() != sizes.size()) {
    return op_error(ctx, "expected ", sizes.size(), " values in ",
                    ctx.node().schema().args()[1].name, " for size ", shape_to_string(sizes),
                    ", found ", shape_to_string(list));
  }
  return set_factory_output(ctx, std::move(sizes), 2, DType::kFloat32);
}

// full(size, fill_value, dtype, layout, ...).
Status infer_full(OpContext& ctx) {
  Shape sizes = ctx.ints(0);
  const Scalar fill = ctx.scalar(1);
  return set_factory_output(ctx, std::move(sizes), 2, scalar_dtype(fill));
}

// zeros_like, ones_like, empty_like: (self, dtype, layout, ...); full_like: (self, fill, dtype,
// ...).
template <size_t kDtypeArg>
Status infer_like(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  return set_factory_output(ctx, self.sizes(), kDtypeArg, self.dtype());
}

// new_zeros, new_ones, new_empty: (self, size, dtype, ...); new_full: (self, size, fill, dtype,
// ...); new_empty_strided: (self, size, stride, dtype, ...).
template <size_t kDtypeArg>
Status infer_new(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  Shape sizes = ctx.ints(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  return set_factory_output(ctx, std::move(sizes), kDtypeArg, self.dtype());
}

// scalar_tensor(s, dtype, layout, ...): a 0-d tensor, float32 unless told.
Status infer_scalar_tensor(OpContext& ctx) {
  return set_factory_output(ctx, {}, 1, DType::kFloat32);
}

// ---- arange
// --------------------------------------------------------------------------------------

// PyTorch's arange length. The bounds and the step are first converted to the output's
// accumulation type (int64 for every integer dtype: arange(0.5, 5, dtype=int64) starts at 0); the
// length is ceil((end - start) / step) in double, except for int64 where it is exact.
Result<int64_t> arange_length(OpContext& ctx, Scalar start, Scalar end, Scalar step, DType dtype) {
  if (dtype == DType::kBool) return op_error(ctx, "expected a numeric dtype, found bool");
  const auto as_int = [](Scalar s) {
    return s.kind == Scalar::Kind::kFloat ? static_cast<int64_t>(std::trunc(s.f)) : s.i;
  };
  if (is_floating(dtype)) {
    const double s = start.to_double(), e = end.to_double(), st = step.to_double();
    if (!(st > 0 || st < 0)) return op_error(ctx, "expected a nonzero step, found ", st);
    if (!std::isfinite(s) || !std::isfinite(e)) {
      return op_error(ctx, "expected finite bounds, found ", s, " -> ", e);
    }
    if ((st > 0 && e < s) || (st < 0 && e > s)) {
      return op_error(ctx, "expected bounds ", s, " -> ", e, " consistent with the step ", st);
    }
    const double length = std::ceil((e - s) / st);
    if (!(length <= 9.2e18)) return op_error(ctx, "arange of ", length, " elements is too long");
    return static_cast<int64_t>(length);
  }
  for (Scalar v : {start, end, step}) {
    if (v.kind == Scalar::Kind::kFloat && !(std::fabs(v.f) < 9.2e18)) {
      return op_error(ctx, "expected bounds and step that fit int64, found ", v.f);
    }
  }
  const int64_t s = as_int(start), e = as_int(end), st = as_int(step);
  if (st == 0) return op_error(ctx, "expected a nonzero step, found ", step.to_double());
  if ((st > 0 && e < s) || (st < 0 && e > s)) {
    return op_error(ctx, "expected bounds ", s, " -> ", e, " consistent with the step ", st);
  }
  if (dtype == DType::kInt64) {
    const int64_t sign = st > 0 ? 1 : -1;
    return (e - s + st - sign) / st;
  }
  const double length = std::ceil((end.to_double() - start.to_double()) / step.to_double());
  if (!(length <= 9.2e18)) return op_error(ctx, "arange of ", length, " elements is too long");
  return static_cast<int64_t>(std::max(length, 0.0));
}

// arange.default(end, dtype, ...), arange.start(start, end, dtype, ...),
// arange.start_step(start, end, step, dtype, ...).
Status infer_arange(OpContext& ctx) {
  const OpKey op = ctx.node().op;
  const size_t bounds = op == OpKey::aten_arange_default ? 1
                        : op == OpKey::aten_arange_start ? 2
                                                         : 3;
  Scalar start{}, end{}, step{Scalar::Kind::kInt, 1, 0.0};
  if (bounds == 1) {
    end = ctx.scalar(0);
  } else {
    start = ctx.scalar(0);
    end = ctx.scalar(1);
    if (bounds == 3) step = ctx.scalar(2);
  }
  const std::optional<DType> requested = ctx.scalar_type(bounds);
  KILN_RETURN_IF_ERROR(ctx.error());
  const bool any_float = start.kind == Scalar::Kind::kFloat || end.kind == Scalar::Kind::kFloat ||
                         step.kind == Scalar::Kind::kFloat;
  const DType dtype = requested.value_or(any_float ? DType::kFloat32 : DType::kInt64);
  KILN_ASSIGN_OR_RETURN(int64_t length, arange_length(ctx, start, end, step, dtype));
  return set_factory_output(ctx, {length}, bounds, dtype);
}

// linspace(start, end, steps, dtype, ...).
Status infer_linspace(OpContext& ctx) {
  const int64_t steps = ctx.int_arg(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (steps < 0) return op_error(ctx, "expected a non-negative number of steps, found ", steps);
  if (ctx.scalar_type(3) == DType::kBool) {
    return op_error(ctx, "expected a numeric dtype, found bool");
  }
  return set_factory_output(ctx, {steps}, 3, DType::kFloat32);
}

// eye(n, dtype, ...), eye.m(n, m, dtype, ...).
Status infer_eye(OpContext& ctx) {
  const bool has_m = ctx.node().op == OpKey::aten_eye_m;
  const int64_t n = ctx.int_arg(0);
  const int64_t m = has_m ? ctx.int_arg(1) : n;
  KILN_RETURN_IF_ERROR(ctx.error());
  if (n < 0 || m < 0) return op_error(ctx, "expected n and m >= 0, found ", n, " and ", m);
  return set_factory_output(ctx, {n, m}, has_m ? 2 : 1, DType::kFloat32);
}

// ---- random ops
// ----------------------------------------------------------------------------------

// rand(size, dtype, ...), randn(size, dtype, ...): float32 unless told; floating dtypes only.
Status infer_random_sized(OpContext& ctx) {
  Shape sizes = ctx.ints(0);
  const std::optional<DType> dtype = ctx.scalar_type(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (dtype && !is_floating(*dtype)) {
    return op_error(ctx, "expected a floating dtype, found ", dtype_name(*dtype));
  }
  return set_factory_output(ctx, std::move(sizes), 1, DType::kFloat32);
}

// randperm(n, dtype=int64, ...).
Status infer_randperm(OpContext& ctx) {
  const int64_t n = ctx.int_arg(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (n < 0) return op_error(ctx, "expected n >= 0, found ", n);
  if (ctx.scalar_type(1) == DType::kBool) return op_error(ctx, "expected a numeric dtype");
  return set_factory_output(ctx, {n}, 1, DType::kInt64);
}

// native_dropout(input, p, train) -> (output like input, mask of bools).
Status infer_native_dropout(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const double p = ctx.float_arg(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (!is_floating(input.dtype())) {
    return op_error(ctx, "expected a floating input, found ", input.description());
  }
  if (!(p >= 0.0 && p <= 1.0)) return op_error(ctx, "expected p in [0, 1], found ", p);
  ctx.set_output(0, Tensor::meta(input.dtype(), input.sizes()));
  ctx.set_output(1, Tensor::meta(DType::kBool, input.sizes()));
  return ok_status();
}

}  // namespace

Status register_factory_inference(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_full_default, infer_full},
                            {OpKey::aten_zeros_default, infer_sized},
                            {OpKey::aten_ones_default, infer_sized},
                            {OpKey::aten_empty_memory_format, infer_sized},
                            {OpKey::aten_empty_strided_default, infer_sized_with_list},
                            {OpKey::aten_empty_permuted_default, infer_sized_with_list},
                            {OpKey::aten_full_like_default, infer_like<2>},
                            {OpKey::aten_zeros_like_default, infer_like<1>},
                            {OpKey::aten_ones_like_default, infer_like<1>},
                            {OpKey::aten_empty_like_default, infer_like<1>},
                            {OpKey::aten_new_full_default, infer_new<3>},
                            {OpKey::aten_new_zeros_default, infer_new<2>},
                            {OpKey::aten_new_ones_default, infer_new<2>},
                            {OpKey::aten_new_empty_default, infer_new<2>},
                            {OpKey::aten_new_empty_strided_default, infer_new<3>},
                            {OpKey::aten_scalar_tensor_default, infer_scalar_tensor},
                            {OpKey::aten_arange_default, infer_arange},
                            {OpKey::aten_arange_start, infer_arange},
                            {OpKey::aten_arange_start_step, infer_arange},
                            {OpKey::aten_linspace_default, infer_linspace},
                            {OpKey::aten_eye_default, infer_eye},
                            {OpKey::aten_eye_m, infer_eye},
                            {OpKey::aten_rand_default, infer_random_sized},
                            {OpKey::aten_randn_default, infer_random_sized},
                            {OpKey::aten_randperm_default, infer_randperm},
                            {OpKey::aten_native_dropout_default, infer_native_dropout},
                        });
}

}  // namespace kiln::ir
