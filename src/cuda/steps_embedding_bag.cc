// The embedding_bag family of library ops (steps.h, LibraryFamily): aten._embedding_bag, one
// kernel of kernel_library_embedding_bag.h per mode, weight dtype and index dtype, writing the
// outputs eager's CUDA kernel gives. A program recorded on the CPU has other shapes for them
// (offset2bag [0] for a plain sum, bag_size [bags], max_indices [bags] for sum and mean) and
// other values; such nodes are declined.
#include <algorithm>
#include <iterator>
#include <optional>

#include "cuda/kernel_library_embedding_bag.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

bool is_none(const ir::Node& node, size_t i) {
  return i >= node.args.size() || std::holds_alternative<ir::NoneArg>(node.args[i]);
}

// _embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
// include_last_offset, padding_idx): the constants the kernel needs (defaults where the program
// left them out), or why they cannot be read ahead of time.
struct BagArgs {
  EmbeddingBagParams params;
  const ir::Value* per_sample_weights = nullptr;
  std::string problem;
};
BagArgs bag_args(const ir::Node& node) {
  BagArgs a;
  if (!is_none(node, 4)) {
    const int64_t* mode = std::get_if<int64_t>(&node.args[4]);
    if (!mode) {
      a.problem = "mode known only at run time";
      return a;
    }
    if (*mode < 0 || *mode > 2) {
      a.problem = str_cat("mode ", *mode, " (expected 0 sum, 1 mean or 2 max)");
      return a;
    }
    a.params.mode = static_cast<EmbeddingBagMode>(*mode);
  }
  a.per_sample_weights = value_arg(node, 6);
  if (!is_none(node, 7)) {
    const bool* last = std::get_if<bool>(&node.args[7]);
    if (!last) {
      a.problem = "include_last_offset known only at run time";
      return a;
    }
    a.params.include_last_offset = *last;
  }
  if (!is_none(node, 8)) {
    const int64_t* padding = std::get_if<int64_t>(&node.args[8]);
    if (!padding) {
      a.problem = "padding_idx known only at run time";
      return a;
    }
    a.params.padding_idx = *padding;
  }
  return a;
}

// Output i where the program describes it (unused outputs may carry no shape).
const ir::Value* described_output(const ir::Node& node, size_t i) {
  const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
  return v && v->kind == ir::ValueKind::kTensor && v->has_recorded_meta ? v : nullptr;
}

// Whether the recorded dim is known to differ from `expected` (two constants that differ, or a
// rank other than 1).
bool differs(const ir::Value* v, const ir::SymDim& expected) {
  if (v->shape.size() != 1) return true;
  return v->shape[0].is_static() && expected.is_static() && v->shape[0].value != expected.value;
}

// Why the outputs the program records are not eager's CUDA form, or "".
std::string cpu_form_problem(const ir::Node& node, const ir::Value* indices,
                             const ir::Value* offsets, EmbeddingBagMode mode) {
  if (const ir::Value* o2b = described_output(node, 1); o2b && differs(o2b, indices->shape[0])) {
    return "offset2bag recorded without an element per index (eager's CPU form); kiln's CUDA "
           "kernel gives eager CUDA's";
  }
  if (const ir::Value* sizes = described_output(node, 2);
      sizes && differs(sizes, offsets->shape[0])) {
    return "bag_size recorded with an element per bag (eager's CPU form for "
           "include_last_offset); kiln's CUDA kernel gives eager CUDA's, one per offset";
  }
  if (const ir::Value* arg = described_output(node, 3); arg && mode != EmbeddingBagMode::kMax) {
    if (arg->shape.size() != 1 || !arg->shape[0].is_static() || arg->shape[0].value != 0) {
      return "max_indices recorded with an element per bag for a sum or mean (eager's CPU "
             "form); kiln's CUDA kernel gives eager CUDA's, none";
    }
  }
  return "";
}

bool takes(OpKey op) { return op == OpKey::aten__embedding_bag_default; }

