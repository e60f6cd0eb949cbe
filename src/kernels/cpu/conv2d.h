// fp32 2-D convolution and transposed convolution for the CPU backend, on raw NCHW buffers.
//
// All tensors are contiguous NCHW (weights as PyTorch lays them out). The caller owns every buffer
// and has checked the shapes (channels divisible by groups, positive strides and dilations,
// non-negative padding, output_padding below the stride or the dilation); the functions keep no
// pointer after returning. The output must not overlap the input or the weight. Work is spread over
// default_thread_pool(); the functions may be called from several threads at once.
//
// Memory: each thread keeps a scratch buffer between calls, sized for the largest convolution it
// has run and capped near 8 MiB (one output row's im2col columns can exceed the cap when a single
// row is larger than that).
#pragma once

#include <cstdint>

namespace kiln::cpu {

struct Conv2dParams {
  int64_t batch = 1;
  int64_t in_channels = 0;
  int64_t in_h = 0;
  int64_t in_w = 0;
  int64_t out_channels = 0;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_h = 0;
  int64_t pad_w = 0;
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;
  int64_t groups = 1;

  // floor((in + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1, or 0 when the dilated kernel
  // does not fit the padded input.
  int64_t out_h() const;
  int64_t out_w() const;
};

// output[batch, out_channels, out_h, out_w] = conv(input[batch, in_channels, in_h, in_w],
// weight[out_channels, in_channels / groups, kernel_h, kernel_w]) + bias[out_channels].
// `bias` may be null. Uses a direct loop for depthwise convolutions (groups == in_channels > 1), a
// plain GEMM for 1x1 stride-1 unpadded ones, and im2col + GEMM (in bounded chunks of output rows)
// otherwise.
void conv2d_nchw(const Conv2dParams& params, const float* input, const float* weight,
                 const float* bias, float* output);

// The gradient of conv2d with respect to its input, used as a layer (PyTorch's ConvTranspose2d).
// in_* describe the transposed convolution's input; output_padding adds rows/columns at the
// bottom/right of the output.
struct ConvTranspose2dParams {
  int64_t batch = 1;
  int64_t in_channels = 0;
  int64_t in_h = 0;
  int64_t in_w = 0;
  int64_t out_channels = 0;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_h = 0;
  int64_t pad_w = 0;
  int64_t output_padding_h = 0;
  int64_t output_padding_w = 0;
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;
  int64_t groups = 1;

  // (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1, or 0 if negative.
  int64_t out_h() const;
  int64_t out_w() const;
};

// output[batch, out_channels, out_h, out_w] = conv_transpose(input[batch, in_channels, in_h, in_w],
// weight[in_channels, out_channels / groups, kernel_h, kernel_w]) + bias[out_channels].
// `bias` may be null. GEMM into columns, then col2im scatter-adds them into the output.
void conv_transpose2d_nchw(const ConvTranspose2dParams& params, const float* input,
                           const float* weight, const float* bias, float* output);

}  // namespace kiln::cpu
