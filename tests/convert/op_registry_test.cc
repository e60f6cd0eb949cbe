#include "convert/op_registry.h"

#include <gtest/gtest.h>

#include "ir/schema_defaults.h"
#include "ir/sym_expr.h"
#include "kernels/cpu/cpu_backend.h"

namespace kiln::convert {
namespace {

// Nodes built by hand: leading arguments as given, the rest the schema's defaults.
class NodeFactory {
 public:
  ir::Value* tensor(std::vector<ir::SymDim> shape, DType dtype = DType::kFloat32) {
    ir::Value* v = graph_.add_value(str_cat("v", graph_.num_values()), ir::ValueKind::kTensor);
    v->dtype = dtype;
    v->shape = std::move(shape);
    v->has_recorded_meta = true;
    return v;
  }
  ir::Node* node(const std::string& target, std::vector<ir::Argument> args,
                 std::vector<ir::Value*> outputs) {
    auto key = ir::find_op(target);
    EXPECT_TRUE(key.has_value()) << target;
    ir::Node* n = graph_.add_node(str_cat("n", graph_.nodes().size()), *key);
    const auto schema_args = n->schema().args();
    for (size_t i = args.size(); i < schema_args.size(); ++i) {
      auto value = ir::default_argument(schema_args[i]);
      EXPECT_TRUE(value.ok()) << target << " argument " << schema_args[i].name;
      args.push_back(value.ok() ? *value : ir::Argument(ir::NoneArg{}));
    }
    n->args = std::move(args);
    n->outputs = std::move(outputs);
    return n;
  }

