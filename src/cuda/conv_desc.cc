// Describing and validating a ConvDesc (conv_desc.h): no cuDNN, no GPU.
#include "cuda/conv_desc.h"

#include <algorithm>
#include <string>

namespace kiln::cuda {
namespace {

std::string list_str(const std::vector<int64_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out;
}

std::string dims_str(const std::vector<int64_t>& v) {
  return "[" + list_str(v) + "]";
}

std::string_view dtype_short(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "f32";
    case DType::kFloat16: return "f16";
    case DType::kBFloat16: return "bf16";
    default: return dtype_name(dtype);
  }
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
  return strides;
}

std::vector<int64_t> channels_last_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  if (dims.size() < 3) return contiguous_strides(dims);
  int64_t running = dims[1];
  for (size_t i = dims.size(); i-- > 2;) {
    strides[i] = running;
    running *= dims[i];
  }
  strides[1] = 1;
  strides[0] = running;
  return strides;
}

// Strides of size-1 dims carry no information (PyTorch sets them freely), so they are ignored.
bool same_layout(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                 const std::vector<int64_t>& expected) {
  if (strides.size() != dims.size()) return false;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] != 1 && strides[i] != expected[i]) return false;
  }
  return true;
}

std::string_view layout_name(const std::vector<int64_t>& dims,
                             const std::vector<int64_t>& strides) {
  const bool three_d = dims.size() == 5;
  if (same_layout(dims, strides, contiguous_strides(dims))) return three_d ? "ncdhw" : "nchw";
  if (same_layout(dims, strides, channels_last_strides(dims))) return three_d ? "ndhwc" : "nhwc";
  return "strided";
}

}  // namespace

bool conv_channels_last(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  return !same_layout(dims, strides, contiguous_strides(dims)) &&
         same_layout(dims, strides, channels_last_strides(dims));
}

// "conv2d x=[32,64,56,56] nhwc w=[64,64,3,3] y=[32,64,56,56] s=1,1 p=1,1 d=1,1 g=1 f16 bias+relu"
std::string describe_conv_desc(const ConvDesc& d) {
  const size_t spatial = d.x_dims.size() >= 2 ? d.x_dims.size() - 2 : 0;
  std::string out = str_cat(d.transposed ? "conv_transpose" : "conv", spatial, "d");
  const std::string_view x_layout = layout_name(d.x_dims, d.x_strides);
  out += str_cat(" x=", dims_str(d.x_dims), " ", x_layout);
  out += str_cat(" w=", dims_str(d.w_dims));
  if (layout_name(d.w_dims, d.w_strides) != x_layout) {
    out += str_cat(" ", layout_name(d.w_dims, d.w_strides));
  }
  out += str_cat(" y=", dims_str(d.y_dims));
  if (layout_name(d.y_dims, d.y_strides) != x_layout) {
    out += str_cat(" ", layout_name(d.y_dims, d.y_strides));
  }
  out +=
      str_cat(" s=", list_str(d.stride), " p=", list_str(d.padding), " d=", list_str(d.dilation));
  if (d.transposed && !d.output_padding.empty()) out += str_cat(" op=", list_str(d.output_padding));
  out += str_cat(" g=", d.groups, " ", dtype_short(d.dtype));
  if (d.dtype == DType::kFloat32 && !d.allow_tf32) out += " no-tf32";
  std::vector<std::string_view> epilogue;
  if (d.has_bias) epilogue.push_back("bias");
  if (d.has_residual) epilogue.push_back("add");
  if (d.activation == ConvActivation::kRelu) epilogue.push_back("relu");
  for (size_t i = 0; i < epilogue.size(); ++i) out += str_cat(i ? "+" : " ", epilogue[i]);
  return out;
}

namespace {

Status validate_tensor(std::string_view name, const std::vector<int64_t>& dims,
                       const std::vector<int64_t>& strides, size_t rank) {
  if (dims.size() != rank) {
    return invalid_argument(name, "=", dims_str(dims), " has rank ", dims.size(),
                            "; expected rank ", rank, " like x");
  }
  if (strides.size() != dims.size()) {
    return invalid_argument(name, " has ", dims.size(), " dims but ", strides.size(), " strides (",
                            dims_str(strides), ")");
  }
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) return invalid_argument(name, "=", dims_str(dims), ": negative dim ", i);
    if (dims[i] == 0) {
      return unsupported(name, "=", dims_str(dims), " is empty; callers skip empty convolutions");
    }
    if (strides[i] < 1) {
      return unsupported(name, " strides ", dims_str(strides),
                         ": cuDNN needs positive strides (no broadcast dims)");
    }
  }
  return ok_status();
}

