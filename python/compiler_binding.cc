#include "compiler_binding.h"

#include <algorithm>
#include <cstring>

#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "base/hash.h"
#include "builder/builder.h"
#include "convert/op_registry.h"
#include "format/engine.h"
#include "frontend/pt2_reader.h"
#include "ir/op_schema.h"
#include "ir/printer.h"
#include "partition/partition.h"
#include "py_program.h"
#include "runtime/engine_inspect.h"
#include "runtime/engine_runtime.h"
#include "runtime/input_binding.h"
#include "tensor_bridge.h"

namespace kiln::python {
namespace {

namespace nb = nanobind;

template <typename T>
T get_or(const nb::dict& d, const char* key, T fallback) {
  if (!d.contains(key)) return fallback;
  nb::object value = d[key];
  if (value.is_none()) return fallback;
  return nb::cast<T>(value);
}

// The settings dict kiln._compiler passes (see _build_settings_dict there).
builder::BuildSettings build_settings(const nb::dict& d) {
  builder::BuildSettings s;
  s.target.backend = get_or<std::string>(d, "backend", "cpu");
  s.target.arch = get_or<std::string>(d, "arch", "");
  s.precisions = get_or<std::vector<std::string>>(d, "precisions", {"fp32"});
  s.use_explicit_typing = get_or<bool>(d, "use_explicit_typing", false);
  s.use_fp32_acc = get_or<bool>(d, "use_fp32_acc", false);
  s.disable_tf32 = get_or<bool>(d, "disable_tf32", false);
  s.hardware_compatible = get_or<bool>(d, "hardware_compatible", false);
  s.truncate_double = get_or<bool>(d, "truncate_double", false);
  s.refittable = get_or<bool>(d, "refittable", false);
  s.strip_weights = get_or<bool>(d, "strip_weights", false);
  s.optimization_level = get_or<int>(d, "optimization_level", -1);
  s.num_avg_timing_iters = get_or<int>(d, "num_avg_timing_iters", 1);
  s.workspace_size = get_or<uint64_t>(d, "workspace_size", 0);
  s.lowering_passes = get_or<bool>(d, "lowering_passes", true);
  return s;
}

partition::PartitionSettings partition_settings(const nb::dict& d) {
  partition::PartitionSettings s;
  s.use_fast_partitioner = get_or<bool>(d, "use_fast_partitioner", true);
  s.min_block_size = get_or<int>(d, "min_block_size", 5);
  s.torch_executed_ops = get_or<std::vector<std::string>>(d, "torch_executed_ops", {});
  s.torch_executed_nodes = get_or<std::vector<std::string>>(d, "torch_executed_nodes", {});
  s.require_full_compilation = get_or<bool>(d, "require_full_compilation", false);
  s.assume_dynamic_shape_support = get_or<bool>(d, "assume_dynamic_shape_support", false);
  s.backend = get_or<std::string>(d, "backend", "cpu");
  return s;
}

// Input specs from kiln.Input.to_spec() dicts; None entries take the program's shapes.
std::vector<builder::InputSpec> input_specs(const nb::list& specs) {
  std::vector<builder::InputSpec> out;
  for (nb::handle item : specs) {
    builder::InputSpec spec;
    if (!item.is_none()) {
      nb::dict d = nb::cast<nb::dict>(item);
      spec.name = get_or<std::string>(d, "name", "");
      spec.min = get_or<std::vector<int64_t>>(d, "min", {});
      spec.opt = get_or<std::vector<int64_t>>(d, "opt", {});
      spec.max = get_or<std::vector<int64_t>>(d, "max", {});
      const std::string dtype = get_or<std::string>(d, "dtype", "");
      if (!dtype.empty()) {
        spec.dtype = dtype_from_name(dtype);
        if (!spec.dtype) check(invalid_argument("input spec ", out.size(), ": unknown dtype '", dtype, "'"));
      }
    }
    out.push_back(std::move(spec));
  }
  return out;
}

nb::dict value_info(const ir::Value& v) {
  nb::dict d;
  d["name"] = v.name;
  d["dtype"] = v.kind == ir::ValueKind::kTensor ? std::string(dtype_name(v.dtype))
                                                : ir::value_type_to_string(v);
  std::string shape = "[";
  for (size_t i = 0; i < v.shape.size(); ++i) {
    shape += (i ? ", " : "") + ir::sym_dim_to_string(v.shape[i]);
  }
  d["shape"] = v.kind == ir::ValueKind::kTensor ? shape + "]" : std::string();
  nb::list dims;
  for (const ir::SymDim& dim : v.shape) {
    if (dim.is_static()) {
      dims.append(nb::int_(dim.value));
    } else {
      dims.append(nb::str(dim.expr->to_string().c_str()));
    }
  }
  d["dims"] = dims;
  d["is_tensor"] = v.kind == ir::ValueKind::kTensor;
  return d;
}

nb::bytes to_bytes(const std::string& s) { return nb::bytes(s.data(), s.size()); }

nb::bytes build_to_bytes(builder::BuildRequest request) {
  Result<std::string> bytes = Status();
  // Progress of long builds goes to Python's "kiln" logger (INFO).
  request.progress = [](std::string_view message) {
    nb::gil_scoped_acquire acquire;
    try {
      nb::module_::import_("logging").attr("getLogger")("kiln").attr("info")(
          nb::str(message.data(), message.size()));
    } catch (const std::exception&) {  // logging must never fail a build
    }
  };
  {
    nb::gil_scoped_release release;
    auto engine = builder::build_engine(std::move(request));
    bytes = engine.ok() ? format::write_engine(*engine) : Result<std::string>(engine.take_status());
  }
  return to_bytes(unwrap(std::move(bytes)));
}

class PyPartition {
 public:
  PyPartition(std::shared_ptr<ir::Program> program, partition::PartitionPlan plan,
              partition::PartitionSettings settings)
      : program_(std::move(program)), plan_(std::move(plan)), settings_(std::move(settings)) {}

