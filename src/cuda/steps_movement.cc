// The movement family of library ops (steps.h, LibraryFamily): constant_pad_nd, flip, repeat,
// pixel_shuffle and pixel_unshuffle through the gather kernel, slice_scatter and select_scatter
// as two copies, and empty_strided as zeros (kernel_library_movement.h).
#include <algorithm>
#include <optional>

#include "cuda/kernel_library_movement.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kAllButDouble[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                   DType::kInt64,   DType::kInt32,   DType::kInt16,
                                   DType::kInt8,    DType::kUInt8,   DType::kBool};

// --- reading a node's arguments -----------------------------------------------------------------

const ir::Value* tensor_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}
// An int list whose every entry is a constant (a lone int counts as a list of one).
std::optional<std::vector<int64_t>> static_ints(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const auto* list = std::get_if<std::vector<ir::SymInt>>(&node.args[i])) {
    std::vector<int64_t> out;
    for (const ir::SymInt& s : *list) {
      if (s.value) return std::nullopt;
      out.push_back(s.constant);
    }
    return out;
  }
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return std::vector<int64_t>{*v};
  return std::nullopt;
}
std::optional<int64_t> static_int(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return *v;
  return std::nullopt;
}
// An optional int: nullopt when symbolic (or missing), {nullopt} for None.
std::optional<std::optional<int64_t>> static_optional_int(const ir::Node& node, size_t i) {
  if (i >= node.args.size() || std::holds_alternative<ir::NoneArg>(node.args[i])) {
    return std::optional<int64_t>();
  }
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return std::optional<int64_t>(*v);
  return std::nullopt;
}
std::optional<PadValue> static_scalar(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return PadValue{};  // the schema's default, 0
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) {
    return PadValue{static_cast<double>(*v), *v, true};
  }
  if (const bool* v = std::get_if<bool>(&node.args[i])) {
    return PadValue{*v ? 1.0 : 0.0, *v ? 1 : 0, true};
  }
  if (const double* v = std::get_if<double>(&node.args[i])) return PadValue{*v, 0, false};
  return std::nullopt;
}

size_t rank_of(const ir::Value* v) { return v ? v->shape.size() : 0; }

// Whether `strides` lay out `sizes` densely (each element once, no gaps) in some dim order: then
// empty_strided's storage holds exactly its elements, as the contiguous buffer kiln gives it does.
bool dense(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  if (sizes.size() != strides.size()) return false;
  std::vector<size_t> order;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return true;  // no elements: nothing to lay out
    if (sizes[d] != 1) order.push_back(d);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return strides[a] < strides[b]; });
  int64_t expected = 1;
  for (size_t d : order) {
    if (strides[d] != expected) return false;
    expected *= sizes[d];
  }
  return true;
}

// --- verdicts ---------------------------------------------------------------------------------

Verdict args_verdict(const ir::Node& node) {
  const ir::Value* in = tensor_arg(node, 0);
  switch (node.op) {
    case OpKey::aten_constant_pad_nd_default: {
      const auto pad = static_ints(node, 1);
      if (!pad) return Verdict::reject("pads known only at run time");
      if (pad->size() % 2 != 0 || pad->size() / 2 > rank_of(in)) {
        return Verdict::reject(str_cat(pad->size(), " pad values for a rank-", rank_of(in),
                                       " input (pairs for at most every dim)"));
      }
      if (!static_scalar(node, 2)) return Verdict::reject("a pad value known only at run time");
      return Verdict::accept();
    }
    case OpKey::aten_flip_default:
      if (!static_ints(node, 1)) return Verdict::reject("dims known only at run time");
      return Verdict::accept();
    case OpKey::aten_repeat_default: {
      const auto repeats = static_ints(node, 1);
      if (!repeats) return Verdict::reject("repeats known only at run time");
      if (repeats->size() < rank_of(in)) {
        return Verdict::reject(str_cat(repeats->size(), " repeats for a rank-", rank_of(in),
                                       " input (PyTorch needs at least one per dim)"));
      }
      return Verdict::accept();
    }
    case OpKey::aten_pixel_shuffle_default:
    case OpKey::aten_pixel_unshuffle_default:
      if (rank_of(in) < 3) return Verdict::reject("an input of rank < 3 (expected [*, C, H, W])");
      if (!static_int(node, 1)) return Verdict::reject("a factor known only at run time");
      return Verdict::accept();
    case OpKey::aten_slice_scatter_default:
      if (rank_of(in) == 0) return Verdict::reject("a 0-d input");
      if (!static_int(node, 2) || !static_optional_int(node, 3) ||
          !static_optional_int(node, 4) || !static_int(node, 5)) {
        return Verdict::reject("dim, start, end or step known only at run time");
      }
      if (*static_int(node, 5) < 1) return Verdict::reject("a step < 1");
      return Verdict::accept();
    case OpKey::aten_select_scatter_default:
      if (rank_of(in) == 0) return Verdict::reject("a 0-d input");
      if (!static_int(node, 2) || !static_int(node, 3)) {
        return Verdict::reject("dim or index known only at run time");
      }
      return Verdict::accept();
    case OpKey::aten_empty_strided_default: {
      const auto sizes = static_ints(node, 0), strides = static_ints(node, 1);
      if (!sizes || !strides) return Verdict::reject("sizes or strides known only at run time");
      // kiln stores the result contiguous (zeros, as engines are deterministic); a layout with
      // gaps or overlaps would span more or fewer elements than that buffer, which a later
      // as_strided could tell apart.
      if (!dense(*sizes, *strides)) {
        return Verdict::reject(str_cat("strides ", shape_to_string(*strides), " for sizes ",
                                       shape_to_string(*sizes),
                                       " that leave gaps or overlap (kiln stores it dense)"));
      }
      return Verdict::accept();
    }
    default:
      return Verdict::reject("not a movement op");
  }
}

