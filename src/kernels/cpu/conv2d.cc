// Convolution as GEMM: for one image and one group, output[oc, oh * ow] = weight[oc, ic * kh * kw]
// x columns[ic * kh * kw, oh * ow], where im2col gathers the input pixel under every kernel tap
// into the columns matrix. The columns are built a band of output rows at a time so the scratch
// stays bounded (kScratchFloats) however large the image. Depthwise convolutions skip the GEMM:
// with one input channel per group, the product would be a thin matrix with nothing to reuse.
#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

// Upper bound on one thread's columns scratch: 2 Mi floats (8 MiB).
constexpr int64_t kScratchFloats = int64_t{1} << 21;
// Below this many flops an independent (image, group) product is too small to split further.
constexpr double kSplitFlops = 8 << 20;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// The x in [0, count) with 0 <= x * stride + offset < limit form the range [*lo, *hi).
void valid_range(int64_t count, int64_t stride, int64_t offset, int64_t limit, int64_t* lo,
                 int64_t* hi) {
  *lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
  *hi = limit - 1 - offset < 0 ? 0 : (limit - 1 - offset) / stride + 1;
  *hi = std::min(*hi, count);
  *lo = std::min(*lo, *hi);
}

std::vector<float>& thread_scratch() {
  thread_local std::vector<float> scratch;
  return scratch;
}

// Sets `channels` planes of `plane` values to their bias (or zero when bias is null).
void fill_bias(float* out, int64_t channels, int64_t plane, const float* bias) {
  for (int64_t c = 0; c < channels; ++c) {
    std::fill(out + c * plane, out + (c + 1) * plane, bias == nullptr ? 0.0f : bias[c]);
  }
}

// ---- depthwise ----------------------------------------------------------------------------------

// out[x] += w * in[x * stride], for x in [0, count).
void accumulate_row(float* __restrict out, const float* __restrict in, float w, int64_t count,
                    int64_t stride) {
  if (stride == 1) {
    for (int64_t x = 0; x < count; ++x) out[x] += w * in[x];
  } else {
    for (int64_t x = 0; x < count; ++x) out[x] += w * in[x * stride];
  }
}

// Copies one input plane into `padded`: (in_h + 2 pad_h) rows of (in_w + 2 pad_w) values, zero
// around the image and for `tail` values after it, so the taps below need no bounds checks.
void pad_plane(const Conv2dParams& p, const float* in, int64_t tail, float* padded) {
  const int64_t wp = p.in_w + 2 * p.pad_w, hp = p.in_h + 2 * p.pad_h;
  std::fill(padded, padded + hp * wp + tail, 0.0f);
  for (int64_t y = 0; y < p.in_h; ++y) {
    std::copy(in + y * p.in_w, in + (y + 1) * p.in_w, padded + (y + p.pad_h) * wp + p.pad_w);
  }
}

// One output plane of a depthwise convolution: every output channel reads one input channel.
// `scratch` holds depthwise_scratch(p) floats.
void depthwise_plane(const Conv2dParams& p, const float* in, const float* w, float bias, float* out,
                     float* scratch) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  const int64_t wp = p.in_w + 2 * p.pad_w, hp = p.in_h + 2 * p.pad_h;
  const int64_t tail = (p.kernel_w - 1) * p.dilation_w;
  float* padded = scratch;
  pad_plane(p, in, tail, padded);
  if (p.stride_h == 1 && p.stride_w == 1) {
    // Compute full padded-width rows (the last `tail` columns of each are discarded): each tap is
    // then one long contiguous multiply-add over the plane, however narrow the image.
    float* wide = padded + hp * wp + tail;
    std::fill(wide, wide + oh * wp, bias);
    for (int64_t ki = 0; ki < p.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < p.kernel_w; ++kj) {
        const float* src = padded + ki * p.dilation_h * wp + kj * p.dilation_w;
        accumulate_row(wide, src, w[ki * p.kernel_w + kj], oh * wp, 1);
      }
    }
    for (int64_t y = 0; y < oh; ++y) std::copy(wide + y * wp, wide + y * wp + ow, out + y * ow);
    return;
  }
  std::fill(out, out + oh * ow, bias);
  for (int64_t oy = 0; oy < oh; ++oy) {
    for (int64_t ki = 0; ki < p.kernel_h; ++ki) {
      const float* row = padded + (oy * p.stride_h + ki * p.dilation_h) * wp;
      for (int64_t kj = 0; kj < p.kernel_w; ++kj) {
        accumulate_row(out + oy * ow, row + kj * p.dilation_w, w[ki * p.kernel_w + kj], ow,
                       p.stride_w);
      }
    }
  }
}

