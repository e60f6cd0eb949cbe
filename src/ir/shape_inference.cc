#include "ir/shape_inference.h"

namespace kiln::ir {

namespace {

struct BuiltTable {
  OpFunctionTable table;
  Status status;
  BuiltTable() {
    for (auto* reg :
         {register_symbolic_inference, register_elementwise_inference, register_reduction_inference,
          register_linalg_inference, register_normalization_inference, register_pooling_inference,
          register_shape_op_inference, register_indexing_inference, register_factory_inference,
          register_resize_inference, register_attention_inference, register_sorting_inference}) {
      Status s = reg(table);
      if (!s.ok() && status.ok()) status = std::move(s);
    }
  }
};

const BuiltTable& built() {
  static const BuiltTable table;
  return table;
}

}  // namespace

const OpFunctionTable& shape_inference_table() {
  return built().table;
}
const Status& shape_inference_status() {
  return built().status;
}

}  // namespace kiln::ir
