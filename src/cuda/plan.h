// The CUDA backend's execution plan for one engine: the steps that run the program on the GPU,
// the kernel module source they need, and the activation arena's layout.
//
// The planner (planner.cc) walks the lowered program once at the optimization profile's largest
// shapes and decides, node by node: views stay views (no kernel), chains of pointwise ops fuse
// into one generated kernel, GEMMs go to cuBLASLt with bias/activation epilogues, convolutions
// to cuDNN (channels-last in half precision) with bias/residual/ReLU fused, the rest to kiln's
// kernel library. Planning is deterministic: the builder plans to generate and compile the
// kernels; the runtime plans the same engine again at load and finds every kernel by name.
//
// At run time a plan is bound to concrete shapes (one binding per input-shape signature): the
// runtime walks the graph with device tensors (weights, staged inputs, arena buffers) and asks
// each step for a Launch, a closure that enqueues its work on a stream. The launches of one
// binding replay as a CUDA graph.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "cuda/kernel_library.h"
#include "ir/op_context.h"
#include "ir/program.h"
#include "kiln/status.h"

namespace kiln::cuda {

class KernelModule;
class GemmPlan;
class ConvPlan;
class AttentionPlan;
struct GemmDesc;
struct ConvDesc;
struct AttentionDesc;

using Launch = std::function<Status(cudaStream_t)>;
using Slots = std::vector<ir::RtValue>;  // one per graph value, by Value::id

// What steps need while binding: kernels by name, library plans cached by their descriptors, the
// shared library workspace.
class BindContext {
 public:
  virtual ~BindContext() = default;
  virtual Result<cudaKernel_t> kernel(const std::string& name) = 0;
  virtual Result<std::shared_ptr<const GemmPlan>> gemm_plan(const GemmDesc& desc) = 0;
  virtual Result<std::shared_ptr<const ConvPlan>> conv_plan(const ConvDesc& desc) = 0;
  virtual Result<std::shared_ptr<const AttentionPlan>> attention_plan(const AttentionDesc& desc) = 0;
  virtual void* workspace() const = 0;
  virtual size_t workspace_bytes() const = 0;
  // A step's scratch buffer, planned in the arena (see Step::scratch_bytes).
  virtual void* scratch(size_t step_index, size_t which) const = 0;
};

class Step {
 public:
  virtual ~Step() = default;
  virtual std::string_view kind() const = 0;
  // Describes the step for `kiln inspect` and debug logs: "pointwise[relu, add] -> out".
  virtual std::string describe() const = 0;
  // The launch for the tensors now in `slots` (reads its inputs' and outputs' slots).
  virtual Result<Launch> bind(const Slots& slots, BindContext& ctx, size_t step_index) const = 0;

  std::string name;              // the last node's name
  std::vector<uint32_t> reads;   // value ids
  std::vector<uint32_t> writes;  // value ids whose buffers this step fills
  // Scratch buffers the step needs at the profile's largest shapes (bytes each), planned in the
  // arena for the duration of the step.
  std::vector<size_t> scratch_bytes;
};

// How a value is stored: the order of its dims in memory, outermost first; empty (or of another
// rank than the value) means row-major. Channels-last (NHWC) is {0, 2, 3, 1}; an attention output
// that is transposed and reshaped next is stored in the transposed order, which makes the
// reshape a view.
struct Layout {
  std::vector<int8_t> order;
  bool operator==(const Layout&) const = default;
  static Layout channels_last() { return Layout{{0, 2, 3, 1}}; }
  bool is_channels_last() const { return *this == channels_last(); }
};

struct PlanOptions {
  std::string arch;              // "sm_90"
  bool allow_tf32 = true;
  bool channels_last = true;     // NHWC activations around half-precision convolutions
  bool fused_attention = true;   // cuDNN's fused attention where it applies (else GEMM-softmax-GEMM)
};

struct BufferPlacement {
  uint32_t value = 0;   // the value whose storage this is (or UINT32_MAX for scratch)
  uint64_t offset = 0;  // bytes into the arena
  uint64_t bytes = 0;   // capacity, at the largest shapes
};

struct Plan {
  std::vector<std::unique_ptr<Step>> steps;
  ModuleSource module;
  // For each value id: whether a step writes it into a buffer of its own (else it is a view, a
  // weight, a user input or a number), and its layout.
  std::vector<bool> has_buffer;
  std::vector<Layout> layout;
  // Values that are views of a buffer only through a ComposedView (composed_view.h): a reshape no
  // single stride per dim expresses, resolved by the views that follow it. Only views read them.
  std::vector<bool> composed;
  // Arena placement of every buffer (values, staged user inputs, scratch) at the largest shapes.
  std::map<uint32_t, BufferPlacement> value_buffers;      // by value id
  std::vector<std::vector<BufferPlacement>> scratch;     // by step index
  uint64_t arena_bytes = 0;
  // Weights stored channels-last on the device (convolution filters in channels-last plans).
  std::vector<uint32_t> channels_last_weights;
  std::string summary() const;  // one line per step
};

// Plans `program` (already lowered, every node supported by the CUDA backend) for the symbol
// values in `max_symbols` (the profile's maxima). Fails with unsupported, naming the node, when a
// node cannot be planned.
Result<Plan> make_plan(const ir::Program& program, const std::map<std::string, int64_t>& max_symbols,
                       const PlanOptions& options);

// Whether v has exactly one reading node and is not a graph output.
bool single_user(const ir::Value* v, const ir::Graph& graph);

// Views stay views (no step) unless a reshape's strides cannot express it on its input.
bool is_view_node(const ir::Node& node);
bool is_reshape_op(ir::OpKey op);
// aten.convolution and the kept-whole aten.conv1d/conv2d/conv3d.
bool is_conv_op(ir::OpKey op);

// Strides for sizes in a layout (row-major where the layout's rank differs from the sizes').
Shape layout_strides(const Shape& sizes, const Layout& layout);

}  // namespace kiln::cuda
