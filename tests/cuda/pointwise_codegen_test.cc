// The generated pointwise kernels: every variant in the module, NVRTC compiling it for the H100
// here (no GPU needed), which variant a launch picks for given tensors (host only), and on a GPU
// the packet variants (_vec, _rows) giving the same bits as the scalar ones (_flat, _nd) on odd
// sizes, misaligned views, broadcasts and mixed dtypes.
#include "cuda/pointwise_codegen.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <variant>

#include "cuda/kernel_library_support.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using kltest::DeviceTensor;
using passes::testing::ProgramBuilder;

// A program of pointwise nodes and the group of all of them (reading the graph inputs, storing
// the graph outputs), as the planner would fuse it.
struct Chain {
  std::shared_ptr<ir::Program> program;
  PointwiseGroup group;
  int rank = 0;  // the first output's
};

Chain chain(ProgramBuilder& b) {
  Chain c;
  c.program = b.finish();
  for (const ir::Node& n : c.program->graph.nodes()) c.group.nodes.push_back(&n);
  for (const ir::GraphInput& in : c.program->graph.inputs()) c.group.inputs.push_back(in.value);
  for (const ir::Value* v : c.program->graph.outputs()) c.group.outputs.push_back(v);
  c.rank = static_cast<int>(c.group.outputs[0]->shape.size());
  return c;
}

// a + b.
Chain add(DType dtype, const Shape& a, const Shape& b) {
  ProgramBuilder p;
  p.output(p.node("add", "aten.add.Tensor", {p.input("a", dtype, a), p.input("b", dtype, b)}));
  return chain(p);
}
// a * b.
Chain mul(DType dtype, const Shape& a, const Shape& b) {
  ProgramBuilder p;
  p.output(p.node("mul", "aten.mul.Tensor", {p.input("a", dtype, a), p.input("b", dtype, b)}));
  return chain(p);
}
Chain gelu(DType dtype, const Shape& shape) {
  ProgramBuilder p;
  p.output(p.node("gelu", "aten.gelu.default", {p.input("x", dtype, shape)}));
  return chain(p);
}
// where(c, x, y) for a bool c: the output has the promoted type of x and y.
Chain where(DType x, DType y, const Shape& shape) {
  ProgramBuilder p;
  ir::Value* c = p.input("c", DType::kBool, shape);
  p.output(p.node("where", "aten.where.self", {c, p.input("x", x, shape), p.input("y", y, shape)}));
  return chain(p);
}
// a > b -> bool.
Chain greater(DType dtype, const Shape& shape) {
  ProgramBuilder p;
  p.output(
      p.node("gt", "aten.gt.Tensor", {p.input("a", dtype, shape), p.input("b", dtype, shape)}));
  return chain(p);
}
// y = x * 2 and y > 0, both stored.
Chain scale_and_sign(DType dtype, const Shape& shape) {
  ProgramBuilder p;
  ir::Value* y = p.node("scale", "aten.mul.Tensor", {p.input("x", dtype, shape), 2.0});
  p.output(y);
  p.output(p.node("positive", "aten.gt.Scalar", {y, int64_t{0}}));
  return chain(p);
}
Chain logical_and(const Shape& shape) {
  ProgramBuilder p;
  p.output(p.node("and", "aten.logical_and.default",
                  {p.input("a", DType::kBool, shape), p.input("b", DType::kBool, shape)}));
  return chain(p);
}

// One node `target` whose arguments are graph inputs (In) of `shape` and constants, in order.
struct In {
  DType dtype;
};
using ArgSpec = std::variant<In, ir::Argument>;
Chain one_node(const std::string& target, const std::vector<ArgSpec>& specs,
               const Shape& shape = {4, 33}) {
  ProgramBuilder p;
  std::vector<ir::Argument> args;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (const In* in = std::get_if<In>(&specs[i])) {
      args.push_back(p.input(str_cat("in", i), in->dtype, shape));
    } else {
      args.push_back(std::get<ir::Argument>(specs[i]));
    }
  }
  p.output(p.node("op", target, std::move(args)));
  return chain(p);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// --- generated source -------------------------------------------------------------------------

TEST(PointwiseCodegenTest, PacketIsSixteenBytesOfTheWidestOperand) {
  EXPECT_EQ(pointwise_packet(add(DType::kFloat16, {64}, {64}).group), 8);
  EXPECT_EQ(pointwise_packet(add(DType::kBFloat16, {64}, {64}).group), 8);
  EXPECT_EQ(pointwise_packet(gelu(DType::kFloat32, {64}).group), 4);
  EXPECT_EQ(pointwise_packet(where(DType::kFloat16, DType::kFloat16, {64}).group), 8);
  EXPECT_EQ(pointwise_packet(where(DType::kFloat32, DType::kFloat16, {64}).group), 4);
  EXPECT_EQ(pointwise_packet(greater(DType::kInt64, {64}).group), 2);
  EXPECT_EQ(pointwise_packet(greater(DType::kInt32, {64}).group), 4);
  EXPECT_EQ(pointwise_packet(logical_and({64}).group), 16);
}

