#include "ir/infer/infer_util.h"

namespace kiln::ir {

Result<int64_t> wrap_dim(int64_t dim, int64_t rank) {
  const int64_t r = std::max<int64_t>(rank, 1);
  if (dim < -r || dim >= r) {
    return out_of_range("dim ", dim, " is out of range for a tensor of rank ", rank,
                        " (expected a value in [", -r, ", ", r - 1, "])");
  }
  return dim < 0 ? dim + r : dim;
}

Result<Shape> broadcast_shapes(std::span<const int64_t> a, std::span<const int64_t> b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return invalid_argument("shapes ", shape_to_string(a), " and ", shape_to_string(b),
                              " do not broadcast (dim ", i, ": ", da, " vs ", db, ")");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace kiln::ir
