// The fused pointwise step: picks the flat kernel when every operand shares the outputs' dense
// layout (or is a single broadcast element), else the strided one.
#include <algorithm>

#include "cuda/kernel_module.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

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

// Strides of t seen at the output's rank and sizes (0 on broadcast dims).
Shape expanded_strides(const Tensor& t, const Shape& out_sizes) {
  Shape strides(out_sizes.size(), 0);
  const int64_t offset = static_cast<int64_t>(out_sizes.size()) - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) {
    strides[offset + d] = t.size(d) == 1 ? 0 : t.strides()[d];
  }
  return strides;
}

bool same_strides_where_sized(const Shape& a, const Shape& b, const Shape& sizes) {
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] != 1 && a[d] != b[d]) return false;
  }
  return true;
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

Result<std::unique_ptr<Step>> make_pointwise_step(const PointwiseGroup& group, int rank,
                                                  ModuleSource& module) {
  KILN_ASSIGN_OR_RETURN(std::string kernel, pointwise_kernel(module, group, rank));
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
      [kernel, inputs, outputs, channel, name](const Slots& slots, BindContext& ctx,
                                      size_t) -> Result<Launch> {
        const Tensor& out0 = slot_tensor(slots, outputs[0]);
        const Shape& sizes = out0.sizes();
        bool flat = is_dense(out0);
        for (const ir::Value* v : outputs) {
          const Tensor& t = slot_tensor(slots, v);
          if (t.sizes() != sizes) {
            return internal_error("pointwise step '", name, "': outputs of different shapes");
          }
          if (!same_strides_where_sized(t.strides(), out0.strides(), sizes)) flat = false;
        }
        std::vector<KTensor> args;
        for (size_t k = 0; k < inputs.size(); ++k) {
          const ir::Value* v = inputs[k];
          Tensor t = slot_tensor(slots, v);
          if (channel[k] && t.dim() == 1 && sizes.size() >= 2) {  // [C] -> [C, 1, ...]
            Shape csizes(sizes.size() - 1, 1), cstrides(sizes.size() - 1, 0);
            csizes[0] = t.size(0);
            cstrides[0] = t.strides()[0];
            t = t.view_as(csizes, cstrides, t.offset());
          }
          if (t.dim() > static_cast<int64_t>(sizes.size())) {
            return internal_error("pointwise step '", name, "': input ", v->name,
                                  " has more dims than the output");
          }
          const Shape strides = expanded_strides(t, sizes);
          if (t.numel() != 1 && !same_strides_where_sized(strides, out0.strides(), sizes)) {
            flat = false;
          }
          KILN_ASSIGN_OR_RETURN(KTensor kt, make_ktensor(t.view_as(sizes, strides, t.offset())));
          args.push_back(kt);
        }
        for (const ir::Value* v : outputs) {
          KILN_ASSIGN_OR_RETURN(KTensor k, make_ktensor(slot_tensor(slots, v)));
          args.push_back(k);
        }
        if (flat) {  // rank 0 marks a single broadcast element for the flat kernel
          for (size_t k = 0; k < inputs.size(); ++k) {
            if (slot_tensor(slots, inputs[k]).numel() == 1) args[k].rank = 0;
          }
        }
        KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernel + (flat ? "_flat" : "_nd")));
        const int64_t numel = shape_numel(sizes);
        const int64_t threads = 256;
        const int64_t blocks = std::min<int64_t>((numel + threads - 1) / threads, 132 * 32);
        return Launch([fn, args, numel, blocks](cudaStream_t stream) mutable -> Status {
          std::vector<void*> params;
          for (KTensor& k : args) params.push_back(&k);
          int64_t n = numel;
          params.push_back(&n);
          return launch_kernel(fn, dim3(static_cast<unsigned>(blocks)), dim3(256), 0, stream,
                               params.data());
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
