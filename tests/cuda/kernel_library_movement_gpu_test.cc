// The movement family on the GPU (constant_pad_nd, flip, repeat, pixel_shuffle/unshuffle,
// slice_scatter, select_scatter) against kiln's CPU reference kernels on the same values: every
// dtype, strided and broadcast inputs, strided outputs, empty tensors, NaN and inf moved bit for
// bit. Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernel_library_movement.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "kernel_library_support.h"
#include "support/op_runner.h"

namespace kiln::cuda {
namespace {

using namespace kltest;
using kiln::testing::OpCall;
using kiln::testing::TensorArg;
using kiln::testing::TestArg;

constexpr DType kEveryDtype[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                 DType::kInt64,   DType::kInt32,   DType::kInt16,
                                 DType::kInt8,    DType::kUInt8,   DType::kBool};
constexpr MoveOp kMoveOps[] = {MoveOp::kConstantPad, MoveOp::kFlip, MoveOp::kRepeat,
                               MoveOp::kPixelShuffle, MoveOp::kPixelUnshuffle};

// kltest::full_module() holds the other families; these tests load a module of their own: the
// movement kernels for every dtype and the copies the scatters use.
ModuleSource movement_module() {
  ModuleSource module;
  for (DType t : kEveryDtype) {
    for (MoveOp op : kMoveOps) move_kernel(module, op, t);
    copy_kernel(module, t, t);
  }
  copy_kernel(module, DType::kFloat16, DType::kFloat32);
  return module;
}

const GpuModule& movement_gpu() {
  static const GpuModule state = load_gpu_module(movement_module().text());
  return state;
}

// Values every dtype holds exactly, NaN and infinities among the floats' (they are moved, never
// computed with).
double exact_value(DType dtype, std::mt19937& rng) {
  switch (dtype) {
    case DType::kBool: return static_cast<double>(rng() % 2);
    case DType::kUInt8: return static_cast<double>(rng() % 256);
    case DType::kInt8: return static_cast<double>(static_cast<int>(rng() % 256) - 128);
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64: return static_cast<double>(static_cast<int>(rng() % 20001) - 10000);
    default: {
      const uint32_t r = rng() % 200;
      if (r == 0) return kNan;
      if (r == 1) return kInf;
      if (r == 2) return -kInf;
      return static_cast<double>(static_cast<int>(rng() % 128) - 64) / 16.0;
    }
  }
}

// Strides of `sizes` stored in `order` (outermost first): a permuted layout.
Shape permuted_strides(const Shape& sizes, const std::vector<size_t>& order) {
  Shape strides(sizes.size());
  int64_t stride = 1;
  for (size_t i = order.size(); i-- > 0;) {
    strides[order[i]] = stride;
    stride *= std::max<int64_t>(sizes[order[i]], 1);
  }
  return strides;
}
// Strides that skip every other element of the innermost dim.
Shape gapped_strides(const Shape& sizes) {
  Shape strides = contiguous_strides(sizes);
  for (int64_t& s : strides) s *= 2;
  return strides;
}

class MovementGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = movement_gpu();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }

