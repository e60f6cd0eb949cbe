#include "base/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <unordered_map>

namespace kiln {

// Linear search beats hashing for small objects; larger ones (tensor tables) get an index.
constexpr size_t kIndexThreshold = 16;
constexpr int kMaxDepth = 512;

std::string_view json_kind_name(JsonKind kind) {
  switch (kind) {
    case JsonKind::kNull: return "null";
    case JsonKind::kBool: return "bool";
    case JsonKind::kNumber: return "number";
    case JsonKind::kString: return "string";
    case JsonKind::kArray: return "array";
    case JsonKind::kObject: return "object";
  }
  return "unknown";
}

struct JsonValue::ObjectData {
  std::vector<JsonMember> members;
  // Views into members[i].key; members is never changed once the index is built.
  std::unordered_map<std::string_view, uint32_t> index;

  void build_index() {
    if (members.size() <= kIndexThreshold) return;
    index.reserve(members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      index.insert_or_assign(std::string_view(members[i].key), static_cast<uint32_t>(i));
    }
  }
};

void JsonValue::destroy() {
  switch (kind_) {
    case JsonKind::kString: string_.~basic_string(); break;
    case JsonKind::kArray: array_.~vector(); break;
    case JsonKind::kObject: delete object_; break;
    default: break;
  }
  kind_ = JsonKind::kNull;
}

void JsonValue::copy_from(const JsonValue& other) {
  switch (other.kind_) {
    case JsonKind::kNull: break;
    case JsonKind::kBool: bool_ = other.bool_; break;
    case JsonKind::kNumber: number_ = other.number_; break;
    case JsonKind::kString: new (&string_) std::string(other.string_); break;
    case JsonKind::kArray: new (&array_) std::vector<JsonValue>(other.array_); break;
    case JsonKind::kObject:
      object_ = new ObjectData{other.object_->members, {}};
      object_->build_index();
      break;
  }
  kind_ = other.kind_;
  is_int_ = other.is_int_;
}

void JsonValue::move_from(JsonValue&& other) noexcept {
  switch (other.kind_) {
    case JsonKind::kNull: break;
    case JsonKind::kBool: bool_ = other.bool_; break;
    case JsonKind::kNumber: number_ = other.number_; break;
    case JsonKind::kString: new (&string_) std::string(std::move(other.string_)); break;
    case JsonKind::kArray: new (&array_) std::vector<JsonValue>(std::move(other.array_)); break;
    case JsonKind::kObject: object_ = other.object_; break;
  }
  kind_ = other.kind_;
  is_int_ = other.is_int_;
  if (other.kind_ == JsonKind::kObject) other.kind_ = JsonKind::kNull;  // the pointer moved here
}

JsonValue::JsonValue(const JsonValue& other) : number_{0, 0} {
  copy_from(other);
}

JsonValue& JsonValue::operator=(const JsonValue& other) {
  if (this != &other) {
    JsonValue copy(other);
    *this = std::move(copy);
  }
  return *this;
}

JsonValue::JsonValue(JsonValue&& other) noexcept : number_{0, 0} {
  move_from(std::move(other));
}

JsonValue& JsonValue::operator=(JsonValue&& other) noexcept {
  if (this == &other) return *this;
  if (kind_ == JsonKind::kNull) {
    move_from(std::move(other));  // the parser's common case: nothing to release
  } else {
    JsonValue moved(std::move(other));  // `other` may live inside this value
    destroy();
    move_from(std::move(moved));
  }
  return *this;
}

JsonValue JsonValue::make_bool(bool value) {
  JsonValue v;
  v.kind_ = JsonKind::kBool;
  v.bool_ = value;
  return v;
}

JsonValue JsonValue::make_int(int64_t value) {
  JsonValue v;
  v.kind_ = JsonKind::kNumber;
  v.is_int_ = true;
  v.number_ = {value, static_cast<double>(value)};
  return v;
}

JsonValue JsonValue::make_double(double value) {
  JsonValue v;
  v.kind_ = JsonKind::kNumber;
  v.number_ = {0, value};
  return v;
}

JsonValue JsonValue::make_string(std::string value) {
  JsonValue v;
  new (&v.string_) std::string(std::move(value));
  v.kind_ = JsonKind::kString;
  return v;
}

JsonValue JsonValue::make_array(std::vector<JsonValue> elements) {
  JsonValue v;
  new (&v.array_) std::vector<JsonValue>(std::move(elements));
  v.kind_ = JsonKind::kArray;
  return v;
}

JsonValue JsonValue::make_object(std::vector<JsonMember> members) {
  JsonValue v;
  v.object_ = new ObjectData{std::move(members), {}};
  v.kind_ = JsonKind::kObject;
  v.object_->build_index();
  return v;
}

const std::string& JsonValue::as_string() const {
  static const std::string kEmpty;
  return is_string() ? string_ : kEmpty;
}

std::span<const JsonMember> JsonValue::members() const {
  if (kind_ != JsonKind::kObject) return {};
  return object_->members;
}

size_t JsonValue::size() const {
  if (kind_ == JsonKind::kArray) return array_.size();
  if (kind_ == JsonKind::kObject) return object_->members.size();
  return 0;
}

const JsonValue* JsonValue::find(std::string_view key) const {
  if (kind_ != JsonKind::kObject) return nullptr;
  const std::vector<JsonMember>& members = object_->members;
  if (!object_->index.empty()) {
    auto it = object_->index.find(key);
    return it == object_->index.end() ? nullptr : &members[it->second].value;
  }
  for (size_t i = members.size(); i-- > 0;) {
    if (members[i].key == key) return &members[i].value;
  }
  return nullptr;
}

std::string JsonValue::describe() const {
  if (kind_ == JsonKind::kNumber && !is_int_) return str_cat("number ", to_json());
  return std::string(kind_name());
}

Result<bool> JsonValue::expect_bool() const {
  if (kind_ != JsonKind::kBool) return invalid_argument("expected a bool, found ", describe());
  return bool_;
}

Result<int64_t> JsonValue::expect_int() const {
  if (!is_int()) return invalid_argument("expected an integer, found ", describe());
  return number_.int_value;
}

Result<double> JsonValue::expect_double() const {
  if (kind_ != JsonKind::kNumber) return invalid_argument("expected a number, found ", describe());
  return number_.double_value;
}

Result<std::string_view> JsonValue::expect_string() const {
  if (kind_ != JsonKind::kString) return invalid_argument("expected a string, found ", describe());
  return std::string_view(string_);
}

Result<std::span<const JsonValue>> JsonValue::expect_array() const {
  if (kind_ != JsonKind::kArray) return invalid_argument("expected an array, found ", describe());
  return std::span<const JsonValue>(array_);
}

Status JsonValue::expect_object() const {
  if (kind_ != JsonKind::kObject) return invalid_argument("expected an object, found ", describe());
  return ok_status();
}

Result<const JsonValue*> JsonValue::get(std::string_view key) const {
  if (kind_ != JsonKind::kObject) {
    return invalid_argument("expected an object with key '", key, "', found ", describe());
  }
  const JsonValue* value = find(key);
  if (value == nullptr) return invalid_argument("expected key '", key, "' in object");
  return value;
}

namespace {

// get(key) followed by one of the expect_* checks, with the key named in the error.
template <typename T, typename Check>
Result<T> get_checked(const JsonValue& object, std::string_view key, Check check) {
  KILN_ASSIGN_OR_RETURN(const JsonValue* value, object.get(key));
  Result<T> result = check(*value);
  if (!result.ok()) {
    Status status = result.take_status();
    return std::move(status.with_context(str_cat("key '", key, "'")));
  }
  return result;
}

}  // namespace

Result<bool> JsonValue::get_bool(std::string_view key) const {
  return get_checked<bool>(*this, key, [](const JsonValue& v) { return v.expect_bool(); });
}

Result<int64_t> JsonValue::get_int(std::string_view key) const {
  return get_checked<int64_t>(*this, key, [](const JsonValue& v) { return v.expect_int(); });
}

Result<double> JsonValue::get_double(std::string_view key) const {
  return get_checked<double>(*this, key, [](const JsonValue& v) { return v.expect_double(); });
}

Result<std::string_view> JsonValue::get_string(std::string_view key) const {
  return get_checked<std::string_view>(*this, key,
                                       [](const JsonValue& v) { return v.expect_string(); });
}

Result<std::span<const JsonValue>> JsonValue::get_array(std::string_view key) const {
  return get_checked<std::span<const JsonValue>>(
      *this, key, [](const JsonValue& v) { return v.expect_array(); });
}

Result<const JsonValue*> JsonValue::get_object(std::string_view key) const {
  return get_checked<const JsonValue*>(*this, key,
                                       [](const JsonValue& v) -> Result<const JsonValue*> {
                                         KILN_RETURN_IF_ERROR(v.expect_object());
                                         return &v;
                                       });
}

std::string JsonValue::to_json() const {
  std::string out;
  append_json(&out);
  return out;
}

void JsonValue::append_json(std::string* out) const {
  switch (kind_) {
    case JsonKind::kNull: out->append("null"); return;
    case JsonKind::kBool: out->append(bool_ ? "true" : "false"); return;
    case JsonKind::kNumber: {
      char buffer[64];
      const double d = number_.double_value;
      if (is_int_) {
        out->append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), number_.int_value).ptr);
      } else if (std::isnan(d)) {
        out->append("NaN");
      } else if (std::isinf(d)) {
        out->append(d > 0 ? "Infinity" : "-Infinity");
      } else {
        const std::string_view text(buffer, std::to_chars(buffer, buffer + sizeof(buffer), d).ptr);
        out->append(text);
        // Keep it a non-integer literal so that it reads back as a double.
        if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
      }
      return;
    }
    case JsonKind::kString: out->append(json_quote(string_)); return;
    case JsonKind::kArray:
      out->push_back('[');
      for (size_t i = 0; i < array_.size(); ++i) {
        if (i > 0) out->push_back(',');
        array_[i].append_json(out);
      }
      out->push_back(']');
      return;
    case JsonKind::kObject:
      out->push_back('{');
      for (size_t i = 0; i < object_->members.size(); ++i) {
        if (i > 0) out->push_back(',');
        out->append(json_quote(object_->members[i].key));
        out->push_back(':');
        object_->members[i].value.append_json(out);
      }
      out->push_back('}');
      return;
  }
}

