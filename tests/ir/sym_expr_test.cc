#include "ir/sym_expr.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace kiln::ir {
namespace {

constexpr int64_t kFailed = std::numeric_limits<int64_t>::min();

SymBindings bind(std::initializer_list<std::pair<std::string_view, int64_t>> values) {
  SymBindings bindings;
  for (const auto& [name, value] : values) bindings.set(name, value);
  return bindings;
}

SymExprPtr parse_ok(std::string_view text) {
  Result<SymExprPtr> e = parse_sym_expr(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status().to_string();
  return e.ok() ? *e : sym_symbol("<parse failed>");
}

// Parses and evaluates; a failure at either step is the status.
Result<int64_t> eval(std::string_view text, const SymBindings& bindings = {}) {
  KILN_ASSIGN_OR_RETURN(SymExprPtr e, parse_sym_expr(text));
  return e->evaluate(bindings);
}

int64_t eval_ok(std::string_view text, const SymBindings& bindings = {}) {
  Result<int64_t> v = eval(text, bindings);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().to_string();
  return v.ok() ? *v : kFailed;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(SymExprTest, SreprFormsFromTensorSizes) {
  const SymBindings b = bind({{"s77", 5}, {"s65", 3}, {"s0", 7}});
  SymExprPtr symbol = parse_ok("Symbol('s77', positive=True, integer=True)");
  ASSERT_NE(symbol->as_symbol(), nullptr);
  EXPECT_EQ(*symbol->as_symbol(), "s77");
  EXPECT_EQ(eval_ok("Symbol('s77', positive=True, integer=True)", b), 5);

  SymExprPtr doubled = parse_ok("Mul(Integer(2), Symbol('s65', positive=True, integer=True))");
  EXPECT_EQ(doubled->as_symbol(), nullptr);
  EXPECT_EQ(doubled->to_string(), "2*s65");
  EXPECT_EQ(doubled->evaluate(b).value(), 6);

  EXPECT_EQ(parse_ok("Add(Symbol('s0', integer=True, positive=True), Integer(-1))")->to_string(),
            "s0 - 1");
  EXPECT_EQ(eval_ok("Add(Symbol('s0', integer=True, positive=True), Integer(-1))", b), 6);
  EXPECT_EQ(eval_ok("FloorDiv(Symbol('s0', integer=True, positive=True), Integer(2))", b), 3);
  EXPECT_EQ(eval_ok("Mod(Symbol('s0', integer=True, positive=True), Integer(3))", b), 1);
  EXPECT_EQ(eval_ok("Max(Integer(1), Symbol('s0', integer=True))", b), 7);
  EXPECT_EQ(eval_ok("Min(Integer(1), Symbol('s0', integer=True))", b), 1);
  EXPECT_EQ(eval_ok("Pow(Symbol('s0', integer=True, positive=True), Integer(2))", b), 49);
  EXPECT_EQ(eval_ok("PowByNatural(Symbol('s0'), Integer(3))", b), 343);
  EXPECT_EQ(eval_ok("Integer(-3)"), -3);
  EXPECT_EQ(eval_ok("Symbol(\"s0\")", b), 7);
  EXPECT_EQ(eval_ok("Symbol('s0', kind='size')", b), 7);
}

TEST(SymExprTest, SreprTorchFunctions) {
  const SymBindings b = bind({{"s0", 7}, {"s1", 8}});
  EXPECT_EQ(eval_ok("CeilToInt(IntTrueDiv(Symbol('s0'), Integer(2)))", b), 4);
  EXPECT_EQ(eval_ok("FloorToInt(IntTrueDiv(Symbol('s0'), Integer(2)))", b), 3);
  EXPECT_EQ(eval_ok("TruncToInt(IntTrueDiv(Integer(-7), Integer(2)))"), -3);
  EXPECT_EQ(eval_ok("FloorToInt(IntTrueDiv(Integer(-7), Integer(2)))"), -4);
  EXPECT_EQ(eval_ok("CeilToInt(IntTrueDiv(Integer(-7), Integer(2)))"), -3);
  EXPECT_EQ(eval_ok("ceiling(s0/2)", b), 4);
  EXPECT_EQ(eval_ok("floor(s0/2)", b), 3);
  EXPECT_EQ(eval_ok("PythonMod(Integer(-7), Integer(3))"), 2);
  EXPECT_EQ(eval_ok("CleanDiv(Symbol('s1'), Integer(2))", b), 4);
  EXPECT_EQ(eval_ok("Identity(Symbol('s1'))", b), 8);
  Result<int64_t> unclean = eval("CleanDiv(Symbol('s0'), Integer(2))", b);
  ASSERT_FALSE(unclean.ok());
  EXPECT_EQ(unclean.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(unclean.status().message(), "not divisible")) << unclean.status().message();
}

TEST(SymExprTest, Rational) {
  EXPECT_EQ(eval_ok("Mul(Rational(1, 2), Symbol('s0'))", bind({{"s0", 8}})), 4);
  EXPECT_EQ(eval_ok("Rational(4, 2)"), 2);
  EXPECT_EQ(eval_ok("Rational(3, -6) + Rational(1, 2)"), 0);
  EXPECT_EQ(eval_ok("Rational(1, 3) + Rational(2, 3)"), 1);
  EXPECT_EQ(eval_ok("Rational(1, 2)*Rational(4, 1)"), 2);
  EXPECT_EQ(parse_ok("Rational(2, 4)")->to_string(), "1/2");
  EXPECT_FALSE(parse_ok("Rational(1, 2)")->is_constant());

  Result<int64_t> half = eval("Mul(Rational(1, 2), Symbol('s0'))", bind({{"s0", 7}}));
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(half.status().message(), "found 7/2")) << half.status().message();

  Result<SymExprPtr> zero = parse_sym_expr("Rational(1, 0)");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);
}

TEST(SymExprTest, StrFormsFromRangeConstraints) {
  const SymBindings b = bind({{"s0", 7}, {"s1", 3}, {"s65", 5}});
  EXPECT_EQ(eval_ok("s65", b), 5);
  EXPECT_EQ(eval_ok("2*s65", b), 10);
  EXPECT_EQ(eval_ok("s0 + 1", b), 8);
  EXPECT_EQ(eval_ok("s0*s1", b), 21);
  EXPECT_EQ(eval_ok("(s0//2)", b), 3);
  EXPECT_EQ(eval_ok("Max(1, s0)", b), 7);
  EXPECT_EQ(eval_ok("-s0 + 10", b), 3);
  EXPECT_EQ(eval_ok("s0**2", b), 49);
  EXPECT_EQ(eval_ok("s0 % 3", b), 1);
  EXPECT_EQ(eval_ok("  s0\t+\n1 ", b), 8);
  EXPECT_EQ(eval_ok("True"), 1);
  EXPECT_EQ(eval_ok("False"), 0);
}

TEST(SymExprTest, Precedence) {
  EXPECT_EQ(eval_ok("1 + 2*3"), 7);
  EXPECT_EQ(eval_ok("(1 + 2)*3"), 9);
  EXPECT_EQ(eval_ok("10 - 3 - 2"), 5);
  EXPECT_EQ(eval_ok("2**3**2"), 512);  // right-associative
  EXPECT_EQ(eval_ok("-2**2"), -4);     // ** binds tighter than unary minus
  EXPECT_EQ(eval_ok("(-2)**2"), 4);
  EXPECT_EQ(eval_ok("2**-1*4"), 2);
  EXPECT_EQ(eval_ok("2*3 % 4"), 2);
  EXPECT_EQ(eval_ok("7//2*2"), 6);
  EXPECT_EQ(eval_ok("-7//2"), -4);  // (-7)//2
  EXPECT_EQ(eval_ok("- -3"), 3);
  EXPECT_EQ(eval_ok("+5"), 5);
  EXPECT_EQ(eval_ok("1 - -1"), 2);
  EXPECT_EQ(eval_ok("2*-3"), -6);
  EXPECT_EQ(eval_ok("1 + 2 < 4"), 1);  // comparisons bind loosest
  EXPECT_EQ(eval_ok("12/4/3"), 1);
}

TEST(SymExprTest, PythonFloorDivAndModWithNegatives) {
  struct Case {
    int64_t a, b, quotient, remainder;
  };
  for (const Case& c : {Case{7, 2, 3, 1}, Case{-7, 2, -4, 1}, Case{7, -2, -4, -1},
                        Case{-7, -2, 3, -1}, Case{6, 3, 2, 0}, Case{-6, 3, -2, 0}}) {
    const SymBindings b = bind({{"a", c.a}, {"b", c.b}});
    EXPECT_EQ(eval_ok("a//b", b), c.quotient) << c.a << " // " << c.b;
    EXPECT_EQ(eval_ok("FloorDiv(a, b)", b), c.quotient) << c.a << " // " << c.b;
    EXPECT_EQ(eval_ok("a % b", b), c.remainder) << c.a << " % " << c.b;
    EXPECT_EQ(eval_ok("Mod(a, b)", b), c.remainder) << c.a << " % " << c.b;
    EXPECT_EQ(eval_ok("PythonMod(a, b)", b), c.remainder) << c.a << " % " << c.b;
  }
  for (std::string_view text : {"s0//0", "s0 % 0", "s0/0", "CleanDiv(s0, 0)", "0**-1"}) {
    Result<int64_t> v = eval(text, bind({{"s0", 4}}));
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(contains(v.status().message(), "division by zero")) << v.status().message();
  }
}

TEST(SymExprTest, MaxMinAndComparisons) {
  const SymBindings b = bind({{"s0", 2}, {"s1", -5}});
  EXPECT_EQ(eval_ok("Max(s0, s1, 1)", b), 2);
  EXPECT_EQ(eval_ok("Min(s0, s1, 1)", b), -5);
  EXPECT_EQ(eval_ok("Max(-3, -4)"), -3);
  EXPECT_EQ(eval_ok("Min(Rational(1, 2), 1)*2"), 1);
  EXPECT_EQ(eval_ok("Eq(s0, 2)", b), 1);
  EXPECT_EQ(eval_ok("Ne(s0, 2)", b), 0);
  EXPECT_EQ(eval_ok("Lt(s1, s0)", b), 1);
  EXPECT_EQ(eval_ok("Le(s0, 2)", b), 1);
  EXPECT_EQ(eval_ok("Gt(s1, s0)", b), 0);
  EXPECT_EQ(eval_ok("Ge(s0, 3)", b), 0);
  EXPECT_EQ(eval_ok("s0 < 3", b), 1);
  EXPECT_EQ(eval_ok("s0 >= 3", b), 0);
  EXPECT_EQ(eval_ok("s0 == 2", b), 1);
  EXPECT_EQ(eval_ok("s0 != 2", b), 0);
  Result<SymExprPtr> chained = parse_sym_expr("1 < s0 < 3");
  ASSERT_FALSE(chained.ok());
  EXPECT_EQ(chained.status().code(), StatusCode::kUnsupported);
}

TEST(SymExprTest, Overflow) {
  EXPECT_EQ(eval_ok("-9223372036854775807 - 1"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(eval_ok("2**62"), int64_t{1} << 62);
  EXPECT_EQ(eval_ok("(-2)**63"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(eval_ok("1**1000000000000000"), 1);
  for (std::string_view text :
       {"9223372036854775807 + 1", "2**63", "2**1000000000000", "(-9223372036854775807 - 1)//-1",
        "3037000500*3037000500", "Rational(1, 9223372036854775807)*Rational(1, 2)"}) {
    Result<int64_t> v = eval(text);
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_EQ(v.status().code(), StatusCode::kOutOfRange) << text << ": " << v.status().message();
  }
  Result<SymExprPtr> literal = parse_sym_expr("9223372036854775808");
  ASSERT_FALSE(literal.ok());
  EXPECT_EQ(literal.status().code(), StatusCode::kInvalidArgument);
}

TEST(SymExprTest, EvaluationErrorsNameTheExpression) {
  Result<int64_t> unbound = eval("2*s0 + s1", bind({{"s1", 1}}));
  ASSERT_FALSE(unbound.ok());
  EXPECT_EQ(unbound.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unbound.status().message(),
            "symbolic expression '2*s0 + s1': symbol 's0' is not bound");

  Result<int64_t> root = eval("Pow(s0, Rational(1, 2))", bind({{"s0", 4}}));
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), StatusCode::kUnsupported);
}

TEST(SymExprTest, UnsupportedFunctions) {
  for (std::string_view text :
       {"Piecewise((1, Eq(s0, 1)), (2, True))", "Float('1.5', precision=53)", "Abs(s0) + 1"}) {
    Result<SymExprPtr> e = parse_sym_expr(text);
    ASSERT_FALSE(e.ok()) << text;
    EXPECT_EQ(e.status().code(), StatusCode::kUnsupported) << text;
    const std::string name(text.substr(0, text.find('(')));
    EXPECT_TRUE(contains(e.status().message(), "'" + name + "'")) << e.status().message();
    EXPECT_TRUE(contains(e.status().message(), text)) << e.status().message();
  }
}

TEST(SymExprTest, ParseErrorMessage) {
  Result<SymExprPtr> e = parse_sym_expr("Mul(2,");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(),
            "cannot parse symbolic expression 'Mul(2,': expected an expression at offset 6");
  Result<SymExprPtr> f = parse_sym_expr("s0 * * 2");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "cannot parse symbolic expression 's0 * * 2': expected an expression, found '*' at "
            "offset 5");
}

TEST(SymExprTest, MalformedInputsAreStatuses) {
  const std::string nul_text("s0\0 + 1", 7);
  for (std::string_view text : {std::string_view(""),
                                std::string_view("   "),
                                std::string_view("("),
                                std::string_view(")"),
                                std::string_view("s0 +"),
                                std::string_view("2 3"),
                                std::string_view("s0 s1"),
                                std::string_view("Mul(2,)"),
                                std::string_view("Mul(2 3)"),
                                std::string_view("Mul(,)"),
                                std::string_view("Max(1, s0"),
                                std::string_view("Max()"),
                                std::string_view("FloorDiv(1)"),
                                std::string_view("FloorDiv(1, 2, 3)"),
                                std::string_view("Pow(2)"),
                                std::string_view("CeilToInt()"),
                                std::string_view("Identity()"),
                                std::string_view("Symbol(s0)"),
                                std::string_view("Symbol('s0'"),
                                std::string_view("Symbol('')"),
                                std::string_view("Symbol('a', 'b')"),
                                std::string_view("Symbol()"),
                                std::string_view("'s0'"),
                                std::string_view("Mul(2, 'x')"),
                                std::string_view("Integer(s0)"),
                                std::string_view("Integer()"),
                                std::string_view("Rational(1)"),
                                std::string_view("Rational(s0, 2)"),
                                std::string_view("s0 $ 1"),
                                std::string_view("1.5"),
                                std::string_view("s0 ** "),
                                std::string_view("s0 = 1"),
                                std::string_view("x == == y"),
                                std::string_view("s0 !"),
                                std::string_view("\xc3\xa9"),
                                std::string_view("\x01"),
                                std::string_view(nul_text),
                                std::string_view("Symbol('unterminated"),
                                std::string_view("99999999999999999999999"),
                                std::string_view("(((("),
                                std::string_view("s0("),
                                std::string_view("Max(1, x=)"),
                                std::string_view("Add(s0, y=2"),
                                std::string_view("2 ** ** 3"),
                                std::string_view("s0 // // 2")}) {
    Result<SymExprPtr> e = parse_sym_expr(text);
    ASSERT_FALSE(e.ok()) << "parsed: " << text;
    EXPECT_TRUE(e.status().code() == StatusCode::kInvalidArgument ||
                e.status().code() == StatusCode::kUnsupported)
        << e.status().to_string();
    EXPECT_TRUE(contains(e.status().message(), "cannot parse symbolic expression"))
        << e.status().message();
  }
}

TEST(SymExprTest, DeepNestingIsRejectedNotACrash) {
  const std::string parens = std::string(20000, '(') + "1" + std::string(20000, ')');
  const std::string minuses = std::string(20000, '-') + "1";
  std::string powers;
  for (int i = 0; i < 5000; ++i) powers += "2**";
  powers += "1";
  std::string floordivs = "s0";
  for (int i = 0; i < 1000; ++i) floordivs += "//2";
  std::string adds;
  for (int i = 0; i < 1000; ++i) adds += "Add(1, ";
  adds += "1" + std::string(1000, ')');
  for (const std::string& text : {parens, minuses, powers, floordivs, adds}) {
    Result<SymExprPtr> e = parse_sym_expr(text);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  }
  // Modest nesting and long flat sums are fine.
  EXPECT_EQ(eval_ok(std::string(50, '(') + "7" + std::string(50, ')')), 7);
  std::string sum = "1";
  for (int i = 0; i < 10000; ++i) sum += " + 1";
  EXPECT_EQ(eval_ok(sum), 10001);
  EXPECT_EQ(parse_ok(sum)->depth(), 2);
}

TEST(SymExprTest, SolveForUnbound) {
  using Solution = std::pair<std::string, int64_t>;
  const SymBindings none;
  EXPECT_EQ(parse_ok("2*s65")->solve_for_unbound(12, none).value(), Solution("s65", 6));
  EXPECT_EQ(parse_ok("Mul(Integer(2), Symbol('s65', positive=True, integer=True))")
                ->solve_for_unbound(12, none)
                .value(),
            Solution("s65", 6));
  EXPECT_EQ(parse_ok("s0 + 1")->solve_for_unbound(5, none).value(), Solution("s0", 4));
  EXPECT_EQ(parse_ok("s0")->solve_for_unbound(9, none).value(), Solution("s0", 9));
  EXPECT_EQ(parse_ok("-s0 + 10")->solve_for_unbound(3, none).value(), Solution("s0", 7));
  EXPECT_EQ(parse_ok("2*(s0 + 1)")->solve_for_unbound(10, none).value(), Solution("s0", 4));
  EXPECT_EQ(parse_ok("s0/2")->solve_for_unbound(3, none).value(), Solution("s0", 6));
  EXPECT_EQ(parse_ok("CleanDiv(s0, 4)")->solve_for_unbound(3, none).value(), Solution("s0", 12));
  EXPECT_EQ(parse_ok("s0*s1")->solve_for_unbound(12, bind({{"s1", 3}})).value(), Solution("s0", 4));
  EXPECT_EQ(parse_ok("s1 + 2*s0 - Max(s1, 4)")->solve_for_unbound(10, bind({{"s1", 6}})).value(),
            Solution("s0", 5));

  Result<Solution> odd = parse_ok("2*s65")->solve_for_unbound(13, none);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(odd.status().message(), "expected a multiple of 2 to match '2*s65', found 13");

  Result<Solution> shifted = parse_ok("2*s0 + 1")->solve_for_unbound(12, none);
  ASSERT_FALSE(shifted.ok());
  EXPECT_EQ(shifted.status().code(), StatusCode::kInvalidArgument);

  Result<Solution> two = parse_ok("s0*s1")->solve_for_unbound(12, none);
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(two.status().message(), "s0, s1")) << two.status().message();