TEST(PointwiseCodegenTest, ModuleHoldsEveryVariantComputingTheSameStatements) {
  Chain c = gelu(DType::kFloat16, {4, 64});
  ModuleSource module;
  auto name = pointwise_kernel(module, c.group, c.rank);
  ASSERT_TRUE(name.ok()) << name.status().to_string();
  const std::string text = module.text();
  for (std::string_view suffix : {"_flat(", "_vec(", "_rows(", "_nd("}) {
    EXPECT_EQ(count(text, str_cat(*name, suffix)), 1u) << suffix << "\n" << text;
  }
  // Halves move in packets of 8 (16 bytes), and each of the four kernels evaluates the GELU.
  EXPECT_NE(text.find("kiln_pw_packet<kiln_half, 8>"), std::string::npos) << text;
  EXPECT_EQ(count(text, "erff("), 4u) << text;
  // The same group again adds nothing; another group shares the packet helpers.
  EXPECT_EQ(*pointwise_kernel(module, c.group, c.rank), *name);
  EXPECT_EQ(module.text(), text);
  Chain other = add(DType::kFloat32, {4, 64}, {64});
  ASSERT_TRUE(pointwise_kernel(module, other.group, other.rank).ok());
  EXPECT_EQ(count(module.text(), "union kiln_pw_packet"), 1u);
}

TEST(PointwiseCodegenTest, OperandsOfEveryWidthGetTheirOwnAccessSize) {
  // int64 compare to bool: packets of 2, so int64s move as 16 bytes and bools as 2.
  Chain c = greater(DType::kInt64, {5, 7});
  ModuleSource module;
  ASSERT_TRUE(pointwise_kernel(module, c.group, c.rank).ok());
  EXPECT_NE(module.text().find("kiln_pw_load<i64, 2>"), std::string::npos) << module.text();
  EXPECT_NE(module.text().find("kiln_pw_store<bool, 2>"), std::string::npos) << module.text();
  // bool condition, float and half values: packets of 4 (bools 4 bytes, halves 8).
  Chain w = where(DType::kFloat32, DType::kFloat16, {33});
  ASSERT_TRUE(pointwise_kernel(module, w.group, w.rank).ok());
  EXPECT_NE(module.text().find("kiln_pw_load<bool, 4>"), std::string::npos);
  EXPECT_NE(module.text().find("kiln_pw_load<kiln_half, 4>"), std::string::npos);
  EXPECT_NE(module.text().find("kiln_pw_store<float, 4>"), std::string::npos);
}

// Each group's module compiles for sm_90 with NVRTC, and its packets stay in registers: no
// local-memory arrays in the PTX (an array indexed by a runtime lane would put one there).
TEST(PointwiseCodegenTest, GeneratedModulesCompileForSm90WithPacketsInRegisters) {
  struct Group {
    std::string what;
    Chain chain;
  };
  std::vector<Group> groups;
  groups.push_back({"fp16 add", add(DType::kFloat16, {8, 197, 768}, {8, 197, 768})});
  groups.push_back({"fp16 bias add", add(DType::kFloat16, {8, 197, 768}, {768})});
  groups.push_back({"bf16 mul", mul(DType::kBFloat16, {3, 5}, {3, 5})});
  groups.push_back({"fp32 gelu", gelu(DType::kFloat32, {2, 3, 4})});
  groups.push_back({"bool/float where", where(DType::kFloat32, DType::kFloat32, {2, 16})});
  groups.push_back({"bool/half/float where", where(DType::kFloat16, DType::kFloat32, {7})});
  groups.push_back({"int64 compare to bool", greater(DType::kInt64, {4, 9})});
  groups.push_back({"int32 compare to bool", greater(DType::kInt32, {4, 9})});
  groups.push_back({"two outputs", scale_and_sign(DType::kFloat16, {2, 3, 8})});
  groups.push_back({"bool and", logical_and({5, 5})});
  for (const Group& g : groups) {
    SCOPED_TRACE(g.what);
    ModuleSource module;
    auto name = pointwise_kernel(module, g.chain.group, g.chain.rank);
    ASSERT_TRUE(name.ok()) << name.status().to_string();
    auto compiled = compile_cuda_source(module.text(), "sm_90", true);
    ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
    EXPECT_GT(compiled->cubin.size(), 1000u);
    EXPECT_NE(compiled->ptx.find(str_cat(*name, "_vec")), std::string::npos);
    EXPECT_EQ(compiled->ptx.find("__local_depot"), std::string::npos)
        << "a kernel keeps an array in local memory:\n"
        << compiled->ptx;
  }
}