  static cudaKernel_t fn(const std::string& name) {
    auto kernel = movement_gpu().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static cudaKernel_t move_fn(MoveOp op, DType dtype) {
    ModuleSource names;
    return fn(move_kernel(names, op, dtype));
  }
  static cudaKernel_t copy_fn(DType from, DType to) {
    ModuleSource names;
    return fn(copy_kernel(names, from, to));
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }

  // A device tensor of `sizes` (a view with `strides` when given) holding exact values; its
  // storage's other elements hold a sentinel the results must not show.
  static Result<DeviceTensor> input(DType dtype, const Shape& sizes, Shape strides = {},
                                    uint32_t seed = 5) {
    if (strides.empty()) strides = contiguous_strides(sizes);
    std::mt19937 rng(seed);
    int64_t storage = 1;
    for (int64_t at : view_offsets(sizes, strides)) storage = std::max(storage, at + 1);
    std::vector<double> values(storage, dtype == DType::kBool ? 1.0 : 99.0);
    for (int64_t at : view_offsets(sizes, strides)) values[at] = exact_value(dtype, rng);
    return upload(values, dtype, sizes, strides);
  }
  // An output of `sizes` filled with a sentinel, laid out with `strides` when given.
  static Result<DeviceTensor> output(DType dtype, const Shape& sizes, Shape strides = {}) {
    if (strides.empty()) strides = contiguous_strides(sizes);
    int64_t storage = 1;
    for (int64_t at : view_offsets(sizes, strides)) storage = std::max(storage, at + 1);
    if (shape_numel(sizes) == 0) storage = 1;
    return upload(std::vector<double>(storage, -77.0), dtype, sizes, strides);
  }
  static Tensor host_copy(const DeviceTensor& t) {
    return kiln::testing::make_tensor(t.tensor.dtype(), t.tensor.sizes(), t.values());
  }
  static Result<Tensor> reference(const std::string& target, const std::vector<Tensor>& inputs,
                                  std::vector<TestArg> args) {
    OpCall call;
    call.target = target;
    call.inputs = inputs;
    call.args = std::move(args);
    KILN_ASSIGN_OR_RETURN(std::vector<Tensor> out, kiln::testing::run_op(call));
    return out.at(0);
  }
};

// --- constant_pad_nd --------------------------------------------------------------------------

class MovementPadGpuTest : public MovementGpuTest {
 protected:
  void run(const std::string& what, DType dtype, const Shape& sizes,
           const std::vector<int64_t>& pad, TestArg value, const Shape& strides = {},
           bool permuted_output = false) {
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, input(dtype, sizes, strides));
    ASSIGN_OR_FAIL(Tensor expected, reference("aten.constant_pad_nd.default", {host_copy(x)},
                                              {TensorArg{0}, pad, value}));
    const Shape& out_sizes = expected.sizes();
    Shape out_strides;
    if (permuted_output && out_sizes.size() >= 2) {
      std::vector<size_t> order(out_sizes.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
      out_strides = permuted_strides(out_sizes, order);
    }
    ASSIGN_OR_FAIL(DeviceTensor y, output(dtype, out_sizes, out_strides));
    PadValue v;
    if (const int64_t* i = std::get_if<int64_t>(&value)) {
      v = PadValue{static_cast<double>(*i), *i, true};
    } else if (const double* d = std::get_if<double>(&value)) {
      v = PadValue{*d, 0, false};
    }
    sync(launch_constant_pad(move_fn(MoveOp::kConstantPad, dtype), x.tensor, y.tensor, pad, v,
                             nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected), 0.0, what);
  }
};

TEST_F(MovementPadGpuTest, PositiveNegativeAndOversizedPads) {
  const DType f32 = DType::kFloat32;
  run("last dim", f32, {3, 5}, {1, 2}, 0.0);
  run("two dims", f32, {2, 3, 5}, {1, 2, 3, 0}, -1.5);
  run("every dim", f32, {2, 3, 4}, {1, 1, 2, 0, 0, 3}, 2.0);
  run("negative pads crop", f32, {4, 6}, {-1, -2, -1, 0}, 0.0);
  run("crop one side, pad the other", f32, {4, 6}, {-3, 4, 2, -3}, 7.0);
  run("pads larger than the input", f32, {2, 3}, {5, 7, 4, 9}, 1.0);
  run("crop everything, pad around nothing", f32, {3, 4}, {-4, 2}, 3.0);
  run("crop to empty", f32, {3, 4}, {-2, -2}, 3.0);
  run("no pads", f32, {3, 4}, {}, 3.0);
  run("zero pads", f32, {3, 4}, {0, 0, 0, 0}, 3.0);
  run("rank 8", f32, {2, 1, 2, 1, 3, 1, 2, 2}, {1, 0, 0, 1, 1, 1, 0, 0, 2, 0}, 4.0);
  run("1-D, large", f32, {100000}, {3, 1000}, -2.0);
  run("4-D image border", f32, {2, 3, 17, 19}, {1, 1, 1, 1}, 0.0);
}

TEST_F(MovementPadGpuTest, EveryDtypeAndFillValue) {
  for (DType t : kEveryDtype) {
    run(str_cat(dtype_name(t), " int fill"), t, {3, 4, 5}, {1, -1, 2, 0}, int64_t{1});
    run(str_cat(dtype_name(t), " zero"), t, {3, 4, 5}, {2, 2}, 0.0);
  }
  // Floats cast to the dtype as PyTorch's fill does: truncation toward zero, nonzero is true.
  run("float into int32", DType::kInt32, {2, 3}, {1, 1}, 2.75);
  run("negative float into int64", DType::kInt64, {2, 3}, {1, 1}, -2.75);
  run("float into bool", DType::kBool, {2, 3}, {1, 1}, 0.25);
  run("float into uint8", DType::kUInt8, {2, 3}, {1, 1}, 200.5);
  run("nan fill", DType::kFloat32, {2, 3}, {1, 1}, kNan);
  run("inf fill in f16", DType::kFloat16, {2, 3}, {1, 1}, -kInf);
  run("fill rounded to bf16", DType::kBFloat16, {2, 3}, {1, 1}, 0.1);
  run("fill rounded to f16", DType::kFloat16, {2, 3}, {1, 1}, 1.0 / 3.0);
}

TEST_F(MovementPadGpuTest, StridedInputsAndOutputs) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  run("transposed input", f32, {5, 7}, {2, -1, -1, 3}, 9.0, permuted_strides({5, 7}, {1, 0}));
  run("NHWC input", f16, {2, 3, 6, 5}, {1, 2, 2, 1}, 0.5,
      permuted_strides({2, 3, 6, 5}, {0, 2, 3, 1}));
  run("gapped input", f32, {4, 9}, {3, 3}, -1.0, gapped_strides({4, 9}));
  run("broadcast input", f32, {4, 9}, {1, 1, 1, 1}, -1.0, {0, 1});
  run("reversed output", f32, {3, 4, 5}, {1, 2, -1, 1}, 6.0, {}, true);
}