  Result<Solution> zero = parse_ok("3")->solve_for_unbound(3, none);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);

  Result<Solution> cancels = parse_ok("s0 - s0 + 4")->solve_for_unbound(4, none);
  ASSERT_FALSE(cancels.ok());
  EXPECT_EQ(cancels.status().code(), StatusCode::kInvalidArgument);

  for (std::string_view text : {"s0//2", "s0**2", "s0*s0", "Max(s0, 2)", "6/s0"}) {
    Result<Solution> s = parse_ok(text)->solve_for_unbound(4, none);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.status().code(), StatusCode::kUnsupported) << text;
  }
}

TEST(SymExprTest, ToStringMatchesSympy) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"Mul(Integer(2), Symbol('s65', positive=True, integer=True))", "2*s65"},
      {"Add(Symbol('s0'), Integer(1))", "s0 + 1"},
      {"Add(Mul(Integer(-1), Symbol('s0')), Integer(10))", "-s0 + 10"},
      {"Add(Symbol('s0'), Mul(Integer(-2), Symbol('s1')))", "s0 - 2*s1"},
      {"Add(Symbol('s0'), Mul(Integer(-1), Symbol('s1'), Symbol('s2')))", "s0 - s1*s2"},
      {"FloorDiv(Symbol('s0'), Integer(2))", "s0//2"},
      {"Mod(Symbol('s0'), Integer(3))", "s0 % 3"},
      {"Pow(Symbol('s0'), Integer(2))", "s0**2"},
      {"Max(Integer(1), Symbol('s0'))", "Max(1, s0)"},
      {"Mul(Rational(1, 2), Symbol('s0'))", "1/2*s0"},
      {"Add(Symbol('s0'), Rational(-1, 2))", "s0 - 1/2"},
      {"Mul(Integer(2), Add(Symbol('s0'), Integer(1)))", "2*(s0 + 1)"},
      {"Pow(Mul(Integer(-1), Symbol('s0')), Integer(2))", "(-s0)**2"},
      {"Mul(Integer(-1), FloorDiv(Symbol('s0'), Integer(2)))", "-(s0//2)"},
      {"Add(Symbol('s0'), Mul(Integer(-1), FloorDiv(Symbol('s1'), Integer(2))))", "s0 - s1//2"},
      {"FloorDiv(Symbol('s0'), Mul(Integer(2), Symbol('s1')))", "s0//(2*s1)"},
      {"Eq(Symbol('s0'), Integer(2))", "Eq(s0, 2)"},
      {"CeilToInt(IntTrueDiv(Symbol('s0'), Integer(2)))", "CeilToInt(s0/2)"},
      {"Integer(-3)", "-3"},
      {"Pow(Integer(-2), Integer(2))", "(-2)**2"},
      {"Pow(Integer(2), Integer(-1))", "2**-1"},
      {"PythonMod(Symbol('s0'), Integer(3))", "s0 % 3"},
      {"CleanDiv(Symbol('s0'), Integer(2))", "CleanDiv(s0, 2)"},
      {"s0 < 3", "Lt(s0, 3)"},
  };
  for (const auto& [text, expected] : cases) EXPECT_EQ(parse_ok(text)->to_string(), expected);
}

