#include "frontend/pt2_reader.h"

#include <cstring>
#include <unordered_map>

#include "base/json.h"
#include "base/mapped_file.h"
#include "frontend/graph_deserializer.h"
#include "frontend/zip_archive.h"
#include "ir/verifier.h"

namespace kiln::frontend {
namespace {

constexpr std::string_view kModelsDir = "/models/";
constexpr std::string_view kDefaultModel = "model";

// The archive's layout: the folder all entries sit in, and which model it holds.
struct Layout {
  std::string prefix;  // "resnet50/" (may be empty)
  std::string model;   // "model"
};

Result<Layout> find_layout(const ZipArchive& zip) {
  std::vector<Layout> models;
  for (const ZipEntry& e : zip.entries()) {
    std::string_view name = e.name;
    size_t pos = name.find(kModelsDir);
    if (pos == std::string_view::npos || !name.ends_with(".json")) continue;
    std::string_view model = name.substr(pos + kModelsDir.size());
    model.remove_suffix(5);
    if (model.find('/') != std::string_view::npos) continue;
    models.push_back(Layout{std::string(name.substr(0, pos + 1)), std::string(model)});
  }
  if (models.empty()) {
    for (const ZipEntry& e : zip.entries()) {
      std::string_view name = e.name;
      if (name.ends_with("serialized_exported_program.json") || name.ends_with(".pkl") ||
          name.ends_with("serialized_state_dict.pt")) {
        return unsupported(
            "this archive was written by torch.export.save of PyTorch 2.8 or ",
            "older (pickled weights, entry '", name, "'); kiln reads the archive ",
            "format of PyTorch 2.9 and newer: load and re-save it with torch >= 2.9");
      }
    }
    return data_loss("not a torch.export archive: no models/<name>.json entry among its ",
                     zip.entries().size(), " entries");
  }
  for (const Layout& l : models) {
    if (l.model == kDefaultModel) return l;
  }
  return models.front();
}

// The root module's input/output tree specs, when the program records them.
void read_call_spec(const JsonValue& json, ir::Program& program) {
  const JsonValue* gm = json.find("graph_module");
  const JsonValue* graph = gm ? gm->find("module_call_graph") : nullptr;
  if (!graph || !graph->is_array() || graph->as_array().empty()) return;
  const JsonValue* signature = graph->as_array()[0].find("signature");
  if (!signature || !signature->is_object()) return;
  if (const JsonValue* s = signature->find("in_spec"); s && s->is_string())
    program.in_spec = s->as_string();
  if (const JsonValue* s = signature->find("out_spec"); s && s->is_string())
    program.out_spec = s->as_string();
}

class ArchiveReader {
 public:
  ArchiveReader(const ZipArchive& zip, std::shared_ptr<const void> owner,
                const ReadOptions& options)
      : zip_(zip), owner_(std::move(owner)), options_(options) {}

  Result<std::shared_ptr<ir::Program>> read();

 private:
  Result<std::string_view> entry(const std::string& name, std::string_view what);
  Result<JsonValue> json_entry(const std::string& name, std::string_view what);
  Result<std::shared_ptr<Storage>> storage(const std::string& path, DType dtype);
  Status load_weights(ir::Program& program);
  Result<Tensor> tensor_from_config(const JsonValue& config, const std::string& dir,
                                    std::string_view fqn);

