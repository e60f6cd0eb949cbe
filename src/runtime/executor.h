// Runs a program node by node on one backend (the reference interpreter).
//
// An Executor is immutable after create(): run() keeps its state on the stack, so several threads
// may run the same Executor at once. The Executor shares ownership of the program.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "ir/op_context.h"
#include "ir/program.h"
#include "runtime/backend.h"

namespace kiln {

class Executor {
 public:
  // Fails when the backend cannot run some node; the message lists each unsupported op with its
  // count and the nodes that use it.
  static Result<std::unique_ptr<Executor>> create(std::shared_ptr<const ir::Program> program,
                                                  const Backend& backend);

  // Checks the inputs (count, dtype, shape, symbol ranges), runs every node and returns the
  // program's outputs in order (tensors, or numbers for symbolic outputs).
  Result<std::vector<ir::RtValue>> run(std::span<const Tensor> inputs) const;

  const ir::Program& program() const { return *program_; }

 private:
  Executor(std::shared_ptr<const ir::Program> program, const Backend& backend);
  Status run_node(const ir::Node& node, std::span<ir::RtValue> slots) const;

  std::shared_ptr<const ir::Program> program_;
  const Backend& backend_;
  // For each node, the values whose last reader it is: their slots are released after it runs.
  std::vector<std::vector<uint32_t>> release_after_;
};

// Lists the nodes `backend` cannot run: "aten.foo.default (2 nodes: foo, foo_1)", one per line.
std::vector<std::string> unsupported_ops(const ir::Graph& graph, const Backend& backend);

}  // namespace kiln
