// A tensor: dtype, sizes, strides (in elements) and an offset into shared storage.
// Storage is reference-counted: views (permute, expand, slice) share it, and memory that kiln does
// not own (a mapped weight file, a caller's buffer) is held through the owner handle it came with.
// A tensor without storage is a "meta" tensor: shape and dtype only, used by shape inference.
// Tensors are not synchronized: one thread mutates a tensor's data at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "kiln/status.h"

namespace kiln {

using Shape = std::vector<int64_t>;

std::string shape_to_string(std::span<const int64_t> shape);  // "[2, 3, 224, 224]"
int64_t shape_numel(std::span<const int64_t> shape);
Shape contiguous_strides(std::span<const int64_t> shape);

class Storage {
 public:
  // Owns `nbytes` of fresh, 64-byte aligned host memory (uninitialized).
  static Result<std::shared_ptr<Storage>> allocate(size_t nbytes);
  // Borrows `data`; `owner` keeps it alive (e.g. the mapped archive) for as long as this storage.
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes,
                                         std::shared_ptr<const void> owner);

  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  // False for borrowed memory (a caller's buffer, a mapped archive).
  bool owns_data() const { return owned_; }

 private:
  Storage(void* data, size_t nbytes, bool owned, std::shared_ptr<const void> owner)
      : data_(data), nbytes_(nbytes), owned_(owned), owner_(std::move(owner)) {}
  void* data_;
  size_t nbytes_;
  bool owned_;
  std::shared_ptr<const void> owner_;
};

class Tensor {
 public:
  Tensor() = default;
  // A meta tensor (no data).
  static Tensor meta(DType dtype, Shape sizes);
  // A new contiguous tensor with uninitialized data.
  static Result<Tensor> empty(DType dtype, Shape sizes);
  static Result<Tensor> zeros(DType dtype, Shape sizes);
  // A view on existing storage. Checks that every addressed element lies inside the storage.
  static Result<Tensor> from_storage(std::shared_ptr<Storage> storage, DType dtype, Shape sizes,
                                     Shape strides, int64_t offset);

  DType dtype() const { return dtype_; }
  const Shape& sizes() const { return sizes_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t size(int64_t d) const { return sizes_[d]; }
  int64_t numel() const { return shape_numel(sizes_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool has_data() const { return storage_ != nullptr; }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // Pointer to element 0 of this view (storage base + offset). Null for meta tensors.
  void* raw_data() const;
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw_data());
  }

  // A view with new sizes/strides/offset on the same storage (no bounds check: callers derive
  // them from this tensor's own geometry).
  Tensor view_as(Shape sizes, Shape strides, int64_t offset) const;
  // This tensor if contiguous, else a contiguous copy.
  Result<Tensor> contiguous() const;
  // A contiguous copy in `dtype` (PyTorch's conversion rules: float->int truncates toward zero).
  Result<Tensor> to(DType dtype) const;
  // Copies `src` (same sizes; any strides; any dtype, converted) into this tensor's elements.
  Status copy_from(const Tensor& src);

  std::string description() const;  // "float32[2, 3]"

 private:
  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::kFloat32;
  Shape sizes_;
  Shape strides_;
  int64_t offset_ = 0;
};

}  // namespace kiln
