// Convolutions on cuDNN's graph API through the cudnn-frontend headers, with cuDNN loaded by
// dlopen so that kiln links no cuDNN library.
//
// A desc becomes one cuDNN operation graph: conv_fprop (or conv_dgrad for a transposed conv), then
// pointwise ADD residual, ADD bias and RELU_FWD, all in fp32 on virtual tensors, the last writing
// y in the io dtype. Where cuDNN has no engine for the fused graph, the conv and the epilogue run
// as two graphs. Each graph's plan is the heuristic's first that builds within the workspace
// limit, or the fastest of its first candidates when autotuning.
//
// Describing and validating descs: conv_desc.cc. cuDNN's loading, handles, plan building and
// execution are shared with attention (cudnn_runtime.h).
#include "cuda/conv.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <iterator>
#include <limits>
#include <mutex>
#include <string_view>

#include "base/tensor.h"
#include "cuda/conv_desc.h"
#include "cuda/cuda_check.h"
#include "cuda/cudnn_runtime.h"
#include "cuda/plan_workers.h"

namespace kiln::cuda {
namespace {

// Tensor uids in the cuDNN graph; the variant pack is ordered by them.
constexpr int64_t kUidX = 1;
constexpr int64_t kUidW = 2;
constexpr int64_t kUidBias = 3;
constexpr int64_t kUidResidual = 4;
constexpr int64_t kUidY = 5;
constexpr int64_t kUidConvOut = 6;  // the conv's y, read by a separate epilogue graph

// How many heuristic candidates autotuning builds and times: building a cuDNN plan can take tens
// of milliseconds, and the heuristic's order puts the fast ones first.
constexpr int64_t kMaxTunedPlans = 5;
constexpr int kTimedRuns = 5;

// ---- building the graph ----

// Which part of y = act(conv(x, w) + residual + bias) one cuDNN graph computes. The whole is
// tried first; where no engine fuses it (cuDNN's fusion engines want tensor cores, so fp32
// without TF32, and often NCHW, have none), the conv writes y and a pointwise graph finishes y in
// place.
enum class GraphPart : uint8_t { kFused, kConvOnly, kEpilogueOnly };

std::string_view part_name(GraphPart part) {
  switch (part) {
    case GraphPart::kFused: return "";
    case GraphPart::kConvOnly: return "conv stage ";
    case GraphPart::kEpilogueOnly: return "epilogue stage ";
  }
  return "";
}

Status fe_status(fe::error_t error, std::string_view step, const ConvDesc& desc, GraphPart part,
                 size_t workspace_limit) {
  if (error.is_good()) return ok_status();
  const std::string where = str_cat(describe_conv_desc(desc), " ws<=", workspace_limit);
  if (cudnn_means_unsupported(error)) {
    return unsupported("cuDNN has no engine for ", part_name(part), where, " (", step, ": ",
                       error.get_message(), ")");
  }
  return internal_error("cuDNN ", part_name(part), step, " failed for ", where, ": ",
                        error.get_message());
}

std::shared_ptr<feg::Tensor_attributes> add_input(feg::Graph& graph, const char* name, int64_t uid,
                                                  const std::vector<int64_t>& dims,
                                                  const std::vector<int64_t>& strides,
                                                  fe::DataType_t dtype) {
  return graph.tensor(feg::Tensor_attributes()
                          .set_name(name)
                          .set_uid(uid)
                          .set_dim(dims)
                          .set_stride(strides)
                          .set_data_type(dtype));
}

// Intermediate results keep y's shape and layout; virtual tensors stay in fp32 (the context's
// intermediate type), the last one becomes y.
void shape_like_y(const std::shared_ptr<feg::Tensor_attributes>& t, const ConvDesc& d) {
  t->set_dim(d.y_dims).set_stride(d.y_strides);
}

std::shared_ptr<feg::Tensor_attributes> add_conv(feg::Graph& graph, const ConvDesc& d,
                                                 fe::DataType_t io) {
  auto x = add_input(graph, "x", kUidX, d.x_dims, d.x_strides, io);
  // Groups need no attribute: cuDNN reads them from x's channels over w's second dim.
  auto w = add_input(graph, "w", kUidW, d.w_dims, d.w_strides, io);
  std::shared_ptr<feg::Tensor_attributes> out;
  if (!d.transposed) {
    out = graph.conv_fprop(x, w,
                           feg::Conv_fprop_attributes()
                               .set_name("conv")
                               .set_padding(d.padding)
                               .set_stride(d.stride)
                               .set_dilation(d.dilation)
                               .set_compute_data_type(fe::DataType_t::FLOAT));
  } else {
    // A transposed conv is the data gradient of the forward conv from y to x: x plays dy, y plays
    // dx, and PyTorch's [C_in, C_out/groups, k...] weight is that forward conv's [K, C/groups,
    // k...] filter as it stands. y's dims carry the output padding.
    out = graph.conv_dgrad(x, w,
                           feg::Conv_dgrad_attributes()
                               .set_name("conv")
                               .set_padding(d.padding)
                               .set_stride(d.stride)
                               .set_dilation(d.dilation)
                               .set_compute_data_type(fe::DataType_t::FLOAT));
  }
  shape_like_y(out, d);
  return out;
}

// Residual before bias, as in cuDNN's conv-bias-activation pattern (and PyTorch's use of it).
std::shared_ptr<feg::Tensor_attributes> add_epilogue(feg::Graph& graph, const ConvDesc& d,
                                                     fe::DataType_t io,
                                                     std::shared_ptr<feg::Tensor_attributes> out) {
  auto add = [](const char* name) {
    return feg::Pointwise_attributes()
        .set_name(name)
        .set_mode(fe::PointwiseMode_t::ADD)
        .set_compute_data_type(fe::DataType_t::FLOAT);
  };
  if (d.has_residual) {
    auto residual = add_input(graph, "residual", kUidResidual, d.y_dims, d.y_strides, io);
    out = graph.pointwise(out, residual, add("residual"));
    shape_like_y(out, d);
  }
  if (d.has_bias) {
    const int64_t c = d.y_dims[1];
    std::vector<int64_t> dims(d.y_dims.size(), 1), strides(d.y_dims.size(), 1);
    dims[1] = c;
    strides[0] = c;
    // The same memory either way (a 1-D bias); the strides say which layout to match.
    if (conv_channels_last(d.y_dims, d.y_strides)) std::fill(strides.begin() + 2, strides.end(), c);
    auto bias = add_input(graph, "bias", kUidBias, dims, strides, io);
    out = graph.pointwise(out, bias, add("bias"));
    shape_like_y(out, d);
  }
  if (d.activation == ConvActivation::kRelu) {
    out = graph.pointwise(out, feg::Pointwise_attributes()
                                   .set_name("relu")
                                   .set_mode(fe::PointwiseMode_t::RELU_FWD)
                                   .set_compute_data_type(fe::DataType_t::FLOAT));
    shape_like_y(out, d);
  }
  return out;
}

bool has_epilogue(const ConvDesc& d) {
  return d.has_bias || d.has_residual || d.activation != ConvActivation::kNone;
}

std::shared_ptr<feg::Graph> make_graph(const ConvDesc& d, int sm_version, GraphPart part) {
  const fe::DataType_t io = fe_dtype(d.dtype);
  auto graph = std::make_shared<feg::Graph>();
  graph->set_io_data_type(io)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  // Known here from kiln's own CUDA runtime, so the frontend need not load one to ask.
  graph->set_sm_version(sm_version);
  std::shared_ptr<feg::Tensor_attributes> out;
  if (part == GraphPart::kEpilogueOnly) {
    out = add_input(*graph, "conv_y", kUidConvOut, d.y_dims, d.y_strides, io);
  } else {
    out = add_conv(*graph, d, io);
  }
  if (part != GraphPart::kConvOnly) out = add_epilogue(*graph, d, io, out);
  out->set_output(true).set_data_type(io).set_name("y").set_uid(kUidY);
  return graph;
}

// One cuDNN graph and the plan chosen for it. Immutable once built, so several threads may
// execute it (the frontend copies the variant pack per call).
struct ConvGraph {
  GraphPart part = GraphPart::kFused;
  std::shared_ptr<feg::Graph> graph;
  std::vector<int64_t> uids;  // the variant pack's tensors, in the order execute() takes them
  int64_t plan_index = -1;    // the plan run() executes (0 in a restored graph)
  int64_t chosen = -1;        // the heuristic candidate it is (plan_indices())
  std::string plan_name;
  int64_t workspace_bytes = 0;

