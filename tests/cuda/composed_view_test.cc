// ComposedView: reshapes and permutes of strided tensors as lists of (size, stride) modes, and
// the point where a chain of them has one stride per dim again.
#include "cuda/composed_view.h"

#include <gtest/gtest.h>

namespace kiln::cuda {
namespace {

Tensor strided(const Shape& sizes, const Shape& strides, int64_t offset = 0) {
  auto storage =
      Storage::borrow(reinterpret_cast<void*>(uintptr_t{1} << 40), size_t{1} << 30, nullptr);
  return Tensor::from_storage(storage, DType::kFloat16, sizes, strides, offset).value();
}

TEST(ComposedViewTest, OfATensorKeepsItsStrides) {
  const ComposedView v = ComposedView::of(strided({4, 1, 6}, {6, 99, 1}, 3));
  EXPECT_EQ(v.sizes(), (Shape{4, 1, 6}));
  EXPECT_EQ(v.offset(), 3);
  ASSERT_TRUE(v.strides());
  EXPECT_EQ((*v.strides())[0], 6);
  EXPECT_EQ((*v.strides())[2], 1);
}

// torch.nn.MultiheadAttention's head split: select [L, N, E] of a [L, N, 3E] projection, view
// [L, N*H, D] (no strides express it), permute [N*H, L, D], view [N, H, L, D] (strides again).
TEST(ComposedViewTest, MultiheadAttentionHeadSplitResolvesToStrides) {
  const int64_t L = 5, N = 3, H = 4, D = 8, E = H * D;
  const Tensor q = strided({L, N, E}, {N * 3 * E, 3 * E, 1});
  auto merged = ComposedView::of(q).reshape({L, N * H, D});
  ASSERT_TRUE(merged.ok()) << merged.status().to_string();
  EXPECT_FALSE(merged->strides()) << "N and H have different strides";
  auto moved = merged->permute({1, 0, 2});
  ASSERT_TRUE(moved.ok());
  EXPECT_FALSE(moved->strides());
  auto split = moved->reshape({N, H, L, D});
  ASSERT_TRUE(split.ok()) << split.status().to_string();
  ASSERT_TRUE(split->strides());
  EXPECT_EQ(*split->strides(), (Shape{3 * E, D, N * 3 * E, 1}));
}

TEST(ComposedViewTest, ContiguousModesMergeAndSplitFreely) {
  auto v = ComposedView::of(strided({2, 3, 4}, {12, 4, 1})).reshape({6, 2, 2});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->strides());
  EXPECT_EQ(*v->strides(), (Shape{4, 2, 1}));
  auto back = v->reshape({24});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back->strides(), (Shape{1}));
}

TEST(ComposedViewTest, SizeOneDimsComeAndGo) {
  auto v = ComposedView::of(strided({3, 1, 4}, {4, 4, 1})).reshape({1, 3, 4, 1});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->strides());
  EXPECT_EQ(v->sizes(), (Shape{1, 3, 4, 1}));
  EXPECT_EQ((*v->strides())[1], 4);
  EXPECT_EQ((*v->strides())[2], 1);
}

TEST(ComposedViewTest, UnevenSplitsAndEmptyViewsFail) {
  // A transposed [3, 4] (modes 3 then 4, not contiguous together) cannot become [2, 6]: 2
  // neither divides nor is divided by the 3-mode.
  auto uneven = ComposedView::of(strided({3, 4}, {1, 3})).reshape({2, 6});
  EXPECT_FALSE(uneven.ok());
  // A transposed [4, 3] can: [2, 6] takes the 4-mode's outer half, then its inner half and the
  // 3-mode, which is a composition (no strides) but no error.
  auto composed = ComposedView::of(strided({4, 3}, {1, 4})).reshape({2, 6});
  ASSERT_TRUE(composed.ok());
  EXPECT_FALSE(composed->strides());
  auto empty = ComposedView::of(strided({0, 3}, {3, 1})).reshape({3, 0});
  EXPECT_FALSE(empty.ok());
  auto count = ComposedView::of(strided({2, 3}, {3, 1})).reshape({7});
  EXPECT_FALSE(count.ok());
}

TEST(ComposedViewTest, PermuteChecksItsOrder) {
  const ComposedView v = ComposedView::of(strided({2, 3}, {3, 1}));
  EXPECT_FALSE(v.permute({0}).ok());
  EXPECT_FALSE(v.permute({0, 0}).ok());
  auto t = v.permute({1, 0});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->strides(), (Shape{1, 3}));
}

}  // namespace
}  // namespace kiln::cuda