std::string json_quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (u < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 15]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

// Recursive descent over the text. Each parse_* returns false after recording the first error, so
// the hot path carries a bool rather than a Result.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  Result<JsonValue> parse() {
    JsonValue value;
    skip_whitespace();
    if (parse_value(&value, 0)) {
      skip_whitespace();
      if (p_ == end_) return value;
      error("end of input");
    }
    return std::move(error_);
  }

 private:
  // Records the error at `where` (line and column counted only now, on the cold path).
  bool error_at(const char* where, std::string_view expected) {
    size_t line = 1;
    const char* line_start = begin_;
    for (const char* q = begin_; q < where; ++q) {
      if (*q == '\n') {
        ++line;
        line_start = q + 1;
      }
    }
    std::string found = "end of input";
    if (where < end_) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto c = static_cast<unsigned char>(*where);
      found = c >= 0x20 && c < 0x7f ? str_cat("'", static_cast<char>(c), "'")
                                    : str_cat("byte 0x", kHex[c >> 4], kHex[c & 15]);
    }
    error_ = data_loss("invalid JSON at line ", line, " column ", where - line_start + 1,
                       ": expected ", expected, ", found ", found);
    return false;
  }
  bool error(std::string_view expected) { return error_at(p_, expected); }

  bool at(char c) const { return p_ < end_ && *p_ == c; }
  bool consume(char c) {
    if (!at(c)) return false;
    ++p_;
    return true;
  }
  bool at_digit() const { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; }
  void skip_digits() {
    while (at_digit()) ++p_;
  }
  void skip_whitespace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool consume_literal(std::string_view literal) {
    if (std::string_view(p_, end_ - p_).substr(0, literal.size()) != literal) return false;
    p_ += literal.size();
    return true;
  }

  bool parse_value(JsonValue* out, int depth) {
    if (at('{')) return parse_object(out, depth + 1);
    if (at('[')) return parse_array(out, depth + 1);
    if (at('"')) {
      new (&out->string_) std::string();
      out->kind_ = JsonKind::kString;
      return parse_string(&out->string_);
    }
    if (consume_literal("true")) {
      *out = JsonValue::make_bool(true);
    } else if (consume_literal("false")) {
      *out = JsonValue::make_bool(false);
    } else if (consume_literal("NaN")) {
      *out = JsonValue::make_double(std::numeric_limits<double>::quiet_NaN());
    } else if (consume_literal("Infinity")) {
      *out = JsonValue::make_double(std::numeric_limits<double>::infinity());
    } else if (consume_literal("-Infinity")) {
      *out = JsonValue::make_double(-std::numeric_limits<double>::infinity());
    } else if (!consume_literal("null")) {
      return parse_number(out);
    }
    return true;
  }

  // Containers and strings are built in place in `out`, which starts null: parsing is most of
  // the time spent reading a program, and moving values after the fact costs a third more.
  bool parse_array(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return error("nesting depth at most 512");
    ++p_;  // '['
    new (&out->array_) std::vector<JsonValue>();
    out->kind_ = JsonKind::kArray;
    skip_whitespace();
    if (consume(']')) return true;
    do {
      skip_whitespace();
      if (!parse_value(&out->array_.emplace_back(), depth)) return false;
      skip_whitespace();
    } while (consume(','));
    return consume(']') || error("',' or ']'");
  }

  bool parse_object(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return error("nesting depth at most 512");
    ++p_;  // '{'
    out->object_ = new JsonValue::ObjectData();
    out->kind_ = JsonKind::kObject;
    std::vector<JsonMember>& members = out->object_->members;
    skip_whitespace();
    if (consume('}')) return true;
    do {
      skip_whitespace();
      if (!at('"')) return error("a string key");
      JsonMember& member = members.emplace_back();
      if (!parse_string(&member.key)) return false;
      skip_whitespace();
      if (!consume(':')) return error("':'");
      skip_whitespace();
      if (!parse_value(&member.value, depth)) return false;
      skip_whitespace();
    } while (consume(','));
    if (!consume('}')) return error("',' or '}'");
    out->object_->build_index();
    return true;
  }

  bool parse_hex4(uint32_t* code) {
    if (end_ - p_ < 4) return error_at(end_, "4 hex digits");
    *code = 0;
    for (const char* stop = p_ + 4; p_ < stop; ++p_) {
      const char c = *p_;
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (digit < 0) return error("a hex digit");
      *code = *code * 16 + static_cast<uint32_t>(digit);
    }
    return true;
  }

  static void append_utf8(uint32_t code, std::string* out) {
    auto put = [out](uint32_t byte) { out->push_back(static_cast<char>(byte)); };
    if (code < 0x80) {
      put(code);
    } else if (code < 0x800) {
      put(0xC0 | code >> 6);
      put(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      put(0xE0 | code >> 12);
      put(0x80 | (code >> 6 & 0x3F));
      put(0x80 | (code & 0x3F));
    } else {
      put(0xF0 | code >> 18);
      put(0x80 | (code >> 12 & 0x3F));
      put(0x80 | (code >> 6 & 0x3F));
      put(0x80 | (code & 0x3F));
    }
  }

  bool parse_escape(std::string* out) {
    ++p_;  // '\\'
    if (p_ >= end_) return error("an escape character");
    constexpr std::string_view kEscapes = "\"\"\\\\//b\bf\fn\nr\rt\t";  // pairs: escape, value
    const char c = *p_++;
    if (c != 'u') {
      for (size_t i = 0; i < kEscapes.size(); i += 2) {
        if (kEscapes[i] == c) {
          out->push_back(kEscapes[i + 1]);
          return true;
        }
      }
      return error_at(p_ - 1, "an escape character");
    }
    uint32_t code;
    if (!parse_hex4(&code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) {
      return error_at(p_ - 6, "a high surrogate before a low surrogate");
    }
    if (code >= 0xD800 && code <= 0xDBFF) {
      if (!consume_literal("\\u")) return error("a \\u escape with the low surrogate");
      uint32_t low;
      if (!parse_hex4(&low)) return false;
      if (low < 0xDC00 || low > 0xDFFF) return error_at(p_ - 4, "a low surrogate");
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(code, out);
    return true;
  }

  // Length of the valid UTF-8 sequence at p_ (whose first byte is >= 0x80), or 0.
  size_t utf8_length() const {
    const auto* s = reinterpret_cast<const unsigned char*>(p_);
    const size_t left = static_cast<size_t>(end_ - p_);
    auto in = [&](size_t i, unsigned lo, unsigned hi) {
      return i < left && s[i] >= lo && s[i] <= hi;
    };
    const unsigned b = s[0];
    if (b >= 0xC2 && b <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {  // no overlong forms, no surrogates
      const bool ok = in(1, b == 0xE0 ? 0xA0 : 0x80, b == 0xED ? 0x9F : 0xBF) && in(2, 0x80, 0xBF);
      return ok ? 3 : 0;
    }
    if (b >= 0xF0 && b <= 0xF4) {  // no overlong forms, nothing past U+10FFFF
      const bool ok = in(1, b == 0xF0 ? 0x90 : 0x80, b == 0xF4 ? 0x8F : 0xBF) &&
                      in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF);
      return ok ? 4 : 0;
    }
    return 0;
  }

  bool parse_string(std::string* out) {
    ++p_;                  // '"'
    const char* run = p_;  // the bytes since the last escape, copied in one go
    while (true) {
      while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20 &&
             static_cast<unsigned char>(*p_) < 0x80) {
        ++p_;
      }
      if (p_ >= end_) return error("'\"' closing the string");
      if (*p_ == '"') {
        out->append(run, p_ - run);
        ++p_;
        return true;
      }
      if (*p_ == '\\') {
        out->append(run, p_ - run);
        if (!parse_escape(out)) return false;
        run = p_;
      } else if (static_cast<unsigned char>(*p_) < 0x20) {
        return error("an escaped control character");
      } else {
        const size_t length = utf8_length();
        if (length == 0) return error("valid UTF-8");
        p_ += length;
      }
    }
  }

  // What a literal beyond double's range means, as Python reads it: infinity if its first
  // significant digit lies left of the decimal point once the exponent is applied, else zero.
  static double out_of_range_value(std::string_view literal) {
    const bool negative = literal.front() == '-';
    if (negative) literal.remove_prefix(1);
    const size_t e = std::min(literal.find_first_of("eE"), literal.size());
    int64_t exponent = 0;  // saturates: past double's range only its sign matters
    for (size_t i = e + 1; i < literal.size(); ++i) {
      if (literal[i] >= '0' && literal[i] <= '9' && exponent < 1'000'000'000) {
        exponent = exponent * 10 + (literal[i] - '0');
      }
    }
    if (e + 1 < literal.size() && literal[e + 1] == '-') exponent = -exponent;
    const std::string_view mantissa = literal.substr(0, e);
    const auto point = static_cast<int64_t>(std::min(mantissa.find('.'), mantissa.size()));
    const size_t first = mantissa.find_first_of("123456789");
    if (first == std::string_view::npos) return negative ? -0.0 : 0.0;
    // Where the first significant digit sits: 1 for "5", 0 for "0.5", -1 for "0.05".
    const auto f = static_cast<int64_t>(first);
    const int64_t position = f < point ? point - f : point - f + 1;
    const double value = position + exponent > 0 ? HUGE_VAL : 0.0;
    return negative ? -value : value;
  }

  bool parse_number(JsonValue* out) {
    const char* start = p_;
    if (at('-')) ++p_;
    if (!at_digit()) return error(p_ == start ? "a value" : "a digit");
    if (!consume('0')) skip_digits();  // no leading zeros
    bool integral = true;
    if (at('.')) {
      ++p_;
      if (!at_digit()) return error("a digit after '.'");
      skip_digits();
      integral = false;
    }
    if (at('e') || at('E')) {
      ++p_;
      if (at('+') || at('-')) ++p_;
      if (!at_digit()) return error("a digit in the exponent");
      skip_digits();
      integral = false;
    }
    out->kind_ = JsonKind::kNumber;
    int64_t int_value;
    if (integral && std::from_chars(start, p_, int_value).ec == std::errc()) {
      out->is_int_ = true;
      out->number_ = {int_value, static_cast<double>(int_value)};
      return true;
    }
    double value;
    const std::from_chars_result result = std::from_chars(start, p_, value);
    if (result.ec == std::errc::result_out_of_range) {
      value = out_of_range_value(std::string_view(start, p_ - start));
    } else if (result.ec != std::errc() || result.ptr != p_) {
      return error_at(start, "a number");
    }
    out->number_ = {0, value};
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  Status error_;
};

Result<JsonValue> parse_json(std::string_view text) {
  return JsonParser(text).parse();
}

}  // namespace kiln