TEST(SymExprTest, ToStringRoundTrips) {
  const SymBindings b = bind({{"s0", 7}, {"s1", 3}, {"s2", -4}, {"s65", 5}});
  for (std::string_view text :
       {"Mul(Integer(2), Symbol('s65', positive=True, integer=True))",
        "Add(Symbol('s0', integer=True, positive=True), Integer(-1))",
        "s65",
        "2*s65",
        "s0 + 1",
        "s0*s1",
        "(s0//2)",
        "Max(1, s0)",
        "-s0 + 10",
        "s0**2",
        "s0 % 3",
        "-(s0//2)*s1",
        "s0 - (s1 - s2)",
        "s0 - s1//2 + s2 % 3",
        "(s0 + s1)//(s2 - 1)",
        "-s2**2",
        "(-s2)**2",
        "2**-s1*s0*16",
        "s0*(s1//2)",
        "s0 - -s1",
        "s2 % -3",
        "Min(s0, s1) - Max(s2, -s0)",
        "Mul(Rational(-1, 2), Symbol('s0')) + Rational(1, 2)",
        "s0/(s1/2)*3",
        "CeilToInt(s0/s1) + FloorToInt(-s0/s1) + TruncToInt(s2/s1)",
        "Eq(s0, 7) + Ne(s0, s1) + (s1 < s2) + (s1 >= 3)",
        "Mul(Integer(-1), Integer(-3))",
        "Add(s0, Mul(Integer(-1), Integer(-9223372036854775807) + Integer(-1)))",
        "s0 - 9223372036854775807 - 1",
        "Mul(s0, Integer(-1))",
        "-(-s0)"}) {
    SymExprPtr e = parse_ok(text);
    const std::string printed = e->to_string();
    SymExprPtr again = parse_ok(printed);
    Result<int64_t> expected = e->evaluate(b);
    Result<int64_t> actual = again->evaluate(b);
    ASSERT_EQ(expected.ok(), actual.ok()) << text << " -> " << printed;
    if (expected.ok()) {
      EXPECT_EQ(*expected, *actual) << text << " -> " << printed;
    } else {
      EXPECT_EQ(expected.status().code(), actual.status().code()) << text << " -> " << printed;
    }
    // Printing is stable once parsed back (the parser folds "--3" to "3").
    EXPECT_EQ(parse_ok(again->to_string())->to_string(), again->to_string()) << text;
  }
}

