// Fused attention on cuDNN's graph API: one SDPA node (inference: no softmax statistics written),
// q, k, v, bias and o as the graph's only tensors, fp32 intermediates and compute.
#include "cuda/attention.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iterator>
#include <limits>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_runtime.h"

namespace kiln::cuda {
namespace {

// Tensor uids in the cuDNN graph; the variant pack is ordered by them.
constexpr int64_t kUidQ = 1;
constexpr int64_t kUidK = 2;
constexpr int64_t kUidV = 3;
constexpr int64_t kUidBias = 4;
constexpr int64_t kUidO = 5;

// Head dims cuDNN's fp16/bf16 flash engines take on every supported architecture (sm_80 and
// newer, cuDNN 9.0 and newer).
constexpr int64_t kMaxHeadDim = 128;

std::string strides_str(const std::vector<int64_t>& v) {
  std::string out = "(";
  for (size_t i = 0; i < v.size(); ++i) out += str_cat(i ? "," : "", v[i]);
  return out + ")";
}

Status check_strides(std::string_view name, const std::vector<int64_t>& strides) {
  if (strides.size() != 4) {
    return invalid_argument("attention ", name, ": expected 4 strides, found ", strides.size());
  }
  for (int64_t s : strides) {
    if (s < 0)
      return invalid_argument("attention ", name, ": negative stride in ", strides_str(strides));
  }
  if (strides[3] != 1) {
    return unsupported("attention ", name, " strides ", strides_str(strides),
                       ": cuDNN's fused attention reads rows of unit stride");
  }
  return ok_status();
}

Status fe_check(fe::error_t error, std::string_view step, const AttentionDesc& d) {
  if (error.is_good()) return ok_status();
  if (cudnn_means_unsupported(error)) {
    return unsupported("cuDNN has no fused attention engine for ", describe_attention(d), " (",
                       step, ": ", error.get_message(), ")");
  }
  return internal_error("cuDNN ", step, " failed for ", describe_attention(d), ": ",
                        error.get_message());
}

std::shared_ptr<feg::Tensor_attributes> add_tensor(feg::Graph& graph, const char* name, int64_t uid,
                                                   std::vector<int64_t> dims,
                                                   const std::vector<int64_t>& strides) {
  return graph.tensor(feg::Tensor_attributes()
                          .set_name(name)
                          .set_uid(uid)
                          .set_dim(std::move(dims))
                          .set_stride(strides));
}

std::shared_ptr<feg::Graph> make_graph(const AttentionDesc& d, int sm_version) {
  auto graph = std::make_shared<feg::Graph>();
  graph->set_io_data_type(fe_dtype(d.dtype))
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  graph->set_sm_version(sm_version);
  auto q = add_tensor(*graph, "q", kUidQ, {d.batch, d.heads, d.lq, d.e}, d.q_strides);
  auto k = add_tensor(*graph, "k", kUidK, {d.batch, d.heads, d.lk, d.e}, d.k_strides);
  auto v = add_tensor(*graph, "v", kUidV, {d.batch, d.heads, d.lk, d.ev}, d.v_strides);
  feg::SDPA_attributes options;
  options.set_name("sdpa").set_generate_stats(false).set_attn_scale(d.scale);
  if (d.causal) options.set_causal_mask(true);
  if (d.has_bias) {
    options.set_bias(add_tensor(*graph, "bias", kUidBias, d.bias_dims, d.bias_strides));
  }
  auto outputs = graph->sdpa(q, k, v, std::move(options));
  outputs[0]
      ->set_output(true)
      .set_name("o")
      .set_uid(kUidO)
      .set_dim({d.batch, d.heads, d.lq, d.ev})
      .set_stride(d.o_strides);
  return graph;
}

// The SDPA graph with its one plan, built or restored.
struct SdpaGraph {
  std::shared_ptr<feg::Graph> graph;
  std::vector<int64_t> uids;  // the variant pack's tensors, in the order execute() takes them
  int64_t plan_index = -1;    // the plan run() executes (0 in a restored graph)
  std::string plan_name;
  int64_t workspace_bytes = 0;
};

int64_t workspace_limit_i64(size_t workspace_limit) {
  return static_cast<int64_t>(
      std::min<size_t>(workspace_limit, static_cast<size_t>(std::numeric_limits<int64_t>::max())));
}

// The graph and the heuristic's first plan that builds within the workspace limit.
Result<SdpaGraph> build_sdpa(const AttentionDesc& desc, int sm_version, size_t workspace_limit,
                             cudnnHandle_t handle) {
  SdpaGraph g;
  g.graph = make_graph(desc, sm_version);
  feg::Graph& graph = *g.graph;
  KILN_RETURN_IF_ERROR(fe_check(graph.validate(), "graph validation", desc));
  KILN_RETURN_IF_ERROR(fe_check(graph.build_operation_graph(handle), "operation graph", desc));
  KILN_RETURN_IF_ERROR(
      fe_check(graph.create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}),
               "heuristics query", desc));
  const int64_t limit = workspace_limit_i64(workspace_limit);
  graph.deselect_workspace_greater_than(limit);
  KILN_RETURN_IF_ERROR(fe_check(graph.check_support(), "support check", desc));
  std::string last_failure = "no candidates";
  const std::vector<int64_t> built = build_plans_within(graph, limit, 1, &last_failure);
  if (built.empty()) {
    return unsupported("cuDNN built none of its ", graph.get_execution_plan_count(),
                       " fused attention plans for ", describe_attention(desc),
                       " within a workspace of ", workspace_limit, " bytes (last: ", last_failure,
                       ")");
  }
  g.plan_index = built.front();
  KILN_RETURN_IF_ERROR(
      fe_check(graph.get_workspace_size_plan_at_index(g.plan_index, g.workspace_bytes),
               "workspace query", desc));
  KILN_RETURN_IF_ERROR(fe_check(graph.prepare_variant_pack_template(), "variant pack", desc));
  g.uids = graph.get_variant_pack_uids_sorted();
  KILN_RETURN_IF_ERROR(
      fe_check(graph.get_plan_name_at_index(g.plan_index, g.plan_name), "plan name", desc));
  return g;
}

