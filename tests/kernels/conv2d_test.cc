#include "kernels/cpu/conv2d.h"

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::cpu {
namespace {

std::string describe(const Conv2dParams& p) {
  std::ostringstream out;
  out << "N" << p.batch << " C" << p.in_channels << " " << p.in_h << "x" << p.in_w << " -> O"
      << p.out_channels << " k" << p.kernel_h << "x" << p.kernel_w << " s" << p.stride_h << ","
      << p.stride_w << " p" << p.pad_h << "," << p.pad_w << " d" << p.dilation_h << ","
      << p.dilation_w << " g" << p.groups;
  return out.str();
}

// The definition of a grouped, strided, dilated, padded convolution, in double precision.
std::vector<double> reference_conv(const Conv2dParams& p, const std::vector<float>& in,
                                   const std::vector<float>& w, const float* bias) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  const int64_t icg = p.in_channels / p.groups, ocg = p.out_channels / p.groups;
  std::vector<double> out(static_cast<size_t>(p.batch * p.out_channels * oh * ow));
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t o = 0; o < p.out_channels; ++o) {
      const int64_t g = o / ocg;
      for (int64_t y = 0; y < oh; ++y) {
        for (int64_t x = 0; x < ow; ++x) {
          double sum = bias == nullptr ? 0.0 : bias[o];
          for (int64_t c = 0; c < icg; ++c) {
            for (int64_t ki = 0; ki < p.kernel_h; ++ki) {
              for (int64_t kj = 0; kj < p.kernel_w; ++kj) {
                const int64_t iy = y * p.stride_h - p.pad_h + ki * p.dilation_h;
                const int64_t ix = x * p.stride_w - p.pad_w + kj * p.dilation_w;
                if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) continue;
                const double iv =
                    in[((n * p.in_channels + g * icg + c) * p.in_h + iy) * p.in_w + ix];
                const double wv = w[((o * icg + c) * p.kernel_h + ki) * p.kernel_w + kj];
                sum += iv * wv;
              }
            }
          }
          out[((n * p.out_channels + o) * oh + y) * ow + x] = sum;
        }
      }
    }
  }
  return out;
}

// A convolution's operands: random input, weight and bias (seeds seed, seed + 1, seed + 2) and a
// NaN-filled output, so that every output value must be written, never read.
struct ConvBuffers {
  std::vector<float> in, weight, bias, out;
};
template <typename Params>
ConvBuffers conv_buffers(const Params& p, int64_t weight_count, uint32_t seed) {
  return {testing::random_floats(p.batch * p.in_channels * p.in_h * p.in_w, seed),
          testing::random_floats(weight_count, seed + 1),
          testing::random_floats(p.out_channels, seed + 2),
          std::vector<float>(static_cast<size_t>(p.batch * p.out_channels * p.out_h() * p.out_w()),
                             testing::kNaN)};
}

void check_conv(const Conv2dParams& p, bool with_bias, uint32_t seed) {
  ConvBuffers x =
      conv_buffers(p, p.out_channels * (p.in_channels / p.groups) * p.kernel_h * p.kernel_w, seed);
  const float* b = with_bias ? x.bias.data() : nullptr;
  conv2d_nchw(p, x.in.data(), x.weight.data(), b, x.out.data());
  testing::expect_values_near(std::vector<double>(x.out.begin(), x.out.end()),
                              reference_conv(p, x.in, x.weight, b), {},
                              describe(p) + (with_bias ? " bias" : ""));
}

Conv2dParams conv(int64_t batch, int64_t in_c, int64_t h, int64_t w, int64_t out_c, int64_t k,
                  int64_t stride, int64_t pad, int64_t dilation = 1, int64_t groups = 1) {
  return Conv2dParams{batch,  in_c,   h,   w,   out_c,    k,        k,
                      stride, stride, pad, pad, dilation, dilation, groups};
}

TEST(Conv2dTest, OutputSize) {
  EXPECT_EQ(conv(1, 3, 224, 224, 64, 7, 2, 3).out_h(), 112);
  EXPECT_EQ(conv(1, 64, 56, 56, 64, 3, 2, 1).out_w(), 28);
  EXPECT_EQ(conv(1, 1, 5, 5, 1, 3, 1, 0, 2).out_h(), 1);
  EXPECT_EQ(conv(1, 1, 4, 4, 1, 3, 1, 0, 2).out_h(), 0);  // dilated kernel (5) wider than input
  EXPECT_EQ(conv(1, 1, 1, 1, 1, 4, 3, 0).out_w(), 0);
}

