#include "base/json.h"

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

JsonValue::JsonValue(const JsonValue& other) : number_{0, 0} { copy_from(other); }

JsonValue& JsonValue::operator=(const JsonValue& other) {
  if (this != &other) {
    JsonValue copy(other);
    *this = std::move(copy);
  }
  return *this;
}

JsonValue::JsonValue(JsonValue&& other) noexcept : number_{0, 0} { move_from(std::move(other)); }

JsonValue& JsonValue::operator=(JsonValue&& other) noexcept {
  if (this != &other) {
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
  return get_checked<const JsonValue*>(*this, key, [](const JsonValue& v) -> Result<const JsonValue*> {
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
    if (!parse_value(&value, 0)) return std::move(error_);
    skip_whitespace();
    if (p_ != end_) return fail("end of input");
    return value;
  }

 private:
  Status fail(std::string_view expected) { return fail_at(p_, expected); }

  Status fail_at(const char* where, std::string_view expected) {
    size_t line = 1;
    const char* line_start = begin_;
    for (const char* q = begin_; q < where; ++q) {
      if (*q == '\n') {
        ++line;
        line_start = q + 1;
      }
    }
    std::string found;
    if (where >= end_) {
      found = "end of input";
    } else if (const auto c = static_cast<unsigned char>(*where); c >= 0x20 && c < 0x7f) {
      found = str_cat("'", static_cast<char>(c), "'");
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      found = str_cat("byte 0x", kHex[c >> 4], kHex[c & 15]);
    }
    return data_loss("invalid JSON at line ", line, " column ", where - line_start + 1,
                     ": expected ", expected, ", found ", found);
  }

  bool error(std::string_view expected) { return error_at(p_, expected); }
  bool error_at(const char* where, std::string_view expected) {
    error_ = fail_at(where, expected);
    return false;
  }

  void skip_whitespace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool consume_literal(std::string_view literal) {
    if (static_cast<size_t>(end_ - p_) < literal.size() ||
        std::memcmp(p_, literal.data(), literal.size()) != 0) {
      return false;
    }
    p_ += literal.size();
    return true;
  }

  bool parse_value(JsonValue* out, int depth) {
    if (p_ >= end_) return error("a value");
    switch (*p_) {
      case '{': return parse_object(out, depth + 1);
      case '[': return parse_array(out, depth + 1);
      case '"':
        new (&out->string_) std::string();
        out->kind_ = JsonKind::kString;
        return parse_string(&out->string_);
      case 't':
      case 'f':
        if (consume_literal("true")) {
          *out = JsonValue::make_bool(true);
        } else if (consume_literal("false")) {
          *out = JsonValue::make_bool(false);
        } else {
          return error("a value");
        }
        return true;
      case 'n':
        if (consume_literal("null")) return true;
        return error("a value");
      case 'N':
        if (!consume_literal("NaN")) return error("a value");
        *out = JsonValue::make_double(std::numeric_limits<double>::quiet_NaN());
        return true;
      case 'I':
        if (!consume_literal("Infinity")) return error("a value");
        *out = JsonValue::make_double(std::numeric_limits<double>::infinity());
        return true;
      default: return parse_number(out);
    }
  }

  bool parse_array(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return error("nesting depth at most 512");
    ++p_;  // '['
    new (&out->array_) std::vector<JsonValue>();
    out->kind_ = JsonKind::kArray;
    std::vector<JsonValue>& elements = out->array_;
    skip_whitespace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      skip_whitespace();
      if (!parse_value(&elements.emplace_back(), depth)) return false;
      skip_whitespace();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
      } else if (p_ < end_ && *p_ == ']') {
        ++p_;
        return true;
      } else {
        return error("',' or ']'");
      }
    }
  }

  bool parse_object(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return error("nesting depth at most 512");
    ++p_;  // '{'
    out->object_ = new JsonValue::ObjectData();
    out->kind_ = JsonKind::kObject;
    std::vector<JsonMember>& members = out->object_->members;
    skip_whitespace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      skip_whitespace();
      if (p_ >= end_ || *p_ != '"') return error("a string key");
      JsonMember& member = members.emplace_back();
      if (!parse_string(&member.key)) return false;
      skip_whitespace();
      if (p_ >= end_ || *p_ != ':') return error("':'");
      ++p_;
      skip_whitespace();
      if (!parse_value(&member.value, depth)) return false;
      skip_whitespace();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
      } else if (p_ < end_ && *p_ == '}') {
        ++p_;
        out->object_->build_index();
        return true;
      } else {
        return error("',' or '}'");
      }
    }
  }

  bool parse_hex4(uint32_t* code) {
    if (end_ - p_ < 4) return error_at(end_, "4 hex digits");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      const char c = *p_;
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return error("a hex digit");
      }
      value = value * 16 + digit;
    }
    *code = value;
    return true;
  }

  static void append_utf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (code >> 18)));
      out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  bool parse_escape(std::string* out) {
    ++p_;  // '\\'
    if (p_ >= end_) return error("an escape character");
    const char c = *p_++;
    switch (c) {
      case '"': out->push_back('"'); return true;
      case '\\': out->push_back('\\'); return true;
      case '/': out->push_back('/'); return true;
      case 'b': out->push_back('\b'); return true;
      case 'f': out->push_back('\f'); return true;
      case 'n': out->push_back('\n'); return true;
      case 'r': out->push_back('\r'); return true;
      case 't': out->push_back('\t'); return true;
      case 'u': break;
      default: return error_at(p_ - 1, "an escape character");
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
    auto cont = [&](size_t i, unsigned lo, unsigned hi) {
      return i < left && s[i] >= lo && s[i] <= hi;
    };
    const unsigned b = s[0];
    if (b >= 0xC2 && b <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
      const unsigned lo = b == 0xE0 ? 0xA0 : 0x80;
      const unsigned hi = b == 0xED ? 0x9F : 0xBF;
      return cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (b >= 0xF0 && b <= 0xF4) {
      const unsigned lo = b == 0xF0 ? 0x90 : 0x80;
      const unsigned hi = b == 0xF4 ? 0x8F : 0xBF;
      return cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
  }

  bool parse_string(std::string* out) {
    ++p_;  // '"'
    const char* run = p_;
    while (true) {
      while (p_ < end_) {
        const auto c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      if (p_ >= end_) return error("'\"' closing the string");
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out->append(run, p_ - run);
        ++p_;
        return true;
      }
      if (c == '\\') {
        out->append(run, p_ - run);
        if (!parse_escape(out)) return false;
        run = p_;
      } else if (c < 0x20) {
        return error("an escaped control character");
      } else {
        const size_t length = utf8_length();
        if (length == 0) return error("valid UTF-8");
        p_ += length;
      }
    }
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  // The value of a literal that from_chars found out of double's range: infinity or zero,
  // according to the decimal exponent of its first significant digit.
  static double out_of_range_value(std::string_view literal) {
    const bool negative = literal.front() == '-';
    int64_t magnitude = 0;  // position of the first significant digit relative to the point
    bool seen_significant = false, after_point = false;
    size_t i = negative ? 1 : 0;
    for (; i < literal.size() && literal[i] != 'e' && literal[i] != 'E'; ++i) {
      const char c = literal[i];
      if (c == '.') {
        after_point = true;
      } else if (!seen_significant && c != '0') {
        seen_significant = true;
        magnitude += after_point ? 0 : 1;
      } else if (!seen_significant && after_point) {
        --magnitude;
      } else if (seen_significant && !after_point) {
        ++magnitude;
      }
    }
    int64_t exponent = 0;
    if (i < literal.size()) {
      ++i;
      const bool exponent_negative = i < literal.size() && literal[i] == '-';
      if (i < literal.size() && (literal[i] == '-' || literal[i] == '+')) ++i;
      for (; i < literal.size() && exponent < 1'000'000'000; ++i) {
        exponent = exponent * 10 + (literal[i] - '0');
      }
      if (exponent_negative) exponent = -exponent;
    }
    const double value = magnitude + exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    return negative ? -value : value;
  }

  bool parse_number(JsonValue* out) {
    const char* start = p_;
    if (*p_ == '-') {
      ++p_;
      if (consume_literal("Infinity")) {
        *out = JsonValue::make_double(-std::numeric_limits<double>::infinity());
        return true;
      }
    }
    if (p_ >= end_ || !is_digit(*p_)) return error(p_ == start ? "a value" : "a digit");
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    bool integral = true;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ >= end_ || !is_digit(*p_)) return error("a digit after '.'");
      while (p_ < end_ && is_digit(*p_)) ++p_;
      integral = false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ >= end_ || !is_digit(*p_)) return error("a digit in the exponent");
      while (p_ < end_ && is_digit(*p_)) ++p_;
      integral = false;
    }
    out->kind_ = JsonKind::kNumber;
    if (integral) {
      int64_t value;
      if (std::from_chars(start, p_, value).ec == std::errc()) {
        out->is_int_ = true;
        out->number_ = {value, static_cast<double>(value)};
        return true;
      }
    }
    double value;
    const auto result = std::from_chars(start, p_, value);
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

Result<JsonValue> parse_json(std::string_view text) { return JsonParser(text).parse(); }

}  // namespace kiln