  nb::dict plan() const {
    nb::dict d;
    d["total_ops"] = plan_.total_ops;
    d["supported_ops"] = plan_.supported_ops;
    d["min_block_size"] = settings_.min_block_size;
    d["partitioner"] = settings_.use_fast_partitioner ? "fast" : "global";
    nb::list unsupported;
    for (const partition::UnsupportedOp& op : plan_.unsupported) {
      nb::dict u;
      u["op"] = op.op;
      u["reason"] = op.reason;
      u["nodes"] = op.nodes;
      unsupported.append(u);
    }
    d["unsupported"] = unsupported;
    nb::list segments;
    for (const partition::Segment& seg : plan_.segments) {
      nb::dict s;
      s["name"] = seg.name;
      s["kind"] = seg.kind == partition::SegmentKind::kAccelerated ? "acc" : "torch";
      // Node names, and per node every name FX may give it: the node's own and its outputs'
      // (a multi-output node's getitems).
      nb::list nodes, fx_names;
      for (const ir::Node* node : seg.nodes) {
        nodes.append(node->name);
        nb::list names;
        names.append(node->name);
        for (const ir::Value* out : node->outputs) {
          if (out && out->name != node->name) names.append(out->name);
        }
        fx_names.append(names);
      }
      s["nodes"] = nodes;
      s["fx_names"] = fx_names;
      s["compute_ops"] = seg.compute_ops;
      nb::list inputs, outputs;
      for (const ir::Value* v : seg.inputs) inputs.append(value_info(*v));
      for (const ir::Value* v : seg.outputs) outputs.append(value_info(*v));
      s["inputs"] = inputs;
      s["outputs"] = outputs;
      segments.append(s);
    }
    d["segments"] = segments;
    d["candidate_block_sizes"] = plan_.candidate_block_sizes;
    return d;
  }

  const partition::Segment& segment(size_t index) const {
    if (index >= plan_.segments.size() ||
        plan_.segments[index].kind != partition::SegmentKind::kAccelerated) {
      check(invalid_argument("segment ", index, " is not an accelerated segment of this plan"));
    }
    return plan_.segments[index];
  }

  // The optimization profile the specs give each symbol of the program's inputs (raises on specs
  // that do not fit the program).
  nb::dict profiles(const nb::list& specs) const {
    nb::dict out;
    for (const auto& [symbol, p] :
         unwrap(builder::resolve_symbol_profiles(*program_, input_specs(specs)))) {
      out[symbol.c_str()] = nb::make_tuple(p.min, p.opt, p.max);
    }
    return out;
  }

