// The view ops (view, permute, expand, slice, split, ...) and their *_copy variants. Shape
// inference has validated the arguments and set the output shapes; these kernels give the strides
// and the storage offset, computed as PyTorch computes them, so that later views (and as_strided)
// see the same geometry as in eager mode. A view op's output shares its input's storage; a *_copy
// variant (or unsafe_split, ...) copies the same view into the contiguous output the executor
// allocated.
#include <algorithm>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/shape_op_util.h"

namespace kiln::cpu {
namespace {

using ir::OpKey;
using ir::wrap_dim;
using Views = std::vector<Tensor>;

bool is_view_op(const ir::OpContext& ctx) {
  return ctx.node().schema().has_tag(ir::kTagView);
}

Tensor narrow_view(const Tensor& in, int64_t dim, int64_t start, int64_t length, int64_t step = 1) {
  Shape sizes = in.sizes(), strides = in.strides();
  sizes[dim] = length;
  strides[dim] *= step;
  return in.view_as(std::move(sizes), std::move(strides), in.offset() + start * in.strides()[dim]);
}

Tensor select_view(const Tensor& in, int64_t dim, int64_t index) {
  Shape sizes = in.sizes(), strides = in.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  return in.view_as(std::move(sizes), std::move(strides), in.offset() + index * in.strides()[dim]);
}

Tensor permute_view(const Tensor& in, const std::vector<int64_t>& order) {
  Shape sizes, strides;
  for (int64_t d : order) {
    sizes.push_back(in.size(d));
    strides.push_back(in.strides()[d]);
  }
  return in.view_as(std::move(sizes), std::move(strides), in.offset());
}

Result<int64_t> dim_arg(ir::OpContext& ctx, size_t i, int64_t rank) {
  if (rank == 0) return internal_error(op_name(ctx.node().op), ": no dim to take on a 0-d tensor");
  return wrap_dim(ctx.int_arg(i), rank);
}

// view, reshape, flatten, unflatten, _unsafe_view, view_copy: the shape comes from inference.
Status reshape_kernel(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor out = ctx.output_tensor(0);
  const Shape shape = out.sizes();
  if (shape_numel(shape) != in.numel()) {
    return internal_error(op_name(ctx.node().op), ": cannot view ", in.description(), " as ",
                          shape_to_string(shape));
  }
  if (!is_view_op(ctx)) {  // the contiguous output, seen with the input's shape, takes its elements
    return copy_into(out.view_as(in.sizes(), contiguous_strides(in.sizes()), out.offset()), in);
  }
  if (auto strides = view_strides(in.sizes(), in.strides(), shape)) {
    ctx.set_output(0, in.view_as(shape, std::move(*strides), in.offset()));
    return ok_status();
  }
  // No strides express this shape on the input's layout. PyTorch's view() would raise here, but the
  // program did run in PyTorch: kiln's layouts can differ from eager's (kiln's ops return
  // contiguous outputs where eager may keep an input's permuted layout, e.g. clone of a transpose),
  // and reshape may copy anyway. A contiguous copy has the same values in row-major order.
  KILN_ASSIGN_OR_RETURN(Tensor copy, Tensor::empty(in.dtype(), shape));
  copy_strided(copy.view_as(in.sizes(), contiguous_strides(in.sizes()), 0), in);
  ctx.set_output(0, std::move(copy));
  return ok_status();
}

using ViewFn = Result<Views> (*)(ir::OpContext& ctx, const Tensor& in);

// Sets the outputs to the views F makes, or copies them into the allocated outputs of a copy op.
template <ViewFn F>
Status view_kernel(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Views views, F(ctx, in));
  KILN_RETURN_IF_ERROR(ctx.error());
  if (views.size() != ctx.num_outputs()) {
    return internal_error(op_name(ctx.node().op), ": made ", views.size(), " views for ",
                          ctx.num_outputs(), " outputs");
  }
  const bool alias = is_view_op(ctx);
  for (size_t i = 0; i < views.size(); ++i) {
    if (!ctx.node().outputs[i]) continue;
    if (alias) {
      ctx.set_output(i, std::move(views[i]));
    } else {
      KILN_RETURN_IF_ERROR(copy_into(ctx.output_tensor(i), views[i]));
    }
  }
  return ok_status();
}

Result<Views> alias(ir::OpContext& ctx, const Tensor& in) {
  return Views{in};
}

Result<Views> permute(ir::OpContext& ctx, const Tensor& in) {
  const std::vector<int64_t> dims = ctx.ints(1);
  if (static_cast<int64_t>(dims.size()) != in.dim()) return internal_error("permute: bad dims");
  std::vector<int64_t> order;
  for (int64_t d : dims) {
    KILN_ASSIGN_OR_RETURN(int64_t w, wrap_dim(d, in.dim()));
    order.push_back(w);
  }
  return Views{permute_view(in, order)};
}

Result<Views> movedim(ir::OpContext& ctx, const Tensor& in) {
  if (in.dim() == 0) return Views{in};
  const bool list = ctx.node().op == OpKey::aten_movedim_intlist;
  const auto source = list ? ctx.ints(1) : std::vector<int64_t>{ctx.int_arg(1)};
  const auto destination = list ? ctx.ints(2) : std::vector<int64_t>{ctx.int_arg(2)};
  const size_t rank = static_cast<size_t>(in.dim());
  if (source.size() != destination.size()) return internal_error("movedim: bad dims");
  std::vector<int64_t> order(rank, -1);
  std::vector<bool> used(rank, false);
  for (size_t i = 0; i < source.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t s, wrap_dim(source[i], in.dim()));
    KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(destination[i], in.dim()));
    if (used[s] || order[d] >= 0) return internal_error("movedim: repeated dims");
    order[d] = s;
    used[s] = true;
  }
  size_t next = 0;
  for (size_t i = 0; i < rank; ++i) {
    if (order[i] >= 0) continue;
    while (used[next]) ++next;
    order[i] = static_cast<int64_t>(next++);
  }
  return Views{permute_view(in, order)};
}