// The plan a cache kept for this desc. The key names the problem; the checks here only make sure
// run() can feed the plan (its tensors are this desc's) within the limit.
Result<SdpaGraph> restore_sdpa(const AttentionDesc& desc, const std::vector<uint8_t>& blob,
                               size_t workspace_limit, cudnnHandle_t handle) {
  KILN_ASSIGN_OR_RETURN(std::vector<RestoredCudnnPlan> plans,
                        deserialize_cudnn_plans(blob, handle));
  if (plans.size() != 1) {
    return invalid_argument("a cached attention plan has ", plans.size(), " stages, not 1");
  }
  RestoredCudnnPlan& plan = plans.front();
  std::vector<int64_t> expected = {kUidQ, kUidK, kUidV, kUidO};
  if (desc.has_bias) expected.push_back(kUidBias);
  std::sort(expected.begin(), expected.end());
  if (plan.uids != expected) {
    return invalid_argument("a cached attention plan's tensors are not ", describe_attention(desc),
                            "'s");
  }
  if (plan.workspace_bytes > workspace_limit_i64(workspace_limit)) {
    return invalid_argument("a cached attention plan needs ", plan.workspace_bytes,
                            " workspace bytes, over the limit of ", workspace_limit);
  }
  SdpaGraph g;
  g.graph = std::move(plan.graph);
  g.uids = std::move(plan.uids);
  g.plan_index = 0;
  g.plan_name = std::move(plan.name);
  g.workspace_bytes = plan.workspace_bytes;
  return g;
}

}  // namespace

