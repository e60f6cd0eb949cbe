// A small read-mostly JSON DOM (RFC 8259) for the program archive's `*.json` files.
//
// A JsonValue owns its whole subtree. Values are immutable once built (by parse_json or the make_*
// factories), so one value may be read from many threads at once. Pointers and spans returned by
// the accessors live as long as the value they came from and do not survive moving or assigning to
// it.
//
// Beyond RFC 8259, parse_json accepts the `NaN`, `Infinity` and `-Infinity` that Python's
// json.dumps writes for non-finite floats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/status.h"

namespace kiln {

enum class JsonKind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

std::string_view json_kind_name(JsonKind kind);

struct JsonMember;

class JsonValue {
 public:
  JsonValue() : number_{0, 0} {}  // null
  ~JsonValue() { destroy(); }
  JsonValue(const JsonValue& other);
  JsonValue& operator=(const JsonValue& other);
  JsonValue(JsonValue&& other) noexcept;
  JsonValue& operator=(JsonValue&& other) noexcept;

  static JsonValue make_bool(bool value);
  static JsonValue make_int(int64_t value);
  static JsonValue make_double(double value);
  static JsonValue make_string(std::string value);
  static JsonValue make_array(std::vector<JsonValue> elements);
  // Keeps the members' order. A repeated key is kept in members(); lookups see the last one, as in
  // Python's json.loads.
  static JsonValue make_object(std::vector<JsonMember> members);

  JsonKind kind() const { return kind_; }
  // "null", "bool", "number", "string", "array" or "object".
  std::string_view kind_name() const { return json_kind_name(kind_); }
  bool is_null() const { return kind_ == JsonKind::kNull; }
  bool is_bool() const { return kind_ == JsonKind::kBool; }
  bool is_number() const { return kind_ == JsonKind::kNumber; }
  // A number written as an integer literal that fits in int64.
  bool is_int() const { return kind_ == JsonKind::kNumber && is_int_; }
  bool is_string() const { return kind_ == JsonKind::kString; }
  bool is_array() const { return kind_ == JsonKind::kArray; }
  bool is_object() const { return kind_ == JsonKind::kObject; }

  // Unchecked accessors, for after an is_*() test: on another kind they give false, 0, an empty
  // string or an empty span rather than failing.
  bool as_bool() const { return is_bool() && bool_; }
  int64_t as_int() const { return is_int() ? number_.int_value : 0; }
  double as_double() const { return is_number() ? number_.double_value : 0; }  // integers too
  const std::string& as_string() const;
  std::span<const JsonValue> as_array() const {
    return is_array() ? std::span<const JsonValue>(array_) : std::span<const JsonValue>();
  }
  std::span<const JsonMember> members() const;

  // Elements of an array or members of an object; 0 otherwise.
  size_t size() const;

  // The member named `key` (the last one if repeated), or null if absent or not an object.
  const JsonValue* find(std::string_view key) const;

  // Checked accessors for walking a schema: a wrong kind is an invalid_argument naming what was
  // expected and found ("expected an integer, found string").
  Result<bool> expect_bool() const;
  Result<int64_t> expect_int() const;
  Result<double> expect_double() const;
  Result<std::string_view> expect_string() const;
  Result<std::span<const JsonValue>> expect_array() const;
  Status expect_object() const;

  // The member `key` of this object: "expected key 'x' in object" when absent, and the kind errors
  // above prefixed with "key 'x'" otherwise.
  Result<const JsonValue*> get(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_double(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<std::span<const JsonValue>> get_array(std::string_view key) const;
  Result<const JsonValue*> get_object(std::string_view key) const;

  // Compact JSON text; non-finite doubles are written the way Python writes them.
  std::string to_json() const;

 private:
  struct ObjectData;

  void destroy();
  void copy_from(const JsonValue& other);
  void move_from(JsonValue&& other) noexcept;
  std::string describe() const;  // for error messages: "string", "number 1.5", ...
  void append_json(std::string* out) const;

  friend class JsonParser;  // builds values in place

  struct Number {
    int64_t int_value;
    double double_value;
  };

  JsonKind kind_ = JsonKind::kNull;
  bool is_int_ = false;
  // One member is live, chosen by kind_ (none for null).
  union {
    bool bool_;
    Number number_;
    std::string string_;
    std::vector<JsonValue> array_;
    ObjectData* object_;
  };
};

struct JsonMember {
  std::string key;
  JsonValue value;
};

// Parses one JSON document (surrounding whitespace allowed). Failures are data_loss:
// "invalid JSON at line L column C: expected ..., found ...". Nesting deeper than 512 is refused.
Result<JsonValue> parse_json(std::string_view text);

// `text` as a JSON string literal, quotes included. Non-ASCII UTF-8 is kept as is.
std::string json_quote(std::string_view text);

}  // namespace kiln
