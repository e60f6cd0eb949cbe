// The CUDA engine runtime: loads an engine's kernels and weights, binds its plan per input-shape
// signature, runs the launches (then replays them as a CUDA graph), and stages inputs and
// outputs through the planned arena so that running allocates nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "cuda/attention.h"
#include "cuda/composed_view.h"
#include "cuda/conv.h"
#include "cuda/cuda_check.h"
#include "cuda/engine_build.h"
#include "cuda/gemm.h"
#include "cuda/kernel_module.h"
#include "cuda/plan.h"
#include "cuda/plan_workers.h"
#include "cuda/step_profile.h"
#include "cuda/tactic_cache.h"
#include "ir/shape_inference.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/device_engine.h"
#include "runtime/input_binding.h"

namespace kiln {
namespace cuda {
namespace {

constexpr size_t kDefaultWorkspace = size_t{32} << 20;

struct DeviceBuffer {
  void* ptr = nullptr;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

// One input-shape signature's bound plan.
struct Binding {
  std::vector<Launch> launches;
  std::vector<Tensor> staged_inputs;  // arena tensors the inputs are copied into
  std::vector<Tensor> outputs;        // where the outputs are read from
  std::vector<Shape> output_shapes;
  int runs = 0;
  cudaGraphExec_t graph = nullptr;
  bool graph_failed = false;
  std::string key;  // the input shapes, for messages
  StepProfile profile;
  ~Binding() {
    if (graph) cudaGraphExecDestroy(graph);
  }
};

// Host time of loading's phases, for the profile report.
class LoadClock {
 public:
  void lap(const char* phase, std::string* out) {
    const auto now = std::chrono::steady_clock::now();
    *out += str_cat(out->empty() ? " " : ", ", phase, " ",
                    std::chrono::duration<double, std::milli>(now - last_).count(), " ms");
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

bool graphs_enabled() {
  const char* env = std::getenv("KILN_CUDA_GRAPHS");
  return !(env && std::string_view(env) == "0");
}

class CudaEngine final : public DeviceEngine, public BindContext {
 public:
  static Result<std::unique_ptr<CudaEngine>> load(const format::Engine& engine) {
    std::unique_ptr<CudaEngine> e(new CudaEngine(engine));
    KILN_RETURN_IF_ERROR(e->init(), "loading CUDA engine '", engine.build.name, "'");
    return e;
  }

  ~CudaEngine() override {
    bindings_.clear();
    if (stream_) cudaStreamDestroy(stream_);
  }

  Result<std::vector<Shape>> output_shapes(std::span<const Tensor> inputs) override {
    std::lock_guard<std::mutex> lock(mutex_);
    KILN_RETURN_IF_ERROR(check_current_device());
    KILN_ASSIGN_OR_RETURN(Binding * binding, binding_for(inputs));
    return binding->output_shapes;
  }

  Status run(std::span<const Tensor> inputs, std::span<const Tensor> outputs,
             void* stream_ptr) override {
    std::lock_guard<std::mutex> lock(mutex_);
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    KILN_RETURN_IF_ERROR(check_current_device());
    KILN_ASSIGN_OR_RETURN(Binding * binding, binding_for(inputs));
    if (outputs.size() != binding->outputs.size()) {
      return invalid_argument("engine '", name_, "': expected ", binding->outputs.size(),
                              " output tensors, found ", outputs.size());
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].sizes() != binding->output_shapes[i] ||
          outputs[i].dtype() != binding->outputs[i].dtype()) {
        return invalid_argument("engine '", name_, "' output ", i, ": expected ",
                                dtype_name(binding->outputs[i].dtype()),
                                shape_to_string(binding->output_shapes[i]), ", found ",
                                outputs[i].description());
      }
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      KILN_RETURN_IF_ERROR(copy(inputs[i], binding->staged_inputs[i], stream), "staging input ", i);
    }
    if (profile_runs_ > 0) {
      KILN_RETURN_IF_ERROR(run_profiled(*binding, stream));
    } else if (binding->graph) {
      KILN_CUDA_CHECK(cudaGraphLaunch(binding->graph, stream));
    } else {
      for (Launch& launch : binding->launches) KILN_RETURN_IF_ERROR(launch(stream));
      ++binding->runs;
      if (binding->runs == 1 && graphs_enabled() && !binding->graph_failed) {
        capture(*binding);
      }
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      KILN_RETURN_IF_ERROR(copy(binding->outputs[i], outputs[i], stream), "output ", i);
    }
    return ok_status();
  }

