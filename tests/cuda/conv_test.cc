// cuDNN convolutions: desc validation, which runs everywhere before any cuDNN or CUDA call. On a
// GPU with cuDNN, every supported conv against a CPU convolution: conv_gpu_test.cc.
#include "cuda/conv.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "conv_cases.h"

namespace kiln::cuda {
namespace {

using namespace convtest;

ConvDesc valid_desc() {
  ConvCase c;
  c.x_dims = {2, 8, 9, 9};
  c.w_dims = {16, 8, 3, 3};
  c.stride = {1, 1};
  c.padding = {1, 1};
  c.dilation = {1, 1};
  return desc_for(c);
}

Status create_status(const ConvDesc& desc) {
  return ConvPlan::create(desc, kWorkspaceLimit, false, nullptr).status();
}

// ---- validation: runs everywhere, before any cuDNN or CUDA call ----

TEST(ConvValidationTest, RejectsNonFloatDtype) {
  ConvDesc desc = valid_desc();
  desc.dtype = DType::kInt32;
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.to_string();
  EXPECT_NE(s.message().find("float32, float16 or bfloat16; found int32"), std::string::npos)
      << s.message();
}

// A deferred create() reports the same error through ready() and run(), from a plan worker.
TEST(ConvValidationTest, DeferredCreateReportsItsErrorThroughReadyAndRun) {
  ConvDesc desc = valid_desc();
  desc.dtype = DType::kInt32;
  auto plan = ConvPlan::create_deferred(0, desc, kWorkspaceLimit, false, nullptr);
  ASSERT_NE(plan, nullptr);
  Status s = plan->ready();
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.to_string();
  EXPECT_NE(s.message().find("float32, float16 or bfloat16; found int32"), std::string::npos)
      << s.message();
  EXPECT_EQ(plan->ready().to_string(), s.to_string());  // asked again: the same answer
  Status run = plan->run(ConvArgs{}, nullptr);
  EXPECT_EQ(run.to_string(), s.to_string());
  EXPECT_TRUE(plan->plan_indices().empty());
  EXPECT_FALSE(plan->restored());
}

TEST(ConvValidationTest, RejectsRankMismatch) {
  ConvDesc desc = valid_desc();
  desc.w_dims = {16, 8, 3, 3, 3};
  desc.w_strides = contiguous_strides(desc.w_dims);
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("w=[16,8,3,3,3] has rank 5; expected rank 4"), std::string::npos)
      << s.message();
}

TEST(ConvValidationTest, RejectsRankThreeInput) {
  ConvDesc desc = valid_desc();
  desc.x_dims = {2, 8, 9};
  desc.x_strides = contiguous_strides(desc.x_dims);
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("expected 4 (N, C, H, W) or 5"), std::string::npos) << s.message();
}

TEST(ConvValidationTest, RejectsStridesOfWrongLength) {
  ConvDesc desc = valid_desc();
  desc.y_strides.pop_back();
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("y has 4 dims but 3 strides"), std::string::npos) << s.message();
}

TEST(ConvValidationTest, RejectsParameterListsOfWrongLength) {
  ConvDesc desc = valid_desc();
  desc.dilation = {1};
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("dilation has 1 values (1); expected 2"), std::string::npos)
      << s.message();
}

TEST(ConvValidationTest, WrongOutputSizeSaysWhatWasExpected) {
  ConvDesc desc = valid_desc();
  desc.y_dims = {2, 16, 8, 8};
  desc.y_strides = contiguous_strides(desc.y_dims);
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("expected y=[2,16,9,9]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("found y=[2,16,8,8]"), std::string::npos) << s.message();
}

TEST(ConvValidationTest, WrongTransposedOutputSizeCountsOutputPadding) {
  ConvCase c;
  c.x_dims = {1, 4, 5, 5};
  c.w_dims = {4, 2, 3, 3};
  c.stride = {2, 2};
  c.padding = {1, 1};
  c.dilation = {1, 1};
  c.output_padding = {1, 1};
  c.transposed = true;
  ConvDesc desc = desc_for(c);
  ASSERT_EQ(desc.y_dims, (std::vector<int64_t>{1, 2, 10, 10}));
  desc.y_dims = {1, 2, 9, 9};  // what the size would be without the output padding
  desc.y_strides = contiguous_strides(desc.y_dims);
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("expected y=[1,2,10,10]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("op=1,1"), std::string::npos) << s.message();
}

TEST(ConvValidationTest, RejectsGroupsThatDoNotDivideChannels) {
  ConvDesc desc = valid_desc();
  desc.groups = 3;
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("groups=3 does not divide x's 8 channels"), std::string::npos)
      << s.message();
}

TEST(ConvValidationTest, RejectsWeightWithWrongInputChannels) {
  ConvDesc desc = valid_desc();
  desc.groups = 2;  // w would need 4 input channels per group
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("C_in/groups=4"), std::string::npos) << s.message();
}

TEST(ConvValidationTest, RejectsOutputPaddingNotBelowStride) {
  ConvCase c;
  c.x_dims = {1, 4, 5, 5};
  c.w_dims = {4, 2, 3, 3};
  c.stride = {2, 2};
  c.padding = {1, 1};
  c.dilation = {1, 1};
  c.output_padding = {2, 2};
  c.transposed = true;
  Status s = create_status(desc_for(c));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("smaller than its stride or dilation"), std::string::npos)
      << s.message();
}

TEST(ConvValidationTest, RejectsOutputPaddingOnForwardConv) {
  ConvDesc desc = valid_desc();
  desc.output_padding = {1, 0};
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("on a forward convolution"), std::string::npos) << s.message();
}

TEST(ConvValidationTest, RejectsKernelLargerThanPaddedInput) {
  ConvDesc desc = valid_desc();
  desc.dilation = {6, 6};  // a 3x3 kernel dilated by 6 spans 13 > 9 + 2
  Status s = create_status(desc);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("spans 13 but the padded input has only 11"), std::string::npos)
      << s.message();
}

TEST(ConvValidationTest, ValidDescFailsOnlyForWantOfGpuOrCudnn) {
  Status s = create_status(valid_desc());
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0 && cudnn_available().ok()) {
    EXPECT_TRUE(s.ok()) << s.to_string();
  } else {
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    // The context names the convolution.
    EXPECT_NE(s.message().find("conv2d x=[2,8,9,9] nchw w=[16,8,3,3]"), std::string::npos)
        << s.message();
  }
}

TEST(ConvValidationTest, CudnnAvailableSaysWhyNot) {
  Status s = cudnn_available();
  if (!s.ok()) {
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.to_string();
    EXPECT_NE(s.message().find("libcudnn.so.9"), std::string::npos) << s.message();
  }
  EXPECT_EQ(cudnn_available().code(), s.code());  // loaded once; the answer does not change
}

}  // namespace
}  // namespace kiln::cuda
