// The movement family without a GPU: its kernels compile with NVRTC for every dtype, names and
// code are deterministic, launches reject bad shapes before touching the GPU, the scatters'
// regions follow PyTorch's slice and select, and the ops' nodes get their verdicts and plan as
// library steps. The GPU half: kernel_library_movement_gpu_test.cc.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/kernel_library_movement.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "kernel_library_support.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using namespace kltest;
using passes::testing::ProgramBuilder;

constexpr DType kEveryDtype[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                 DType::kInt64,   DType::kInt32,   DType::kInt16,
                                 DType::kInt8,    DType::kUInt8,   DType::kBool};
constexpr MoveOp kMoveOps[] = {MoveOp::kConstantPad, MoveOp::kFlip, MoveOp::kRepeat,
                               MoveOp::kPixelShuffle, MoveOp::kPixelUnshuffle};

TEST(MovementKernelTest, EveryOpCompilesForEveryDtypeOnSm90AndSm80) {
  ModuleSource module;
  for (DType t : kEveryDtype) {
    for (MoveOp op : kMoveOps) move_kernel(module, op, t);
  }
  move_kernel(module, MoveOp::kFlip, DType::kFloat64);  // engines decline it; the code compiles
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const char* name : {"kiln_constant_pad_f32", "kiln_flip_f16", "kiln_repeat_bf16",
                             "kiln_pixel_shuffle_i64", "kiln_pixel_unshuffle_b8",
                             "kiln_constant_pad_u8", "kiln_repeat_i8", "kiln_flip_i16",
                             "kiln_constant_pad_i32", "kiln_flip_f64"}) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