  std::string describe() const override {
    std::string text = str_cat("CUDA engine '", name_, "' for ", arch_, ": ", plan_.steps.size(),
                               " steps, arena ", plan_.arena_bytes, " bytes, workspace ",
                               workspace_bytes_, " bytes, weights ", weight_bytes_, " bytes\n");
    return text + plan_.summary();
  }

  // BindContext
  Result<cudaKernel_t> kernel(const std::string& name) override {
    auto it = kernels_.find(name);
    if (it != kernels_.end()) return it->second;
    if (!module_) return not_found("engine '", name_, "' has no kernel module, needed for ", name);
    KILN_ASSIGN_OR_RETURN(cudaKernel_t k, module_->kernel(name));
    kernels_[name] = k;
    return k;
  }
  Result<std::shared_ptr<const GemmPlan>> gemm_plan(const GemmDesc& desc) override {
    std::string key(reinterpret_cast<const char*>(&desc), sizeof(desc));
    auto it = gemm_plans_.find(key);
    if (it != gemm_plans_.end()) return it->second;
    KILN_ASSIGN_OR_RETURN(cublasLtHandle_t handle, cublaslt_handle());
    // Timed once per GPU and problem (timing_iterations > 0), then taken from the timing cache.
    const int iterations = static_cast<int>(engine_.build.timing_iterations);
    const std::string tactic = str_cat(device_tag_, " ", gemm_tactic_key(desc, workspace_bytes_));
    std::vector<int64_t> known;
    if (iterations > 0) known = TacticCache::process().find(tactic);
    const int choice = known.size() == 1 ? static_cast<int>(known[0]) : -1;
    KILN_ASSIGN_OR_RETURN(
        auto plan, GemmPlan::create(handle, desc, workspace_bytes_, iterations, stream_, choice));
    if (iterations > 0 && choice < 0) TacticCache::process().store(tactic, {plan->choice()});
    gemm_plans_[key] = plan;
    return plan;
  }
  Result<std::shared_ptr<const ConvPlan>> conv_plan(const ConvDesc& desc) override {
    std::string key = str_cat(
        dtype_name(desc.dtype), shape_to_string(desc.x_dims), shape_to_string(desc.x_strides),
        shape_to_string(desc.w_dims), shape_to_string(desc.w_strides), shape_to_string(desc.y_dims),
        shape_to_string(desc.y_strides), shape_to_string(desc.stride),
        shape_to_string(desc.padding), shape_to_string(desc.dilation),
        shape_to_string(desc.output_padding), desc.groups, desc.transposed, desc.has_bias,
        desc.has_residual, int(desc.activation), desc.allow_tf32);
    auto it = conv_plans_.find(key);
    if (it != conv_plans_.end()) return it->second;
    const bool autotune = engine_.build.timing_iterations > 0;
    KILN_RETURN_IF_ERROR(cudnn_available(), "convolution");
    const std::string tactic = str_cat(device_tag_, " ", conv_tactic_key(desc, workspace_bytes_));
    std::vector<int64_t> known;
    if (autotune) known = TacticCache::process().find(tactic);
    // The built plans are kept there too, and restored by later loads (PlanCacheSlot).
    const PlanCacheSlot cached{&TacticCache::process(), tactic};
    if (autotune && known.empty()) {
      // Timing runs candidates on the GPU: one plan at a time, here.
      KILN_ASSIGN_OR_RETURN(auto plan, ConvPlan::create(desc, workspace_bytes_, autotune, stream_,
                                                        known, cached));
      TacticCache::process().store(tactic, plan->plan_indices());
      conv_plans_[key] = plan;
      return plan;
    }
    // Restoring a kept plan (or building the known one) is host work, some milliseconds each:
    // the plan workers do it while the other steps bind, and bind() waits for them at its end.
    auto plan = ConvPlan::create_deferred(device_, desc, workspace_bytes_, autotune, stream_,
                                          known, cached);
    conv_plans_[key] = plan;
    deferred_conv_plans_.push_back(key);
    return plan;
  }
  Result<std::shared_ptr<const AttentionPlan>> attention_plan(const AttentionDesc& desc) override {
    // The whole desc, the scale exactly; the tactic cache keeps the built plan under it.
    const std::string key = attention_tactic_key(desc, workspace_bytes_);
    auto it = attention_plans_.find(key);
    if (it != attention_plans_.end()) return it->second;
    KILN_ASSIGN_OR_RETURN(
        auto plan, AttentionPlan::create(desc, workspace_bytes_, stream_,
                                         {&TacticCache::process(), device_tag_ + " " + key}));
    attention_plans_[key] = plan;
    return plan;
  }
  void* workspace() const override { return workspace_.ptr; }
  size_t workspace_bytes() const override { return workspace_bytes_; }
  void* scratch(size_t step, size_t which) const override {
    return static_cast<char*>(arena_.ptr) + plan_.scratch[step][which].offset;
  }

