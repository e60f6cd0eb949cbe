// The fused pointwise step, and how each launch picks its group's kernel variant for the tensors
// bound now: packets where every operand is dense with the outputs' layout and aligned, the flat
// kernel where dense but not aligned, packets along rows where the innermost dim (in the output's
// memory order, after merging the dims every operand walks as one) is contiguous, the strided
// kernel otherwise.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"
#include "cuda/pointwise_expression.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

constexpr int64_t kThreads = 256;  // the kernels' __launch_bounds__
// At most this many blocks; the kernels' grid-stride loops cover the rest. 32 per SM of an H100
// is four or more waves of the 8 blocks of 256 an SM holds (the kernels use up to ~40
// registers), enough to keep every SM streaming to the end of a bandwidth-bound kernel without
// launching millions of short-lived blocks.
constexpr int64_t kMaxBlocks = 132 * 32;

// Whether t's elements fill its span of memory without gaps or overlap (any dim order).
bool is_dense(const Tensor& t) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of dims with size > 1
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) != 1) dims.push_back({t.strides()[d], t.size(d)});
  }
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) return false;
    expected *= size;
  }
  return true;
}

// Strides of t seen at the output's rank and sizes (0 on broadcast dims), or nullopt when t does
// not broadcast to them.
std::optional<Shape> expanded_strides(const Tensor& t, const Shape& out_sizes) {
  if (t.dim() > static_cast<int64_t>(out_sizes.size())) return std::nullopt;
  Shape strides(out_sizes.size(), 0);
  const int64_t offset = static_cast<int64_t>(out_sizes.size()) - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) == 1) continue;
    if (t.size(d) != out_sizes[offset + d]) return std::nullopt;
    strides[offset + d] = t.strides()[d];
  }
  return strides;
}

bool same_strides_where_sized(const Shape& a, const Shape& b, const Shape& sizes) {
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] != 1 && a[d] != b[d]) return false;
  }
  return true;
}

bool aligned_to_packet(const Tensor& t, int packet) {
  const uintptr_t bytes = static_cast<uintptr_t>(packet) * dtype_size(t.dtype());
  return reinterpret_cast<uintptr_t>(t.raw_data()) % bytes == 0;
}

// `operands` (inputs then outputs) all dense with the outputs' layout, except the inputs
// `single_element` marks: one element, broadcast.
Result<PointwiseLaunch> flat_launch(const std::vector<Tensor>& operands,
                                    const std::vector<bool>& single_element, int packet,
                                    int64_t numel) {
  PointwiseLaunch launch;
  launch.numel = numel;
  bool aligned = packet > 1;
  for (size_t k = 0; k < operands.size(); ++k) {
    KILN_ASSIGN_OR_RETURN(KTensor kt, make_ktensor(operands[k]));
    const bool single = k < single_element.size() && single_element[k];
    if (single) kt.rank = 0;  // the flat kernels read its element 0 for every element
    if (!single && !aligned_to_packet(operands[k], packet)) aligned = false;
    launch.args.push_back(kt);
  }
  launch.variant = aligned ? PointwiseVariant::kVector : PointwiseVariant::kFlat;
  launch.work_items = aligned ? (numel + packet - 1) / packet : numel;
  return launch;
}

// The rows walk of `operands` (inputs expanded to `sizes`, then outputs), or nullopt where some
// output's innermost dim is not contiguous or some input's neither contiguous nor broadcast.
std::optional<PointwiseLaunch> rows_launch(const std::vector<Tensor>& operands, size_t num_inputs,
                                           const Shape& sizes, const Shape& out_strides, int packet,
                                           int64_t numel) {
  if (numel > INT32_MAX) return std::nullopt;  // the kernel walks in 32 bits
  // Dims in the output's memory order (outermost first), so that a channels-last output's
  // contiguous channels are the rows.
  std::vector<size_t> order(sizes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return out_strides[a] > out_strides[b]; });
  Shape ordered_sizes;
  std::vector<Shape> ordered_strides(operands.size());
  for (size_t d : order) {
    ordered_sizes.push_back(sizes[d]);
    for (size_t k = 0; k < operands.size(); ++k) {
      ordered_strides[k].push_back(operands[k].strides()[d]);
    }
  }
  const kernel_lib::Walk walk = kernel_lib::coalesce(ordered_sizes, ordered_strides);
  if (walk.sizes.empty()) return std::nullopt;
  for (size_t k = 0; k < operands.size(); ++k) {
    const int64_t inner = walk.strides[k].back();
    if (inner != 1 && !(k < num_inputs && inner == 0)) return std::nullopt;
  }
  // The kernel indexes dims by constants of the group's rank (the outputs'): size-1 dims in front.
  const size_t pad = sizes.size() - walk.sizes.size();
  Shape walk_sizes(pad, 1);
  walk_sizes.insert(walk_sizes.end(), walk.sizes.begin(), walk.sizes.end());
  PointwiseLaunch launch;
  launch.variant = PointwiseVariant::kRows;
  launch.numel = numel;
  for (size_t k = 0; k < operands.size(); ++k) {
    Shape strides(pad, 0);
    strides.insert(strides.end(), walk.strides[k].begin(), walk.strides[k].end());
    launch.args.push_back(kernel_lib::view(operands[k].raw_data(), walk_sizes, strides));
  }
  const int64_t cols = walk.sizes.back();
  launch.work_items = numel / cols * ((cols + packet - 1) / packet);
  return launch;
}