  void fill_pointers(const ConvArgs& args, void** ptrs) const {
    for (size_t i = 0; i < uids.size(); ++i) {
      switch (uids[i]) {
        case kUidX: ptrs[i] = const_cast<void*>(args.x); break;
        case kUidW: ptrs[i] = const_cast<void*>(args.w); break;
        case kUidBias: ptrs[i] = const_cast<void*>(args.bias); break;
        case kUidResidual: ptrs[i] = const_cast<void*>(args.residual); break;
        case kUidConvOut:  // the epilogue stage reads the conv's y and rewrites it in place
        case kUidY: ptrs[i] = args.y; break;
        default: ptrs[i] = nullptr; break;
      }
    }
  }
};

// Scratch tensors and workspace for timing, freed when done.
class ScratchBuffers {
 public:
  ~ScratchBuffers() {
    for (void* p : buffers_) (void)cudaFree(p);
  }
  Result<void*> allocate(size_t bytes, cudaStream_t stream) {
    void* p = nullptr;
    KILN_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 1)));
    buffers_.push_back(p);
    KILN_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));  // no NaNs or denormals in the timing
    return p;
  }

 private:
  std::vector<void*> buffers_;
};

class TimingEvents {
 public:
  ~TimingEvents() {
    if (start) (void)cudaEventDestroy(start);
    if (stop) (void)cudaEventDestroy(stop);
  }
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
};

