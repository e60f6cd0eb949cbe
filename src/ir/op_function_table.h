// A table from OpKey to one function per op, filled once by registration functions. Registering
// an op twice is an error, not a silent override. Read-only (and so thread-safe) once built.
#pragma once

#include <vector>

#include "ir/op_context.h"

namespace kiln::ir {

// Shape inference and kernels share this signature: both read the node's arguments from the
// context and write its outputs (meta tensors and numbers for inference, data for kernels).
using OpFn = Status (*)(OpContext& ctx);

class OpFunctionTable {
 public:
  OpFunctionTable() : fns_(static_cast<size_t>(OpKey::kCount), nullptr) {}

  Status add(OpKey key, OpFn fn) {
    OpFn& slot = fns_[static_cast<size_t>(key)];
    if (slot) return internal_error("op ", op_name(key), " registered twice");
    slot = fn;
    return ok_status();
  }
  OpFn find(OpKey key) const { return fns_[static_cast<size_t>(key)]; }

 private:
  std::vector<OpFn> fns_;
};

// Adds many ops at once: `KILN_RETURN_IF_ERROR(add_all(table, {{OpKey::aten_relu_default,
// relu}}))`.
struct OpFnEntry {
  OpKey key;
  OpFn fn;
};
inline Status add_all(OpFunctionTable& table, std::initializer_list<OpFnEntry> entries) {
  for (const OpFnEntry& e : entries) KILN_RETURN_IF_ERROR(table.add(e.key, e.fn));
  return ok_status();
}

}  // namespace kiln::ir