  std::string cache_key(size_t index, const nb::dict& settings, const nb::list& specs) const {
    auto program = unwrap(partition::extract_segment(*program_, segment(index)));
    auto profiles = unwrap(builder::resolve_symbol_profiles(*program_, input_specs(specs)));
    return builder::engine_cache_key(*program, build_settings(settings), profiles);
  }

  nb::bytes build(size_t index, const nb::dict& settings, const nb::list& specs) const {
    builder::BuildRequest request;
    request.program = unwrap(partition::extract_segment(*program_, segment(index)));
    request.settings = build_settings(settings);
    request.profiles = unwrap(builder::resolve_symbol_profiles(*program_, input_specs(specs)));
    request.name = segment(index).name;
    return build_to_bytes(std::move(request));
  }

 private:
  std::shared_ptr<ir::Program> program_;
  partition::PartitionPlan plan_;
  partition::PartitionSettings settings_;
};

// A Python-side owner of bytes (a bytes object, an array) as an owner the C++ side can share:
// dropped with the GIL held (an engine may go from a thread that does not hold it), and left alone
// once the interpreter is gone.
template <class T>
std::shared_ptr<const void> keep_alive(T object) {
  return std::shared_ptr<const void>(new T(std::move(object)), [](const void* p) {
    if (!Py_IsInitialized()) return;
    nb::gil_scoped_acquire gil;
    delete static_cast<const T*>(p);
  });
}

class PyEngine {
 public:
  PyEngine(nb::bytes data, bool allow_stripped, bool inspect_only)
      : PyEngine(data.c_str(), data.size(), keep_alive(data), allow_stripped, inspect_only) {}
  // The bytes of a uint8 array (a compiled module's engine buffer).
  PyEngine(const nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>& data,
           bool allow_stripped, bool inspect_only)
      : PyEngine(data.data(), data.size(), keep_alive(data), allow_stripped, inspect_only) {}

  // The engine reads the caller's bytes where they are (read_engine copies them only when their
  // alignment does not suit the backend) and keeps `owner`, which keeps them alive. A GPU
  // engine's weights then cross to the device with no host copy.
  PyEngine(const void* data, size_t size, std::shared_ptr<const void> owner, bool allow_stripped,
           bool inspect_only) {
    nb::gil_scoped_release release;
    const std::string_view view(static_cast<const char*>(data), size);
    file_bytes_ = size;
    runtime_ = unwrap(inspect_only     ? EngineRuntime::inspect(view, owner)
                      : allow_stripped ? EngineRuntime::load_stripped(view, owner)
                                       : EngineRuntime::load(view, owner));
  }

  nb::list run(const std::vector<CpuArray>& arrays) const {
    std::vector<Tensor> inputs = borrow_arrays(arrays);
    Result<std::vector<ir::RtValue>> outputs = Status();
    {
      nb::gil_scoped_release release;
      outputs = runtime_->run(inputs);
    }
    return to_python(unwrap(std::move(outputs)));
  }

  // GPU engines: the output shapes for these (device) inputs, then a run on `stream` (a
  // cudaStream_t as an int) into caller-allocated contiguous outputs.
  nb::list cuda_output_shapes(const std::vector<CudaArray>& arrays) {
    std::vector<Tensor> inputs = borrow_arrays(arrays);
    DeviceEngine* device = unwrap(runtime_->device_engine());
    std::vector<Shape> shapes = unwrap(device->output_shapes(inputs));
    nb::list out;
    for (const Shape& s : shapes) {
      nb::list dims;
      for (int64_t d : s) dims.append(d);
      out.append(nb::tuple(dims));
    }
    return out;
  }
  void run_cuda(const std::vector<CudaArray>& in_arrays, const std::vector<CudaArray>& out_arrays,
                uintptr_t stream) {
    std::vector<Tensor> inputs = borrow_arrays(in_arrays);
    std::vector<Tensor> outputs = borrow_arrays(out_arrays);
    Status status;
    {
      nb::gil_scoped_release release;
      auto device = runtime_->device_engine();
      status = device.ok() ? (*device)->run(inputs, outputs, reinterpret_cast<void*>(stream))
                           : device.take_status();
    }
    check(std::move(status));
  }
  std::string describe_device() {
    DeviceEngine* device = unwrap(runtime_->device_engine());
    return device->describe();
  }

