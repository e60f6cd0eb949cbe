// The pieces every part of kiln._C shares: failed Statuses as Python exceptions, and tensors
// crossing between torch (DLPack via nanobind's ndarray) and kiln without copies.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <vector>

#include "base/tensor.h"
#include "ir/op_context.h"
#include "kiln/status.h"

namespace kiln::python {

namespace nb = nanobind;

// Carries a failed Status to the exception translator (registered in binding.cc), which raises
// the kiln.errors class for its code.
struct StatusError {
  Status status;
};

template <typename T>
T unwrap(Result<T> result) {
  if (!result.ok()) throw StatusError{result.take_status()};
  return std::move(result).value();
}
inline void check(Status status) {
  if (!status.ok()) throw StatusError{std::move(status)};
}

const char* exception_name(StatusCode code);

using CpuArray = nb::ndarray<nb::device::cpu>;
using CudaArray = nb::ndarray<nb::device::cuda>;

// Wraps a caller's array without copying. The array must outlive the tensor (Python holds it).
// A CUDA array's tensor has device memory as its storage: only its geometry is read on the host.
Result<Tensor> borrow_array(const CpuArray& array, size_t index);
Result<Tensor> borrow_array(const CudaArray& array, size_t index);
std::vector<Tensor> borrow_arrays(const std::vector<CpuArray>& arrays);
std::vector<Tensor> borrow_arrays(const std::vector<CudaArray>& arrays);

// A runtime value as a Python object: tensors become torch tensors sharing kiln's storage (copied
// when kiln does not own the memory), numbers become ints, floats and bools.
nb::object to_python(const ir::RtValue& value);
nb::list to_python(const std::vector<ir::RtValue>& values);

}  // namespace kiln::python
