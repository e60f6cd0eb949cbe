#include "support/kernel_expect.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace kiln::testing {
namespace {

// Enough to locate a wrong region without flooding the log for a large tensor.
constexpr int kMaxReportedMismatches = 5;

bool matches(double got, double want, Tolerance tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::abs(got - want) <= tol.atol + tol.rtol * std::abs(want);
}

}  // namespace

std::vector<Tensor> run(const OpCall& call) {
  auto result = run_op(call);
  EXPECT_TRUE(result.ok()) << call.target << ": " << result.status().to_string();
  return result.ok() ? std::move(result).value() : std::vector<Tensor>{};
}

Tensor run1(const OpCall& call) {
  std::vector<Tensor> outputs = run(call);
  return outputs.empty() ? Tensor() : outputs[0];
}

void expect_error(const OpCall& call, std::initializer_list<std::string_view> parts,
                  std::optional<StatusCode> code) {
  auto result = run_op(call);
  ASSERT_FALSE(result.ok()) << call.target << " unexpectedly succeeded";
  if (code) {
    EXPECT_EQ(status_code_name(result.status().code()), status_code_name(*code))
        << "message: " << result.status().message();
  }
  const std::string& message = result.status().message();
  for (std::string_view part : parts) {
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

void expect_error(const OpCall& call, std::string_view part, std::optional<StatusCode> code) {
  expect_error(call, {part}, code);
}

void expect_values_near(const std::vector<double>& got, const std::vector<double>& want,
                        Tolerance tol, std::string_view what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int mismatches = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (matches(got[i], want[i], tol)) continue;
    if (++mismatches <= kMaxReportedMismatches) {
      ADD_FAILURE() << what << (what.empty() ? "" : ": ") << "element " << i << ": expected "
                    << want[i] << ", found " << got[i] << " (atol " << tol.atol << ", rtol "
                    << tol.rtol << ")";
    }
  }
  if (mismatches > kMaxReportedMismatches) {
    ADD_FAILURE() << what << (what.empty() ? "" : ": ") << mismatches << " of " << got.size()
                  << " elements differ";
  }
}

void expect_tensor(const Tensor& t, DType dtype, const Shape& shape,
                   const std::vector<double>& want, double tol) {
  ASSERT_TRUE(t.has_data()) << "no tensor to compare";
  EXPECT_EQ(dtype_name(t.dtype()), dtype_name(dtype));
  ASSERT_EQ(shape_to_string(t.sizes()), shape_to_string(shape));
  expect_values_near(to_doubles(t), want, {.atol = tol, .rtol = tol});
}

void expect_tensor(const std::vector<Tensor>& outputs, DType dtype, const Shape& shape,
                   const std::vector<double>& want, double tol) {
  ASSERT_EQ(outputs.size(), 1u);
  expect_tensor(outputs[0], dtype, shape, want, tol);
}

}  // namespace kiln::testing
