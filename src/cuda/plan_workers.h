// A few long-lived host threads that build library plans (cuDNN convolution plans restored from
// the timing cache) while the engine binds its other steps, so the first call of a freshly loaded
// engine does not pay for each plan one after another.
//
// The threads live as long as the process: cuDNN wants a handle per thread kept for the thread's
// life (kiln's are thread-local, cudnn_runtime.h), and a plan finalized with one handle runs
// with another's, the caller's.
#pragma once

#include <functional>

namespace kiln::cuda {

// Runs `task` on one of the process's plan workers (started at first use) with `device` current
// (cudaSetDevice), and returns at once.
void submit_plan_work(int device, std::function<void()> task);

}  // namespace kiln::cuda
