#include "ir/op_schema.h"

#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::ir {

std::string_view base_type_name(BaseType type) {
  switch (type) {
    case BaseType::kTensor: return "Tensor";
    case BaseType::kInt: return "int";
    case BaseType::kSymInt: return "SymInt";
    case BaseType::kFloat: return "float";
    case BaseType::kBool: return "bool";
    case BaseType::kScalar: return "Scalar";
    case BaseType::kScalarType: return "ScalarType";
    case BaseType::kLayout: return "Layout";
    case BaseType::kDevice: return "Device";
    case BaseType::kMemoryFormat: return "MemoryFormat";
    case BaseType::kString: return "str";
    case BaseType::kGenerator: return "Generator";
    case BaseType::kStream: return "Stream";
    case BaseType::kSymBool: return "SymBool";
    case BaseType::kSymFloat: return "SymFloat";
    case BaseType::kAny: return "Any";
  }
  return "?";
}

std::span<const ArgSchema> OpSchema::args() const {
  return {kArgSchemas + first_arg, num_args};
}
std::span<const ArgSchema> OpSchema::returns() const {
  return {kArgSchemas + first_return, num_returns};
}

std::span<const OpSchema> all_op_schemas() {
  return {kOpSchemas, static_cast<size_t>(OpKey::kCount)};
}

const OpSchema& op_schema(OpKey key) {
  return kOpSchemas[static_cast<size_t>(key)];
}

namespace {

struct OpIndex {
  std::unordered_map<std::string_view, OpKey> by_target;
  std::vector<std::string> short_names;  // "aten.add.Tensor", by key
  std::deque<std::string> alias_storage;

  OpIndex() {
    const auto schemas = all_op_schemas();
    short_names.resize(schemas.size());
    for (const OpSchema& s : schemas) {
      if (s.key == OpKey::kInvalid) continue;
      std::string_view target = s.target;
      by_target.emplace(target, s.key);
      std::string short_name(target.starts_with("torch.ops.") ? target.substr(10) : target);
      short_names[static_cast<size_t>(s.key)] = short_name;
      add_alias(short_name, s.key);
      std::string_view qualified = s.qualified_name;
      std::string overload = *s.overload ? s.overload : "default";
      add_alias(std::string(qualified) + "." + overload, s.key);
      if (!*s.overload) add_alias(std::string(qualified), s.key);
    }
    // FX prints Python operators this way; serialized programs say "_operator.getitem".
    if (auto it = by_target.find("_operator.getitem"); it != by_target.end()) {
      add_alias("<built-in function getitem>", it->second);
      add_alias("operator.getitem", it->second);
    }
  }
  void add_alias(std::string name, OpKey key) {
    alias_storage.push_back(std::move(name));
    by_target.emplace(alias_storage.back(), key);
  }
};

const OpIndex& op_index() {
  static const OpIndex index;
  return index;
}

}  // namespace

std::optional<OpKey> find_op(std::string_view target) {
  const auto& index = op_index().by_target;
  auto it = index.find(target);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

std::string_view op_name(OpKey key) {
  return op_index().short_names[static_cast<size_t>(key)];
}

}  // namespace kiln::ir
