// Engine files on disk for the kiln tool: telling them from .pt2 archives, reading them, and
// writing them without ever leaving a half-written file.
#pragma once

#include <memory>
#include <string>

#include "kiln/status.h"

namespace kiln::cli {

// True when the file starts like a kiln engine (FlatBuffers identifier "KILN" at byte 4).
bool is_engine_file(const std::string& path);

Result<std::shared_ptr<const std::string>> read_whole_file(const std::string& path);

// Writes to PATH.tmp.<pid> and renames over PATH, so readers see the old file or the new one.
Status write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace kiln::cli