TEST(SymExprTest, StructurallyEqual) {
  const auto same = [](std::string_view a, std::string_view b) {
    return parse_ok(a)->structurally_equal(*parse_ok(b));
  };
  EXPECT_TRUE(same("2*s65", "Mul(Integer(2), Symbol('s65', positive=True, integer=True))"));
  EXPECT_TRUE(same("s0 + 1", "Add(Symbol('s0'), Integer(1))"));
  EXPECT_TRUE(same("s0 - 1", "Add(Symbol('s0', integer=True), Integer(-1))"));
  EXPECT_TRUE(same("-s0 + 10", "Add(Mul(Integer(-1), Symbol('s0')), Integer(10))"));
  EXPECT_TRUE(same("s0 - 2*s1", "Add(Symbol('s0'), Mul(Integer(-2), Symbol('s1')))"));
  EXPECT_TRUE(same("(s0//2)", "FloorDiv(Symbol('s0'), Integer(2))"));
  EXPECT_TRUE(same("s0 % 3", "PythonMod(Symbol('s0'), Integer(3))"));
  EXPECT_TRUE(same("a + b + c", "Add(Add(a, b), c)"));
  EXPECT_FALSE(same("s0 + 1", "1 + s0"));
  EXPECT_FALSE(same("s0 + 1", "s0 + 2"));
  EXPECT_FALSE(same("s0", "s1"));
  EXPECT_FALSE(same("s0//2", "s0/2"));
  EXPECT_FALSE(same("Rational(1, 2)", "Rational(1, 3)"));
}