TEST_F(MovementPadGpuTest, EmptyInputs) {
  const DType f32 = DType::kFloat32;
  run("empty dim padded", f32, {0, 3}, {0, 0, 2, 1}, 5.0);
  run("empty last dim padded", DType::kInt32, {4, 0}, {1, 2}, int64_t{-3});
  run("empty stays empty", f32, {0, 3}, {1, 1}, 5.0);
}

// An int64 fill keeps every bit: 2^53 + 1 is not a double.
TEST_F(MovementPadGpuTest, Int64FillKeepsEveryBit) {
  const int64_t big = (int64_t{1} << 53) + 1;
  ASSIGN_OR_FAIL(DeviceTensor x, upload({1, 2}, DType::kInt64, {2}));
  ASSIGN_OR_FAIL(DeviceTensor y, output(DType::kInt64, {4}));
  sync(launch_constant_pad(move_fn(MoveOp::kConstantPad, DType::kInt64), x.tensor, y.tensor,
                           {1, 1}, PadValue{static_cast<double>(big), big, true}, nullptr));
  int64_t host[4] = {};
  ASSERT_EQ(cudaMemcpy(host, y.tensor.raw_data(), sizeof(host), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(host[0], big);
  EXPECT_EQ(host[1], 1);
  EXPECT_EQ(host[2], 2);
  EXPECT_EQ(host[3], big);
}

// --- flip -------------------------------------------------------------------------------------

class MovementFlipGpuTest : public MovementGpuTest {
 protected:
  void run(const std::string& what, DType dtype, const Shape& sizes,
           const std::vector<int64_t>& dims, const Shape& strides = {}) {
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, input(dtype, sizes, strides));
    ASSIGN_OR_FAIL(Tensor expected,
                   reference("aten.flip.default", {host_copy(x)}, {TensorArg{0}, dims}));
    ASSIGN_OR_FAIL(DeviceTensor y, output(dtype, sizes));
    sync(launch_flip(move_fn(MoveOp::kFlip, dtype), x.tensor, y.tensor, dims, nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected), 0.0, what);
  }
};

TEST_F(MovementFlipGpuTest, DimsAndLayouts) {
  const DType f32 = DType::kFloat32;
  run("last dim", f32, {3, 7}, {1});
  run("negative dim", f32, {3, 7}, {-2});
  run("several dims, negative ones", f32, {2, 3, 4, 5}, {0, -1, 2});
  run("every dim", f32, {2, 3, 4}, {0, 1, 2});
  run("no dims: a copy", f32, {2, 3}, {});
  run("size-1 dim", f32, {1, 5, 1}, {0, 2});
  run("0-d", f32, {}, {});
  run("rank 8", f32, {2, 2, 1, 3, 2, 1, 2, 3}, {0, 3, -1, -4});
  run("long", f32, {3, 70001}, {1});
  run("transposed input", f32, {6, 9}, {0}, permuted_strides({6, 9}, {1, 0}));
  run("gapped input", DType::kFloat16, {5, 8}, {-1}, gapped_strides({5, 8}));
  run("broadcast input", f32, {4, 6}, {0, 1}, {0, 1});
  run("empty", f32, {0, 4}, {0, 1});
}

TEST_F(MovementFlipGpuTest, EveryDtype) {
  for (DType t : kEveryDtype) run(std::string(dtype_name(t)), t, {3, 4, 5}, {0, -1});
}

// --- repeat -----------------------------------------------------------------------------------

class MovementRepeatGpuTest : public MovementGpuTest {
 protected:
  void run(const std::string& what, DType dtype, const Shape& sizes,
           const std::vector<int64_t>& repeats, const Shape& strides = {}) {
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, input(dtype, sizes, strides));
    ASSIGN_OR_FAIL(Tensor expected,
                   reference("aten.repeat.default", {host_copy(x)}, {TensorArg{0}, repeats}));
    ASSIGN_OR_FAIL(DeviceTensor y, output(dtype, expected.sizes()));
    sync(launch_repeat(move_fn(MoveOp::kRepeat, dtype), x.tensor, y.tensor, repeats, nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected), 0.0, what);
  }
};

