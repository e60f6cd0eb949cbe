#include "tensor_bridge.h"

namespace kiln::python {

const char* exception_name(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return "InvalidArgumentError";
    case StatusCode::kNotFound: return "NotFoundError";
    case StatusCode::kOutOfRange: return "OutOfRangeError";
    case StatusCode::kUnsupported: return "UnsupportedError";
    case StatusCode::kDataLoss: return "DataLossError";
    case StatusCode::kIoError: return "KilnIOError";
    case StatusCode::kFailedPrecondition: return "FailedPreconditionError";
    default: return "InternalError";
  }
}

namespace {

Result<DType> dtype_from_dlpack(nb::dlpack::dtype d) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(d.code);
  if (d.lanes == 1) {
    if (code == Code::Float && d.bits == 32) return DType::kFloat32;
    if (code == Code::Float && d.bits == 16) return DType::kFloat16;
    if (code == Code::Float && d.bits == 64) return DType::kFloat64;
    if (code == Code::Bfloat && d.bits == 16) return DType::kBFloat16;
    if (code == Code::Int && d.bits == 64) return DType::kInt64;
    if (code == Code::Int && d.bits == 32) return DType::kInt32;
    if (code == Code::Int && d.bits == 16) return DType::kInt16;
    if (code == Code::Int && d.bits == 8) return DType::kInt8;
    if (code == Code::UInt && d.bits == 8) return DType::kUInt8;
    if (code == Code::Bool && d.bits == 8) return DType::kBool;
    if (code == Code::Complex && d.bits == 64) return DType::kComplex64;
  }
  return unsupported("tensors of DLPack dtype (code ", int(d.code), ", ", int(d.bits),
                     " bits) are not supported");
}

nb::dlpack::dtype dlpack_dtype(DType dtype) {
  using Code = nb::dlpack::dtype_code;
  auto make = [](Code code, int bits) {
    nb::dlpack::dtype d;
    d.code = static_cast<uint8_t>(code);
    d.bits = static_cast<uint8_t>(bits);
    d.lanes = 1;
    return d;
  };
  switch (dtype) {
    case DType::kFloat32: return make(Code::Float, 32);
    case DType::kFloat16: return make(Code::Float, 16);
    case DType::kBFloat16: return make(Code::Bfloat, 16);
    case DType::kFloat64: return make(Code::Float, 64);
    case DType::kInt64: return make(Code::Int, 64);
    case DType::kInt32: return make(Code::Int, 32);
    case DType::kInt16: return make(Code::Int, 16);
    case DType::kInt8: return make(Code::Int, 8);
    case DType::kUInt8: return make(Code::UInt, 8);
    case DType::kBool: return make(Code::Bool, 8);
    case DType::kComplex64: return make(Code::Complex, 64);
  }
  return make(Code::Float, 32);
}

}  // namespace

// Wraps a caller's array without copying. The array outlives the call (Python holds it).
namespace {

template <typename Array>
Result<Tensor> borrow_any(const Array& array, size_t index) {
  KILN_ASSIGN_OR_RETURN(DType dtype, dtype_from_dlpack(array.dtype()), "input ", index);
  Shape sizes(array.ndim()), strides(array.ndim());
  int64_t extent = 1;
  bool empty = false;
  for (size_t d = 0; d < array.ndim(); ++d) {
    sizes[d] = static_cast<int64_t>(array.shape(d));
    strides[d] = static_cast<int64_t>(array.stride(d));
    if (strides[d] < 0) return unsupported("input ", index, " has a negative stride");
    if (sizes[d] == 0) empty = true;
    extent += (sizes[d] - 1) * strides[d];
  }
  const size_t nbytes = empty ? 0 : static_cast<size_t>(extent) * dtype_size(dtype);
  auto storage = Storage::borrow(const_cast<void*>(array.data()), nbytes, nullptr);
  return Tensor::from_storage(std::move(storage), dtype, std::move(sizes), std::move(strides), 0);
}

template <typename Array>
std::vector<Tensor> borrow_all(const std::vector<Array>& arrays) {
  std::vector<Tensor> tensors;
  tensors.reserve(arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i) tensors.push_back(unwrap(borrow_any(arrays[i], i)));
  return tensors;
}

}  // namespace

Result<Tensor> borrow_array(const CpuArray& array, size_t index) {
  return borrow_any(array, index);
}
Result<Tensor> borrow_array(const CudaArray& array, size_t index) {
  return borrow_any(array, index);
}
std::vector<Tensor> borrow_arrays(const std::vector<CudaArray>& arrays) {
  return borrow_all(arrays);
}

nb::object to_python(const ir::RtValue& value) {
  switch (value.kind) {
    case ir::RtValue::Kind::kInt: return nb::int_(value.i);
    case ir::RtValue::Kind::kFloat: return nb::float_(value.f);
    case ir::RtValue::Kind::kBool: return nb::bool_(value.b);
    case ir::RtValue::Kind::kEmpty: return nb::none();
    case ir::RtValue::Kind::kTensor: break;
  }
  Tensor t = value.tensor;
  // An output that aliases memory kiln does not own (a caller's input, a weight in the archive)
  // is copied, so that the returned tensor never dangles.
  if (!t.storage()->owns_data()) t = unwrap(t.to(t.dtype()));
  auto* keep = new std::shared_ptr<Storage>(t.storage());
  nb::capsule owner(keep,
                    [](void* p) noexcept { delete static_cast<std::shared_ptr<Storage>*>(p); });
  std::vector<size_t> shape(t.sizes().begin(), t.sizes().end());
  std::vector<int64_t> strides(t.strides().begin(), t.strides().end());
  nb::ndarray<nb::pytorch, nb::device::cpu> array(t.raw_data(), shape.size(), shape.data(), owner,
                                                  strides.data(), dlpack_dtype(t.dtype()));
  return nb::cast(array, nb::rv_policy::reference);
}


std::vector<Tensor> borrow_arrays(const std::vector<CpuArray>& arrays) {
  return borrow_all(arrays);
}

nb::list to_python(const std::vector<ir::RtValue>& values) {
  nb::list result;
  for (const ir::RtValue& v : values) result.append(to_python(v));
  return result;
}

}  // namespace kiln::python