std::string describe_group(const PointwiseGroup& group) {
  std::string ops;
  for (const ir::Node* n : group.nodes) {
    std::string_view name = ir::op_name(n->op);
    if (name.substr(0, 5) == "aten.") name.remove_prefix(5);
    ops += str_cat(ops.empty() ? "" : ", ", name);
  }
  std::string outs;
  for (const ir::Value* v : group.outputs) outs += str_cat(outs.empty() ? "" : ", ", v->name);
  return str_cat("pointwise[", ops, "] -> ", outs);
}

}  // namespace

std::string_view pointwise_variant_suffix(PointwiseVariant variant) {
  switch (variant) {
    case PointwiseVariant::kFlat: return "_flat";
    case PointwiseVariant::kVector: return "_vec";
    case PointwiseVariant::kRows: return "_rows";
    case PointwiseVariant::kStrided: return "_nd";
  }
  return "_nd";
}

Result<PointwiseLaunch> plan_pointwise_launch(const std::vector<Tensor>& inputs,
                                              const std::vector<Tensor>& outputs, int packet) {
  if (outputs.empty()) return internal_error("pointwise launch: no outputs");
  const Tensor& out0 = outputs[0];
  const Shape& sizes = out0.sizes();
  if (sizes.size() > static_cast<size_t>(kMaxKernelDims)) {
    return unsupported("pointwise launch: expected outputs of rank <= ", kMaxKernelDims, ", found ",
                       out0.description());
  }
  bool flat = is_dense(out0);
  for (const Tensor& t : outputs) {
    if (t.sizes() != sizes) {
      return internal_error("pointwise launch: expected outputs of one shape, found ",
                            out0.description(), " and ", t.description());
    }
    if (!same_strides_where_sized(t.strides(), out0.strides(), sizes)) flat = false;
  }
  std::vector<Tensor> operands;  // inputs seen at the outputs' sizes, then the outputs
  std::vector<bool> single;      // per input: a single element
  for (const Tensor& t : inputs) {
    single.push_back(t.numel() == 1);
    const std::optional<Shape> strides = expanded_strides(t, sizes);
    if (!strides) {
      return internal_error("pointwise launch: expected inputs that broadcast to the output ",
                            out0.description(), ", found ", t.description());
    }
    if (t.numel() != 1 && !same_strides_where_sized(*strides, out0.strides(), sizes)) {
      flat = false;
    }
    operands.push_back(t.view_as(sizes, *strides, t.offset()));
  }
  operands.insert(operands.end(), outputs.begin(), outputs.end());
  const int64_t numel = shape_numel(sizes);
  if (flat) return flat_launch(operands, single, packet, numel);
  if (packet > 1 && numel > 0) {
    if (auto rows = rows_launch(operands, inputs.size(), sizes, out0.strides(), packet, numel)) {
      return *std::move(rows);
    }
  }
  PointwiseLaunch launch;
  launch.numel = numel;
  launch.work_items = numel;
  for (const Tensor& t : operands) {
    KILN_ASSIGN_OR_RETURN(KTensor kt, make_ktensor(t));
    launch.args.push_back(kt);
  }
  return launch;
}

Status launch_pointwise(cudaKernel_t kernel, const PointwiseLaunch& launch, cudaStream_t stream) {
  std::vector<KTensor> args = launch.args;
  int64_t numel = launch.numel;
  std::vector<void*> params;
  for (KTensor& k : args) params.push_back(&k);
  params.push_back(&numel);
  const int64_t blocks = std::min((launch.work_items + kThreads - 1) / kThreads, kMaxBlocks);
  return launch_kernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream,
                       params.data());
}