 private:
  explicit CudaEngine(const format::Engine& engine)
      : engine_(engine),
        program_(engine.program),
        name_(engine.build.name),
        profile_runs_(profile_runs_from_env()) {}

  Status init() {
    int count = 0;
    KILN_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (count == 0) return unsupported("no CUDA device is visible");
    KILN_CUDA_CHECK(cudaGetDevice(&device_));
    KILN_ASSIGN_OR_RETURN(arch_, current_device_arch());
    device_tag_ = device_tactic_tag();
    LoadClock clock;
    KILN_ASSIGN_OR_RETURN(plan_, plan_engine(engine_));
    clock.lap("plan", &load_phases_);
    const format::MemoryPlan& memory = engine_.memory.at(0);
    if (memory.arena_bytes != plan_.arena_bytes) {
      return failed_precondition("the engine's memory plan (", memory.arena_bytes,
                                 " bytes) differs from this kiln's plan of it (", plan_.arena_bytes,
                                 " bytes): built by kiln ", engine_.build.kiln_version,
                                 "; rebuild it with this kiln");
    }
    workspace_bytes_ = memory.workspace_bytes ? memory.workspace_bytes : kDefaultWorkspace;
    warm_up_cublaslt();
    KILN_RETURN_IF_ERROR(load_module());
    clock.lap("kernels", &load_phases_);
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    KILN_CUDA_CHECK(cudaMalloc(&arena_.ptr, std::max<uint64_t>(plan_.arena_bytes, 256)));
    KILN_CUDA_CHECK(cudaMalloc(&workspace_.ptr, workspace_bytes_));
    clock.lap("buffers", &load_phases_);
    KILN_RETURN_IF_ERROR(upload_weights());
    clock.lap("weights", &load_phases_);
    return ok_status();
  }

  // cuBLASLt's first use in a process costs some 150 ms (its handle; the first GEMM's bind
  // waited for it). A plan worker starts it now, while the kernels and weights load; the first
  // bind then finds it made, or waits only for the rest. Its errors are the bind's to report.
  void warm_up_cublaslt() const {
    const bool uses_cublaslt =
        std::any_of(plan_.steps.begin(), plan_.steps.end(),
                    [](const auto& s) { return s->kind() == "gemm" || s->kind() == "attention"; });
    if (uses_cublaslt) submit_plan_work(device_, [] { (void)cublaslt_handle(); });
  }