 private:
  ir::Graph graph_;
};

ir::SymDim d(int64_t v) {
  return ir::SymDim{v, nullptr};
}
ir::SymDim sym(const std::string& name, int64_t hint) {
  return ir::SymDim{hint, ir::sym_symbol(name)};
}

TEST(OpRegistryTest, CpuRegistryCoversTheCpuBackend) {
  ASSERT_TRUE(cpu_registry_status().ok()) << cpu_registry_status().message();
  const OpRegistry& registry = cpu_registry();
  EXPECT_TRUE(registry.has_implementation(ir::OpKey::aten_relu_default, "cpu"));
  EXPECT_TRUE(registry.has_implementation(ir::OpKey::aten_sym_size_int, "cpu"));
  EXPECT_TRUE(registry.has_implementation(ir::OpKey::operator_mul_default, "cpu"));
  EXPECT_TRUE(registry.has_implementation(ir::OpKey::aten_sort_default, "cpu"));
  // nonzero's output shape depends on the data: the reference backend's executor counts it.
  EXPECT_TRUE(registry.has_implementation(ir::OpKey::aten_nonzero_default, "cpu"));
  EXPECT_FALSE(registry.has_implementation(ir::OpKey::aten_argwhere_default, "cpu"));
  EXPECT_FALSE(registry.has_implementation(ir::OpKey::aten_relu_default, "cuda"));
  for (const OpImplementation& impl : registry.implementations(ir::OpKey::aten_relu_default)) {
    EXPECT_TRUE(impl.supports_dynamic_shapes);
    EXPECT_EQ(impl.priority, Priority::kStandard);
  }
}

TEST(OpRegistryTest, CpuValidatorsAcceptAndReject) {
  const OpRegistry& registry = cpu_registry();
  NodeFactory f;
  ir::Value* x = f.tensor({sym("s0", 4), d(3)});
  ir::Node* relu = f.node("aten.relu.default", {x}, {f.tensor({sym("s0", 4), d(3)})});
  Selection ok = registry.select(*relu, "cpu", false);
  ASSERT_TRUE(ok.ok()) << ok.reason();
  EXPECT_EQ(ok.implementation->op, ir::OpKey::aten_relu_default);
  EXPECT_TRUE(has_dynamic_shapes(*relu));

  // An unbacked output size: nonzero's alone is the reference backend's to run.
  ir::Node* nonzero =
      f.node("aten.nonzero.default", {x}, {f.tensor({sym("u0", 4), d(2)}, DType::kInt64)});
  EXPECT_TRUE(registry.select(*nonzero, "cpu", false).ok());
  ir::Node* argwhere =
      f.node("aten.argwhere.default", {x}, {f.tensor({sym("u1", 4), d(2)}, DType::kInt64)});
  Selection missing = registry.select(*argwhere, "cpu", false);
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(missing.reason(), "no cpu implementation");
  EXPECT_EQ(registry.select(*relu, "cuda", false).reason(), "no cuda implementation");

  // native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)
  ir::Value* c = f.tensor({d(3)});
  ir::Node* bn = f.node("aten.native_batch_norm.default", {x, c, c, c, c, true, 0.1, 1e-5},
                        {f.tensor({d(4), d(3)}), f.tensor({d(3)}), f.tensor({d(3)})});
  EXPECT_EQ(registry.select(*bn, "cpu", false).reason(), "batch norm in training mode");
  bn->args[5] = false;
  EXPECT_TRUE(registry.select(*bn, "cpu", false).ok());
}

// Arguments PyTorch takes and kiln's kernels do not make inference answer Unsupported; support
// analysis then declines the node for every backend (before, the program's load failed).
TEST(OpRegistryTest, InferenceUnsupportedDeclinesTheNode) {
  const OpRegistry& registry = cpu_registry();
  NodeFactory f;
  // convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
  auto ints = [](int64_t v) { return std::vector<ir::SymInt>{{v, nullptr}}; };
  auto conv = [&](DType dtype) {
    return f.node("aten.convolution.default",
                  {f.tensor({d(1), d(1), d(4)}, dtype), f.tensor({d(1), d(1), d(4)}, dtype),
                   ir::NoneArg{}, ints(2), ints(1), ints(2), true, ints(1), int64_t{1}},
                  {f.tensor({d(1), d(1), d(12)}, dtype)});
  };
  Selection declined = registry.select(*conv(DType::kInt64), "cpu", false);
  EXPECT_FALSE(declined.ok());
  EXPECT_NE(declined.reason().find("a transposed convolution of int64"), std::string::npos)
      << declined.reason();
  Selection floating = registry.select(*conv(DType::kFloat32), "cpu", false);
  EXPECT_TRUE(floating.ok()) << floating.reason();
}

TEST(OpRegistryTest, SharedChecks) {
  NodeFactory f;
  ir::Value* x = f.tensor({d(4), d(3)});
  ir::Node* dropout = f.node("aten.dropout.default", {x, 0.5, true}, {f.tensor({d(4), d(3)})});
  EXPECT_EQ(check_deterministic(*dropout).reason(), "dropout_p != 0 in training mode");
  dropout->args[2] = false;
  EXPECT_TRUE(check_deterministic(*dropout).accepted());
  dropout->args[2] = true;
  dropout->args[1] = 0.0;
  EXPECT_TRUE(check_deterministic(*dropout).accepted());

  ir::Node* rand_like = f.node("aten.rand_like.default", {x}, {f.tensor({d(4), d(3)})});
  EXPECT_EQ(check_deterministic(*rand_like).reason(), "random op");
  ir::Node* bernoulli = f.node("aten.bernoulli.p", {x, 0.5}, {f.tensor({d(4), d(3)})});
  EXPECT_EQ(check_deterministic(*bernoulli).reason(), "random op");

  ir::Node* nonzero =
      f.node("aten.nonzero.default", {x}, {f.tensor({sym("u0", 5), d(2)}, DType::kInt64)});
  EXPECT_EQ(check_static_output_shape(*nonzero).reason(), "data-dependent output shape");
  ir::Value* indices = f.tensor({d(2)}, DType::kInt64);
  ir::Node* gather =
      f.node("aten.index.Tensor", {x, std::vector<ir::Value*>{indices}}, {f.tensor({d(2), d(3)})});
  EXPECT_TRUE(check_static_output_shape(*gather).accepted());
  ir::Value* mask = f.tensor({d(4)}, DType::kBool);
  ir::Node* masked = f.node("aten.index.Tensor", {x, std::vector<ir::Value*>{mask}},
                            {f.tensor({sym("u1", 2), d(3)})});
  EXPECT_FALSE(check_static_output_shape(*masked).accepted());

  ir::Value* x64 = f.tensor({d(4)}, DType::kFloat64);
  ir::Node* relu64 = f.node("aten.relu.default", {x64}, {f.tensor({d(4)}, DType::kFloat64)});
  const DType floats[] = {DType::kFloat32, DType::kFloat16};
  EXPECT_EQ(check_value_types(*relu64, floats).reason(), "float64 input");
  EXPECT_FALSE(has_dynamic_shapes(*relu64));
}

TEST(OpRegistryTest, PriorityDynamicShapesAndDuplicates) {
  OpRegistry registry;
  auto reject_wide = [](const ir::Node& node) {
    return node.input_values()[0]->shape.back().value > 8 ? Verdict::reject("last dim > 8")
                                                          : Verdict::accept();
  };
  ASSERT_TRUE(registry
                  .add({.op = ir::OpKey::aten_relu_default,
                        .backend = "cuda",
                        .priority = Priority::kHigh,
                        .supports_dynamic_shapes = false,
                        .validator = reject_wide})
                  .ok());
  ASSERT_TRUE(registry
                  .add({.op = ir::OpKey::aten_relu_default,
                        .backend = "cuda",
                        .priority = Priority::kLow,
                        .supports_dynamic_shapes = true})
                  .ok());
  Status duplicate = registry.add({.op = ir::OpKey::aten_relu_default,
                                   .backend = "cuda",
                                   .priority = Priority::kHigh,
                                   .supports_dynamic_shapes = true});
  EXPECT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.message().find("already has a high-priority cuda implementation"),
            std::string::npos)
      << duplicate.message();
  EXPECT_FALSE(registry.add({.op = ir::OpKey::aten_relu_default, .backend = ""}).ok());
  EXPECT_FALSE(registry.add({.op = ir::OpKey::kInvalid, .backend = "cuda"}).ok());

