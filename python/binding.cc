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
#include "runtime/device_engine.h"
#include "kiln/version.h"
#include "compiler_binding.h"
#include "py_program.h"
#include "tensor_bridge.h"

namespace nb = nanobind;

namespace kiln::python {
namespace {

frontend::ReadOptions read_options(bool check_inference, bool torch_keeps_signature = false) {
  frontend::ReadOptions options;
  options.check_inference = check_inference;
  options.torch_keeps_signature = torch_keeps_signature;
  return options;
}

}  // namespace
}  // namespace kiln::python

NB_MODULE(_C, m) {
  using namespace kiln::python;
  m.doc() = "kiln's C++ core: reading torch.export programs and running them";
  m.attr("__version__") = std::string(kiln::kVersion);
  // Compiled modules and the loaded-engine cache of kiln::execute_engine legitimately hold engines
  // until the interpreter exits, after nanobind's leak check runs: not leaks, so no warnings.
  nb::set_leak_warnings(false);

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
      [](nb::bytes data, bool check_inference, bool torch_keeps_signature) {
        std::string_view view(data.c_str(), data.size());
        return PyProgram(unwrap(kiln::frontend::read_program_bytes(
            view, read_options(check_inference, torch_keeps_signature))));
      },
      nb::arg("data"), nb::arg("check_inference") = true,
      nb::arg("torch_keeps_signature") = false,
      "torch_keeps_signature: read user-input mutations as outputs and leave out None outputs "
      "(kiln.compile's module carries them out in PyTorch).");

  m.def("set_timing_cache_path", &kiln::set_timing_cache_path, nb::arg("path"),
        "Where the CUDA runtime keeps the GEMM and convolution algorithms it timed ('' = memory "
        "only).");

  bind_compiler(m);
}
