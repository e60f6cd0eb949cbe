#include "support/kernel_values.h"

#include <algorithm>
#include <random>

namespace kiln::testing {

std::vector<float> random_floats(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(std::max<int64_t>(count, 0)));
  for (float& v : values) v = dist(rng);
  return values;
}

std::vector<double> random_float_values(int64_t count, uint32_t seed, double bound) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-bound, bound);
  std::vector<double> values(static_cast<size_t>(std::max<int64_t>(count, 0)));
  for (double& v : values) v = static_cast<float>(dist(rng));
  return values;
}

Tensor transposed(const Tensor& t) {
  return t.view_as({t.size(1), t.size(0)}, {t.strides()[1], t.strides()[0]}, t.offset());
}

}  // namespace kiln::testing
