// A small command-line parser for the kiln tool: positional arguments and --flags, each flag
// declared with whether it takes a value and whether it may repeat.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln::cli {

struct FlagSpec {
  std::string name;  // without the dashes: "input"
  bool takes_value = false;
  bool repeated = false;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;  // a valueless flag maps to {""}

  bool has(const std::string& name) const { return flags.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
  const std::vector<std::string>& values(const std::string& name) const;
};

// Accepts `--name value` and `--name=value`. Unknown flags and missing values are errors that
// name the flag.
Result<ParsedArgs> parse_args(const std::vector<std::string>& args,
                              const std::vector<FlagSpec>& specs);

}  // namespace kiln::cli
