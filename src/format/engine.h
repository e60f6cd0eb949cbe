// A kiln engine in memory: what the builder produces, what the engine file holds, and what the
// runtime loads. The file form is FlatBuffers (src/format/engine.fbs; docs/engine-format.md);
// write_engine / read_engine convert between the two, and read_engine verifies in layers.
//
// An engine is a program over its bindings. `program.graph`'s user inputs are the input bindings
// (tensors whose dims may be symbols with ranges), its outputs the output bindings, and its
// parameter/buffer/constant inputs the weights (program.weights). Interpreting backends (cpu) run
// the graph node by node; compiled backends (cuda) also carry kernels and a memory plan.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ir/program.h"
#include "kiln/status.h"

namespace kiln::format {

// The engine format's version. Readers accept files of the same major version and any minor
// version (unknown fields from newer minors are ignored); see docs/engine-format.md.
inline constexpr uint32_t kFormatMajor = 1;
inline constexpr uint32_t kFormatMinor = 1;
// The FlatBuffers file identifier (bytes 4..7 of every engine file).
inline constexpr std::string_view kFileIdentifier = "KILN";

// Where the engine runs: the backend and the architecture its kernels were built for.
struct Target {
  std::string backend = "cpu";  // "cpu" | "cuda"
  std::string arch;             // "x86_64", "aarch64" for cpu; "sm_90", "sm_80" for cuda
};

// One symbol's range in an optimization profile: the engine accepts any value in [min, max] and is
// tuned for `opt`.
struct SymbolProfile {
  std::string symbol;
  int64_t min = 0;
  int64_t opt = 0;
  int64_t max = 0;
};

// An optimization profile: a range per symbol of the input bindings. Static engines have one
// profile with no symbols.
struct Profile {
  std::vector<SymbolProfile> symbols;
};

// A compiled GPU kernel image (filled by the CUDA backend; empty for cpu engines).
enum class KernelImageKind : uint8_t { kCubin, kPtx };
struct KernelImage {
  std::string name;  // the module's name in the engine, unique
  std::string arch;  // "sm_90"; for PTX the lowest arch it targets ("compute_80")
  KernelImageKind kind = KernelImageKind::kCubin;
  std::string data;  // the image bytes
};

// Device memory the engine needs per profile, planned at build time (0 for cpu engines).
struct MemoryPlan {
  uint64_t arena_bytes = 0;      // activations, at the profile's max shapes
  uint64_t workspace_bytes = 0;  // library workspaces (cuBLASLt, cuDNN)
};

// Facts about the build, for `kiln inspect`, cache keys and compatibility checks.
struct BuildInfo {
  std::string kiln_version;             // of the kiln that built the engine
  std::string torch_version;            // of the PyTorch that exported the program
  std::string settings_digest;          // hex digest of the build-affecting settings
  std::vector<std::string> precisions;  // enabled precisions: "fp32", "fp16", "bf16"
  bool hardware_compatible = false;
  bool refittable = false;        // weights may be replaced by name after building
  bool weights_stripped = false;  // weights left out; refit before running
  std::string name;               // "_run_on_acc_0", or the program's name for whole programs
  // Runs averaged when the runtime times GEMM and convolution algorithms (num_avg_timing_iters);
  // 0: the libraries' heuristic choice, untimed.
  uint32_t timing_iterations = 0;
};

struct Engine {
  std::shared_ptr<ir::Program> program;
  Target target;
  std::vector<Profile> profiles;   // at least one
  std::vector<MemoryPlan> memory;  // one per profile (cpu: zeros)
  std::vector<KernelImage> kernels;
  BuildInfo build;
};

// Serializes an engine. Weight data is stored in one 64-byte-aligned segment unless
// build.weights_stripped; weights keep their dtype, sizes and strides (made contiguous first).
// The same engine always gives the same bytes. Refuses (invalid_argument) what read_engine would
// refuse: see check_engine in format/engine_check.h. Weights and kernels together are limited to
// a little under 2 GiB (a FlatBuffer's reach): more is unsupported.
Result<std::string> write_engine(const Engine& engine);

// Reads and verifies an engine, in layers, each failing with a clear message: size and file
// identifier ("not a kiln engine", invalid_argument), the root table ("corrupt engine",
// data_loss), the format version ("engine format 2.0 is newer than this kiln reads (1.x)",
// unsupported), the recorded file size and the whole FlatBuffers structure (data_loss), then the
// contents (op names and enum codes known to this kiln, else unsupported; value references in
// range, weights inside the weight segment and matching their dtype and shape, profiles covering
// every symbol of the input bindings, the graph passing ir::verify, else data_loss). The program's
// graph comes back linked.
// Weights are zero-copy: tensors that view `data`, whose storage holds `owner` (may be null: then
// the caller keeps `data` alive as long as the Engine). When `data` does not start on a 64-byte
// boundary, the bytes are first copied once into aligned memory that the weights own instead.
// Weights of a weights_stripped engine are meta tensors (dtype and sizes, no data).
// Thread-safe: reads `data`, shares nothing.
Result<Engine> read_engine(std::string_view data, std::shared_ptr<const void> owner);

// Reads only the header fields (target, build info, format version) without verifying the rest:
// for `kiln inspect` of damaged files and for cache bookkeeping. Still checks the identifier and
// the FlatBuffers structure of the root, target and build tables. For a file of another major
// version only the version is filled in (its other fields may mean something else there); that
// is not an error here, as read_engine would make it.
struct EngineSummary {
  uint32_t format_major = 0;
  uint32_t format_minor = 0;
  Target target;
  BuildInfo build;
};
Result<EngineSummary> read_engine_summary(std::string_view data);

}  // namespace kiln::format
