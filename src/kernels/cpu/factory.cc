// CPU reference kernels for the factory ops.
#include "kernels/cpu/cpu_backend.h"

namespace kiln::cpu {

Status register_factory_kernels(ir::OpFunctionTable& table) {
  return ok_status();
}

}  // namespace kiln::cpu