TEST(Conv2dTest, DenseShapes) {
  const Conv2dParams cases[] = {
      conv(1, 3, 9, 9, 4, 3, 1, 1),      conv(2, 5, 8, 11, 7, 3, 2, 1),
      conv(1, 4, 7, 7, 6, 1, 1, 0),      conv(2, 6, 9, 6, 5, 1, 2, 0),
      conv(1, 3, 16, 16, 8, 7, 2, 3),    conv(1, 2, 10, 10, 3, 3, 1, 2, 2),
      conv(1, 3, 12, 13, 4, 5, 3, 2, 2), conv(1, 1, 1, 1, 1, 1, 1, 0),
      conv(1, 2, 3, 3, 2, 5, 1, 2),      conv(3, 16, 6, 6, 33, 3, 1, 1),
      conv(1, 1, 4, 4, 2, 4, 1, 0),      conv(1, 4, 5, 5, 2, 1, 1, 1),
      conv(1, 70, 12, 12, 20, 3, 1, 1),  conv(2, 8, 5, 5, 8, 2, 2, 0),
  };
  uint32_t seed = 1;
  for (const Conv2dParams& p : cases) {
    check_conv(p, false, seed++);
    check_conv(p, true, seed++);
  }
}

TEST(Conv2dTest, AsymmetricKernelStridePadDilation) {
  Conv2dParams p{2, 4, 11, 9, 6, 3, 2, 2, 1, 1, 0, 1, 3, 1};
  check_conv(p, true, 11);
  Conv2dParams q{1, 3, 7, 12, 5, 1, 4, 1, 3, 0, 2, 2, 1, 1};
  check_conv(q, false, 12);
}

TEST(Conv2dTest, GroupedShapes) {
  const Conv2dParams cases[] = {
      conv(1, 4, 8, 8, 6, 3, 1, 1, 1, 2),    conv(2, 6, 7, 9, 9, 3, 2, 1, 1, 3),
      conv(1, 8, 6, 6, 8, 1, 1, 0, 1, 4),    conv(1, 12, 10, 10, 4, 3, 1, 2, 2, 4),
      conv(3, 64, 5, 5, 64, 3, 1, 1, 1, 32),
  };
  uint32_t seed = 100;
  for (const Conv2dParams& p : cases) {
    check_conv(p, false, seed++);
    check_conv(p, true, seed++);
  }
}

TEST(Conv2dTest, DepthwiseShapes) {
  const Conv2dParams cases[] = {
      conv(1, 8, 10, 10, 8, 3, 1, 1, 1, 8), conv(2, 5, 9, 7, 5, 3, 2, 1, 1, 5),
      conv(1, 4, 12, 12, 4, 5, 1, 2, 1, 4), conv(1, 3, 11, 11, 3, 3, 1, 2, 2, 3),
      conv(1, 6, 8, 8, 12, 3, 1, 1, 1, 6),  conv(1, 4, 7, 7, 8, 3, 2, 0, 1, 4),
      conv(1, 3, 2, 2, 3, 5, 1, 2, 1, 3),   conv(1, 32, 14, 14, 32, 7, 3, 3, 1, 32),
  };
  uint32_t seed = 200;
  for (const Conv2dParams& p : cases) {
    check_conv(p, false, seed++);
    check_conv(p, true, seed++);
  }
  Conv2dParams q{1, 6, 9, 13, 6, 3, 1, 1, 2, 0, 1, 1, 2, 6};
  check_conv(q, true, seed++);
}

TEST(Conv2dTest, ShapesLargeEnoughToSplitAcrossThreads) {
  const Conv2dParams cases[] = {
      conv(1, 32, 20, 20, 96, 3, 1, 1),
      conv(2, 32, 20, 20, 96, 3, 2, 1),
      conv(1, 128, 7, 7, 256, 1, 1, 0),
      conv(3, 64, 9, 9, 64, 3, 1, 1, 1, 2),
  };
  uint32_t seed = 250;
  for (const Conv2dParams& p : cases) check_conv(p, true, seed++);
}

TEST(Conv2dTest, LargeImageUsesBoundedBands) {
  // 64 channels x 3 x 3 taps x 64 x 72 output pixels is more columns than one scratch band holds.
  check_conv(conv(1, 64, 64, 72, 4, 3, 1, 1), true, 300);
}

TEST(Conv2dTest, ZeroSizedOutputsWriteNothing) {
  std::vector<float> out(4, 7.0f);
  const std::vector<float> in(16, 1.0f), w(9, 1.0f);
  conv2d_nchw(conv(1, 1, 2, 2, 1, 3, 1, 0), in.data(), w.data(), nullptr, out.data());
  conv2d_nchw(conv(0, 1, 4, 4, 1, 3, 1, 0), in.data(), w.data(), nullptr, out.data());
  for (float v : out) EXPECT_EQ(v, 7.0f);
}

// ---- transposed convolution ---------------------------------------------------------------------