int64_t depthwise_scratch(const Conv2dParams& p) {
  const int64_t wp = p.in_w + 2 * p.pad_w, hp = p.in_h + 2 * p.pad_h;
  const int64_t wide = p.stride_h == 1 && p.stride_w == 1 ? p.out_h() * wp : 0;
  return hp * wp + (p.kernel_w - 1) * p.dilation_w + wide;
}

void depthwise(const Conv2dParams& p, const float* input, const float* weight, const float* bias,
               float* output) {
  const int64_t plane_in = p.in_h * p.in_w;
  const int64_t plane_out = p.out_h() * p.out_w();
  const int64_t taps = p.kernel_h * p.kernel_w;
  const int64_t multiplier = p.out_channels / p.groups;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / (plane_out * taps + 1));
  parallel_for(0, p.batch * p.out_channels, grain, [&](int64_t lo, int64_t hi) {
    std::vector<float>& scratch = thread_scratch();
    scratch.resize(static_cast<size_t>(depthwise_scratch(p)));
    for (int64_t plane = lo; plane < hi; ++plane) {
      const int64_t n = plane / p.out_channels, oc = plane % p.out_channels;
      const float* in = input + (n * p.in_channels + oc / multiplier) * plane_in;
      depthwise_plane(p, in, weight + oc * taps, bias == nullptr ? 0.0f : bias[oc],
                      output + plane * plane_out, scratch.data());
    }
  });
}

// ---- im2col + GEMM ------------------------------------------------------------------------------

// columns[(c * kh + ki) * kw + kj, (y - y0) * ow + x] = in[c, y * sh - ph + ki * dh, x * sw - pw +
// kj * dw] (zero outside the image), for output rows y in [y0, y1) and the group's channels.
void im2col(const Conv2dParams& p, const float* in, int64_t y0, int64_t y1, float* columns) {
  const int64_t ow = p.out_w(), taps = p.kernel_h * p.kernel_w;
  const int64_t width = (y1 - y0) * ow;
  const int64_t rows = p.in_channels / p.groups * taps;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / (width + 1));
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t c = r / taps, ki = r % taps / p.kernel_w, kj = r % p.kernel_w;
      const int64_t offset = kj * p.dilation_w - p.pad_w;
      int64_t x_lo = 0, x_hi = 0;
      valid_range(ow, p.stride_w, offset, p.in_w, &x_lo, &x_hi);
      for (int64_t y = y0; y < y1; ++y) {
        float* dst = columns + r * width + (y - y0) * ow;
        const int64_t iy = y * p.stride_h - p.pad_h + ki * p.dilation_h;
        if (iy < 0 || iy >= p.in_h) {
          std::fill(dst, dst + ow, 0.0f);
          continue;
        }
        std::fill(dst, dst + x_lo, 0.0f);
        if (x_lo < x_hi) {
          // The input pixel under output column x_lo.
          const float* src = in + (c * p.in_h + iy) * p.in_w + x_lo * p.stride_w + offset;
          if (p.stride_w == 1) {
            std::memcpy(dst + x_lo, src, static_cast<size_t>(x_hi - x_lo) * sizeof(float));
          } else {
            for (int64_t x = 0; x < x_hi - x_lo; ++x) dst[x_lo + x] = src[x * p.stride_w];
          }
        }
        std::fill(dst + x_hi, dst + ow, 0.0f);
      }
    }
  });
}

