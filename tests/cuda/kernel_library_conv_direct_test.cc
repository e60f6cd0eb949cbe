// Direct convolutions without a GPU: the kernels compile with NVRTC for sm_90 and sm_80, names
// and code are deterministic, launches reject bad shapes before touching the GPU, the rule for
// which transposed convolutions need the direct kernel follows cuDNN's gaps, and the steps
// (forward and convolution_backward) bind the tensors the launches expect. The GPU half:
// kernel_library_conv_direct_gpu_test.cc.
#include "cuda/kernel_library_conv_direct.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "cuda/steps.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using passes::testing::ProgramBuilder;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

std::vector<std::string> add_conv_direct_family(ModuleSource& module, DType t) {
  return {conv_direct_kernel(module, false, t), conv_direct_kernel(module, true, t),
          conv_weight_grad_kernel(module, t), conv_bias_grad_kernel(module, t)};
}

TEST(ConvDirectKernelTest, CompilesForSm90AndSm80) {
  ModuleSource all;
  std::vector<std::string> names;
  for (DType t : kFloatTypes) {
    for (const std::string& name : add_conv_direct_family(all, t)) names.push_back(name);
  }
  auto compiled = compile_cuda_source(all.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  for (const std::string& name : names) {
    EXPECT_NE(compiled->cubin.find(name), std::string::npos) << "sm_90 lacks " << name;
  }
  ModuleSource half;
  const std::vector<std::string> half_names = add_conv_direct_family(half, DType::kFloat16);
  auto sm80 = compile_cuda_source(half.text(), "sm_80", false);
  ASSERT_TRUE(sm80.ok()) << sm80.status().to_string();
  for (const std::string& name : half_names) {
    EXPECT_NE(sm80->cubin.find(name), std::string::npos) << "sm_80 lacks " << name;
  }
}

TEST(ConvDirectKernelTest, NamesAndCodeAreDeterministic) {
  ModuleSource a, b;
  EXPECT_EQ(add_conv_direct_family(a, DType::kBFloat16),
            add_conv_direct_family(b, DType::kBFloat16));
  EXPECT_EQ(a.text(), b.text());
  EXPECT_EQ(conv_direct_kernel(a, true, DType::kFloat32), "kiln_conv_direct_transposed_f32");
  EXPECT_EQ(conv_direct_kernel(a, false, DType::kFloat16), "kiln_conv_direct_plain_f16");
  EXPECT_EQ(conv_weight_grad_kernel(a, DType::kFloat32), "kiln_conv_weight_grad_f32");
  EXPECT_EQ(conv_bias_grad_kernel(a, DType::kFloat32), "kiln_conv_bias_grad_f32");
}

// Host tensors stand in for device ones: every call below must fail validation before it
// reaches the GPU (there is none here, and the kernel is null).
Tensor host(DType dtype, Shape sizes) {
  return Tensor::empty(dtype, std::move(sizes)).value();
}

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(ConvDirectKernelTest, ConvLaunchValidates) {
  const DType f32 = DType::kFloat32;
  ConvWindowParams p;
  p.stride = {2};
  // conv_transpose: x [1, 4, 5] with w [4, 3, 3] (groups 2 -> 6 output channels).
  p.groups = 2;
  const Tensor x = host(f32, {1, 4, 5}), w = host(f32, {4, 3, 3}), y = host(f32, {1, 6, 12});
  expect_invalid(launch_conv_direct(nullptr, x, w, nullptr, y, p, true, nullptr),
                 "no kernel was given");
  expect_invalid(launch_conv_direct(nullptr, host(f32, {4, 5}), w, nullptr, y, p, true, nullptr),
                 "1-3 spatial dims");
  expect_invalid(
      launch_conv_direct(nullptr, x, host(f32, {4, 3, 3, 3}), nullptr, y, p, true, nullptr),
      "(rank 3)");
  expect_invalid(
      launch_conv_direct(nullptr, x, w, nullptr, host(f32, {1, 5, 12}), p, true, nullptr),
      "channels");
  expect_invalid(
      launch_conv_direct(nullptr, x, w, nullptr, host(f32, {2, 6, 12}), p, true, nullptr),
      "one batch size");
  expect_invalid(launch_conv_direct(nullptr, x, w, nullptr, host(DType::kFloat16, {1, 6, 12}), p,
                                    true, nullptr),
                 "of one dtype");
  expect_invalid(launch_conv_direct(nullptr, host(DType::kFloat64, {1, 4, 5}),
                                    host(DType::kFloat64, {4, 3, 3}), nullptr,
                                    host(DType::kFloat64, {1, 6, 12}), p, true, nullptr),
                 "float32, float16 or bfloat16");
  const Tensor bad_bias = host(f32, {4});
  expect_invalid(launch_conv_direct(nullptr, x, w, &bad_bias, y, p, true, nullptr),
                 "expected a bias [6]");
  ConvWindowParams bad = p;
  bad.padding = {1, 1};
  expect_invalid(launch_conv_direct(nullptr, x, w, nullptr, y, bad, true, nullptr),
                 "padding of 1 or 1 values");
  bad = p;
  bad.dilation = {0};
  expect_invalid(launch_conv_direct(nullptr, x, w, nullptr, y, bad, true, nullptr), "dilation");
  bad = p;
  bad.groups = 3;  // 4 input channels do not split into 3 groups
  expect_invalid(launch_conv_direct(nullptr, x, w, nullptr, y, bad, true, nullptr), "groups=3");
  // Plain: x [1, 6, 12] -> y [1, 4, 5] with the same weight.
  expect_invalid(launch_conv_direct(nullptr, y, w, nullptr, x, p, false, nullptr),
                 "no kernel was given");
  // Nothing to compute: no launch, no kernel needed.
  EXPECT_TRUE(launch_conv_direct(nullptr, host(f32, {0, 4, 5}), w, nullptr, host(f32, {0, 6, 12}),
                                 p, true, nullptr)
                  .ok());
}

TEST(ConvDirectKernelTest, GradLaunchesValidate) {
  const DType f32 = DType::kFloat32;
  ConvWindowParams p;
  p.padding = {1, 1};
  const Tensor x = host(f32, {2, 3, 5, 5}), gy = host(f32, {2, 4, 5, 5});
  const Tensor gw = host(f32, {4, 3, 3, 3});
  expect_invalid(launch_conv_weight_grad(nullptr, gy, x, gw, p, false, nullptr),
                 "no kernel was given");
  // Transposed, the input has W0 = 4 channels: x is the wrong side.
  expect_invalid(launch_conv_weight_grad(nullptr, gy, x, gw, p, true, nullptr), "channels");
  expect_invalid(launch_conv_weight_grad(nullptr, gy, x, host(f32, {4, 3, 3}), p, false, nullptr),
                 "(rank 4)");
  // An empty batch still writes grad_weight (zeros): it launches.
  expect_invalid(launch_conv_weight_grad(nullptr, host(f32, {0, 4, 5, 5}), host(f32, {0, 3, 5, 5}),
                                         gw, p, false, nullptr),
                 "no kernel was given");
  EXPECT_TRUE(
      launch_conv_weight_grad(nullptr, gy, x, host(f32, {4, 3, 0, 3}), p, false, nullptr).ok());
  expect_invalid(launch_conv_bias_grad(nullptr, gy, host(f32, {4}), nullptr),
                 "no kernel was given");
  expect_invalid(launch_conv_bias_grad(nullptr, gy, host(f32, {3}), nullptr),
                 "expected grad_bias [4]");
  expect_invalid(launch_conv_bias_grad(nullptr, gy, host(DType::kFloat16, {4}), nullptr),
                 "of one dtype");
}

// --- steps ---------------------------------------------------------------------------------------

// A BindContext whose kernels are null: binding succeeds, and the launches stop at their first
// check that needs a kernel, after every shape check passed.
class NullKernels final : public BindContext {
 public:
  Result<cudaKernel_t> kernel(const std::string&) override { return cudaKernel_t{nullptr}; }
  Result<std::shared_ptr<const GemmPlan>> gemm_plan(const GemmDesc&) override {
    return unsupported("no GEMMs here");
  }
  Result<std::shared_ptr<const ConvPlan>> conv_plan(const ConvDesc&) override {
    return unsupported("no cuDNN here");
  }
  Result<std::shared_ptr<const AttentionPlan>> attention_plan(const AttentionDesc&) override {
    return unsupported("no attention here");
  }
  void* workspace() const override { return nullptr; }
  size_t workspace_bytes() const override { return 0; }
  void* scratch(size_t, size_t) const override { return nullptr; }
};

// Host tensors of every value's recorded shape, except `unread` (no buffer: not computed).
Slots host_slots(const ir::Program& program, const std::vector<const ir::Value*>& unread = {}) {
  Slots slots(program.graph.num_values());
  for (const ir::Value& v : program.graph.values()) {
    if (v.kind != ir::ValueKind::kTensor || !v.has_recorded_meta) continue;
    if (std::find(unread.begin(), unread.end(), &v) != unread.end()) continue;
    Shape sizes;
    for (const ir::SymDim& d : v.shape) sizes.push_back(d.value);
    slots[v.id] = ir::RtValue::of(host(v.dtype, sizes));
  }
  return slots;
}

ir::Node* node_named(ir::Program& program, std::string_view name) {
  for (ir::Node& node : program.graph.nodes()) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

// conv_transpose with output_padding: 1-D, 2-D, 3-D, float32 and float16 (the conformance
// sample aten.convolution(float32[1, 3, 4], float32[3, 3, 3], float32[3], [2], [2], [1], True,
// [1], 1) among them).
TEST(ConvDirectStepTest, TransposedConvsCudnnDeclinesNeedTheDirectKernel) {
  ProgramBuilder b;
  const ir::Argument none = ir::NoneArg{};
  auto ints = ProgramBuilder::ints;
  auto conv = [&](const std::string& name, DType t, Shape xs, Shape ws, std::vector<int64_t> op,
                  bool transposed = true, bool with_bias = false) {
    ir::Value* x = b.input(name + "_x", t, xs);
    ir::Value* w = b.input(name + "_w", t, ws);
    const int64_t out_channels = transposed ? ws[1] : ws[0];
    ir::Argument bias = with_bias ? ir::Argument(b.input(name + "_b", t, {out_channels})) : none;
    const std::vector<int64_t> ones(xs.size() - 2, 1), twos(xs.size() - 2, 2);
    b.output(b.node(name, "aten.convolution.default",
                    {x, w, bias, ints(twos), ints(twos), ints(ones), transposed, ints(op), 1}));
  };
  conv("sample_1d", DType::kFloat32, {1, 3, 4}, {3, 3, 3}, {1}, true, true);
  conv("f16_1d", DType::kFloat16, {2, 4, 6}, {4, 2, 3}, {1});
  conv("f32_2d", DType::kFloat32, {1, 2, 4, 4}, {2, 3, 3, 3}, {1, 0});
  conv("f16_2d", DType::kFloat16, {1, 2, 4, 4}, {2, 3, 3, 3}, {1, 1});
  conv("bf16_2d", DType::kBFloat16, {1, 2, 4, 4}, {2, 3, 3, 3}, {0, 1});
  conv("bf16_3d", DType::kBFloat16, {1, 2, 3, 3, 3}, {2, 1, 2, 2, 2}, {1, 1, 1});
  conv("no_output_padding", DType::kFloat32, {1, 3, 4}, {3, 3, 3}, {0});
  conv("plain", DType::kFloat32, {1, 3, 8}, {3, 3, 3}, {0}, false);
  std::shared_ptr<ir::Program> program = b.finish();
  const std::vector<std::pair<std::string, bool>> expected = {{"sample_1d", true},
                                                              {"f16_1d", true},
                                                              {"f32_2d", true},
                                                              {"f16_2d", false},
                                                              {"bf16_2d", false},
                                                              {"bf16_3d", true},
                                                              {"no_output_padding", false},
                                                              {"plain", false}};
  for (const auto& [name, needs] : expected) {
    const ir::Node* node = node_named(*program, name);
    ASSERT_NE(node, nullptr) << name;
    EXPECT_EQ(needs_direct_conv(*node), needs) << name;
    EXPECT_TRUE(direct_conv_verdict(*node).accepted()) << name;
  }
  // A direct step binds and reaches the launch, shapes accepted, bias included.
  const Slots slots = host_slots(*program);
  NullKernels ctx;
  for (const char* name : {"sample_1d", "f16_1d", "f32_2d", "bf16_3d"}) {
    const ir::Node* node = node_named(*program, name);
    ModuleSource module;
    auto step = make_direct_conv_step(*node, slots, module);
    ASSERT_TRUE(step.ok()) << name << ": " << step.status().to_string();
    EXPECT_EQ((*step)->kind(), "conv_direct");
    EXPECT_EQ((*step)->writes, std::vector<uint32_t>{node->outputs[0]->id});
    EXPECT_NE(module.text().find("kiln_conv_direct_transposed_"), std::string::npos);
    auto launch = (*step)->bind(slots, ctx, 0);
    ASSERT_TRUE(launch.ok()) << launch.status().to_string();
    expect_invalid((*launch)(nullptr), "no kernel was given");
  }
  // Window arguments known only at run time are refused with a reason.
  ir::Node copy = *node_named(*program, "sample_1d");
  copy.args[4] = ir::Argument(ir::NoneArg{});
  EXPECT_NE(direct_conv_verdict(copy).reason().find("padding known only at run time"),
            std::string::npos)
      << direct_conv_verdict(copy).reason();
}

// The conformance sample aten.convolution_backward(float32[1, 3, 6], float32[1, 3, 4],
// float32[3, 3, 3], [3], [2], [2], [1], True, [1], 1, [True, True, True]), a grouped plain 2-D
// one, and what output_mask leaves out.
TEST(ConvDirectStepTest, ConvolutionBackwardStepsWriteWhatIsAskedFor) {
  ProgramBuilder b;
  auto ints = ProgramBuilder::ints;
  ir::Value* gy = b.input("gy", DType::kFloat32, {1, 3, 6});
  ir::Value* x = b.input("x", DType::kFloat32, {1, 3, 4});
  ir::Value* w = b.input("w", DType::kFloat32, {3, 3, 3});
  const auto transposed = b.node_outputs("transposed", "aten.convolution_backward.default",
                                         {gy, x, w, ints({3}), ints({2}), ints({2}), ints({1}),
                                          true, ints({1}), 1, std::vector<bool>{true, true, true}});
  ir::Value* gy2 = b.input("gy2", DType::kFloat16, {2, 4, 3, 3});
  ir::Value* x2 = b.input("x2", DType::kFloat16, {2, 6, 5, 5});
  ir::Value* w2 = b.input("w2", DType::kFloat16, {4, 3, 3, 3});
  const auto grouped = b.node_outputs("grouped", "aten.convolution_backward.default",
                                      {gy2, x2, w2, ints({4}), ints({2}), ints({1}), ints({1}),
                                       false, ints({0}), 2, std::vector<bool>{false, true, true}});
  for (ir::Value* v : transposed) b.output(v);
  b.output(grouped[1]);
  b.output(grouped[2]);
  std::shared_ptr<ir::Program> program = b.finish();
  const ir::Node* t_node = node_named(*program, "transposed");
  const ir::Node* g_node = node_named(*program, "grouped");
  ASSERT_TRUE(t_node && g_node);
  for (const ir::Node* node : {t_node, g_node}) {
    EXPECT_TRUE(conv_direct_family().takes(node->op));
    const convert::Verdict v = conv_direct_family().verdict(*node);
    EXPECT_TRUE(v.accepted()) << node->name << ": " << v.reason();
  }
  NullKernels ctx;
  {
    const Slots slots = host_slots(*program);
    ModuleSource module;
    auto step = conv_direct_family().make(*t_node, slots, module);
    ASSERT_TRUE(step.ok()) << step.status().to_string();
    EXPECT_EQ((*step)->writes.size(), 3u);
    // A transposed convolution's grad_input is a plain convolution of grad_output.
    EXPECT_NE(module.text().find("kiln_conv_direct_plain_f32"), std::string::npos);
    auto launch = (*step)->bind(slots, ctx, 0);
    ASSERT_TRUE(launch.ok()) << launch.status().to_string();
    expect_invalid((*launch)(nullptr), "convolution (direct): no kernel was given");
  }
  {
    // grad_input not asked for; grad_weight read by nothing: only grad_bias is computed.
    const Slots slots = host_slots(*program, {g_node->outputs[1]});
    ModuleSource module;
    auto step = conv_direct_family().make(*g_node, slots, module);
    ASSERT_TRUE(step.ok()) << step.status().to_string();
    EXPECT_EQ((*step)->writes, std::vector<uint32_t>{g_node->outputs[2]->id});
    EXPECT_EQ(module.text().find("kiln_conv_direct_"), std::string::npos);
    EXPECT_EQ(module.text().find("kiln_conv_weight_grad_"), std::string::npos);
    auto launch = (*step)->bind(slots, ctx, 0);
    ASSERT_TRUE(launch.ok()) << launch.status().to_string();
    expect_invalid((*launch)(nullptr), "grad_bias: no kernel was given");
  }
  {
    const Slots slots = host_slots(*program, {g_node->outputs[2]});
    ModuleSource module;
    auto step = conv_direct_family().make(*g_node, slots, module);
    ASSERT_TRUE(step.ok()) << step.status().to_string();
    auto launch = (*step)->bind(slots, ctx, 0);
    ASSERT_TRUE(launch.ok()) << launch.status().to_string();
    expect_invalid((*launch)(nullptr), "grad_weight: no kernel was given");
  }
}

TEST(ConvDirectStepTest, BackwardVerdictsSayWhy) {
  ProgramBuilder b;
  auto ints = ProgramBuilder::ints;
  ir::Value* gy = b.input("gy", DType::kFloat64, {1, 3, 6});
  ir::Value* x = b.input("x", DType::kFloat64, {1, 3, 4});
  ir::Value* w = b.input("w", DType::kFloat64, {3, 3, 3});
  b.output(b.node_outputs("dbl", "aten.convolution_backward.default",
                          {gy, x, w, ints({3}), ints({2}), ints({2}), ints({1}), true, ints({1}), 1,
                           std::vector<bool>{true, false, false}})[0]);
  ir::Value* gy32 = b.input("gy32", DType::kFloat32, {1, 3, 6});
  ir::Value* x32 = b.input("x32", DType::kFloat32, {1, 3, 4});
  ir::Value* w32 = b.input("w32", DType::kFloat32, {3, 3, 3});
  b.output(b.node_outputs("fine", "aten.convolution_backward.default",
                          {gy32, x32, w32, ints({3}), ints({2}), ints({2}), ints({1}), true,
                           ints({1}), 1, std::vector<bool>{true, false, false}})[0]);
  std::shared_ptr<ir::Program> program = b.finish();
  const LibraryFamily& family = conv_direct_family();
  const ir::Node* dbl = node_named(*program, "dbl");
  const ir::Node* fine = node_named(*program, "fine");
  ASSERT_TRUE(dbl && fine);
  EXPECT_NE(family.verdict(*dbl).reason().find("float64"), std::string::npos)
      << family.verdict(*dbl).reason();
  ASSERT_TRUE(family.verdict(*fine).accepted()) << family.verdict(*fine).reason();
  ir::Node copy = *fine;
  copy.args[4] = ir::Argument(ir::NoneArg{});
  EXPECT_NE(family.verdict(copy).reason().find("stride known only at run time"), std::string::npos);
  copy = *fine;
  copy.args[6] = ProgramBuilder::ints({1, 1});
  EXPECT_NE(family.verdict(copy).reason().find("dilation of 2 values"), std::string::npos)
      << family.verdict(copy).reason();
  copy = *fine;
  copy.args[9] = ir::Argument(ir::NoneArg{});
  EXPECT_NE(family.verdict(copy).reason().find("groups known only at run time"), std::string::npos);
  copy = *fine;
  copy.args[10] = std::vector<bool>{true, true};
  EXPECT_NE(family.verdict(copy).reason().find("output_mask"), std::string::npos);
}

// Through the CUDA backend's verdict and the planner (once conv_direct_family() is in
// library_family() and needs_direct_conv routes aten.convolution): a 1-D float32 transposed
// convolution with output_padding and the ReLU after it, and convolution_backward with every
// gradient or with grad_input left out (None) and grad_bias read by nothing.
TEST(ConvDirectStepTest, PlansThroughTheBackend) {
  ProgramBuilder b;
  auto ints = ProgramBuilder::ints;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3, 4});
  ir::Value* w = b.input("w", DType::kFloat32, {3, 2, 3});
  ir::Value* bias = b.input("bias", DType::kFloat32, {2});
  ir::Value* y = b.node("tconv", "aten.convolution.default",
                        {x, w, bias, ints({2}), ints({2}), ints({1}), true, ints({1}), 1});
  b.output(b.node("relu", "aten.relu.default", {y}));
  ir::Value* gy = b.input("gy", DType::kFloat32, {2, 2, 6});
  const auto all = b.node_outputs("backward_all", "aten.convolution_backward.default",
                                  {gy, x, w, ints({2}), ints({2}), ints({2}), ints({1}), true,
                                   ints({1}), 1, std::vector<bool>{true, true, true}});
  for (ir::Value* v : all) b.output(v);
  const auto some = b.node_outputs("backward_weight", "aten.convolution_backward.default",
                                   {gy, x, w, ints({2}), ints({2}), ints({2}), ints({1}), true,
                                    ints({1}), 1, std::vector<bool>{false, true, true}});
  b.output(b.node("gw_relu", "aten.relu.default", {some[1]}));
  std::shared_ptr<ir::Program> program = b.finish();
  // An export records the gradient output_mask leaves out as None: no value at all.
  node_named(*program, "backward_weight")->outputs[0] = nullptr;
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_TRUE(verdict.accepted()) << node.name << ": " << verdict.reason();
  }
  EXPECT_EQ(library_family(ir::OpKey::aten_convolution_backward_default), &conv_direct_family());
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  std::vector<std::string> kinds;
  for (const auto& step : plan->steps) kinds.emplace_back(step->kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"conv_direct", "pointwise", "conv_direct",
                                             "conv_direct", "pointwise"}))
      << plan->summary();
  ASSERT_EQ(plan->steps.size(), 5u);
  EXPECT_EQ(plan->steps[2]->writes.size(), 3u);
  EXPECT_EQ(plan->steps[3]->writes, std::vector<uint32_t>{some[1]->id});
  auto compiled = compile_cuda_source(plan->module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

}  // namespace
}  // namespace kiln::cuda
