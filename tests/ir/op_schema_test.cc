#include "ir/op_schema.h"

#include <gtest/gtest.h>

#include "ir/schema_defaults.h"

namespace kiln::ir {
namespace {

TEST(OpSchemaTest, FindsOpsByEverySpelling) {
  for (const char* name : {"torch.ops.aten.add.Tensor", "aten.add.Tensor", "aten::add.Tensor"}) {
    auto key = find_op(name);
    ASSERT_TRUE(key.has_value()) << name;
    EXPECT_EQ(*key, OpKey::aten_add_Tensor);
  }
  EXPECT_EQ(find_op("aten::relu"), OpKey::aten_relu_default);
  EXPECT_EQ(find_op("_operator.mul"), OpKey::operator_mul_default);
  EXPECT_EQ(find_op("<built-in function getitem>"), OpKey::operator_getitem_default);
  EXPECT_FALSE(find_op("torch.ops.aten.not_an_op.default").has_value());
  EXPECT_FALSE(find_op("").has_value());
}

TEST(OpSchemaTest, SchemaDescribesArguments) {
  const OpSchema& add = op_schema(OpKey::aten_add_Tensor);
  EXPECT_EQ(op_name(OpKey::aten_add_Tensor), "aten.add.Tensor");
  ASSERT_EQ(add.args().size(), 3u);
  EXPECT_STREQ(add.args()[2].name, "alpha");
  EXPECT_TRUE(add.args()[2].kwarg_only);
  EXPECT_EQ(add.args()[2].base, BaseType::kScalar);
  EXPECT_TRUE(add.has_tag(kTagCore));
  EXPECT_TRUE(add.has_tag(kTagPointwise));
  EXPECT_TRUE(op_schema(OpKey::aten_view_default).has_tag(kTagView));
  EXPECT_FALSE(op_schema(OpKey::aten_clone_default).has_tag(kTagView));
  EXPECT_EQ(op_schema(OpKey::aten_max_pool2d_with_indices_default).returns().size(), 2u);
}

TEST(OpSchemaTest, EveryKeyHasItsOwnSchema) {
  const auto schemas = all_op_schemas();
  for (size_t i = 0; i < schemas.size(); ++i) {
    ASSERT_EQ(static_cast<size_t>(schemas[i].key), i);
    if (i > 0) {
      ASSERT_EQ(find_op(schemas[i].target), schemas[i].key) << schemas[i].target;
    }
  }
}

TEST(SchemaDefaultsTest, ReadsEveryDefaultInTheTable) {
  // Every default text of every op must be readable, or loading a program that omits it would fail.
  for (const OpSchema& schema : all_op_schemas()) {
    for (const ArgSchema& arg : schema.args()) {
      if (!arg.default_value) continue;
      auto value = default_argument(arg);
      EXPECT_TRUE(value.ok()) << schema.target << " " << arg.name << ": "
                              << value.status().message();
    }
  }
}

TEST(SchemaDefaultsTest, ExpandsSizedListsAndReadsEnums) {
  const OpSchema& pool = op_schema(OpKey::aten_max_pool2d_with_indices_default);
  auto dilation = default_argument(pool.args()[4]);  // int[2] dilation=1
  ASSERT_TRUE(dilation.ok());
  const auto& ints = std::get<std::vector<SymInt>>(*dilation);
  ASSERT_EQ(ints.size(), 2u);
  EXPECT_EQ(ints[0].constant, 1);
  EXPECT_EQ(ints[1].constant, 1);
  auto stride = default_argument(pool.args()[2]);  // int[2] stride=[]
  ASSERT_TRUE(stride.ok());
  EXPECT_TRUE(std::get<std::vector<SymInt>>(*stride).empty());
  ArgSchema required{"self", BaseType::kTensor, false, false, 0, false, false, nullptr};
  auto missing = default_argument(required);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'self' is required"), std::string::npos);
}

}  // namespace
}  // namespace kiln::ir
