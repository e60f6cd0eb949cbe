// The human-readable description of an engine that `kiln inspect model.engine` prints and
// kiln.Engine.describe() returns: build facts, target, bindings, profiles, ops and sizes.
#pragma once

#include <string>

#include "format/engine.h"

namespace kiln {

std::string describe_engine(const format::Engine& engine, size_t file_bytes);

}  // namespace kiln