// The ops a GPU conformance run found declined, each over `d` (integer dtypes: the ops that take
// one), with numbers, None bounds and rounding modes where the schema has them.
std::vector<std::pair<std::string, Chain>> op_chains(DType d) {
  const bool fp = is_floating(d);
  std::vector<std::pair<std::string, Chain>> chains;
  auto add_chain = [&](const std::string& target, std::vector<ArgSpec> args) {
    chains.emplace_back(str_cat(target, " ", chains.size()), one_node(target, args));
  };
  for (const char* unary : {"acos", "asin", "atan", "acosh", "asinh", "atanh", "cosh", "sinh",
                            "tan", "log10", "isinf"}) {
    add_chain(str_cat("aten.", unary, ".default"), {In{d}});
  }
  const ir::Argument none = ir::NoneArg{};
  add_chain("aten.atan2.default", {In{d}, In{d}});
  add_chain("aten.copy.default", {In{d}, In{DType::kFloat32}});  // copy_'s functional form
  add_chain("aten.clamp.Tensor", {In{d}, In{d}, In{d}});
  add_chain("aten.clamp.Tensor", {In{d}, In{d}, none});
  add_chain("aten.clamp.Tensor", {In{d}, none, In{d}});
  const ir::Argument divisor = fp ? ir::Argument(-1.5) : ir::Argument(int64_t{-3});
  for (const char* op : {"fmod", "remainder"}) {
    add_chain(str_cat("aten.", op, ".Scalar"), {In{d}, divisor});
    add_chain(str_cat("aten.", op, ".Scalar"), {In{d}, 2.5});  // integers: a float result
  }
  for (const ir::Argument& mode :
       {ir::Argument(std::string("floor")), ir::Argument(std::string("trunc")), none}) {
    add_chain("aten.div.Scalar_mode", {In{d}, divisor, mode});
    add_chain("aten.div.Tensor_mode", {In{d}, int64_t{7}, mode});
    add_chain("aten.div.Scalar_mode", {In{d}, fp ? ir::Argument(0.3) : ir::Argument(2.5), mode});
  }
  if (!fp) return chains;
  for (const char* op : {"fmod", "remainder"}) {
    add_chain(str_cat("aten.", op, ".Tensor"), {In{d}, In{d}});
    add_chain(str_cat("aten.", op, ".Scalar"), {In{d}, 0.0});
  }
  for (const ir::Argument& mode :
       {ir::Argument(std::string("floor")), ir::Argument(std::string("trunc")), none}) {
    add_chain("aten.div.Tensor_mode", {In{d}, In{d}, mode});
    add_chain("aten.div.Scalar_mode", {In{d}, 0.0, mode});
  }
  add_chain("aten.elu.default", {In{d}});
  add_chain("aten.elu.default", {In{d}, 0.5, 1.5, 2.0});
  add_chain("aten.hardsigmoid.default", {In{d}});
  return chains;
}

// Every op's kernels, for each dtype in one module, compile for sm_90 with NVRTC.
TEST(PointwiseCodegenTest, MathAndDivisionOpsCompileForSm90) {
  for (DType d :
       {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kInt32}) {
    SCOPED_TRACE(dtype_name(d));
    ModuleSource module;
    for (const auto& [what, c] : op_chains(d)) {
      EXPECT_EQ(pointwise_unsupported_reason(*c.group.nodes[0]), "") << what;
      auto name = pointwise_kernel(module, c.group, c.rank);
      ASSERT_TRUE(name.ok()) << what << ": " << name.status().to_string();
    }
    auto compiled = compile_cuda_source(module.text(), "sm_90", true);
    ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  }
}

std::string kernel_text(const Chain& c) {
  ModuleSource module;
  auto name = pointwise_kernel(module, c.group, c.rank);
  EXPECT_TRUE(name.ok()) << name.status().to_string();
  return module.text();
}

// Eager's fmod, remainder and atan2 cast a number to the tensor's dtype first: 0.1 is
// 0.0999755859375 for halves.
TEST(PointwiseCodegenTest, NumbersRoundToTheDtypeOfFmod) {
  const std::string half = kernel_text(one_node("aten.fmod.Scalar", {In{DType::kFloat16}, 0.1}));
  EXPECT_NE(half.find("fmodf(x0, ((float)0.0999755859375))"), std::string::npos) << half;
  const std::string f32 = kernel_text(one_node("aten.fmod.Scalar", {In{DType::kFloat32}, 0.1}));
  EXPECT_NE(f32.find("fmodf(x0, ((float)0.10000000149011612))"), std::string::npos) << f32;
}

// With a number divisor eager's rounding divisions multiply by its reciprocal in float, the
// number not rounded to a 16-bit dtype first.
TEST(PointwiseCodegenTest, DivisionByANumberMultipliesByItsReciprocal) {
  const ir::Argument trunc = std::string("trunc");
  const std::string text =
      kernel_text(one_node("aten.div.Scalar_mode", {In{DType::kFloat32}, 3.0, trunc}));
  EXPECT_NE(text.find("truncf(x0 * ((float)0.3333333432674408))"), std::string::npos) << text;
  const std::string half =
      kernel_text(one_node("aten.div.Tensor_mode", {In{DType::kFloat16}, 0.3, ir::NoneArg{}}));
  EXPECT_NE(half.find("(x0 * ((float)3.3333332538604736))"), std::string::npos) << half;
}

TEST(PointwiseCodegenTest, HardsigmoidKeepsNaN) {
  const std::string text = kernel_text(one_node("aten.hardsigmoid.default", {In{DType::kFloat32}}));
  EXPECT_NE(text.find("(x0) != (x0) ? (x0)"), std::string::npos) << text;
}

// Integer division by zero has no defined result on CUDA (eager raises on the CPU): a zero
// number, a tensor divisor, or a number the dtype would wrap is declined with the reason.
TEST(PointwiseCodegenTest, DeclinesIntegerDivisionThatMayBeByZero) {
  const DType i = DType::kInt64;
  const ir::Argument floor = std::string("floor"), trunc = std::string("trunc");
  struct Case {
    Chain chain;
    std::string reason;
  };
  std::vector<Case> cases;
  cases.push_back({one_node("aten.fmod.Tensor", {In{i}, In{i}}), "by a tensor"});
  cases.push_back({one_node("aten.remainder.Tensor", {In{i}, In{i}}), "by a tensor"});
  cases.push_back({one_node("aten.div.Tensor_mode", {In{i}, In{i}, trunc}), "by a tensor"});
  cases.push_back({one_node("aten.remainder.Scalar", {In{i}, int64_t{0}}), "by zero"});
  cases.push_back({one_node("aten.div.Scalar_mode", {In{i}, int64_t{0}, floor}), "by zero"});
  cases.push_back({one_node("aten.fmod.Scalar", {In{DType::kInt8}, int64_t{300}}), "fit"});
  for (const Case& c : cases) {
    const std::string reason = pointwise_unsupported_reason(*c.chain.group.nodes[0]);
    EXPECT_NE(reason.find(c.reason), std::string::npos)
        << ir::op_name(c.chain.group.nodes[0]->op) << ": " << reason;
  }
}

