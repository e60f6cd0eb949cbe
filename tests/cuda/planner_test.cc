// The CUDA planner and cross-compilation: plans of small lowered programs (fusion, epilogues,
// layouts, arena), and engines built for sm_90 on a machine without a GPU.
#include "cuda/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "builder/builder.h"
#include "cuda/nvrtc_compiler.h"
#include "format/engine.h"
#include "frontend/pt2_reader.h"
#include "passes/lowering.h"
#include "passes/reduced_precision.h"
#include "runtime/engine_runtime.h"

namespace kiln::cuda {
namespace {

std::shared_ptr<ir::Program> fixture(const std::string& name) {
  auto program =
      frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name);
  EXPECT_TRUE(program.ok()) << program.status().to_string();
  if (!program.ok()) return nullptr;
  passes::LoweringOptions options;
  EXPECT_TRUE(passes::run_lowering_passes(**program, options).ok());
  return *program;
}

std::map<std::string, int64_t> max_symbols(const ir::Program& program) {
  std::map<std::string, int64_t> out;
  for (const auto& [symbol, range] : program.graph.symbol_ranges()) out[symbol] = range.max;
  return out;
}

std::vector<std::string> kinds(const Plan& plan) {
  std::vector<std::string> out;
  for (const auto& step : plan.steps) out.emplace_back(step->kind());
  return out;
}

// Every two buffers that share arena bytes are never live at once: checked by replaying the
// plan's reads and writes against the placements.
void expect_arena_consistent(const Plan& plan) {
  ASSERT_GT(plan.arena_bytes, 0u);
  for (const auto& [value, place] : plan.value_buffers) {
    EXPECT_LE(place.offset + place.bytes, plan.arena_bytes);
    EXPECT_EQ(place.offset % 256, 0u);
  }
  for (size_t s = 0; s < plan.scratch.size(); ++s) {
    for (const BufferPlacement& p : plan.scratch[s]) {
      EXPECT_LE(p.offset + p.bytes, plan.arena_bytes);
      // A step's scratch never overlaps the buffers the step reads or writes.
      auto overlaps = [&](uint32_t id) {
        auto it = plan.value_buffers.find(id);
        if (it == plan.value_buffers.end()) return false;
        const BufferPlacement& b = it->second;
        return p.offset < b.offset + b.bytes && b.offset < p.offset + p.bytes;
      };
      for (uint32_t id : plan.steps[s]->writes) EXPECT_FALSE(overlaps(id)) << "step " << s;
    }
  }
}

TEST(CudaPlannerTest, ConvNetFusesEpiloguesAndRunsNhwcInHalfPrecision) {
  auto program = fixture("cuda_convnet.pt2");
  ASSERT_TRUE(program);
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const std::vector<std::string> k = kinds(*plan);
  // conv1 (+folded BN) + relu, conv2 + residual add + relu: two convolution steps and no
  // separate relu or add step.
  EXPECT_EQ(std::count(k.begin(), k.end(), "conv"), 2) << plan->summary();
  EXPECT_EQ(std::count(k.begin(), k.end(), "pointwise"), 0) << plan->summary();
  EXPECT_EQ(std::count(k.begin(), k.end(), "gemm"), 1) << plan->summary();
  EXPECT_NE(plan->summary().find("conv+bias+add+relu"), std::string::npos) << plan->summary();
  EXPECT_NE(plan->summary().find("linear.default + aten.relu.default]"), std::string::npos)
      << plan->summary();
  // float32 convolutions stay NCHW.
  EXPECT_TRUE(plan->channels_last_weights.empty());
  // The runtime's copy of the output into the caller's tensor has its kernel in the module, also
  // when no step generates code (the runtime plans again at load and loads this module).
  EXPECT_NE(plan->module.text().find("kiln_copy_f32_f32"), std::string::npos);
  expect_arena_consistent(*plan);
}

TEST(CudaPlannerTest, TransformerPlansAttentionGemmsAndNorms) {
  auto program = fixture("cuda_transformer.pt2");
  ASSERT_TRUE(program);
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const std::vector<std::string> k = kinds(*plan);
  EXPECT_EQ(std::count(k.begin(), k.end(), "attention"), 1) << plan->summary();
  EXPECT_EQ(std::count(k.begin(), k.end(), "norm"), 1) << plan->summary();
  EXPECT_EQ(std::count(k.begin(), k.end(), "gemm"), 4) << plan->summary();
  EXPECT_NE(plan->summary().find("aten.gelu.default"), std::string::npos)
      << "the tanh GELU folds into the up-projection's epilogue\n" << plan->summary();
  // Both residual adds (x + proj(...), x + down(...)) are the projections' C operand: the only
  // pointwise step left adds the embeddings.
  size_t residuals = 0;
  for (size_t at = plan->summary().find("+ residual"); at != std::string::npos;
       at = plan->summary().find("+ residual", at + 1)) {
    ++residuals;
  }
  EXPECT_EQ(residuals, 2u) << plan->summary();
  EXPECT_EQ(std::count(k.begin(), k.end(), "pointwise"), 1) << plan->summary();
  expect_arena_consistent(*plan);
  // The generated module compiles for the H100 here, without a GPU.
  auto compiled = compile_cuda_source(plan->module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  EXPECT_GT(compiled->cubin.size(), 1000u);
}

const Step* only_step_of_kind(const Plan& plan, std::string_view kind) {
  const Step* found = nullptr;
  for (const auto& step : plan.steps) {
    if (step->kind() != kind) continue;
    EXPECT_EQ(found, nullptr) << "more than one " << kind << " step\n" << plan.summary();
    found = step.get();
  }
  return found;
}

int count_kind(const Plan& plan, std::string_view kind) {
  int n = 0;
  for (const auto& step : plan.steps) n += step->kind() == kind;
  return n;
}

TEST(CudaPlannerTest, HalfPrecisionAttentionIsFusedWithoutAScoreBuffer) {
  auto program = fixture("cuda_transformer.pt2");
  ASSERT_TRUE(program);
  ASSERT_TRUE(passes::run_in_reduced_precision(*program, DType::kFloat16).ok());
  PlanOptions options;
  options.arch = "sm_90";
  auto fused = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(fused.ok()) << fused.status().to_string();
  const Step* step = only_step_of_kind(*fused, "attention");
  ASSERT_NE(step, nullptr) << fused->summary();
  // cuDNN reads q, k, v in place (views of the packed projection) and builds the causal mask
  // itself: no scratch at all.
  EXPECT_NE(step->describe().find("fused causal"), std::string::npos) << step->describe();
  EXPECT_TRUE(step->scratch_bytes.empty()) << step->describe();
  // It also writes its output in the [B, L, H, D] order the transpose(1, 2).reshape after it
  // reads, so that reshape is a view and no copy step remains.
  EXPECT_EQ(count_kind(*fused, "copy"), 0) << fused->summary();
  expect_arena_consistent(*fused);

  options.fused_attention = false;
  auto unfused = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(unfused.ok()) << unfused.status().to_string();
  const Step* three = only_step_of_kind(*unfused, "attention");
  ASSERT_NE(three, nullptr);
  EXPECT_EQ(three->describe().find("fused"), std::string::npos) << three->describe();
  ASSERT_FALSE(three->scratch_bytes.empty());
  // The score matrix, [B=2, H=4, 8, 8] halves, lives in the unfused plan's arena only.
  EXPECT_EQ(three->scratch_bytes[0], size_t{2 * 4 * 8 * 8 * 2});
  EXPECT_GT(unfused->arena_bytes, fused->arena_bytes);
  // The unfused path cannot write that order (batch and heads would not merge): it keeps the
  // copy.
  EXPECT_EQ(count_kind(*unfused, "copy"), 1) << unfused->summary();
}

// torchvision's ViT block: the in-projection reads the transposed input in place (its output
// stored in the same order), the head split composes through a view no strides express, and
// the attention output is stored for the out-projection's reshape: no copies at all in fp16.
TEST(CudaPlannerTest, MultiheadAttentionBlockNeedsNoCopies) {
  auto program = fixture("cuda_encoder_block.pt2");
  ASSERT_TRUE(program);
  PlanOptions options;
  options.arch = "sm_90";
  auto fp32 = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(fp32.ok()) << fp32.status().to_string();
  ASSERT_TRUE(passes::run_in_reduced_precision(*program, DType::kFloat16).ok());
  auto plan = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(count_kind(*plan, "copy"), 0) << plan->summary();
  EXPECT_EQ(count_kind(*plan, "gemm"), 4) << plan->summary();
  for (const auto& step : plan->steps) {
    if (step->kind() == "gemm") {
      EXPECT_TRUE(step->scratch_bytes.empty()) << "no packed A: " << step->describe();
    }
  }
  const Step* attention = only_step_of_kind(*plan, "attention");
  ASSERT_NE(attention, nullptr);
  EXPECT_NE(attention->describe().find("fused"), std::string::npos) << attention->describe();
  EXPECT_TRUE(std::count(plan->composed.begin(), plan->composed.end(), true) > 0)
      << "the head split goes through composed views";
  expect_arena_consistent(*plan);
  // fp32 runs attention unfused: q, k and v are still views, but fewer copies are saved.
  EXPECT_LE(count_kind(*fp32, "copy"), 1) << fp32->summary();
  expect_arena_consistent(*fp32);
  auto compiled = compile_cuda_source(plan->module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

// q @ k^T / 4 + mask, softmax, @ v: matched as one attention step (scale 1/4, the mask as its
// bias), cuDNN's fused kernel in half precision, three launches in fp32; no softmax or GEMM steps.
TEST(CudaPlannerTest, WrittenOutAttentionRunsAsOneAttentionStep) {
  auto program = fixture("cuda_written_attention.pt2");
  ASSERT_TRUE(program);
  PlanOptions options;
  options.arch = "sm_90";
  auto fp32 = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(fp32.ok()) << fp32.status().to_string();
  EXPECT_EQ(kinds(*fp32), std::vector<std::string>{"attention"}) << fp32->summary();
  ASSERT_TRUE(passes::run_in_reduced_precision(*program, DType::kFloat16).ok());
  auto half = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(half.ok()) << half.status().to_string();
  // The reduced-precision pass adds the input and output casts around it.
  EXPECT_EQ(count_kind(*half, "attention"), 1) << half->summary();
  EXPECT_EQ(count_kind(*half, "gemm") + count_kind(*half, "softmax"), 0) << half->summary();
  EXPECT_NE(half->summary().find("fused masked"), std::string::npos) << half->summary();
  expect_arena_consistent(*half);
}

TEST(CudaPlannerTest, Fp32AttentionStaysUnfused) {
  auto program = fixture("cuda_transformer.pt2");
  ASSERT_TRUE(program);
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, max_symbols(*program), options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const Step* step = only_step_of_kind(*plan, "attention");
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->describe().find("fused"), std::string::npos)
      << "cuDNN's fused attention has no fp32 engines: " << step->describe();
}

TEST(CudaPlannerTest, PlanningIsDeterministic) {
  auto a = fixture("cuda_transformer.pt2");
  auto b = fixture("cuda_transformer.pt2");
  ASSERT_TRUE(a && b);
  PlanOptions options;
  options.arch = "sm_90";
  auto pa = make_plan(*a, max_symbols(*a), options);
  auto pb = make_plan(*b, max_symbols(*b), options);
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(pa->module.text(), pb->module.text());
  EXPECT_EQ(pa->arena_bytes, pb->arena_bytes);
  EXPECT_EQ(pa->summary(), pb->summary());
}

TEST(CudaCrossCompileTest, BuildsAnSm90EngineWithoutAGpu) {
  auto program = fixture("cuda_convnet.pt2");
  ASSERT_TRUE(program);
  builder::BuildRequest request;
  request.program = program;
  request.name = "convnet";
  request.settings.target = format::Target{"cuda", "sm_90"};
  request.settings.precisions = {"fp32", "fp16"};
  auto profiles = builder::resolve_symbol_profiles(*program, {});
  ASSERT_TRUE(profiles.ok());
  request.profiles = *profiles;
  auto engine = builder::build_engine(std::move(request));
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  ASSERT_EQ(engine->kernels.size(), 1u);
  EXPECT_EQ(engine->kernels[0].arch, "sm_90");
  EXPECT_GT(engine->memory[0].arena_bytes, 0u);
  // fp16 enabled: the float32 program runs in half precision, NHWC around its convolutions, while
  // its bindings keep float32.
  EXPECT_EQ(engine->program->graph.user_inputs()[0]->value->dtype, DType::kFloat32);
  EXPECT_EQ(engine->program->graph.outputs()[0]->dtype, DType::kFloat32);
  for (const auto& [id, w] : engine->program->weights) EXPECT_EQ(w.dtype(), DType::kFloat16);

  auto bytes = format::write_engine(*engine);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto runtime = EngineRuntime::load(std::make_shared<const std::string>(*bytes));
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  // Running a GPU engine through the host entry point says what to do instead.
  auto host_run = (*runtime)->run({});
  ASSERT_FALSE(host_run.ok());
  EXPECT_NE(host_run.status().message().find("runs on the GPU"), std::string::npos);
}

}  // namespace
}  // namespace kiln::cuda
