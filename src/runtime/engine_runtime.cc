#include "runtime/engine_runtime.h"

#include "builder/build_settings.h"
#include "ir/printer.h"
#include "kernels/cpu/cpu_backend.h"
#ifdef KILN_WITH_CUDA
#include "cuda/cuda_support.h"
#endif

namespace kiln {

Result<const Backend*> backend_for_target(const format::Target& target) {
  if (target.backend == "cpu") {
    const std::string host = builder::host_cpu_arch();
    if (!target.arch.empty() && target.arch != host) {
      return unsupported("this engine was built for the cpu arch '", target.arch,
                         "', but this machine is ", host, "; rebuild it here");
    }
    KILN_RETURN_IF_ERROR(cpu::cpu_backend_status(), "the cpu backend failed to initialize");
    return &cpu::cpu_backend();
  }
  if (target.backend == "cuda") {
#ifdef KILN_WITH_CUDA
    return &cuda::cuda_backend();
#else
    return unsupported("this engine was built for CUDA (", target.arch,
                       "), but this kiln was built without the CUDA backend");
#endif
  }
  return unsupported("this engine needs the backend '", target.backend,
                     "', which this kiln does not have (it has: cpu)");
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::load(std::string_view data,
                                                           std::shared_ptr<const void> owner) {
  return load_impl(data, std::move(owner), /*allow_stripped=*/false, /*runnable=*/true);
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::load_stripped(
    std::string_view data, std::shared_ptr<const void> owner) {
  return load_impl(data, std::move(owner), /*allow_stripped=*/true, /*runnable=*/true);
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::inspect(std::string_view data,
                                                              std::shared_ptr<const void> owner) {
  return load_impl(data, std::move(owner), /*allow_stripped=*/true, /*runnable=*/false);
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::load(
    std::shared_ptr<const std::string> bytes) {
  if (!bytes) return invalid_argument("no engine bytes given");
  return load(std::string_view(*bytes), bytes);
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::load_stripped(
    std::shared_ptr<const std::string> bytes) {
  if (!bytes) return invalid_argument("no engine bytes given");
  return load_stripped(std::string_view(*bytes), bytes);
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::inspect(
    std::shared_ptr<const std::string> bytes) {
  if (!bytes) return invalid_argument("no engine bytes given");
  return inspect(std::string_view(*bytes), bytes);
}

Result<std::unique_ptr<EngineRuntime>> EngineRuntime::load_impl(std::string_view data,
                                                                std::shared_ptr<const void> owner,
                                                                bool allow_stripped,
                                                                bool runnable) {
  std::unique_ptr<EngineRuntime> runtime(new EngineRuntime());
  runtime->owner_ = owner;
  KILN_ASSIGN_OR_RETURN(runtime->engine_, format::read_engine(data, std::move(owner)));
  const format::Engine& engine = runtime->engine_;
  if (engine.build.weights_stripped && !allow_stripped) {
    return failed_precondition("engine '", engine.build.name,
                               "' was built with strip_engine_weights: refit it with the "
                               "program's weights before running");
  }
  runtime->missing_weights_ = engine.build.weights_stripped;
  if (!runnable) return runtime;
  KILN_ASSIGN_OR_RETURN(const Backend* backend, backend_for_target(engine.target));
  if (engine.target.backend == "cuda") return runtime;  // prepared on the GPU at first use
  KILN_ASSIGN_OR_RETURN(runtime->executor_, Executor::create(engine.program, *backend),
                        "engine '", engine.build.name, "'");
  return runtime;
}

Result<DeviceEngine*> EngineRuntime::device_engine() {
  if (engine_.target.backend == "cpu") {
    return failed_precondition("engine '", engine_.build.name,
                               "' runs on the cpu backend: use run()");
  }
  if (missing_weights_) {
    return failed_precondition("engine '", engine_.build.name,
                               "' has no weights (built with strip_engine_weights): refit first");
  }
  std::lock_guard<std::mutex> lock(device_mutex_);
  if (!device_) {
    KILN_ASSIGN_OR_RETURN(device_, load_cuda_engine(engine_));
  }
  return device_.get();
}

Result<std::vector<ir::RtValue>> EngineRuntime::run(std::span<const Tensor> inputs) const {
  if (engine_.target.backend == "cuda") {
    return failed_precondition("engine '", engine_.build.name,
                               "' runs on the GPU: pass device tensors to its CUDA entry point");
  }
  if (!executor_) {
    return failed_precondition("engine '", engine_.build.name,
                               "' was loaded for inspection only and cannot run");
  }
  if (missing_weights_) {
    return failed_precondition("engine '", engine_.build.name,
                               "' has no weights (built with strip_engine_weights): refit first");
  }
  auto outputs = executor_->run(inputs);
  if (!outputs.ok()) {
    Status status = outputs.take_status();
    status.with_context(str_cat("engine '", engine_.build.name, "'"));
    return status;
  }
  return outputs;
}

std::vector<std::string> EngineRuntime::weight_names() const {
  std::vector<std::string> names;
  for (const ir::GraphInput& in : graph().inputs()) {
    if (in.kind != ir::InputKind::kUserInput) names.push_back(in.target);
  }
  return names;
}

Status EngineRuntime::refit(const std::map<std::string, Tensor>& weights) {
  if (!engine_.build.refittable) {
    return failed_precondition("engine '", engine_.build.name,
                               "' is not refittable (build it with immutable_weights=False)");
  }
  std::map<std::string, const ir::GraphInput*> by_target;
  for (const ir::GraphInput& in : graph().inputs()) {
    if (in.kind != ir::InputKind::kUserInput) by_target[in.target] = &in;
  }
  // Check everything first, so a failed refit changes nothing.
  for (const auto& [name, tensor] : weights) {
    auto it = by_target.find(name);
    if (it == by_target.end()) {
      return not_found("engine '", engine_.build.name, "' has no weight named '", name, "'");
    }
    const ir::Value& value = *it->second->value;
    // Engines built to run in float16/bfloat16 take the program's float32 weights too.
    const bool converts = is_floating(tensor.dtype()) && is_floating(value.dtype);
    if (tensor.dtype() != value.dtype && !converts) {
      return invalid_argument("weight '", name, "': expected dtype ", dtype_name(value.dtype),
                              ", found ", dtype_name(tensor.dtype()));
    }
    bool same_shape = tensor.dim() == static_cast<int64_t>(value.shape.size());
    for (size_t d = 0; same_shape && d < value.shape.size(); ++d) {
      same_shape = value.shape[d].is_static() &&
                   value.shape[d].value == tensor.size(static_cast<int64_t>(d));
    }
    if (!same_shape) {
      return invalid_argument("weight '", name, "': expected shape ",
                              ir::value_type_to_string(value), ", found ",
                              shape_to_string(tensor.sizes()));
    }
  }
  if (missing_weights_ && weights.size() < by_target.size()) {
    for (const auto& [name, in] : by_target) {
      if (!weights.count(name)) {
        return invalid_argument("engine '", engine_.build.name,
                                "' was built without weights: every weight must be given; '",
                                name, "' is missing");
      }
    }
  }
  for (const auto& [name, tensor] : weights) {
    const DType dtype = by_target[name]->value->dtype;
    KILN_ASSIGN_OR_RETURN(Tensor owned, tensor.to(dtype), "copying weight '", name, "'");
    engine_.program->weights[by_target[name]->value->id] = std::move(owned);
  }
  missing_weights_ = false;
  {
    std::lock_guard<std::mutex> lock(device_mutex_);
    device_.reset();  // the GPU copy of the weights is made again at the next run
  }
  return ok_status();
}

}  // namespace kiln