// Scatters every input pixel through the kernel: the definition of a transposed convolution.
std::vector<double> reference_conv_transpose(const ConvTranspose2dParams& p,
                                             const std::vector<float>& in,
                                             const std::vector<float>& w, const float* bias) {
  const int64_t oh = p.out_h(), ow = p.out_w();
  const int64_t icg = p.in_channels / p.groups, ocg = p.out_channels / p.groups;
  std::vector<double> out(static_cast<size_t>(p.batch * p.out_channels * oh * ow));
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t o = 0; o < p.out_channels; ++o) {
      for (int64_t i = 0; i < oh * ow; ++i) {
        out[(n * p.out_channels + o) * oh * ow + i] = bias == nullptr ? 0.0 : bias[o];
      }
    }
    for (int64_t c = 0; c < p.in_channels; ++c) {
      const int64_t g = c / icg;
      for (int64_t y = 0; y < p.in_h; ++y) {
        for (int64_t x = 0; x < p.in_w; ++x) {
          const double iv = in[((n * p.in_channels + c) * p.in_h + y) * p.in_w + x];
          for (int64_t o = 0; o < ocg; ++o) {
            for (int64_t ki = 0; ki < p.kernel_h; ++ki) {
              for (int64_t kj = 0; kj < p.kernel_w; ++kj) {
                const int64_t oy = y * p.stride_h - p.pad_h + ki * p.dilation_h;
                const int64_t ox = x * p.stride_w - p.pad_w + kj * p.dilation_w;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                const double wv = w[((c * ocg + o) * p.kernel_h + ki) * p.kernel_w + kj];
                out[((n * p.out_channels + g * ocg + o) * oh + oy) * ow + ox] += iv * wv;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

ConvTranspose2dParams deconv(int64_t batch, int64_t in_c, int64_t h, int64_t w, int64_t out_c,
                             int64_t k, int64_t stride, int64_t pad, int64_t output_padding,
                             int64_t dilation = 1, int64_t groups = 1) {
  return ConvTranspose2dParams{
      batch,          in_c,           h,        w,        out_c, k, k, stride, stride, pad, pad,
      output_padding, output_padding, dilation, dilation, groups};
}

void check_conv_transpose(const ConvTranspose2dParams& p, bool with_bias, uint32_t seed) {
  ConvBuffers x =
      conv_buffers(p, p.in_channels * (p.out_channels / p.groups) * p.kernel_h * p.kernel_w, seed);
  const float* b = with_bias ? x.bias.data() : nullptr;
  conv_transpose2d_nchw(p, x.in.data(), x.weight.data(), b, x.out.data());
  std::ostringstream what;
  what << "transpose N" << p.batch << " C" << p.in_channels << " " << p.in_h << "x" << p.in_w
       << " O" << p.out_channels << " k" << p.kernel_h << " s" << p.stride_h << " p" << p.pad_h
       << " op" << p.output_padding_h << " d" << p.dilation_h << " g" << p.groups;
  testing::expect_values_near(std::vector<double>(x.out.begin(), x.out.end()),
                              reference_conv_transpose(p, x.in, x.weight, b), {}, what.str());
}

TEST(ConvTranspose2dTest, OutputSize) {
  EXPECT_EQ(deconv(1, 4, 7, 7, 4, 3, 2, 1, 1).out_h(), 14);
  EXPECT_EQ(deconv(1, 4, 5, 5, 4, 4, 2, 1, 0).out_w(), 10);
  EXPECT_EQ(deconv(1, 4, 5, 5, 4, 3, 1, 0, 0, 2).out_h(), 9);
}

TEST(ConvTranspose2dTest, Shapes) {
  const ConvTranspose2dParams cases[] = {
      deconv(1, 3, 5, 5, 4, 3, 1, 0, 0),       deconv(2, 4, 6, 7, 3, 3, 2, 1, 1),
      deconv(1, 6, 4, 4, 4, 4, 2, 1, 0),       deconv(1, 2, 5, 3, 5, 1, 1, 0, 0),
      deconv(1, 3, 4, 4, 2, 1, 2, 0, 1),       deconv(1, 4, 5, 5, 6, 3, 3, 2, 2),
      deconv(1, 2, 4, 4, 3, 3, 2, 1, 1, 2),    deconv(2, 4, 5, 6, 6, 3, 2, 1, 0, 1, 2),
      deconv(1, 6, 3, 3, 6, 3, 1, 1, 0, 1, 6), deconv(1, 1, 1, 1, 1, 5, 1, 0, 0),
      deconv(1, 64, 20, 20, 4, 5, 2, 2, 1),
  };
  uint32_t seed = 400;
  for (const ConvTranspose2dParams& p : cases) {
    check_conv_transpose(p, false, seed++);
    check_conv_transpose(p, true, seed++);
  }
}

TEST(ConvTranspose2dTest, AsymmetricParameters) {
  ConvTranspose2dParams p{1, 4, 5, 7, 6, 3, 2, 2, 3, 1, 0, 1, 2, 1, 2, 2};
  check_conv_transpose(p, true, 500);
}

}  // namespace
}  // namespace kiln::cpu