  nb::list inputs() const {
    nb::list out;
    for (const ir::GraphInput* in : runtime_->graph().user_inputs()) out.append(value_info(*in->value));
    return out;
  }
  nb::list outputs() const {
    nb::list out;
    for (const ir::Value* v : runtime_->graph().outputs()) out.append(value_info(*v));
    return out;
  }
  nb::list profiles() const {
    nb::list out;
    for (const format::Profile& p : runtime_->engine().profiles) {
      nb::dict d;
      for (const format::SymbolProfile& s : p.symbols) {
        d[s.symbol.c_str()] = nb::make_tuple(s.min, s.opt, s.max);
      }
      out.append(d);
    }
    return out;
  }
  nb::dict info() const {
    const format::Engine& e = runtime_->engine();
    nb::dict d;
    d["name"] = e.build.name;
    d["backend"] = e.target.backend;
    d["arch"] = e.target.arch;
    d["kiln_version"] = e.build.kiln_version;
    d["torch_version"] = e.build.torch_version;
    d["settings_digest"] = e.build.settings_digest;
    d["precisions"] = e.build.precisions;
    d["refittable"] = e.build.refittable;
    d["weights_stripped"] = e.build.weights_stripped;
    d["hardware_compatible"] = e.build.hardware_compatible;
    return d;
  }
  std::string describe() const { return describe_engine(runtime_->engine(), file_bytes_); }
  std::vector<std::string> weight_names() const { return runtime_->weight_names(); }

  void refit(const std::map<std::string, CpuArray>& weights) {
    std::map<std::string, Tensor> tensors;
    size_t i = 0;
    for (const auto& [name, array] : weights) tensors[name] = unwrap(borrow_array(array, i++));
    check(runtime_->refit(tensors));  // copies: the arrays need not outlive the call
  }

  // Output shapes for input shapes (ints), checking them like run() does; for symbolic outputs
  // the value. Used by the custom op's fake implementation.
  nb::list output_shapes(const std::vector<std::vector<int64_t>>& shapes) const {
    const auto user_inputs = runtime_->graph().user_inputs();
    std::vector<Tensor> metas;
    for (size_t i = 0; i < shapes.size() && i < user_inputs.size(); ++i) {
      metas.push_back(Tensor::meta(user_inputs[i]->value->dtype, Shape(shapes[i].begin(), shapes[i].end())));
    }
    if (shapes.size() != user_inputs.size()) {
      check(invalid_argument("engine '", runtime_->engine().build.name, "': expected ",
                             user_inputs.size(), " inputs, found ", shapes.size()));
    }
    ir::SymBindings bindings = unwrap(bind_inputs(runtime_->graph(), metas));
    nb::list out;
    for (const ir::Value* v : runtime_->graph().outputs()) {
      if (v->kind != ir::ValueKind::kTensor) {
        out.append(v->expr ? nb::object(nb::int_(unwrap(v->expr->evaluate(bindings))))
                           : nb::none());
        continue;
      }
      nb::list dims;
      for (const ir::SymDim& dim : v->shape) {
        dims.append(dim.is_static() ? dim.value : unwrap(dim.expr->evaluate(bindings)));
      }
      out.append(dims);
    }
    return out;
  }