TEST_F(MovementRepeatGpuTest, RepeatsAndLayouts) {
  const DType f32 = DType::kFloat32;
  run("each dim", f32, {2, 3}, {3, 2});
  run("ones", f32, {2, 3}, {1, 1});
  run("leading dims added", f32, {2, 3}, {4, 1, 2});
  run("two leading dims", f32, {3}, {2, 3, 2});
  run("0-d input", f32, {}, {2, 3});
  run("0-d input, no repeats", f32, {}, {});
  run("zero repeats: empty", f32, {2, 3}, {2, 0});
  run("empty input", f32, {0, 3}, {2, 2});
  run("rank 8 output", f32, {2, 1, 3}, {1, 2, 1, 2, 1, 3, 2, 2});
  run("long rows", f32, {2, 5000}, {3, 4});
  run("transposed input", f32, {4, 5}, {2, 3}, permuted_strides({4, 5}, {1, 0}));
  run("broadcast input", f32, {4, 5}, {1, 2, 2}, {0, 1});
  run("gapped input", DType::kBFloat16, {3, 4}, {2, 1, 2}, gapped_strides({3, 4}));
}

TEST_F(MovementRepeatGpuTest, EveryDtype) {
  for (DType t : kEveryDtype) run(std::string(dtype_name(t)), t, {3, 5}, {2, 2, 3});
}

// 2^31 output elements or more: refused before launching (the kernel indexes in 32 bits).
TEST_F(MovementRepeatGpuTest, RefusesTwoToThe31Elements) {
  const int64_t rows = (int64_t{1} << 31) / 5 + 3;  // rows * 5 > 2^31
  ASSIGN_OR_FAIL(DeviceTensor x, upload({10, 20, 30, 40, 50}, DType::kUInt8, {5}));
  // Never written: a view's description is all the check reads.
  auto storage = Storage::borrow(x.tensor.raw_data(), 5, nullptr);
  ASSIGN_OR_FAIL(Tensor y, Tensor::from_storage(storage, DType::kUInt8, {rows, 5}, {0, 0}, 0));
  Status s = launch_repeat(move_fn(MoveOp::kRepeat, DType::kUInt8), x.tensor, y, {rows, 1},
                           nullptr);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.to_string();
  EXPECT_NE(s.message().find("2^31 elements"), std::string::npos) << s.message();
}

// --- pixel_shuffle / pixel_unshuffle ----------------------------------------------------------

class MovementPixelGpuTest : public MovementGpuTest {
 protected:
  void run(const std::string& what, DType dtype, const Shape& sizes, int64_t factor,
           bool shuffle, const Shape& strides = {}) {
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, input(dtype, sizes, strides));
    ASSIGN_OR_FAIL(Tensor expected,
                   reference(shuffle ? "aten.pixel_shuffle.default" : "aten.pixel_unshuffle.default",
                             {host_copy(x)}, {TensorArg{0}, factor}));
    ASSIGN_OR_FAIL(DeviceTensor y, output(dtype, expected.sizes()));
    const MoveOp op = shuffle ? MoveOp::kPixelShuffle : MoveOp::kPixelUnshuffle;
    sync(shuffle ? launch_pixel_shuffle(move_fn(op, dtype), x.tensor, y.tensor, factor, nullptr)
                 : launch_pixel_unshuffle(move_fn(op, dtype), x.tensor, y.tensor, factor,
                                          nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected), 0.0, what);
  }
};

