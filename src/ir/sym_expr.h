// Symbolic integer expressions for tensor dims, as torch.export records them: sympy strings in
// srepr form (`Mul(Integer(2), Symbol('s65', positive=True, integer=True))`) in tensor sizes and
// sym_int values, and in str form (`2*s65`, `(s0//2)`, `Max(1, s0)`) in range_constraints keys.
//
// A SymExpr is an immutable tree shared through SymExprPtr (shared_ptr<const SymExpr>); it lives as
// long as its last owner, and sharing one between threads is safe. SymBindings is a plain value
// type: safe to read from several threads, not while it is being modified.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/status.h"

namespace kiln::ir {

class SymExpr;
using SymExprPtr = std::shared_ptr<const SymExpr>;

// The sympy classes kiln understands, and the aliases that parse into each.
enum class SymKind : uint8_t {
  kConst,     // Integer(3), 3
  kRational,  // Rational(1, 2): an exact fraction, never integral
  kSymbol,    // Symbol('s0', ...), s0
  kAdd,       // Add(a, b, ...), a + b, a - b
  kMul,       // Mul(a, b, ...), a*b, -a
  kPow,       // Pow(a, b), PowByNatural(a, b), a**b; the exponent must evaluate to an integer
  kTrueDiv,   // IntTrueDiv(a, b), a/b: exact rational division
  kFloorDiv,  // FloorDiv(a, b), a//b: Python floor division
  kCleanDiv,  // CleanDiv(a, b): division that must be exact
  kMod,       // Mod(a, b), PythonMod(a, b), a % b: Python modulo, the sign of the divisor
  kMax,       // Max(a, ...)
  kMin,       // Min(a, ...)
  kCeil,      // CeilToInt(a), ceiling(a)
  kFloor,     // FloorToInt(a), floor(a)
  kTrunc,     // TruncToInt(a)
  kEq,        // Eq(a, b), a == b; comparisons evaluate to 0 or 1
  kNe,        // Ne(a, b), a != b
  kLt,        // Lt(a, b), a < b
  kLe,        // Le(a, b), a <= b
  kGt,        // Gt(a, b), a > b
  kGe,        // Ge(a, b), a >= b
};

// Trees deeper than this are rejected when built, so every recursive walk stays shallow.
inline constexpr int kMaxSymExprDepth = 128;

// Symbol values, by name. Small: a handful of symbols per program, so a linear scan.
class SymBindings {
 public:
  void set(std::string_view name, int64_t value);  // adds or overwrites
  std::optional<int64_t> get(std::string_view name) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, int64_t>> entries_;
};

// Parses either syntax (and mixtures of them). `name=value` keyword arguments are ignored; `True`
// and `False` are 1 and 0. Malformed text: invalid_argument with the offset; a sympy class kiln
// does not handle (Piecewise, Float, ...): unsupported, naming it.
Result<SymExprPtr> parse_sym_expr(std::string_view text);

SymExprPtr sym_const(int64_t value);
SymExprPtr sym_symbol(std::string name);
// Builds an operator node (any kind but kConst, kRational, kSymbol). Checks the arity and the
// depth; nested kAdd / kMul children are flattened, and a one-operand Add, Mul, Max or Min is its
// operand.
Result<SymExprPtr> make_sym_expr(SymKind kind, std::vector<SymExprPtr> children);
// Rational(num, den), reduced; an integral one is a kConst. Zero denominator: invalid_argument.
Result<SymExprPtr> make_sym_rational(int64_t num, int64_t den);

class SymExpr {
 public:
  struct Key {  // lets only the builders construct nodes
   private:
    Key() = default;
    friend SymExprPtr sym_const(int64_t);
    friend SymExprPtr sym_symbol(std::string);
    friend Result<SymExprPtr> make_sym_expr(SymKind, std::vector<SymExprPtr>);
    friend Result<SymExprPtr> make_sym_rational(int64_t, int64_t);
  };
  SymExpr(Key, SymKind kind, int64_t value, int64_t den, std::string name,
          std::vector<SymExprPtr> children, int depth);

  SymKind kind() const { return kind_; }
  std::span<const SymExprPtr> children() const { return children_; }
  int depth() const { return depth_; }  // 1 for a leaf
  // kConst: num() is the value; kRational: num() / den(), den() > 1, coprime. 0 and 1 otherwise.
  int64_t num() const { return value_; }
  int64_t den() const { return den_; }

  // Exact integer semantics: intermediate values are exact fractions, and the result must be an
  // integer. Unbound symbol: not_found naming it; division by zero, a fractional result:
  // invalid_argument; int64 overflow: out_of_range.
  Result<int64_t> evaluate(const SymBindings& bindings) const;

  // sympy's str form ("2*s65", "s0 + 1", "-s0 + 10", "Max(1, s0)"); parse_sym_expr reads it back
  // to an expression that evaluates the same.
  std::string to_string() const;

  // Appends the symbols not yet in *names, in order of first appearance.
  void collect_symbols(std::vector<std::string>* names) const;

  // The value when the expression evaluates to an integer without bindings.
  std::optional<int64_t> constant_value() const;
  bool is_constant() const { return constant_value().has_value(); }
  // The name when the expression is a bare symbol, else null; lives as long as this node.
  const std::string* as_symbol() const { return kind_ == SymKind::kSymbol ? &name_ : nullptr; }

  // For an expression affine in its one unbound symbol s (a*s + b, a != 0, given the bindings of
  // the others), solves expr == value: returns {s, its value}. Errors: not exactly one unbound
  // symbol, or no integer solution (invalid_argument: "expected a multiple of 2 to match '2*s65',
  // found 13"); not affine in it (unsupported).
  Result<std::pair<std::string, int64_t>> solve_for_unbound(int64_t value,
                                                            const SymBindings& bindings) const;

  // Same tree (kinds, constants, names, children in order); no algebraic normalization.
  bool structurally_equal(const SymExpr& other) const;

 private:
  SymKind kind_;
  int depth_;
  int64_t value_;
  int64_t den_;
  std::string name_;  // kSymbol
  std::vector<SymExprPtr> children_;
};

}  // namespace kiln::ir
