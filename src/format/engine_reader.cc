// read_engine / read_engine_summary: FlatBuffer bytes -> Engine, verified in layers
// (docs/engine-format.md, "Verification").
#include <flatbuffers/flatbuffers.h>

#include <cstring>

#include "format/engine.h"
#include "format/engine_check.h"
#include "format/engine_generated.h"
#include "format/enum_codec.h"
#include "format/graph_codec.h"
#include "format/weight_codec.h"

namespace kiln::format {
namespace {

constexpr size_t kHeaderBytes = 8;  // the root offset and the file identifier

// The identifier as found, with bytes that are not printable ASCII written as \xNN.
std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Layer 1: is this a kiln engine at all?
Status check_identifier(std::string_view data) {
  if (data.size() < kHeaderBytes) {
    return invalid_argument("not a kiln engine (expected at least ", kHeaderBytes,
                            " bytes with file identifier '", kFileIdentifier, "', found ",
                            data.size(), " bytes)");
  }
  std::string_view id = data.substr(flatbuffers::kFileIdentifierLength, 4);
  if (id != kFileIdentifier) {
    return invalid_argument("not a kiln engine (expected file identifier '", kFileIdentifier,
                            "', found '", printable(id), "')");
  }
  if (data.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return data_loss("corrupt engine: expected fewer than ", FLATBUFFERS_MAX_BUFFER_SIZE,
                     " bytes (a FlatBuffer's limit), found ", data.size());
  }
  return ok_status();
}

flatbuffers::Verifier::Options verifier_options(size_t size) {
  flatbuffers::Verifier::Options options;
  // Large graphs have many small tables; a table takes at least 8 bytes, so this bound only
  // guards against cycles, never against a genuine engine.
  options.max_tables = static_cast<flatbuffers::uoffset_t>(size / 4 + 1024);
  return options;
}

// Layer 2: the root table and its version and size fields, which keep their place in every
// format version. Returns the root, or null when even that much does not verify.
const fb::Engine* verify_header(std::string_view data) {
  const auto* buf = reinterpret_cast<const uint8_t*>(data.data());
  flatbuffers::Verifier verifier(buf, data.size(), verifier_options(data.size()));
  const flatbuffers::uoffset_t root_offset = verifier.VerifyOffset(0);
  if (root_offset == 0) return nullptr;
  const auto* root = reinterpret_cast<const flatbuffers::Table*>(buf + root_offset);
  if (!root->VerifyTableStart(verifier) ||
      !root->VerifyField<uint32_t>(verifier, fb::Engine::VT_FORMAT_MAJOR, 4) ||
      !root->VerifyField<uint32_t>(verifier, fb::Engine::VT_FORMAT_MINOR, 4) ||
      !root->VerifyField<uint64_t>(verifier, fb::Engine::VT_FILE_SIZE, 8)) {
    return nullptr;
  }
  return fb::GetEngine(buf);
}

Status corrupt_header(std::string_view data) {
  return data_loss("corrupt engine: the root table of the ", data.size(),
                   "-byte file does not verify (truncated or damaged)");
}

// Layer 3.
Status check_version(const fb::Engine& root) {
  const uint32_t major = root.format_major(), minor = root.format_minor();
  if (major > kFormatMajor) {
    return unsupported("engine format ", major, ".", minor, " is newer than this kiln reads (",
                       kFormatMajor, ".x): load it with a newer kiln, or rebuild the engine");
  }
  if (major < kFormatMajor) {
    return unsupported("engine format ", major, ".", minor, " is older than this kiln reads (",
                       kFormatMajor, ".x): rebuild the engine");
  }
  return ok_status();
}

// Layer 4: the whole FlatBuffers structure (every offset, vector and string inside the buffer).
Status check_structure(const fb::Engine& root, std::string_view data) {
  if (root.file_size() != data.size()) {
    return data_loss("corrupt engine: expected ", root.file_size(),
                     " bytes (the size the engine records), found ", data.size(),
                     root.file_size() > data.size() ? " (truncated)" : "");
  }
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                                 verifier_options(data.size()));
  if (!fb::VerifyEngineBuffer(verifier)) {
    return data_loss("corrupt engine: its FlatBuffers structure does not verify (a table, vector ",
                     "or string lies outside the ", data.size(), "-byte file or is malformed)");
  }
  return ok_status();
}

Target decode_target(const fb::Target* t) {
  if (!t) return Target{"", ""};
  return Target{std::string(fb_str(t->backend())), std::string(fb_str(t->arch()))};
}

BuildInfo decode_build(const fb::BuildInfo* b) {
  BuildInfo build;
  if (!b) return build;
  build.kiln_version = fb_str(b->kiln_version());
  build.torch_version = fb_str(b->torch_version());
  build.settings_digest = fb_str(b->settings_digest());
  if (b->precisions()) {
    for (const flatbuffers::String* p : *b->precisions()) {
      build.precisions.emplace_back(fb_str(p));
    }
  }
  build.hardware_compatible = b->hardware_compatible();
  build.refittable = b->refittable();
  build.weights_stripped = b->weights_stripped();
  build.name = fb_str(b->name());
  build.timing_iterations = b->timing_iterations();
  return build;
}

Result<std::shared_ptr<ir::Program>> decode_program(const fb::Engine& root,
                                                    const std::shared_ptr<const void>& owner,
                                                    bool stripped) {
  const fb::Program* p = root.program();
  if (!p || !p->graph()) return data_loss("expected a program with a graph, found none");
  auto program = std::make_shared<ir::Program>();
  KILN_RETURN_IF_ERROR(decode_graph(*p->graph(), program->graph));
  program->torch_version = fb_str(p->torch_version());
  program->schema_major = p->export_schema_major();
  program->schema_minor = p->export_schema_minor();
  program->in_spec = fb_str(p->in_spec());
  program->out_spec = fb_str(p->out_spec());

  const flatbuffers::Vector<uint8_t>* data = root.weight_data();
  // Kernels only read weights; the storage type has no const flavour.
  auto* segment_data = data ? const_cast<uint8_t*>(data->data()) : nullptr;
  auto segment = Storage::borrow(segment_data, data ? data->size() : 0, owner);
  KILN_ASSIGN_OR_RETURN(program->weights, decode_weights(p->weights(), program->graph.num_values(),
                                                         segment, stripped));
  program->graph.link();
  return program;
}

Result<Engine> decode_engine(const fb::Engine& root, const std::shared_ptr<const void>& owner) {
  Engine engine;
  engine.target = decode_target(root.target());
  engine.build = decode_build(root.build());
  KILN_ASSIGN_OR_RETURN(engine.program, decode_program(root, owner, engine.build.weights_stripped));
  if (root.profiles()) {
    for (const fb::Profile* p : *root.profiles()) {
      Profile& profile = engine.profiles.emplace_back();
      if (!p->symbols()) continue;
      for (const fb::SymbolProfile* s : *p->symbols()) {
        profile.symbols.push_back(
            SymbolProfile{std::string(fb_str(s->symbol())), s->min(), s->opt(), s->max()});
      }
    }
  }
  if (root.memory()) {
    for (const fb::MemoryPlan* m : *root.memory()) {
      engine.memory.push_back(MemoryPlan{m->arena_bytes(), m->workspace_bytes()});
    }
  }
  if (root.kernels()) {
    for (const fb::KernelImage* k : *root.kernels()) {
      auto kind = from_fb(k->kind());
      if (!kind) {
        return unsupported("kernel image '", fb_str(k->name()),
                           "': ", unknown_code("image kind", k->kind()));
      }
      KernelImage& image = engine.kernels.emplace_back();
      image.name = fb_str(k->name());
      image.arch = fb_str(k->arch());
      image.kind = *kind;
      if (k->data())
        image.data.assign(reinterpret_cast<const char*>(k->data()->data()), k->data()->size());
    }
  }
  if (Status status = check_engine(engine); !status.ok()) return data_loss(status.message());
  return engine;
}

// Layer 5's errors say whether the file is damaged or merely beyond this kiln.
Status content_error(Status status) {
  if (status.code() == StatusCode::kDataLoss) {
    return data_loss("corrupt engine: ", status.message());
  }
  return make_error(status.code(), "cannot read engine: ", status.message());
}

bool aligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

// A copy of `data` in 64-byte-aligned memory, for buffers that are not (weights are borrowed in
// place and FlatBuffers reads scalars in place, both of which need aligned memory).
Result<std::shared_ptr<Storage>> aligned_copy(std::string_view data) {
  KILN_ASSIGN_OR_RETURN(auto storage, Storage::allocate(data.size()));
  std::memcpy(storage->data(), data.data(), data.size());
  return storage;
}

// Whether `data` can be read where it is. The CPU backend computes on the weights in place and
// wants them 64-byte aligned. A device backend only copies them to the device, so the alignment
// FlatBuffers needs for its scalars (8 bytes, which every weight's dtype needs too) is enough: a
// GPU engine's weights are never copied on the host, however the caller's buffer is placed.
bool readable_in_place(std::string_view data) {
  if (aligned(data.data(), kWeightAlignment)) return true;
  if (!aligned(data.data(), 8)) return false;
  Result<EngineSummary> summary = read_engine_summary(data);
  return summary.ok() && !summary->target.backend.empty() && summary->target.backend != "cpu";
}

}  // namespace

