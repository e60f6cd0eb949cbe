// Which backend implementations can run which nodes: kiln's answer to Torch-TensorRT's converter
// registry. Each op has zero or more implementations per backend, each with a priority, a flag for
// dynamic shapes and a capability validator that looks at one node (dtypes, argument values,
// shapes) and accepts it or says why not in a few words ("float64 inputs", "dropout_p != 0").
//
// A registry is filled once and then only read: select() and the other const methods are safe to
// call from several threads at once; add() is not. Validators must not keep the node they see.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {
class Backend;
}

namespace kiln::convert {

// Among the implementations of one op for one backend, select() tries the highest first.
enum class Priority : uint8_t { kLow, kStandard, kHigh };
std::string_view priority_name(Priority priority);  // "low", "standard", "high"

// A validator's answer: accepted, or rejected with a short reason.
class Verdict {
 public:
  static Verdict accept() { return Verdict(); }
  static Verdict reject(std::string reason) { return Verdict(std::move(reason)); }

  bool accepted() const { return !rejected_; }
  const std::string& reason() const { return reason_; }  // empty when accepted

 private:
  Verdict() = default;
  explicit Verdict(std::string reason) : rejected_(true), reason_(std::move(reason)) {}
  bool rejected_ = false;
  std::string reason_;
};

using Validator = std::function<Verdict(const ir::Node& node)>;

struct OpImplementation {
  ir::OpKey op = ir::OpKey::kInvalid;
  std::string backend;  // "cpu", "cuda"
  Priority priority = Priority::kStandard;
  // False: select() passes over it for nodes with a symbolic dim (unless told to assume support).
  bool supports_dynamic_shapes = false;
  Validator validator;  // null accepts every node
};

// What select() found: the implementation to use, or why each candidate declined.
struct Selection {
  const OpImplementation* implementation = nullptr;  // owned by the registry
  std::vector<std::string> reasons;  // when none accepts: one per candidate, highest priority first

  bool ok() const { return implementation != nullptr; }
  // The reasons joined with "; " ("no cpu implementation" when the op has none).
  std::string reason() const;
};

class OpRegistry {
 public:
  OpRegistry();

  // Registering the same (op, backend, priority) twice is an error, never a silent override: two
  // implementations of equal rank would leave the choice between them to registration order.
  Status add(OpImplementation implementation);

  // The highest-priority implementation for `backend` that accepts the node. An implementation
  // without dynamic-shape support declines nodes with symbolic dims unless
  // `assume_dynamic_shape_support`.
  Selection select(const ir::Node& node, std::string_view backend,
                   bool assume_dynamic_shape_support) const;

  // The op's implementations for every backend, highest priority first.
  std::span<const OpImplementation> implementations(ir::OpKey op) const;
  bool has_implementation(ir::OpKey op, std::string_view backend) const;

 private:
  std::vector<std::vector<OpImplementation>> by_op_;  // indexed by OpKey
};

// True when some tensor the node reads or writes has a symbolic dim.
bool has_dynamic_shapes(const ir::Node& node);

// Checks shared by the backends' validators; each accepts or names the first problem it finds.
// Random ops (a Generator argument, dropout in training mode) and ops tagged nondeterministic: an
// engine must give the same answer for the same inputs.
Verdict check_deterministic(const ir::Node& node);
// Ops whose output shape (or value, like item()) depends on input data, which a planned engine
// cannot size: tagged data_dependent_output, or tagged dynamic_output_shape with an output dim
// over an unbacked symbol (`u0`); index.Tensor with integer indices keeps a static output shape.
Verdict check_static_output_shape(const ir::Node& node);
// `training=True` (batch norm's batch statistics, running-stat updates): inference only.
Verdict check_inference_mode(const ir::Node& node);
// Every value the node reads or writes is a tensor of one of `dtypes`, or a symbolic int, float or
// bool. Tensor-list arguments are checked element by element.
Verdict check_value_types(const ir::Node& node, std::span<const DType> dtypes);

// Registers one implementation per op that the CPU reference backend runs, at standard priority
// and with dynamic-shape support; each validator asks the backend (Backend::supports) and runs the
// checks above, except that the random ops the CPU backend draws itself (rand, randn, randperm,
// native_dropout: kernels/cpu/random.cc) pass check_deterministic's place. `backend` is the CPU backend (or one that, like it, decides from the op and the
// kinds of the outputs); the validators keep a reference to it, so it must outlive the registry.
Status register_cpu_implementations(OpRegistry& registry, const Backend& backend);

// The process-wide registry holding the CPU reference backend's implementations, built on first
// use (thread-safe). A failed build is a kiln bug; cpu_registry_status() reports it.
const OpRegistry& cpu_registry();
const Status& cpu_registry_status();

// Registers the CUDA backend's implementations (nothing in a kiln built without it).
Status register_cuda_implementations(OpRegistry& registry);

// The registry the compiler uses: the CPU reference backend's implementations and, where kiln
// has it, the CUDA backend's. Built on first use (thread-safe); default_registry_status()
// reports a failed build.
const OpRegistry& default_registry();
const Status& default_registry_status();

}  // namespace kiln::convert
