// cuDNN's loading, per-thread handles and error mapping (see cudnn_runtime.h).
#include "cuda/cudnn_runtime.h"

#include <dlfcn.h>

#include <string>
#include <vector>

#include "cuda/cuda_check.h"

namespace cudnn_frontend {
// The frontend's shim declares this handle and expects its user to define and set it.
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace kiln::cuda {
namespace {

Status load_cudnn_library() {
  dlerror();
  void* handle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_GLOBAL);
  if (!handle) {
    const char* error = dlerror();
    const std::string first_error = error ? error : "unknown dlopen error";
    handle = dlopen("libcudnn.so", RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      return failed_precondition("cuDNN 9 (libcudnn.so.9) could not be loaded: ", first_error,
                                 "; install PyPI's nvidia-cudnn-cu13 or import torch first");
    }
  }
  using GetVersion = size_t (*)();
  auto get_version = reinterpret_cast<GetVersion>(dlsym(handle, "cudnnGetVersion"));
  if (!get_version) {
    return failed_precondition("the loaded cuDNN library has no cudnnGetVersion");
  }
  const size_t version = get_version();
  if (version < 90000) {
    return failed_precondition("kiln needs cuDNN 9 (libcudnn.so.9); found cuDNN ", version,
                               " (libcudnn.so); install PyPI's nvidia-cudnn-cu13 or import torch "
                               "first");
  }
  cudnn_frontend::cudnn_dlhandle = handle;
  return ok_status();
}

const Status& cudnn_load_status() {
  static const Status status = load_cudnn_library();  // once, thread-safe
  return status;
}

// One handle per thread and device: a cudnnHandle_t carries the stream, so sharing one between
// threads would race on cudnnSetStream.
class ThreadHandles {
 public:
  ~ThreadHandles() {
    for (cudnnHandle_t handle : handles_) {
      if (!handle) continue;
      try {
        (void)fe::detail::destroy_handle(handle);
      } catch (...) {  // at thread exit nothing can be reported
      }
    }
  }

  Result<cudnnHandle_t> get(int device) {
    if (device < 0) return internal_error("negative CUDA device ", device);
    if (static_cast<size_t>(device) >= handles_.size()) handles_.resize(device + 1, nullptr);
    if (!handles_[device]) {
      cudnnHandle_t handle = nullptr;
      const cudnnStatus_t status = fe::detail::create_handle(&handle);
      if (status != CUDNN_STATUS_SUCCESS) {
        return failed_precondition("cudnnCreate on device ", device,
                                   " failed: ", fe::detail::get_error_string(status));
      }
      handles_[device] = handle;
    }
    return handles_[device];
  }

 private:
  std::vector<cudnnHandle_t> handles_;
};

}  // namespace

Result<cudnnHandle_t> cudnn_thread_handle(int device) {
  thread_local ThreadHandles handles;
  return handles.get(device);
}

Status cudnn_available() {
  return cudnn_load_status();
}

Status cudnn_set_stream(cudnnHandle_t handle, cudaStream_t stream) {
  const cudnnStatus_t status = fe::detail::set_stream(handle, stream);
  if (status != CUDNN_STATUS_SUCCESS) {
    return internal_error("cudnnSetStream failed: ", fe::detail::get_error_string(status));
  }
  return ok_status();
}

Status current_device_sm(int* device, int* sm_version) {
  int major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaGetDevice(device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, *device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, *device));
  *sm_version = major * 10 + minor;
  return ok_status();
}

fe::DataType_t fe_dtype(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return fe::DataType_t::HALF;
    case DType::kBFloat16: return fe::DataType_t::BFLOAT16;
    default: return fe::DataType_t::FLOAT;
  }
}

bool cudnn_means_unsupported(fe::error_t error) {
  switch (error.get_code()) {
    case fe::error_code_t::GRAPH_NOT_SUPPORTED:
    case fe::error_code_t::GRAPH_EXECUTION_PLAN_CREATION_FAILED:
    case fe::error_code_t::HEURISTIC_QUERY_FAILED: return true;
    case fe::error_code_t::CUDNN_BACKEND_API_FAILED:
      return error.get_message().find("NOT_SUPPORTED") != std::string::npos;
    default: return false;
  }
}

Status check_cudnn_pointer(std::string_view op, std::string_view name, const void* p) {
  if (!p) return invalid_argument(op, " ", name, " pointer is null");
  if (reinterpret_cast<uintptr_t>(p) % kCudnnAlignment != 0) {
    return invalid_argument(op, " ", name, " pointer ", p, " is not ", kCudnnAlignment,
                            "-byte aligned, as the cuDNN plan assumes");
  }
  return ok_status();
}

bool build_plan_within(feg::Graph& graph, int64_t index, int64_t limit, std::string* failure) {
  fe::error_t status = graph.build_plan_at_index(index);
  int64_t workspace = 0;
  if (status.is_good()) status = graph.get_workspace_size_plan_at_index(index, workspace);
  if (status.is_bad()) {
    *failure = status.get_message();
    return false;
  }
  return workspace <= limit;
}

std::vector<int64_t> build_plans_within(feg::Graph& graph, int64_t limit, int64_t wanted,
                                        std::string* last_failure) {
  std::vector<int64_t> built;
  const int64_t count = graph.get_execution_plan_count();
  for (int64_t i = 0; i < count && static_cast<int64_t>(built.size()) < wanted; ++i) {
    if (build_plan_within(graph, i, limit, last_failure)) built.push_back(i);
  }
  return built;
}

