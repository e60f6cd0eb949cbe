// The builder: optimization profiles from input specs, engines from programs, cache keys.
#include "builder/builder.h"

#include <gtest/gtest.h>

#include "format/engine.h"
#include "frontend/pt2_reader.h"
#include "ir/sym_expr.h"
#include "kiln/version.h"
#include "runtime/device_engine.h"

namespace kiln::builder {
namespace {

std::string fixture(const std::string& name) {
  return std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name;
}

// linear.pt2: x: float32[s77, 4] with s77 in [2, 64]; outputs relu [s77, 3] and a SymInt.
std::shared_ptr<ir::Program> linear() {
  auto program = frontend::read_program_file(fixture("linear.pt2"));
  EXPECT_TRUE(program.ok()) << program.status().to_string();
  return *program;
}

std::string symbol_of(const ir::Program& program) {
  return *program.graph.user_inputs()[0]->value->shape[0].expr->as_symbol();
}

TEST(ProfilesTest, SpecsSetTheSymbolRangeAndOthersKeepTheProgramsRange) {
  auto program = linear();
  const std::string s = symbol_of(*program);
  auto from_program = resolve_symbol_profiles(*program, {});
  ASSERT_TRUE(from_program.ok()) << from_program.status().to_string();
  EXPECT_EQ(from_program->at(s).min, 2);
  EXPECT_EQ(from_program->at(s).max, 64);

  std::vector<InputSpec> specs = {{"x", {4, 4}, {8, 4}, {16, 4}, DType::kFloat32}};
  auto profiles = resolve_symbol_profiles(*program, specs);
  ASSERT_TRUE(profiles.ok()) << profiles.status().to_string();
  EXPECT_EQ(profiles->at(s).min, 4);
  EXPECT_EQ(profiles->at(s).opt, 8);
  EXPECT_EQ(profiles->at(s).max, 16);
}

TEST(ProfilesTest, BadSpecsSayWhatIsWrong) {
  auto program = linear();
  struct Case {
    std::vector<InputSpec> specs;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{{"x", {1, 4}, {8, 4}, {16, 4}, {}}}, "outside the range"},
      {{{"x", {4, 4}, {8, 4}, {128, 4}, {}}}, "outside the range"},
      {{{"x", {4, 5}, {8, 5}, {16, 5}, {}}}, "static size 4"},
      {{{"x", {8, 4}, {4, 4}, {16, 4}, {}}}, "min <= opt <= max"},
      {{{"x", {4}, {8}, {16}, {}}}, "expects 2 dims"},
      {{{"x", {4, 4}, {8, 4}, {16, 4}, DType::kFloat16}}, "dtype is float16"},
      {{{"x", {}, {}, {}, {}}, {"y", {}, {}, {}, {}}}, "expected 1 input specs"},
  };
  for (const Case& c : cases) {
    auto result = resolve_symbol_profiles(*program, c.specs);
    ASSERT_FALSE(result.ok()) << c.needle;
    EXPECT_NE(result.status().message().find(c.needle), std::string::npos)
        << result.status().message();
  }
}

TEST(ProfilesTest, ParsesInputShapeFlags) {
  auto spec = parse_input_shape_flag("x=1x3x224x224:8x3x224x224:32x3x224x224");
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  EXPECT_EQ(spec->name, "x");
  EXPECT_EQ(spec->min, (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_EQ(spec->opt, (std::vector<int64_t>{8, 3, 224, 224}));
  EXPECT_EQ(spec->max, (std::vector<int64_t>{32, 3, 224, 224}));
  auto fixed = parse_input_shape_flag("ids=2x128");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->min, fixed->max);
  for (const char* bad : {"x", "=1x2", "x=1x2:3x4", "x=1xa", "x=1x-2", "x=1x2:2x2:3x2:4x2"}) {
    EXPECT_FALSE(parse_input_shape_flag(bad).ok()) << bad;
  }
}

TEST(BuilderTest, BuildsAnEngineWithProfileAndBuildFacts) {
  auto program = linear();
  const std::string s = symbol_of(*program);
  BuildRequest request;
  request.program = program;
  request.name = "linear";
  const std::vector<InputSpec> specs = {{"x", {2, 4}, {8, 4}, {16, 4}, {}}};
  request.profiles = *resolve_symbol_profiles(*program, specs);
  auto engine = build_engine(std::move(request));
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  EXPECT_EQ(engine->target.backend, "cpu");
  EXPECT_EQ(engine->target.arch, host_cpu_arch());
  ASSERT_EQ(engine->profiles.size(), 1u);
  ASSERT_EQ(engine->profiles[0].symbols.size(), 1u);
  EXPECT_EQ(engine->profiles[0].symbols[0].symbol, s);
  EXPECT_EQ(engine->profiles[0].symbols[0].max, 16);
  // The graph's range is narrowed to the profile, so the runtime rejects 17.
  EXPECT_EQ(engine->program->graph.symbol_ranges().at(s).max, 16);
  EXPECT_EQ(engine->build.kiln_version, kVersion);
  EXPECT_EQ(engine->build.name, "linear");
  EXPECT_EQ(engine->build.settings_digest, settings_digest(BuildSettings{}));
  EXPECT_TRUE(format::write_engine(*engine).ok());
}

TEST(BuilderTest, CudaTargetsBuildWhereKilnHasTheCudaBackend) {
  BuildRequest request;
  request.program = linear();
  request.settings.target = {"cuda", "sm_90"};
  request.name = "linear";
  auto engine = build_engine(std::move(request));
  if (has_cuda_backend()) {  // no GPU needed: NVRTC compiles for sm_90 here
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    EXPECT_EQ(engine->target.backend, "cuda");
    EXPECT_EQ(engine->target.arch, "sm_90");
    return;
  }
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(engine.status().message().find("CUDA"), std::string::npos);
}

TEST(EngineCacheKeyTest, CoversWeightsSettingsProfilesAndTarget) {
  auto program = linear();
  const SymbolProfiles profiles = *resolve_symbol_profiles(*program, {});
  const BuildSettings base;
  const std::string key = engine_cache_key(*program, base, profiles);
  EXPECT_EQ(key.size(), 32u);
  EXPECT_EQ(key, engine_cache_key(*linear(), base, profiles)) << "deterministic";

  BuildSettings fp16 = base;
  fp16.precisions = {"fp16"};
  EXPECT_NE(engine_cache_key(*program, fp16, profiles), key);
  BuildSettings level = base;
  level.optimization_level = 5;
  EXPECT_NE(engine_cache_key(*program, level, profiles), key);

  SymbolProfiles narrow = profiles;
  narrow.begin()->second.max = 8;
  EXPECT_NE(engine_cache_key(*program, base, narrow), key);

  // One weight element changes: another key, unless the engine is refittable.
  auto changed = linear();
  Tensor& w = changed->weights.begin()->second;
  auto copy = w.to(w.dtype());
  ASSERT_TRUE(copy.ok());
  copy->data<float>()[0] += 1.0f;
  w = *copy;
  EXPECT_NE(engine_cache_key(*changed, base, profiles), key);
  BuildSettings refit = base;
  refit.refittable = true;
  EXPECT_EQ(engine_cache_key(*changed, refit, profiles), engine_cache_key(*program, refit, profiles));
}

}  // namespace
}  // namespace kiln::builder