Result<Engine> read_engine(std::string_view data, std::shared_ptr<const void> owner) {
  KILN_RETURN_IF_ERROR(check_identifier(data));
  if (!readable_in_place(data)) {
    KILN_ASSIGN_OR_RETURN(auto copy, aligned_copy(data));
    data = std::string_view(static_cast<const char*>(copy->data()), data.size());
    owner = std::move(copy);
  }
  const fb::Engine* root = verify_header(data);
  if (!root) return corrupt_header(data);
  KILN_RETURN_IF_ERROR(check_version(*root));
  KILN_RETURN_IF_ERROR(check_structure(*root, data));
  auto engine = decode_engine(*root, owner);
  if (!engine.ok()) return content_error(engine.take_status());
  return engine;
}

Result<EngineSummary> read_engine_summary(std::string_view data) {
  KILN_RETURN_IF_ERROR(check_identifier(data));
  std::shared_ptr<Storage> copy;
  if (!aligned(data.data(), 8)) {  // the widest scalar: FlatBuffers reads them in place
    KILN_ASSIGN_OR_RETURN(copy, aligned_copy(data));
    data = std::string_view(static_cast<const char*>(copy->data()), data.size());
  }
  const fb::Engine* root = verify_header(data);
  if (!root) return corrupt_header(data);
  EngineSummary summary;
  summary.format_major = root->format_major();
  summary.format_minor = root->format_minor();
  if (summary.format_major != kFormatMajor) {  // the rest may mean something else there
    summary.target.backend.clear();
    return summary;
  }

  const auto* buf = reinterpret_cast<const uint8_t*>(data.data());
  flatbuffers::Verifier verifier(buf, data.size(), verifier_options(data.size()));
  const auto* table = reinterpret_cast<const flatbuffers::Table*>(
      buf + flatbuffers::ReadScalar<flatbuffers::uoffset_t>(buf));
  if (!table->VerifyTableStart(verifier) || !table->VerifyOffset(verifier, fb::Engine::VT_TARGET) ||
      !verifier.VerifyTable(root->target()) ||
      !table->VerifyOffset(verifier, fb::Engine::VT_BUILD) ||
      !verifier.VerifyTable(root->build())) {
    return data_loss("corrupt engine: its target or build info does not verify (the ", data.size(),
                     "-byte file is truncated or damaged)");
  }
  summary.target = decode_target(root->target());
  summary.build = decode_build(root->build());
  return summary;
}

}  // namespace kiln::format