Result<Views> expand(ir::OpContext& ctx, const Tensor& in) {
  const Shape shape = ctx.output_tensor(0).sizes();
  const int64_t lead = static_cast<int64_t>(shape.size()) - in.dim();
  if (lead < 0) return internal_error("expand: fewer sizes than dims");
  Shape strides(shape.size(), 0);  // new leading dims and broadcast size-1 dims repeat
  for (int64_t i = lead; i < static_cast<int64_t>(shape.size()); ++i) {
    const int64_t have = in.size(i - lead);
    if (have == shape[i]) {
      strides[i] = in.strides()[i - lead];
    } else if (have != 1) {
      return internal_error("expand: cannot expand ", in.description(), " to ",
                            shape_to_string(shape));
    }
  }
  return Views{in.view_as(shape, std::move(strides), in.offset())};
}

Result<Views> unsqueeze(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap_dim(ctx.int_arg(1), in.dim() + 1));
  Shape sizes = in.sizes(), strides = in.strides();
  const int64_t stride = dim >= in.dim() ? 1 : sizes[dim] * strides[dim];
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, stride);
  return Views{in.view_as(std::move(sizes), std::move(strides), in.offset())};
}

Result<Views> squeeze(ir::OpContext& ctx, const Tensor& in) {
  const OpKey op = ctx.node().op;
  std::vector<bool> named(static_cast<size_t>(in.dim()), true);
  if (op != OpKey::aten_squeeze_default && op != OpKey::aten_squeeze_copy_default) {
    const bool one = op == OpKey::aten_squeeze_dim || op == OpKey::aten_squeeze_copy_dim;
    std::fill(named.begin(), named.end(), false);
    for (int64_t d : one ? std::vector<int64_t>{ctx.int_arg(1)} : ctx.ints(1)) {
      KILN_ASSIGN_OR_RETURN(int64_t w, wrap_dim(d, in.dim()));
      if (w < in.dim()) named[w] = true;
    }
  }
  Shape sizes, strides;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (named[d] && in.size(d) == 1) continue;
    sizes.push_back(in.size(d));
    strides.push_back(in.strides()[d]);
  }
  return Views{in.view_as(std::move(sizes), std::move(strides), in.offset())};
}

