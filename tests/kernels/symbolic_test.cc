// The symbolic-size ops that read a tensor's geometry (sym_size, sym_numel, sym_stride,
// sym_storage_offset, sym_is_contiguous) run on tensors of several layouts, as a program that
// torch.export saved without kiln's lowering has them. Expected values are PyTorch 2.11's.
#include <gtest/gtest.h>

#include "kernels/graph_call.h"
#include "support/op_runner.h"

namespace kiln::testing {
namespace {

// Runs `target(x, extra...)`, whose one output is a symbolic value of `kind`.
Result<ir::RtValue> run_symbolic(const std::string& target, const Tensor& x,
                                 std::vector<ir::Argument> extra, ir::ValueKind kind) {
  std::vector<GraphArg> args{GraphInput{0}};
  for (auto& a : extra) args.push_back(std::move(a));
  KILN_ASSIGN_OR_RETURN(auto values, graph_call(target, {x}, args, {kind}));
  return values.at(0);
}

int64_t sym_int(const std::string& target, const Tensor& x, std::vector<ir::Argument> extra = {}) {
  auto v = run_symbolic(target, x, std::move(extra), ir::ValueKind::kSymInt);
  EXPECT_TRUE(v.ok()) << v.status().to_string();
  return v.ok() ? v->i : -1;
}

bool is_contiguous(const Tensor& x, ir::MemoryFormat format = ir::MemoryFormat::kContiguous) {
  auto v = run_symbolic("aten.sym_is_contiguous.default", x, {ir::Argument(format)},
                        ir::ValueKind::kSymBool);
  EXPECT_TRUE(v.ok()) << v.status().to_string();
  return v.ok() && v->b;
}

// A view of a fresh [rows, cols] buffer with the given geometry.
Tensor strided(Shape sizes, Shape strides, int64_t offset, int64_t storage_elements) {
  Tensor base = arange_tensor(DType::kFloat32, {storage_elements});
  return base.view_as(std::move(sizes), std::move(strides), offset);
}

TEST(Symbolic, SizeNumelAndStride) {
  const Tensor x = arange_tensor(DType::kFloat32, {3, 5});
  EXPECT_EQ(sym_int("aten.sym_size.int", x, {ir::Argument(int64_t{0})}), 3);
  EXPECT_EQ(sym_int("aten.sym_size.int", x, {ir::Argument(int64_t{-1})}), 5);
  EXPECT_EQ(sym_int("aten.sym_numel.default", x), 15);
  EXPECT_EQ(sym_int("aten.sym_stride.int", x, {ir::Argument(int64_t{0})}), 5);
  EXPECT_EQ(sym_int("aten.sym_numel.default", arange_tensor(DType::kInt64, {2, 0, 4})), 0);
}

TEST(Symbolic, StorageOffsetOfAView) {
  // torch.arange(20.)[5:].view(3, 5): storage_offset() == 5; x[:, 1] of a [4, 5] tensor: 1.
  EXPECT_EQ(sym_int("aten.sym_storage_offset.default", strided({3, 5}, {5, 1}, 5, 20)), 5);
  EXPECT_EQ(sym_int("aten.sym_storage_offset.default", strided({4}, {5}, 1, 20)), 1);
  EXPECT_EQ(sym_int("aten.sym_storage_offset.default", arange_tensor(DType::kFloat32, {2, 3})),
            0);
}

TEST(Symbolic, IsContiguous) {
  EXPECT_TRUE(is_contiguous(arange_tensor(DType::kFloat32, {3, 4})));
  // torch.empty(3, 4).t(): not contiguous; torch.empty(4, 1).t() (size-1 dim): contiguous.
  EXPECT_FALSE(is_contiguous(strided({4, 3}, {1, 4}, 0, 12)));
  EXPECT_TRUE(is_contiguous(strided({1, 4}, {1, 1}, 0, 4)));
  // torch.empty(3, 8)[:, ::2]: strided rows; an empty tensor of any strides is contiguous.
  EXPECT_FALSE(is_contiguous(strided({3, 4}, {8, 2}, 0, 24)));
  EXPECT_TRUE(is_contiguous(strided({0, 4}, {1, 7}, 0, 1)));
}

TEST(Symbolic, IsContiguousChannelsLast) {
  using ir::MemoryFormat;
  // torch.empty(2, 3, 4, 5): contiguous, not channels-last; its channels_last copy has strides
  // (60, 1, 15, 3).
  const Tensor nchw = arange_tensor(DType::kFloat32, {2, 3, 4, 5});
  EXPECT_FALSE(is_contiguous(nchw, MemoryFormat::kChannelsLast));
  const Tensor nhwc = strided({2, 3, 4, 5}, {60, 1, 15, 3}, 0, 120);
  EXPECT_TRUE(is_contiguous(nhwc, MemoryFormat::kChannelsLast));
  EXPECT_FALSE(is_contiguous(nhwc));
  // torch.empty(2, 3, 1, 1) is both; torch.empty(0, 3, 2, 2) is contiguous only; a 2-D tensor
  // is never channels-last.
  const Tensor pointwise = arange_tensor(DType::kFloat32, {2, 3, 1, 1});
  EXPECT_TRUE(is_contiguous(pointwise, MemoryFormat::kChannelsLast));
  EXPECT_FALSE(is_contiguous(arange_tensor(DType::kFloat32, {0, 3, 2, 2}),
                             MemoryFormat::kChannelsLast));
  EXPECT_FALSE(is_contiguous(arange_tensor(DType::kFloat32, {2, 3}), MemoryFormat::kChannelsLast));
  // torch.empty(2, 3, 4, 5, 6, memory_format=torch.channels_last_3d): strides (360, 1, 90, 18, 3).
  EXPECT_TRUE(is_contiguous(strided({2, 3, 4, 5, 6}, {360, 1, 90, 18, 3}, 0, 720),
                            MemoryFormat::kChannelsLast3d));
}

}  // namespace
}  // namespace kiln::testing