  // The engine's weights, arena and kernels live on the GPU current at load; running it needs
  // that GPU current (and the caller's stream and tensors on it).
  Status check_current_device() const {
    int current = 0;
    KILN_CUDA_CHECK(cudaGetDevice(&current));
    if (current != device_) {
      return failed_precondition("engine '", name_, "' was loaded on GPU ", device_,
                                 " but GPU ", current, " is current; run it with GPU ", device_,
                                 " current (torch.cuda.device(", device_,
                                 ")), or load it again there");
    }
    return ok_status();
  }

  Status load_module() {
    if (plan_.module.empty()) return ok_status();
    const format::KernelImage* cubin = nullptr;
    const format::KernelImage* ptx = nullptr;
    for (const format::KernelImage& image : engine_.kernels) {
      if (image.kind == format::KernelImageKind::kCubin && image.arch == arch_) cubin = &image;
      if (image.kind == format::KernelImageKind::kPtx) ptx = &image;
    }
    const format::KernelImage* image = cubin ? cubin : ptx;
    if (!image) {
      std::string archs;
      for (const format::KernelImage& k : engine_.kernels) archs += str_cat(" ", k.arch);
      return unsupported("engine '", name_, "' has kernels for", archs.empty() ? " nothing" : archs,
                         " but this GPU is ", arch_, "; rebuild it for ", arch_,
                         " (kiln compile --target ", arch_,
                         ") or build with hardware_compatible=True to carry PTX");
    }
    std::string data = image->data;
    if (image->kind == format::KernelImageKind::kPtx) data.push_back('\0');
    KILN_ASSIGN_OR_RETURN(module_, KernelModule::load(data, image->arch));
    return ok_status();
  }

  Status upload_weights() {
    const ir::Graph& graph = program_->graph;
    size_t total = 0;
    std::vector<std::pair<uint32_t, size_t>> offsets;
    for (const auto& [id, t] : program_->weights) {
      offsets.push_back({id, total});
      total += (t.nbytes() + 255) / 256 * 256;
    }
    weight_bytes_ = total;
    slots_template_.assign(graph.num_values(), ir::RtValue{});
    if (total == 0) return ok_status();
    KILN_CUDA_CHECK(cudaMalloc(&weights_.ptr, total));
    auto storage = Storage::borrow(weights_.ptr, total, nullptr);
    for (const auto& [id, offset] : offsets) {
      const Tensor& host = program_->weights.at(id);
      if (!host.has_data()) {
        return failed_precondition("weight ", graph.values()[id].name, " has no data (stripped)");
      }
      // Convolution filters of channels-last plans are stored KRSC (NHWC-strided).
      const bool nhwc =
          std::find(plan_.channels_last_weights.begin(), plan_.channels_last_weights.end(), id) !=
          plan_.channels_last_weights.end();
      const Shape strides =
          layout_strides(host.sizes(), nhwc ? Layout::channels_last() : Layout{});
      // Straight from the engine's bytes when the layout is already the device's, else through
      // a host copy in that layout.
      const void* source = host.raw_data();
      Tensor staged;
      if (host.strides() != strides) {
        KILN_ASSIGN_OR_RETURN(staged, Tensor::empty(host.dtype(), host.sizes()));
        staged = staged.view_as(host.sizes(), strides, 0);
        KILN_RETURN_IF_ERROR(staged.copy_from(host));
        source = staged.raw_data();
      }
      KILN_CUDA_CHECK(cudaMemcpy(static_cast<char*>(weights_.ptr) + offset, source,
                                 host.nbytes(), cudaMemcpyHostToDevice));
      KILN_ASSIGN_OR_RETURN(
          Tensor device,
          Tensor::from_storage(storage, host.dtype(), host.sizes(), strides,
                               static_cast<int64_t>(offset / dtype_size(host.dtype()))));
      slots_template_[id] = ir::RtValue::of(device);
    }
    return ok_status();
  }

