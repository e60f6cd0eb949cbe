// The grid_sample family of library ops (steps.h, LibraryFamily): aten.grid_sampler_2d, one
// kernel of kernel_library_grid_sample.h per interpolation, padding and dtype.
#include <optional>

#include "cuda/kernel_library_grid_sample.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};


// grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners), each mode and
// the flag constants the program wrote.
struct GridSampleArgs {
  GridInterpolation mode = GridInterpolation::kBilinear;
  GridPadding padding = GridPadding::kZeros;
  bool align_corners = false;
  std::string problem;  // why they cannot be read ahead of time
};
GridSampleArgs grid_sample_args(const ir::Node& node) {
  GridSampleArgs a;
  const int64_t* mode = node.args.size() > 2 ? std::get_if<int64_t>(&node.args[2]) : nullptr;
  const int64_t* padding = node.args.size() > 3 ? std::get_if<int64_t>(&node.args[3]) : nullptr;
  const bool* align = node.args.size() > 4 ? std::get_if<bool>(&node.args[4]) : nullptr;
  if (!mode || !padding || !align) {
    a.problem = "interpolation_mode, padding_mode or align_corners known only at run time";
    return a;
  }
  if (*mode < 0 || *mode > 2) {
    a.problem = str_cat("interpolation_mode ", *mode, " (expected 0, 1 or 2)");
    return a;
  }
  if (*padding < 0 || *padding > 2) {
    a.problem = str_cat("padding_mode ", *padding, " (expected 0, 1 or 2)");
    return a;
  }
  a.mode = static_cast<GridInterpolation>(*mode);
  a.padding = static_cast<GridPadding>(*padding);
  a.align_corners = *align;
  return a;
}

bool takes(OpKey op) { return op == OpKey::aten_grid_sampler_2d_default; }

Verdict verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* grid = value_arg(node, 1);
  if (!in || !grid || in->shape.size() != 4 || grid->shape.size() != 4) {
    return Verdict::reject("expected a 4-D input and a 4-D grid");
  }
  // Eager's CUDA kernel takes one dtype for both (its CPU kernel too).
  if (grid->dtype != in->dtype) {
    return Verdict::reject(str_cat("a ", dtype_name(grid->dtype), " grid for a ",
                                   dtype_name(in->dtype), " input"));
  }
  if (GridSampleArgs a = grid_sample_args(node); !a.problem.empty()) {
    return Verdict::reject(a.problem);
  }
  return Verdict::accept();
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots&, ModuleSource& module) {
  if (Verdict v = verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* grid = value_arg(node, 1);
  const ir::Value* out = node.outputs[0];
  const GridSampleArgs a = grid_sample_args(node);
  const std::string kernel = grid_sample_kernel(module, a.mode, a.padding, in->dtype);
  const bool align_corners = a.align_corners;
  return make_step(node, "grid_sample", {in, grid},
                   [=](const Slots& slots, BindContext& ctx, size_t) {
                     const Tensor x = slot_tensor(slots, in), g = slot_tensor(slots, grid);
                     const Tensor y = slot_tensor(slots, out);
                     return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                       return launch_grid_sample(fn, x, g, y, align_corners, s);
                     });
                   });
}

}  // namespace

const LibraryFamily& grid_sample_family() {
  static const LibraryFamily family{"grid sample", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
