// The batched matrix product behind every product op. float32 operands are handed to sgemm as they
// lie whenever their strides allow it (a transposed view becomes a trans flag); only operands with
// no unit stride in their matrix dims are copied. Batches sharing one right operand fold into a
// single tall product, which is how linear and matmul on [batch, seq, hidden] run.
#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>

#include "base/element_cast.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/linalg_internal.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

struct MatrixLayout {
  bool trans;
  int64_t ld;
};

// How sgemm can read a rows x cols matrix with strides (rs, cs): row-major with ld = rs, or
// transposed (column-major) with ld = cs. Unit dims leave their stride free.
std::optional<MatrixLayout> matrix_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if (cols <= 1 || cs == 1) {
    const int64_t ld = rows <= 1 ? std::max<int64_t>(cols, 1) : rs;
    if (ld >= std::max<int64_t>(cols, 1)) return MatrixLayout{false, ld};
  }
  if (rows <= 1 || rs == 1) {
    const int64_t ld = cols <= 1 ? std::max<int64_t>(rows, 1) : cs;
    if (ld >= std::max<int64_t>(rows, 1)) return MatrixLayout{true, ld};
  }
  return std::nullopt;
}

// The single stride that walks `sizes` in row-major order, if there is one (unit dims are free).
std::optional<int64_t> collapsed_stride(std::span<const int64_t> sizes,
                                        std::span<const int64_t> strides) {
  std::optional<int64_t> stride;
  int64_t expected = 0;
  for (size_t j = sizes.size(); j-- > 0;) {
    if (sizes[j] == 1) continue;
    if (!stride) {
      stride = strides[j];
    } else if (strides[j] != expected) {
      return std::nullopt;
    }
    expected = strides[j] * sizes[j];
  }
  return stride.value_or(0);
}

// The element offset of batch `flat` (row-major over `sizes`) under `strides`.
int64_t batch_offset(int64_t flat, std::span<const int64_t> sizes,
                     std::span<const int64_t> strides) {
  int64_t offset = 0;
  for (size_t j = sizes.size(); j-- > 0;) {
    offset += (flat % sizes[j]) * strides[j];
    flat /= sizes[j];
  }
  return offset;
}

std::span<const int64_t> leading(const Shape& s, int64_t n) {
  return {s.data(), size_t(n)};
}

// `t` if sgemm can read its matrix dims, else a contiguous copy.
Result<Tensor> gemm_ready(const Tensor& t) {
  const int64_t r = t.dim();
  if (matrix_layout(t.size(r - 2), t.size(r - 1), t.strides()[r - 2], t.strides()[r - 1])) {
    return t;
  }
  return t.contiguous();
}

// out (float32, contiguous) = alpha * a @ b + beta * out.
Status sgemm_views(const Tensor& a_in, const Tensor& b_in, float alpha, float beta,
                   const Tensor& out) {
  KILN_ASSIGN_OR_RETURN(Tensor a, gemm_ready(a_in));
  KILN_ASSIGN_OR_RETURN(Tensor b, gemm_ready(b_in));
  const int64_t nb = out.dim() - 2;
  const int64_t m = a.size(nb), k = a.size(nb + 1), n = b.size(nb + 1);
  const int64_t batch = shape_numel(leading(out.sizes(), nb));
  const Shape &as = a.strides(), &bs = b.strides();
  const MatrixLayout lb = *matrix_layout(k, n, bs[nb], bs[nb + 1]);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* pc = out.data<float>();
  const std::optional<int64_t> b_batch =
      collapsed_stride(leading(out.sizes(), nb), leading(bs, nb));
  if (b_batch == 0) {  // one right operand for every batch: fold the batches into the rows of a
    Shape rows(out.sizes().begin(), out.sizes().begin() + nb + 1);
    Shape row_strides(as.begin(), as.begin() + nb + 1);
    if (auto rs = collapsed_stride(rows, row_strides)) {
      if (auto la = matrix_layout(batch * m, k, *rs, as[nb + 1])) {
        sgemm(la->trans, lb.trans, batch * m, n, k, alpha, pa, la->ld, pb, lb.ld, beta, pc, n);
        return ok_status();
      }
    }
  }
  const MatrixLayout la = *matrix_layout(m, k, as[nb], as[nb + 1]);
  const std::optional<int64_t> a_batch =
      collapsed_stride(leading(out.sizes(), nb), leading(as, nb));
  if (a_batch && b_batch) {
    sgemm_batched(la.trans, lb.trans, batch, m, n, k, alpha, pa, la.ld, *a_batch, pb, lb.ld,
                  *b_batch, beta, pc, n, m * n);
    return ok_status();
  }
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t oa = batch_offset(i, leading(out.sizes(), nb), leading(as, nb));
    const int64_t ob = batch_offset(i, leading(out.sizes(), nb), leading(bs, nb));
    sgemm(la.trans, lb.trans, m, n, k, alpha, pa + oa, la.ld, pb + ob, lb.ld, beta, pc + i * m * n,
          n);
  }
  return ok_status();
}