// --- choosing the variant (host only: no memory is read) ----------------------------------------

// A tensor at a made-up 256-byte aligned device address, `offset` elements in.
Tensor at_address(DType dtype, Shape sizes, Shape strides = {}, int64_t offset = 0) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  auto storage =
      Storage::borrow(reinterpret_cast<void*>(uintptr_t{1} << 40), size_t{1} << 36, nullptr);
  return std::move(
             Tensor::from_storage(storage, dtype, std::move(sizes), std::move(strides), offset))
      .value();
}

PointwiseLaunch plan(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                     int packet) {
  auto launch = plan_pointwise_launch(inputs, outputs, packet);
  EXPECT_TRUE(launch.ok()) << launch.status().to_string();
  return launch.ok() ? *launch : PointwiseLaunch{};
}

Shape sizes_of(const KTensor& t) {
  return Shape(t.sizes, t.sizes + t.rank);
}
Shape strides_of(const KTensor& t) {
  return Shape(t.strides, t.strides + t.rank);
}

TEST(PointwiseLaunchTest, DenseAlignedOperandsRunInPackets) {
  const DType h = DType::kFloat16;
  Tensor x = at_address(h, {32, 197, 3072}), y = at_address(h, {32, 197, 3072});
  PointwiseLaunch launch = plan({x}, {y}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kVector);
  EXPECT_EQ(launch.numel, 32 * 197 * 3072);
  EXPECT_EQ(launch.work_items, 32 * 197 * 3072 / 8);
  // A size that is no multiple of the packet: the kernel's last packet is partial.
  launch = plan({at_address(h, {3, 5, 7})}, {at_address(h, {3, 5, 7})}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kVector);
  EXPECT_EQ(launch.work_items, 14);  // ceil(105 / 8)
  // Offsets that keep 16-byte alignment.
  launch = plan({at_address(h, {4, 8}, {}, 8)}, {at_address(h, {4, 8}, {}, 64)}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kVector);
  // Only scalar kernels asked for.
  EXPECT_EQ(plan({x}, {y}, 1).variant, PointwiseVariant::kFlat);
  EXPECT_EQ(plan({x}, {y}, 1).work_items, 32 * 197 * 3072);
}

TEST(PointwiseLaunchTest, MisalignedDenseOperandsRunElementByElement) {
  const DType h = DType::kFloat16;
  // A view one half in: its packets straddle 16-byte boundaries.
  PointwiseLaunch launch =
      plan({at_address(h, {4, 8}, {}, 1), at_address(h, {4, 8})}, {at_address(h, {4, 8})}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kFlat);
  EXPECT_EQ(launch.work_items, 32);
  // Misaligned output.
  launch = plan({at_address(h, {4, 8})}, {at_address(h, {4, 8}, {}, 4)}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kFlat);
  // int64 packets of 2 need 16 bytes; bool packets of 2 need 2.
  launch = plan({at_address(DType::kInt64, {6}, {}, 1), at_address(DType::kInt64, {6})},
                {at_address(DType::kBool, {6})}, 2);
  EXPECT_EQ(launch.variant, PointwiseVariant::kFlat);
  launch = plan({at_address(DType::kInt64, {6}, {}, 2), at_address(DType::kInt64, {6})},
                {at_address(DType::kBool, {6}, {}, 2)}, 2);
  EXPECT_EQ(launch.variant, PointwiseVariant::kVector);
  launch = plan({at_address(DType::kInt64, {6}), at_address(DType::kInt64, {6})},
                {at_address(DType::kBool, {6}, {}, 1)}, 2);
  EXPECT_EQ(launch.variant, PointwiseVariant::kFlat);
}

TEST(PointwiseLaunchTest, BroadcastElementIsMarkedAndNeedsNoAlignment) {
  const DType f = DType::kFloat32;
  for (Shape scalar : {Shape{}, Shape{1}, Shape{1, 1}}) {
    SCOPED_TRACE(shape_to_string(scalar));
    PointwiseLaunch launch =
        plan({at_address(f, {10, 9}), at_address(f, scalar, {}, 3)}, {at_address(f, {10, 9})}, 4);
    EXPECT_EQ(launch.variant, PointwiseVariant::kVector);
    ASSERT_EQ(launch.args.size(), 3u);
    EXPECT_EQ(launch.args[0].rank, 2);
    EXPECT_EQ(launch.args[1].rank, 0) << "the single element is marked for the flat kernels";
    EXPECT_EQ(launch.args[2].rank, 2);
  }
  // A rank-0 output: one element, one partial packet.
  PointwiseLaunch launch = plan({at_address(f, {}), at_address(f, {})}, {at_address(f, {})}, 4);
  EXPECT_EQ(launch.variant, PointwiseVariant::kVector);
  EXPECT_EQ(launch.numel, 1);
  EXPECT_EQ(launch.work_items, 1);
}

