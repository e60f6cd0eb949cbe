// Shape and dtype inference for the shape ops: views (view, permute, expand, slice, split, ...) and
// the ops that only move data (cat, stack, pad, repeat, flip, roll, tril, pixel_shuffle, ...).
// Views get their shapes here; the CPU kernel computes their strides. The *_copy variants share
// the inference of their view.
#include <algorithm>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

Status with_op(OpContext& ctx, Status status) {
  status.with_context(str_cat(op_name(ctx.node().op), " (node '", ctx.node().name, "')"));
  return status;
}

Result<int64_t> wrap(OpContext& ctx, int64_t dim, int64_t rank) {
  auto r = wrap_dim(dim, rank);
  if (!r.ok()) return with_op(ctx, r.take_status());
  return r;
}

// Wraps every dim of `dims`; a dim named twice is an error.
Result<std::vector<int64_t>> wrap_unique(OpContext& ctx, const std::vector<int64_t>& dims,
                                         int64_t rank) {
  std::vector<int64_t> out;
  for (int64_t d : dims) {
    KILN_ASSIGN_OR_RETURN(int64_t w, wrap(ctx, d, rank));
    if (std::find(out.begin(), out.end(), w) != out.end()) {
      return op_error(ctx, "dim ", w, " appears multiple times in the list of dims ",
                      shape_to_string(dims));
    }
    out.push_back(w);
  }
  return out;
}

Status set_meta(OpContext& ctx, size_t i, DType dtype, Shape sizes) {
  ctx.set_output(i, Tensor::meta(dtype, std::move(sizes)));
  return ok_status();
}

Status same_shape(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  return set_meta(ctx, 0, in.dtype(), in.sizes());
}

// Resolves one -1 in `shape` so that it holds `numel` elements (PyTorch's infer_size).
Result<Shape> infer_size(OpContext& ctx, Shape shape, int64_t numel) {
  int64_t inferred = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0) {
        return op_error(ctx, "only one dimension can be inferred, found shape ",
                        shape_to_string(shape));
      }
      inferred = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      return op_error(ctx, "invalid shape dimension ", shape[i], " at index ", i, " of shape ",
                      shape_to_string(shape));
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      return op_error(ctx, "shape ", shape_to_string(shape), " has too many elements");
    }
  }
  if (inferred >= 0 && known == 0 && numel == 0) {
    return op_error(ctx, "cannot reshape a tensor of 0 elements into shape ",
                    shape_to_string(shape), ": the -1 dimension is ambiguous");
  }
  if (inferred >= 0 && known != 0 && numel % known == 0) {
    shape[inferred] = numel / known;
  } else if (inferred >= 0 || known != numel) {
    return op_error(ctx, "shape ", shape_to_string(shape), " is invalid for input of ", numel,
                    " elements");
  }
  return shape;
}

// view, reshape, _unsafe_view, view_copy: (self, size).
Status view(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(Shape shape, infer_size(ctx, ctx.ints(1), in.numel()));
  return set_meta(ctx, 0, in.dtype(), std::move(shape));
}

