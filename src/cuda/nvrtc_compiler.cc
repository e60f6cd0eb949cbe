#include "cuda/nvrtc_compiler.h"

#include <nvrtc.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <vector>

#include "cuda/cuda_check.h"

namespace kiln::cuda {
namespace {

struct ProgramDeleter {
  void operator()(nvrtcProgram* p) const {
    if (p && *p) nvrtcDestroyProgram(p);
    delete p;
  }
};

std::vector<int> nvrtc_archs() {
  int count = 0;
  if (nvrtcGetNumSupportedArchs(&count) != NVRTC_SUCCESS || count <= 0) return {};
  std::vector<int> archs(static_cast<size_t>(count));
  if (nvrtcGetSupportedArchs(archs.data()) != NVRTC_SUCCESS) return {};
  return archs;
}

// "sm_90" / "sm_90a" -> 90 (and whether the arch-specific 'a' variant was named).
Result<int> parse_arch(const std::string& arch) {
  if (arch.size() < 4 || arch.compare(0, 3, "sm_") != 0) {
    return invalid_argument("expected a CUDA arch like 'sm_90', found '", arch, "'");
  }
  std::string digits = arch.substr(3);
  if (!digits.empty() && digits.back() == 'a') digits.pop_back();
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) {
    return invalid_argument("expected a CUDA arch like 'sm_90', found '", arch, "'");
  }
  const int number = std::stoi(digits);
  const std::vector<int> known = nvrtc_archs();
  if (!known.empty() && std::find(known.begin(), known.end(), number) == known.end()) {
    return invalid_argument("NVRTC cannot compile for '", arch, "'; it supports ",
                            supported_archs());
  }
  return number;
}

// The first lines of the log, each error with the source line it points at.
std::string annotate_log(const std::string& log, const std::string& source) {
  std::vector<std::string> lines;
  std::istringstream in(source);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::ostringstream out;
  std::istringstream log_in(log);
  int shown = 0;
  for (std::string line; std::getline(log_in, line) && shown < 20; ++shown) {
    out << "\n  " << line;
    // NVRTC's form: "name(LINE): error: ..."
    const size_t open = line.find('(');
    const size_t close = line.find(')', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::string number = line.substr(open + 1, close - open - 1);
    if (number.empty() || !std::all_of(number.begin(), number.end(), ::isdigit)) continue;
    const size_t at = std::stoul(number);
    if (at >= 1 && at <= lines.size()) out << "\n    > " << lines[at - 1];
  }
  return out.str();
}

}  // namespace

std::string supported_archs() {
  std::string list;
  for (int a : nvrtc_archs()) list += str_cat(list.empty() ? "" : ", ", "sm_", a);
  return list.empty() ? std::string("(none: NVRTC did not answer)") : list;
}

Result<CompiledModule> compile_cuda_source(const std::string& source, const std::string& arch,
                                           bool with_ptx, const std::string& name) {
  KILN_ASSIGN_OR_RETURN(const int number, parse_arch(arch));
  std::unique_ptr<nvrtcProgram, ProgramDeleter> program(new nvrtcProgram(nullptr));
  const std::string file = name + ".cu";
  KILN_NVRTC_CHECK(nvrtcCreateProgram(program.get(), source.c_str(), file.c_str(), 0, nullptr,
                                      nullptr));
  const bool arch_specific = arch.back() == 'a';
  const std::string real = str_cat("--gpu-architecture=sm_", number, arch_specific ? "a" : "");
  const std::string virt =
      str_cat("--gpu-architecture=compute_", number, arch_specific ? "a" : "");
  CompiledModule result;
  for (bool ptx_pass : {false, true}) {
    if (ptx_pass && !with_ptx) break;
    if (ptx_pass) {
      program.reset(new nvrtcProgram(nullptr));
      KILN_NVRTC_CHECK(nvrtcCreateProgram(program.get(), source.c_str(), file.c_str(), 0,
                                          nullptr, nullptr));
    }
    const std::string& target = ptx_pass ? virt : real;
    const char* options[] = {target.c_str(), "--std=c++17",
                             "-default-device", "--extra-device-vectorization",
                             "-DKILN_NVRTC=1"};
    const nvrtcResult compiled =
        nvrtcCompileProgram(*program, static_cast<int>(std::size(options)), options);
    size_t log_size = 0;
    nvrtcGetProgramLogSize(*program, &log_size);
    std::string log(log_size, '\0');
    if (log_size > 0) nvrtcGetProgramLog(*program, log.data());
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    if (compiled != NVRTC_SUCCESS) {
      return internal_error("NVRTC could not compile kiln's generated CUDA code for ", arch,
                            " (a kiln bug; please report it with this message):",
                            annotate_log(log, source));
    }
    if (!ptx_pass) {
      result.log = log;
      size_t size = 0;
      KILN_NVRTC_CHECK(nvrtcGetCUBINSize(*program, &size));
      result.cubin.resize(size);
      KILN_NVRTC_CHECK(nvrtcGetCUBIN(*program, result.cubin.data()));
    } else {
      size_t size = 0;
      KILN_NVRTC_CHECK(nvrtcGetPTXSize(*program, &size));
      result.ptx.resize(size);
      KILN_NVRTC_CHECK(nvrtcGetPTX(*program, result.ptx.data()));
    }
  }
  return result;
}

}  // namespace kiln::cuda