Result<Views> select(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, dim_arg(ctx, 1, in.dim()));
  int64_t index = ctx.int_arg(2);
  if (index < 0) index += in.size(dim);
  if (index < 0 || index >= in.size(dim)) return internal_error("select: index out of range");
  return Views{select_view(in, dim, index)};
}

Result<Views> slice(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, dim_arg(ctx, 1, in.dim()));
  const int64_t size = in.size(dim), step = ctx.int_arg(4);
  if (step <= 0) return internal_error("slice: step must be positive");
  int64_t start = ctx.optional_int(2).value_or(0);
  int64_t end = ctx.optional_int(3).value_or(size);
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  const int64_t length = end == start ? 0 : (end - start - 1) / step + 1;
  return Views{narrow_view(in, dim, start, length, step)};
}

Result<Views> transpose(ir::OpContext& ctx, const Tensor& in) {
  const bool t =
      ctx.node().op == OpKey::aten_t_default || ctx.node().op == OpKey::aten_t_copy_default;
  if (in.dim() == 0 || (t && in.dim() < 2)) return Views{in};
  KILN_ASSIGN_OR_RETURN(int64_t d0, t ? Result<int64_t>(0) : wrap_dim(ctx.int_arg(1), in.dim()));
  KILN_ASSIGN_OR_RETURN(int64_t d1, t ? Result<int64_t>(1) : wrap_dim(ctx.int_arg(2), in.dim()));
  std::vector<int64_t> order(static_cast<size_t>(in.dim()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::swap(order[d0], order[d1]);
  return Views{permute_view(in, order)};
}

Result<Views> narrow(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, dim_arg(ctx, 1, in.dim()));
  int64_t start = ctx.int_arg(2);
  const int64_t length = ctx.int_arg(3);
  if (start < 0) start += in.size(dim);
  if (start < 0 || length < 0 || length > in.size(dim) - start) {
    return internal_error("narrow: range out of bounds");
  }
  return Views{narrow_view(in, dim, start, length)};
}

Result<Views> unbind(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, dim_arg(ctx, 1, in.dim()));
  Views views;
  for (int64_t i = 0; i < in.size(dim); ++i) views.push_back(select_view(in, dim, i));
  return views;
}

// The split ops (split, split_with_sizes, chunk and their variants): (self, sizes or count, dim).
Result<Views> split(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, dim_arg(ctx, 2, in.dim()));
  const OpKey op = ctx.node().op;
  const int64_t size = in.size(dim);
  std::vector<int64_t> sizes;
  if (op == OpKey::aten_chunk_default || op == OpKey::aten_unsafe_chunk_default) {
    const int64_t chunks = ctx.int_arg(1);
    // A size-0 dim gives `chunks` empty pieces; the count was checked against the outputs.
    if (chunks <= 0 || (size == 0 && static_cast<uint64_t>(chunks) > ctx.num_outputs())) {
      return internal_error("chunk: bad count");
    }
    if (size == 0) sizes.assign(static_cast<size_t>(chunks), 0);
    for (int64_t n = size == 0 ? 0 : (size - 1) / chunks + 1, at = 0; at < size; at += n) {
      sizes.push_back(std::min(n, size - at));
    }
  } else if (op == OpKey::aten_split_Tensor || op == OpKey::aten_split_copy_Tensor ||
             op == OpKey::aten_unsafe_split_Tensor) {
    const int64_t n = ctx.int_arg(1);
    if (n < 0 || (n == 0 && size != 0)) return internal_error("split: bad split_size");
    if (size == 0) sizes.push_back(0);
    for (int64_t at = 0; at < size; at += n) sizes.push_back(std::min(n, size - at));
  } else {
    sizes = ctx.ints(1);
  }
  Views views;
  int64_t start = 0;
  for (int64_t s : sizes) {
    if (s < 0 || s > size - start) return internal_error("split: sizes exceed the dim");
    views.push_back(narrow_view(in, dim, start, s));
    start += s;
  }
  return views;
}