// One image and one group: in / weight / out point at the group's first channel.
void conv_group(const Conv2dParams& p, const float* in, const float* weight, const float* bias,
                float* out) {
  const int64_t oc = p.out_channels / p.groups, ic = p.in_channels / p.groups;
  const int64_t oh = p.out_h(), ow = p.out_w();
  const int64_t depth = ic * p.kernel_h * p.kernel_w;
  SgemmExtras extras;  // the bias is added as the GEMM first writes each tile
  if (bias != nullptr) {
    extras.bias_kind = GemmBias::kPerRow;
    extras.bias = bias;
  }
  const bool pointwise = p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                         p.pad_h == 0 && p.pad_w == 0;
  if (pointwise) {  // the input planes already are the columns matrix
    sgemm_with(extras, false, false, oc, oh * ow, ic, 1.0f, weight, ic, in, p.in_h * p.in_w, 0.0f,
               out, oh * ow);
    return;
  }
  const int64_t band = std::clamp<int64_t>(kScratchFloats / (depth * ow), 1, oh);
  std::vector<float>& scratch = thread_scratch();
  scratch.resize(static_cast<size_t>(depth * band * ow));
  for (int64_t y0 = 0; y0 < oh; y0 += band) {
    const int64_t y1 = std::min(oh, y0 + band);
    const int64_t width = (y1 - y0) * ow;
    im2col(p, in, y0, y1, scratch.data());
    sgemm_with(extras, false, false, oc, width, depth, 1.0f, weight, depth, scratch.data(), width,
               0.0f, out + y0 * ow, oh * ow);
  }
}

// ---- transposed convolution ---------------------------------------------------------------------

// out[o, y * sh - ph + ki * dh, x * sw - pw + kj * dw] += columns[(o * kh + ki) * kw + kj,
// (y - y0) * iw + x] over the input rows y in [y0, y1), skipping positions outside the output.
void col2im(const ConvTranspose2dParams& p, const float* columns, int64_t y0, int64_t y1,
            float* out) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  const int64_t width = (y1 - y0) * p.in_w;
  const int64_t channels = p.out_channels / p.groups;
  // Each chunk owns whole output channels, so no two threads add into the same value.
  parallel_for(0, channels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      for (int64_t ki = 0; ki < p.kernel_h; ++ki) {
        for (int64_t kj = 0; kj < p.kernel_w; ++kj) {
          const float* src = columns + ((o * p.kernel_h + ki) * p.kernel_w + kj) * width;
          const int64_t offset = kj * p.dilation_w - p.pad_w;
          int64_t x_lo = 0, x_hi = 0;
          valid_range(p.in_w, p.stride_w, offset, ow, &x_lo, &x_hi);
          if (x_lo >= x_hi) continue;
          for (int64_t y = y0; y < y1; ++y) {
            const int64_t oy = y * p.stride_h - p.pad_h + ki * p.dilation_h;
            if (oy < 0 || oy >= oh) continue;
            float* dst = out + (o * oh + oy) * ow + x_lo * p.stride_w + offset;
            const float* row = src + (y - y0) * p.in_w + x_lo;
            for (int64_t x = 0; x < x_hi - x_lo; ++x) dst[x * p.stride_w] += row[x];
          }
        }
      }
    }
  });
}

// One image and one group of a transposed convolution.
void conv_transpose_group(const ConvTranspose2dParams& p, const float* in, const float* weight,
                          const float* bias, float* out) {
  const int64_t oc = p.out_channels / p.groups, ic = p.in_channels / p.groups;
  const int64_t depth = oc * p.kernel_h * p.kernel_w;
  fill_bias(out, oc, p.out_h() * p.out_w(), bias);
  const int64_t band = std::clamp<int64_t>(kScratchFloats / (depth * p.in_w), 1, p.in_h);
  std::vector<float>& scratch = thread_scratch();
  scratch.resize(static_cast<size_t>(depth * band * p.in_w));
  for (int64_t y0 = 0; y0 < p.in_h; y0 += band) {
    const int64_t y1 = std::min(p.in_h, y0 + band);
    const int64_t width = (y1 - y0) * p.in_w;
    // columns = weight^T x input: the group's weight is stored [ic, oc * kh * kw].
    sgemm(true, false, depth, width, ic, 1.0f, weight, depth, in + y0 * p.in_w, p.in_h * p.in_w,
          0.0f, scratch.data(), width);
    col2im(p, scratch.data(), y0, y1, out);
  }
}

