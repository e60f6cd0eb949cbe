// The op table: every functional ATen overload (and the Python operators export graphs use) with
// its schema, generated from PyTorch's native_functions.yaml by scripts/gen_op_table.py. The table
// is immutable static data; every function here is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "ir/op_key_generated.h"

namespace kiln::ir {

// The element type of an argument, as written in the schema (`SymInt[2]?` is kSymInt, list,
// optional).
enum class BaseType : uint8_t {
  kTensor,
  kInt,
  kSymInt,
  kFloat,
  kBool,
  kScalar,
  kScalarType,
  kLayout,
  kDevice,
  kMemoryFormat,
  kString,
  kGenerator,
  kStream,
  kSymBool,
  kSymFloat,
  kAny,
};

std::string_view base_type_name(BaseType type);

struct ArgSchema {
  const char* name;
  BaseType base;
  bool optional;       // `T?`
  bool is_list;        // `T[]` or `T[N]`
  uint8_t list_size;   // N of `T[N]`, 0 when unsized; a single default value expands to N copies
  bool elem_optional;  // `Tensor?[]`
  bool kwarg_only;
  const char*
      default_value;  // as written in the schema ("1", "None", "[0, 0]", "False"); null if required
};

enum OpTag : uint32_t {
  kTagCore = 1,
  kTagPointwise = 2,
  kTagView = 4,  // an output aliases an input
  kTagNondeterministic = 8,  // random: the op takes a generator (nondeterministic_seeded)
  kTagDynamicOutputShape = 16,
  kTagDataDependentOutput = 32,
  kTagPythonOp = 64,  // _operator.*, torch.sym_*: scalar arithmetic on symbolic ints
};

struct OpSchema {
  OpKey key;
  const char* qualified_name;  // "aten::add"
  const char* overload;        // "Tensor"; "" for the default overload
  const char* target;          // as torch.export serializes it: "torch.ops.aten.add.Tensor"
  uint32_t first_arg;
  uint8_t num_args;
  uint32_t first_return;
  uint8_t num_returns;
  uint32_t tags;

  std::span<const ArgSchema> args() const;
  std::span<const ArgSchema> returns() const;
  bool has_tag(OpTag tag) const { return (tags & tag) != 0; }
};

// The generated tables (op_table_generated.cc), indexed by OpKey; use the functions below.
extern const ArgSchema kArgSchemas[];
extern const OpSchema kOpSchemas[];

const OpSchema& op_schema(OpKey key);
std::span<const OpSchema> all_op_schemas();  // index 0 is OpKey::kInvalid
// Looks an op up by its serialized target: "torch.ops.aten.add.Tensor", "aten.add.Tensor",
// "aten::add.Tensor", "_operator.mul", "<built-in function getitem>". Load time only.
std::optional<OpKey> find_op(std::string_view target);
// "aten.add.Tensor": short and unambiguous, for messages and the printer.
std::string_view op_name(OpKey key);

}  // namespace kiln::ir