Result<Views> unfold(ir::OpContext& ctx, const Tensor& in) {
  KILN_ASSIGN_OR_RETURN(int64_t dim, wrap_dim(ctx.int_arg(1), in.dim()));
  const int64_t size = ctx.int_arg(2), step = ctx.int_arg(3);
  Shape sizes = in.sizes(), strides = in.strides();
  if (in.dim() > 0) {
    if (step <= 0 || size < 0 || size > sizes[dim]) return internal_error("unfold: bad window");
    sizes[dim] = (sizes[dim] - size) / step + 1;
    strides[dim] *= step;
  }
  sizes.push_back(size);
  strides.push_back(in.dim() == 0 ? 1 : in.strides()[dim]);
  return Views{in.view_as(std::move(sizes), std::move(strides), in.offset())};
}

Result<Views> diagonal(ir::OpContext& ctx, const Tensor& in) {
  const int64_t offset = ctx.int_arg(1);
  KILN_ASSIGN_OR_RETURN(int64_t d1, dim_arg(ctx, 2, in.dim()));
  KILN_ASSIGN_OR_RETURN(int64_t d2, dim_arg(ctx, 3, in.dim()));
  if (d1 == d2) return internal_error("diagonal: identical dims");
  const int64_t n1 = in.size(d1), n2 = in.size(d2);
  const int64_t n =
      std::max<int64_t>(offset >= 0 ? std::min(n1, n2 - offset) : std::min(n1 + offset, n2), 0);
  int64_t start = in.offset();
  if (n > 0) start += offset >= 0 ? offset * in.strides()[d2] : -offset * in.strides()[d1];
  Shape sizes, strides;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (d == d1 || d == d2) continue;
    sizes.push_back(in.size(d));
    strides.push_back(in.strides()[d]);
  }
  sizes.push_back(n);
  strides.push_back(in.strides()[d1] + in.strides()[d2]);
  return Views{in.view_as(std::move(sizes), std::move(strides), start)};
}

Result<Views> as_strided(ir::OpContext& ctx, const Tensor& in) {
  Shape sizes = ctx.ints(1), strides = ctx.ints(2);
  const int64_t offset = ctx.optional_int(3).value_or(in.offset());
  if (sizes.size() != strides.size() || offset < 0)
    return internal_error("as_strided: bad geometry");
  // Every addressed element must lie inside the input's storage (the view reads it directly).
  int64_t last = offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0 || strides[i] < 0) return internal_error("as_strided: bad geometry");
    empty = empty || sizes[i] == 0;
    if (sizes[i] > 0) last += (sizes[i] - 1) * strides[i];
  }
  const int64_t elem = static_cast<int64_t>(dtype_size(in.dtype()));
  const int64_t available = static_cast<int64_t>(in.storage()->nbytes()) / elem;
  if (!empty && last >= available) {
    return invalid_argument(op_name(ctx.node().op), " (node '", ctx.node().name, "'): sizes ",
                            shape_to_string(sizes), ", strides ", shape_to_string(strides),
                            " and storage offset ", offset, " need ", last + 1,
                            " elements of storage, found ", available);
  }
  return Views{in.view_as(std::move(sizes), std::move(strides), offset)};
}

}  // namespace