Result<ConvArgs> scratch_args(const ConvDesc& d, size_t workspace, cudaStream_t stream,
                              ScratchBuffers& scratch) {
  const size_t elem = dtype_size(d.dtype);
  ConvArgs args;
  KILN_ASSIGN_OR_RETURN(args.x,
                        scratch.allocate(conv_span_elements(d.x_dims, d.x_strides) * elem, stream));
  KILN_ASSIGN_OR_RETURN(args.w,
                        scratch.allocate(conv_span_elements(d.w_dims, d.w_strides) * elem, stream));
  KILN_ASSIGN_OR_RETURN(args.y,
                        scratch.allocate(conv_span_elements(d.y_dims, d.y_strides) * elem, stream));
  if (d.has_bias) {
    KILN_ASSIGN_OR_RETURN(args.bias, scratch.allocate(d.y_dims[1] * elem, stream));
  }
  if (d.has_residual) {
    KILN_ASSIGN_OR_RETURN(
        args.residual, scratch.allocate(conv_span_elements(d.y_dims, d.y_strides) * elem, stream));
  }
  KILN_ASSIGN_OR_RETURN(args.workspace, scratch.allocate(workspace, stream));
  args.workspace_bytes = workspace;
  return args;
}

// Times the built plans on scratch buffers and returns the fastest one's index.
Result<int64_t> fastest_plan(const ConvDesc& d, const ConvGraph& g,
                             const std::vector<int64_t>& built, cudnnHandle_t handle,
                             cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  KILN_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) {
    return failed_precondition("cannot autotune a convolution while its stream is being captured");
  }
  int64_t max_workspace = 0;
  for (int64_t index : built) {
    int64_t ws = 0;
    if (g.graph->get_workspace_size_plan_at_index(index, ws).is_good()) {
      max_workspace = std::max(max_workspace, ws);
    }
  }
  ScratchBuffers scratch;
  KILN_ASSIGN_OR_RETURN(ConvArgs args, scratch_args(d, max_workspace, stream, scratch));
  std::vector<void*> ptrs(g.uids.size());
  g.fill_pointers(args, ptrs.data());
  const int n = static_cast<int>(ptrs.size());
  auto execute = [&](int64_t index) {
    return g.graph->execute_plan_at_index(handle, ptrs.data(), n, args.workspace, index).is_good();
  };

  TimingEvents events;
  KILN_CUDA_CHECK(cudaEventCreate(&events.start));
  KILN_CUDA_CHECK(cudaEventCreate(&events.stop));
  int64_t best = -1;
  float best_ms = std::numeric_limits<float>::max();
  for (int64_t index : built) {
    if (!execute(index)) continue;  // a plan that fails to run is skipped, not fatal
    KILN_CUDA_CHECK(cudaEventRecord(events.start, stream));
    bool ran = true;
    for (int i = 0; i < kTimedRuns && ran; ++i) ran = execute(index);
    KILN_CUDA_CHECK(cudaEventRecord(events.stop, stream));
    KILN_CUDA_CHECK(cudaEventSynchronize(events.stop));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
    if (ran && ms < best_ms) {
      best_ms = ms;
      best = index;
    }
  }
  if (best < 0)
    return unsupported("no cuDNN plan for ", describe_conv_desc(d), " ran while autotuning");
  return best;
}