  Tensor arena_tensor(uint32_t value, DType dtype, const Shape& sizes) const {
    const BufferPlacement& place = plan_.value_buffers.at(value);
    auto storage = Storage::borrow(static_cast<char*>(arena_.ptr) + place.offset,
                                   std::max<uint64_t>(place.bytes, 1), nullptr);
    return Tensor::from_storage(storage, dtype, sizes, layout_strides(sizes, plan_.layout[value]),
                                0)
        .value();
  }

  // The bound plan for these inputs' shapes (made on first use).
  Result<Binding*> binding_for(std::span<const Tensor> inputs) {
    // Runs mostly repeat the last shapes: compare with that binding before naming the shapes.
    if (last_binding_ && same_signature(*last_binding_, inputs)) return last_binding_;
    std::string key;
    for (const Tensor& t : inputs)
      key += shape_to_string(t.sizes()) + std::string(dtype_name(t.dtype()));
    auto it = bindings_.find(key);
    if (it != bindings_.end()) return last_binding_ = it->second.get();
    KILN_ASSIGN_OR_RETURN(auto binding, bind(inputs));
    binding->key = key;
    Binding* raw = binding.get();
    bindings_[key] = std::move(binding);
    return last_binding_ = raw;
  }

  static bool same_signature(const Binding& binding, std::span<const Tensor> inputs) {
    if (inputs.size() != binding.staged_inputs.size()) return false;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& staged = binding.staged_inputs[i];
      if (inputs[i].sizes() != staged.sizes() || inputs[i].dtype() != staged.dtype()) return false;
    }
    return true;
  }

  // Waits for the convolution plans the plan workers are making; a plan that failed is dropped
  // (a later binding asks for it again) and its error returned.
  Status wait_for_deferred_plans() {
    Status first = ok_status();
    for (const std::string& key : deferred_conv_plans_) {
      auto it = conv_plans_.find(key);
      if (it == conv_plans_.end()) continue;
      Status status = it->second->ready();
      if (status.ok()) continue;
      conv_plans_.erase(it);
      if (first.ok()) first = std::move(status);
    }
    deferred_conv_plans_.clear();
    return first;
  }

