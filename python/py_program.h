// kiln._C.Program: a torch.export program read by the C++ core, runnable on the CPU reference
// backend; the compiler bindings partition and build from it.
#pragma once

#include <nanobind/nanobind.h>

#include <memory>
#include <string>
#include <vector>

#include "ir/printer.h"
#include "ir/program.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/executor.h"
#include "tensor_bridge.h"

namespace kiln::python {

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
    std::vector<Tensor> inputs = borrow_arrays(arrays);
    Result<std::vector<ir::RtValue>> outputs = Status();
    {
      nb::gil_scoped_release release;
      outputs = executor_->run(inputs);
    }
    return to_python(unwrap(std::move(outputs)));
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
  const std::shared_ptr<ir::Program>& program() const { return program_; }

 private:
  std::shared_ptr<ir::Program> program_;
  std::unique_ptr<Executor> executor_;
  Status executor_status_;
};

}  // namespace kiln::python