TEST(PointwiseLaunchTest, RowBroadcastBiasRunsInRowsOfPackets) {
  const DType h = DType::kFloat16;
  PointwiseLaunch launch = plan({at_address(h, {32, 197, 768}), at_address(h, {768})},
                                {at_address(h, {32, 197, 768})}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kRows);
  // Batch and tokens merge into rows of 768 channels (a size-1 dim in front keeps the rank).
  EXPECT_EQ(sizes_of(launch.args[0]), (Shape{1, 32 * 197, 768}));
  EXPECT_EQ(strides_of(launch.args[0]), (Shape{0, 768, 1}));
  EXPECT_EQ(strides_of(launch.args[1]), (Shape{0, 0, 1}));
  EXPECT_EQ(strides_of(launch.args[2]), (Shape{0, 768, 1}));
  EXPECT_EQ(launch.work_items, 32 * 197 * 96);
  // Rows that are no multiple of the packet: the last packet of each row is partial.
  launch = plan({at_address(h, {6, 13}), at_address(h, {13})}, {at_address(h, {6, 13})}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kRows);
  EXPECT_EQ(launch.work_items, 6 * 2);
  // Scalar kernels only: the strided one.
  launch = plan({at_address(h, {6, 13}), at_address(h, {13})}, {at_address(h, {6, 13})}, 1);
  EXPECT_EQ(launch.variant, PointwiseVariant::kStrided);
  EXPECT_EQ(sizes_of(launch.args[1]), (Shape{6, 13}));
  EXPECT_EQ(strides_of(launch.args[1]), (Shape{0, 1}));
}

TEST(PointwiseLaunchTest, ColumnBroadcastRunsInRows) {
  const DType f = DType::kFloat32;
  // x [N, L, C] * m [N, L, 1]: m's element repeats along each row.
  PointwiseLaunch launch =
      plan({at_address(f, {4, 6, 20}), at_address(f, {4, 6, 1})}, {at_address(f, {4, 6, 20})}, 4);
  EXPECT_EQ(launch.variant, PointwiseVariant::kRows);
  EXPECT_EQ(sizes_of(launch.args[1]), (Shape{1, 24, 20}));
  EXPECT_EQ(strides_of(launch.args[1]), (Shape{0, 1, 0}));
}

TEST(PointwiseLaunchTest, TransposedRowContiguousInputRunsInRows) {
  const DType h = DType::kFloat16;
  // A [2, 197, 768] view of a [197, 2, 768] buffer: rows stay contiguous, dims do not merge.
  Tensor t = at_address(h, {2, 197, 768}, {768, 2 * 768, 1});
  PointwiseLaunch launch =
      plan({t, at_address(h, {2, 197, 768})}, {at_address(h, {2, 197, 768})}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kRows);
  EXPECT_EQ(sizes_of(launch.args[0]), (Shape{2, 197, 768}));
  EXPECT_EQ(strides_of(launch.args[0]), (Shape{768, 1536, 1}));
  EXPECT_EQ(strides_of(launch.args[2]), (Shape{197 * 768, 768, 1}));
  EXPECT_EQ(launch.work_items, 2 * 197 * 96);
}

TEST(PointwiseLaunchTest, ChannelsLastOutputRunsInRowsOfChannels) {
  const DType h = DType::kFloat16;
  const Shape nhwc = {16 * 8 * 8, 1, 8 * 16, 16};  // [N, C, H, W] = [2, 16, 8, 8] in NHWC
  PointwiseLaunch launch = plan({at_address(h, {2, 16, 8, 8}, nhwc), at_address(h, {16, 1, 1})},
                                {at_address(h, {2, 16, 8, 8}, nhwc)}, 8);
  EXPECT_EQ(launch.variant, PointwiseVariant::kRows);
  EXPECT_EQ(sizes_of(launch.args[2]), (Shape{1, 1, 2 * 8 * 8, 16}));
  EXPECT_EQ(strides_of(launch.args[1]), (Shape{0, 0, 0, 1}));
}

TEST(PointwiseLaunchTest, NonContiguousInnerDimsRunStrided) {
  const DType f = DType::kFloat32;
  // x.t(): the output's rows are columns of x.
  PointwiseLaunch launch = plan({at_address(f, {8, 12}, {1, 8})}, {at_address(f, {8, 12})}, 4);
  EXPECT_EQ(launch.variant, PointwiseVariant::kStrided);
  EXPECT_EQ(launch.work_items, 96);
  // Every other element.
  launch = plan({at_address(f, {8, 12}, {24, 2})}, {at_address(f, {8, 12})}, 4);
  EXPECT_EQ(launch.variant, PointwiseVariant::kStrided);
  // An output with gaps between elements.
  launch = plan({at_address(f, {8, 12})}, {at_address(f, {8, 12}, {24, 2})}, 4);
  EXPECT_EQ(launch.variant, PointwiseVariant::kStrided);
}

TEST(PointwiseLaunchTest, RowsWalkOnlyBelowTwoToTheThirtyOne) {
  const DType b = DType::kBool;
  const Shape big = {int64_t{1} << 16, int64_t{1} << 15};
  PointwiseLaunch launch =
      plan({at_address(b, big), at_address(b, {big[1]})}, {at_address(b, big)}, 16);
  EXPECT_EQ(launch.variant, PointwiseVariant::kStrided);
  const Shape below = {(int64_t{1} << 16) - 1, int64_t{1} << 15};
  launch = plan({at_address(b, below), at_address(b, {below[1]})}, {at_address(b, below)}, 16);
  EXPECT_EQ(launch.variant, PointwiseVariant::kRows);
}

