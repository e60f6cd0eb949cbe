// The embedding_bag family on the GPU against eager CUDA's rules written out here
// (EmbeddingBag.cu; its CPU kernel differs): sum (with per-sample weights), mean and max,
// padding_idx, empty bags, include_last_offset with indices past the last offset, a strided
// weight, int32 and int64 indices, and all four outputs. Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/kernel_library_embedding_bag.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

const GpuModule& embedding_bag_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource module;
    for (DType t : kFloatTypes) {
      for (int m = 0; m < 3; ++m) {
        for (DType i : {DType::kInt64, DType::kInt32}) {
          embedding_bag_kernel(module, EmbeddingBagMode(m), t, i);
        }
      }
    }
    return module.text();
  }());
  return state;
}

struct Expected {
  std::vector<double> out, offset2bag, bag_size, max_indices;
};

// Eager CUDA: bag 0 from index 0, the last bag to the end of the indices.
Expected eager_embedding_bag(const std::vector<double>& w, int64_t d,
                             const std::vector<double>& idx, const std::vector<double>& off,
                             const std::vector<double>* psw, EmbeddingBagMode mode, bool last,
                             int64_t padding_idx) {
  const int64_t n = static_cast<int64_t>(idx.size());
  const int64_t bags = static_cast<int64_t>(off.size()) - (last ? 1 : 0);
  Expected e;
  e.offset2bag.assign(n, -1);
  e.bag_size.assign(off.size(), 0);
  for (int64_t b = 0; b < bags; ++b) {
    const int64_t begin = b == 0 ? 0 : int64_t(off[b]);
    const int64_t end = b < bags - 1 ? int64_t(off[b + 1]) : n;
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      e.offset2bag[i] = b;
      count += int64_t(idx[i]) == padding_idx ? 0 : 1;
    }
    e.bag_size[b] = count;
    for (int64_t f = 0; f < d; ++f) {
      float acc = 0.f;
      int64_t seen = 0, word = -1;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t row = int64_t(idx[i]);
        const bool pad = row == padding_idx;
        const float v = float(w[row * d + f]);
        if (mode == EmbeddingBagMode::kMax) {
          if (seen == 0 || v > acc) {
            acc = pad ? acc : v;
            word = pad ? word : row;
          }
        } else {
          acc += (psw ? float((*psw)[i]) : 1.f) * (pad ? 0.f : v);
        }
        seen += pad ? 0 : 1;
      }
      if (mode == EmbeddingBagMode::kMean && seen != 0) acc /= float(seen);
      e.out.push_back(acc);
      if (mode == EmbeddingBagMode::kMax) e.max_indices.push_back(double(word));
    }
  }
  return e;
}

class EmbeddingBagGpuTest : public FamilyGpuTest<embedding_bag_module> {
 protected:
  void run(DType dtype, DType index, EmbeddingBagMode mode, std::vector<double> idx,
           std::vector<double> off, bool with_weights, bool last, int64_t padding_idx,
           bool strided_weight) {
    SCOPED_TRACE(str_cat(dtype_name(dtype), " ", dtype_name(index), " mode ", int(mode),
                         last ? " include_last_offset" : "", " padding_idx ", padding_idx));
    const int64_t rows = 10, d = 37;
    std::vector<double> wv = random_values(rows * d, 3);
    wv[2 * d + 4] = kNan;
    // A strided weight: the transpose of a [d, rows] storage.
    ASSIGN_OR_FAIL(DeviceTensor w, strided_weight ? upload(wv, dtype, {rows, d}, {1, rows})
                                                  : upload(wv, dtype, {rows, d}));
    ASSIGN_OR_FAIL(DeviceTensor i, upload(idx, index, {int64_t(idx.size())}));
    ASSIGN_OR_FAIL(DeviceTensor o, upload(off, index, {int64_t(off.size())}));
    const std::vector<double> sv = random_values(idx.size(), 5);
    ASSIGN_OR_FAIL(DeviceTensor s, upload(sv, dtype, {int64_t(idx.size())}));
    const int64_t bags = int64_t(off.size()) - (last ? 1 : 0);
    const bool max = mode == EmbeddingBagMode::kMax;
    ASSIGN_OR_FAIL(DeviceTensor out, device_output(dtype, {bags, d}));
    ASSIGN_OR_FAIL(DeviceTensor o2b, device_output(index, {int64_t(idx.size())}));
    ASSIGN_OR_FAIL(DeviceTensor sizes, device_output(index, {int64_t(off.size())}));
    ASSIGN_OR_FAIL(DeviceTensor arg, device_output(index, max ? Shape{bags, d} : Shape{0}));
    ModuleSource names;
    auto fn = embedding_bag_module().module->kernel(embedding_bag_kernel(names, mode, dtype, index));
    ASSERT_TRUE(fn.ok()) << fn.status().to_string();
    EmbeddingBagParams params{mode, last, padding_idx};
    const EmbeddingBagOutputs outs{&out.tensor, &o2b.tensor, &sizes.tensor, &arg.tensor};
    ASSERT_TRUE(launch_embedding_bag(*fn, w.tensor, i.tensor, o.tensor,
                                     with_weights ? &s.tensor : nullptr, outs, params, nullptr)
                    .ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<double> svals = s.values();
    // Row-major weight values as uploaded (the strided view reads them transposed).
    std::vector<double> wrows = w.values();
    const Expected e = eager_embedding_bag(wrows, d, idx, off, with_weights ? &svals : nullptr,
                                           mode, last, padding_idx);
    // fp32 sums in the same order: exact up to the GPU's fused multiply-adds.
    expect_close(out.read(), rounded(e.out, dtype), dtype == DType::kFloat32 ? 1e-6 : 0.0,
                 "output");
    expect_close(o2b.read(), e.offset2bag, 0.0, "offset2bag");
    expect_close(sizes.read(), e.bag_size, 0.0, "bag_size");
    if (max) expect_close(arg.read(), e.max_indices, 0.0, "max_indices");
  }
};

TEST_F(EmbeddingBagGpuTest, ModesAndForms) {
  const std::vector<double> idx = {1, 2, 4, 5, 4, 3, 2, 9, 0, 2};
  const DType f32 = DType::kFloat32, i64 = DType::kInt64, i32 = DType::kInt32;
  const auto sum = EmbeddingBagMode::kSum, mean = EmbeddingBagMode::kMean,
             max = EmbeddingBagMode::kMax;
  // The conformance sample's form: sum with per-sample weights, two bags.
  run(f32, i64, sum, {1, 2, 4, 5, 4}, {0, 2}, true, false, -1, false);
  // Empty bags (repeated offsets), padding, a strided weight.
  run(f32, i64, sum, idx, {0, 3, 3, 8}, false, false, 2, true);
  run(f32, i32, mean, idx, {0, 3, 3, 8}, false, false, 2, false);
  run(f32, i64, max, idx, {0, 3, 3, 8}, false, false, 4, false);
  // include_last_offset with indices past the last offset: eager CUDA's last bag takes them.
  run(f32, i64, sum, idx, {0, 4, 7}, true, true, -1, false);
  run(f32, i32, max, idx, {0, 4, 7}, false, true, -1, true);
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    run(t, i64, sum, idx, {0, 4, 7}, false, false, -1, false);
    run(t, i64, mean, idx, {0, 4, 7}, false, false, 5, false);
    run(t, i32, max, idx, {0, 4, 7}, false, false, -1, false);
  }
}

}  // namespace
}  // namespace kiln::cuda