Verdict verdict(const ir::Node& node) {
  const ir::Value* weight = value_arg(node, 0);
  const ir::Value* indices = value_arg(node, 1);
  const ir::Value* offsets = value_arg(node, 2);
  if (!weight || !indices || !offsets) {
    return Verdict::reject("expected weight, indices and offsets tensors");
  }
  if (std::find(std::begin(kFloatTypes), std::end(kFloatTypes), weight->dtype) ==
      std::end(kFloatTypes)) {
    return Verdict::reject(str_cat(dtype_name(weight->dtype), " weight"));
  }
  const DType index = indices->dtype;
  if (index != DType::kInt32 && index != DType::kInt64) {
    return Verdict::reject(str_cat(dtype_name(index), " indices"));
  }
  // Eager promotes mixed index dtypes to int64 while its meta function records the indices'
  // dtype for offset2bag, bag_size and max_indices: the program disagrees with eager's result.
  if (offsets->dtype != index) {
    return Verdict::reject(str_cat(dtype_name(offsets->dtype), " offsets with ",
                                   dtype_name(index), " indices"));
  }
  if (weight->shape.size() != 2 || indices->shape.size() != 1 || offsets->shape.size() != 1) {
    return Verdict::reject("expected a 2-D weight and 1-D indices and offsets");
  }
  const BagArgs a = bag_args(node);
  if (!a.problem.empty()) return Verdict::reject(a.problem);
  if (a.per_sample_weights &&
      (a.params.mode != EmbeddingBagMode::kSum || a.per_sample_weights->dtype != weight->dtype)) {
    return Verdict::reject("per_sample_weights other than weight's dtype with mode sum");
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const ir::Value* v = described_output(node, i);
    if (v && v->dtype != (i == 0 ? weight->dtype : index)) {
      return Verdict::reject(str_cat("output ", i, " recorded in ", dtype_name(v->dtype)));
    }
  }
  if (std::string problem = cpu_form_problem(node, indices, offsets, a.params.mode);
      !problem.empty()) {
    return Verdict::reject(problem);
  }
  return Verdict::accept();
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots,
                                   ModuleSource& module) {
  if (Verdict v = verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  const ir::Value* weight = value_arg(node, 0);
  const ir::Value* indices = value_arg(node, 1);
  const ir::Value* offsets = value_arg(node, 2);
  const BagArgs a = bag_args(node);
  const ir::Value* psw = a.per_sample_weights;
  const EmbeddingBagParams params = a.params;
  // Outputs with buffers (a reader or a program output); the kernel skips the others.
  auto stored = [&](size_t i) -> const ir::Value* {
    const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
    return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v
                                                                                      : nullptr;
  };
  const ir::Value* outs[4] = {stored(0), stored(1), stored(2), stored(3)};
  const std::string kernel = embedding_bag_kernel(module, params.mode, weight->dtype,
                                                  indices->dtype);
  auto step = std::make_unique<FunctionStep>(
      "embedding_bag", str_cat("embedding_bag[", ir::op_name(node.op), "] -> ",
                               node.outputs[0]->name),
      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
        const Tensor w = slot_tensor(slots, weight), i = slot_tensor(slots, indices);
        const Tensor o = slot_tensor(slots, offsets);
        const std::optional<Tensor> s =
            psw ? std::optional<Tensor>(slot_tensor(slots, psw)) : std::nullopt;
        std::optional<Tensor> y[4];
        for (int k = 0; k < 4; ++k) {
          if (outs[k]) y[k] = slot_tensor(slots, outs[k]);
        }
        return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t stream) {
          const EmbeddingBagOutputs out{y[0] ? &*y[0] : nullptr, y[1] ? &*y[1] : nullptr,
                                        y[2] ? &*y[2] : nullptr, y[3] ? &*y[3] : nullptr};
          return launch_embedding_bag(fn, w, i, o, s ? &*s : nullptr, out, params, stream);
        });
      });
  step->reads = {weight->id, indices->id, offsets->id};
  if (psw) step->reads.push_back(psw->id);
  for (const ir::Value* v : outs) {
    if (v) step->writes.push_back(v->id);
  }
  if (step->writes.empty()) {
    return unsupported("embedding_bag '", node.name, "': no output has a buffer");
  }
  step->name = node.name;
  return step;
}

}  // namespace

const LibraryFamily& embedding_bag_family() {
  static const LibraryFamily family{"embedding bag", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
