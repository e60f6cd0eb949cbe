// What conv.cc knows about a ConvDesc without cuDNN or a GPU: its one-line description (in
// errors, plan names and timing-cache keys), its validation, and layout facts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/conv.h"
#include "kiln/status.h"

namespace kiln::cuda {

// "conv2d x=[2,8,9,9] nchw w=[16,8,3,3] y=[2,16,9,9] s=[1,1] p=[1,1] d=[1,1] g=1 f32 bias+relu"
std::string describe_conv_desc(const ConvDesc& desc);
// Ranks, strides, parameters and y's dims against the convolution's output size: invalid_argument
// for inconsistent descs, unsupported for what cuDNN cannot take (empty or broadcast tensors).
Status validate_conv_desc(const ConvDesc& desc);
// Whether the strides are channels-last (NHWC / NDHWC) and not also contiguous.
bool conv_channels_last(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides);
// Elements from the first to one past the last that a tensor of these dims and strides touches.
int64_t conv_span_elements(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides);

}  // namespace kiln::cuda
