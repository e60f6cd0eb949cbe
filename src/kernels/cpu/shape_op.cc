// CPU reference kernels for the shape ops that move data into a new tensor: cat, stack,
// constant_pad_nd, repeat/tile, flip, roll, tril/triu, pixel_shuffle/unshuffle, channel_shuffle.
// Each builds strided views of its input and output and lets copy_strided move the bytes, so every
// dtype and every input layout takes the same path. The view ops live in shape_op_view.cc.
#include <algorithm>
#include <cstring>
#include <map>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/shape_op_util.h"

namespace kiln::cpu {
namespace {

using ir::OpKey;

Tensor narrow_of(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  Shape sizes = t.sizes();
  sizes[dim] = length;
  return t.view_as(std::move(sizes), t.strides(), t.offset() + start * t.strides()[dim]);
}

bool skipped_by_cat(const Tensor& t) {
  return t.dim() == 1 && t.size(0) == 0;
}

Status cat(ir::OpContext& ctx) {
  const std::vector<const Tensor*> inputs = ctx.tensors(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  const auto first = std::find_if(inputs.begin(), inputs.end(),
                                  [](const Tensor* t) { return t && !skipped_by_cat(*t); });
  if (out.numel() == 0 || first == inputs.end()) return ok_status();
  KILN_ASSIGN_OR_RETURN(int64_t dim, ir::wrap_dim(ctx.int_arg(1), out.dim()));
  int64_t at = 0;
  for (const Tensor* t : inputs) {
    if (!t || skipped_by_cat(*t)) continue;
    if (t->dim() != out.dim() || t->size(dim) > out.size(dim) - at) {
      return internal_error("cat: input ", t->description(), " does not fit the output ",
                            out.description());
    }
    KILN_RETURN_IF_ERROR(copy_into(narrow_of(out, dim, at, t->size(dim)), *t));
    at += t->size(dim);
  }
  return ok_status();
}

Status stack(ir::OpContext& ctx) {
  const std::vector<const Tensor*> inputs = ctx.tensors(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(int64_t dim, ir::wrap_dim(ctx.int_arg(1), out.dim()));
  if (out.dim() == 0 || out.size(dim) != static_cast<int64_t>(inputs.size())) {
    return internal_error("stack: the output ", out.description(), " does not fit the inputs");
  }
  Shape sizes = out.sizes(), strides = out.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) return internal_error("stack: missing input ", i);
    const int64_t offset = out.offset() + static_cast<int64_t>(i) * out.strides()[dim];
    KILN_RETURN_IF_ERROR(copy_into(out.view_as(sizes, strides, offset), *inputs[i]));
  }
  return ok_status();
}

Status constant_pad_nd(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const std::vector<int64_t> pad = ctx.ints(1);
  const ir::Scalar value = ctx.scalar(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  fill_scalar(out, value);
  // The part of the input that survives cropping (negative pads), and where it lands.
  Tensor src = in, dst = out;
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    const int64_t d = in.dim() - 1 - static_cast<int64_t>(i);
    const int64_t lo = pad[2 * i], hi = pad[2 * i + 1];
    const int64_t start = std::max<int64_t>(-lo, 0);
    const int64_t length = in.size(d) - start - std::max<int64_t>(-hi, 0);
    if (length <= 0) return ok_status();
    src = narrow_of(src, d, start, length);
    dst = narrow_of(dst, d, std::max<int64_t>(lo, 0), length);
  }
  return copy_into(dst, src);
}

// repeat and tile: the output, seen as [r0, s0, r1, s1, ...], takes the input broadcast over r*.
Status repeat(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  std::vector<int64_t> reps = ctx.ints(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  if (static_cast<int64_t>(reps.size()) < in.dim()) {
    reps.insert(reps.begin(), in.dim() - static_cast<int64_t>(reps.size()), 1);
  }
  const int64_t lead = static_cast<int64_t>(reps.size()) - in.dim();
  if (out.dim() != static_cast<int64_t>(reps.size())) return internal_error("repeat: bad output");
  if (out.numel() == 0) return ok_status();
  Shape sizes, dst_strides, src_strides;
  for (int64_t i = 0; i < out.dim(); ++i) {
    const int64_t s = i < lead ? 1 : in.size(i - lead);
    sizes.insert(sizes.end(), {reps[i], s});
    dst_strides.insert(dst_strides.end(), {s * out.strides()[i], out.strides()[i]});
    src_strides.insert(src_strides.end(), {0, i < lead ? 0 : in.strides()[i - lead]});
  }
  return copy_into(out.view_as(sizes, dst_strides, out.offset()),
                   in.view_as(sizes, src_strides, in.offset()));
}

// flip: the input seen with negated strides, starting from its last element along each dim.
Status flip(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const std::vector<int64_t> dims = ctx.ints(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  Shape strides = in.strides();
  int64_t offset = in.offset();
  for (int64_t d : dims) {
    KILN_ASSIGN_OR_RETURN(int64_t w, ir::wrap_dim(d, in.dim()));
    if (w >= in.dim() || in.size(w) == 0) continue;
    offset += (in.size(w) - 1) * strides[w];
    strides[w] = -strides[w];
  }
  return copy_into(ctx.output_tensor(0), in.view_as(in.sizes(), std::move(strides), offset));
}

// roll: along each rolled dim the input splits into two blocks that swap places; with k dims that
// is 2^k block copies. No dims: the tensor is rolled as if flattened.
Status roll(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const std::vector<int64_t> shifts = ctx.ints(1), dims = ctx.ints(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  if (in.numel() == 0) return ok_status();
  Tensor src = in, dst = out;
  std::map<int64_t, int64_t> shift_of;  // a dim named twice rolls by the sum
  if (dims.empty()) {
    if (shifts.size() != 1) return internal_error("roll: bad shifts");
    KILN_ASSIGN_OR_RETURN(src, in.contiguous());
    src = src.view_as({in.numel()}, {1}, src.offset());
    dst = out.view_as({out.numel()}, {1}, out.offset());
    shift_of[0] = shifts[0];
  } else {
    if (shifts.size() != dims.size()) return internal_error("roll: bad shifts");
    for (size_t i = 0; i < dims.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(int64_t w, ir::wrap_dim(dims[i], in.dim()));
      if (w < in.dim()) shift_of[w] = (shift_of[w] + shifts[i] % in.size(w)) % in.size(w);
    }
  }
  const std::vector<std::pair<int64_t, int64_t>> rolled(shift_of.begin(), shift_of.end());
  for (uint64_t mask = 0; mask < (uint64_t{1} << rolled.size()); ++mask) {
    Tensor s = src, d = dst;
    bool empty = false;
    for (size_t j = 0; j < rolled.size(); ++j) {
      const auto [dim, shift] = rolled[j];
      const int64_t n = src.size(dim), k = ((shift % n) + n) % n;
      // Block 0: src [0, n-k) -> dst [k, n); block 1: src [n-k, n) -> dst [0, k).
      const bool second = (mask >> j) & 1;
      const int64_t length = second ? k : n - k;
      empty = empty || length == 0;
      s = narrow_of(s, dim, second ? n - k : 0, length);
      d = narrow_of(d, dim, second ? 0 : k, length);
    }
    if (!empty) KILN_RETURN_IF_ERROR(copy_into(d, s));
  }
  return ok_status();
}

// tril keeps j - i <= k, triu keeps j - i >= k; the rest of each row is zero bytes in any dtype.
Status tril_triu(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const bool lower = ctx.node().op == OpKey::aten_tril_default;
  const Tensor out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(copy_into(out, in));
  if (out.dim() < 2 || out.numel() == 0) return ok_status();
  const int64_t rows = out.size(out.dim() - 2), cols = out.size(out.dim() - 1);
  const int64_t k = std::clamp<int64_t>(ctx.int_arg(1), -rows - 1, cols + 1);
  const int64_t elem = static_cast<int64_t>(dtype_size(out.dtype()));
  char* base = static_cast<char*>(out.raw_data());
  const int64_t matrices = out.numel() / (rows * cols);
  for (int64_t m = 0; m < matrices; ++m) {
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t begin = lower ? std::clamp<int64_t>(i + k + 1, 0, cols) : 0;
      const int64_t end = lower ? cols : std::clamp<int64_t>(i + k, 0, cols);
      if (end <= begin) continue;
      std::memset(base + ((m * rows + i) * cols + begin) * elem, 0,
                  static_cast<size_t>((end - begin) * elem));
    }
  }
  return ok_status();
}

// out[..., c, h*r + i, w*r + j] = in[..., c*r*r + i*r + j, h, w] (pixel_shuffle) and its inverse
// (pixel_unshuffle), as one strided copy over [..., C, H, r, W, r] / [..., C, r, r, H, W].
Status pixel_shuffle(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const int64_t r = ctx.int_arg(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  const bool up = ctx.node().op == OpKey::aten_pixel_shuffle_default;
  if (out.numel() == 0) return ok_status();
  if (in.dim() < 3 || r <= 0) return internal_error("pixel_shuffle: bad input");
  const int64_t b = in.dim() - 3;
  // `big` is the side with the large image (out for shuffle, in for unshuffle).
  const Tensor& big = up ? out : in;
  const Tensor& small = up ? in : out;
  const int64_t c = big.size(b), h = small.size(b + 1), w = small.size(b + 2);
  const int64_t bc = big.strides()[b], bh = big.strides()[b + 1], bw = big.strides()[b + 2];
  const int64_t sc = small.strides()[b], sh = small.strides()[b + 1], sw = small.strides()[b + 2];
  Shape sizes(big.sizes().begin(), big.sizes().begin() + b);
  Shape big_strides(big.strides().begin(), big.strides().begin() + b);
  Shape small_strides(small.strides().begin(), small.strides().begin() + b);
  // Iterate in the large image's row-major order: [C, H, r, W, r].
  sizes.insert(sizes.end(), {c, h, r, w, r});
  big_strides.insert(big_strides.end(), {bc, bh * r, bh, bw * r, bw});
  small_strides.insert(small_strides.end(), {sc * r * r, sh, sc * r, sw, sc});
  const Tensor big_view = big.view_as(sizes, big_strides, big.offset());
  const Tensor small_view = small.view_as(sizes, small_strides, small.offset());
  return up ? copy_into(big_view, small_view) : copy_into(small_view, big_view);
}

// out[n, j*g + i, ...] = in[n, i*(C/g) + j, ...]: the channels seen as [g, C/g], transposed.
Status channel_shuffle(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const int64_t g = ctx.int_arg(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  if (in.dim() < 2 || g <= 0 || in.size(1) % g != 0)
    return internal_error("channel_shuffle: bad groups");
  const int64_t per = in.size(1) / g;
  Shape sizes = in.sizes(), dst_strides = out.strides(), src_strides = in.strides();
  sizes[1] = per;
  sizes.insert(sizes.begin() + 2, g);
  dst_strides[1] = out.strides()[1] * g;
  dst_strides.insert(dst_strides.begin() + 2, out.strides()[1]);
  src_strides.insert(src_strides.begin() + 2, in.strides()[1] * per);
  return copy_into(out.view_as(sizes, dst_strides, out.offset()),
                   in.view_as(sizes, src_strides, in.offset()));
}

}  // namespace

Status register_shape_op_kernels(ir::OpFunctionTable& table) {
  KILN_RETURN_IF_ERROR(register_shape_op_view_kernels(table));
  return add_all(table, {{OpKey::aten_cat_default, cat},
                         {OpKey::aten_concat_default, cat},
                         {OpKey::aten_concatenate_default, cat},
                         {OpKey::aten_stack_default, stack},
                         {OpKey::aten_constant_pad_nd_default, constant_pad_nd},
                         {OpKey::aten_repeat_default, repeat},
                         {OpKey::aten_tile_default, repeat},
                         {OpKey::aten_flip_default, flip},
                         {OpKey::aten_roll_default, roll},
                         {OpKey::aten_tril_default, tril_triu},
                         {OpKey::aten_triu_default, tril_triu},
                         {OpKey::aten_pixel_shuffle_default, pixel_shuffle},
                         {OpKey::aten_pixel_unshuffle_default, pixel_shuffle},
                         {OpKey::aten_channel_shuffle_default, channel_shuffle},
                         {OpKey::aten_native_channel_shuffle_default, channel_shuffle}});
}

}  // namespace kiln::cpu
