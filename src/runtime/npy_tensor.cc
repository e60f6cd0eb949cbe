#include "runtime/npy_tensor.h"

#include <cstring>

namespace kiln {

Result<Tensor> tensor_from_npy(const NpyArray& array) {
  auto dtype = dtype_from_npy_descr(array.descr);
  if (!dtype) {
    return unsupported("arrays of dtype '", array.descr, "' are not supported (expected one of ",
                       "<f4, <f2, <f8, <i8, <i4, <i2, |i1, |u1, |b1)");
  }
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(*dtype, array.shape));
  if (array.data.size() != t.nbytes()) {
    return data_loss("array of shape ", shape_to_string(array.shape), " and dtype ", array.descr,
                     " needs ", t.nbytes(), " bytes of data, found ", array.data.size());
  }
  std::memcpy(t.raw_data(), array.data.data(), t.nbytes());
  return t;
}

Status write_tensor_npy(const std::string& path, const Tensor& tensor) {
  Tensor t = tensor;
  if (!npy_descr(t.dtype())) {
    KILN_ASSIGN_OR_RETURN(t, tensor.to(DType::kFloat32));
  }
  KILN_ASSIGN_OR_RETURN(t, t.contiguous());
  std::string_view data(static_cast<const char*>(t.raw_data()), t.nbytes());
  return write_npy_file(path, *npy_descr(t.dtype()), t.sizes(), data);
}

}  // namespace kiln
