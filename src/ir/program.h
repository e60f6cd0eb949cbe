// A program read from a torch.export archive: the graph, plus the tensors behind its parameters,
// buffers and constants. Weight tensors borrow the archive's bytes where they can (their storage
// keeps the mapping alive), so a Program may outlive the reader that made it.
#pragma once

#include <string>
#include <unordered_map>

#include "base/tensor.h"
#include "ir/graph.h"

namespace kiln::ir {

struct Program {
  Graph graph;
  // Parameters, buffers and constants, by the id of their graph input value.
  std::unordered_map<uint32_t, Tensor> weights;
  std::string torch_version;  // of the PyTorch that exported it, e.g. "2.11.0+cu130"
  int schema_major = 0;
  int schema_minor = 0;
  // How user inputs and outputs nest (torch.utils._pytree's serialized TreeSpec): Python uses them
  // to take the same arguments as the original module and return the same structure.
  std::string in_spec;
  std::string out_spec;
};

}  // namespace kiln::ir