// out (contiguous float32 [..., n]) = bias (float32, out's shape, any strides), a row at a time:
// the bias of addmm / linear is a row broadcast over every row, copied with memcpy in parallel.
void fill_rows(const Tensor& bias, const Tensor& out) {
  const int64_t last = out.dim() - 1;
  const int64_t n = out.size(last), rows = out.numel() / n, sn = bias.strides()[last];
  const auto lead_sizes = leading(out.sizes(), last);
  const auto lead_strides = leading(bias.strides(), last);
  const float* src = bias.data<float>();
  float* dst = out.data<float>();
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* s = src + batch_offset(r, lead_sizes, lead_strides);
      float* d = dst + r * n;
      if (sn == 1) {
        std::memcpy(d, s, static_cast<size_t>(n) * sizeof(float));
      } else if (sn == 0) {
        std::fill(d, d + n, *s);
      } else {
        for (int64_t j = 0; j < n; ++j) d[j] = s[j * sn];
      }
    }
  });
}

// float32 and, through float32 copies, float16 / bfloat16.
Status float_matmul(const Tensor& a, const Tensor& b, const Tensor* bias, ir::Scalar beta,
                    ir::Scalar alpha, const Tensor& out) {
  const bool direct = out.dtype() == DType::kFloat32;
  Tensor a32 = a, b32 = b, out32 = out;
  if (!direct) {
    KILN_ASSIGN_OR_RETURN(a32, a.to(DType::kFloat32));
    KILN_ASSIGN_OR_RETURN(b32, b.to(DType::kFloat32));
    KILN_ASSIGN_OR_RETURN(out32, Tensor::empty(DType::kFloat32, out.sizes()));
  }
  const bool use_bias = bias != nullptr && beta.to_double() != 0.0;
  if (use_bias && bias->dtype() == DType::kFloat32) {
    fill_rows(*bias, out32);
  } else if (use_bias) {
    KILN_RETURN_IF_ERROR(out32.copy_from(*bias));
  }
  KILN_RETURN_IF_ERROR(sgemm_views(a32, b32, static_cast<float>(alpha.to_double()),
                                   use_bias ? static_cast<float>(beta.to_double()) : 0.0f, out32));
  if (!direct) KILN_RETURN_IF_ERROR(Tensor(out).copy_from(out32));
  return ok_status();
}

// float64 accumulates in double; integers in uint64_t, whose wrap-around matches PyTorch's
// arithmetic in the narrower type once truncated.
template <typename T>
using MatmulAcc = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;

template <typename T>
MatmulAcc<T> acc_scalar(ir::Scalar s) {
  if constexpr (std::is_floating_point_v<T>) {
    return s.to_double();
  } else {  // PyTorch converts alpha and beta to the integer type first (1.7 -> 1)
    const int64_t i = s.kind == ir::Scalar::Kind::kFloat ? element_cast<int64_t>(s.f) : s.i;
    return static_cast<uint64_t>(static_cast<int64_t>(static_cast<T>(i)));
  }
}

template <typename T>
MatmulAcc<T> to_acc(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return v;
  } else {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  }
}

template <typename T>
void plain_matmul(const Tensor& a, const Tensor& b, const Tensor* bias, ir::Scalar beta_s,
                  ir::Scalar alpha_s, const Tensor& out) {
  using Acc = MatmulAcc<T>;
  const int64_t nb = out.dim() - 2;
  const int64_t m = out.size(nb), n = out.size(nb + 1), k = a.size(nb + 1);
  const auto batch_sizes = leading(out.sizes(), nb);
  const Shape &as = a.strides(), &bs = b.strides();
  const Acc alpha = acc_scalar<T>(alpha_s), beta = acc_scalar<T>(beta_s);
  const bool use_bias = bias != nullptr && beta != Acc(0);
  const bool use_product = alpha != Acc(0);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const T* pbias = use_bias ? bias->data<T>() : nullptr;
  T* pc = out.data<T>();
  const int64_t rows = shape_numel(batch_sizes) * m;
  parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n * k, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r) {
                   const int64_t bi = r / m, i = r % m;
                   const T* ar = pa + batch_offset(bi, batch_sizes, leading(as, nb)) + i * as[nb];
                   const T* bb = pb + batch_offset(bi, batch_sizes, leading(bs, nb));
                   const T* cr =
                       use_bias
                           ? pbias + batch_offset(bi, batch_sizes, leading(bias->strides(), nb)) +
                                 i * bias->strides()[nb]
                           : nullptr;
                   for (int64_t j = 0; j < n; ++j) {
                     Acc sum = 0;
                     for (int64_t p = 0; use_product && p < k; ++p) {
                       sum += to_acc(ar[p * as[nb + 1]]) * to_acc(bb[p * bs[nb] + j * bs[nb + 1]]);
                     }
                     Acc v = alpha * sum;
                     if (use_bias) v += beta * to_acc(cr[j * bias->strides()[nb + 1]]);
                     pc[r * n + j] = static_cast<T>(v);
                   }
                 }
               });
}

}  // namespace

Status matmul_into(const Tensor& a, const Tensor& b, const Tensor* bias, ir::Scalar beta,
                   ir::Scalar alpha, const Tensor& out) {
  if (out.numel() == 0) return ok_status();
  switch (out.dtype()) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBFloat16: return float_matmul(a, b, bias, beta, alpha, out);
    case DType::kBool: return internal_error("matmul_into on bool tensors");
    default: break;
  }
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      plain_matmul<T>(a, b, bias, beta, alpha, out);
    }
  });
  return ok_status();
}

}  // namespace kiln::cpu