TEST(SymExprTest, SymbolsAndConstants) {
  std::vector<std::string> names = {"s2"};
  parse_ok("s1*s0 + s1 + Max(s2, s0, s3)")->collect_symbols(&names);
  EXPECT_EQ(names, (std::vector<std::string>{"s2", "s1", "s0", "s3"}));

  EXPECT_EQ(parse_ok("2*3 + 1")->constant_value(), 7);
  EXPECT_TRUE(parse_ok("Integer(5)")->is_constant());
  EXPECT_FALSE(parse_ok("s0")->is_constant());
  EXPECT_FALSE(parse_ok("s0 - s0")->is_constant());  // no simplification
  EXPECT_FALSE(parse_ok("1/2")->is_constant());
  EXPECT_FALSE(parse_ok("1//0")->is_constant());
  EXPECT_EQ(parse_ok("s0")->constant_value(), std::nullopt);
  EXPECT_EQ(parse_ok("2*s0")->as_symbol(), nullptr);
}

TEST(SymExprTest, Builders) {
  EXPECT_EQ(sym_const(-4)->constant_value(), -4);
  EXPECT_EQ(sym_const(-4)->to_string(), "-4");
  EXPECT_EQ(eval_ok(sym_const(std::numeric_limits<int64_t>::min())->to_string()),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(sym_symbol("a b")->to_string(), "Symbol('a b')");
  EXPECT_EQ(sym_symbol("True")->to_string(), "Symbol('True')");
  EXPECT_EQ(eval_ok(sym_symbol("it's")->to_string(), bind({{"it's", 2}})), 2);
  SymExprPtr s0 = sym_symbol("s0");
  ASSERT_NE(s0->as_symbol(), nullptr);
  EXPECT_EQ(*s0->as_symbol(), "s0");

  Result<SymExprPtr> sum = make_sym_expr(SymKind::kAdd, {s0, sym_const(1)});
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ((*sum)->to_string(), "s0 + 1");
  Result<SymExprPtr> nested = make_sym_expr(SymKind::kAdd, {*sum, sym_symbol("s1")});
  ASSERT_TRUE(nested.ok());
  EXPECT_EQ((*nested)->children().size(), 3u);  // flattened
  Result<SymExprPtr> single = make_sym_expr(SymKind::kMax, {s0});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->get(), s0.get());
  Result<SymExprPtr> half = make_sym_rational(2, -4);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ((*half)->to_string(), "-1/2");
  EXPECT_EQ((*make_sym_rational(6, 3))->constant_value(), 2);

  EXPECT_FALSE(make_sym_expr(SymKind::kFloorDiv, {s0}).ok());
  EXPECT_FALSE(make_sym_expr(SymKind::kCeil, {s0, s0}).ok());
  EXPECT_FALSE(make_sym_expr(SymKind::kAdd, {}).ok());
  EXPECT_FALSE(make_sym_expr(SymKind::kConst, {}).ok());
  EXPECT_FALSE(make_sym_expr(SymKind::kMul, {s0, nullptr}).ok());
  EXPECT_FALSE(make_sym_rational(1, 0).ok());

  SymExprPtr deep = s0;
  Status status;
  for (int i = 0; i < kMaxSymExprDepth + 5 && status.ok(); ++i) {
    Result<SymExprPtr> next = make_sym_expr(SymKind::kFloorDiv, {deep, sym_const(2)});
    if (next.ok()) {
      deep = *next;
    } else {
      status = next.take_status();
    }
  }
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_LE(deep->depth(), kMaxSymExprDepth);
}

TEST(SymExprTest, Bindings) {
  SymBindings b;
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.get("s0"), std::nullopt);
  b.set("s0", 3);
  b.set("s1", 4);
  b.set("s0", 5);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.get("s0"), 5);
  EXPECT_EQ(b.get("s1"), 4);
  EXPECT_EQ(b.get("s"), std::nullopt);
}

}  // namespace
}  // namespace kiln::ir