// Runs task(i) for i in [0, count): across threads when the tasks are many or small, else one after
// another so each can use every thread itself.
template <typename Task>
void for_each_task(int64_t count, double flops_per_task, const Task& task) {
  const int64_t threads = default_thread_pool().num_threads();
  const bool across =
      count > 1 && (count % threads == 0 || count >= 4 * threads || flops_per_task < kSplitFlops);
  if (!across) {
    for (int64_t i = 0; i < count; ++i) task(i);
    return;
  }
  parallel_for(0, count, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) task(i);
  });
}

}  // namespace

int64_t Conv2dParams::out_h() const {
  return conv_out_size(in_h, kernel_h, stride_h, pad_h, dilation_h);
}

int64_t Conv2dParams::out_w() const {
  return conv_out_size(in_w, kernel_w, stride_w, pad_w, dilation_w);
}

int64_t ConvTranspose2dParams::out_h() const {
  const int64_t size =
      (in_h - 1) * stride_h - 2 * pad_h + dilation_h * (kernel_h - 1) + output_padding_h + 1;
  return std::max<int64_t>(size, 0);
}

int64_t ConvTranspose2dParams::out_w() const {
  const int64_t size =
      (in_w - 1) * stride_w - 2 * pad_w + dilation_w * (kernel_w - 1) + output_padding_w + 1;
  return std::max<int64_t>(size, 0);
}

void conv2d_nchw(const Conv2dParams& p, const float* input, const float* weight, const float* bias,
                 float* output) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  if (p.batch <= 0 || p.out_channels <= 0 || oh <= 0 || ow <= 0) return;
  if (p.in_channels <= 0) {  // an empty sum: the output is the bias
    fill_bias(output, p.out_channels, oh * ow, bias);
    for (int64_t n = 1; n < p.batch; ++n) {
      std::copy(output, output + p.out_channels * oh * ow, output + n * p.out_channels * oh * ow);
    }
    return;
  }
  if (p.groups > 1 && p.groups == p.in_channels) {
    depthwise(p, input, weight, bias, output);
    return;
  }
  const int64_t oc = p.out_channels / p.groups, ic = p.in_channels / p.groups;
  const int64_t weight_group = oc * ic * p.kernel_h * p.kernel_w;
  const double flops = 2.0 * static_cast<double>(weight_group) * static_cast<double>(oh * ow);
  for_each_task(p.batch * p.groups, flops, [&](int64_t task) {
    const int64_t n = task / p.groups, g = task % p.groups;
    conv_group(p, input + (n * p.in_channels + g * ic) * p.in_h * p.in_w, weight + g * weight_group,
               bias == nullptr ? nullptr : bias + g * oc,
               output + (n * p.out_channels + g * oc) * oh * ow);
  });
}

void conv_transpose2d_nchw(const ConvTranspose2dParams& p, const float* input, const float* weight,
                           const float* bias, float* output) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  if (p.batch <= 0 || p.out_channels <= 0 || oh <= 0 || ow <= 0) return;
  const int64_t oc = p.out_channels / p.groups, ic = p.in_channels / p.groups;
  const int64_t weight_group = ic * oc * p.kernel_h * p.kernel_w;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t g = 0; g < p.groups; ++g) {
      float* out = output + (n * p.out_channels + g * oc) * oh * ow;
      const float* group_bias = bias == nullptr ? nullptr : bias + g * oc;
      if (ic <= 0 || p.in_h <= 0 || p.in_w <= 0) {
        fill_bias(out, oc, oh * ow, group_bias);
        continue;
      }
      conv_transpose_group(p, input + (n * p.in_channels + g * ic) * p.in_h * p.in_w,
                           weight + g * weight_group, group_bias, out);
    }
  }
}

}  // namespace kiln::cpu