// Builds the first `wanted` plans (in the heuristic's order) that fit the workspace limit.
Result<std::vector<int64_t>> build_candidates(feg::Graph& graph, const ConvDesc& d, GraphPart part,
                                              int64_t limit, int64_t wanted) {
  std::string last_failure;
  std::vector<int64_t> built = build_plans_within(graph, limit, wanted, &last_failure);
  if (built.empty()) {
    return unsupported("cuDNN has no engine for ", part_name(part), describe_conv_desc(d),
                       " ws<=", limit, " (none of the heuristic's ",
                       graph.get_execution_plan_count(), " configs built; last: ", last_failure,
                       ")");
  }
  return built;
}

// Builds one part's graph, asks the heuristics for engine configs, filters them, and keeps the
// first that builds (or, autotuning, the fastest of the first kMaxTunedPlans).
Status build_part(const ConvDesc& d, GraphPart part, int sm_version, size_t workspace_limit,
                  bool autotune, int64_t known, cudnnHandle_t handle, cudaStream_t stream,
                  ConvGraph& g) {
  g.part = part;
  g.graph = make_graph(d, sm_version, part);
  feg::Graph& graph = *g.graph;
  auto check = [&](fe::error_t error, std::string_view step) {
    return fe_status(error, step, d, part, workspace_limit);
  };
  KILN_RETURN_IF_ERROR(check(graph.validate(), "graph validation"));
  KILN_RETURN_IF_ERROR(check(graph.build_operation_graph(handle), "operation graph"));
  KILN_RETURN_IF_ERROR(
      check(graph.create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}),
            "heuristics query"));
  if (d.dtype == DType::kFloat32 && !d.allow_tf32 && part != GraphPart::kEpilogueOnly) {
    // cuDNN marks its TF32 engines for fp32 data as tensor-core ones (and those that convert
    // their inputs down); PyTorch filters the same notes when TF32 is off.
    graph.deselect_numeric_notes(
        {fe::NumericalNote_t::TENSOR_CORE, fe::NumericalNote_t::DOWN_CONVERT_INPUTS});
  }
  const int64_t limit = static_cast<int64_t>(
      std::min<size_t>(workspace_limit, static_cast<size_t>(std::numeric_limits<int64_t>::max())));
  graph.deselect_workspace_greater_than(limit);
  KILN_RETURN_IF_ERROR(check(graph.check_support(), "support check"));
  // A plan timed before (the timing cache's answer) is built alone when it still builds.
  std::vector<int64_t> built;
  std::string known_failure;
  if (known >= 0 && known < graph.get_execution_plan_count() &&
      build_plan_within(graph, known, limit, &known_failure)) {
    built.push_back(known);
    autotune = false;
  }
  if (built.empty()) {
    KILN_ASSIGN_OR_RETURN(built,
                          build_candidates(graph, d, part, limit, autotune ? kMaxTunedPlans : 1));
  }
  KILN_RETURN_IF_ERROR(check(graph.prepare_variant_pack_template(), "variant pack"));
  g.uids = graph.get_variant_pack_uids_sorted();
  g.plan_index = built.front();
  if (autotune && built.size() > 1) {
    KILN_ASSIGN_OR_RETURN(g.plan_index, fastest_plan(d, g, built, handle, stream), "autotuning");
  }
  g.chosen = g.plan_index;
  KILN_RETURN_IF_ERROR(check(graph.get_plan_name_at_index(g.plan_index, g.plan_name), "plan name"));
  return check(graph.get_workspace_size_plan_at_index(g.plan_index, g.workspace_bytes),
               "workspace query");
}

