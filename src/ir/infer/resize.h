// The arguments of the upsample ops, read once for inference and kernels alike.
#pragma once

#include <optional>
#include <vector>

#include "ir/op_context.h"

namespace kiln::ir {

enum class ResizeMode : uint8_t { kNearest, kNearestExact, kLinear };

struct ResizeArgs {
  ResizeMode mode = ResizeMode::kNearest;
  bool align_corners = false;
  Shape output_size;                          // the spatial dims of the output
  std::vector<std::optional<double>> scales;  // per spatial dim, as the caller gave them
};

// Reads and validates the arguments of upsample_{nearest,bilinear}{1,2}d (.vec and .default).
Result<ResizeArgs> resize_args(OpContext& ctx);

}  // namespace kiln::ir
