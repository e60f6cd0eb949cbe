// kiln._C: the Python face of the C++ core. Tensors cross as (pointer, shape, strides, dtype)
// through nanobind's ndarray (DLPack): inputs are read in place, outputs are handed to torch
// without a copy and keep their kiln storage alive. A failed Status becomes a typed exception from
// kiln.errors.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include "frontend/pt2_reader.h"
#include "ir/printer.h"
#include "kernels/cpu/cpu_backend.h"
#include "kiln/version.h"
#include "runtime/executor.h"

namespace nb = nanobind;

namespace kiln::python {
namespace {

// Carries a failed Status to the exception translator.
struct StatusError {
  Status status;
};

template <typename T>
T unwrap(Result<T> result) {
  if (!result.ok()) throw StatusError{result.take_status()};
  return std::move(result).value();
}

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
  }
  return make(Code::Float, 32);
}

using CpuArray = nb::ndarray<nb::device::cpu>;

// Wraps a caller's array without copying. The array outlives the call (Python holds it).
Result<Tensor> borrow_array(const CpuArray& array, size_t index) {
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

class PyProgram {
 public:
  explicit PyProgram(std::shared_ptr<ir::Program> program) : program_(std::move(program)) {
    auto executor = Executor::create(program_, cpu::cpu_backend());
    if (executor.ok()) {
      executor_ = std::move(executor).value();
    } else {
      executor_status_ = executor.take_status();
    }
  }

  nb::list run(const std::vector<CpuArray>& arrays) const {
    if (!executor_) throw StatusError{executor_status_};
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < arrays.size(); ++i) inputs.push_back(unwrap(borrow_array(arrays[i], i)));
    Result<std::vector<ir::RtValue>> outputs = Status();
    {
      nb::gil_scoped_release release;
      outputs = executor_->run(inputs);
    }
    nb::list result;
    for (const ir::RtValue& v : unwrap(std::move(outputs))) result.append(to_python(v));
    return result;
  }

  std::string ir() const { return ir::print_graph(program_->graph); }
  std::vector<std::string> unsupported() const {
    return unsupported_ops(program_->graph, cpu::cpu_backend());
  }
  std::vector<std::string> input_names() const {
    std::vector<std::string> names;
    for (const ir::GraphInput* in : program_->graph.user_inputs()) names.push_back(in->value->name);
    return names;
  }
  std::vector<std::string> output_names() const {
    std::vector<std::string> names;
    for (const ir::Value* v : program_->graph.outputs()) names.push_back(v->name);
    return names;
  }
  const std::string& torch_version() const { return program_->torch_version; }
  const std::string& in_spec() const { return program_->in_spec; }
  const std::string& out_spec() const { return program_->out_spec; }
  size_t num_nodes() const { return program_->graph.nodes().size(); }

 private:
  std::shared_ptr<ir::Program> program_;
  std::unique_ptr<Executor> executor_;
  Status executor_status_;
};

frontend::ReadOptions read_options(bool check_inference) {
  frontend::ReadOptions options;
  options.check_inference = check_inference;
  return options;
}

}  // namespace
}  // namespace kiln::python

NB_MODULE(_C, m) {
  using namespace kiln::python;
  m.doc() = "kiln's C++ core: reading torch.export programs and running them";
  m.attr("__version__") = std::string(kiln::kVersion);

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      nb::object errors = nb::module_::import_("kiln.errors");
      nb::object cls = errors.attr(exception_name(e.status.code()));
      PyErr_SetString(cls.ptr(), e.status.message().c_str());
    }
  });

  nb::class_<PyProgram>(m, "Program")
      .def("run", &PyProgram::run, nb::arg("inputs"),
           "Runs the program on the CPU reference backend; returns its outputs in order.")
      .def_prop_ro("ir", &PyProgram::ir)
      .def_prop_ro("unsupported_ops", &PyProgram::unsupported)
      .def_prop_ro("input_names", &PyProgram::input_names)
      .def_prop_ro("output_names", &PyProgram::output_names)
      .def_prop_ro("torch_version", &PyProgram::torch_version)
      .def_prop_ro("in_spec", &PyProgram::in_spec)
      .def_prop_ro("out_spec", &PyProgram::out_spec)
      .def_prop_ro("num_nodes", &PyProgram::num_nodes);

  m.def(
      "load_program_file",
      [](const std::string& path, bool check_inference) {
        return PyProgram(
            unwrap(kiln::frontend::read_program_file(path, read_options(check_inference))));
      },
      nb::arg("path"), nb::arg("check_inference") = true);
  m.def(
      "load_program_bytes",
      [](nb::bytes data, bool check_inference) {
        std::string_view view(data.c_str(), data.size());
        return PyProgram(
            unwrap(kiln::frontend::read_program_bytes(view, read_options(check_inference))));
      },
      nb::arg("data"), nb::arg("check_inference") = true);
}
