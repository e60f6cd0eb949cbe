// A loaded engine, ready to run: the verified engine plus an executor on its backend.
//
// Running checks every input against the bindings and the optimization profile (count, dtype,
// rank, each dim, symbol ranges) and fails with a message naming the input, the dim, and what was
// expected and found. An EngineRuntime may run from several threads at once; refit() may not run
// concurrently with run().
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "format/engine.h"
#include "ir/op_context.h"
#include "runtime/device_engine.h"
#include "runtime/executor.h"

namespace kiln {

class EngineRuntime {
 public:
  // Reads, verifies and prepares an engine. `owner` keeps `data` alive as long as the runtime
  // (weights are read in place; data that is not 64-byte aligned is copied once). Fails when the
  // engine's backend or arch cannot run here, or its weights were stripped (refit first:
  // load_stripped + refit).
  static Result<std::unique_ptr<EngineRuntime>> load(std::string_view data,
                                                     std::shared_ptr<const void> owner);
  static Result<std::unique_ptr<EngineRuntime>> load(std::shared_ptr<const std::string> bytes);
  // Like load, but accepts an engine whose weights were stripped; run() fails until refit().
  static Result<std::unique_ptr<EngineRuntime>> load_stripped(std::string_view data,
                                                              std::shared_ptr<const void> owner);
  static Result<std::unique_ptr<EngineRuntime>> load_stripped(
      std::shared_ptr<const std::string> bytes);
  // Reads and verifies an engine for any backend and arch, without preparing to run it (run()
  // fails): for inspecting engines built for other machines.
  static Result<std::unique_ptr<EngineRuntime>> inspect(std::string_view data,
                                                        std::shared_ptr<const void> owner);
  static Result<std::unique_ptr<EngineRuntime>> inspect(std::shared_ptr<const std::string> bytes);

  // Runs a cpu engine on host tensors.
  Result<std::vector<ir::RtValue>> run(std::span<const Tensor> inputs) const;
  // A GPU engine, prepared on the current device at first use (kernels, weights, arena); fails
  // for cpu engines, engines without weights, and where no GPU or CUDA backend is available.
  Result<DeviceEngine*> device_engine();

  // Replaces weights by their target name ("layer1.0.conv1.weight"); each must match the engine's
  // dtype and shape. Every weight of a stripped engine must be given before it can run.
  Status refit(const std::map<std::string, Tensor>& weights);
  // The weights' target names, in graph-input order.
  std::vector<std::string> weight_names() const;

  const format::Engine& engine() const { return engine_; }
  const ir::Graph& graph() const { return engine_.program->graph; }

 private:
  EngineRuntime() = default;
  static Result<std::unique_ptr<EngineRuntime>> load_impl(std::string_view data,
                                                          std::shared_ptr<const void> owner,
                                                          bool allow_stripped, bool runnable);

  std::shared_ptr<const void> owner_;
  format::Engine engine_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<DeviceEngine> device_;
  std::mutex device_mutex_;
  bool missing_weights_ = false;
};

// The backend that runs engines for `target` in this build (cpu always; cuda when built with it),
// or why none can.
Result<const Backend*> backend_for_target(const format::Target& target);

}  // namespace kiln
