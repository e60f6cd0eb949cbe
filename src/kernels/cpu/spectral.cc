// CPU kernels for the spectral ops torch.fft lowers to: _fft_r2c, _fft_c2r and _fft_c2c over
// complex64. Each signal dim is transformed in turn by a direct DFT in double (O(n^2) per line,
// exact twiddles from a table), which is the reference backend's job: agreement with eager's
// pocketfft to float32 rounding, not speed. c2r follows pocketfft's multi-dim order: complex
// inverse transforms over all but the last signal dim, then complex-to-real along the last,
// which reads its first n/2 + 1 values and the real parts alone of the first and (n even) the
// middle one, as a Hermitian spectrum has them.
#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <span>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;
using Complex = std::complex<double>;

// exp(sign * 2 pi i k / n) for k in [0, n), exact at the quarter turns (1, i, -1, -i), where
// cos and sin of a rounded angle would leave a 1e-16 residue.
std::vector<Complex> twiddles(int64_t n, double sign) {
  std::vector<Complex> w(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    if ((4 * k) % n == 0) {
      const int64_t quarter = 4 * k / n;
      w[k] = quarter == 0 ? Complex(1, 0)
             : quarter == 2 ? Complex(-1, 0)
                            : Complex(0, (quarter == 1) == (sign > 0) ? 1.0 : -1.0);
    } else {
      w[k] = std::polar(1.0, sign * 2.0 * std::numbers::pi * static_cast<double>(k) /
                                 static_cast<double>(n));
    }
  }
  return w;
}

// x * w, without the products by a twiddle's zero part: an infinite part times an exact zero
// would make a NaN that eager's FFT, which never forms that product, does not have (the
// imaginary part of a real signal's DC term is 0 even where the signal holds an inf).
Complex rotate(Complex x, Complex w) {
  if (w.imag() == 0) return {x.real() * w.real(), x.imag() * w.real()};
  if (w.real() == 0) return {-x.imag() * w.imag(), x.real() * w.imag()};
  return x * w;
}

// A contiguous complex buffer of shape `sizes`.
struct Signal {
  Shape sizes;
  std::vector<Complex> values;

  // (elements before `dim`, its size, elements after it)
  std::array<int64_t, 3> split(int64_t dim) const {
    return {shape_numel(std::span(sizes).first(dim)), sizes[dim],
            shape_numel(std::span(sizes).subspan(dim + 1))};
  }
};

// A 1-D DFT along `dim` of every line, in place: y[k] = sum_j x[j] exp(sign 2 pi i jk / n).
void transform(Signal& s, int64_t dim, double sign) {
  const auto [outer, n, inner] = s.split(dim);
  const std::vector<Complex> w = twiddles(n, sign);
  parallel_for(0, outer * inner, 1, [&](int64_t lo, int64_t hi) {
    std::vector<Complex> line(static_cast<size_t>(n));
    for (int64_t l = lo; l < hi; ++l) {
      Complex* base = s.values.data() + (l / inner) * n * inner + l % inner;
      for (int64_t j = 0; j < n; ++j) line[j] = base[j * inner];
      for (int64_t k = 0; k < n; ++k) {
        Complex sum = 0.0;
        for (int64_t j = 0; j < n; ++j) sum += rotate(line[j], w[(j * k) % n]);
        base[k * inner] = sum;
      }
    }
  });
}

// Transforms along each of `dims` in turn; returns the signal's element count over them.
int64_t transform_dims(Signal& s, std::span<const int64_t> dims, double sign) {
  int64_t count = 1;
  for (int64_t d : dims) {
    transform(s, d, sign);
    count *= s.sizes[d];
  }
  return count;
}

// normalization: 0 none, 1 1/sqrt(n), 2 1/n, with n the signal's element count.
double scale(int64_t normalization, int64_t n) {
  if (normalization == 1) return 1.0 / std::sqrt(static_cast<double>(n));
  if (normalization == 2) return 1.0 / static_cast<double>(n);
  return 1.0;
}

