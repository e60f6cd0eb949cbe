#include "ir/schema_defaults.h"

#include <charconv>
#include <cstdlib>
#include <string>

namespace kiln::ir {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Result<int64_t> parse_int(std::string_view text) {
  text = trim(text);
  // Reduction enum names used as int defaults (at::Reduction).
  if (text == "Mean") return int64_t{1};
  if (text == "Sum") return int64_t{2};
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return internal_error("cannot read int default '", text, "'");
  }
  return value;
}

Result<double> parse_float(std::string_view text) {
  std::string s(trim(text));
  char* end = nullptr;
  double value = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) {
    return internal_error("cannot read float default '", text, "'");
  }
  return value;
}

// "[0, 1]" -> {"0", "1"}; "1" -> {"1"}.
std::vector<std::string_view> split_list(std::string_view text) {
  text = trim(text);
  std::vector<std::string_view> items;
  if (text.starts_with('[')) {
    text = text.substr(1, text.size() - 2);
    while (!trim(text).empty()) {
      size_t comma = text.find(',');
      items.push_back(trim(text.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      text.remove_prefix(comma + 1);
    }
    return items;
  }
  items.push_back(text);
  return items;
}

Result<Argument> int_list_default(const ArgSchema& schema, std::string_view text) {
  const bool bracketed = trim(text).starts_with('[');
  std::vector<SymInt> values;
  for (std::string_view item : split_list(text)) {
    KILN_ASSIGN_OR_RETURN(int64_t v, parse_int(item));
    values.push_back(SymInt{v, nullptr});
  }
  // `int[2] stride=1` means [1, 1].
  if (!bracketed && schema.list_size > 1 && values.size() == 1) {
    values.assign(schema.list_size, values[0]);
  }
  return Argument(std::move(values));
}

}  // namespace

Result<Argument> default_argument(const ArgSchema& schema) {
  if (!schema.default_value) {
    return invalid_argument("argument '", schema.name, "' is required but missing");
  }
  std::string_view text = trim(schema.default_value);
  if (text == "None") return Argument(NoneArg{});
  if (schema.is_list) {
    switch (schema.base) {
      case BaseType::kInt:
      case BaseType::kSymInt: return int_list_default(schema, text);
      case BaseType::kBool: {
        std::vector<bool> values;
        for (std::string_view item : split_list(text)) values.push_back(item == "True");
        return Argument(std::move(values));
      }
      case BaseType::kFloat: {
        std::vector<double> values;
        for (std::string_view item : split_list(text)) {
          KILN_ASSIGN_OR_RETURN(double v, parse_float(item));
          values.push_back(v);
        }
        return Argument(std::move(values));
      }
      case BaseType::kTensor:
        if (text == "[]") return Argument(std::vector<Value*>{});
        break;
      default: break;
    }
    return internal_error("cannot read list default '", text, "' of argument '", schema.name, "'");
  }
  switch (schema.base) {
    case BaseType::kBool:
      if (text == "True" || text == "False") return Argument(text == "True");
      break;
    case BaseType::kInt:
    case BaseType::kSymInt: {
      KILN_ASSIGN_OR_RETURN(int64_t v, parse_int(text));
      return Argument(v);
    }
    case BaseType::kFloat: {
      KILN_ASSIGN_OR_RETURN(double v, parse_float(text));
      return Argument(v);
    }
    case BaseType::kScalar: {
      if (text == "True" || text == "False") return Argument(text == "True");
      if (text.find_first_of(".eE") != std::string_view::npos && !text.starts_with("0x")) {
        KILN_ASSIGN_OR_RETURN(double v, parse_float(text));
        return Argument(v);
      }
      KILN_ASSIGN_OR_RETURN(int64_t v, parse_int(text));
      return Argument(v);
    }
    case BaseType::kScalarType:
      if (auto d = dtype_from_name(text)) return Argument(*d);
      break;
    case BaseType::kMemoryFormat:
      if (text == "contiguous_format") return Argument(MemoryFormat::kContiguous);
      if (text == "preserve_format") return Argument(MemoryFormat::kPreserve);
      if (text == "channels_last") return Argument(MemoryFormat::kChannelsLast);
      break;
    case BaseType::kString:
      if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'')) {
        return Argument(std::string(text.substr(1, text.size() - 2)));
      }
      break;
    default: break;
  }
  return internal_error("cannot read default '", text, "' of argument '", schema.name, "' (",
                        base_type_name(schema.base), ")");
}

}  // namespace kiln::ir
