// The engine runtime: load, run with input checks, refit, inspect.
#include "runtime/engine_runtime.h"

#include <gtest/gtest.h>

#include "builder/builder.h"
#include "frontend/pt2_reader.h"
#include "runtime/engine_inspect.h"
#include "runtime/executor.h"
#include "kernels/cpu/cpu_backend.h"

namespace kiln {
namespace {

std::shared_ptr<ir::Program> linear() {
  auto program = frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/linear.pt2");
  EXPECT_TRUE(program.ok()) << program.status().to_string();
  return *program;
}

std::shared_ptr<const std::string> engine_bytes(builder::BuildSettings settings = {},
                                                std::vector<builder::InputSpec> specs = {}) {
  auto program = linear();
  builder::BuildRequest request;
  request.program = program;
  request.settings = settings;
  request.profiles = *builder::resolve_symbol_profiles(*program, specs);
  request.name = "linear";
  auto engine = builder::build_engine(std::move(request));
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  auto bytes = format::write_engine(*engine);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  return std::make_shared<const std::string>(std::move(*bytes));
}

Tensor ramp(int64_t rows) {
  Tensor t = *Tensor::empty(DType::kFloat32, {rows, 4});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.1f * static_cast<float>(i) - 1.0f;
  return t;
}

TEST(EngineRuntimeTest, RunsLikeTheProgram) {
  auto runtime = EngineRuntime::load(engine_bytes());
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  auto reference = Executor::create(linear(), cpu::cpu_backend());
  ASSERT_TRUE(reference.ok());
  for (int64_t rows : {2, 7, 64}) {
    std::vector<Tensor> inputs = {ramp(rows)};
    auto got = (*runtime)->run(inputs);
    auto want = (*reference)->run(inputs);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(got->size(), want->size());
    const Tensor& a = (*got)[0].tensor;
    const Tensor& b = (*want)[0].tensor;
    ASSERT_EQ(shape_to_string(a.sizes()), shape_to_string(b.sizes()));
    for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
    EXPECT_EQ((*got)[1].i, (*want)[1].i);  // the symbolic output
  }
}

TEST(EngineRuntimeTest, InputsOutsideTheProfileAreRejected) {
  auto runtime =
      EngineRuntime::load(engine_bytes({}, {{"x", {2, 4}, {4, 4}, {8, 4}, DType::kFloat32}}));
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  std::vector<Tensor> big = {ramp(9)};
  auto result = (*runtime)->run(big);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("[2, 8]"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("engine 'linear'"), std::string::npos);
  std::vector<Tensor> wrong_dtype = {*Tensor::zeros(DType::kFloat16, {4, 4})};
  EXPECT_FALSE((*runtime)->run(wrong_dtype).ok());
}

TEST(EngineRuntimeTest, RefitReplacesWeightsByName) {
  builder::BuildSettings settings;
  settings.refittable = true;
  auto runtime = EngineRuntime::load(engine_bytes(settings));
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  const std::vector<std::string> names = (*runtime)->weight_names();
  ASSERT_EQ(names.size(), 2u);
  std::map<std::string, Tensor> zeros;
  zeros["fc.weight"] = *Tensor::zeros(DType::kFloat32, {3, 4});
  zeros["fc.bias"] = *Tensor::zeros(DType::kFloat32, {3});
  ASSERT_TRUE((*runtime)->refit(zeros).ok());
  std::vector<Tensor> inputs = {ramp(3)};
  auto out = (*runtime)->run(inputs);
  ASSERT_TRUE(out.ok());
  for (int64_t i = 0; i < (*out)[0].tensor.numel(); ++i) {
    EXPECT_EQ((*out)[0].tensor.data<float>()[i], 0.0f);
  }
  std::map<std::string, Tensor> bad;
  bad["fc.weight"] = *Tensor::zeros(DType::kFloat32, {4, 3});
  EXPECT_NE((*runtime)->refit(bad).message().find("expected shape"), std::string::npos);
  bad.clear();
  bad["nope"] = *Tensor::zeros(DType::kFloat32, {3});
  EXPECT_EQ((*runtime)->refit(bad).code(), StatusCode::kNotFound);
}

TEST(EngineRuntimeTest, ImmutableEnginesRefuseRefit) {
  auto runtime = EngineRuntime::load(engine_bytes());
  ASSERT_TRUE(runtime.ok());
  std::map<std::string, Tensor> weights;
  weights["fc.bias"] = *Tensor::zeros(DType::kFloat32, {3});
  EXPECT_EQ((*runtime)->refit(weights).code(), StatusCode::kFailedPrecondition);
}

TEST(EngineRuntimeTest, StrippedEnginesNeedEveryWeightBeforeRunning) {
  builder::BuildSettings settings;
  settings.refittable = true;
  settings.strip_weights = true;
  auto bytes = engine_bytes(settings);
  auto plain = EngineRuntime::load(bytes);
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("strip_engine_weights"), std::string::npos);
  auto runtime = EngineRuntime::load_stripped(bytes);
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  std::vector<Tensor> inputs = {ramp(3)};
  EXPECT_EQ((*runtime)->run(inputs).status().code(), StatusCode::kFailedPrecondition);
  std::map<std::string, Tensor> partial;
  partial["fc.bias"] = *Tensor::zeros(DType::kFloat32, {3});
  EXPECT_NE((*runtime)->refit(partial).message().find("'fc.weight' is missing"),
            std::string::npos);
  partial["fc.weight"] = *Tensor::zeros(DType::kFloat32, {3, 4});
  ASSERT_TRUE((*runtime)->refit(partial).ok());
  EXPECT_TRUE((*runtime)->run(inputs).ok());
}

TEST(EngineRuntimeTest, InspectReadsEnginesItCannotRun) {
  auto runtime = EngineRuntime::inspect(engine_bytes());
  ASSERT_TRUE(runtime.ok());
  std::vector<Tensor> inputs = {ramp(3)};
  EXPECT_EQ((*runtime)->run(inputs).status().code(), StatusCode::kFailedPrecondition);
  const std::string text = describe_engine((*runtime)->engine(), 1234);
  for (const char* needle : {"engine: linear", "target: cpu", "inputs:", "x: float32[s",
                             "outputs:", "profile 0:", "min 2, opt", "max 64", "weights: 2 tensors",
                             "aten.addmm.default"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
}

TEST(EngineRuntimeTest, OtherBackendsAndArchsFailClearly) {
  format::Target cuda{"cuda", "sm_90"};
  if (has_cuda_backend()) {
    EXPECT_TRUE(backend_for_target(cuda).ok());
  } else {
    EXPECT_NE(backend_for_target(cuda).status().message().find("without the CUDA backend"),
              std::string::npos);
  }
  format::Target arm{"cpu", "riscv64"};
  EXPECT_NE(backend_for_target(arm).status().message().find("rebuild it here"), std::string::npos);
  EXPECT_EQ(backend_for_target({"tpu", ""}).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace kiln
