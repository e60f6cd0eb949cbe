// `kiln compile MODEL.pt2 -o MODEL.engine [--input-shape NAME=MIN:OPT:MAX ...]
//  [--precision fp32|fp16|bf16] [--target ARCH]`: the whole program as one engine.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "builder/builder.h"
#include "cli_args.h"
#include "commands.h"
#include "convert/op_registry.h"
#include "engine_file.h"
#include "format/engine.h"
#include "frontend/pt2_reader.h"
#include "partition/partition.h"

namespace kiln::cli {
namespace {

constexpr const char* kCompileUsage =
    "usage: kiln compile MODEL.pt2 -o MODEL.engine [--input-shape NAME=MIN:OPT:MAX ...] "
    "[--precision fp32|fp16|bf16] [--target ARCH]";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Result<format::Target> parse_target(const std::optional<std::string>& flag) {
  format::Target target;
  if (!flag || *flag == "cpu") return target;  // the host's cpu
  if (flag->rfind("sm_", 0) == 0 || flag->rfind("compute_", 0) == 0) {
    target.backend = "cuda";
    target.arch = *flag;
    return target;
  }
  if (*flag == "x86_64" || *flag == "aarch64") {
    target.arch = *flag;
    return target;
  }
  return invalid_argument("--target: expected a GPU arch like sm_90, or cpu, found '", *flag, "'");
}

Result<std::vector<builder::InputSpec>> input_specs(const ir::Graph& graph,
                                                    const std::vector<std::string>& flags) {
  std::map<std::string, builder::InputSpec> by_name;
  for (const std::string& flag : flags) {
    KILN_ASSIGN_OR_RETURN(builder::InputSpec spec, builder::parse_input_shape_flag(flag));
    by_name[spec.name] = std::move(spec);
  }
  std::vector<builder::InputSpec> specs;
  std::string names;
  for (const ir::GraphInput* in : graph.user_inputs()) {
    names += str_cat(names.empty() ? "" : ", ", in->value->name);
    auto it = by_name.find(in->value->name);
    specs.push_back(it == by_name.end() ? builder::InputSpec{in->value->name, {}, {}, {}, {}}
                                        : std::move(it->second));
    if (it != by_name.end()) by_name.erase(it);
  }
  if (!by_name.empty()) {
    return invalid_argument("--input-shape names '", by_name.begin()->first,
                            "', which is not an input of the program (its inputs: ", names, ")");
  }
  return specs;
}

Status compile(const ParsedArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const std::string& model = args.positional[0];
  const std::string output = *args.value("output");
  KILN_ASSIGN_OR_RETURN(auto program, frontend::read_program_file(model));
  std::printf("read %s (%zu nodes) in %.2f s\n", model.c_str(), program->graph.nodes().size(),
              seconds_since(start));

  builder::BuildRequest request;
  KILN_ASSIGN_OR_RETURN(request.settings.target, parse_target(args.value("target")));
  partition::PartitionSettings full;
  full.backend = request.settings.target.backend;
  full.require_full_compilation = true;
  full.min_block_size = 1;
  KILN_RETURN_IF_ERROR(partition::partition(*program, convert::default_registry(), full).status());

  const std::string precision = args.value("precision").value_or("fp32");
  if (precision != "fp32" && precision != "fp16" && precision != "bf16") {
    return invalid_argument("--precision: expected fp32, fp16 or bf16, found '", precision, "'");
  }
  request.settings.precisions = {precision};
  KILN_ASSIGN_OR_RETURN(auto specs, input_specs(program->graph, args.values("input-shape")));
  KILN_ASSIGN_OR_RETURN(request.profiles, builder::resolve_symbol_profiles(*program, specs));
  request.program = program;
  request.name = std::filesystem::path(model).stem().string();
  std::vector<std::string> log;
  request.log = &log;
  request.progress = [](std::string_view message) {
    std::fprintf(stderr, "kiln: %.*s\n", static_cast<int>(message.size()), message.data());
  };

  const auto build_start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(format::Engine engine, builder::build_engine(std::move(request)));
  for (const std::string& line : log) std::printf("  %s\n", line.c_str());
  KILN_ASSIGN_OR_RETURN(std::string bytes, format::write_engine(engine));
  KILN_RETURN_IF_ERROR(write_file_atomically(output, bytes));
  std::printf("built %s for %s %s in %.2f s: %s (%.2f MB)\n", engine.build.name.c_str(),
              engine.target.backend.c_str(), engine.target.arch.c_str(),
              seconds_since(build_start), output.c_str(), bytes.size() / 1e6);
  return ok_status();
}

}  // namespace

int compile_command(const std::vector<std::string>& raw_args) {
  std::vector<std::string> args;
  for (const std::string& a : raw_args) args.push_back(a == "-o" ? "--output" : a);
  auto parsed = parse_args(args, {{"output", true},
                                  {"input-shape", true, true},
                                  {"precision", true},
                                  {"target", true}});
  if (!parsed.ok()) return report_error(parsed.status().message(), 2);
  if (parsed->positional.size() != 1 || !parsed->has("output")) {
    return report_error(kCompileUsage, 2);
  }
  Status s = compile(*parsed);
  return s.ok() ? 0 : report_error(s.message());
}

}  // namespace kiln::cli
