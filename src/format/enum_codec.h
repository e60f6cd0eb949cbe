// The schema's enums (engine.fbs) <-> kiln's C++ enums. The file's numbers are fixed by the
// schema, so kiln's own enums may be reordered or extended without changing the format.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/dtype.h"
#include "format/engine.h"
#include "format/engine_generated.h"
#include "ir/graph.h"

namespace kiln::format {

fb::DType to_fb(DType dtype);
fb::ValueKind to_fb(ir::ValueKind kind);
fb::InputKind to_fb(ir::InputKind kind);
fb::MemoryFormat to_fb(ir::MemoryFormat format);
fb::KernelImageKind to_fb(KernelImageKind kind);

// nullopt for numbers this kiln does not know (Undefined, or added by a newer format minor).
std::optional<DType> from_fb(fb::DType dtype);
std::optional<ir::ValueKind> from_fb(fb::ValueKind kind);
std::optional<ir::InputKind> from_fb(fb::InputKind kind);
std::optional<ir::MemoryFormat> from_fb(fb::MemoryFormat format);
std::optional<KernelImageKind> from_fb(fb::KernelImageKind kind);

// The message for an enum number this kiln does not know: "expected a known dtype (codes 1..10),
// found code 42: the engine needs a newer kiln, or is corrupt". The known codes run from `first`
// (the enum's MIN unless it is a placeholder, like DType::Undefined) to the enum's MAX.
std::string unknown_code_message(std::string_view what, unsigned code, unsigned first,
                                 unsigned last);
template <typename Enum>
std::string unknown_code(std::string_view what, Enum code, Enum first = Enum::MIN) {
  return unknown_code_message(what, static_cast<unsigned>(code), static_cast<unsigned>(first),
                              static_cast<unsigned>(Enum::MAX));
}

}  // namespace kiln::format