 private:
  std::unique_ptr<EngineRuntime> runtime_;
  size_t file_bytes_ = 0;
};

frontend::ReadOptions fast_read() {
  frontend::ReadOptions options;
  options.check_inference = false;
  return options;
}

}  // namespace

void bind_compiler(nb::module_& m) {
  m.def(
      "supported_op_names",
      [](const std::string& backend) {
        std::vector<std::string> names;
        const convert::OpRegistry& registry = convert::default_registry();
        for (size_t k = 0; k < static_cast<size_t>(ir::OpKey::kCount); ++k) {
          const auto key = static_cast<ir::OpKey>(k);
          if (key != ir::OpKey::kInvalid && registry.has_implementation(key, backend)) {
            names.emplace_back(ir::op_name(key));
          }
        }
        return names;
      },
      nb::arg("backend") = "cpu", "The ops (\"aten.add.Tensor\") kiln runs on the backend.");

  m.def(
      "digest",
      [](nb::bytes data) { return Digest128().add(data.c_str(), data.size()).hex(); },
      nb::arg("data"), "A 128-bit content digest (hex) of bytes: engine identity, cache keys.");
  m.def(
      "digest",
      [](const nb::ndarray<const uint8_t, nb::c_contig, nb::device::cpu>& data) {
        Digest128 digest;
        {
          nb::gil_scoped_release release;
          digest.add(data.data(), data.size());
        }
        return digest.hex();
      },
      nb::arg("data"), "The same digest of a contiguous uint8 array's bytes, read in place.");

  nb::class_<PyPartition>(m, "Partition")
      .def_prop_ro("plan", &PyPartition::plan)
      .def("profiles", &PyPartition::profiles, nb::arg("input_specs"))
      .def("cache_key", &PyPartition::cache_key, nb::arg("index"), nb::arg("settings"),
           nb::arg("input_specs"))
      .def("build", &PyPartition::build, nb::arg("index"), nb::arg("settings"),
           nb::arg("input_specs"));

  m.def(
      "partition",
      [](const PyProgram& program, const nb::dict& settings) {
        partition::PartitionSettings s = partition_settings(settings);
        auto plan = unwrap(partition::partition(*program.program(), convert::default_registry(), s));
        return PyPartition(program.program(), std::move(plan), std::move(s));
      },
      nb::arg("program"), nb::arg("settings"),
      "Decides support for every node and partitions the program (builds nothing).");

  m.def(
      "build_program_engine",
      [](nb::bytes data, const nb::dict& settings, const nb::list& specs, const std::string& name) {
        std::string_view view(data.c_str(), data.size());
        builder::BuildRequest request;
        request.program = unwrap(frontend::read_program_bytes(view, fast_read()));
        request.settings = build_settings(settings);
        partition::PartitionSettings full;
        full.backend = request.settings.target.backend;
        full.require_full_compilation = true;
        full.min_block_size = 1;
        unwrap(partition::partition(*request.program, convert::default_registry(), full));
        request.profiles = unwrap(builder::resolve_symbol_profiles(*request.program, input_specs(specs)));
        request.name = name;
        return build_to_bytes(std::move(request));
      },
      nb::arg("program_bytes"), nb::arg("settings"), nb::arg("input_specs"), nb::arg("name"),
      "Builds the whole program as one engine, or raises listing every unsupported op.");

  m.def(
      "refit_engine",
      [](nb::bytes data, const std::map<std::string, CpuArray>& weights) {
        auto bytes = std::make_shared<const std::string>(data.c_str(), data.size());
        auto runtime = unwrap(EngineRuntime::inspect(std::move(bytes)));
        // Only the engine's own weights: the program may have more (other segments').
        std::map<std::string, Tensor> tensors;
        size_t i = 0;
        for (const std::string& name : runtime->weight_names()) {
          auto it = weights.find(name);
          if (it == weights.end()) {
            check(not_found("refit: no weight named '", name, "' was given"));
          }
          tensors[name] = unwrap(borrow_array(it->second, i++));
        }
        check(runtime->refit(tensors));
        return to_bytes(unwrap(format::write_engine(runtime->engine())));
      },
      nb::arg("data"), nb::arg("weights"),
      "A refittable engine's bytes with its weights replaced by name (dtype and shape checked).");

  nb::class_<PyEngine>(m, "Engine")
      .def(nb::init<nb::bytes, bool, bool>(), nb::arg("data"), nb::arg("allow_stripped") = false,
           nb::arg("inspect_only") = false)
      .def(nb::init<const nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>&,
                    bool, bool>(),
           nb::arg("data"), nb::arg("allow_stripped") = false, nb::arg("inspect_only") = false)
      .def("run", &PyEngine::run, nb::arg("inputs"))
      .def("output_shapes", &PyEngine::output_shapes, nb::arg("input_shapes"))
      .def("cuda_output_shapes", &PyEngine::cuda_output_shapes, nb::arg("inputs"))
      .def("run_cuda", &PyEngine::run_cuda, nb::arg("inputs"), nb::arg("outputs"),
           nb::arg("stream"))
      .def("describe_device", &PyEngine::describe_device)
      .def("refit", &PyEngine::refit, nb::arg("weights"))
      .def("describe", &PyEngine::describe)
      .def_prop_ro("inputs", &PyEngine::inputs)
      .def_prop_ro("outputs", &PyEngine::outputs)
      .def_prop_ro("profiles", &PyEngine::profiles)
      .def_prop_ro("info", &PyEngine::info)
      .def_prop_ro("weight_names", &PyEngine::weight_names);
}

}  // namespace kiln::python