std::string describe_attention(const AttentionDesc& d) {
  std::string out = str_cat("sdpa ", d.batch, "x", d.heads, "x", d.lq, "x", d.lk, " e", d.e);
  if (d.ev != d.e) out += str_cat("/", d.ev);
  out += str_cat(" ", dtype_name(d.dtype));
  if (d.causal) out += " causal";
  if (d.has_bias) {
    out += " bias[";
    for (size_t i = 0; i < d.bias_dims.size(); ++i) out += str_cat(i ? "x" : "", d.bias_dims[i]);
    out += "]";
  }
  return out;
}

std::string attention_tactic_key(const AttentionDesc& d, size_t workspace_limit) {
  // The scale in hex: the plan holds it as a value, so only the same float may share a plan.
  char scale[32];
  std::snprintf(scale, sizeof(scale), "%a", static_cast<double>(d.scale));
  std::string out =
      str_cat(describe_attention(d), " q", strides_str(d.q_strides), " k", strides_str(d.k_strides),
              " v", strides_str(d.v_strides), " o", strides_str(d.o_strides));
  if (d.has_bias) out += str_cat(" bias", strides_str(d.bias_strides));
  return str_cat(out, " scale ", scale, " ws", workspace_limit);
}

Status fused_attention_eligible(const AttentionDesc& d) {
  if (d.dtype != DType::kFloat16 && d.dtype != DType::kBFloat16) {
    return unsupported("cuDNN's fused attention runs fp16 and bf16, not ", dtype_name(d.dtype));
  }
  if (d.batch <= 0 || d.heads <= 0 || d.lq <= 0 || d.lk <= 0) {
    return unsupported("attention with an empty dim (", describe_attention(d), ")");
  }
  if (d.e % 8 != 0 || d.ev % 8 != 0 || d.e > kMaxHeadDim || d.ev > kMaxHeadDim) {
    return unsupported("cuDNN's fused attention takes head dims that are multiples of 8 up to ",
                       kMaxHeadDim, "; found ", d.e, " and ", d.ev);
  }
  KILN_RETURN_IF_ERROR(check_strides("q", d.q_strides));
  KILN_RETURN_IF_ERROR(check_strides("k", d.k_strides));
  KILN_RETURN_IF_ERROR(check_strides("v", d.v_strides));
  KILN_RETURN_IF_ERROR(check_strides("o", d.o_strides));
  if (d.has_bias) {
    KILN_RETURN_IF_ERROR(check_strides("bias", d.bias_strides));
    const std::vector<int64_t>& b = d.bias_dims;
    if (b.size() != 4 || (b[0] != 1 && b[0] != d.batch) || (b[1] != 1 && b[1] != d.heads) ||
        b[2] != d.lq || b[3] != d.lk) {
      return invalid_argument("attention bias dims ", strides_str(b), ": expected [", d.batch,
                              " or 1, ", d.heads, " or 1, ", d.lq, ", ", d.lk, "]");
    }
  }
  return ok_status();
}

struct AttentionPlan::Graph {
  SdpaGraph sdpa;
  int device = 0;
  bool restored = false;   // from the cache, not built
  std::string error_name;  // describe(), made once for run()'s errors
};

AttentionPlan::~AttentionPlan() = default;

