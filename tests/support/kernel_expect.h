// Test support: run a hand-built op call expecting success or a given error, and compare a
// result's dtype, shape and values with a tolerance. Shared by the kernel conformance tests.
#pragma once

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "base/tensor.h"
#include "kiln/status.h"
#include "support/op_runner.h"

namespace kiln::testing {

// Tolerances (rtol = atol) for the comparisons below: DESIGN.md's fp32 per-op tolerance, and a
// tighter one for ops whose results are exact up to float rounding (fills, copies, gathers).
inline constexpr double kOpTol = 1e-4;
inline constexpr double kTightTol = 1e-6;

// Runs `call`, recording a test failure (with the status) if it fails. Returns all its outputs;
// none on failure.
std::vector<Tensor> run(const OpCall& call);
// The same, returning the first output; an empty Tensor (no data, which expect_tensor rejects) on
// failure.
Tensor run1(const OpCall& call);

// Runs a call that must fail with a message containing each of `parts` and, when given, `code`.
void expect_error(const OpCall& call, std::initializer_list<std::string_view> parts,
                  std::optional<StatusCode> code = std::nullopt);
// The same with one part.
void expect_error(const OpCall& call, std::string_view part,
                  std::optional<StatusCode> code = std::nullopt);

// |got - want| <= atol + rtol * |want|.
struct Tolerance {
  double atol = kOpTol;
  double rtol = kOpTol;
};

// Compares `got` with `want` element by element: an expected NaN needs a NaN, an expected infinity
// the same infinity, any other value must be within `tol`. Reports the first few mismatches, each
// prefixed by `what`.
void expect_values_near(const std::vector<double>& got, const std::vector<double>& want,
                        Tolerance tol = {}, std::string_view what = {});

// Checks that `t` has data, dtype `dtype`, shape `shape` and the values `want` (in logical order)
// within rtol = atol = `tol`, as expect_values_near.
void expect_tensor(const Tensor& t, DType dtype, const Shape& shape,
                   const std::vector<double>& want, double tol = kOpTol);
// The same for an op's outputs, which must be exactly one tensor.
void expect_tensor(const std::vector<Tensor>& outputs, DType dtype, const Shape& shape,
                   const std::vector<double>& want, double tol = kOpTol);

}  // namespace kiln::testing
