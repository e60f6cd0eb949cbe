#include "ir/sym_expr.h"

#include <algorithm>
#include <limits>
#include <ostream>

namespace kiln::ir {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// Products of two int64 and sums of two such products fit, so fractions are combined exactly in
// 128 bits and only the reduced result is narrowed (with an overflow check) back to int64.
using Wide = __int128;

// An exact fraction: den > 0, coprime with num.
struct Rat {
  int64_t num = 0;
  int64_t den = 1;
  bool is_int() const { return den == 1; }
};

std::ostream& operator<<(std::ostream& out, const Rat& r) {
  out << r.num;
  if (r.den != 1) out << '/' << r.den;
  return out;
}

Status overflow_error() {
  return out_of_range("int64 overflow");
}
Status division_by_zero() {
  return invalid_argument("division by zero");
}

Result<int64_t> narrow(Wide v) {
  int64_t out;
  if (__builtin_add_overflow(v, Wide{0}, &out)) return overflow_error();
  return out;
}

Result<Rat> make_rat(Wide num, Wide den) {
  if (den == 0) return division_by_zero();
  if (den < 0) {
    num = -num;
    den = -den;
  }
  using UWide = unsigned __int128;
  UWide a = num < 0 ? UWide{0} - static_cast<UWide>(num) : static_cast<UWide>(num);
  UWide b = static_cast<UWide>(den);
  while (b != 0) {
    const UWide r = a % b;
    a = b;
    b = r;
  }
  const Wide g = static_cast<Wide>(a);  // >= 1, since den > 0
  KILN_ASSIGN_OR_RETURN(int64_t n, narrow(num / g));
  KILN_ASSIGN_OR_RETURN(int64_t d, narrow(den / g));
  return Rat{n, d};
}

Result<Rat> add(Rat x, Rat y) {
  return make_rat(Wide{x.num} * y.den + Wide{y.num} * x.den, Wide{x.den} * y.den);
}
Result<Rat> sub(Rat x, Rat y) {
  return make_rat(Wide{x.num} * y.den - Wide{y.num} * x.den, Wide{x.den} * y.den);
}
Result<Rat> mul(Rat x, Rat y) {
  return make_rat(Wide{x.num} * y.num, Wide{x.den} * y.den);
}
Result<Rat> div(Rat x, Rat y) {
  return make_rat(Wide{x.num} * y.den, Wide{x.den} * y.num);
}

// Sign of x - y.
int compare(Rat x, Rat y) {
  const Wide l = Wide{x.num} * y.den;
  const Wide r = Wide{y.num} * x.den;
  return l < r ? -1 : (l > r ? 1 : 0);
}

// Python's floor division and modulo: the quotient rounds down, the remainder has the divisor's
// sign.
Result<Rat> floor_div(Rat x, Rat y) {
  if (y.num == 0) return division_by_zero();
  const Wide n = Wide{x.num} * y.den;
  const Wide d = Wide{y.num} * x.den;
  Wide q = n / d;
  if (n % d != 0 && ((n < 0) != (d < 0))) --q;
  KILN_ASSIGN_OR_RETURN(int64_t quotient, narrow(q));
  return Rat{quotient, 1};
}

Result<Rat> mod(Rat x, Rat y) {
  if (y.num == 0) return division_by_zero();
  // x mod y == (x.num*y.den mod y.num*x.den) / (x.den*y.den)
  const Wide n = Wide{x.num} * y.den;
  const Wide m = Wide{y.num} * x.den;
  Wide r = n % m;
  if (r != 0 && ((r < 0) != (m < 0))) r += m;
  return make_rat(r, Wide{x.den} * y.den);
}

Result<Rat> power(Rat base, Rat exponent) {
  if (!exponent.is_int()) return unsupported("non-integer exponent ", exponent);
  Wide e = exponent.num;
  if (e < 0) {
    if (base.num == 0) return division_by_zero();
    KILN_ASSIGN_OR_RETURN(base, make_rat(base.den, base.num));
    e = -e;
  }
  Rat result{1, 1};
  while (e != 0) {
    if (e & 1) {
      KILN_ASSIGN_OR_RETURN(result, mul(result, base));
    }
    e >>= 1;
    if (e != 0) {
      KILN_ASSIGN_OR_RETURN(base, mul(base, base));
    }
  }
  return result;
}

Rat rounded(SymKind kind, Rat x) {
  int64_t q = x.num / x.den;  // truncates; den > 0, so no overflow
  if (x.num % x.den != 0) {
    if (kind == SymKind::kFloor && x.num < 0) --q;
    if (kind == SymKind::kCeil && x.num > 0) ++q;
  }
  return Rat{q, 1};
}

Rat truth(bool b) {
  return Rat{b ? 1 : 0, 1};
}

// Applies an operator node to its operands' values.
Result<Rat> apply_op(SymKind kind, std::span<const Rat> v) {
  switch (kind) {
    case SymKind::kAdd:
    case SymKind::kMul: {
      Rat acc = v[0];
      for (size_t i = 1; i < v.size(); ++i) {
        KILN_ASSIGN_OR_RETURN(acc, kind == SymKind::kAdd ? add(acc, v[i]) : mul(acc, v[i]));
      }
      return acc;
    }
    case SymKind::kPow: return power(v[0], v[1]);
    case SymKind::kTrueDiv: return div(v[0], v[1]);
    case SymKind::kFloorDiv: return floor_div(v[0], v[1]);
    case SymKind::kCleanDiv: {
      KILN_ASSIGN_OR_RETURN(Rat q, div(v[0], v[1]));
      if (!q.is_int()) return invalid_argument("CleanDiv: ", v[0], " is not divisible by ", v[1]);
      return q;
    }
    case SymKind::kMod: return mod(v[0], v[1]);
    case SymKind::kMax:
    case SymKind::kMin: {
      Rat best = v[0];
      for (const Rat& x : v.subspan(1)) {
        const int c = compare(x, best);
        if (kind == SymKind::kMax ? c > 0 : c < 0) best = x;
      }
      return best;
    }
    case SymKind::kCeil:
    case SymKind::kFloor:
    case SymKind::kTrunc: return rounded(kind, v[0]);
    case SymKind::kEq: return truth(compare(v[0], v[1]) == 0);
    case SymKind::kNe: return truth(compare(v[0], v[1]) != 0);
    case SymKind::kLt: return truth(compare(v[0], v[1]) < 0);
    case SymKind::kLe: return truth(compare(v[0], v[1]) <= 0);
    case SymKind::kGt: return truth(compare(v[0], v[1]) > 0);
    case SymKind::kGe: return truth(compare(v[0], v[1]) >= 0);
    case SymKind::kConst:
    case SymKind::kRational:
    case SymKind::kSymbol: break;
  }
  return internal_error("symbolic expression: not an operator kind");
}

Result<Rat> eval(const SymExpr& e, const SymBindings& bindings) {
  switch (e.kind()) {
    case SymKind::kConst:
    case SymKind::kRational: return Rat{e.num(), e.den()};
    case SymKind::kSymbol: {
      const std::optional<int64_t> v = bindings.get(*e.as_symbol());
      if (!v) return not_found("symbol '", *e.as_symbol(), "' is not bound");
      return Rat{*v, 1};
    }
    default: break;
  }
  std::vector<Rat> values;
  values.reserve(e.children().size());
  for (const SymExprPtr& c : e.children()) {
    KILN_ASSIGN_OR_RETURN(Rat v, eval(*c, bindings));
    values.push_back(v);
  }
  return apply_op(e.kind(), values);
}

// a*s + b for the one unbound symbol s.
struct Affine {
  Rat a;
  Rat b;
};

Result<Affine> affine(const SymExpr& e, std::string_view sym, const SymBindings& bindings) {
  if (e.as_symbol() && *e.as_symbol() == sym) return Affine{{1, 1}, {0, 1}};
  if (e.children().empty()) {
    KILN_ASSIGN_OR_RETURN(Rat v, eval(e, bindings));
    return Affine{{0, 1}, v};
  }
  std::vector<Affine> parts;
  bool constant = true;
  for (const SymExprPtr& c : e.children()) {
    KILN_ASSIGN_OR_RETURN(Affine p, affine(*c, sym, bindings));
    constant = constant && p.a.num == 0;
    parts.push_back(p);
  }
  if (constant) {
    std::vector<Rat> values;
    for (const Affine& p : parts) values.push_back(p.b);
    KILN_ASSIGN_OR_RETURN(Rat v, apply_op(e.kind(), values));
    return Affine{{0, 1}, v};
  }
  Affine acc = parts[0];
  switch (e.kind()) {
    case SymKind::kAdd:
      for (size_t i = 1; i < parts.size(); ++i) {
        KILN_ASSIGN_OR_RETURN(acc.a, add(acc.a, parts[i].a));
        KILN_ASSIGN_OR_RETURN(acc.b, add(acc.b, parts[i].b));
      }
      return acc;
    case SymKind::kMul:
      for (size_t i = 1; i < parts.size(); ++i) {
        const Affine& p = parts[i];
        if (acc.a.num != 0 && p.a.num != 0) break;  // quadratic
        // (a1*s + b1) * (a2*s + b2) with a1*a2 == 0
        KILN_ASSIGN_OR_RETURN(Rat a1b2, mul(acc.a, p.b));
        KILN_ASSIGN_OR_RETURN(Rat b1a2, mul(acc.b, p.a));
        KILN_ASSIGN_OR_RETURN(acc.a, add(a1b2, b1a2));
        KILN_ASSIGN_OR_RETURN(acc.b, mul(acc.b, p.b));
        if (i + 1 == parts.size()) return acc;
      }
      break;
    case SymKind::kTrueDiv:
    case SymKind::kCleanDiv: {  // exact when the solution makes the whole value an integer
      if (parts[1].a.num != 0) break;
      KILN_ASSIGN_OR_RETURN(acc.a, div(acc.a, parts[1].b));
      KILN_ASSIGN_OR_RETURN(acc.b, div(acc.b, parts[1].b));
      return acc;
    }
    default: break;
  }
  return unsupported("'", e.to_string(), "' is not affine in '", sym, "'");
}

// The sympy class names the parser accepts; the first name of each kind is how it prints.
struct FunctionName {
  std::string_view name;
  SymKind kind;
};
// clang-format off
constexpr FunctionName kFunctionNames[] = {
    {"Integer", SymKind::kConst}, {"Rational", SymKind::kRational}, {"Symbol", SymKind::kSymbol},
    {"Add", SymKind::kAdd}, {"Mul", SymKind::kMul}, {"Pow", SymKind::kPow},
    {"PowByNatural", SymKind::kPow}, {"IntTrueDiv", SymKind::kTrueDiv},
    {"FloorDiv", SymKind::kFloorDiv}, {"CleanDiv", SymKind::kCleanDiv}, {"Mod", SymKind::kMod},
    {"PythonMod", SymKind::kMod}, {"Max", SymKind::kMax}, {"Min", SymKind::kMin},
    {"CeilToInt", SymKind::kCeil}, {"ceiling", SymKind::kCeil}, {"FloorToInt", SymKind::kFloor},
    {"floor", SymKind::kFloor}, {"TruncToInt", SymKind::kTrunc}, {"Eq", SymKind::kEq},
    {"Ne", SymKind::kNe}, {"Lt", SymKind::kLt}, {"Le", SymKind::kLe}, {"Gt", SymKind::kGt},
    {"Ge", SymKind::kGe}};
// clang-format on

std::string_view kind_name(SymKind kind) {
  for (const FunctionName& f : kFunctionNames) {
    if (f.kind == kind) return f.name;
  }
  return "?";
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
// A name that reads back as a symbol: not a keyword the parser turns into a constant.
bool is_identifier(std::string_view name) {
  return !name.empty() && is_name_start(name[0]) &&
         std::all_of(name.begin(), name.end(),
                     [](char c) { return is_name_start(c) || is_digit(c); }) &&
         name != "True" && name != "False" && name != "true" && name != "false";
}

// ---- Printing, with Python's precedence: a child binding looser than its slot gets parentheses.

enum Prec : int { kPrecLowest = 0, kPrecAdd, kPrecMul, kPrecUnary, kPrecPow, kPrecAtom };

bool is_const(const SymExprPtr& e, int64_t v) {
  return e->kind() == SymKind::kConst && e->num() == v;
}

// The leading constant of a product, when it is negative and can be negated.
bool negative_coefficient(const SymExpr& e) {
  if (e.kind() != SymKind::kMul) return false;
  const SymExpr& c = *e.children()[0];
  return c.kind() == SymKind::kConst && c.num() < 0 && c.num() != kInt64Min;
}

int precedence(const SymExpr& e) {
  switch (e.kind()) {
    case SymKind::kConst: return e.num() < 0 ? kPrecUnary : kPrecAtom;
    case SymKind::kRational: return kPrecMul;
    case SymKind::kSymbol: return kPrecAtom;
    case SymKind::kAdd: return kPrecAdd;
    case SymKind::kMul:
      return e.children().size() == 2 && is_const(e.children()[0], -1) ? kPrecUnary : kPrecMul;
    case SymKind::kPow: return kPrecPow;
    case SymKind::kTrueDiv:
    case SymKind::kFloorDiv:
    case SymKind::kMod: return kPrecMul;
    default: return kPrecAtom;
  }
}

void print(const SymExpr& e, int min_prec, std::string* out);

// Factors joined by '*'; the first in a slot of first_prec, the others right of a '*'.
void print_factors(std::span<const SymExprPtr> factors, int first_prec, std::string* out) {
  print(*factors[0], first_prec, out);
  for (const SymExprPtr& f : factors.subspan(1)) {
    *out += '*';
    print(*f, kPrecUnary, out);
  }
}

void print_bare(const SymExpr& e, std::string* out) {
  const auto children = e.children();
  switch (e.kind()) {
    case SymKind::kConst:  // the lexer reads no literal for int64's minimum
      *out += e.num() == kInt64Min ? "(-9223372036854775807 - 1)" : std::to_string(e.num());
      return;
    case SymKind::kRational: *out += str_cat(e.num(), '/', e.den()); return;
    case SymKind::kSymbol: {
      const std::string& name = *e.as_symbol();
      if (is_identifier(name)) {
        *out += name;
      } else {  // a name only srepr can spell
        const char quote = name.find('\'') == std::string::npos ? '\'' : '"';
        *out += str_cat("Symbol(", quote, name, quote, ')');
      }
      return;
    }
    case SymKind::kAdd:
      print(*children[0], kPrecAdd, out);
      for (const SymExprPtr& c : children.subspan(1)) {
        // sympy's style: "s0 - 1", "s0 - 2*s1" rather than "s0 + -1", "s0 + -2*s1".
        if ((c->kind() == SymKind::kConst || c->kind() == SymKind::kRational) && c->num() < 0 &&
            c->num() != kInt64Min) {
          *out += str_cat(" - ", -c->num());
          if (c->den() != 1) *out += str_cat('/', c->den());
        } else if (negative_coefficient(*c)) {
          *out += " - ";
          const int64_t coefficient = -c->children()[0]->num();
          if (coefficient == 1) {
            print_factors(c->children().subspan(1), kPrecMul, out);
          } else {
            *out += str_cat(coefficient, '*');
            print_factors(c->children().subspan(1), kPrecUnary, out);
          }
        } else {
          *out += " + ";
          print(*c, kPrecMul, out);
        }
      }
      return;
    case SymKind::kMul:
      if (is_const(children[0], -1)) {
        *out += '-';
        print_factors(children.subspan(1), kPrecUnary, out);
      } else {
        print_factors(children, kPrecMul, out);
      }
      return;
    case SymKind::kPow:
      print(*children[0], kPrecAtom, out);
      *out += "**";
      print(*children[1], kPrecUnary, out);
      return;
    case SymKind::kTrueDiv:
    case SymKind::kFloorDiv:
    case SymKind::kMod:
      print(*children[0], kPrecMul, out);
      *out += e.kind() == SymKind::kTrueDiv ? "/" : (e.kind() == SymKind::kMod ? " % " : "//");
      print(*children[1], kPrecUnary, out);
      return;
    default:
      *out += kind_name(e.kind());
      *out += '(';
      for (size_t i = 0; i < children.size(); ++i) {
        if (i > 0) *out += ", ";
        print(*children[i], kPrecLowest, out);
      }
      *out += ')';
      return;
  }
}

void print(const SymExpr& e, int min_prec, std::string* out) {
  const bool parens = precedence(e) < min_prec;
  if (parens) *out += '(';
  print_bare(e, out);
  if (parens) *out += ')';
}

// ---- Parsing: one recursive-descent parser for the srepr and str forms, with Python's grammar.
//   expr := arith [('==' | '!=' | '<' | '<=' | '>' | '>=') arith]
//   arith := term (('+' | '-') term)*        term := unary (('*' | '/' | '//' | '%') unary)*
//   unary := ('-' | '+') unary | primary ['**' unary]
//   primary := INT | NAME | NAME '(' [arg (',' arg)*] ')' | '(' expr ')'
//   arg := expr | STRING (Symbol's name) | NAME '=' (expr | STRING) (ignored)

enum class TokenKind : uint8_t { kEnd, kInt, kName, kString, kOp };

struct Token {
  TokenKind kind;
  std::string_view text;
  size_t offset;
  int64_t value;  // kInt
};

// Infix operators by level: 0 comparisons, 1 sums, 2 products. '-' adds the negated operand.
struct BinaryOp {
  std::string_view text;
  int level;
  SymKind kind;
};
constexpr BinaryOp kBinaryOps[] = {
    {"==", 0, SymKind::kEq},     {"!=", 0, SymKind::kNe},       {"<", 0, SymKind::kLt},
    {"<=", 0, SymKind::kLe},     {">", 0, SymKind::kGt},        {">=", 0, SymKind::kGe},
    {"+", 1, SymKind::kAdd},     {"-", 1, SymKind::kAdd},       {"*", 2, SymKind::kMul},
    {"/", 2, SymKind::kTrueDiv}, {"//", 2, SymKind::kFloorDiv}, {"%", 2, SymKind::kMod}};
// Longest first, so "**" is not read as two "*".
constexpr std::string_view kOperators[] = {"**", "//", "==", "!=", "<=", ">=", "(", ")", ",",
                                           "+",  "-",  "*",  "/",  "%",  "=",  "<", ">"};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<SymExprPtr> parse() {
    KILN_RETURN_IF_ERROR(lex());
    KILN_ASSIGN_OR_RETURN(SymExprPtr e, parse_binary(0));
    if (peek().kind != TokenKind::kEnd) return expected("the end");
    return e;
  }

 private:
  Status error(size_t offset, std::string_view what,
               StatusCode code = StatusCode::kInvalidArgument) const {
    return make_error(code, "cannot parse symbolic expression '", text_, "': ", what, " at offset ",
                      offset);
  }
  Status expected(std::string_view what) const {
    const Token& t = peek();
    if (t.kind == TokenKind::kEnd) return error(t.offset, str_cat("expected ", what));
    return error(t.offset, str_cat("expected ", what, ", found '", t.text, "'"));
  }

  const Token& peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  bool at_op(std::string_view op, size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kOp && peek(ahead).text == op;
  }
  const BinaryOp* at_binary(int level) const {
    for (const BinaryOp& op : kBinaryOps) {
      if (op.level == level && at_op(op.text)) return &op;
    }
    return nullptr;
  }

  // A builder's failure, with the text and the offset.
  Result<SymExprPtr> check(Result<SymExprPtr> built, size_t offset) const {
    if (built.ok()) return built;
    return error(offset, built.status().message(), built.status().code());
  }
  Result<SymExprPtr> node(SymKind kind, std::vector<SymExprPtr> children, size_t offset) const {
    return check(make_sym_expr(kind, std::move(children)), offset);
  }

  Status lex() {
    for (size_t i = text_.find_first_not_of(" \t\n\r"); i != std::string_view::npos;
         i = text_.find_first_not_of(" \t\n\r", i)) {
      const size_t start = i;
      const char c = text_[i];
      int64_t value = 0;
      TokenKind kind = TokenKind::kOp;
      if (is_digit(c)) {
        kind = TokenKind::kInt;
        for (; i < text_.size() && is_digit(text_[i]); ++i) {
          if (__builtin_mul_overflow(value, 10, &value) ||
              __builtin_add_overflow(value, text_[i] - '0', &value)) {
            return error(start, "expected an integer literal in the int64 range");
          }
        }
      } else if (is_name_start(c)) {
        kind = TokenKind::kName;
        while (i < text_.size() && (is_name_start(text_[i]) || is_digit(text_[i]))) ++i;
      } else if (c == '\'' || c == '"') {
        kind = TokenKind::kString;
        const size_t end = text_.find(c, i + 1);
        if (end == std::string_view::npos) return error(start, "unterminated string");
        i = end + 1;
      } else {
        const auto* op =
            std::find_if(std::begin(kOperators), std::end(kOperators),
                         [&](std::string_view o) { return text_.substr(i).starts_with(o); });
        if (op == std::end(kOperators)) {
          const bool printable = c >= 0x20 && c < 0x7f;
          return error(start, printable
                                  ? str_cat("unexpected character '", c, "'")
                                  : str_cat("unexpected byte ", int{static_cast<uint8_t>(c)}));
        }
        i += op->size();
      }
      tokens_.push_back(Token{kind, text_.substr(start, i - start), start, value});
    }
    tokens_.push_back(Token{TokenKind::kEnd, std::string_view(), text_.size(), 0});
    return ok_status();
  }

  // Left-associative levels; a comparison takes no second one.
  Result<SymExprPtr> parse_binary(int level) {
    if (level == 3) return parse_unary();
    KILN_ASSIGN_OR_RETURN(SymExprPtr first, parse_binary(level + 1));
    // The operands of a run of '+' (or '*'): one n-ary node, built once.
    std::vector<SymExprPtr> run{std::move(first)};
    size_t run_at = 0;
    const auto close_run = [&]() -> Result<SymExprPtr> {
      if (run.size() == 1) return run[0];
      return node(level == 1 ? SymKind::kAdd : SymKind::kMul, std::move(run), run_at);
    };
    while (const BinaryOp* op = at_binary(level)) {
      const size_t at = peek().offset;
      ++pos_;
      KILN_ASSIGN_OR_RETURN(SymExprPtr rhs, parse_binary(level + 1));
      if (op->text == "-") {
        KILN_ASSIGN_OR_RETURN(rhs, negate(rhs, at));
      }
      if (op->kind == SymKind::kAdd || op->kind == SymKind::kMul) {
        if (run.size() == 1) run_at = at;
        run.push_back(std::move(rhs));
        continue;
      }
      KILN_ASSIGN_OR_RETURN(SymExprPtr lhs, close_run());
      KILN_ASSIGN_OR_RETURN(lhs, node(op->kind, {lhs, rhs}, at));
      run = {std::move(lhs)};
      if (level == 0 && at_binary(0)) {
        return error(peek().offset, "chained comparisons are not supported",
                     StatusCode::kUnsupported);
      }
    }
    return close_run();
  }

  // Python's: '**' binds tighter than a unary minus on its left, looser on its right. Every nesting
  // (parentheses, arguments, unary operators, exponents) passes here, so the depth is checked here.
  Result<SymExprPtr> parse_unary() {
    struct Nesting {
      int& depth;
      ~Nesting() { --depth; }
    } nesting{++depth_};
    if (depth_ > kMaxSymExprDepth) {
      return error(peek().offset,
                   str_cat("expected at most ", kMaxSymExprDepth, " levels of nesting"));
    }
    const size_t at = peek().offset;
    if (at_op("-") || at_op("+")) {
      const bool minus = at_op("-");
      ++pos_;
      KILN_ASSIGN_OR_RETURN(SymExprPtr operand, parse_unary());
      if (minus) return negate(operand, at);
      return operand;
    }
    KILN_ASSIGN_OR_RETURN(SymExprPtr base, parse_primary());
    if (!at_op("**")) return base;
    const size_t pow_at = peek().offset;
    ++pos_;
    KILN_ASSIGN_OR_RETURN(SymExprPtr exponent, parse_unary());
    return node(SymKind::kPow, {base, exponent}, pow_at);
  }

  // -3 is a constant and -(2*s) is -2*s, as sympy writes them; anything else becomes -1*e.
  Result<SymExprPtr> negate(const SymExprPtr& e, size_t at) const {
    if (e->kind() == SymKind::kConst && e->num() != kInt64Min) return sym_const(-e->num());
    if (e->kind() == SymKind::kRational && e->num() != kInt64Min) {
      return check(make_sym_rational(-e->num(), e->den()), at);
    }
    if (e->kind() == SymKind::kMul && e->children()[0]->kind() == SymKind::kConst &&
        e->children()[0]->num() != kInt64Min) {
      std::vector<SymExprPtr> factors(e->children().begin(), e->children().end());
      factors[0] = sym_const(-factors[0]->num());
      if (factors[0]->num() == 1) factors.erase(factors.begin());
      return node(SymKind::kMul, std::move(factors), at);
    }
    return node(SymKind::kMul, {sym_const(-1), e}, at);
  }

  Result<SymExprPtr> parse_primary() {
    const Token& t = peek();
    if (t.kind == TokenKind::kInt) {
      ++pos_;
      return sym_const(t.value);
    }
    if (t.kind == TokenKind::kName) {
      if (at_op("(", 1)) return parse_call();
      ++pos_;
      if (t.text == "True" || t.text == "true") return sym_const(1);
      if (t.text == "False" || t.text == "false") return sym_const(0);
      return sym_symbol(std::string(t.text));
    }
    if (!at_op("(")) return expected("an expression");
    ++pos_;
    KILN_ASSIGN_OR_RETURN(SymExprPtr e, parse_binary(0));
    if (!at_op(")")) return expected("')'");
    ++pos_;
    return e;
  }

  Result<SymExprPtr> parse_call() {
    const Token& name = peek();
    pos_ += 2;
    const auto* f = std::find_if(std::begin(kFunctionNames), std::end(kFunctionNames),
                                 [&](const FunctionName& fn) { return fn.name == name.text; });
    const bool identity = name.text == "Identity";
    if (f == std::end(kFunctionNames) && !identity) {
      return error(name.offset, str_cat("unsupported function '", name.text, "'"),
                   StatusCode::kUnsupported);
    }
    const bool is_symbol = !identity && f->kind == SymKind::kSymbol;
    std::vector<SymExprPtr> args;
    std::optional<std::string_view> symbol_name;
    while (!at_op(")")) {
      const Token& t = peek();
      if (t.kind == TokenKind::kName && at_op("=", 1)) {  // a keyword argument: ignored
        pos_ += 2;
        if (peek().kind == TokenKind::kString) {
          ++pos_;
        } else {
          KILN_RETURN_IF_ERROR(parse_binary(0));
        }
      } else if (t.kind == TokenKind::kString && is_symbol && !symbol_name && args.empty()) {
        symbol_name = t.text.substr(1, t.text.size() - 2);
        ++pos_;
      } else {
        KILN_ASSIGN_OR_RETURN(SymExprPtr arg, parse_binary(0));
        args.push_back(std::move(arg));
      }
      if (at_op(")")) break;
      if (!at_op(",")) return expected("',' or ')'");
      ++pos_;
      if (at_op(")")) return expected("an expression");
    }
    ++pos_;
    const auto all_literals = [&](size_t n) {
      return args.size() == n && std::all_of(args.begin(), args.end(), [](const SymExprPtr& a) {
               return a->kind() == SymKind::kConst;
             });
    };
    if (identity) {
      if (args.size() == 1) return args[0];
      return error(name.offset, str_cat("Identity: expected 1 operand, found ", args.size()));
    }
    switch (f->kind) {
      case SymKind::kSymbol:
        if (symbol_name && !symbol_name->empty() && args.empty()) {
          return sym_symbol(std::string(*symbol_name));
        }
        return error(name.offset, "Symbol: expected a quoted name and keyword arguments");
      case SymKind::kConst:
        if (all_literals(1)) return args[0];
        return error(name.offset, "Integer: expected one integer literal");
      case SymKind::kRational:
        if (all_literals(2)) {
          return check(make_sym_rational(args[0]->num(), args[1]->num()), name.offset);
        }
        return error(name.offset, "Rational: expected two integer literals");
      default: return node(f->kind, std::move(args), name.offset);
    }
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

// ---- SymBindings

void SymBindings::set(std::string_view name, int64_t value) {
  for (auto& [n, v] : entries_) {
    if (n == name) {
      v = value;
      return;
    }
  }
  entries_.emplace_back(std::string(name), value);
}

std::optional<int64_t> SymBindings::get(std::string_view name) const {
  for (const auto& [n, v] : entries_) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// ---- Builders

SymExpr::SymExpr(Key, SymKind kind, int64_t value, int64_t den, std::string name,
                 std::vector<SymExprPtr> children, int depth)
    : kind_(kind),
      depth_(depth),
      value_(value),
      den_(den),
      name_(std::move(name)),
      children_(std::move(children)) {}

SymExprPtr sym_const(int64_t value) {
  return std::make_shared<const SymExpr>(SymExpr::Key{}, SymKind::kConst, value, 1, std::string(),
                                         std::vector<SymExprPtr>(), 1);
}

SymExprPtr sym_symbol(std::string name) {
  return std::make_shared<const SymExpr>(SymExpr::Key{}, SymKind::kSymbol, 0, 1, std::move(name),
                                         std::vector<SymExprPtr>(), 1);
}

Result<SymExprPtr> make_sym_rational(int64_t num, int64_t den) {
  KILN_ASSIGN_OR_RETURN(Rat r, make_rat(num, den), "Rational(", num, ", ", den, ")");
  if (r.is_int()) return sym_const(r.num);
  return std::make_shared<const SymExpr>(SymExpr::Key{}, SymKind::kRational, r.num, r.den,
                                         std::string(), std::vector<SymExprPtr>(), 1);
}

Result<SymExprPtr> make_sym_expr(SymKind kind, std::vector<SymExprPtr> children) {
  size_t min_arity = 1;
  size_t max_arity = 1;
  switch (kind) {
    case SymKind::kConst:
    case SymKind::kRational:
    case SymKind::kSymbol:
      return invalid_argument(kind_name(kind), " is built by sym_const, make_sym_rational or ",
                              "sym_symbol, not make_sym_expr");
    case SymKind::kAdd:
    case SymKind::kMul:
    case SymKind::kMax:
    case SymKind::kMin: max_arity = std::numeric_limits<size_t>::max(); break;
    case SymKind::kCeil:
    case SymKind::kFloor:
    case SymKind::kTrunc: break;
    default: min_arity = max_arity = 2; break;
  }
  if (std::any_of(children.begin(), children.end(), [](const SymExprPtr& c) { return !c; })) {
    return invalid_argument(kind_name(kind), ": expected operands, found a null one");
  }
  if (kind == SymKind::kAdd || kind == SymKind::kMul) {
    std::vector<SymExprPtr> flat;
    for (SymExprPtr& c : children) {
      if (c->kind() == kind) {
        flat.insert(flat.end(), c->children().begin(), c->children().end());
      } else {
        flat.push_back(std::move(c));
      }
    }
    children = std::move(flat);
  }
  if (children.size() < min_arity || children.size() > max_arity) {
    return invalid_argument(kind_name(kind), ": expected ",
                            min_arity == max_arity ? "" : "at least ", min_arity,
                            min_arity == 1 ? " operand" : " operands", ", found ", children.size());
  }
  if (children.size() == 1 && (kind == SymKind::kAdd || kind == SymKind::kMul ||
                               kind == SymKind::kMax || kind == SymKind::kMin)) {
    return children[0];
  }
  int depth = 0;
  for (const SymExprPtr& c : children) depth = std::max(depth, c->depth());
  if (depth + 1 > kMaxSymExprDepth) {
    return invalid_argument(kind_name(kind), ": expression nested deeper than ", kMaxSymExprDepth,
                            " levels");
  }
  return std::make_shared<const SymExpr>(SymExpr::Key{}, kind, 0, 1, std::string(),
                                         std::move(children), depth + 1);
}

Result<SymExprPtr> parse_sym_expr(std::string_view text) {
  return Parser(text).parse();
}

// ---- SymExpr

Result<int64_t> SymExpr::evaluate(const SymBindings& bindings) const {
  KILN_ASSIGN_OR_RETURN(Rat v, eval(*this, bindings), "symbolic expression '", to_string(), "'");
  if (!v.is_int()) {
    return invalid_argument("symbolic expression '", to_string(),
                            "': expected an integer value, found ", v);
  }
  return v.num;
}

std::string SymExpr::to_string() const {
  std::string out;
  print(*this, kPrecLowest, &out);
  return out;
}

void SymExpr::collect_symbols(std::vector<std::string>* names) const {
  if (kind_ == SymKind::kSymbol) {
    if (std::find(names->begin(), names->end(), name_) == names->end()) names->push_back(name_);
    return;
  }
  for (const SymExprPtr& c : children_) c->collect_symbols(names);
}

std::optional<int64_t> SymExpr::constant_value() const {
  if (kind_ == SymKind::kConst) return value_;
  Result<Rat> v = eval(*this, SymBindings());
  if (!v.ok() || !v->is_int()) return std::nullopt;
  return v->num;
}

Result<std::pair<std::string, int64_t>> SymExpr::solve_for_unbound(
    int64_t value, const SymBindings& bindings) const {
  std::vector<std::string> names;
  collect_symbols(&names);
  std::vector<std::string> unbound;
  for (std::string& n : names) {
    if (!bindings.get(n)) unbound.push_back(std::move(n));
  }
  const std::string text = to_string();
  if (unbound.size() != 1) {
    std::string list;
    for (const std::string& n : unbound) list += str_cat(list.empty() ? "" : ", ", n);
    return invalid_argument("cannot solve '", text, "' == ", value,
                            ": expected exactly one unbound symbol, found ", unbound.size(),
                            unbound.empty() ? "" : " (", list, unbound.empty() ? "" : ")");
  }
  const std::string& sym = unbound[0];
  const auto context = [&] { return str_cat("cannot solve '", text, "' == ", value); };
  KILN_ASSIGN_OR_RETURN(Affine f, affine(*this, sym, bindings), context());
  if (f.a.num == 0) {
    return invalid_argument(context(), ": the value does not depend on '", sym, "'");
  }
  KILN_ASSIGN_OR_RETURN(Rat rest, sub(Rat{value, 1}, f.b), context());
  KILN_ASSIGN_OR_RETURN(Rat s, div(rest, f.a), context());
  if (!s.is_int()) {
    if (f.b.num == 0 && f.a.is_int()) {
      const uint64_t step = f.a.num < 0 ? 0 - static_cast<uint64_t>(f.a.num) : f.a.num;
      return invalid_argument("expected a multiple of ", step, " to match '", text, "', found ",
                              value);
    }
    return invalid_argument("expected a value of '", text, "' for an integer ", sym, ", found ",
                            value, " (", sym, " would be ", s, ")");
  }
  return std::pair<std::string, int64_t>(sym, s.num);
}

bool SymExpr::structurally_equal(const SymExpr& other) const {
  if (kind_ != other.kind_ || value_ != other.value_ || den_ != other.den_ ||
      name_ != other.name_ || children_.size() != other.children_.size()) {
    return false;
  }
  for (size_t i = 0; i < children_.size(); ++i) {
    if (!children_[i]->structurally_equal(*other.children_[i])) return false;
  }
  return true;
}

}  // namespace kiln::ir