// The fused graph where cuDNN has an engine for it, else the conv and its epilogue apart.
Result<std::vector<ConvGraph>> build_stages(const ConvDesc& d, int sm_version,
                                            size_t workspace_limit, bool autotune,
                                            const std::vector<int64_t>& known, cudnnHandle_t handle,
                                            cudaStream_t stream) {
  std::vector<ConvGraph> stages(1);
  // A known split (two stages) skips the fused graph, which did not build when it was timed.
  Status fused = known.size() == 2
                     ? unsupported("the timing cache holds an unfused plan")
                     : build_part(d, GraphPart::kFused, sm_version, workspace_limit, autotune,
                                  known.size() == 1 ? known[0] : -1, handle, stream, stages[0]);
  if (fused.ok()) return stages;
  if (!has_epilogue(d) || fused.code() == StatusCode::kFailedPrecondition) return fused;
  stages.assign(2, ConvGraph());
  const bool split_known = known.size() == 2;
  Status split = build_part(d, GraphPart::kConvOnly, sm_version, workspace_limit, autotune,
                            split_known ? known[0] : -1, handle, stream, stages[0]);
  if (split.ok()) {
    split = build_part(d, GraphPart::kEpilogueOnly, sm_version, workspace_limit, autotune,
                       split_known ? known[1] : -1, handle, stream, stages[1]);
  }
  if (!split.ok()) {
    return Status(fused.code(), str_cat(fused.message(), "; unfused: ", split.message()));
  }
  return stages;
}

// ---- plans kept in the tactic cache ----

// The tensors run() feeds a part's graph, in execute()'s (sorted) order.
std::vector<int64_t> part_uids(const ConvDesc& d, GraphPart part) {
  std::vector<int64_t> uids = {kUidY};
  if (part != GraphPart::kEpilogueOnly) uids.insert(uids.end(), {kUidX, kUidW});
  if (part != GraphPart::kConvOnly) {
    if (d.has_bias) uids.push_back(kUidBias);
    if (d.has_residual) uids.push_back(kUidResidual);
  }
  if (part == GraphPart::kEpilogueOnly) uids.push_back(kUidConvOut);
  std::sort(uids.begin(), uids.end());
  return uids;
}

// The stages a cache kept for this desc: one fused graph, or the conv and its epilogue. The key
// names the problem; the checks here make sure run() can feed the plans within the limit and,
// given timed choices (`known`), that the kept plans are those.
Result<std::vector<ConvGraph>> restore_stages(const ConvDesc& d, const std::vector<uint8_t>& blob,
                                              size_t workspace_limit,
                                              const std::vector<int64_t>& known,
                                              cudnnHandle_t handle) {
  KILN_ASSIGN_OR_RETURN(std::vector<RestoredCudnnPlan> plans,
                        deserialize_cudnn_plans(blob, handle));
  if (plans.size() != 1 && !(plans.size() == 2 && has_epilogue(d))) {
    return invalid_argument("a cached convolution plan has ", plans.size(), " stages");
  }
  if (!known.empty() && known.size() != plans.size()) {
    return invalid_argument("the cached convolution plan is not the timed one");
  }
  std::vector<ConvGraph> stages(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    RestoredCudnnPlan& plan = plans[i];
    ConvGraph& g = stages[i];
    g.part = plans.size() == 1 ? GraphPart::kFused
                               : (i == 0 ? GraphPart::kConvOnly : GraphPart::kEpilogueOnly);
    if (plan.uids != part_uids(d, g.part)) {
      return invalid_argument("a cached ", part_name(g.part), "plan's tensors are not ",
                              describe_conv_desc(d), "'s");
    }
    if (plan.workspace_bytes < 0 || static_cast<uint64_t>(plan.workspace_bytes) > workspace_limit) {
      return invalid_argument("a cached convolution plan needs ", plan.workspace_bytes,
                              " workspace bytes, over the limit of ", workspace_limit);
    }
    if (!known.empty() && known[i] != plan.index) {
      return invalid_argument("the cached convolution plan is not the timed one");
    }
    g.graph = std::move(plan.graph);
    g.uids = std::move(plan.uids);
    g.plan_index = 0;
    g.chosen = plan.index;
    g.plan_name = std::move(plan.name);
    g.workspace_bytes = plan.workspace_bytes;
  }
  return stages;
}

