// Conformance cases for scaled_dot_product_attention (kept whole by kiln's lowering). Inputs follow
// a fixed pattern so that PyTorch 2.11 eager (CPU) could compute the hard-coded expectations from
// the same values; larger cases compare with a naive double-precision reference.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

constexpr char kSdpa[] = "aten.scaled_dot_product_attention.default";

// ((7 i + seed) mod 13 - 6) / 4 for the flat index i: the inputs the PyTorch expectations used.
std::vector<double> pattern_values(const Shape& shape, int seed) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 7 + seed) % 13) / 4 - 1.5;
  return v;
}
Tensor pattern(const Shape& shape, int seed, DType dtype = DType::kFloat32) {
  return make_tensor(dtype, shape, pattern_values(shape, seed));
}

// q [1, 2, 3, 4], k [1, 2, 5, 4], v [1, 2, 5, 6]: E = 4 differs from Ev = 6.
std::vector<Tensor> qkv(DType dtype = DType::kFloat32) {
  return {pattern({1, 2, 3, 4}, 0, dtype), pattern({1, 2, 5, 4}, 3, dtype),
          pattern({1, 2, 5, 6}, 5, dtype)};
}

const std::vector<double> kBasic = {
    -0.05522416, 0.8671019,  0.1947758,  -1.073141,  0.2065979,  -0.9107618, -0.1317122, 1.013755,
    0.1182877,   -1.105856,  0.2303598,  -0.9937842, -0.1872813, 1.128437,   0.06271861, -1.100061,
    0.2354986,   -1.059967,  -0.4328238, 0.05326885, -0.1828238, 0.3032688,  0.06717619, 0.5532689,
    -0.3572416,  -0.2137162, -0.1072416, 0.03628379, 0.1427584,  0.2862838,  -0.3079464, -0.4566635,
    -0.05794635, -0.2066634, 0.1920536,  0.04333651};

TEST(AttentionTest, DefaultScaleAndValueHeadDim) {
  auto out =
      run({.target = kSdpa, .inputs = qkv(), .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
  expect_tensor(out, DType::kFloat32, {1, 2, 3, 6}, kBasic);
}

TEST(AttentionTest, CustomScale) {
  auto out = run({.target = kSdpa,
                  .inputs = qkv(),
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}},
                  .kwargs = {{"scale", 0.3}}});
  expect_tensor(out, DType::kFloat32, {1, 2, 3, 6},
                {-0.004571062, 0.6107613,  0.245429,    -0.7170777,  0.07864774, -0.6958121,
                 -0.0791832,   0.7259368,  0.1708168,   -0.7151615,  0.1138059,  -0.7721724,
                 -0.1428558,   0.8315841,  0.1071442,   -0.6912158,  0.1359447,  -0.8442677,
                 -0.327491,    -0.1596804, -0.07749105, 0.0903196,   0.1725089,  0.3403196,
                 -0.3028306,   -0.285883,  -0.0528306,  -0.03588298, 0.1971694,  0.2141171,
                 -0.3005502,   -0.3895662, -0.05055016, -0.1395662,  0.1994499,  0.1104338});
}

// PyTorch 2.11's math and CPU flash paths both give zeros (not NaN) for a fully masked row.
TEST(AttentionTest, BoolMaskKeepsTrueAndZeroesFullyMaskedRows) {
  std::vector<Tensor> inputs = qkv();
  inputs.push_back(
      make_tensor(DType::kBool, {3, 5}, {1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
  auto out = run({.target = kSdpa,
                  .inputs = inputs,
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}}});
  expect_tensor(out, DType::kFloat32, {1, 2, 3, 6},
                {-0.1672894, 1.28185,    0.08271056,  -1.234808,  0.03185038, -0.9848085,
                 0,          0,          0,           0,          0,          0,
                 -0.1872813, 1.128437,   0.06271861,  -1.100061,  0.2354986,  -1.059967,
                 -0.6964678, 0.8319365,  -0.4464678,  1.081936,   -0.1964679, 1.331936,
                 0,          0,          0,           0,          0,          0,
                 -0.3079464, -0.4566635, -0.05794635, -0.2066634, 0.1920536,  0.04333651});
  // An additive mask of -inf masks as false does.
  inputs[3] =
      make_tensor(DType::kFloat32, {3, 5},
                  {0, -kInf, 0, 0, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, 0, 0, 0, 0, 0});
  auto additive = run({.target = kSdpa,
                       .inputs = inputs,
                       .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}}});
  ASSERT_EQ(additive.size(), 1u);
  EXPECT_EQ(to_doubles(additive[0]), to_doubles(out[0]));
}