Result<std::unique_ptr<Step>> make_batch_norm_stats_step(const ir::Node& node,
                                                         std::vector<const ir::Value*> stored,
                                                         ModuleSource& module) {
  const ir::Value* mean = tensor_arg(node, 3);
  const ir::Value* var = tensor_arg(node, 4);
  const double* eps_arg = node.args.size() > 6 ? std::get_if<double>(&node.args[6]) : nullptr;
  if (!mean || !var || !eps_arg || node.outputs.size() != 3) {
    return unsupported("batch norm '", node.name, "': bad arguments for its statistics");
  }
  const ir::Value* save_mean = node.outputs[1];
  const ir::Value* save_invstd = node.outputs[2];
  const std::string kernel =
      batch_norm_stats_kernel(module, mean->dtype, var->dtype, save_mean->dtype);
  const float eps = static_cast<float>(*eps_arg);
  const std::string name = node.name;
  auto step = std::make_unique<FunctionStep>(
      "pointwise", str_cat("batch norm statistics[", node.name, "]"),
      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
        const Tensor m = slot_tensor(slots, mean), v = slot_tensor(slots, var);
        const Tensor sm = slot_tensor(slots, save_mean), si = slot_tensor(slots, save_invstd);
        // A CPU export records empty statistics: nothing to write.
        if (sm.numel() == 0 && si.numel() == 0) return Launch([](cudaStream_t) {
          return ok_status();
        });
        int64_t channels = m.numel();
        for (const Tensor* t : {&v, &sm, &si}) {
          if (t->dim() != 1 || t->numel() != channels || m.dim() != 1) {
            return internal_error("batch norm '", name, "': statistics ", sm.description(), ", ",
                                  si.description(), " for running stats ", m.description(), ", ",
                                  v.description());
          }
        }
        KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernel));
        return Launch([=](cudaStream_t stream) mutable -> Status {
          KTensor km = kernel_lib::view(m.raw_data(), m.sizes(), m.strides());
          KTensor kv = kernel_lib::view(v.raw_data(), v.sizes(), v.strides());
          KTensor ksm = kernel_lib::view(sm.raw_data(), sm.sizes(), sm.strides());
          KTensor ksi = kernel_lib::view(si.raw_data(), si.sizes(), si.strides());
          float e = eps;
          void* args[] = {&km, &kv, &ksm, &ksi, &e, &channels};
          return launch_kernel(fn, dim3(kernel_lib::grid_for(channels, 256)), dim3(256), 0,
                               stream, args);
        });
      });
  step->reads = {mean->id, var->id};
  for (const ir::Value* v : stored) step->writes.push_back(v->id);
  step->name = name;
  return std::unique_ptr<Step>(std::move(step));
}

Result<std::unique_ptr<Step>> make_pointwise_step(const PointwiseGroup& group, int rank,
                                                  ModuleSource& module) {
  KILN_ASSIGN_OR_RETURN(std::string kernel, pointwise_kernel(module, group, rank));
  const int packet = pointwise_packet(group);
  std::vector<const ir::Value*> inputs = group.inputs, outputs = group.outputs;
  std::vector<bool> channel(inputs.size(), false);
  for (size_t k = 0; k < inputs.size(); ++k) {
    for (const ir::Node* n : group.nodes) {
      if (is_channel_operand(*n, inputs[k])) channel[k] = true;
    }
  }
  const std::string name = group.nodes.back()->name;
  auto step = std::make_unique<FunctionStep>(
      "pointwise", describe_group(group),
      [kernel, packet, inputs, outputs, channel, name](const Slots& slots, BindContext& ctx,
                                                       size_t) -> Result<Launch> {
        const size_t rank = slot_tensor(slots, outputs[0]).sizes().size();
        std::vector<Tensor> ins, outs;
        for (size_t k = 0; k < inputs.size(); ++k) {
          Tensor t = slot_tensor(slots, inputs[k]);
          if (channel[k] && t.dim() == 1 && rank >= 2) {  // [C] -> [C, 1, ...]
            Shape csizes(rank - 1, 1), cstrides(rank - 1, 0);
            csizes[0] = t.size(0);
            cstrides[0] = t.strides()[0];
            t = t.view_as(csizes, cstrides, t.offset());
          }
          ins.push_back(std::move(t));
        }
        for (const ir::Value* v : outputs) outs.push_back(slot_tensor(slots, v));
        KILN_ASSIGN_OR_RETURN(PointwiseLaunch launch, plan_pointwise_launch(ins, outs, packet),
                              "pointwise step '", name, "'");
        KILN_ASSIGN_OR_RETURN(
            cudaKernel_t fn, ctx.kernel(str_cat(kernel, pointwise_variant_suffix(launch.variant))));
        return Launch([fn, launch = std::move(launch)](cudaStream_t stream) -> Status {
          return launch_pointwise(fn, launch, stream);
        });
      });
  step->reads.clear();
  for (const ir::Value* v : inputs) step->reads.push_back(v->id);
  for (const ir::Value* v : outputs) step->writes.push_back(v->id);
  step->name = name;
  return std::unique_ptr<Step>(std::move(step));
}

const Tensor& slot_tensor(const Slots& slots, const ir::Value* value) {
  return slots[value->id].tensor;
}

Result<Tensor> scratch_tensor(BindContext& ctx, size_t step, size_t which, const Tensor& like,
                              const Shape& strides) {
  auto storage = Storage::borrow(ctx.scratch(step, which), like.nbytes(), nullptr);
  return Tensor::from_storage(std::move(storage), like.dtype(), like.sizes(), strides, 0);
}

Status check_device_tensor(const Tensor& t, const char* what, const std::string& step) {
  if (!t.has_data()) {
    return internal_error("step '", step, "': ", what, " has no device memory bound");
  }
  return ok_status();
}

}  // namespace kiln::cuda
