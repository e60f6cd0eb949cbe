// The interface every backend implements: a small table of what it runs and how.
// Backends are immutable after construction and safe to use from several threads at once.
#pragma once

#include <string_view>

#include "ir/op_context.h"

namespace kiln {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Whether this backend can run the node: an implementation exists and accepts its arguments.
  virtual bool supports(const ir::Node& node) const = 0;
  // Runs one node. Shape inference has already filled the context's outputs, and tensor outputs of
  // ops that are not views have been allocated; the backend writes their data (or, for views, sets
  // them to views of the inputs).
  virtual Status execute(ir::OpContext& ctx) const = 0;
};

}  // namespace kiln
