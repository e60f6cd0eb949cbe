#include "kernels/cpu/indexing_util.h"

#include <algorithm>
#include <cfloat>
#include <cstring>

namespace kiln::cpu {
namespace {

// The largest finite value of a floating dtype.
double floating_max(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return 65504.0;
    case DType::kBFloat16: return 3.3895313892515355e38;
    case DType::kFloat32: return FLT_MAX;
    default: return DBL_MAX;
  }
}

// The range of an integer dtype.
void integer_range(DType dtype, int64_t* lo, uint64_t* hi) {
  switch (dtype) {
    case DType::kUInt8: *lo = 0, *hi = 255; return;
    case DType::kInt8: *lo = -128, *hi = 127; return;
    case DType::kInt16: *lo = -32768, *hi = 32767; return;
    case DType::kInt32: *lo = INT32_MIN, *hi = INT32_MAX; return;
    default: *lo = INT64_MIN, *hi = INT64_MAX; return;
  }
}

std::string scalar_text(ir::Scalar s) {
  if (s.kind == ir::Scalar::Kind::kFloat) return str_cat(s.f);
  if (s.kind == ir::Scalar::Kind::kBool) return s.i ? "True" : "False";
  return str_cat(s.i);
}

}  // namespace

Tensor expand_view(const Tensor& t, const Shape& shape) {
  const int64_t extra = static_cast<int64_t>(shape.size()) - t.dim();
  Shape strides(shape.size(), 0);
  for (int64_t d = 0; d < t.dim(); ++d) {
    strides[extra + d] = t.size(d) == shape[extra + d] ? t.strides()[d] : 0;
  }
  return t.view_as(shape, std::move(strides), t.offset());
}

Tensor unsqueeze_view(const Tensor& t, int64_t dim) {
  Shape sizes = t.sizes(), strides = t.strides();
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, 0);
  return t.view_as(std::move(sizes), std::move(strides), t.offset());
}

Tensor reshape_contiguous(const Tensor& t, const Shape& shape) {
  return t.view_as(shape, contiguous_strides(shape), t.offset());
}

Result<Tensor> index_as_int64(const Tensor& index) {
  if (index.dtype() == DType::kInt64) return index.contiguous();
  return index.to(DType::kInt64);
}

Result<double> checked_scalar_double(ir::Scalar s, DType dtype) {
  const auto overflow = [&] {
    return invalid_argument("value ", scalar_text(s), " cannot be converted to ", dtype_name(dtype),
                            " without overflow");
  };
  if (dtype == DType::kBool) return s.to_double();
  if (is_floating(dtype)) {
    const double v = s.to_double();
    const double max = floating_max(dtype);
    if (std::isfinite(v) && (v > max || v < -max)) return overflow();
    return v;
  }
  int64_t lo = 0;
  uint64_t hi = 0;
  integer_range(dtype, &lo, &hi);
  if (s.kind == ir::Scalar::Kind::kFloat) {
    if (std::isnan(s.f) || s.f < static_cast<double>(lo) || s.f > static_cast<double>(hi)) {
      return overflow();
    }
    return std::trunc(s.f);
  }
  // Integers: an unsigned type also takes negative values whose magnitude fits (-1 -> 255).
  const bool negative_fits =
      lo == 0 ? s.i >= 0 || static_cast<uint64_t>(-(s.i + 1)) < hi : s.i >= lo;
  if (!negative_fits || (s.i > 0 && static_cast<uint64_t>(s.i) > hi)) return overflow();
  return static_cast<double>(s.i);
}

Status fill_scalar(const Tensor& out, ir::Scalar value) {
  Status status;
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    Result<T> v = checked_scalar<T>(value);
    if (!v.ok()) {
      status = v.take_status();
      return;
    }
    T* data = out.data<T>();
    std::fill(data, data + out.numel(), *v);
  });
  return status;
}

}  // namespace kiln::cpu
