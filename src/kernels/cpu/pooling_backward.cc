// CPU reference kernels for the backward pooling ops: avg_pool2d_backward,
// _adaptive_avg_pool2d_backward and max_pool2d_with_indices_backward. Each output element's
// gradient is spread over (avg) or added to (max) the input positions of its window. Planes are
// independent and run in parallel; within a plane, outputs are visited in order and the sums kept
// in the element type, rounding after every addition, because that is what PyTorch's CPU kernels do
// (16-bit floats give different answers otherwise).
#include <algorithm>
#include <atomic>

#include "base/element_cast.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/pooling_util.h"

namespace kiln::cpu::pooling {
namespace {

using ir::OpContext;

// a + b in T, as PyTorch's `scalar_t += scalar_t`.
template <typename T>
T add(T a, T b) {
  return element_cast<T>(static_cast<ComputeType<T>>(a) + static_cast<ComputeType<T>>(b));
}

// a / b in T, as PyTorch's `scalar_t / int64_t`: a 16-bit float divides by the divisor converted
// to its own type, an integer truncates.
template <typename T>
T divide(T a, int64_t b) {
  using C = ComputeType<T>;
  return element_cast<T>(static_cast<C>(a) / static_cast<C>(element_cast<T>(b)));
}

template <typename T>
void avg_pool_backward(const T* grad_out, T* grad_in, const PoolGeometry& g, bool count_include_pad,
                       std::optional<int64_t> divisor_override) {
  for_each_plane(g, [&](int64_t p) {
    const T* go = grad_out + p * g.out_plane();
    T* gi = grad_in + p * g.in_plane();
    std::fill(gi, gi + g.in_plane(), element_cast<T>(0));
    for (int64_t od = 0; od < g.out_d; ++od) {
      const AvgSpan d = avg_span(od, g.sd, g.pd, g.kd, g.in_d);
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const AvgSpan h = avg_span(oh, g.sh, g.ph, g.kh, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const AvgSpan w = avg_span(ow, g.sw, g.pw, g.kw, g.in_w);
          // A window inside the padding only (count_include_pad=False would divide by 0) has no
          // input to pass its gradient to.
          if (d.start >= d.end || h.start >= h.end || w.start >= w.end) continue;
          const T delta = divide(go[(od * g.out_h + oh) * g.out_w + ow],
                                 avg_divisor(d, h, w, count_include_pad, divisor_override));
          for (int64_t id = d.start; id < d.end; ++id) {
            for (int64_t ih = h.start; ih < h.end; ++ih) {
              T* row = gi + (id * g.in_h + ih) * g.in_w;
              for (int64_t iw = w.start; iw < w.end; ++iw) row[iw] = add(row[iw], delta);
            }
          }
        }
      }
    }
  });
}

// avg_pool2d_backward(grad_output, self, kernel_size, stride, padding, ceil_mode,
//                     count_include_pad, divisor_override)
Status avg_pool_backward_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor grad_out, ctx.tensor(0).contiguous());
  Tensor& grad_in = ctx.output_tensor(0);
  const PoolGeometry g = pool_geometry(ctx, grad_in, grad_out, n, {.kernel = 2});
  const bool count_include_pad = ctx.bool_arg(6);
  const std::optional<int64_t> divisor = ctx.optional_int(7);
  dispatch_dtype(grad_in.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>> || std::is_same_v<T, int64_t>) {
      avg_pool_backward<T>(grad_out.data<T>(), grad_in.data<T>(), g, count_include_pad, divisor);
    }
  });
  return ok_status();
}