TEST(PointwiseLaunchTest, RejectsOperandsThatDoNotFit) {
  const DType f = DType::kFloat32;
  auto launch = plan_pointwise_launch({at_address(f, {4, 5})},
                                      {at_address(f, {4, 5}), at_address(f, {4, 6})}, 4);
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().to_string().find("one shape"), std::string::npos)
      << launch.status().to_string();
  launch = plan_pointwise_launch({at_address(f, {3})}, {at_address(f, {4, 5})}, 4);
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().to_string().find("broadcast"), std::string::npos);
  launch = plan_pointwise_launch({at_address(f, {2, 4, 5})}, {at_address(f, {4, 5})}, 4);
  EXPECT_FALSE(launch.ok());
  // Kernels take at most kMaxKernelDims dims.
  const Shape nine(kMaxKernelDims + 1, 2);
  launch = plan_pointwise_launch({at_address(f, nine)}, {at_address(f, nine)}, 4);
  EXPECT_FALSE(launch.ok());
}

TEST(PointwiseLaunchTest, VariantSuffixesNameTheGeneratedKernels) {
  EXPECT_EQ(pointwise_variant_suffix(PointwiseVariant::kFlat), "_flat");
  EXPECT_EQ(pointwise_variant_suffix(PointwiseVariant::kVector), "_vec");
  EXPECT_EQ(pointwise_variant_suffix(PointwiseVariant::kRows), "_rows");
  EXPECT_EQ(pointwise_variant_suffix(PointwiseVariant::kStrided), "_nd");
}

// --- on the GPU: packets give the scalar kernels' bits -------------------------------------------

// The bytes of t's elements in row-major order, read back from the device.
std::vector<uint8_t> element_bytes(const Tensor& t) {
  std::vector<uint8_t> all(t.storage()->nbytes());
  EXPECT_EQ(cudaMemcpy(all.data(), t.storage()->data(), all.size(), cudaMemcpyDeviceToHost),
            cudaSuccess);
  const size_t item = dtype_size(t.dtype());
  std::vector<uint8_t> out;
  for (int64_t at : kltest::view_offsets(t.sizes(), t.strides(), t.offset())) {
    out.insert(out.end(), all.begin() + at * item, all.begin() + (at + 1) * item);
  }
  return out;
}

class PointwiseGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();
      GTEST_SKIP() << "no CUDA device";
    }
  }

  // Compiles the chain's kernels for this GPU and loads them.
  void load(const Chain& c) {
    ModuleSource source;
    ASSIGN_OR_FAIL(name_, pointwise_kernel(source, c.group, c.rank));
    ASSIGN_OR_FAIL(std::string arch, current_device_arch());
    ASSIGN_OR_FAIL(CompiledModule compiled, compile_cuda_source(source.text(), arch, false));
    ASSIGN_OR_FAIL(module_, KernelModule::load(compiled.cubin, arch));
    packet_ = pointwise_packet(c.group);
  }

  // Runs `launch` and waits for it.
  void run(const PointwiseLaunch& launch) {
    ASSIGN_OR_FAIL(cudaKernel_t fn,
                   module_->kernel(str_cat(name_, pointwise_variant_suffix(launch.variant))));
    const Status launched = launch_pointwise(fn, launch, nullptr);
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    const cudaError_t done = cudaDeviceSynchronize();
    ASSERT_EQ(done, cudaSuccess) << cudaGetErrorString(done);
  }

  // Runs the variant chosen with the chain's packet into outputs made by `make_outputs` and the
  // scalar one into another set; expects `expected` chosen and the same bytes in both sets.
  // Returns the first set.
  std::vector<DeviceTensor> compare_with_scalar(
      const std::vector<DeviceTensor>& inputs,
      const std::function<std::vector<DeviceTensor>()>& make_outputs, PointwiseVariant expected,
      std::optional<PointwiseVariant> force = std::nullopt) {
    std::vector<Tensor> ins;
    for (const DeviceTensor& t : inputs) ins.push_back(t.tensor);
    // Different fill bytes in the two sets: an element one kernel leaves unwritten differs.
    std::vector<DeviceTensor> packed = make_outputs(), scalar = make_outputs();
    for (const DeviceTensor& t : packed) fill_bytes(t, 0xAB);
    for (const DeviceTensor& t : scalar) fill_bytes(t, 0xCD);
    auto tensors = [](const std::vector<DeviceTensor>& ts) {
      std::vector<Tensor> out;
      for (const DeviceTensor& t : ts) out.push_back(t.tensor);
      return out;
    };
    PointwiseLaunch a = plan(ins, tensors(packed), packet_);
    EXPECT_EQ(a.variant, expected);
    if (force) {  // the packet kernel where the planner would not pick it: still correct
      a.variant = *force;
      a.work_items = (a.numel + packet_ - 1) / packet_;
    }
    const PointwiseLaunch b = plan(ins, tensors(scalar), 1);
    EXPECT_TRUE(b.variant == PointwiseVariant::kFlat || b.variant == PointwiseVariant::kStrided);
    run(a);
    run(b);
    for (size_t k = 0; k < packed.size(); ++k) {
      EXPECT_TRUE(element_bytes(packed[k].tensor) == element_bytes(scalar[k].tensor))
          << "output " << k << ": " << pointwise_variant_suffix(a.variant) << " and "
          << pointwise_variant_suffix(b.variant) << " differ";
    }
    return packed;
  }

  static void fill_bytes(const DeviceTensor& t, int byte) {
    EXPECT_EQ(cudaMemset(t.tensor.storage()->data(), byte, t.tensor.storage()->nbytes()),
              cudaSuccess);
  }
  static DeviceTensor upload(const std::vector<double>& storage, DType dtype, Shape sizes,
                             Shape strides = {}, int64_t offset = 0) {
    auto t = kltest::upload(storage, dtype, std::move(sizes), std::move(strides), offset);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return std::move(t).value();
  }
  static DeviceTensor random(DType dtype, Shape sizes, uint32_t seed, int64_t offset = 0,
                             Shape strides = {}, int64_t storage = 0) {
    const int64_t n = std::max(storage, shape_numel(sizes) + offset);
    return upload(kltest::random_values(n, seed), dtype, std::move(sizes), std::move(strides),
                  offset);
  }
  static std::function<std::vector<DeviceTensor>()> outputs(DType dtype, Shape sizes) {
    return [=] {
      return std::vector<DeviceTensor>{std::move(kltest::device_output(dtype, sizes)).value()};
    };
  }

  std::string name_;
  std::unique_ptr<KernelModule> module_;
  int packet_ = 0;
};