TEST_F(MovementPixelGpuTest, ShuffleAndUnshuffle) {
  const DType f32 = DType::kFloat32;
  for (bool shuffle : {true, false}) {
    const std::string name = shuffle ? "shuffle " : "unshuffle ";
    run(name + "r=2", f32, {2, 8, 6, 4}, 2, shuffle);
    run(name + "r=3", f32, {1, 18, 6, 3}, 3, shuffle);
    run(name + "r=1", f32, {2, 3, 4, 5}, 1, shuffle);
    run(name + "no batch", f32, {12, 4, 2}, 2, shuffle);
    run(name + "two batch dims", f32, {2, 3, 4, 2, 6}, 2, shuffle);
    run(name + "NHWC input", DType::kFloat16, {2, 8, 4, 6}, 2, shuffle,
        permuted_strides({2, 8, 4, 6}, {0, 2, 3, 1}));
    run(name + "gapped input", f32, {1, 4, 4, 2}, 2, shuffle, gapped_strides({1, 4, 4, 2}));
    run(name + "empty batch", f32, {0, 4, 2, 2}, 2, shuffle);
    run(name + "large", f32, {4, 64, 32, 32}, 2, shuffle);
  }
}

TEST_F(MovementPixelGpuTest, EveryDtype) {
  for (DType t : kEveryDtype) {
    run(str_cat("shuffle ", dtype_name(t)), t, {2, 9, 2, 3}, 3, true);
    run(str_cat("unshuffle ", dtype_name(t)), t, {2, 1, 6, 3}, 3, false);
  }
}

// --- slice_scatter / select_scatter -----------------------------------------------------------

class MovementScatterGpuTest : public MovementGpuTest {
 protected:
  // slice_scatter(x, src, dim, start, end, step), src the slice's shape.
  void run_slice(const std::string& what, DType dtype, const Shape& sizes, int64_t dim,
                 std::optional<int64_t> start, std::optional<int64_t> end, int64_t step,
                 const Shape& strides = {}, bool strided_src = false) {
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, input(dtype, sizes, strides, 5));
    ASSIGN_OR_FAIL(DeviceTensor y, output(dtype, sizes));
    ASSIGN_OR_FAIL(Tensor region, slice_region(y.tensor, dim, start, end, step));
    const Shape src_sizes = region.sizes();
    Shape src_strides;
    if (strided_src && !src_sizes.empty()) {
      std::vector<size_t> order(src_sizes.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
      src_strides = permuted_strides(src_sizes, order);
    }
    ASSIGN_OR_FAIL(DeviceTensor src, input(dtype, src_sizes, src_strides, 9));
    auto optional_arg = [](std::optional<int64_t> v) -> TestArg {
      return v ? TestArg(*v) : TestArg(ir::NoneArg{});
    };
    ASSIGN_OR_FAIL(Tensor expected,
                   reference("aten.slice_scatter.default", {host_copy(x), host_copy(src)},
                             {TensorArg{0}, TensorArg{1}, dim, optional_arg(start),
                              optional_arg(end), step}));
    sync(launch_scatter_into(copy_fn(dtype, dtype), copy_fn(dtype, dtype), x.tensor, src.tensor,
                             y.tensor, region, nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected), 0.0, what);
  }
  void run_select(const std::string& what, DType dtype, const Shape& sizes, int64_t dim,
                  int64_t index, const Shape& strides = {}) {
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, input(dtype, sizes, strides, 5));
    ASSIGN_OR_FAIL(DeviceTensor y, output(dtype, sizes));
    ASSIGN_OR_FAIL(Tensor region, select_region(y.tensor, dim, index));
    ASSIGN_OR_FAIL(DeviceTensor src, input(dtype, region.sizes(), {}, 9));
    ASSIGN_OR_FAIL(Tensor expected,
                   reference("aten.select_scatter.default", {host_copy(x), host_copy(src)},
                             {TensorArg{0}, TensorArg{1}, dim, index}));
    sync(launch_scatter_into(copy_fn(dtype, dtype), copy_fn(dtype, dtype), x.tensor, src.tensor,
                             y.tensor, region, nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected), 0.0, what);
  }
};