Status flatten(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return set_meta(ctx, 0, in.dtype(), {1});
  KILN_ASSIGN_OR_RETURN(int64_t start, wrap(ctx, ctx.int_arg(1), in.dim()));
  KILN_ASSIGN_OR_RETURN(int64_t end, wrap(ctx, ctx.int_arg(2), in.dim()));
  if (start > end) {
    return op_error(ctx, "start_dim (", start, ") must not come after end_dim (", end, ")");
  }
  Shape out(in.sizes().begin(), in.sizes().begin() + start);
  out.push_back(shape_numel(std::span(in.sizes()).subspan(start, end - start + 1)));
  out.insert(out.end(), in.sizes().begin() + end + 1, in.sizes().end());
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status unflatten(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "expected a tensor of rank >= 1, found a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim()));
  std::vector<int64_t> sizes = ctx.ints(2);
  if (sizes.empty()) return op_error(ctx, "expected a non-empty list of sizes");
  auto resolved = infer_size(ctx, sizes, in.size(dim));
  if (!resolved.ok()) {
    return op_error(ctx, "sizes ", shape_to_string(sizes),
                    " do not multiply up to the size of dim ", dim, " (", in.size(dim),
                    ") of the input ", in.description());
  }
  Shape out(in.sizes().begin(), in.sizes().begin() + dim);
  out.insert(out.end(), resolved->begin(), resolved->end());
  out.insert(out.end(), in.sizes().begin() + dim + 1, in.sizes().end());
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status permute(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const std::vector<int64_t> dims = ctx.ints(1);
  if (static_cast<int64_t>(dims.size()) != in.dim()) {
    return op_error(ctx, "expected ", in.dim(), " dims for an input of shape ",
                    shape_to_string(in.sizes()), ", found ", dims.size(), " ",
                    shape_to_string(dims));
  }
  KILN_ASSIGN_OR_RETURN(auto wrapped, wrap_unique(ctx, dims, in.dim()));
  Shape out;
  for (int64_t d : wrapped) out.push_back(in.size(d));
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

// The permutation movedim applies; shared by both overloads.
Result<std::vector<int64_t>> movedim_order(OpContext& ctx, const Tensor& in,
                                           const std::vector<int64_t>& source,
                                           const std::vector<int64_t>& destination) {
  if (source.size() != destination.size()) {
    return op_error(ctx, "source ", shape_to_string(source), " and destination ",
                    shape_to_string(destination), " must have the same number of dims");
  }
  KILN_ASSIGN_OR_RETURN(auto src, wrap_unique(ctx, source, in.dim()));
  KILN_ASSIGN_OR_RETURN(auto dst, wrap_unique(ctx, destination, in.dim()));
  const size_t rank = static_cast<size_t>(in.dim());
  std::vector<int64_t> order(rank, -1);
  std::vector<bool> src_used(rank, false);
  for (size_t i = 0; i < src.size() && rank > 0; ++i) {
    order[dst[i]] = src[i];
    src_used[src[i]] = true;
  }
  size_t next = 0;
  for (size_t i = 0; i < rank; ++i) {
    if (order[i] >= 0) continue;
    while (src_used[next]) ++next;
    order[i] = static_cast<int64_t>(next++);
  }
  return order;
}

Status movedim(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const bool list = ctx.node().op == OpKey::aten_movedim_intlist;
  auto source = list ? ctx.ints(1) : std::vector<int64_t>{ctx.int_arg(1)};
  auto destination = list ? ctx.ints(2) : std::vector<int64_t>{ctx.int_arg(2)};
  KILN_ASSIGN_OR_RETURN(auto order, movedim_order(ctx, in, source, destination));
  Shape out;
  for (int64_t d : order) out.push_back(in.size(d));
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status expand(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  Shape target = ctx.ints(1);
  const int64_t lead = static_cast<int64_t>(target.size()) - in.dim();
  if (lead < 0) {
    return op_error(ctx, "the number of sizes provided (", target.size(),
                    ") must be at least the rank of the input ", in.description());
  }
  for (int64_t i = 0; i < static_cast<int64_t>(target.size()); ++i) {
    if (i < lead) {
      if (target[i] < 0) {
        return op_error(ctx, "size ", target[i], " is not allowed in the new leading dim ", i,
                        " (target sizes ", shape_to_string(target), ")");
      }
      continue;
    }
    const int64_t have = in.size(i - lead);
    if (target[i] == -1) {
      target[i] = have;
    } else if (target[i] != have && (have != 1 || target[i] < 0)) {
      return op_error(ctx, "the expanded size ", target[i], " must match the existing size ", have,
                      " at non-singleton dim ", i, " (target sizes ", shape_to_string(ctx.ints(1)),
                      ", input sizes ", shape_to_string(in.sizes()), ")");
    }
  }
  return set_meta(ctx, 0, in.dtype(), std::move(target));
}

Status unsqueeze(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim() + 1));
  Shape out = in.sizes();
  out.insert(out.begin() + dim, 1);
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

// squeeze.default (all size-1 dims), squeeze.dim and squeeze.dims (the named ones, if size 1).
Status squeeze(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  std::vector<bool> named(static_cast<size_t>(in.dim()), true);
  const OpKey op = ctx.node().op;
  if (op == OpKey::aten_squeeze_dim || op == OpKey::aten_squeeze_copy_dim ||
      op == OpKey::aten_squeeze_dims || op == OpKey::aten_squeeze_copy_dims) {
    const bool one = op == OpKey::aten_squeeze_dim || op == OpKey::aten_squeeze_copy_dim;
    KILN_ASSIGN_OR_RETURN(
        auto dims,
        wrap_unique(ctx, one ? std::vector<int64_t>{ctx.int_arg(1)} : ctx.ints(1), in.dim()));
    std::fill(named.begin(), named.end(), false);
    for (int64_t d : dims) {
      if (d < in.dim()) named[d] = true;
    }
  }
  Shape out;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (!(named[d] && in.size(d) == 1)) out.push_back(in.size(d));
  }
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status select(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "cannot select from a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim()));
  const int64_t index = ctx.int_arg(2), size = in.size(dim);
  if (index < -size || index >= size) {
    return op_error(ctx, "index ", index, " is out of range for dim ", dim, " of size ", size,
                    " (expected a value in [", -size, ", ", size - 1, "])");
  }
  Shape out = in.sizes();
  out.erase(out.begin() + dim);
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status slice(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "cannot slice a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim()));
  const int64_t size = in.size(dim), step = ctx.int_arg(4);
  if (step <= 0) return op_error(ctx, "expected a positive step, found ", step);
  int64_t start = ctx.optional_int(2).value_or(0);
  int64_t end = ctx.optional_int(3).value_or(size);
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  Shape out = in.sizes();
  out[dim] = end == start ? 0 : (end - start - 1) / step + 1;
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status t(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() > 2)
    return op_error(ctx, "expected a tensor of rank <= 2, found ", in.description());
  Shape out(in.sizes().rbegin(), in.sizes().rend());
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status transpose(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(int64_t d0, wrap(ctx, ctx.int_arg(1), in.dim()));
  KILN_ASSIGN_OR_RETURN(int64_t d1, wrap(ctx, ctx.int_arg(2), in.dim()));
  Shape out = in.sizes();
  if (in.dim() > 0) std::swap(out[d0], out[d1]);
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status narrow(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "cannot narrow a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim()));
  const int64_t size = in.size(dim), length = ctx.int_arg(3);
  int64_t start = ctx.int_arg(2);
  if (start < -size || start > size) {
    return op_error(ctx, "start ", start, " is out of range for dim ", dim, " of size ", size,
                    " (expected a value in [", -size, ", ", size, "])");
  }
  if (start < 0) start += size;
  if (length < 0 || length > size - start) {
    return op_error(ctx, "expected a length in [0, ", size - start, "] (start ", start, ", dim ",
                    dim, " of size ", size, "), found ", length);
  }
  Shape out = in.sizes();
  out[dim] = length;
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status check_pieces(OpContext& ctx, const Tensor& in, int64_t dim, int64_t count) {
  if (static_cast<uint64_t>(count) != ctx.num_outputs()) {
    return op_error(ctx, "the input ", in.description(), " splits into ", count,
                    " pieces along dim ", dim, ", but the node has ", ctx.num_outputs(),
                    " outputs");
  }
  return ok_status();
}

// Sets the outputs of a split along `dim` into pieces of `sizes`.
Status set_pieces(OpContext& ctx, const Tensor& in, int64_t dim, const std::vector<int64_t>& sizes,
                  bool keep_dim = true) {
  KILN_RETURN_IF_ERROR(check_pieces(ctx, in, dim, static_cast<int64_t>(sizes.size())));
  for (size_t i = 0; i < sizes.size(); ++i) {
    Shape out = in.sizes();
    if (keep_dim) {
      out[dim] = sizes[i];
    } else {
      out.erase(out.begin() + dim);
    }
    KILN_RETURN_IF_ERROR(set_meta(ctx, i, in.dtype(), std::move(out)));
  }
  return ok_status();
}

Status unbind(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "cannot unbind a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim()));
  KILN_RETURN_IF_ERROR(check_pieces(ctx, in, dim, in.size(dim)));
  return set_pieces(ctx, in, dim, std::vector<int64_t>(static_cast<size_t>(in.size(dim)), 1),
                    /*keep_dim=*/false);
}

// split.Tensor, split_copy, unsafe_split: (self, split_size, dim).
Status split(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "expected a tensor of rank >= 1, found a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(2), in.dim()));
  const int64_t split_size = ctx.int_arg(1), size = in.size(dim);
  if (split_size < 0)
    return op_error(ctx, "expected a non-negative split_size, found ", split_size);
  if (split_size == 0 && size != 0) {
    return op_error(ctx, "split_size can only be 0 if dim ", dim, " has size 0, found size ", size);
  }
  const int64_t n = (split_size == 0 || size == 0) ? 1 : (size - 1) / split_size + 1;
  std::vector<int64_t> sizes(static_cast<size_t>(n), split_size);
  sizes.back() = size - split_size * (n - 1);
  return set_pieces(ctx, in, dim, sizes);
}

// split.sizes, split_with_sizes (and _copy, unsafe_): (self, split_sizes, dim).
Status split_with_sizes(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "expected a tensor of rank >= 1, found a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(2), in.dim()));
  const std::vector<int64_t> sizes = ctx.ints(1);
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0) {
      return op_error(ctx, "expected non-negative split sizes, found ", shape_to_string(sizes));
    }
    if (__builtin_add_overflow(sum, s, &sum)) break;
  }
  if (sum != in.size(dim)) {
    return op_error(ctx, "expected split sizes that sum to ", in.size(dim), " (the size of dim ",
                    dim, "), found ", shape_to_string(sizes));
  }
  return set_pieces(ctx, in, dim, sizes);
}

Status chunk(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() == 0) return op_error(ctx, "expected a tensor of rank >= 1, found a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(2), in.dim()));
  const int64_t chunks = ctx.int_arg(1), size = in.size(dim);
  if (chunks <= 0) return op_error(ctx, "expected a positive number of chunks, found ", chunks);
  if (size == 0) {
    // Every chunk is empty; check the count before making the list (`chunks` may be huge).
    KILN_RETURN_IF_ERROR(check_pieces(ctx, in, dim, chunks));
    return set_pieces(ctx, in, dim, std::vector<int64_t>(static_cast<size_t>(chunks), 0));
  }
  const int64_t split_size = (size - 1) / chunks + 1;
  const int64_t n = (size - 1) / split_size + 1;
  std::vector<int64_t> sizes(static_cast<size_t>(n), split_size);
  sizes.back() = size - split_size * (n - 1);
  return set_pieces(ctx, in, dim, sizes);
}

Status unfold(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), in.dim()));
  const int64_t size = ctx.int_arg(2), step = ctx.int_arg(3);
  const int64_t max_size = in.dim() == 0 ? 1 : in.size(dim);
  if (size < 0 || size > max_size) {
    return op_error(ctx, "expected a window size in [0, ", max_size, "] for dim ", dim, ", found ",
                    size);
  }
  if (step <= 0) return op_error(ctx, "expected a positive step, found ", step);
  Shape out = in.sizes();
  if (in.dim() > 0) out[dim] = (out[dim] - size) / step + 1;
  out.push_back(size);
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status diagonal(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const int64_t offset = ctx.int_arg(1);
  KILN_ASSIGN_OR_RETURN(int64_t d1, wrap(ctx, ctx.int_arg(2), in.dim()));
  KILN_ASSIGN_OR_RETURN(int64_t d2, wrap(ctx, ctx.int_arg(3), in.dim()));
  if (d1 == d2) return op_error(ctx, "expected two different dims, found ", d1, " and ", d2);
  const int64_t n1 = in.size(d1), n2 = in.size(d2);
  const int64_t n =
      std::max<int64_t>(offset >= 0 ? std::min(n1, n2 - offset) : std::min(n1 + offset, n2), 0);
  Shape out;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (d != d1 && d != d2) out.push_back(in.size(d));
  }
  out.push_back(n);
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status as_strided(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const Shape sizes = ctx.ints(1), strides = ctx.ints(2);
  if (sizes.size() != strides.size()) {
    return op_error(ctx, "expected as many strides as sizes, found sizes ", shape_to_string(sizes),
                    " and strides ", shape_to_string(strides));
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0 || strides[i] < 0) {
      return op_error(ctx, "expected non-negative sizes and strides, found sizes ",
                      shape_to_string(sizes), " and strides ", shape_to_string(strides));
    }
  }
  if (auto offset = ctx.optional_int(3); offset && *offset < 0) {
    return op_error(ctx, "expected a non-negative storage offset, found ", *offset);
  }
  return set_meta(ctx, 0, in.dtype(), sizes);
}

// cat, concat, concatenate. PyTorch's legacy rule: 1-d tensors of shape [0] are skipped (they still
// take part in dtype promotion).
Status cat(OpContext& ctx) {
  const std::vector<const Tensor*> inputs = ctx.tensors(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (inputs.empty()) return op_error(ctx, "expected a non-empty list of tensors");
  DType dtype = inputs[0]->dtype();
  const Tensor* first = nullptr;
  size_t first_index = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    dtype = promote_types(dtype, inputs[i]->dtype());
    if (inputs[i]->dim() == 0) {
      return op_error(ctx, "input ", i, " is 0-d; only tensors of rank >= 1 can be concatenated");
    }
    const bool skipped = inputs[i]->dim() == 1 && inputs[i]->size(0) == 0;
    if (!first && !skipped) first = inputs[i], first_index = i;
  }
  if (!first) return set_meta(ctx, 0, dtype, inputs[0]->sizes());
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), first->dim()));
  Shape out = first->sizes();
  out[dim] = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = *inputs[i];
    if (t.dim() == 1 && t.size(0) == 0) continue;
    if (t.dim() != first->dim()) {
      return op_error(ctx, "expected tensors of the same rank: input ", first_index, " has shape ",
                      shape_to_string(first->sizes()), ", input ", i, " has shape ",
                      shape_to_string(t.sizes()));
    }
    for (int64_t d = 0; d < t.dim(); ++d) {
      if (d != dim && t.size(d) != first->size(d)) {
        return op_error(ctx, "sizes must match except in dim ", dim, ": input ", i, " has shape ",
                        shape_to_string(t.sizes()), ", expected size ", first->size(d), " in dim ",
                        d, " (as input ", first_index, " of shape ",
                        shape_to_string(first->sizes()), "), found ", t.size(d));
      }
    }
    out[dim] += t.size(dim);
  }
  return set_meta(ctx, 0, dtype, std::move(out));
}