TEST_F(PointwiseGpuTest, HalfAddOnSizesNoMultipleOfThePacket) {
  for (Shape shape : {Shape{3, 37}, Shape{8, 64}, Shape{1}, Shape{1001}}) {
    SCOPED_TRACE(shape_to_string(shape));
    const Chain c = add(DType::kFloat16, shape, shape);
    ASSERT_NO_FATAL_FAILURE(load(c));
    const DeviceTensor a = random(DType::kFloat16, shape, 1), b = random(DType::kFloat16, shape, 2);
    const auto out =
        compare_with_scalar({a, b}, outputs(DType::kFloat16, shape), PointwiseVariant::kVector);
    const std::vector<double> av = a.values(), bv = b.values();
    std::vector<double> expected;
    for (size_t i = 0; i < av.size(); ++i) expected.push_back(av[i] + bv[i]);
    kltest::expect_close(out[0].read(), kltest::rounded(expected, DType::kFloat16), 1e-3, "a + b");
  }
}

TEST_F(PointwiseGpuTest, MisalignedViewsRunFlatAndThePacketKernelStillMatches) {
  const Shape shape = {5, 19};
  const Chain c = add(DType::kFloat16, shape, shape);
  ASSERT_NO_FATAL_FAILURE(load(c));
  for (int64_t offset : {1, 3, 4}) {
    SCOPED_TRACE(offset);
    const DeviceTensor a = random(DType::kFloat16, shape, 3, offset);
    const DeviceTensor b = random(DType::kFloat16, shape, 4);
    compare_with_scalar({a, b}, outputs(DType::kFloat16, shape), PointwiseVariant::kFlat,
                        PointwiseVariant::kVector);
  }
  // Every operand 8 halves in: aligned again.
  const DeviceTensor a = random(DType::kFloat16, shape, 5, 8),
                     b = random(DType::kFloat16, shape, 6, 8);
  compare_with_scalar({a, b}, outputs(DType::kFloat16, shape), PointwiseVariant::kVector);
}

TEST_F(PointwiseGpuTest, BroadcastElementAndRankZero) {
  const Chain c = mul(DType::kFloat16, {77}, {});
  ASSERT_NO_FATAL_FAILURE(load(c));
  const DeviceTensor x = random(DType::kFloat16, {77}, 7);
  // The element sits 3 halves into its buffer: broadcast elements need no alignment.
  const DeviceTensor s = upload({9.0, 9.0, 9.0, 1.5}, DType::kFloat16, {}, {}, 3);
  const auto out =
      compare_with_scalar({x, s}, outputs(DType::kFloat16, {77}), PointwiseVariant::kVector);
  std::vector<double> expected;
  for (double v : x.values()) expected.push_back(v * 1.5);
  kltest::expect_close(out[0].read(), kltest::rounded(expected, DType::kFloat16), 1e-3, "x * s");

  const Chain scalar = add(DType::kFloat32, {}, {});
  ASSERT_NO_FATAL_FAILURE(load(scalar));
  const DeviceTensor a = upload({2.5}, DType::kFloat32, {}),
                     b = upload({-0.25}, DType::kFloat32, {});
  const auto sum =
      compare_with_scalar({a, b}, outputs(DType::kFloat32, {}), PointwiseVariant::kVector);
  EXPECT_EQ(sum[0].read(), std::vector<double>{2.25});
}

TEST_F(PointwiseGpuTest, FloatGeluInPackets) {
  const Chain c = gelu(DType::kFloat32, {7, 33});
  ASSERT_NO_FATAL_FAILURE(load(c));
  const DeviceTensor x = random(DType::kFloat32, {7, 33}, 8);
  compare_with_scalar({x}, outputs(DType::kFloat32, {7, 33}), PointwiseVariant::kVector);
}

TEST_F(PointwiseGpuTest, BiasRowsMatchTheStridedKernel) {
  for (int64_t cols : {24, 13, 8, 3}) {
    SCOPED_TRACE(cols);
    const Chain c = add(DType::kFloat16, {4, 5, cols}, {cols});
    ASSERT_NO_FATAL_FAILURE(load(c));
    const DeviceTensor x = random(DType::kFloat16, {4, 5, cols}, 9);
    const DeviceTensor bias = random(DType::kFloat16, {cols}, 10);
    const auto out = compare_with_scalar({x, bias}, outputs(DType::kFloat16, {4, 5, cols}),
                                         PointwiseVariant::kRows);
    const std::vector<double> xv = x.values(), bv = bias.values();
    std::vector<double> expected;
    for (size_t i = 0; i < xv.size(); ++i) expected.push_back(xv[i] + bv[i % cols]);
    kltest::expect_close(out[0].read(), kltest::rounded(expected, DType::kFloat16), 1e-3,
                         "x + bias");
  }
}

