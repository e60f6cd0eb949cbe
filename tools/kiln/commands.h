// The kiln tool's commands. Each returns the process exit code and prints its own errors.
#pragma once

#include <string>
#include <vector>

namespace kiln::cli {

int inspect_command(const std::vector<std::string>& args);
int run_command(const std::vector<std::string>& args);
int compile_command(const std::vector<std::string>& args);

// Prints "kiln: error: <message>" to stderr and returns 1 (or 2 for usage errors).
int report_error(const std::string& message, int exit_code = 1);

}  // namespace kiln::cli
