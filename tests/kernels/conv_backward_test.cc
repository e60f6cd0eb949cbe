// convolution_backward (inference + CPU kernel): hard-coded gradients from PyTorch 2.11 eager, and
// for more geometries the identity a convolution's gradients satisfy because it is bilinear:
// sum(grad_output * conv(x, w)) == sum(grad_input * x) == sum(grad_weight * w), with the forward
// computed by kiln's own convolution kernel.
#include <gtest/gtest.h>

#include "kernels/graph_call.h"
#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

using Ints = std::vector<int64_t>;

struct Geometry {
  Ints stride, padding, dilation;
  bool transposed = false;
  Ints output_padding;
  int64_t groups = 1;
};

std::vector<ir::SymInt> sym_ints(const Ints& values) {
  std::vector<ir::SymInt> out;
  for (int64_t v : values) out.push_back(ir::SymInt{v, nullptr});
  return out;
}

// ((i * a) % b - b / 2) / 2 in row-major order: small values, exact in every dtype used here.
Tensor ramp(DType dtype, Shape shape, int64_t a, int64_t b) {
  std::vector<double> values(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<double>(static_cast<int64_t>(i) * a % b - b / 2) / 2.0;
  }
  return make_tensor(dtype, std::move(shape), values);
}

Result<std::vector<ir::RtValue>> backward(const Tensor& grad_output, const Tensor& input,
                                          const Tensor& weight, const Geometry& g,
                                          std::vector<bool> mask = {true, true, true}) {
  const int64_t out_channels = grad_output.size(1);
  return graph_call("aten.convolution_backward.default", {grad_output, input, weight},
                    {GraphInput{0}, GraphInput{1}, GraphInput{2},
                     ir::Argument(sym_ints({out_channels})), ir::Argument(sym_ints(g.stride)),
                     ir::Argument(sym_ints(g.padding)), ir::Argument(sym_ints(g.dilation)),
                     ir::Argument(g.transposed), ir::Argument(sym_ints(g.output_padding)),
                     ir::Argument(g.groups), ir::Argument(mask)});
}

Tensor forward(const Tensor& input, const Tensor& weight, const Geometry& g) {
  OpCall call{.target = "aten.convolution.default",
              .inputs = {input, weight},
              .args = {TensorArg{0}, TensorArg{1}, ir::NoneArg{}, g.stride, g.padding, g.dilation,
                       g.transposed, g.output_padding, g.groups}};
  return run1(call);
}

double dot(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = to_doubles(a), y = to_doubles(b);
  EXPECT_EQ(x.size(), y.size());
  double sum = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) sum += x[i] * y[i];
  return sum;
}

TEST(ConvolutionBackward, TwoDGroupedMatchesEager) {
  const Geometry g{{2, 1}, {1, 0}, {1, 2}, false, {0, 0}, 2};
  const Tensor x = ramp(kF32, {1, 2, 3, 4}, 7, 11), w = ramp(kF32, {2, 1, 2, 2}, 5, 7);
  const Tensor gy = ramp(kF32, {1, 2, 2, 2}, 3, 5);
  auto out = backward(gy, x, w, g);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_tensor((*out)[0].tensor, kF32, {1, 2, 3, 4},
                {0,    0,    1,     -0.5,  0.75, -1.5, -0.5,  1,    0,     0,     0.5,   -1,
                 0,    0.5,  0,     1.5,   0.75, -0.75, 0.25, -0.25, -0.25, 0.25, -0.75, 0.75});
  expect_tensor((*out)[1].tensor, kF32, {2, 1, 2, 2}, {-1.75, -1, 5.5, 0, -1.75, 1, 2, -2.25});
  expect_tensor((*out)[2].tensor, kF32, {2}, {0, -1});
}

