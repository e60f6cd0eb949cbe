// The pooling extra family of library ops (steps.h, LibraryFamily). Not written yet: takes no op.
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

bool takes(ir::OpKey) { return false; }

convert::Verdict verdict(const ir::Node&) { return convert::Verdict::reject("not implemented"); }

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots&, ModuleSource&) {
  return unsupported("no CUDA kernel for ", ir::op_name(node.op));
}

}  // namespace

const LibraryFamily& pooling_extra_family() {
  static const LibraryFamily family{"pooling extra", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