// An engine's module holds the other families too: the movement code must not clash with them.
TEST(MovementKernelTest, CompilesBesideEveryOtherFamily) {
  ModuleSource module = full_module();
  for (MoveOp op : kMoveOps) move_kernel(module, op, DType::kFloat16);
  auto compiled = compile_cuda_source(module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

TEST(MovementKernelTest, NamesAndCodeAreDeterministic) {
  ModuleSource a, b;
  for (MoveOp op : kMoveOps) {
    EXPECT_EQ(move_kernel(a, op, DType::kBFloat16), move_kernel(b, op, DType::kBFloat16));
  }
  EXPECT_EQ(a.text(), b.text());
  const std::string text = a.text();
  EXPECT_EQ(move_kernel(a, MoveOp::kRepeat, DType::kBFloat16), "kiln_repeat_bf16");
  EXPECT_EQ(a.text(), text);  // asking again adds nothing
  EXPECT_NE(move_kernel(a, MoveOp::kFlip, DType::kInt8), move_kernel(a, MoveOp::kFlip, DType::kUInt8));
  // The family's code appears once however many entry points use it.
  const std::string all = a.text();
  const size_t first = all.find("namespace kiln_move {");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(all.find("namespace kiln_move {", first + 1), std::string::npos);
}

Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

// Host tensors stand in for device ones and the kernel is null: every call must fail its checks
// (or have nothing to do) before it would launch.
TEST(MovementKernelTest, GatherLaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32;
  const Tensor x = host(f32, {2, 3, 4});
  const PadValue zero;
  expect_invalid(launch_constant_pad(nullptr, x, host(f32, {2, 3, 6}), {1}, zero, nullptr),
                 "pairs");
  expect_invalid(
      launch_constant_pad(nullptr, x, host(f32, {2, 3, 4}), {0, 0, 0, 0, 0, 0, 0, 0}, zero,
                          nullptr),
      "pairs");
  expect_invalid(launch_constant_pad(nullptr, x, host(f32, {2, 3, 0}), {-3, -2}, zero, nullptr),
                 "size >= 0");
  expect_invalid(launch_constant_pad(nullptr, x, host(f32, {2, 3, 7}), {1, 1}, zero, nullptr),
                 "expected output float32[2, 3, 6]");
  expect_invalid(
      launch_constant_pad(nullptr, x, host(DType::kFloat16, {2, 3, 6}), {1, 1}, zero, nullptr),
      "expected output");
  // Pads on two dims, the second pair for dim 1, negative ones cropping: right sizes, no kernel.
  expect_invalid(
      launch_constant_pad(nullptr, x, host(f32, {2, 6, 1}), {-2, -1, 2, 1}, zero, nullptr),
      "no kernel");
  const Tensor broadcast = host(f32, {2, 3, 6}).view_as({2, 3, 6}, {18, 0, 1}, 0);
  expect_invalid(launch_constant_pad(nullptr, x, broadcast, {1, 1}, zero, nullptr), "stride 0");

  expect_invalid(launch_flip(nullptr, x, host(f32, {2, 3, 4}), {3}, nullptr), "dims in [-3, 3)");
  expect_invalid(launch_flip(nullptr, x, host(f32, {2, 3, 4}), {-4}, nullptr), "dims");
  expect_invalid(launch_flip(nullptr, x, host(f32, {2, 3, 4}), {1, -2}, nullptr), "twice");
  expect_invalid(launch_flip(nullptr, x, host(f32, {3, 2, 4}), {0}, nullptr), "expected output");
  expect_invalid(launch_flip(nullptr, x, host(f32, {2, 3, 4}), {0, -1}, nullptr), "no kernel");

  expect_invalid(launch_repeat(nullptr, x, host(f32, {4, 6}), {2, 2}, nullptr), "repeats");
  expect_invalid(launch_repeat(nullptr, x, host(f32, {2, 3, 4}), {1, -1, 1}, nullptr), ">= 0");
  expect_invalid(launch_repeat(nullptr, x, host(f32, {2, 6, 4}), {1, 2, 1, 1}, nullptr),
                 "expected output float32[1, 4, 3, 4]");
  expect_invalid(launch_repeat(nullptr, x, host(f32, {5, 2, 6, 4}), {5, 1, 2, 1}, nullptr),
                 "no kernel");
  expect_invalid(
      launch_repeat(nullptr, x, host(f32, {1}), std::vector<int64_t>(9, 1), nullptr), "repeats");

  const Tensor image = host(f32, {2, 8, 3, 5});
  expect_invalid(launch_pixel_shuffle(nullptr, host(f32, {8, 3}), host(f32, {2, 6}), 2, nullptr),
                 "[*, C, H, W]");
  expect_invalid(launch_pixel_shuffle(nullptr, image, host(f32, {2, 2, 6, 10}), 0, nullptr),
                 "factor");
  expect_invalid(launch_pixel_shuffle(nullptr, image, host(f32, {2, 0, 9, 15}), 3, nullptr),
                 "divisible");
  expect_invalid(launch_pixel_shuffle(nullptr, image, host(f32, {2, 2, 5, 12}), 2, nullptr),
                 "expected output float32[2, 2, 6, 10]");
  expect_invalid(launch_pixel_shuffle(nullptr, image, host(f32, {2, 2, 6, 10}), 2, nullptr),
                 "no kernel");
  expect_invalid(
      launch_pixel_unshuffle(nullptr, image, host(f32, {2, 72, 1, 1}), 3, nullptr), "divisible");
  expect_invalid(
      launch_pixel_unshuffle(nullptr, host(f32, {4, 4, 6}), host(f32, {12, 2, 3}), 2, nullptr),
      "expected output float32[16, 2, 3]");
  expect_invalid(
      launch_pixel_unshuffle(nullptr, host(f32, {4, 4, 6}), host(f32, {16, 2, 3}), 2, nullptr),
      "no kernel");

  // Nothing to do: no kernel, no data needed.
  EXPECT_TRUE(launch_flip(nullptr, host(f32, {0, 3}), host(f32, {0, 3}), {0}, nullptr).ok());
  EXPECT_TRUE(launch_repeat(nullptr, x, host(f32, {2, 0, 4}), {1, 0, 1}, nullptr).ok());
  EXPECT_TRUE(
      launch_constant_pad(nullptr, x, host(f32, {2, 3, 0}), {-2, -2}, zero, nullptr).ok());
  // An empty input padded out is all fill: the output still needs the kernel.
  expect_invalid(
      launch_constant_pad(nullptr, host(f32, {0, 3}), host(f32, {2, 3}), {0, 0, 1, 1}, zero,
                          nullptr),
      "no kernel");
}

TEST(MovementKernelTest, GatherRefusesAnOutputOverlappingItsInput) {
  const Tensor storage = host(DType::kFloat32, {2, 8});
  const Tensor in = storage.view_as({2, 4}, {8, 1}, 0);
  const Tensor out = storage.view_as({2, 4}, {8, 1}, 2);  // shares every row
  // A kernel that is never launched: the overlap is found first.
  const cudaKernel_t fake = reinterpret_cast<cudaKernel_t>(uintptr_t{1});
  expect_invalid(launch_flip(fake, in, out, {1}, nullptr), "apart from the input");
}

TEST(MovementKernelTest, SliceAndSelectRegions) {
  const Tensor t = host(DType::kFloat32, {4, 10, 3});
  struct Case {
    std::optional<int64_t> start, end;
    int64_t step;
    int64_t size, offset;
  };
  // Python's slice rules on a dim of 10 (stride 3).
  const Case cases[] = {
      {1, 3, 1, 2, 3},                   // x[:, 1:3]
      {std::nullopt, std::nullopt, 1, 10, 0},
      {-3, std::nullopt, 1, 3, 21},      // from the end
      {2, INT64_MAX, 3, 3, 6},           // 2, 5, 8: the end export writes for x[:, 2::3]
      {-100, 4, 2, 2, 0},                // start clamped to 0
      {7, 3, 1, 0, 21},                  // end before start: empty
      {12, 20, 1, 0, 30},                // past the end: empty
      {1, -1, 4, 2, 3},                  // 1, 5
  };
  for (const Case& c : cases) {
    ASSIGN_OR_FAIL(Tensor r, slice_region(t, -2, c.start, c.end, c.step));
    EXPECT_EQ(r.sizes(), (Shape{4, c.size, 3}));
    EXPECT_EQ(r.strides(), (Shape{30, 3 * c.step, 1}));
    EXPECT_EQ(r.offset(), c.offset);
  }
  expect_invalid(slice_region(t, 3, 0, 1, 1).status(), "dim");
  expect_invalid(slice_region(t, 1, 0, 1, 0).status(), "step >= 1");

  ASSIGN_OR_FAIL(Tensor s, select_region(t, 1, -1));
  EXPECT_EQ(s.sizes(), (Shape{4, 3}));
  EXPECT_EQ(s.strides(), (Shape{30, 1}));
  EXPECT_EQ(s.offset(), 27);
  ASSIGN_OR_FAIL(Tensor first, select_region(t, -3, 0));
  EXPECT_EQ(first.sizes(), (Shape{10, 3}));
  expect_invalid(select_region(t, 0, 4).status(), "index in [-4, 4)");
  expect_invalid(select_region(t, 0, -5).status(), "index");
  expect_invalid(select_region(host(DType::kFloat32, {}), 0, 0).status(), "dim");
}

TEST(MovementKernelTest, ScatterLaunchValidatesBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32;
  const Tensor input = host(f32, {4, 6});
  const Tensor out = host(f32, {4, 6});
  ASSIGN_OR_FAIL(Tensor region, slice_region(out, 1, 1, 3, 1));
  expect_invalid(launch_scatter_into(nullptr, nullptr, input, host(f32, {4, 3}), out, region,
                                     nullptr),
                 "sizes");
  expect_invalid(launch_scatter_into(nullptr, nullptr, host(f32, {4, 5}), host(f32, {4, 2}), out,
                                     region, nullptr),
                 "sizes");
  ASSIGN_OR_FAIL(Tensor elsewhere, slice_region(input, 1, 1, 3, 1));
  expect_invalid(launch_scatter_into(nullptr, nullptr, input, host(f32, {4, 2}), out, elsewhere,
                                     nullptr),
                 "output's storage");
  // The input overlapping the output (other than being it): refused.
  const Tensor wide = host(f32, {4, 7});
  const Tensor shifted_in = wide.view_as({4, 6}, {7, 1}, 1);
  const Tensor shifted_out = wide.view_as({4, 6}, {7, 1}, 0);
  ASSIGN_OR_FAIL(Tensor shifted_region, slice_region(shifted_out, 1, 1, 3, 1));
  expect_invalid(launch_scatter_into(nullptr, nullptr, shifted_in, host(f32, {4, 2}), shifted_out,
                                     shifted_region, nullptr),
                 "apart from the output");
  // src inside the output: refused.
  expect_invalid(launch_scatter_into(nullptr, nullptr, input, region, out, region, nullptr),
                 "apart from the output");
  // Right shapes, a transposed input: the copies want kernels (a contiguous one would be a
  // cudaMemcpy, which this machine need not have a GPU for).
  const Tensor src = host(f32, {4, 2});
  const Tensor transposed = host(f32, {6, 4}).view_as({4, 6}, {1, 4}, 0);
  expect_invalid(launch_scatter_into(nullptr, nullptr, transposed, src, out, region, nullptr),
                 "no kernel");
  // Empty: nothing to copy.
  const Tensor empty = host(f32, {0, 6});
  ASSIGN_OR_FAIL(Tensor empty_region, slice_region(empty, 1, 1, 3, 1));
  EXPECT_TRUE(launch_scatter_into(nullptr, nullptr, host(f32, {0, 6}), host(f32, {0, 2}), empty,
                                  empty_region, nullptr)
                  .ok());
}

// --- verdicts and planning --------------------------------------------------------------------

std::vector<std::string> step_kinds(const Plan& plan) {
  std::vector<std::string> kinds;
  for (const auto& step : plan.steps) kinds.emplace_back(step->kind());
  return kinds;
}

TEST(MovementKernelTest, NodesPlanAsLibraryStepsWhoseModuleCompiles) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat16, {2, 8, 4, 6});
  ir::Value* y = b.input("y", DType::kFloat16, {2, 2, 4, 6});
  ir::Value* row = b.input("row", DType::kFloat16, {2, 4, 6});
  ir::Value* mask = b.input("mask", DType::kBool, {3, 5});
  ir::Value* padded = b.node("padded", "aten.constant_pad_nd.default",
                             {x, ProgramBuilder::ints({1, -2, 3, 0}), 0.5});
  ir::Value* mask_padded = b.node("mask_padded", "aten.constant_pad_nd.default",
                                  {mask, ProgramBuilder::ints({2, 2}), int64_t{1}});
  ir::Value* flipped = b.node("flipped", "aten.flip.default", {x, ProgramBuilder::ints({-1, 1})});
  ir::Value* tiled = b.node("tiled", "aten.repeat.default",
                            {mask, ProgramBuilder::ints({2, 1, 3})});
  ir::Value* up = b.node("up", "aten.pixel_shuffle.default", {x, int64_t{2}});
  ir::Value* down = b.node("down", "aten.pixel_unshuffle.default", {x, int64_t{2}});
  ir::Value* sliced = b.node("sliced", "aten.slice_scatter.default",
                             {x, y, int64_t{1}, int64_t{1}, int64_t{-3}, int64_t{2}});
  ir::Value* open_ended = b.node("open_ended", "aten.slice_scatter.default",
                                 {x, y, int64_t{1}, ir::NoneArg{}, int64_t{2}, int64_t{1}});
  ir::Value* selected =
      b.node("selected", "aten.select_scatter.default", {x, row, int64_t{-3}, int64_t{-1}});
  ir::Value* zeros = b.node("zeros", "aten.empty_strided.default",
                            {ProgramBuilder::ints({2, 3, 4}), ProgramBuilder::ints({1, 8, 2}),
                             DType::kFloat16});
  for (ir::Value* v : {padded, mask_padded, flipped, tiled, up, down, sliced, open_ended,
                       selected, zeros}) {
    b.output(v);
  }
  std::shared_ptr<ir::Program> program = b.finish();
  EXPECT_EQ(padded->shape.size(), 4u);
  EXPECT_EQ(mask_padded->dtype, DType::kBool);
  EXPECT_EQ(zeros->dtype, DType::kFloat16);
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_TRUE(verdict.accepted()) << node.name << ": " << verdict.reason();
  }
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(step_kinds(*plan),
            (std::vector<std::string>{"movement", "movement", "movement", "movement", "movement",
                                      "movement", "movement", "movement", "movement", "factory"}))
      << plan->summary();
  const std::string text = plan->module.text();
  for (const char* name : {"kiln_constant_pad_f16", "kiln_constant_pad_b8", "kiln_flip_f16",
                           "kiln_repeat_b8", "kiln_pixel_shuffle_f16", "kiln_pixel_unshuffle_f16",
                           "kiln_copy_f16_f16", "kiln_fill_f16"}) {
    EXPECT_NE(text.find(name), std::string::npos) << "the module lacks " << name;
  }
  auto compiled = compile_cuda_source(text, "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

TEST(MovementKernelTest, VerdictsDeclineWithReasons) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3, 4});
  ir::Value* d = b.input("d", DType::kFloat64, {2, 3, 4});
  ir::Value* deep = b.input("deep", DType::kFloat32, Shape(9, 1));
  b.output(b.node("double_flip", "aten.flip.default", {d, ProgramBuilder::ints({0})}));
  b.output(b.node("deep_flip", "aten.flip.default", {deep, ProgramBuilder::ints({0})}));
  b.output(b.node("gappy", "aten.empty_strided.default",
                  {ProgramBuilder::ints({2, 3}), ProgramBuilder::ints({1, 4})}));
  b.output(b.node("overlapping", "aten.empty_strided.default",
                  {ProgramBuilder::ints({2, 3}), ProgramBuilder::ints({1, 1})}));
  b.output(b.node("dense", "aten.empty_strided.default",
                  {ProgramBuilder::ints({2, 1, 3}), ProgramBuilder::ints({1, 77, 2})}));
  b.output(b.node("fine_pad", "aten.constant_pad_nd.default", {x, ProgramBuilder::ints({1, 1})}));
  std::shared_ptr<ir::Program> program = b.finish();
  auto verdict_of = [&](std::string_view name) {
    return cuda_verdict(*passes::testing::find_node(program->graph, name));
  };
  EXPECT_FALSE(verdict_of("double_flip").accepted());
  const convert::Verdict deep_verdict = verdict_of("deep_flip");
  EXPECT_FALSE(deep_verdict.accepted());
  EXPECT_NE(deep_verdict.reason().find("rank 9"), std::string::npos) << deep_verdict.reason();
  for (const char* name : {"gappy", "overlapping"}) {
    const convert::Verdict v = verdict_of(name);
    EXPECT_FALSE(v.accepted()) << name;
    EXPECT_NE(v.reason().find("gaps or overlap"), std::string::npos) << v.reason();
  }
  EXPECT_TRUE(verdict_of("dense").accepted()) << verdict_of("dense").reason();
  EXPECT_TRUE(verdict_of("fine_pad").accepted()) << verdict_of("fine_pad").reason();
}

}  // namespace
}  // namespace kiln::cuda