Result<std::shared_ptr<const AttentionPlan>> AttentionPlan::create(const AttentionDesc& desc,
                                                                   size_t workspace_limit,
                                                                   cudaStream_t stream,
                                                                   const PlanCacheSlot& cached) {
  KILN_RETURN_IF_ERROR(fused_attention_eligible(desc));
  KILN_RETURN_IF_ERROR(cudnn_available(), describe_attention(desc));
  auto g = std::make_unique<Graph>();
  int sm_version = 0;
  KILN_RETURN_IF_ERROR(current_device_sm(&g->device, &sm_version), describe_attention(desc));
  KILN_RETURN_IF_ERROR(guard_cudnn_frontend("building", describe_attention(desc), [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(cudnnHandle_t handle, cudnn_thread_handle(g->device));
    KILN_RETURN_IF_ERROR(cudnn_set_stream(handle, stream));
    (void)fe::detail::has_current_context();  // resolve driver entry points outside any capture
    TacticCache* cache = cached.cache && cached.cache->keeps_blobs() ? cached.cache : nullptr;
    std::string cache_key;
    if (cache) {
      cache_key = cudnn_plan_cache_key(cached.key);
      const std::vector<uint8_t> blob = cache->find_blob(cache_key);
      // A blob that does not restore (damaged, or refused by cuDNN) is replaced by a build's.
      Result<SdpaGraph> restored = blob.empty() ? Result<SdpaGraph>(not_found("no cached plan"))
                                                : restore_sdpa(desc, blob, workspace_limit, handle);
      if (restored.ok()) {
        g->sdpa = std::move(*restored);
        g->restored = true;
        return ok_status();
      }
    }
    KILN_ASSIGN_OR_RETURN(g->sdpa, build_sdpa(desc, sm_version, workspace_limit, handle));
    if (cache) {
      Result<std::vector<uint8_t>> blob =
          serialize_cudnn_plans({{g->sdpa.graph.get(), g->sdpa.plan_index, g->sdpa.plan_name}});
      if (blob.ok()) cache->store_blob(cache_key, *blob);
    }
    return ok_status();
  }));
  std::shared_ptr<AttentionPlan> plan(new AttentionPlan());
  plan->desc_ = desc;
  plan->workspace_bytes_ = static_cast<size_t>(g->sdpa.workspace_bytes);
  plan->graph_ = std::move(g);
  plan->graph_->error_name = plan->describe();
  return std::shared_ptr<const AttentionPlan>(std::move(plan));
}

Status AttentionPlan::run(const AttentionArgs& args, cudaStream_t stream) const {
  KILN_RETURN_IF_ERROR(check_cudnn_pointer("attention", "q", args.q));
  KILN_RETURN_IF_ERROR(check_cudnn_pointer("attention", "k", args.k));
  KILN_RETURN_IF_ERROR(check_cudnn_pointer("attention", "v", args.v));
  KILN_RETURN_IF_ERROR(check_cudnn_pointer("attention", "o", args.o));
  if (desc_.has_bias) KILN_RETURN_IF_ERROR(check_cudnn_pointer("attention", "bias", args.bias));
  if (workspace_bytes_ > 0 && (!args.workspace || args.workspace_bytes < workspace_bytes_)) {
    return invalid_argument(describe(), " needs a workspace of ", workspace_bytes_,
                            " bytes; given ", args.workspace ? args.workspace_bytes : 0);
  }
  const SdpaGraph& sdpa = graph_->sdpa;
  void* ptrs[5];
  if (sdpa.uids.size() > std::size(ptrs)) {
    return internal_error("cuDNN attention graph has ", sdpa.uids.size(), " tensors");
  }
  for (size_t i = 0; i < sdpa.uids.size(); ++i) {
    switch (sdpa.uids[i]) {
      case kUidQ: ptrs[i] = const_cast<void*>(args.q); break;
      case kUidK: ptrs[i] = const_cast<void*>(args.k); break;
      case kUidV: ptrs[i] = const_cast<void*>(args.v); break;
      case kUidBias: ptrs[i] = const_cast<void*>(args.bias); break;
      case kUidO: ptrs[i] = args.o; break;
      default:
        return internal_error("cuDNN attention graph has an unknown tensor uid ", sdpa.uids[i]);
    }
  }
  return execute_cudnn_plan(*sdpa.graph, sdpa.plan_index, ptrs, sdpa.uids.size(), args.workspace,
                            graph_->device, stream, graph_->error_name);
}

bool AttentionPlan::restored() const {
  return graph_ && graph_->restored;
}

std::string AttentionPlan::describe() const {
  return str_cat(describe_attention(desc_), " ws=", workspace_bytes_,
                 " plan=", graph_ ? graph_->sdpa.plan_name : "");
}

}  // namespace kiln::cuda