  Result<std::unique_ptr<Binding>> bind(std::span<const Tensor> inputs) {
    const ir::Graph& graph = program_->graph;
    KILN_ASSIGN_OR_RETURN(ir::SymBindings symbols, bind_inputs(graph, inputs), "engine '", name_,
                          "'");
    (void)symbols;
    auto binding = std::make_unique<Binding>();
    Slots slots = slots_template_;
    size_t next = 0;
    for (const ir::GraphInput& in : graph.inputs()) {
      if (in.kind != ir::InputKind::kUserInput) continue;
      const Tensor& given = inputs[next++];
      if (given.nbytes() > plan_.value_buffers.at(in.value->id).bytes) {
        return out_of_range("engine '", name_, "': input '", in.value->name, "' ",
                            given.description(), " is larger than the profile allows");
      }
      Tensor staged = arena_tensor(in.value->id, given.dtype(), given.sizes());
      binding->staged_inputs.push_back(staged);
      slots[in.value->id] = ir::RtValue::of(staged);
    }
    const ir::OpFunctionTable& inference = ir::shape_inference_table();
    std::map<uint32_t, std::pair<ComposedView, Tensor>> composed;  // view and a base tensor
    for (const ir::Node& node : graph.nodes()) {
      ir::OpContext ctx(node, slots);
      ir::OpFn infer = inference.find(node.op);
      if (!infer) return unsupported("no shape inference for ", ir::op_name(node.op));
      KILN_RETURN_IF_ERROR(infer(ctx), "binding node '", node.name, "'");
      KILN_RETURN_IF_ERROR(ctx.error(), "binding node '", node.name, "'");
      bool any_tensor = false;
      for (const ir::Value* v : node.outputs) {
        if (v && v->kind == ir::ValueKind::kTensor) any_tensor = true;
      }
      if (!any_tensor) continue;
      const bool view = is_view_node(node);
      bool buffered = false;
      for (const ir::Value* v : node.outputs) {
        if (!v || v->kind != ir::ValueKind::kTensor || !plan_.has_buffer[v->id]) continue;
        buffered = true;
        const Tensor& meta = slots[v->id].tensor;
        if (meta.nbytes() > plan_.value_buffers.at(v->id).bytes) {
          return out_of_range("engine '", name_, "': value '", v->name, "' ", meta.description(),
                              " outgrows its planned buffer (", plan_.value_buffers.at(v->id).bytes,
                              " bytes)");
        }
        slots[v->id].tensor = arena_tensor(v->id, meta.dtype(), meta.sizes());
      }
      if (view && !buffered) {
        KILN_RETURN_IF_ERROR(bind_view(node, ctx, slots, composed), "binding view '", node.name,
                             "'");
      }
    }
    for (size_t i = 0; i < plan_.steps.size(); ++i) {
      const auto started = std::chrono::steady_clock::now();
      KILN_ASSIGN_OR_RETURN(Launch launch, plan_.steps[i]->bind(slots, *this, i), "engine '", name_,
                            "' step ", i, " (", plan_.steps[i]->describe(), ")");
      binding->launches.push_back(std::move(launch));
      binding->profile.bind_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
              .count());
    }
    KILN_RETURN_IF_ERROR(wait_for_deferred_plans(), "engine '", name_, "'");
    for (const ir::Value* out : graph.outputs()) {
      if (out->kind != ir::ValueKind::kTensor) {
        return unsupported("engine '", name_, "' returns a number ('", out->name,
                           "'): CUDA engines return tensors");
      }
      binding->outputs.push_back(slots[out->id].tensor);
      binding->output_shapes.push_back(slots[out->id].tensor.sizes());
    }
    return binding;
  }

  // A view node at this binding's shapes: the CPU backend's view, or the planner's composition
  // where its input or output is a composed value (plan.h).
  Status bind_view(const ir::Node& node, ir::OpContext& ctx, Slots& slots,
                   std::map<uint32_t, std::pair<ComposedView, Tensor>>& composed) {
    const ir::Value* in = node.input_values().empty() ? nullptr : node.input_values()[0];
    const ir::Value* out = node.outputs.empty() ? nullptr : node.outputs[0];
    if (!in || !out || (!plan_.composed[in->id] && !plan_.composed[out->id])) {
      return cpu::cpu_backend().execute(ctx);
    }
    const Tensor& x = slots[in->id].tensor;
    auto from = plan_.composed[in->id] ? composed.at(in->id)
                                       : std::pair(ComposedView::of(x), x);
    KILN_ASSIGN_OR_RETURN(ComposedView view,
                          compose_view(from.first, node, ctx.output_tensor(0).sizes()));
    if (plan_.composed[out->id]) {
      composed[out->id] = {std::move(view), from.second};
      return ok_status();
    }
    auto strides = view.strides();
    if (!strides) {
      return internal_error("the composed view has no strides at these shapes (planned at the "
                            "profile's largest)");
    }
    slots[out->id].tensor = from.second.view_as(view.sizes(), *strides, view.offset());
    return ok_status();
  }

