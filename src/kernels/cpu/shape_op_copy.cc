// Moving elements between strided tensors for the shape ops. These ops only move data, so the copy
// works on raw bytes of the element size and is the same for every dtype.
#include <algorithm>
#include <cstring>

#include "base/element_cast.h"
#include "kernels/cpu/shape_op_util.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

constexpr int64_t kParallelBytes = 1 << 18;  // below this a copy runs on the calling thread
constexpr int64_t kGrainBytes = 1 << 16;     // about this much per parallel chunk

struct Dim {
  int64_t size;
  int64_t dst;  // strides in bytes
  int64_t src;
};

// Drops size-1 dims and merges neighbours that are contiguous on both sides; outermost first.
std::vector<Dim> coalesce(const Tensor& dst, const Tensor& src, int64_t elem) {
  std::vector<Dim> dims;
  for (int64_t d = 0; d < dst.dim(); ++d) {
    const Dim cur{dst.size(d), dst.strides()[d] * elem, src.strides()[d] * elem};
    if (cur.size == 1) continue;
    if (!dims.empty() && dims.back().dst == cur.size * cur.dst &&
        dims.back().src == cur.size * cur.src) {
      dims.back() = Dim{dims.back().size * cur.size, cur.dst, cur.src};
      continue;
    }
    dims.push_back(cur);
  }
  return dims;
}

using RowFn = void (*)(char* dst, const char* src, int64_t n, int64_t ds, int64_t ss);

template <typename T>
void copy_row(char* dst, const char* src, int64_t n, int64_t ds, int64_t ss) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * ds, src + i * ss, sizeof(T));
}

// Both sides are contiguous: one memcpy (ds == ss == the element size).
void copy_run(char* dst, const char* src, int64_t n, int64_t ds, int64_t ss) {
  std::memcpy(dst, src, static_cast<size_t>(n * ds));
}

RowFn row_fn(const Dim& inner, int64_t elem) {
  if (inner.dst == elem && inner.src == elem) return copy_run;
  switch (elem) {
    case 1: return copy_row<uint8_t>;
    case 2: return copy_row<uint16_t>;
    case 4: return copy_row<uint32_t>;
    default: return copy_row<uint64_t>;
  }
}

// Copies rows [begin, end) of the outer dims (all but the innermost), each a call of `row`.
void copy_rows(std::span<const Dim> outer, const Dim& inner, RowFn row, char* dst, const char* src,
               int64_t begin, int64_t end) {
  const size_t k = outer.size();
  std::vector<int64_t> index(k);
  int64_t dst_off = 0, src_off = 0, rest = begin;
  for (size_t d = k; d-- > 0;) {
    index[d] = rest % outer[d].size;
    rest /= outer[d].size;
    dst_off += index[d] * outer[d].dst;
    src_off += index[d] * outer[d].src;
  }
  for (int64_t r = begin; r < end; ++r) {
    row(dst + dst_off, src + src_off, inner.size, inner.dst, inner.src);
    for (size_t d = k; d-- > 0;) {
      dst_off += outer[d].dst;
      src_off += outer[d].src;
      if (++index[d] < outer[d].size) break;
      dst_off -= outer[d].size * outer[d].dst;
      src_off -= outer[d].size * outer[d].src;
      index[d] = 0;
    }
  }
}

}  // namespace

void copy_strided(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  const int64_t elem = static_cast<int64_t>(dtype_size(dst.dtype()));
  char* out = static_cast<char*>(dst.raw_data());
  const char* in = static_cast<const char*>(src.raw_data());
  std::vector<Dim> dims = coalesce(dst, src, elem);
  if (dims.empty()) {  // one element
    std::memcpy(out, in, static_cast<size_t>(elem));
    return;
  }
  const Dim inner = dims.back();
  const RowFn row = row_fn(inner, elem);
  const std::span<const Dim> outer(dims.data(), dims.size() - 1);
  int64_t rows = 1;
  for (const Dim& d : outer) rows *= d.size;
  const int64_t row_bytes = inner.size * elem;
  if (rows * row_bytes < kParallelBytes) {
    copy_rows(outer, inner, row, out, in, 0, rows);
  } else if (rows == 1) {  // one long row: split the row itself
    parallel_for(0, inner.size, std::max<int64_t>(kGrainBytes / elem, 1),
                 [&](int64_t b, int64_t e) {
                   row(out + b * inner.dst, in + b * inner.src, e - b, inner.dst, inner.src);
                 });
  } else {
    parallel_for(0, rows, std::max<int64_t>(kGrainBytes / row_bytes, 1),
                 [&](int64_t b, int64_t e) { copy_rows(outer, inner, row, out, in, b, e); });
  }
}

Status copy_into(Tensor dst, const Tensor& src) {
  if (dst.sizes() != src.sizes()) {
    return internal_error("copy: expected a source of shape ", shape_to_string(dst.sizes()),
                          ", found ", shape_to_string(src.sizes()));
  }
  if (!dst.has_data() || !src.has_data()) return internal_error("copy between meta tensors");
  if (dst.dtype() != src.dtype()) return dst.copy_from(src);
  copy_strided(dst, src);
  return ok_status();
}

void fill_scalar(const Tensor& dst, const ir::Scalar& value) {
  dispatch_dtype(dst.dtype(), [&]<typename T>() {
    const T v = value.kind == ir::Scalar::Kind::kFloat ? element_cast<T>(value.f)
                                                       : element_cast<T>(value.i);
    std::fill_n(dst.data<T>(), dst.numel(), v);
  });
}

}  // namespace kiln::cpu