Status execute_cudnn_plan(feg::Graph& graph, int64_t index, void** ptrs, size_t count,
                          void* workspace, int device, cudaStream_t stream, std::string_view what) {
  int current = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) {
    return failed_precondition(what, ": plan built on CUDA device ", device, " run on device ",
                               current);
  }
  return guard_cudnn_frontend("running", what, [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(cudnnHandle_t handle, cudnn_thread_handle(device));
    KILN_RETURN_IF_ERROR(cudnn_set_stream(handle, stream));
    fe::error_t status =
        graph.execute_plan_at_index(handle, ptrs, static_cast<int>(count), workspace, index);
    if (status.is_bad()) {
      return internal_error("cuDNN execute failed for ", what, ": ", status.get_message());
    }
    return ok_status();
  });
}

namespace {

constexpr const char* kPlansFormat = "kiln_cudnn_plans";
constexpr int kPlansVersion = 1;
// More than any kiln op splits into.
constexpr size_t kMaxStages = 8;

// The frontend reads these keys of a plan-only serialization with json's unchecked operator[]
// (an assertion or undefined behaviour when one is missing), so a blob must show them first.
Status check_serialized_graph(const json& graph) {
  if (!graph.is_object()) return invalid_argument("a stage's graph is not an object");
  for (const char* key : {"json_version", "cudnn_backend_data", "behavior_notes",
                          "variant_pack_uids", "variant_pack_replacements", "fe_workspace_size"}) {
    if (!graph.contains(key)) return invalid_argument("a stage's graph has no '", key, "'");
  }
  if (graph.contains("nodes") || graph.contains("tensors")) {
    return invalid_argument("a stage's graph carries its structure; kiln keeps plans only");
  }
  if (!graph.at("cudnn_backend_data").is_string()) {
    return invalid_argument("a stage's cudnn_backend_data is not a string");
  }
  return ok_status();
}

Result<RestoredCudnnPlan> restore_stage(const json& stage, cudnnHandle_t handle) {
  if (!stage.is_object() || !stage.contains("index") || !stage.at("index").is_number_integer() ||
      !stage.contains("name") || !stage.at("name").is_string() || !stage.contains("graph")) {
    return invalid_argument("a stage is not {index, name, graph}");
  }
  const json& serialized = stage.at("graph");
  KILN_RETURN_IF_ERROR(check_serialized_graph(serialized));
  RestoredCudnnPlan plan;
  plan.index = stage.at("index").get<int64_t>();
  plan.name = stage.at("name").get<std::string>();
  plan.graph = std::make_shared<feg::Graph>();
  // No warmup: it would capture a throwaway CUDA graph through a libcudart the frontend loads
  // itself, and kiln's first run of a binding is never captured (as for a freshly built plan).
  fe::error_t status = plan.graph->deserialize(handle, serialized, /*enforce_precompiled=*/false,
                                               /*run_warmup=*/false);
  if (status.is_good()) {
    status = plan.graph->get_workspace_size_plan_at_index(0, plan.workspace_bytes);
  }
  if (status.is_bad()) return internal_error("cuDNN refused the plan: ", status.get_message());
  plan.uids = plan.graph->get_variant_pack_uids_sorted();
  return plan;
}

}  // namespace

std::string cudnn_plan_cache_key(std::string_view key) {
  return str_cat(key, " cudnn ", fe::detail::get_backend_version(), " frontend ",
                 CUDNN_FRONTEND_VERSION);
}

Result<std::vector<uint8_t>> serialize_cudnn_plans(const std::vector<CudnnPlanToKeep>& stages) {
  try {
    json root = {{kPlansFormat, kPlansVersion}, {"stages", json::array()}};
    for (const CudnnPlanToKeep& stage : stages) {
      // Graph::serialize writes the candidate plan, which is the last one built: building the
      // chosen one again (already built, so only selected) makes it the candidate.
      fe::error_t status = stage.graph->build_plan_at_index(stage.index);
      std::vector<uint8_t> bytes;
      if (status.is_good()) status = stage.graph->serialize(bytes, /*serialize_structure=*/false);
      if (status.is_bad()) {
        return unsupported("cuDNN cannot serialize plan ", stage.name, ": ", status.get_message());
      }
      root["stages"].push_back({{"index", stage.index},
                                {"name", std::string(stage.name)},
                                {"graph", json::from_ubjson(bytes)}});
    }
    return json::to_ubjson(root);
  } catch (const std::exception& e) {  // the frontend throws where cuDNN declines to serialize
    return unsupported("cuDNN cannot serialize the plan: ", e.what());
  }
}

Result<std::vector<RestoredCudnnPlan>> deserialize_cudnn_plans(const std::vector<uint8_t>& blob,
                                                               cudnnHandle_t handle) {
  std::vector<RestoredCudnnPlan> plans;
  Status restored = guard_cudnn_frontend("restoring", "a cached cuDNN plan", [&]() -> Status {
    const json root = json::from_ubjson(blob);
    if (!root.is_object() || !root.contains(kPlansFormat) ||
        root.at(kPlansFormat) != kPlansVersion || !root.contains("stages") ||
        !root.at("stages").is_array()) {
      return invalid_argument("not kiln's cuDNN plans, version ", kPlansVersion);
    }
    const json& stages = root.at("stages");
    if (stages.empty() || stages.size() > kMaxStages) {
      return invalid_argument("expected 1 to ", kMaxStages, " stages, found ", stages.size());
    }
    for (const json& stage : stages) {
      KILN_ASSIGN_OR_RETURN(RestoredCudnnPlan plan, restore_stage(stage, handle));
      plans.push_back(std::move(plan));
    }
    return ok_status();
  });
  KILN_RETURN_IF_ERROR(restored);
  return plans;
}

}  // namespace kiln::cuda