  // dst = src (same sizes): a memcpy when both are contiguous and of one dtype, else the copy
  // kernel compiled into the engine for outputs.
  Status copy(const Tensor& src, const Tensor& dst, cudaStream_t stream) {
    if (src.sizes() != dst.sizes() || src.dtype() != dst.dtype()) {
      return invalid_argument("expected ", dst.description(), ", found ", src.description());
    }
    if (src.numel() == 0) return ok_status();
    if (src.is_contiguous() && dst.is_contiguous()) {
      KILN_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(),
                                      cudaMemcpyDeviceToDevice, stream));
      return ok_status();
    }
    ModuleSource names;
    KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, kernel(copy_kernel(names, src.dtype(), dst.dtype())));
    return launch_copy(fn, src, dst, stream);
  }

  // One run with each launch bracketed by events (no CUDA graph); reports after profile_runs_.
  Status run_profiled(Binding& binding, cudaStream_t stream) {
    const size_t n = binding.launches.size();
    for (size_t i = 0; i < n; ++i) {
      KILN_RETURN_IF_ERROR(binding.profile.mark(i, n, stream));
      KILN_RETURN_IF_ERROR(binding.launches[i](stream));
    }
    KILN_RETURN_IF_ERROR(binding.profile.mark(n, n, stream));
    KILN_RETURN_IF_ERROR(binding.profile.finish_run());
    if (binding.profile.runs() == profile_runs_) {
      std::vector<const Step*> steps;
      for (const auto& step : plan_.steps) steps.push_back(step.get());
      const std::string text = str_cat("kiln CUDA profile: engine '", name_, "' loaded in",
                                       load_phases_, "\n",
                                       binding.profile.report(name_, binding.key, steps));
      std::fwrite(text.data(), 1, text.size(), stderr);
    }
    return ok_status();
  }

  void capture(Binding& binding) {
    cudaGraph_t graph = nullptr;
    auto fail = [&]() {
      binding.graph_failed = true;
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
    };
    if (cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      return fail();
    }
    bool ok = true;
    for (Launch& launch : binding.launches) {
      if (!launch(stream_).ok()) {
        ok = false;
        break;
      }
    }
    if (cudaStreamEndCapture(stream_, &graph) != cudaSuccess || !ok) return fail();
    if (cudaGraphInstantiate(&binding.graph, graph, 0) != cudaSuccess) {
      binding.graph = nullptr;
      return fail();
    }
    cudaGraphDestroy(graph);
  }

  const format::Engine& engine_;
  std::shared_ptr<const ir::Program> program_;
  std::string name_;
  int profile_runs_ = 0;     // KILN_CUDA_PROFILE
  std::string load_phases_;  // " plan 1.2 ms, kernels 3.4 ms, ...": where loading spent its time
  std::string arch_;
  int device_ = 0;  // the GPU it was loaded on
  std::string device_tag_;  // the GPU, in timing-cache keys
  Plan plan_;
  std::unique_ptr<KernelModule> module_;
  std::map<std::string, cudaKernel_t> kernels_;
  std::map<std::string, std::shared_ptr<const GemmPlan>> gemm_plans_;
  std::map<std::string, std::shared_ptr<const ConvPlan>> conv_plans_;
  std::vector<std::string> deferred_conv_plans_;  // keys of plans bind() has yet to wait for
  std::map<std::string, std::shared_ptr<const AttentionPlan>> attention_plans_;
  DeviceBuffer arena_, workspace_, weights_;
  size_t workspace_bytes_ = 0;
  size_t weight_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  Slots slots_template_;
  std::map<std::string, std::unique_ptr<Binding>> bindings_;
  Binding* last_binding_ = nullptr;  // the binding the last run used
  std::mutex mutex_;
};

}  // namespace
}  // namespace cuda

Result<std::unique_ptr<DeviceEngine>> load_cuda_engine(const format::Engine& engine) {
  KILN_ASSIGN_OR_RETURN(auto e, cuda::CudaEngine::load(engine));
  return std::unique_ptr<DeviceEngine>(std::move(e));
}

bool has_cuda_backend() {
  return true;
}

void set_timing_cache_path(const std::string& path) {
  cuda::TacticCache::process().set_path(path);
}

}  // namespace kiln