TEST_F(MovementScatterGpuTest, SliceScatter) {
  const DType f32 = DType::kFloat32;
  run_slice("x[:, 1:3] = src", f32, {4, 6}, 1, 1, 3, 1);
  run_slice("step 2", f32, {4, 9}, 1, 1, 8, 2);
  run_slice("negative dim and start", f32, {3, 4, 10}, -1, -4, std::nullopt, 1);
  run_slice("None start, negative end", f32, {5, 4}, 0, std::nullopt, -2, 1);
  run_slice("end past the size (export's INT64_MAX)", f32, {6, 3}, 0, 2, INT64_MAX, 3);
  run_slice("start clamped", f32, {6, 3}, 0, -100, 3, 1);
  run_slice("empty slice", f32, {6, 3}, 0, 4, 2, 1);
  run_slice("whole dim", f32, {6, 3}, 1, std::nullopt, std::nullopt, 1);
  run_slice("empty input", f32, {0, 5}, 1, 1, 4, 1);
  run_slice("transposed input", f32, {7, 5}, 0, 1, 6, 2, permuted_strides({7, 5}, {1, 0}));
  run_slice("broadcast input, transposed src", f32, {6, 8}, 1, 2, 7, 1, {0, 1}, true);
  run_slice("NHWC input, strided src", DType::kFloat16, {2, 4, 5, 6}, 2, 1, 4, 1,
            permuted_strides({2, 4, 5, 6}, {0, 2, 3, 1}), true);
  run_slice("large", f32, {64, 4096}, 1, 100, 3000, 7);
}

TEST_F(MovementScatterGpuTest, SelectScatter) {
  const DType f32 = DType::kFloat32;
  run_select("middle dim", f32, {3, 4, 5}, 1, 2);
  run_select("negative index and dim", f32, {3, 4, 5}, -1, -1);
  run_select("first", f32, {3, 4, 5}, 0, 0);
  run_select("1-D: a 0-d src", f32, {7}, 0, 3);
  run_select("transposed input", f32, {6, 5}, 1, 4, permuted_strides({6, 5}, {1, 0}));
}

TEST_F(MovementScatterGpuTest, EveryDtype) {
  for (DType t : kEveryDtype) {
    run_slice(str_cat("slice ", dtype_name(t)), t, {4, 6}, 1, 1, 5, 2);
    run_select(str_cat("select ", dtype_name(t)), t, {4, 6}, 0, -2);
  }
}

// The output may be the input itself (an in-place form): only src is copied.
TEST_F(MovementScatterGpuTest, OutputIsTheInput) {
  ASSIGN_OR_FAIL(DeviceTensor x, upload({1, 2, 3, 4, 5, 6}, DType::kFloat32, {2, 3}));
  ASSIGN_OR_FAIL(DeviceTensor src, upload({7, 8}, DType::kFloat32, {2}));
  ASSIGN_OR_FAIL(Tensor region, select_region(x.tensor, 1, 1));
  sync(launch_scatter_into(copy_fn(DType::kFloat32, DType::kFloat32),
                           copy_fn(DType::kFloat32, DType::kFloat32), x.tensor, src.tensor,
                           x.tensor, region, nullptr));
  expect_close(x.read(), {1, 7, 3, 4, 8, 6}, 0.0, "in place");
}

// src in another dtype is converted as copy_ does.
TEST_F(MovementScatterGpuTest, SrcConverted) {
  ASSIGN_OR_FAIL(DeviceTensor x, upload({1, 2, 3, 4}, DType::kFloat32, {4}));
  ASSIGN_OR_FAIL(DeviceTensor src, upload({0.5, -kInf}, DType::kFloat16, {2}));
  ASSIGN_OR_FAIL(DeviceTensor y, output(DType::kFloat32, {4}));
  ASSIGN_OR_FAIL(Tensor region, slice_region(y.tensor, 0, 1, std::nullopt, 2));
  sync(launch_scatter_into(copy_fn(DType::kFloat32, DType::kFloat32),
                           copy_fn(DType::kFloat16, DType::kFloat32), x.tensor, src.tensor,
                           y.tensor, region, nullptr));
  expect_close(y.read(), {1, 0.5, 3, -kInf}, 0.0, "converted");
}

}  // namespace
}  // namespace kiln::cuda
