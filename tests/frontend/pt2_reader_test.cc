#include "frontend/pt2_reader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ir/printer.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

namespace kiln::frontend {
namespace {

std::string fixture(const std::string& name) {
  return std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// linear.pt2: relu(x @ W.T + b) with W = arange(12).reshape(3, 4) / 10, b = [0.5, -1, 0], and
// x.shape[0] * 2; batch is dynamic in [2, 64].
void expect_linear_program(const std::shared_ptr<ir::Program>& program) {
  const ir::Graph& g = program->graph;
  ASSERT_EQ(g.user_inputs().size(), 1u);
  EXPECT_EQ(g.user_inputs()[0]->value->name, "x");
  EXPECT_EQ(program->weights.size(), 2u);
  EXPECT_EQ(program->schema_major, 8);
  auto range = g.symbol_ranges().begin();
  ASSERT_NE(range, g.symbol_ranges().end());
  EXPECT_EQ(range->second.min, 2);
  EXPECT_EQ(range->second.max, 64);

  auto executor = Executor::create(program, cpu::cpu_backend());
  ASSERT_TRUE(executor.ok()) << executor.status().message();
  Tensor x = testing::make_tensor(DType::kFloat32, {2, 4}, {1, 0, 0, 0, 0, 1, 1, -1});
  std::vector<Tensor> inputs = {x};
  auto outputs = (*executor)->run(inputs);
  ASSERT_TRUE(outputs.ok()) << outputs.status().message();
  ASSERT_EQ(outputs->size(), 2u);
  // Row 0: W[:, 0] + b = [0.5, -0.6, 0.8]; row 1: W[:,1] + W[:,2] - W[:,3] + b = [0.5, -0.6, 0.8].
  std::vector<double> y = testing::to_doubles((*outputs)[0].tensor);
  std::vector<double> expected = {0.5, 0.0, 0.8, 0.5, 0.0, 0.8};
  ASSERT_EQ(y.size(), expected.size());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-6) << i;
  EXPECT_EQ((*outputs)[1].kind, ir::RtValue::Kind::kInt);
  EXPECT_EQ((*outputs)[1].i, 4);
}

TEST(Pt2ReaderTest, ReadsFileAndRuns) {
  auto program = read_program_file(fixture("linear.pt2"));
  ASSERT_TRUE(program.ok()) << program.status().message();
  expect_linear_program(*program);
  const std::string text = ir::print_graph((*program)->graph);
  EXPECT_NE(text.find("aten.addmm.default(%p_fc_bias, %x, %permute, beta=1, alpha=1)"),
            std::string::npos)
      << text;
}

TEST(Pt2ReaderTest, ReadsBytesAndDeflatedEntries) {
  for (const char* name : {"linear.pt2", "linear_deflated.pt2"}) {
    auto program = read_program_bytes(read_bytes(fixture(name)), ReadOptions{.verify_crc = true});
    ASSERT_TRUE(program.ok()) << name << ": " << program.status().message();
    expect_linear_program(*program);
  }
}

TEST(Pt2ReaderTest, WeightsOutliveTheReader) {
  std::shared_ptr<ir::Program> program;
  {
    std::string bytes = read_bytes(fixture("linear.pt2"));
    program = *read_program_bytes(bytes);
  }  // the caller's buffer is gone; the program holds its own copy
  expect_linear_program(program);
}

TEST(Pt2ReaderTest, InputOutsideRangeIsRejected) {
  auto program = *read_program_file(fixture("linear.pt2"));
  auto executor = Executor::create(program, cpu::cpu_backend());
  ASSERT_TRUE(executor.ok());
  std::vector<Tensor> inputs = {testing::make_tensor(DType::kFloat32, {65, 4}, {0})};
  auto result = (*executor)->run(inputs);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("expected a value in [2, 64]"), std::string::npos)
      << result.status().message();
}

struct BadArchive {
  const char* file;
  StatusCode code;
  const char* message;
};

class Pt2ReaderBadArchiveTest : public ::testing::TestWithParam<BadArchive> {};

TEST_P(Pt2ReaderBadArchiveTest, FailsCleanly) {
  const BadArchive& bad = GetParam();
  auto program = read_program_file(fixture(bad.file));
  ASSERT_FALSE(program.ok()) << bad.file;
  EXPECT_EQ(program.status().code(), bad.code) << program.status().to_string();
  EXPECT_NE(program.status().message().find(bad.message), std::string::npos)
      << program.status().message();
  if (bad.code == StatusCode::kNotFound) return;  // no file, no bytes to read from memory
  // The same bytes from memory fail the same way.
  auto from_bytes = read_program_bytes(read_bytes(fixture(bad.file)));
  ASSERT_FALSE(from_bytes.ok());
  EXPECT_EQ(from_bytes.status().code(), bad.code);
}

INSTANTIATE_TEST_SUITE_P(
    Archives, Pt2ReaderBadArchiveTest,
    ::testing::Values(BadArchive{"truncated.pt2", StatusCode::kDataLoss, "ZIP"},
                      BadArchive{"bad_json.pt2", StatusCode::kDataLoss, "invalid JSON"},
                      BadArchive{"missing_weight.pt2", StatusCode::kDataLoss, "weight_0"},
                      BadArchive{"short_weight.pt2", StatusCode::kDataLoss, "found 8"},
                      BadArchive{"unknown_op.pt2", StatusCode::kUnsupported,
                                 "calls torch.ops.aten.not_an_op.default"},
                      BadArchive{"no_such_file.pt2", StatusCode::kNotFound, "no_such_file.pt2"}));

TEST(Pt2ReaderTest, EveryTruncationFailsCleanly) {
  const std::string bytes = read_bytes(fixture("linear.pt2"));
  for (size_t keep = 0; keep < bytes.size(); keep += 97) {
    auto program = read_program_bytes(std::string_view(bytes).substr(0, keep));
    EXPECT_FALSE(program.ok()) << "kept " << keep << " bytes";
  }
}

}  // namespace
}  // namespace kiln::frontend
