// kiln._C's compiler half: partitioning a program, building engines (bytes), loading and running
// them, and describing them.
#pragma once

#include <nanobind/nanobind.h>

namespace kiln::python {

void bind_compiler(nanobind::module_& m);

}  // namespace kiln::python
