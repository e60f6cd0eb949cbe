// write_engine: Engine -> FlatBuffer bytes (engine.fbs, docs/engine-format.md).
#include <flatbuffers/flatbuffers.h>

#include "format/engine.h"
#include "format/engine_check.h"
#include "format/engine_generated.h"
#include "format/enum_codec.h"
#include "format/graph_codec.h"
#include "format/weight_codec.h"

namespace kiln::format {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

// A FlatBuffer addresses at most 2 GiB. Everything but the weights and kernel images is small
// metadata; this leaves it room, so the builder never reaches its limit (where it would abort).
constexpr uint64_t kMaxPayloadBytes = FLATBUFFERS_MAX_BUFFER_SIZE - (uint64_t{256} << 20);

Offset<fb::BuildInfo> encode_build(FlatBufferBuilder& fbb, const BuildInfo& build) {
  auto kiln_version = fbb.CreateString(build.kiln_version);
  auto torch_version = fbb.CreateString(build.torch_version);
  auto digest = fbb.CreateString(build.settings_digest);
  auto precisions = fbb.CreateVectorOfStrings(build.precisions);
  auto name = fbb.CreateString(build.name);
  return fb::CreateBuildInfo(fbb, kiln_version, torch_version, digest, precisions,
                             build.hardware_compatible, build.refittable, build.weights_stripped,
                             name, build.timing_iterations);
}

Offset<flatbuffers::Vector<Offset<fb::Profile>>> encode_profiles(
    FlatBufferBuilder& fbb, const std::vector<Profile>& profiles) {
  std::vector<Offset<fb::Profile>> out;
  for (const Profile& p : profiles) {
    std::vector<Offset<fb::SymbolProfile>> symbols;
    for (const SymbolProfile& s : p.symbols) {
      symbols.push_back(
          fb::CreateSymbolProfile(fbb, fbb.CreateString(s.symbol), s.min, s.opt, s.max));
    }
    out.push_back(fb::CreateProfile(fbb, fbb.CreateVector(symbols)));
  }
  return fbb.CreateVector(out);
}

Offset<flatbuffers::Vector<Offset<fb::KernelImage>>> encode_kernels(
    FlatBufferBuilder& fbb, const std::vector<KernelImage>& kernels) {
  std::vector<Offset<fb::KernelImage>> out;
  for (const KernelImage& k : kernels) {
    auto name = fbb.CreateString(k.name);
    auto arch = fbb.CreateString(k.arch);
    auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(k.data.data()), k.data.size());
    out.push_back(fb::CreateKernelImage(fbb, name, arch, to_fb(k.kind), data));
  }
  return fbb.CreateVector(out);
}

Result<Offset<fb::Program>> encode_program(
    FlatBufferBuilder& fbb, const ir::Program& program,
    Offset<flatbuffers::Vector<Offset<fb::Weight>>> weights) {
  KILN_ASSIGN_OR_RETURN(auto graph, encode_graph(fbb, program.graph));
  auto torch_version = fbb.CreateString(program.torch_version);
  auto in_spec = fbb.CreateString(program.in_spec);
  auto out_spec = fbb.CreateString(program.out_spec);
  return fb::CreateProgram(fbb, graph, weights, torch_version, program.schema_major,
                           program.schema_minor, in_spec, out_spec);
}

Result<std::string> write(const Engine& engine) {
  if (Status status = check_engine(engine); !status.ok()) {
    return invalid_argument(status.message());
  }
  KILN_ASSIGN_OR_RETURN(WeightLayout layout,
                        plan_weights(*engine.program, engine.build.weights_stripped));
  uint64_t payload = layout.segment_bytes;
  for (const KernelImage& k : engine.kernels) payload += k.data.size();
  if (payload > kMaxPayloadBytes) {
    return unsupported("expected at most ", kMaxPayloadBytes, " bytes of weights and kernels (",
                       "a FlatBuffer addresses 2 GiB), found ", payload);
  }

  // Sized for the payload up front: growing by doubling would hold up to three copies of it.
  FlatBufferBuilder fbb(payload + (size_t{1} << 20));
  // The weights first: FlatBuffers builds back to front, so they end up at the end of the file,
  // after all the metadata that a load reads.
  KILN_ASSIGN_OR_RETURN(auto weight_data, encode_weight_data(fbb, layout));
  auto kernels = encode_kernels(fbb, engine.kernels);
  auto weights = encode_weight_records(fbb, layout);
  KILN_ASSIGN_OR_RETURN(auto program, encode_program(fbb, *engine.program, weights));
  // (Strings are created one statement at a time: argument order is unspecified in C++, and the
  // bytes must not depend on the compiler.)
  auto backend = fbb.CreateString(engine.target.backend);
  auto arch = fbb.CreateString(engine.target.arch);
  auto target = fb::CreateTarget(fbb, backend, arch);
  auto build = encode_build(fbb, engine.build);
  auto profiles = encode_profiles(fbb, engine.profiles);
  std::vector<Offset<fb::MemoryPlan>> plans;
  for (const MemoryPlan& m : engine.memory) {
    plans.push_back(fb::CreateMemoryPlan(fbb, m.arena_bytes, m.workspace_bytes));
  }
  auto memory = fbb.CreateVector(plans);

  // The root's version and size fields are always present (even at their defaults), so that any
  // reader finds them and the size can be filled in once it is known.
  fbb.ForceDefaults(true);
  auto root = fb::CreateEngine(fbb, kFormatMajor, kFormatMinor, /*file_size=*/0, target, build,
                               program, profiles, memory, kernels, weight_data);
  fbb.ForceDefaults(false);
  fbb.Finish(root, kFileIdentifier.data());

  std::string bytes(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  auto* engine_table = flatbuffers::GetMutableRoot<fb::Engine>(bytes.data());
  if (!engine_table->mutate_file_size(bytes.size())) {
    return internal_error("the engine's file_size field was not written");
  }
  return bytes;
}

}  // namespace

Result<std::string> write_engine(const Engine& engine) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, write(engine), "writing engine '", engine.build.name,
                        "'");
  return bytes;
}

}  // namespace kiln::format
