#include "ir/shape_inference.h"

#include <algorithm>

#include "ir/graph.h"

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
          register_resize_inference, register_attention_inference, register_sorting_inference,
          register_spectral_inference}) {
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

bool takes_complex(OpKey op) {
  return op == OpKey::aten__fft_r2c_default || op == OpKey::aten__fft_c2r_default ||
         op == OpKey::aten__fft_c2c_default;
}

Status check_complex_values(const Node& node) {
  if (takes_complex(node.op)) return ok_status();
  auto complex = [](const Value* v) {
    return v && v->kind == ValueKind::kTensor && is_complex(v->dtype);
  };
  const std::vector<Value*> inputs = node.input_values();
  const bool reads = std::any_of(inputs.begin(), inputs.end(), complex);
  const bool makes = std::any_of(node.outputs.begin(), node.outputs.end(), complex);
  if (!reads && !makes) return ok_status();
  return unsupported(op_name(node.op), " (node '", node.name, "'): ",
                     reads && makes ? "reads and produces" : reads ? "reads" : "produces",
                     " complex64 values, which only the spectral ops (_fft_r2c, _fft_c2r, "
                     "_fft_c2c) take in kiln");
}

const OpFunctionTable& shape_inference_table() {
  return built().table;
}
const Status& shape_inference_status() {
  return built().status;
}

}  // namespace kiln::ir