bool takes(OpKey op) {
  switch (op) {
    case OpKey::aten_constant_pad_nd_default:
    case OpKey::aten_flip_default:
    case OpKey::aten_repeat_default:
    case OpKey::aten_pixel_shuffle_default:
    case OpKey::aten_pixel_unshuffle_default:
    case OpKey::aten_slice_scatter_default:
    case OpKey::aten_select_scatter_default:
    case OpKey::aten_empty_strided_default:
      return true;
    default:
      return false;
  }
}

Verdict verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kAllButDouble); !v.accepted()) return v;
  std::vector<const ir::Value*> tensors(node.outputs.begin(), node.outputs.end());
  for (const ir::Value* v : node.input_values()) tensors.push_back(v);
  for (const ir::Value* v : tensors) {
    if (v && v->kind == ir::ValueKind::kTensor && rank_of(v) > kMaxKernelDims) {
      return Verdict::reject(str_cat("a tensor of rank ", rank_of(v), " (the kernels take <= ",
                                     kMaxKernelDims, ")"));
    }
  }
  const bool factory = node.op == OpKey::aten_empty_strided_default;
  if (!factory && !tensor_arg(node, 0)) return Verdict::reject("the input is not a tensor");
  return args_verdict(node);
}

// --- steps ------------------------------------------------------------------------------------

// The gather ops: the kernel for the op, a launch with the arguments read at planning time.
Result<std::unique_ptr<Step>> gather_step(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = tensor_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  MoveOp op;
  switch (node.op) {
    case OpKey::aten_constant_pad_nd_default: op = MoveOp::kConstantPad; break;
    case OpKey::aten_flip_default: op = MoveOp::kFlip; break;
    case OpKey::aten_repeat_default: op = MoveOp::kRepeat; break;
    case OpKey::aten_pixel_shuffle_default: op = MoveOp::kPixelShuffle; break;
    default: op = MoveOp::kPixelUnshuffle; break;
  }
  const std::vector<int64_t> ints = static_ints(node, 1).value_or(std::vector<int64_t>{});
  const PadValue value = static_scalar(node, 2).value_or(PadValue{});
  const std::string kernel = move_kernel(module, op, in->dtype);
  return make_step(node, "movement", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) -> Status {
      switch (op) {
        case MoveOp::kConstantPad: return launch_constant_pad(fn, x, y, ints, value, s);
        case MoveOp::kFlip: return launch_flip(fn, x, y, ints, s);
        case MoveOp::kRepeat: return launch_repeat(fn, x, y, ints, s);
        case MoveOp::kPixelShuffle: return launch_pixel_shuffle(fn, x, y, ints.at(0), s);
        case MoveOp::kPixelUnshuffle: return launch_pixel_unshuffle(fn, x, y, ints.at(0), s);
      }
      return internal_error("movement: unknown op");
    });
  });
}

// slice_scatter(input, src, dim, start, end, step) and select_scatter(input, src, dim, index):
// the output's region is taken at bind time, from the sizes the input has then.
Result<std::unique_ptr<Step>> scatter_step(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = tensor_arg(node, 0);
  const ir::Value* src = tensor_arg(node, 1);
  const ir::Value* out = node.outputs[0];
  if (!in || !src) return unsupported("'", node.name, "': input and src must be tensors");
  // The verdict (run by make first) checked that these are constants.
  const bool slice = node.op == OpKey::aten_slice_scatter_default;
  const int64_t dim = *static_int(node, 2);
  const std::optional<int64_t> start = slice ? *static_optional_int(node, 3) : std::nullopt;
  const std::optional<int64_t> end = slice ? *static_optional_int(node, 4) : std::nullopt;
  const int64_t step = slice ? *static_int(node, 5) : 1;
  const int64_t index = slice ? 0 : *static_int(node, 3);
  const std::string copy_input = copy_kernel(module, in->dtype, out->dtype);
  const std::string copy_src = copy_kernel(module, src->dtype, out->dtype);
  return make_step(
      node, "movement", {in, src},
      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
        const Tensor x = slot_tensor(slots, in), s = slot_tensor(slots, src);
        const Tensor y = slot_tensor(slots, out);
        KILN_ASSIGN_OR_RETURN(const Tensor region, slice ? slice_region(y, dim, start, end, step)
                                                         : select_region(y, dim, index));
        KILN_ASSIGN_OR_RETURN(cudaKernel_t input_fn, ctx.kernel(copy_input));
        KILN_ASSIGN_OR_RETURN(cudaKernel_t src_fn, ctx.kernel(copy_src));
        return Launch([=](cudaStream_t stream) {
          return launch_scatter_into(input_fn, src_fn, x, s, y, region, stream);
        });
      });
}

// empty_strided: zeros, as kiln's other empty factories give (deterministic engines), in the
// buffer the planner laid out; the verdict took only dense strides, which that buffer matches in
// size.
Result<std::unique_ptr<Step>> empty_strided_step(const ir::Node& node, ModuleSource& module) {
  const ir::Value* out = node.outputs[0];
  const std::string kernel = fill_kernel(module, out->dtype);
  return make_step(node, "factory", {}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor y = slot_tensor(slots, out);
    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
      return launch_fill(fn, y, 0.0, s);
    });
  });
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots&, ModuleSource& module) {
  if (Verdict v = verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  switch (node.op) {
    case OpKey::aten_slice_scatter_default:
    case OpKey::aten_select_scatter_default:
      return scatter_step(node, module);
    case OpKey::aten_empty_strided_default:
      return empty_strided_step(node, module);
    default:
      return gather_step(node, module);
  }
}

}  // namespace

const LibraryFamily& movement_family() {
  static const LibraryFamily family{"movement", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