TEST(AttentionTest, FloatMaskBroadcastsOverRows) {
  std::vector<Tensor> inputs = qkv();
  inputs.push_back(pattern({2, 1, 5}, 1));  // per head, the same for every query row
  auto out = run({.target = kSdpa,
                  .inputs = inputs,
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}}});
  expect_tensor(out, DType::kFloat32, {1, 2, 3, 6},
                {0.01751331,  0.07477033, 0.2675133,  -0.6777654, 0.377528,  -0.4938898,
                 -0.06423075, 0.249885,   0.1857693,  -0.6888714, 0.3469225, -0.5529529,
                 -0.1380697,  0.4293097,  0.1119303,  -0.6815349, 0.3074896, -0.6215512,
                 -0.1785008,  -0.8813367, 0.07149921, -0.6313367, 0.3214992, -0.3813367,
                 -0.1577467,  -1.031883,  0.09225329, -0.7818835, 0.3422533, -0.5318835,
                 -0.1792916,  -1.100463,  0.07070838, -0.850463,  0.3207084, -0.600463});
}

// The causal mask is the top-left lower triangle (query i sees keys 0..i) whatever L and S are.
TEST(AttentionTest, CausalTopLeftForLongerAndShorterQueries) {
  auto longer =
      run({.target = kSdpa,
           .inputs = {pattern({1, 5, 4}, 2), pattern({1, 3, 4}, 4), pattern({1, 3, 2}, 6)},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, 0.0, true}});
  expect_tensor(longer, DType::kFloat32, {1, 5, 2},
                {0, -1.5, 0.004636641, -1.495363, 0.3325234, -1.167477, 0.3547676, -1.145232,
                 0.3677348, -1.132265});
  auto shorter =
      run({.target = kSdpa,
           .inputs = {pattern({1, 3, 4}, 4), pattern({1, 5, 4}, 2), pattern({1, 5, 2}, 6)},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, 0.0, true}});
  expect_tensor(shorter, DType::kFloat32, {1, 3, 2},
                {0, -1.5, 0.0871613, -1.412839, 0.4527842, -1.047216});
}

// PyTorch's CPU flash path applies both (its math path rejects the pair); kiln always applies both.
TEST(AttentionTest, CausalWithMaskAppliesBoth) {
  auto out = run({.target = kSdpa,
                  .inputs = {pattern({1, 2, 3, 4}, 0), pattern({1, 2, 5, 4}, 3),
                             pattern({1, 2, 5, 4}, 5), pattern({3, 5}, 1)},
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}, 0.0, true}});
  expect_tensor(out, DType::kFloat32, {1, 2, 3, 4},
                {-0.25,      1.5,       0,          -1.5,       -0.2289561,  1.384259,
                 0.02104387, -1.478956, -0.1976962, 1.333596,   0.05230379,  -1.447696,
                 -1,         0.75,      -0.75,      1,          -0.9177417,  0.8322582,
                 -0.6677418, 1.082258,  -0.2874957, -0.7226452, -0.03749571, -0.4726452});
}

// 4 query heads over 2 key heads and 1 value head; the value's batch dim broadcasts too.
TEST(AttentionTest, GroupedQueryAttention) {
  auto out =
      run({.target = kSdpa,
           .inputs = {pattern({2, 4, 2, 3}, 0), pattern({2, 2, 3, 3}, 1), pattern({1, 1, 3, 2}, 2)},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}},
           .kwargs = {{"enable_gqa", true}}});
  expect_tensor(
      out, DType::kFloat32, {2, 4, 2, 2},
      {-0.8703507, 0.8796492, -0.7473607, 1.002639,  -0.7627475, 0.9872525, -0.7350397, 1.01496,
       -0.7689234, 0.9810765, -0.5987518, 1.151248,  -0.7842011, 0.9657987, -0.6321326, 1.117867,
       -0.7500001, 1,         -0.9003942, 0.8496059, -0.5974166, 1.152583,  -0.9620662, 0.7879339,
       -0.7310767, 1.018923,  -0.7649603, 0.9850397, -0.7372525, 1.012748,  -0.7526393, 0.9973607});
}