Status validate_params(const ConvDesc& d, size_t spatial) {
  auto check = [&](std::string_view what, const std::vector<int64_t>& v, int64_t min) -> Status {
    if (v.size() != spatial) {
      return invalid_argument(what, " has ", v.size(), " values (", list_str(v), "); expected ",
                              spatial, ", one per spatial dim");
    }
    for (int64_t value : v) {
      if (value < min) {
        return invalid_argument(what, " ", list_str(v), ": expected values >= ", min);
      }
    }
    return ok_status();
  };
  KILN_RETURN_IF_ERROR(check("stride", d.stride, 1));
  KILN_RETURN_IF_ERROR(check("padding", d.padding, 0));
  KILN_RETURN_IF_ERROR(check("dilation", d.dilation, 1));
  if (d.output_padding.empty()) return ok_status();
  KILN_RETURN_IF_ERROR(check("output_padding", d.output_padding, 0));
  for (size_t i = 0; i < spatial; ++i) {
    const int64_t op = d.output_padding[i];
    if (!d.transposed && op != 0) {
      return invalid_argument("output_padding ", list_str(d.output_padding),
                              " on a forward convolution; expected zeros");
    }
    if (d.transposed && op >= std::max(d.stride[i], d.dilation[i])) {
      return invalid_argument("output_padding ", list_str(d.output_padding),
                              ": each value must be smaller than its stride or dilation (s=",
                              list_str(d.stride), " d=", list_str(d.dilation), ")");
    }
  }
  return ok_status();
}

// Checks groups against the channels and returns y's expected dims from the conv arithmetic.
Result<std::vector<int64_t>> expected_output_dims(const ConvDesc& d) {
  const size_t rank = d.x_dims.size();
  const int64_t g = d.groups;
  const int64_t c_in = d.x_dims[1];
  if (g < 1) return invalid_argument("groups=", g, ": expected >= 1");
  if (c_in % g != 0) {
    return invalid_argument("groups=", g, " does not divide x's ", c_in, " channels");
  }
  int64_t c_out = 0;
  if (!d.transposed) {
    c_out = d.w_dims[0];
    if (c_out % g != 0) {
      return invalid_argument("groups=", g, " does not divide w's ", c_out, " output channels");
    }
    if (d.w_dims[1] != c_in / g) {
      return invalid_argument("w=", dims_str(d.w_dims), ": expected [C_out, C_in/groups=", c_in / g,
                              ", kernel...] for x's ", c_in, " channels and groups=", g);
    }
  } else {
    if (d.w_dims[0] != c_in) {
      return invalid_argument("transposed w=", dims_str(d.w_dims), ": expected [C_in=", c_in,
                              ", C_out/groups, kernel...]");
    }
    c_out = d.w_dims[1] * g;
  }
  std::vector<int64_t> y = {d.x_dims[0], c_out};
  for (size_t i = 2; i < rank; ++i) {
    const size_t j = i - 2;
    const int64_t in = d.x_dims[i], k = d.w_dims[i];
    const int64_t s = d.stride[j], p = d.padding[j], dil = d.dilation[j];
    const int64_t extent = dil * (k - 1) + 1;
    if (!d.transposed) {
      if (in + 2 * p < extent) {
        return invalid_argument("spatial dim ", j, ": the dilated kernel spans ", extent,
                                " but the padded input has only ", in + 2 * p,
                                " (x=", dims_str(d.x_dims), " w=", dims_str(d.w_dims), ")");
      }
      y.push_back((in + 2 * p - extent) / s + 1);
    } else {
      const int64_t op = d.output_padding.empty() ? 0 : d.output_padding[j];
      const int64_t out = (in - 1) * s - 2 * p + extent + op;
      if (out < 1) {
        return invalid_argument("spatial dim ", j, ": the transposed convolution's output size ",
                                out, " is not positive");
      }
      y.push_back(out);
    }
  }
  return y;
}

}  // namespace

Status validate_conv_desc(const ConvDesc& d) {
  if (d.dtype != DType::kFloat32 && d.dtype != DType::kFloat16 && d.dtype != DType::kBFloat16) {
    return unsupported("cuDNN convolutions take float32, float16 or bfloat16; found ",
                       dtype_name(d.dtype));
  }
  const size_t rank = d.x_dims.size();
  if (rank != 4 && rank != 5) {
    return invalid_argument("x=", dims_str(d.x_dims), " has rank ", rank,
                            "; expected 4 (N, C, H, W) or 5 (N, C, D, H, W)");
  }
  KILN_RETURN_IF_ERROR(validate_tensor("x", d.x_dims, d.x_strides, rank));
  KILN_RETURN_IF_ERROR(validate_tensor("w", d.w_dims, d.w_strides, rank));
  KILN_RETURN_IF_ERROR(validate_tensor("y", d.y_dims, d.y_strides, rank));
  KILN_RETURN_IF_ERROR(validate_params(d, rank - 2));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> expected, expected_output_dims(d));
  if (expected != d.y_dims) {
    return invalid_argument("expected y=", dims_str(expected), " for x=", dims_str(d.x_dims),
                            " w=", dims_str(d.w_dims), " s=", list_str(d.stride),
                            " p=", list_str(d.padding), " d=", list_str(d.dilation),
                            d.transposed ? " op=" + list_str(d.output_padding) : std::string(),
                            " g=", d.groups, "; found y=", dims_str(d.y_dims));
  }
  return ok_status();
}

int64_t conv_span_elements(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t i = 0; i < dims.size(); ++i) last += (dims[i] - 1) * strides[i];
  return last + 1;
}

}  // namespace kiln::cuda