  NodeFactory f;
  auto relu = [&](ir::SymDim last) {
    return f.node("aten.relu.default", {f.tensor({d(2), last})}, {f.tensor({d(2), last})});
  };
  Selection narrow = registry.select(*relu(d(4)), "cuda", false);
  ASSERT_TRUE(narrow.ok());
  EXPECT_EQ(narrow.implementation->priority, Priority::kHigh);
  Selection wide = registry.select(*relu(d(16)), "cuda", false);
  ASSERT_TRUE(wide.ok());
  EXPECT_EQ(wide.implementation->priority, Priority::kLow);
  Selection dynamic = registry.select(*relu(sym("s0", 4)), "cuda", false);
  ASSERT_TRUE(dynamic.ok());
  EXPECT_EQ(dynamic.implementation->priority, Priority::kLow);
  Selection assumed = registry.select(*relu(sym("s0", 4)), "cuda", true);
  ASSERT_TRUE(assumed.ok());
  EXPECT_EQ(assumed.implementation->priority, Priority::kHigh);

  OpRegistry static_only;
  ASSERT_TRUE(static_only
                  .add({.op = ir::OpKey::aten_relu_default,
                        .backend = "cuda",
                        .priority = Priority::kStandard,
                        .supports_dynamic_shapes = false,
                        .validator = reject_wide})
                  .ok());
  EXPECT_EQ(static_only.select(*relu(sym("s0", 4)), "cuda", false).reason(), "dynamic shapes");
  EXPECT_EQ(static_only.select(*relu(d(16)), "cuda", false).reason(), "last dim > 8");
}

}  // namespace
}  // namespace kiln::convert
