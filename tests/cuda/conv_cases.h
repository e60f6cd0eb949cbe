// Shared by the convolution tests: conv cases (shapes, layouts, dtypes, epilogues) and the desc
// each becomes.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/conv.h"

namespace kiln::cuda::convtest {

inline constexpr size_t kWorkspaceLimit = size_t{256} << 20;

inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return strides;
}

// PyTorch's channels_last / channels_last_3d strides.
inline std::vector<int64_t> channels_last_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  int64_t running = dims[1];
  for (size_t i = dims.size(); i-- > 2;) {
    strides[i] = running;
    running *= dims[i];
  }
  strides[0] = running;
  return strides;
}

// One convolution to test; y's dims follow from PyTorch's output-size formulas.
struct ConvCase {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> x_dims, w_dims;
  std::vector<int64_t> stride, padding, dilation, output_padding;
  int64_t groups = 1;
  bool transposed = false;
  bool channels_last = false;
  bool bias = false;
  bool residual = false;
  bool relu = false;
  bool autotune = false;
  size_t workspace_limit = kWorkspaceLimit;
  double tol = 1e-4;  // rtol = atol
};

inline ConvDesc desc_for(const ConvCase& c) {
  ConvDesc d;
  d.dtype = c.dtype;
  d.x_dims = c.x_dims;
  d.w_dims = c.w_dims;
  d.stride = c.stride;
  d.padding = c.padding;
  d.dilation = c.dilation;
  d.output_padding = c.output_padding;
  d.groups = c.groups;
  d.transposed = c.transposed;
  d.has_bias = c.bias;
  d.has_residual = c.residual;
  d.activation = c.relu ? ConvActivation::kRelu : ConvActivation::kNone;
  d.allow_tf32 = false;
  const int64_t c_out = c.transposed ? c.w_dims[1] * c.groups : c.w_dims[0];
  d.y_dims = {c.x_dims[0], c_out};
  for (size_t i = 2; i < c.x_dims.size(); ++i) {
    const size_t j = i - 2;
    const int64_t extent = c.dilation[j] * (c.w_dims[i] - 1) + 1;
    if (c.transposed) {
      const int64_t op = c.output_padding.empty() ? 0 : c.output_padding[j];
      d.y_dims.push_back((c.x_dims[i] - 1) * c.stride[j] - 2 * c.padding[j] + extent + op);
    } else {
      d.y_dims.push_back((c.x_dims[i] + 2 * c.padding[j] - extent) / c.stride[j] + 1);
    }
  }
  auto strides = c.channels_last ? channels_last_strides : contiguous_strides;
  d.x_strides = strides(d.x_dims);
  d.w_strides = strides(d.w_dims);
  d.y_strides = strides(d.y_dims);
  return d;
}

// A 2-D forward conv desc that passes validation: x=[2,8,9,9], w=[16,8,3,3], y=[2,16,9,9].

}  // namespace kiln::cuda::convtest
