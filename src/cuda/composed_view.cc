#include "cuda/composed_view.h"

#include <numeric>

namespace kiln::cuda {
namespace {

using ir::OpKey;

// Merges neighbours that are contiguous together (outer.stride == inner.size * inner.stride) and
// drops size-1 modes.
std::vector<Mode> coalesce(const std::vector<Mode>& modes) {
  std::vector<Mode> out;
  for (const Mode& m : modes) {
    if (m.size == 1) continue;
    if (!out.empty() && out.back().stride == m.size * m.stride) {
      out.back().size *= m.size;
      out.back().stride = m.stride;
    } else {
      out.push_back(m);
    }
  }
  return out;
}

std::optional<int64_t> constant_int(const ir::Argument& arg) {
  if (const int64_t* i = std::get_if<int64_t>(&arg)) return *i;
  return std::nullopt;
}

Result<int64_t> dim_arg(const ir::Node& node, size_t i, int64_t rank) {
  if (i >= node.args.size()) return invalid_argument("'", node.name, "': missing dim argument");
  std::optional<int64_t> d = constant_int(node.args[i]);
  if (!d) return unsupported("'", node.name, "': a dim argument that is not a constant");
  const int64_t wrapped = *d < 0 ? *d + rank : *d;
  if (wrapped < 0 || wrapped >= rank) {
    return invalid_argument("'", node.name, "': dim ", *d, " out of range for rank ", rank);
  }
  return wrapped;
}

bool is_reshape_like(OpKey op) {
  switch (op) {
    case OpKey::aten_view_default:
    case OpKey::aten__unsafe_view_default:
    case OpKey::aten_reshape_default:
    case OpKey::aten_squeeze_default:
    case OpKey::aten_squeeze_dim:
    case OpKey::aten_squeeze_dims:
    case OpKey::aten_unsqueeze_default:
    case OpKey::aten_flatten_using_ints:
    case OpKey::aten_unflatten_int:
    case OpKey::aten_alias_default: return true;
    default: return false;
  }
}

bool is_permute_like(OpKey op) {
  return op == OpKey::aten_permute_default || op == OpKey::aten_transpose_int ||
         op == OpKey::aten_t_default;
}

}  // namespace

ComposedView ComposedView::of(const Tensor& t) {
  ComposedView v;
  v.offset_ = t.offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) == 1) {
      v.dims_.emplace_back();
    } else {
      v.dims_.push_back({Mode{t.size(d), t.strides()[d]}});
    }
  }
  return v;
}

Shape ComposedView::sizes() const {
  Shape out;
  for (const auto& modes : dims_) {
    int64_t n = 1;
    for (const Mode& m : modes) n *= m.size;
    out.push_back(n);
  }
  return out;
}

Result<ComposedView> ComposedView::reshape(const Shape& sizes) const {
  const int64_t count = shape_numel(this->sizes());
  if (shape_numel(sizes) != count) {
    return invalid_argument("reshape of ", shape_to_string(this->sizes()), " to ",
                            shape_to_string(sizes), ": element counts differ");
  }
  if (count == 0) return unsupported("reshape of an empty view");
  std::vector<Mode> modes;
  for (const auto& dim : dims_) modes.insert(modes.end(), dim.begin(), dim.end());
  modes = coalesce(modes);
  ComposedView out;
  out.offset_ = offset_;
  size_t next = 0;
  for (const int64_t size : sizes) {
    std::vector<Mode> dim;
    int64_t left = size;
    while (left > 1) {
      if (next >= modes.size()) return internal_error("reshape ran out of modes");
      Mode& m = modes[next];
      if (left % m.size == 0) {  // the whole mode
        dim.push_back(m);
        left /= m.size;
        ++next;
      } else if (m.size % left == 0) {  // the mode's outer part; its inner part stays
        dim.push_back(Mode{left, m.stride * (m.size / left)});
        m.size /= left;
        left = 1;
      } else {
        return unsupported("reshape to ", shape_to_string(sizes), " splits a mode of size ", m.size,
                           " into parts of ", left);
      }
    }
    out.dims_.push_back(std::move(dim));
  }
  return out;
}

Result<ComposedView> ComposedView::permute(const std::vector<int64_t>& order) const {
  if (order.size() != dims_.size()) {
    return invalid_argument("permute of a rank-", dims_.size(), " view by ", order.size(), " dims");
  }
  ComposedView out;
  out.offset_ = offset_;
  std::vector<bool> seen(order.size(), false);
  for (int64_t d : order) {
    if (d < 0 || d >= dim() || seen[d]) return invalid_argument("permute: bad dim order");
    seen[d] = true;
    out.dims_.push_back(dims_[d]);
  }
  return out;
}

std::optional<Shape> ComposedView::strides() const {
  Shape out;
  for (const auto& dim : dims_) {
    const std::vector<Mode> modes = coalesce(dim);
    if (modes.size() > 1) return std::nullopt;
    out.push_back(modes.empty() ? 1 : modes[0].stride);
  }
  return out;
}

bool is_composable_view(const ir::Node& node) {
  return is_reshape_like(node.op) || is_permute_like(node.op);
}

Result<ComposedView> compose_view(const ComposedView& in, const ir::Node& node,
                                  const Shape& out_sizes) {
  if (is_reshape_like(node.op)) return in.reshape(out_sizes);
  const int64_t rank = in.dim();
  std::vector<int64_t> order(rank);
  std::iota(order.begin(), order.end(), int64_t{0});
  switch (node.op) {
    case OpKey::aten_permute_default: {
      const auto* dims =
          node.args.size() > 1 ? std::get_if<std::vector<ir::SymInt>>(&node.args[1]) : nullptr;
      if (!dims || static_cast<int64_t>(dims->size()) != rank) {
        return invalid_argument("'", node.name, "': expected ", rank, " permute dims");
      }
      for (int64_t i = 0; i < rank; ++i) {
        const ir::SymInt& d = (*dims)[i];
        if (d.value) return unsupported("'", node.name, "': symbolic permute dims");
        order[i] = d.constant < 0 ? d.constant + rank : d.constant;
      }
      break;
    }
    case OpKey::aten_transpose_int: {
      KILN_ASSIGN_OR_RETURN(int64_t a, dim_arg(node, 1, rank));
      KILN_ASSIGN_OR_RETURN(int64_t b, dim_arg(node, 2, rank));
      std::swap(order[a], order[b]);
      break;
    }
    case OpKey::aten_t_default:
      if (rank == 2) std::swap(order[0], order[1]);
      break;
    default:
      return unsupported("'", node.name, "' (", ir::op_name(node.op),
                         ") is not a view kiln composes");
  }
  KILN_ASSIGN_OR_RETURN(ComposedView out, in.permute(order));
  if (out.sizes() != out_sizes) {
    return internal_error("'", node.name, "': composed sizes ", shape_to_string(out.sizes()),
                          " differ from ", shape_to_string(out_sizes));
  }
  return out;
}

}  // namespace kiln::cuda