template <typename T>
void adaptive_avg_pool_backward(const T* grad_out, T* grad_in, const PoolGeometry& g) {
  for_each_plane(g, [&](int64_t p) {
    const T* go = grad_out + p * g.out_plane();
    T* gi = grad_in + p * g.in_plane();
    std::fill(gi, gi + g.in_plane(), element_cast<T>(0));
    for (int64_t od = 0; od < g.out_d; ++od) {
      const int64_t d0 = adaptive_start(od, g.out_d, g.in_d),
                    d1 = adaptive_end(od, g.out_d, g.in_d);
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t h0 = adaptive_start(oh, g.out_h, g.in_h);
        const int64_t h1 = adaptive_end(oh, g.out_h, g.in_h);
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t w0 = adaptive_start(ow, g.out_w, g.in_w);
          const int64_t w1 = adaptive_end(ow, g.out_w, g.in_w);
          // PyTorch divides by each window extent in turn, rounding in between (a 2-D pool's
          // depth extent is 1, an exact division).
          const T delta = divide(
              divide(divide(go[(od * g.out_h + oh) * g.out_w + ow], d1 - d0), h1 - h0), w1 - w0);
          for (int64_t id = d0; id < d1; ++id) {
            for (int64_t ih = h0; ih < h1; ++ih) {
              T* row = gi + (id * g.in_h + ih) * g.in_w;
              for (int64_t iw = w0; iw < w1; ++iw) row[iw] = add(row[iw], delta);
            }
          }
        }
      }
    }
  });
}

// _adaptive_avg_pool2d_backward(grad_output, self): the windows come from grad_output's size.
Status adaptive_avg_pool_backward_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor grad_out, ctx.tensor(0).contiguous());
  Tensor& grad_in = ctx.output_tensor(0);
  const PoolGeometry g = pool_sizes(grad_in, grad_out, n);
  dispatch_dtype(grad_in.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      adaptive_avg_pool_backward<T>(grad_out.data<T>(), grad_in.data<T>(), g);
    }
  });
  return ok_status();
}

// Adds each output's gradient at the flat input position its index names. Returns the position of
// the first index outside the plane, or -1.
template <typename T>
int64_t max_pool_backward(const T* grad_out, const int64_t* indices, T* grad_in,
                          const PoolGeometry& g) {
  std::atomic<int64_t> bad{-1};
  for_each_plane(g, [&](int64_t p) {
    const T* go = grad_out + p * g.out_plane();
    const int64_t* idx = indices + p * g.out_plane();
    T* gi = grad_in + p * g.in_plane();
    std::fill(gi, gi + g.in_plane(), element_cast<T>(0));
    for (int64_t o = 0; o < g.out_plane(); ++o) {
      if (idx[o] < 0 || idx[o] >= g.in_plane()) {
        int64_t none = -1;
        bad.compare_exchange_strong(none, p * g.out_plane() + o);
        continue;
      }
      gi[idx[o]] = add(gi[idx[o]], go[o]);
    }
  });
  return bad.load();
}

// max_pool2d_with_indices_backward(grad_output, self, kernel_size, stride, padding, dilation,
//                                  ceil_mode, indices): the window arguments are not needed.
Status max_pool_backward_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor grad_out, ctx.tensor(0).contiguous());
  KILN_ASSIGN_OR_RETURN(Tensor indices, ctx.tensor(7).contiguous());
  Tensor& grad_in = ctx.output_tensor(0);
  const PoolGeometry g = pool_sizes(grad_in, grad_out, n);
  int64_t bad = -1;
  dispatch_dtype(grad_in.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      bad = max_pool_backward<T>(grad_out.data<T>(), indices.data<int64_t>(), grad_in.data<T>(), g);
    }
  });
  if (bad >= 0) {
    return invalid_argument("max_pool backward: expected indices in [0, ", g.in_plane(),
                            "), found ", indices.data<int64_t>()[bad], " at flat position ", bad);
  }
  return ok_status();
}

}  // namespace

Status register_pooling_backward_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(table,
                     {
                         {OpKey::aten_avg_pool2d_backward_default,
                          [](OpContext& c) { return avg_pool_backward_kernel(c, 2); }},
                         {OpKey::aten__adaptive_avg_pool2d_backward_default,
                          [](OpContext& c) { return adaptive_avg_pool_backward_kernel(c, 2); }},
                         {OpKey::aten_max_pool2d_with_indices_backward_default,
                          [](OpContext& c) { return max_pool_backward_kernel(c, 2); }},
                     });
}

}  // namespace kiln::cpu::pooling