  const ZipArchive& zip_;
  std::shared_ptr<const void> owner_;
  ReadOptions options_;
  Layout layout_;
  std::unordered_map<std::string, std::shared_ptr<Storage>> storages_;
};

Result<std::string_view> ArchiveReader::entry(const std::string& name, std::string_view what) {
  const ZipEntry* e = zip_.find(name);
  if (!e) return data_loss("the archive has no entry '", name, "' (", what, ")");
  auto owned = std::make_shared<std::string>();
  KILN_ASSIGN_OR_RETURN(std::string_view data, zip_.read(*e, owned.get()), "reading '", name, "'");
  if (options_.verify_crc) KILN_RETURN_IF_ERROR(verify_crc(*e, data));
  if (!owned->empty()) {
    // Inflated: keep the bytes alive with the archive.
    owner_ = std::make_shared<std::pair<std::shared_ptr<const void>, std::shared_ptr<std::string>>>(
        owner_, owned);
  }
  return data;
}

Result<JsonValue> ArchiveReader::json_entry(const std::string& name, std::string_view what) {
  KILN_ASSIGN_OR_RETURN(std::string_view text, entry(name, what));
  KILN_ASSIGN_OR_RETURN(JsonValue value, parse_json(text), "in '", name, "'");
  return value;
}

Result<std::shared_ptr<Storage>> ArchiveReader::storage(const std::string& path, DType dtype) {
  if (auto it = storages_.find(path); it != storages_.end()) return it->second;
  KILN_ASSIGN_OR_RETURN(std::string_view bytes, entry(path, "tensor data"));
  std::shared_ptr<Storage> s;
  const auto address = reinterpret_cast<uintptr_t>(bytes.data());
  if (address % 64 == 0) {
    // Kernels only read weights; the mapping is read-only, so a stray write faults, never corrupts.
    s = Storage::borrow(const_cast<char*>(bytes.data()), bytes.size(), owner_);
  } else {  // unaligned (an archive not written by torch): copy once into aligned memory
    KILN_ASSIGN_OR_RETURN(s, Storage::allocate(bytes.size()));
    std::memcpy(s->data(), bytes.data(), bytes.size());
  }
  storages_.emplace(path, s);
  return s;
}

Result<Tensor> ArchiveReader::tensor_from_config(const JsonValue& config, const std::string& dir,
                                                 std::string_view fqn) {
  if (const JsonValue* pickle = config.find("use_pickle");
      pickle && pickle->is_bool() && pickle->as_bool()) {
    return unsupported("tensor '", fqn, "' is pickled; kiln reads raw tensor data only ",
                       "(tensor subclasses and non-tensor constants are not supported)");
  }
  KILN_ASSIGN_OR_RETURN(std::string_view path, config.get_string("path_name"));
  KILN_ASSIGN_OR_RETURN(const JsonValue* meta, config.get_object("tensor_meta"));
  KILN_ASSIGN_OR_RETURN(int64_t code, meta->get_int("dtype"));
  auto dtype = dtype_from_export_code(code);
  if (!dtype)
    return unsupported("tensor '", fqn, "' has dtype code ", code, ", which kiln does not support");
  Shape sizes, strides;
  for (auto [key, out] : {std::pair{"sizes", &sizes}, std::pair{"strides", &strides}}) {
    KILN_ASSIGN_OR_RETURN(auto items, meta->get_array(key));
    for (const JsonValue& item : items) {
      KILN_ASSIGN_OR_RETURN(int64_t n, item.get_int("as_int"), key, " of tensor '", fqn, "'");
      out->push_back(n);
    }
  }
  int64_t offset = 0;
  if (const JsonValue* off = meta->find("storage_offset")) {
    KILN_ASSIGN_OR_RETURN(offset, off->get_int("as_int"));
  }
  KILN_ASSIGN_OR_RETURN(auto s, storage(layout_.prefix + dir + std::string(path), *dtype));
  return Tensor::from_storage(std::move(s), *dtype, std::move(sizes), std::move(strides), offset);
}

Status ArchiveReader::load_weights(ir::Program& program) {
  const std::string weights_dir = "data/weights/", constants_dir = "data/constants/";
  JsonValue weights, constants;
  const std::string weights_config =
      layout_.prefix + weights_dir + layout_.model + "_weights_config.json";
  const std::string constants_config =
      layout_.prefix + constants_dir + layout_.model + "_constants_config.json";
  if (zip_.find(weights_config)) {
    KILN_ASSIGN_OR_RETURN(weights, json_entry(weights_config, "weights"));
  }
  if (zip_.find(constants_config)) {
    KILN_ASSIGN_OR_RETURN(constants, json_entry(constants_config, "constants"));
  }
  const JsonValue* weight_table = weights.find("config");
  const JsonValue* constant_table = constants.find("config");
  for (const ir::GraphInput& in : program.graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) continue;
    const JsonValue* config = nullptr;
    std::string dir;
    if (weight_table && (config = weight_table->find(in.target))) {
      dir = weights_dir;
    } else if (constant_table && (config = constant_table->find(in.target))) {
      dir = constants_dir;
    } else {
      return data_loss("'", in.target, "' (graph input '", in.value->name,
                       "') has no data in the archive");
    }
    KILN_ASSIGN_OR_RETURN(Tensor t, tensor_from_config(*config, dir, in.target), "loading '",
                          in.target, "'");
    const ir::Value& v = *in.value;
    bool shape_ok = t.dim() == static_cast<int64_t>(v.shape.size());
    for (size_t d = 0; shape_ok && d < v.shape.size(); ++d) {
      shape_ok = v.shape[d].is_static() && v.shape[d].value == t.size(static_cast<int64_t>(d));
    }
    if (t.dtype() != v.dtype || !shape_ok) {
      return data_loss("'", in.target, "' is stored as ", t.description(),
                       " but the program uses it as ", dtype_name(v.dtype), "[", v.shape.size(),
                       " dims]");
    }
    program.weights.emplace(v.id, std::move(t));
  }
  return ok_status();
}

Result<std::shared_ptr<ir::Program>> ArchiveReader::read() {
  KILN_ASSIGN_OR_RETURN(layout_, find_layout(zip_));
  KILN_ASSIGN_OR_RETURN(
      JsonValue json, json_entry(layout_.prefix + "models/" + layout_.model + ".json", "program"));
  auto program = std::make_shared<ir::Program>();
  if (const JsonValue* v = json.find("torch_version"); v && v->is_string()) {
    program->torch_version = v->as_string();
  }
  if (const JsonValue* v = json.find("schema_version"); v && v->is_object()) {
    if (auto major = v->get_int("major"); major.ok())
      program->schema_major = static_cast<int>(*major);
    if (auto minor = v->get_int("minor"); minor.ok())
      program->schema_minor = static_cast<int>(*minor);
  }
  read_call_spec(json, *program);
  KILN_RETURN_IF_ERROR(deserialize_graph(json, program->graph, options_.torch_keeps_signature),
                       "reading the program");
  KILN_RETURN_IF_ERROR(load_weights(*program));
  KILN_RETURN_IF_ERROR(ir::verify(program->graph), "verifying the program");
  if (options_.check_inference) KILN_RETURN_IF_ERROR(ir::check_inference(*program));
  return program;
}

}  // namespace

Result<std::shared_ptr<ir::Program>> read_program_file(const std::string& path,
                                                       const ReadOptions& options) {
  KILN_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  auto owner = std::make_shared<MappedFile>(std::move(file));
  KILN_ASSIGN_OR_RETURN(ZipArchive zip, ZipArchive::open(owner->bytes()), "reading '", path, "'");
  ArchiveReader reader(zip, owner, options);
  KILN_ASSIGN_OR_RETURN(auto program, reader.read(), "reading '", path, "'");
  return program;
}

Result<std::shared_ptr<ir::Program>> read_program_bytes(std::string_view bytes,
                                                        const ReadOptions& options) {
  // Aligned like a mapped file, so that weights can be used in place.
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<Storage> buffer, Storage::allocate(bytes.size()));
  std::memcpy(buffer->data(), bytes.data(), bytes.size());
  std::string_view view(static_cast<const char*>(buffer->data()), buffer->nbytes());
  KILN_ASSIGN_OR_RETURN(ZipArchive zip, ZipArchive::open(view));
  ArchiveReader reader(zip, buffer, options);
  return reader.read();
}

}  // namespace kiln::frontend