TEST_F(PointwiseGpuTest, TransposedInputRowsMatchTheStridedKernel) {
  const Shape shape = {2, 5, 16};
  const Chain c = add(DType::kFloat16, shape, shape);
  ASSERT_NO_FATAL_FAILURE(load(c));
  // [2, 5, 16] views of a [5, 2, 16] buffer, aligned and 4 halves in (misaligned rows).
  for (int64_t offset : {0, 4}) {
    SCOPED_TRACE(offset);
    const DeviceTensor t = random(DType::kFloat16, shape, 11, offset, {16, 32, 1}, 160 + offset);
    const DeviceTensor y = random(DType::kFloat16, shape, 12);
    compare_with_scalar({t, y}, outputs(DType::kFloat16, shape), PointwiseVariant::kRows);
  }
}

TEST_F(PointwiseGpuTest, ColumnBroadcastAndChannelsLastRows) {
  const Chain c = mul(DType::kFloat32, {4, 6, 20}, {4, 6, 1});
  ASSERT_NO_FATAL_FAILURE(load(c));
  compare_with_scalar(
      {random(DType::kFloat32, {4, 6, 20}, 13), random(DType::kFloat32, {4, 6, 1}, 14)},
      outputs(DType::kFloat32, {4, 6, 20}), PointwiseVariant::kRows);

  const Shape sizes = {2, 12, 3, 5}, nhwc = {12 * 3 * 5, 1, 5 * 12, 12};
  const Chain bias = add(DType::kFloat16, sizes, {12, 1, 1});
  ASSERT_NO_FATAL_FAILURE(load(bias));
  auto nhwc_outputs = [&] {
    return std::vector<DeviceTensor>{
        upload(std::vector<double>(shape_numel(sizes), -777.0), DType::kFloat16, sizes, nhwc)};
  };
  compare_with_scalar(
      {random(DType::kFloat16, sizes, 15, 0, nhwc), random(DType::kFloat16, {12, 1, 1}, 16)},
      nhwc_outputs, PointwiseVariant::kRows);
}

// More packets than the launch has threads (132 * 32 blocks of 256): the grid-stride loops.
TEST_F(PointwiseGpuTest, GridStrideCoversMoreWorkThanThreads) {
  const int64_t threads = 132 * 32 * 256;
  const Shape flat = {4 * threads + 1};
  ASSERT_NO_FATAL_FAILURE(load(add(DType::kFloat32, flat, flat)));
  compare_with_scalar({random(DType::kFloat32, flat, 20), random(DType::kFloat32, flat, 21)},
                      outputs(DType::kFloat32, flat), PointwiseVariant::kVector);
  const Shape rows = {threads / 250 + 3, 1000};  // 250 packets a row
  ASSERT_NO_FATAL_FAILURE(load(add(DType::kFloat32, rows, {1000})));
  compare_with_scalar({random(DType::kFloat32, rows, 22), random(DType::kFloat32, {1000}, 23)},
                      outputs(DType::kFloat32, rows), PointwiseVariant::kRows);
}

TEST_F(PointwiseGpuTest, BoolConditionWithFloatAndHalfValues) {
  const Chain c = where(DType::kFloat32, DType::kFloat16, {101});
  ASSERT_NO_FATAL_FAILURE(load(c));
  std::vector<double> cond;
  for (int i = 0; i < 101; ++i) cond.push_back(i % 3 == 0 ? 1.0 : 0.0);
  const DeviceTensor b = upload(cond, DType::kBool, {101});
  const DeviceTensor x = random(DType::kFloat32, {101}, 17), y = random(DType::kFloat16, {101}, 18);
  const auto out =
      compare_with_scalar({b, x, y}, outputs(DType::kFloat32, {101}), PointwiseVariant::kVector);
  const std::vector<double> xv = x.values(), yv = y.values();
  std::vector<double> expected;
  for (int i = 0; i < 101; ++i) expected.push_back(cond[i] != 0 ? xv[i] : yv[i]);
  EXPECT_EQ(out[0].read(), expected);
}

TEST_F(PointwiseGpuTest, Int64CompareWritesBools) {
  const Chain c = greater(DType::kInt64, {77});
  ASSERT_NO_FATAL_FAILURE(load(c));
  std::vector<double> a, b;
  for (int i = 0; i < 77; ++i) {
    a.push_back((i * 7919) % 23 - 11);
    b.push_back((i * 104729) % 19 - 9);
  }
  const auto out =
      compare_with_scalar({upload(a, DType::kInt64, {77}), upload(b, DType::kInt64, {77})},
                          outputs(DType::kBool, {77}), PointwiseVariant::kVector);
  std::vector<double> expected;
  for (int i = 0; i < 77; ++i) expected.push_back(a[i] > b[i] ? 1.0 : 0.0);
  EXPECT_EQ(out[0].read(), expected);
}

TEST_F(PointwiseGpuTest, TwoOutputsOfDifferentWidths) {
  const Shape shape = {3, 29};
  const Chain c = scale_and_sign(DType::kFloat16, shape);
  ASSERT_NO_FATAL_FAILURE(load(c));
  auto both = [&] {
    return std::vector<DeviceTensor>{
        std::move(kltest::device_output(DType::kFloat16, shape)).value(),
        std::move(kltest::device_output(DType::kBool, shape)).value()};
  };
  compare_with_scalar({random(DType::kFloat16, shape, 19)}, both, PointwiseVariant::kVector);
}

}  // namespace
}  // namespace kiln::cuda
