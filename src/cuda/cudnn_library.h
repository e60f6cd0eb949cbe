// Whether cuDNN 9 can be used in this process: kiln loads it with dlopen ("libcudnn.so.9") on
// first use, so kiln links no cuDNN library and loads where cuDNN is absent. Free of cuDNN's
// headers, for code (and tests) that only need to ask. Defined in cudnn_runtime.cc.
#pragma once

#include "kiln/status.h"

namespace kiln::cuda {

// OK, or failed_precondition saying why cuDNN 9 could not be loaded. Loads it on the first call;
// the answer never changes afterwards.
Status cudnn_available();

}  // namespace kiln::cuda