// Keeps the built stages' plans under `key` where cuDNN can serialize them all.
void keep_stages(const std::vector<ConvGraph>& stages, TacticCache& cache, const std::string& key) {
  std::vector<CudnnPlanToKeep> keep;
  for (const ConvGraph& g : stages) keep.push_back({g.graph.get(), g.plan_index, g.plan_name});
  Result<std::vector<uint8_t>> blob = serialize_cudnn_plans(keep);
  if (blob.ok()) cache.store_blob(key, *blob);
}

Status check_pointer(std::string_view name, const void* p, bool wanted) {
  return wanted ? check_cudnn_pointer("convolution", name, p) : ok_status();
}

}  // namespace

// One cuDNN graph, or two run one after the other (the conv, then its epilogue in place on y).
struct ConvPlan::Graph {
  std::vector<ConvGraph> stages;
  int device = 0;
  bool restored = false;  // from the cache, not built
};

// A deferred create()'s outcome, set once by the worker.
struct ConvPlan::Pending {
  std::mutex mutex;
  std::condition_variable done_signal;
  bool done = false;
  Status status;
};

ConvPlan::~ConvPlan() = default;

Result<std::shared_ptr<const ConvPlan>> ConvPlan::create(const ConvDesc& desc,
                                                         size_t workspace_limit, bool autotune,
                                                         cudaStream_t stream,
                                                         const std::vector<int64_t>& known,
                                                         const PlanCacheSlot& cached) {
  std::shared_ptr<ConvPlan> plan(new ConvPlan());
  plan->desc_ = desc;
  KILN_RETURN_IF_ERROR(plan->build(workspace_limit, autotune, stream, known, cached));
  return std::shared_ptr<const ConvPlan>(std::move(plan));
}

std::shared_ptr<const ConvPlan> ConvPlan::create_deferred(int device, const ConvDesc& desc,
                                                          size_t workspace_limit, bool autotune,
                                                          cudaStream_t stream,
                                                          std::vector<int64_t> known,
                                                          PlanCacheSlot cached) {
  std::shared_ptr<ConvPlan> plan(new ConvPlan());
  plan->desc_ = desc;
  auto pending = std::make_shared<Pending>();
  plan->pending_ = pending;
  submit_plan_work(device, [plan, pending, workspace_limit, autotune, stream,
                            known = std::move(known), cached = std::move(cached)] {
    Status status = plan->build(workspace_limit, autotune, stream, known, cached);
    {
      std::lock_guard<std::mutex> lock(pending->mutex);
      pending->status = std::move(status);
      pending->done = true;
    }
    pending->done_signal.notify_all();
  });
  return plan;
}

Status ConvPlan::ready() const {
  if (!pending_) return ok_status();
  std::unique_lock<std::mutex> lock(pending_->mutex);
  pending_->done_signal.wait(lock, [this] { return pending_->done; });
  return pending_->status;
}

