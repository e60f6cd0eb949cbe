#include "base/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/element_cast.h"

namespace kiln {

std::string shape_to_string(std::span<const int64_t> shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

int64_t shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(std::span<const int64_t> shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

Result<std::shared_ptr<Storage>> Storage::allocate(size_t nbytes) {
  const size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* data = std::aligned_alloc(64, rounded);
  if (!data) return make_error(StatusCode::kIoError, "out of memory allocating ", nbytes, " bytes");
  return std::shared_ptr<Storage>(new Storage(data, nbytes, true, nullptr));
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t nbytes,
                                         std::shared_ptr<const void> owner) {
  return std::shared_ptr<Storage>(new Storage(data, nbytes, false, std::move(owner)));
}

Storage::~Storage() {
  if (owned_) std::free(data_);
}

Tensor Tensor::meta(DType dtype, Shape sizes) {
  Tensor t;
  t.dtype_ = dtype;
  t.strides_ = contiguous_strides(sizes);
  t.sizes_ = std::move(sizes);
  return t;
}

Result<Tensor> Tensor::empty(DType dtype, Shape sizes) {
  for (int64_t s : sizes) {
    if (s < 0) return invalid_argument("cannot make a tensor of shape ", shape_to_string(sizes));
  }
  Tensor t = meta(dtype, std::move(sizes));
  KILN_ASSIGN_OR_RETURN(t.storage_, Storage::allocate(t.nbytes()));
  return t;
}

Result<Tensor> Tensor::zeros(DType dtype, Shape sizes) {
  KILN_ASSIGN_OR_RETURN(Tensor t, empty(dtype, std::move(sizes)));
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Result<Tensor> Tensor::from_storage(std::shared_ptr<Storage> storage, DType dtype, Shape sizes,
                                    Shape strides, int64_t offset) {
  if (sizes.size() != strides.size()) {
    return invalid_argument("tensor has ", sizes.size(), " sizes but ", strides.size(), " strides");
  }
  int64_t lo = offset, hi = offset;  // element index range addressed
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0) return invalid_argument("negative size in ", shape_to_string(sizes));
    if (sizes[i] == 0) empty = true;
    int64_t extent = (sizes[i] - 1) * strides[i];
    (extent < 0 ? lo : hi) += extent;
  }
  const int64_t elem = static_cast<int64_t>(dtype_size(dtype));
  if (!empty && (lo < 0 || (hi + 1) * elem > static_cast<int64_t>(storage->nbytes()))) {
    return data_loss("tensor of shape ", shape_to_string(sizes), ", strides ",
                     shape_to_string(strides), " and offset ", offset, " needs ", (hi + 1) * elem,
                     " bytes of storage, found ", storage->nbytes());
  }
  Tensor t;
  t.storage_ = std::move(storage);
  t.dtype_ = dtype;
  t.sizes_ = std::move(sizes);
  t.strides_ = std::move(strides);
  t.offset_ = offset;
  return t;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = sizes_.size(); i-- > 0;) {
    if (sizes_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= sizes_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  if (!storage_) return nullptr;
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

Tensor Tensor::view_as(Shape sizes, Shape strides, int64_t offset) const {
  Tensor t;
  t.storage_ = storage_;
  t.dtype_ = dtype_;
  t.sizes_ = std::move(sizes);
  t.strides_ = std::move(strides);
  t.offset_ = offset;
  return t;
}

Result<Tensor> Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return to(dtype_);
}

Result<Tensor> Tensor::to(DType dtype) const {
  KILN_ASSIGN_OR_RETURN(Tensor out, empty(dtype, sizes_));
  KILN_RETURN_IF_ERROR(out.copy_from(*this));
  return out;
}

namespace {

template <typename To, typename From>
void strided_copy(const Shape& sizes, To* dst, const Shape& dst_strides, const From* src,
                  const Shape& src_strides, size_t d) {
  const int64_t n = sizes[d], ds = dst_strides[d], ss = src_strides[d];
  if (d + 1 == sizes.size()) {
    for (int64_t i = 0; i < n; ++i) dst[i * ds] = element_cast<To>(src[i * ss]);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    strided_copy(sizes, dst + i * ds, dst_strides, src + i * ss, src_strides, d + 1);
  }
}

}  // namespace

Status Tensor::copy_from(const Tensor& src) {
  if (src.sizes_ != sizes_) {
    return invalid_argument("copy: expected a source of shape ", shape_to_string(sizes_),
                            ", found ", shape_to_string(src.sizes_));
  }
  if (!has_data() || !src.has_data()) return internal_error("copy between meta tensors");
  if (numel() == 0) return ok_status();
  if (is_complex(dtype_) || is_complex(src.dtype_)) {
    // complex64 has no C++ element type here: copied as 8-byte patterns, never converted.
    if (dtype_ != src.dtype_) {
      return unsupported("copy from ", dtype_name(src.dtype_), " to ", dtype_name(dtype_),
                         " (complex values are copied, never converted)");
    }
    if (sizes_.empty()) {
      std::memcpy(raw_data(), src.raw_data(), sizeof(uint64_t));
    } else {
      strided_copy(sizes_, static_cast<uint64_t*>(raw_data()), strides_,
                   static_cast<const uint64_t*>(src.raw_data()), src.strides_, 0);
    }
    return ok_status();
  }
  if (sizes_.empty()) {  // 0-d: one element
    dispatch_dtype(dtype_, [&]<typename To>() {
      dispatch_dtype(src.dtype_,
                     [&]<typename From>() { *data<To>() = element_cast<To>(*src.data<From>()); });
    });
    return ok_status();
  }
  if (dtype_ == src.dtype_ && is_contiguous() && src.is_contiguous()) {
    std::memcpy(raw_data(), src.raw_data(), nbytes());
    return ok_status();
  }
  dispatch_dtype(dtype_, [&]<typename To>() {
    dispatch_dtype(src.dtype_, [&]<typename From>() {
      strided_copy(sizes_, data<To>(), strides_, src.data<From>(), src.strides_, 0);
    });
  });
  return ok_status();
}

std::string Tensor::description() const {
  return str_cat(dtype_name(dtype_), shape_to_string(sizes_));
}

}  // namespace kiln