std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& shape) {
  if (sizes.empty()) return Shape(shape.size(), 1);
  if (shape_numel(sizes) == 0) return sizes == shape ? strides : contiguous_strides(shape);
  Shape out(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  // The input splits into chunks of dims that are contiguous with each other; each chunk must map
  // onto a run of output dims holding exactly its elements.
  int64_t chunk_base = strides.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Status register_shape_op_view_kernels(ir::OpFunctionTable& table) {
  // clang-format off
  return add_all(table, {
      {OpKey::aten_view_default, reshape_kernel}, {OpKey::aten_view_copy_default, reshape_kernel},
      {OpKey::aten_reshape_default, reshape_kernel},
      {OpKey::aten__unsafe_view_default, reshape_kernel},
      {OpKey::aten_flatten_using_ints, reshape_kernel}, {OpKey::aten_unflatten_int, reshape_kernel},
      {OpKey::aten_permute_default, view_kernel<permute>},
      {OpKey::aten_permute_copy_default, view_kernel<permute>},
      {OpKey::aten_movedim_int, view_kernel<movedim>},
      {OpKey::aten_movedim_intlist, view_kernel<movedim>},
      {OpKey::aten_expand_default, view_kernel<expand>},
      {OpKey::aten_expand_copy_default, view_kernel<expand>},
      {OpKey::aten_unsqueeze_default, view_kernel<unsqueeze>},
      {OpKey::aten_unsqueeze_copy_default, view_kernel<unsqueeze>},
      {OpKey::aten_squeeze_default, view_kernel<squeeze>},
      {OpKey::aten_squeeze_dim, view_kernel<squeeze>},
      {OpKey::aten_squeeze_dims, view_kernel<squeeze>},
      {OpKey::aten_squeeze_copy_default, view_kernel<squeeze>},
      {OpKey::aten_squeeze_copy_dim, view_kernel<squeeze>},
      {OpKey::aten_squeeze_copy_dims, view_kernel<squeeze>},
      {OpKey::aten_select_int, view_kernel<select>},
      {OpKey::aten_select_copy_int, view_kernel<select>},
      {OpKey::aten_slice_Tensor, view_kernel<slice>},
      {OpKey::aten_slice_copy_Tensor, view_kernel<slice>},
      {OpKey::aten_t_default, view_kernel<transpose>},
      {OpKey::aten_t_copy_default, view_kernel<transpose>},
      {OpKey::aten_transpose_int, view_kernel<transpose>},
      {OpKey::aten_transpose_copy_int, view_kernel<transpose>},
      {OpKey::aten_alias_default, view_kernel<alias>},
      {OpKey::aten_alias_copy_default, view_kernel<alias>},
      {OpKey::aten_narrow_default, view_kernel<narrow>},
      {OpKey::aten_narrow_copy_default, view_kernel<narrow>},
      {OpKey::aten_unbind_int, view_kernel<unbind>},
      {OpKey::aten_unbind_copy_int, view_kernel<unbind>},
      {OpKey::aten_split_Tensor, view_kernel<split>},
      {OpKey::aten_split_copy_Tensor, view_kernel<split>},
      {OpKey::aten_unsafe_split_Tensor, view_kernel<split>},
      {OpKey::aten_split_sizes, view_kernel<split>},
      {OpKey::aten_split_with_sizes_default, view_kernel<split>},
      {OpKey::aten_split_with_sizes_copy_default, view_kernel<split>},
      {OpKey::aten_unsafe_split_with_sizes_default, view_kernel<split>},
      {OpKey::aten_chunk_default, view_kernel<split>},
      {OpKey::aten_unsafe_chunk_default, view_kernel<split>},
      {OpKey::aten_unfold_default, view_kernel<unfold>},
      {OpKey::aten_unfold_copy_default, view_kernel<unfold>},
      {OpKey::aten_diagonal_default, view_kernel<diagonal>},
      {OpKey::aten_diagonal_copy_default, view_kernel<diagonal>},
      {OpKey::aten_as_strided_default, view_kernel<as_strided>},
      {OpKey::aten_as_strided_copy_default, view_kernel<as_strided>},
  });
  // clang-format on
}

}  // namespace kiln::cpu
