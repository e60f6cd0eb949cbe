// What an engine must satisfy beyond its file structure, checked by the writer (so that a bad
// engine is refused when it is made) and again by the reader (so that a tampered file is refused
// when it is loaded). See "Verification" in docs/engine-format.md.
#pragma once

#include "format/engine.h"

namespace kiln::format {

// The graph is self-contained and well formed (ir::verify), value names are unique, every
// parameter/buffer/constant input has exactly one weight matching its recorded dtype and shape
// (and nothing else has one), there is at least one profile and one memory plan per profile, each
// profile gives every symbol of the input bindings a range 0 <= min <= opt <= max inside the
// program's range for it (and names no other symbol), and kernel names are unique.
// The message says what was expected and found; the caller chooses the status code.
Status check_engine(const Engine& engine);

}  // namespace kiln::format