TEST(ConvolutionBackward, OneDTransposedMatchesEagerAndSkipsMaskedOutputs) {
  const Geometry g{{2}, {1}, {2}, true, {1}, 1};
  const Tensor x = ramp(kF32, {1, 2, 3}, 7, 11), w = ramp(kF32, {2, 2, 2}, 5, 7);
  const Tensor gy = ramp(kF32, {1, 2, 6}, 3, 5);
  auto out = backward(gy, x, w, g, {true, true, false});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_tensor((*out)[0].tensor, kF32, {1, 2, 3}, {1, 0.25, -3, 1, 1.5, 0.25});
  expect_tensor((*out)[1].tensor, kF32, {2, 2, 2}, {-0.5, 0.75, -0.5, 0.75, -1.25, 3.25, -0.25, -2});
  EXPECT_FALSE((*out)[2].tensor.has_data());
}

// Gradients against the forward kernel, for geometries eager's OpInfos use.
void expect_adjoint(DType dtype, Shape x_shape, Shape w_shape, const Geometry& g) {
  SCOPED_TRACE(shape_to_string(x_shape) + " * " + shape_to_string(w_shape));
  const Tensor x = ramp(dtype, x_shape, 7, 11), w = ramp(dtype, w_shape, 5, 7);
  const Tensor y = forward(x, w, g);
  ASSERT_TRUE(y.has_data());
  const Tensor gy = ramp(dtype, y.sizes(), 3, 5);
  auto out = backward(gy, x, w, g);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const double expected = dot(gy, y);
  EXPECT_NEAR(dot((*out)[0].tensor, x), expected, 1e-3 * (1 + std::abs(expected)));
  EXPECT_NEAR(dot((*out)[1].tensor, w), expected, 1e-3 * (1 + std::abs(expected)));
  EXPECT_EQ((*out)[0].tensor.sizes(), x.sizes());
  EXPECT_EQ((*out)[1].tensor.sizes(), w.sizes());
  EXPECT_EQ((*out)[2].tensor.sizes(), (Shape{y.size(1)}));
}

TEST(ConvolutionBackward, AdjointOfTheForwardKernel) {
  expect_adjoint(kF32, {2, 4, 7}, {6, 2, 3}, {{2}, {1}, {1}, false, {0}, 2});
  expect_adjoint(kF32, {2, 3, 6, 5}, {4, 3, 3, 2}, {{1, 2}, {1, 1}, {2, 1}, false, {0, 0}, 1});
  expect_adjoint(kF32, {1, 2, 4, 4, 3}, {2, 1, 2, 3, 2}, {{1, 1, 2}, {0, 1, 1}, {1, 1, 1},
                                                         false, {0, 0, 0}, 2});
  expect_adjoint(kF32, {2, 4, 3, 3}, {4, 1, 3, 2}, {{2, 2}, {1, 0}, {1, 1}, true, {1, 1}, 2});
  expect_adjoint(kF32, {1, 2, 2, 3, 2}, {2, 3, 2, 2, 2}, {{2, 1, 2}, {0, 1, 0}, {1, 2, 1}, true,
                                                         {1, 0, 0}, 1});
  expect_adjoint(kF16, {1, 2, 5, 5}, {2, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1});
}

TEST(ConvolutionBackward, Errors) {
  const Geometry g{{1}, {0}, {1}, false, {0}, 1};
  const Tensor x = ramp(kF32, {1, 2, 5}, 7, 11), w = ramp(kF32, {3, 2, 2}, 5, 7);
  auto wrong = backward(ramp(kF32, {1, 3, 5}, 3, 5), x, w, g);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("the convolution's output"), std::string::npos)
      << wrong.status().to_string();
  auto ints = backward(ramp(kI64, {1, 3, 4}, 3, 5), ramp(kI64, {1, 2, 5}, 7, 11),
                       ramp(kI64, {3, 2, 2}, 5, 7), g);
  ASSERT_FALSE(ints.ok());
  EXPECT_EQ(ints.status().code(), StatusCode::kUnsupported) << ints.status().to_string();
}

}  // namespace
}  // namespace kiln::testing