Status stack(OpContext& ctx) {
  const std::vector<const Tensor*> inputs = ctx.tensors(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (inputs.empty()) return op_error(ctx, "expected a non-empty list of tensors");
  DType dtype = inputs[0]->dtype();
  for (size_t i = 0; i < inputs.size(); ++i) {
    dtype = promote_types(dtype, inputs[i]->dtype());
    if (inputs[i]->sizes() != inputs[0]->sizes()) {
      return op_error(ctx, "expected tensors of equal shape, found ",
                      shape_to_string(inputs[0]->sizes()), " at input 0 and ",
                      shape_to_string(inputs[i]->sizes()), " at input ", i);
    }
  }
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap(ctx, ctx.int_arg(1), inputs[0]->dim() + 1));
  Shape out = inputs[0]->sizes();
  out.insert(out.begin() + dim, static_cast<int64_t>(inputs.size()));
  return set_meta(ctx, 0, dtype, std::move(out));
}

Status constant_pad_nd(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const std::vector<int64_t> pad = ctx.ints(1);
  if (pad.size() % 2 != 0 || static_cast<int64_t>(pad.size()) > 2 * in.dim()) {
    return op_error(ctx, "expected an even number of pads, at most twice the rank ", in.dim(),
                    " of the input, found ", shape_to_string(pad));
  }
  Shape out = in.sizes();
  for (size_t i = 0; i < pad.size() / 2; ++i) {
    const int64_t d = in.dim() - 1 - static_cast<int64_t>(i);
    out[d] += pad[2 * i] + pad[2 * i + 1];
    if (out[d] < 0) {
      return op_error(ctx, "padding ", pad[2 * i], ", ", pad[2 * i + 1], " of dim ", d, " (size ",
                      in.size(d), ") gives a negative size ", out[d]);
    }
  }
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

// repeat, and tile (which first pads its dims with leading 1s).
Status repeat(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  std::vector<int64_t> reps = ctx.ints(1);
  if (ctx.node().op == OpKey::aten_tile_default && static_cast<int64_t>(reps.size()) < in.dim()) {
    reps.insert(reps.begin(), in.dim() - static_cast<int64_t>(reps.size()), 1);
  }
  const int64_t lead = static_cast<int64_t>(reps.size()) - in.dim();
  if (lead < 0) {
    return op_error(ctx, "expected at least ", in.dim(), " repeats for an input of shape ",
                    shape_to_string(in.sizes()), ", found ", shape_to_string(reps));
  }
  Shape out(reps.size());
  for (size_t i = 0; i < reps.size(); ++i) {
    if (reps[i] < 0)
      return op_error(ctx, "expected non-negative repeats, found ", shape_to_string(reps));
    const int64_t size =
        static_cast<int64_t>(i) < lead ? 1 : in.size(static_cast<int64_t>(i) - lead);
    if (__builtin_mul_overflow(reps[i], size, &out[i])) {
      return op_error(ctx, "repeats ", shape_to_string(reps), " overflow the output size");
    }
  }
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status flip(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(wrap_unique(ctx, ctx.ints(1), in.dim()));
  return same_shape(ctx);
}

Status roll(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const std::vector<int64_t> shifts = ctx.ints(1), dims = ctx.ints(2);
  const bool flat = dims.empty() && shifts.size() == 1;
  if (shifts.empty() || (!flat && shifts.size() != dims.size())) {
    return op_error(ctx, "expected as many shifts as dims, found shifts ", shape_to_string(shifts),
                    " and dims ", shape_to_string(dims));
  }
  for (int64_t d : dims) KILN_RETURN_IF_ERROR(wrap(ctx, d, in.dim()));
  return same_shape(ctx);
}

Status tril_triu(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  if (in.dim() < 2)
    return op_error(ctx, "expected a tensor of rank >= 2, found ", in.description());
  return same_shape(ctx);
}

// pixel_shuffle (upscale) and pixel_unshuffle (downscale): (self, factor).
Status pixel_shuffle(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const bool up = ctx.node().op == OpKey::aten_pixel_shuffle_default;
  const int64_t r = ctx.int_arg(1);
  if (in.dim() < 3)
    return op_error(ctx, "expected a tensor of rank >= 3, found ", in.description());
  int64_t r2 = 0;
  if (r <= 0 || __builtin_mul_overflow(r, r, &r2)) {
    return op_error(ctx, "expected a positive factor, found ", r);
  }
  Shape out = in.sizes();
  const int64_t c = in.dim() - 3, h = c + 1, w = c + 2;
  if (up) {
    if (out[c] % r2 != 0) {
      return op_error(ctx, "expected a channel count (dim -3 of ", in.description(),
                      ") divisible by ", r2, ", found ", out[c]);
    }
    out[c] /= r2, out[h] *= r, out[w] *= r;
  } else {
    if (out[h] % r != 0 || out[w] % r != 0) {
      return op_error(ctx, "expected height and width (dims -2 and -1 of ", in.description(),
                      ") divisible by ", r);
    }
    out[c] *= r2, out[h] /= r, out[w] /= r;
  }
  return set_meta(ctx, 0, in.dtype(), std::move(out));
}

Status channel_shuffle(OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  const int64_t groups = ctx.int_arg(1);
  if (in.dim() < 3)
    return op_error(ctx, "expected a tensor of rank >= 3, found ", in.description());
  if (groups <= 0) return op_error(ctx, "expected a positive number of groups, found ", groups);
  if (in.size(1) % groups != 0) {
    return op_error(ctx, "expected a channel count divisible by ", groups, " groups, found ",
                    in.size(1), " channels");
  }
  return same_shape(ctx);
}

}  // namespace

Status register_shape_op_inference(OpFunctionTable& table) {
  // clang-format off
  return add_all(table, {
      {OpKey::aten_view_default, view}, {OpKey::aten_view_copy_default, view},
      {OpKey::aten_reshape_default, view}, {OpKey::aten__unsafe_view_default, view},
      {OpKey::aten_flatten_using_ints, flatten}, {OpKey::aten_unflatten_int, unflatten},
      {OpKey::aten_permute_default, permute}, {OpKey::aten_permute_copy_default, permute},
      {OpKey::aten_movedim_int, movedim}, {OpKey::aten_movedim_intlist, movedim},
      {OpKey::aten_expand_default, expand}, {OpKey::aten_expand_copy_default, expand},
      {OpKey::aten_unsqueeze_default, unsqueeze}, {OpKey::aten_unsqueeze_copy_default, unsqueeze},
      {OpKey::aten_squeeze_default, squeeze}, {OpKey::aten_squeeze_dim, squeeze},
      {OpKey::aten_squeeze_dims, squeeze}, {OpKey::aten_squeeze_copy_default, squeeze},
      {OpKey::aten_squeeze_copy_dim, squeeze}, {OpKey::aten_squeeze_copy_dims, squeeze},
      {OpKey::aten_select_int, select}, {OpKey::aten_select_copy_int, select},
      {OpKey::aten_slice_Tensor, slice}, {OpKey::aten_slice_copy_Tensor, slice},
      {OpKey::aten_t_default, t}, {OpKey::aten_t_copy_default, t},
      {OpKey::aten_transpose_int, transpose}, {OpKey::aten_transpose_copy_int, transpose},
      {OpKey::aten_alias_default, same_shape}, {OpKey::aten_alias_copy_default, same_shape},
      {OpKey::aten_narrow_default, narrow}, {OpKey::aten_narrow_copy_default, narrow},
      {OpKey::aten_unbind_int, unbind}, {OpKey::aten_unbind_copy_int, unbind},
      {OpKey::aten_split_Tensor, split}, {OpKey::aten_split_copy_Tensor, split},
      {OpKey::aten_unsafe_split_Tensor, split}, {OpKey::aten_split_sizes, split_with_sizes},
      {OpKey::aten_split_with_sizes_default, split_with_sizes},
      {OpKey::aten_split_with_sizes_copy_default, split_with_sizes},
      {OpKey::aten_unsafe_split_with_sizes_default, split_with_sizes},
      {OpKey::aten_chunk_default, chunk}, {OpKey::aten_unsafe_chunk_default, chunk},
      {OpKey::aten_unfold_default, unfold}, {OpKey::aten_unfold_copy_default, unfold},
      {OpKey::aten_diagonal_default, diagonal}, {OpKey::aten_diagonal_copy_default, diagonal},
      {OpKey::aten_as_strided_default, as_strided},
      {OpKey::aten_as_strided_copy_default, as_strided}, {OpKey::aten_cat_default, cat},
      {OpKey::aten_concat_default, cat}, {OpKey::aten_concatenate_default, cat},
      {OpKey::aten_stack_default, stack}, {OpKey::aten_constant_pad_nd_default, constant_pad_nd},
      {OpKey::aten_repeat_default, repeat}, {OpKey::aten_tile_default, repeat},
      {OpKey::aten_flip_default, flip}, {OpKey::aten_roll_default, roll},
      {OpKey::aten_tril_default, tril_triu}, {OpKey::aten_triu_default, tril_triu},
      {OpKey::aten_pixel_shuffle_default, pixel_shuffle},
      {OpKey::aten_pixel_unshuffle_default, pixel_shuffle},
      {OpKey::aten_channel_shuffle_default, channel_shuffle},
      {OpKey::aten_native_channel_shuffle_default, channel_shuffle},
  });
  // clang-format on
}

}  // namespace kiln::ir
