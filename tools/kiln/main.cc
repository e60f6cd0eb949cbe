// kiln: compile, inspect and run torch.export programs and kiln engines without Python.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "kiln/version.h"

namespace {

constexpr const char* kUsage =
    "usage: kiln <command> [options]\n"
    "\n"
    "commands:\n"
    "  compile MODEL.pt2 -o MODEL.engine [options]\n"
    "                                 build the whole program as one engine\n"
    "      --input-shape NAME=MIN:OPT:MAX  a dynamic input's range, shapes like 1x3x224x224\n"
    "                                 (or NAME=SHAPE); repeat per input\n"
    "      --precision fp32|fp16|bf16 the precision kernels may use (default fp32)\n"
    "      --target ARCH              the GPU arch to build for (sm_90; no GPU needed), or cpu\n"
    "  inspect MODEL.pt2|MODEL.engine a program's IR, op histogram, inputs and outputs with\n"
    "                                 shape ranges and kiln's support; an engine's bindings,\n"
    "                                 profiles, ops, sizes, kiln version and target\n"
    "      --plan                     a CUDA engine's steps (kernels, GEMMs, copies)\n"
    "  run MODEL.pt2|MODEL.engine [options]\n"
    "                                 run a program (reference CPU backend) or an engine\n"
    "      --input NAME=FILE.npy      an input (repeat for each input)\n"
    "      --random [--seed N]        random values for inputs not given with --input\n"
    "      --output-dir DIR           write each output as DIR/output_<i>.npy\n"
    "  version                        print kiln's version\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "inspect") return kiln::cli::inspect_command(args);
  if (command == "run") return kiln::cli::run_command(args);
  if (command == "compile") return kiln::cli::compile_command(args);
  if (command == "version" || command == "--version") {
    std::printf("kiln %.*s\n", static_cast<int>(kiln::kVersion.size()), kiln::kVersion.data());
    return 0;
  }
  std::fputs(kUsage, stderr);
  return kiln::cli::report_error("unknown command '" + command + "'", 2);
}
