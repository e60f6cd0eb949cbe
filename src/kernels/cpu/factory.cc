// CPU reference kernels for the factory ops. Fill values go through PyTorch's checked conversion
// (full(300, dtype=uint8) is an error, not 44); empty tensors are zero-filled so that results are
// deterministic.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/indexing_util.h"

namespace kiln::cpu {
namespace {

constexpr ir::Scalar kZero{ir::Scalar::Kind::kInt, 0, 0.0};
constexpr ir::Scalar kOne{ir::Scalar::Kind::kInt, 1, 0.0};

Status zero_fill(const Tensor& out) {
  std::memset(out.raw_data(), 0, out.nbytes());
  return ok_status();
}

// zeros, zeros_like, new_zeros, and every empty variant.
Status zeros_kernel(ir::OpContext& ctx) {
  return zero_fill(ctx.output_tensor(0));
}

// ones, ones_like, new_ones.
Status ones_kernel(ir::OpContext& ctx) {
  return fill_scalar(ctx.output_tensor(0), kOne);
}

// full(size, fill), full_like(self, fill), new_full(self, size, fill), scalar_tensor(s).
template <size_t kFillArg>
Status full_kernel(ir::OpContext& ctx) {
  const ir::Scalar fill = ctx.scalar(kFillArg);
  KILN_RETURN_IF_ERROR(ctx.error());
  return fill_scalar(ctx.output_tensor(0), fill);
}

// arange's accumulation type: int64 for integers, float for 16-bit floats, double otherwise.
template <typename T>
using ArangeAcc = std::conditional_t<std::is_integral_v<T>, int64_t,
                                     std::conditional_t<kIsReducedFloat<T>, float, double>>;

template <typename T>
ArangeAcc<T> to_arange_acc(ir::Scalar s) {
  if constexpr (std::is_integral_v<T>) {
    return s.kind == ir::Scalar::Kind::kFloat ? element_cast<int64_t>(s.f) : s.i;
  } else {
    return static_cast<ArangeAcc<T>>(s.to_double());
  }
}

// out[i] = start + i * step in the accumulation type (integers wrap), then converted.
template <typename T>
void arange_fill(const Tensor& out, ir::Scalar start_s, ir::Scalar step_s) {
  using Acc = ArangeAcc<T>;
  const Acc start = to_arange_acc<T>(start_s), step = to_arange_acc<T>(step_s);
  T* data = out.data<T>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    if constexpr (std::is_integral_v<T>) {
      const uint64_t v =
          static_cast<uint64_t>(start) + static_cast<uint64_t>(i) * static_cast<uint64_t>(step);
      data[i] = static_cast<T>(v);
    } else {
      data[i] = element_cast<T>(start + step * static_cast<Acc>(i));
    }
  }
}

// arange.default(end), arange.start(start, end), arange.start_step(start, end, step); the length
// was computed by inference.
Status arange_kernel(ir::OpContext& ctx) {
  const ir::OpKey op = ctx.node().op;
  ir::Scalar start = kZero, step = kOne;
  if (op != ir::OpKey::aten_arange_default) start = ctx.scalar(0);
  if (op == ir::OpKey::aten_arange_start_step) step = ctx.scalar(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) arange_fill<T>(out, start, step);
  });
  return ok_status();
}

// PyTorch's linspace: the first half counts up from start, the second half down from end, so both
// ends are exact. Integer outputs compute the step in double and truncate each value.
template <typename T>
void linspace_fill(const Tensor& out, ir::Scalar start_s, ir::Scalar end_s) {
  using Step = std::conditional_t<std::is_floating_point_v<T>, T, double>;
  using Value = std::conditional_t<std::is_integral_v<T>, int64_t, Step>;
  const int64_t steps = out.numel();
  T* data = out.data<T>();
  if (steps == 0) return;
  const Value start = element_cast<Value>(start_s.to_double());  // integers truncate
  const Value end = element_cast<Value>(end_s.to_double());
  if (steps == 1) {
    data[0] = element_cast<T>(start);
    return;
  }
  const Step step =
      (static_cast<Step>(end) - static_cast<Step>(start)) / static_cast<Step>(steps - 1);
  const int64_t halfway = steps / 2;
  for (int64_t i = 0; i < steps; ++i) {
    const Step v = i < halfway ? static_cast<Step>(start) + step * static_cast<Step>(i)
                               : static_cast<Step>(end) - step * static_cast<Step>(steps - i - 1);
    data[i] = element_cast<T>(v);
  }
}

// linspace(start, end, steps).
Status linspace_kernel(ir::OpContext& ctx) {
  const ir::Scalar start = ctx.scalar(0), end = ctx.scalar(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  if (out.dtype() == DType::kFloat16 || out.dtype() == DType::kBFloat16) {
    KILN_ASSIGN_OR_RETURN(Tensor tmp, Tensor::empty(DType::kFloat32, out.sizes()));
    linspace_fill<float>(tmp, start, end);  // computed in float, rounded once
    return out.copy_from(tmp);
  }
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (!kIsReducedFloat<T> && !std::is_same_v<T, bool>)
      linspace_fill<T>(out, start, end);
  });
  return ok_status();
}

// eye(n), eye.m(n, m): ones on the diagonal.
Status eye_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(zero_fill(out));
  const int64_t n = out.size(0), m = out.size(1);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    T* data = out.data<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) data[i * m + i] = element_cast<T>(1);
  });
  return ok_status();
}

}  // namespace

Status register_factory_kernels(ir::OpFunctionTable& table) {
  return add_all(table, {
                            {ir::OpKey::aten_full_default, full_kernel<1>},
                            {ir::OpKey::aten_full_like_default, full_kernel<1>},
                            {ir::OpKey::aten_new_full_default, full_kernel<2>},
                            {ir::OpKey::aten_scalar_tensor_default, full_kernel<0>},
                            {ir::OpKey::aten_zeros_default, zeros_kernel},
                            {ir::OpKey::aten_zeros_like_default, zeros_kernel},
                            {ir::OpKey::aten_new_zeros_default, zeros_kernel},
                            {ir::OpKey::aten_empty_memory_format, zeros_kernel},
                            {ir::OpKey::aten_empty_like_default, zeros_kernel},
                            {ir::OpKey::aten_empty_strided_default, zeros_kernel},
                            {ir::OpKey::aten_empty_permuted_default, zeros_kernel},
                            {ir::OpKey::aten_new_empty_default, zeros_kernel},
                            {ir::OpKey::aten_new_empty_strided_default, zeros_kernel},
                            {ir::OpKey::aten_ones_default, ones_kernel},
                            {ir::OpKey::aten_ones_like_default, ones_kernel},
                            {ir::OpKey::aten_new_ones_default, ones_kernel},
                            {ir::OpKey::aten_arange_default, arange_kernel},
                            {ir::OpKey::aten_arange_start, arange_kernel},
                            {ir::OpKey::aten_arange_start_step, arange_kernel},
                            {ir::OpKey::aten_linspace_default, linspace_kernel},
                            {ir::OpKey::aten_eye_default, eye_kernel},
                            {ir::OpKey::aten_eye_m, eye_kernel},
                        });
}

}  // namespace kiln::cpu