Status ConvPlan::build(size_t workspace_limit, bool autotune, cudaStream_t stream,
                       const std::vector<int64_t>& known, const PlanCacheSlot& cached) {
  const ConvDesc& desc = desc_;

  KILN_RETURN_IF_ERROR(validate_conv_desc(desc), "convolution ", describe_conv_desc(desc));
  KILN_RETURN_IF_ERROR(cudnn_available(), "convolution ", describe_conv_desc(desc));
  auto graph = std::make_unique<Graph>();
  int sm_version = 0;
  KILN_RETURN_IF_ERROR(current_device_sm(&graph->device, &sm_version), "convolution ",
                       describe_conv_desc(desc));
  KILN_RETURN_IF_ERROR(guard_cudnn_frontend("building", describe_conv_desc(desc), [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(cudnnHandle_t handle, cudnn_thread_handle(graph->device));
    KILN_RETURN_IF_ERROR(cudnn_set_stream(handle, stream));
    // The frontend resolves driver entry points lazily on its first execute; doing it here keeps
    // that out of a run() that may be under CUDA graph capture.
    (void)fe::detail::has_current_context();
    TacticCache* cache = cached.cache && cached.cache->keeps_blobs() ? cached.cache : nullptr;
    std::string cache_key;
    if (cache) {
      cache_key = cudnn_plan_cache_key(cached.key);
      // Autotuning without a known answer must time: a kept plan may be the heuristic's first.
      const std::vector<uint8_t> blob =
          autotune && known.empty() ? std::vector<uint8_t>() : cache->find_blob(cache_key);
      // A blob that does not restore (damaged, refused by cuDNN, not the timed plans) is
      // replaced by a build's.
      Result<std::vector<ConvGraph>> restored =
          blob.empty() ? Result<std::vector<ConvGraph>>(not_found("no cached plan"))
                       : restore_stages(desc, blob, workspace_limit, known, handle);
      if (restored.ok()) {
        graph->stages = std::move(*restored);
        graph->restored = true;
        return ok_status();
      }
    }
    KILN_ASSIGN_OR_RETURN(graph->stages, build_stages(desc, sm_version, workspace_limit, autotune,
                                                      known, handle, stream));
    if (cache) keep_stages(graph->stages, *cache, cache_key);
    return ok_status();
  }));
  for (const ConvGraph& stage : graph->stages) {
    workspace_bytes_ = std::max(workspace_bytes_, static_cast<size_t>(stage.workspace_bytes));
  }
  graph_ = std::move(graph);
  error_name_ = str_cat("convolution ", describe_ready());
  return ok_status();
}

Status ConvPlan::run(const ConvArgs& args, cudaStream_t stream) const {
  KILN_RETURN_IF_ERROR(ready());
  KILN_RETURN_IF_ERROR(check_pointer("x", args.x, true));
  KILN_RETURN_IF_ERROR(check_pointer("w", args.w, true));
  KILN_RETURN_IF_ERROR(check_pointer("y", args.y, true));
  KILN_RETURN_IF_ERROR(check_pointer("bias", args.bias, desc_.has_bias));
  KILN_RETURN_IF_ERROR(check_pointer("residual", args.residual, desc_.has_residual));
  if (workspace_bytes_ > 0 && (!args.workspace || args.workspace_bytes < workspace_bytes_)) {
    return invalid_argument("convolution ", describe(), " needs a workspace of ", workspace_bytes_,
                            " bytes; given ", args.workspace ? args.workspace_bytes : 0);
  }
  for (const ConvGraph& stage : graph_->stages) {
    void* ptrs[8];
    if (stage.uids.size() > std::size(ptrs)) {
      return internal_error("cuDNN convolution graph has ", stage.uids.size(), " tensors");
    }
    stage.fill_pointers(args, ptrs);
    KILN_RETURN_IF_ERROR(execute_cudnn_plan(*stage.graph, stage.plan_index, ptrs, stage.uids.size(),
                                            args.workspace, graph_->device, stream, error_name_));
  }
  return ok_status();
}

std::vector<int64_t> ConvPlan::plan_indices() const {
  (void)ready();
  std::vector<int64_t> out;
  if (graph_) {
    for (const ConvGraph& stage : graph_->stages) out.push_back(stage.chosen);
  }
  return out;
}

bool ConvPlan::restored() const {
  (void)ready();
  return graph_ && graph_->restored;
}

std::string conv_tactic_key(const ConvDesc& d, size_t workspace_limit) {
  return str_cat("conv cudnn ", fe::detail::get_backend_version(), " ", describe_conv_desc(d), " x",
                 shape_to_string(d.x_strides), " w", shape_to_string(d.w_strides), " y",
                 shape_to_string(d.y_strides), " tf32 ", int(d.allow_tf32), " ws", workspace_limit);
}

std::string ConvPlan::describe() const {
  (void)ready();
  return describe_ready();
}

std::string ConvPlan::describe_ready() const {
  std::string out = str_cat(describe_conv_desc(desc_), " ws=", workspace_bytes_, " plan=");
  if (!graph_) return out;
  for (size_t i = 0; i < graph_->stages.size(); ++i) {
    out += str_cat(i ? "+" : "", graph_->stages[i].plan_name);
  }
  if (graph_->stages.size() > 1) out += " (unfused)";
  return out;
}

}  // namespace kiln::cuda
