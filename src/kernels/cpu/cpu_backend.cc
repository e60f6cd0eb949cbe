#include "kernels/cpu/cpu_backend.h"

#include "ir/shape_inference.h"

namespace kiln::cpu {
namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend() {
    for (auto* reg :
         {register_elementwise_kernels, register_reduction_kernels, register_linalg_kernels,
          register_normalization_kernels, register_pooling_kernels, register_shape_op_kernels,
          register_indexing_kernels, register_factory_kernels, register_resize_kernels,
          register_grid_sampler_kernels, register_random_kernels, register_attention_kernels,
          register_sorting_kernels, register_distance_kernels, register_spectral_kernels}) {
      Status s = reg(kernels_);
      if (!s.ok() && status_.ok()) status_ = std::move(s);
    }
  }

  std::string_view name() const override { return "cpu"; }

  bool supports(const ir::Node& node) const override {
    if (!ir::shape_inference_table().find(node.op)) return false;
    // Ops without tensor outputs (symbolic arithmetic, assertions) are fully done by inference.
    return kernels_.find(node.op) != nullptr || !has_tensor_output(node);
  }

  Status execute(ir::OpContext& ctx) const override {
    ir::OpFn kernel = kernels_.find(ctx.node().op);
    if (!kernel) {
      if (!has_tensor_output(ctx.node())) return ok_status();
      return unsupported("the cpu backend has no kernel for ", ir::op_name(ctx.node().op));
    }
    return kernel(ctx);
  }

  const Status& status() const { return status_; }

 private:
  static bool has_tensor_output(const ir::Node& node) {
    for (const ir::Value* v : node.outputs) {
      if (v && v->kind == ir::ValueKind::kTensor) return true;
    }
    return false;
  }

  ir::OpFunctionTable kernels_;
  Status status_;
};

const CpuBackend& instance() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace

const Backend& cpu_backend() {
  return instance();
}
const Status& cpu_backend_status() {
  return instance().status();
}

}  // namespace kiln::cpu