TEST(AttentionTest, ReducedPrecisionAndDouble) {
  for (DType d : {DType::kFloat16, DType::kBFloat16}) {
    auto out = run(
        {.target = kSdpa, .inputs = qkv(d), .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
    expect_tensor(out, d, {1, 2, 3, 6}, kBasic, 1e-2);
  }
  auto f64 = run({.target = kSdpa,
                  .inputs = qkv(DType::kFloat64),
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
  expect_tensor(f64, DType::kFloat64, {1, 2, 3, 6}, kBasic, 1e-6);
  // float16 with a float32 mask: the mask joins the float32 computation.
  std::vector<Tensor> inputs = qkv(DType::kFloat16);
  inputs.push_back(pattern({2, 1, 5}, 1));
  auto mixed = run({.target = kSdpa,
                    .inputs = inputs,
                    .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}}});
  ASSERT_EQ(mixed.size(), 1u);
  EXPECT_EQ(mixed[0].dtype(), DType::kFloat16);
  EXPECT_NEAR(to_doubles(mixed[0])[0], 0.01751331, 1e-2);
}

TEST(AttentionTest, EmptyDims) {
  auto no_queries =
      run({.target = kSdpa,
           .inputs = {pattern({2, 0, 4}, 0), pattern({2, 3, 4}, 0), pattern({2, 3, 5}, 0)},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
  expect_tensor(no_queries, DType::kFloat32, {2, 0, 5}, {});
  // No keys: every row is fully masked, so zeros (PyTorch gives zeros too).
  auto no_keys =
      run({.target = kSdpa,
           .inputs = {pattern({2, 3, 4}, 0), pattern({2, 0, 4}, 0), pattern({2, 0, 5}, 0)},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
  expect_tensor(no_keys, DType::kFloat32, {2, 3, 5}, std::vector<double>(30, 0.0));
  // E = 0: the scores are all 0 (the default scale 1/sqrt(0) multiplies nothing): the value mean.
  auto no_features =
      run({.target = kSdpa,
           .inputs = {pattern({1, 2, 0}, 0), pattern({1, 3, 0}, 0), pattern({1, 3, 2}, 3)},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
  expect_tensor(no_features, DType::kFloat32, {1, 2, 2}, {-0.5, 1.25, -0.5, 1.25});
}

TEST(AttentionTest, NanPropagatesToItsRowOnly) {
  std::vector<Tensor> inputs = qkv();
  std::vector<double> q = pattern_values({1, 2, 3, 4}, 0);
  q[4] = kNaN;  // head 0, query row 1
  inputs[0] = make_tensor(DType::kFloat32, {1, 2, 3, 4}, q);
  auto out =
      run({.target = kSdpa, .inputs = inputs, .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}});
  std::vector<double> want = kBasic;
  for (int i = 6; i < 12; ++i) want[i] = kNaN;
  expect_tensor(out, DType::kFloat32, {1, 2, 3, 6}, want);
}

// The causal mask follows the path eager takes. Query row 2 is [1, inf]: its unmasked scores
// (keys 0..2, [1, -1]) are -inf and its masked ones (keys 3..5, [1, 1]) +inf. The math path adds
// -inf to those (+inf - inf = NaN: a NaN row); the flash path (4-D, E == Ev, ...) overwrites them
// (a fully masked row: zeros). Expectations from PyTorch 2.11 eager.
TEST(AttentionTest, CausalMaskOfNonFiniteScoresFollowsEagerPath) {
  const std::vector<double> q = {1, 1, 1, 1, 1, kInf};
  const std::vector<double> k = {1, -1, 1, -1, 1, -1, 1, 1, 1, 1, 1, 1};
  std::vector<double> v(12);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    auto math =
        run1({.target = kSdpa,
              .inputs = {make_tensor(dtype, {1, 3, 2}, q), make_tensor(dtype, {1, 6, 2}, k),
                         make_tensor(dtype, {1, 6, 2}, v)},
              .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, 0.0, true}});
    expect_tensor(math, dtype, {1, 3, 2}, {0, 1, 1, 2, kNaN, kNaN});
    auto flash =
        run1({.target = kSdpa,
              .inputs = {make_tensor(dtype, {1, 1, 3, 2}, q), make_tensor(dtype, {1, 1, 6, 2}, k),
                         make_tensor(dtype, {1, 1, 6, 2}, v)},
              .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, 0.0, true}});
    expect_tensor(flash, dtype, {1, 1, 3, 2}, {0, 1, 1, 2, 0, 0});
  }
  // 4-D but Ev = 1 != E = 2: eager's math path again.
  auto narrow_v =
      run1({.target = kSdpa,
            .inputs = {make_tensor(DType::kFloat32, {1, 1, 3, 2}, q),
                       make_tensor(DType::kFloat32, {1, 1, 6, 2}, k),
                       make_tensor(DType::kFloat32, {1, 1, 6, 1}, {0, 1, 2, 3, 4, 5})},
            .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, 0.0, true}});
  expect_tensor(narrow_v, DType::kFloat32, {1, 1, 3, 1}, {0, 0.5, kNaN});
}

// A naive double-precision reference: q [B, H, L, E], k [B?, H?, S, E], v [B?, H?, S, Ev] given as
// already-broadcast accessors, an optional additive mask [L, S] per (b, h) and is_causal.
struct Reference {
  int64_t b, h, l, s, e, ev;
  double scale;
  bool causal;
};

template <typename Q, typename K, typename V, typename M>
std::vector<double> reference(const Reference& r, Q q, K k, V v, M mask) {
  std::vector<double> out;
  std::vector<double> p(static_cast<size_t>(r.s));
  for (int64_t b = 0; b < r.b; ++b) {
    for (int64_t h = 0; h < r.h; ++h) {
      for (int64_t i = 0; i < r.l; ++i) {
        double max = -kInf;
        for (int64_t j = 0; j < r.s; ++j) {
          double dot = 0;
          for (int64_t x = 0; x < r.e; ++x) dot += q(b, h, i, x) * k(b, h, j, x);
          p[j] = dot * r.scale + mask(b, h, i, j);
          if (r.causal && j > i) p[j] = -kInf;
          max = std::max(max, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < r.s; ++j) sum += (p[j] = max == -kInf ? 0 : std::exp(p[j] - max));
        for (int64_t y = 0; y < r.ev; ++y) {
          double acc = 0;
          for (int64_t j = 0; j < r.s; ++j) acc += p[j] * v(b, h, j, y);
          out.push_back(sum == 0 ? 0 : acc / sum);
        }
      }
    }
  }
  return out;
}

// Longer than one block of query rows (64), with broadcast batch dims, GQA, a per-batch mask,
// causal masking and a non-contiguous query (a [B, L, H, E] tensor seen as [B, H, L, E]).
TEST(AttentionTest, LargeMatchesNaiveReference) {
  const int64_t B = 2, H = 4, HK = 2, L = 130, S = 150, E = 16, EV = 8;
  const std::vector<double> qv = random_float_values(B * L * H * E, 1, 2.0),
                            kv = random_float_values(HK * S * E, 2, 2.0),
                            vv = random_float_values(B * HK * S * EV, 3, 2.0),
                            mv = random_float_values(B * L * S, 4, 2.0);
  const Tensor q_blhe = make_tensor(DType::kFloat32, {B, L, H, E}, qv);
  const Tensor q = q_blhe.view_as({B, H, L, E}, {L * H * E, E, H * E, 1}, 0);
  for (bool causal : {false, true}) {
    auto out = run({.target = kSdpa,
                    .inputs = {q, make_tensor(DType::kFloat32, {1, HK, S, E}, kv),
                               make_tensor(DType::kFloat32, {B, HK, S, EV}, vv),
                               make_tensor(DType::kFloat32, {B, 1, L, S}, mv)},
                    .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}, 0.0, causal},
                    .kwargs = {{"scale", 0.2}, {"enable_gqa", true}}});
    const Reference r{B, H, L, S, E, EV, 0.2, causal};
    const int64_t rep = H / HK;
    const std::vector<double> want = reference(
        r,
        [&](int64_t b, int64_t h, int64_t i, int64_t x) {
          return qv[((b * L + i) * H + h) * E + x];
        },
        [&](int64_t, int64_t h, int64_t j, int64_t x) { return kv[((h / rep) * S + j) * E + x]; },
        [&](int64_t b, int64_t h, int64_t j, int64_t y) {
          return vv[((b * HK + h / rep) * S + j) * EV + y];
        },
        [&](int64_t b, int64_t, int64_t i, int64_t j) { return mv[(b * L + i) * S + j]; });
    expect_tensor(out, DType::kFloat32, {B, H, L, EV}, want);
  }
}

TEST(AttentionTest, Errors) {
  const std::vector<Tensor> inputs = qkv();
  const std::vector<TestArg> three = {TensorArg{0}, TensorArg{1}, TensorArg{2}};
  expect_error({.target = kSdpa,
                .inputs = inputs,
                .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, 0.1}},
               "dropout_p=0.1 is not supported: kiln runs inference only");
  expect_error(
      {.target = kSdpa,
       .inputs = {pattern({1, 3, 2, 4}, 0), pattern({1, 2, 5, 4}, 0), pattern({1, 2, 5, 4}, 0)},
       .args = three,
       .kwargs = {{"enable_gqa", true}}},
      "enable_gqa expects the number of key heads to divide the number of query heads, "
      "found 2 key heads for 3 query heads");
  expect_error({.target = kSdpa,
                .inputs = {pattern({2, 4}, 0), pattern({5, 4}, 0), pattern({5, 4}, 0)},
                .args = three,
                .kwargs = {{"enable_gqa", true}}},
               "(rank >= 3)");
  expect_error(
      {.target = kSdpa,
       .inputs = {pattern({1, 4, 3, 4}, 0), pattern({1, 2, 5, 4}, 0), pattern({1, 2, 5, 4}, 0)},
       .args = three},
      "query and key batch dims");
  expect_error({.target = kSdpa,
                .inputs = {pattern({3, 4}, 0), pattern({5, 3}, 0), pattern({5, 4}, 0)},
                .args = three},
               "expected key [*, S, E=4]");
  expect_error({.target = kSdpa,
                .inputs = {pattern({3, 4}, 0), pattern({5, 4}, 0), pattern({6, 4}, 0)},
                .args = three},
               "value [*, S=5, Ev]");
  expect_error({.target = kSdpa,
                .inputs = {pattern({4}, 0), pattern({4}, 0), pattern({4}, 0)},
                .args = three},
               "of rank >= 2, found [4], [4] and [4]");
  expect_error(
      {.target = kSdpa,
       .inputs = {pattern({3, 4}, 0), pattern({5, 4}, 0, DType::kFloat16), pattern({5, 4}, 0)},
       .args = three},
      "one floating point dtype, found float32, float16 and float32");
  expect_error({.target = kSdpa,
                .inputs = {pattern({3, 4}, 0, DType::kInt64), pattern({5, 4}, 0, DType::kInt64),
                           pattern({5, 4}, 0, DType::kInt64)},
                .args = three},
               "one floating point dtype");
  std::vector<Tensor> masked = inputs;
  masked.push_back(pattern({3, 5}, 0, DType::kFloat64));
  const std::vector<TestArg> four = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}};
  expect_error({.target = kSdpa, .inputs = masked, .args = four},
               "expected attn_mask of dtype bool, float32 or the query's dtype float32, found "
               "float64");
  masked[3] = pattern({4, 5}, 0);
  expect_error({.target = kSdpa, .inputs = masked, .args = four},
               "broadcastable to the scores' shape [1, 2, 3, 5] ([*, L, S]), found [4, 5]");
  masked[3] = pattern({2, 1, 1, 3, 5}, 0);  // would grow the scores
  expect_error({.target = kSdpa, .inputs = masked, .args = four}, "found [2, 1, 1, 3, 5]");
  masked[3] = pattern({5}, 0);
  expect_error({.target = kSdpa, .inputs = masked, .args = four}, "rank >= 2");
}

}  // namespace
}  // namespace kiln::testing