Result<std::vector<int64_t>> signal_dims(OpContext& ctx, int64_t rank) {
  std::vector<int64_t> dims = ctx.ints(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  for (int64_t& d : dims) d = d < 0 ? d + rank : d;
  return dims;
}

// The input, made contiguous, as a complex signal (a real input gets zero imaginary parts).
Result<Signal> load(const Tensor& input) {
  KILN_ASSIGN_OR_RETURN(Tensor dense, input.contiguous());
  Signal s{dense.sizes(), std::vector<Complex>(static_cast<size_t>(dense.numel()))};
  if (dense.dtype() == DType::kComplex64) {
    const auto* x = static_cast<const std::complex<float>*>(dense.raw_data());
    for (size_t i = 0; i < s.values.size(); ++i) s.values[i] = Complex(x[i]);
  } else if (dense.dtype() == DType::kFloat32) {
    const float* x = dense.data<float>();
    for (size_t i = 0; i < s.values.size(); ++i) s.values[i] = Complex(x[i], 0.0);
  } else {
    return internal_error("spectral kernel: unexpected dtype ", dtype_name(dense.dtype()));
  }
  return s;
}

// Writes the values of `s` at the output's (smaller or equal) shape, scaled, as complex64.
void store_complex(const Signal& s, double factor, Tensor& out) {
  auto* y = static_cast<std::complex<float>*>(out.raw_data());
  const Shape& o = out.sizes();
  const int64_t rank = static_cast<int64_t>(o.size());
  std::vector<int64_t> index(o.size(), 0);
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t from = 0;
    for (int64_t d = 0; d < rank; ++d) from = from * s.sizes[d] + index[d];
    y[i] = std::complex<float>(s.values[from] * factor);
    for (int64_t d = rank - 1; d >= 0 && ++index[d] == o[d]; --d) index[d] = 0;
  }
}

Status fft_r2c_kernel(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, signal_dims(ctx, input.dim()));
  const int64_t normalization = ctx.int_arg(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Signal s, load(input));
  // The last signal dim first, as eager transforms the real signal along it before the others
  // (the order only shows where infinities make NaNs).
  std::rotate(dims.rbegin(), dims.rbegin() + 1, dims.rend());
  const int64_t n = transform_dims(s, dims, -1.0);
  store_complex(s, scale(normalization, n), ctx.output_tensor(0));  // one-sided: a prefix
  return ok_status();
}

Status fft_c2c_kernel(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, signal_dims(ctx, input.dim()));
  const int64_t normalization = ctx.int_arg(2);
  const bool forward = ctx.bool_arg(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Signal s, load(input));
  const int64_t n = transform_dims(s, dims, forward ? -1.0 : 1.0);
  store_complex(s, scale(normalization, n), ctx.output_tensor(0));
  return ok_status();
}

Status fft_c2r_kernel(OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, signal_dims(ctx, input.dim()));
  const int64_t normalization = ctx.int_arg(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Signal s, load(input));
  const int64_t last = dims.back();
  int64_t count = transform_dims(s, std::span(dims).first(dims.size() - 1), 1.0);
  Tensor& out = ctx.output_tensor(0);
  const int64_t n = out.size(last);
  count *= n;
  const double factor = scale(normalization, count);
  const auto [outer, m, inner] = s.split(last);
  const std::vector<Complex> w = twiddles(n, 1.0);
  float* y = out.data<float>();
  parallel_for(0, outer * inner, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t l = lo; l < hi; ++l) {
      const int64_t o = l / inner, i = l % inner;
      const Complex* h = s.values.data() + o * m * inner + i;
      for (int64_t k = 0; k < n; ++k) {
        double sum = h[0].real();
        for (int64_t j = 1; 2 * j < n; ++j) {
          sum += 2.0 * rotate(h[j * inner], w[(j * k) % n]).real();
        }
        if (n % 2 == 0) sum += h[(n / 2) * inner].real() * ((k % 2) ? -1.0 : 1.0);
        y[(o * n + k) * inner + i] = static_cast<float>(sum * factor);
      }
    }
  });
  return ok_status();
}

}  // namespace

Status register_spectral_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(table, {
                                {OpKey::aten__fft_r2c_default, fft_r2c_kernel},
                                {OpKey::aten__fft_c2r_default, fft_c2r_kernel},
                                {OpKey::aten__fft_c2c_default, fft_c2c_kernel},
                            });
}

}  // namespace kiln::cpu
