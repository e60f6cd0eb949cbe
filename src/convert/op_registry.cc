#include "convert/op_registry.h"

#include <algorithm>
#include <array>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"
#include "ir/sym_expr.h"
#include "ir/verifier.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/backend.h"

namespace kiln::convert {

std::string_view priority_name(Priority priority) {
  switch (priority) {
    case Priority::kLow: return "low";
    case Priority::kStandard: return "standard";
    case Priority::kHigh: return "high";
  }
  return "?";
}

std::string Selection::reason() const {
  std::string joined;
  for (const std::string& r : reasons) joined += str_cat(joined.empty() ? "" : "; ", r);
  return joined;
}

OpRegistry::OpRegistry() : by_op_(static_cast<size_t>(ir::OpKey::kCount)) {}

Status OpRegistry::add(OpImplementation implementation) {
  if (implementation.op == ir::OpKey::kInvalid || implementation.op >= ir::OpKey::kCount) {
    return invalid_argument("op implementation: expected a valid op key, found ",
                            static_cast<int>(implementation.op));
  }
  if (implementation.backend.empty()) {
    return invalid_argument("op implementation for ", ir::op_name(implementation.op),
                            ": expected a backend name, found an empty one");
  }
  auto& list = by_op_[static_cast<size_t>(implementation.op)];
  for (const OpImplementation& existing : list) {
    if (existing.backend == implementation.backend &&
        existing.priority == implementation.priority) {
      return internal_error(ir::op_name(implementation.op), " already has a ",
                            priority_name(existing.priority), "-priority ", existing.backend,
                            " implementation; registering a second one would make the choice "
                            "depend on registration order");
    }
  }
  // Highest priority first; equal priorities are different backends, kept in registration order.
  auto pos = std::find_if(list.begin(), list.end(), [&](const OpImplementation& e) {
    return e.priority < implementation.priority;
  });
  list.insert(pos, std::move(implementation));
  return ok_status();
}

Selection OpRegistry::select(const ir::Node& node, std::string_view backend,
                             bool assume_dynamic_shape_support) const {
  Selection selection;
  const bool dynamic = has_dynamic_shapes(node);
  bool any = false;
  for (const OpImplementation& impl : implementations(node.op)) {
    if (impl.backend != backend) continue;
    any = true;
    if (dynamic && !impl.supports_dynamic_shapes && !assume_dynamic_shape_support) {
      selection.reasons.push_back("dynamic shapes");
      continue;
    }
    if (impl.validator) {
      Verdict verdict = impl.validator(node);
      if (!verdict.accepted()) {
        selection.reasons.push_back(verdict.reason());
        continue;
      }
    }
    // Inference answers Unsupported for arguments PyTorch takes and kiln's kernels do not (an
    // integer transposed convolution): no backend runs such a node, whatever its validator said.
    if (Status inferred = ir::infer_node(node); inferred.code() == StatusCode::kUnsupported) {
      selection.reasons = {inferred.message()};
      return selection;
    }
    selection.implementation = &impl;
    selection.reasons.clear();
    return selection;
  }
  if (!any) selection.reasons.push_back(str_cat("no ", backend, " implementation"));
  return selection;
}

std::span<const OpImplementation> OpRegistry::implementations(ir::OpKey op) const {
  if (op >= ir::OpKey::kCount) return {};
  return by_op_[static_cast<size_t>(op)];
}

bool OpRegistry::has_implementation(ir::OpKey op, std::string_view backend) const {
  for (const OpImplementation& impl : implementations(op)) {
    if (impl.backend == backend) return true;
  }
  return false;
}

namespace {

bool has_symbolic_dim(const ir::Value* v) {
  if (!v || v->kind != ir::ValueKind::kTensor) return false;
  return std::any_of(v->shape.begin(), v->shape.end(),
                     [](const ir::SymDim& d) { return !d.is_static(); });
}

// PyTorch names unbacked symbols (sizes only known once the data is) u0, u1, ...; unbacked floats
// zuf0, ...
bool has_unbacked_symbol(const ir::Value& v) {
  for (const ir::SymDim& dim : v.shape) {
    if (dim.is_static()) continue;
    std::vector<std::string> names;
    dim.expr->collect_symbols(&names);
    for (const std::string& name : names) {
      if (name.starts_with("u") || name.starts_with("zuf")) return true;
    }
  }
  return false;
}

const ir::Argument* find_arg(const ir::Node& node, std::string_view name) {
  const auto schema_args = node.schema().args();
  for (size_t i = 0; i < schema_args.size() && i < node.args.size(); ++i) {
    if (name == schema_args[i].name) return &node.args[i];
  }
  return nullptr;
}

// A bool argument's value; `if_none` for None (native_dropout's `bool? train`).
std::optional<bool> bool_arg(const ir::Node& node, std::string_view name, bool if_none) {
  const ir::Argument* arg = find_arg(node, name);
  if (!arg) return std::nullopt;
  if (const bool* b = std::get_if<bool>(arg)) return *b;
  if (std::holds_alternative<ir::NoneArg>(*arg)) return if_none;
  return std::nullopt;
}

std::string_view packet_name(const ir::Node& node) {
  std::string_view qualified = node.schema().qualified_name;
  const size_t sep = qualified.find("::");
  return sep == std::string_view::npos ? qualified : qualified.substr(sep + 2);
}

// Random ops that take no Generator argument (the generator overloads are caught by their
// argument): their results differ from call to call.
constexpr std::array<std::string_view, 22> kRandomPackets = {"rand",
                                                             "randn",
                                                             "randint",
                                                             "rand_like",
                                                             "randn_like",
                                                             "randint_like",
                                                             "randperm",
                                                             "bernoulli",
                                                             "normal",
                                                             "normal_functional",
                                                             "uniform",
                                                             "multinomial",
                                                             "poisson",
                                                             "exponential",
                                                             "geometric",
                                                             "cauchy",
                                                             "log_normal",
                                                             "rrelu",
                                                             "rrelu_with_noise",
                                                             "binomial",
                                                             "_standard_gamma",
                                                             "_sample_dirichlet"};

bool is_dropout(const ir::Node& node) {
  return packet_name(node).find("dropout") != std::string_view::npos;
}

}  // namespace

bool has_dynamic_shapes(const ir::Node& node) {
  for (const ir::Value* v : node.input_values()) {
    if (has_symbolic_dim(v)) return true;
  }
  return std::any_of(node.outputs.begin(), node.outputs.end(), has_symbolic_dim);
}

Verdict check_deterministic(const ir::Node& node) {
  const ir::OpSchema& schema = node.schema();
  if (is_dropout(node)) {
    // Dropout in eval mode (or with p == 0) is the identity; otherwise it draws random numbers.
    const bool train = bool_arg(node, "train", /*if_none=*/true).value_or(true);
    const ir::Argument* p = find_arg(node, "p");
    const double* p_value = p ? std::get_if<double>(p) : nullptr;
    if (train && (!p_value || *p_value != 0.0)) {
      return Verdict::reject("dropout_p != 0 in training mode");
    }
    return Verdict::accept();
  }
  for (const ir::ArgSchema& arg : schema.args()) {
    if (arg.base == ir::BaseType::kGenerator) return Verdict::reject("random op");
  }
  if (std::find(kRandomPackets.begin(), kRandomPackets.end(), packet_name(node)) !=
      kRandomPackets.end()) {
    return Verdict::reject("random op");
  }
  // Attention is tagged nondeterministic_seeded for its dropout: deterministic at dropout_p 0.
  if (const ir::Argument* p = find_arg(node, "dropout_p")) {
    const double* p_value = std::get_if<double>(p);
    const int64_t* p_int = std::get_if<int64_t>(p);
    if ((p_value && *p_value == 0.0) || (p_int && *p_int == 0)) return Verdict::accept();
    return Verdict::reject("dropout_p != 0");
  }
  // Tagged nondeterministic_seeded in PyTorch: draws random numbers.
  if (schema.has_tag(ir::kTagNondeterministic)) return Verdict::reject("random op");
  return Verdict::accept();
}

Verdict check_static_output_shape(const ir::Node& node) {
  const ir::OpSchema& schema = node.schema();
  if (schema.has_tag(ir::kTagDataDependentOutput)) {
    return Verdict::reject("data-dependent output");
  }
  if (!schema.has_tag(ir::kTagDynamicOutputShape)) return Verdict::accept();
  // Such ops (nonzero, unique, index with a boolean mask) size their output from the data; the
  // exported program says so with an unbacked symbol. A mask index is data-dependent even when
  // the program does not record the output.
  const std::vector<ir::Value*> inputs = node.input_values();
  for (size_t i = 1; i < inputs.size(); ++i) {
    const ir::Value* v = inputs[i];
    if (v->kind == ir::ValueKind::kTensor &&
        (v->dtype == DType::kBool || v->dtype == DType::kUInt8)) {
      return Verdict::reject("data-dependent output shape (boolean mask)");
    }
  }
  for (const ir::Value* out : node.outputs) {
    if (!out || out->kind != ir::ValueKind::kTensor) continue;
    if (!out->has_recorded_meta || has_unbacked_symbol(*out)) {
      return Verdict::reject("data-dependent output shape");
    }
  }
  return Verdict::accept();
}

Verdict check_inference_mode(const ir::Node& node) {
  if (is_dropout(node)) return Verdict::accept();  // check_deterministic decides
  // Training batch norm whose running statistics the program updates functionally: kernels
  // compute the batch statistics and the updated running ones as outputs.
  if (node.op == ir::OpKey::aten__native_batch_norm_legit_no_stats ||
      node.op == ir::OpKey::aten__native_batch_norm_legit_functional_default) {
    return Verdict::accept();
  }
  if (bool_arg(node, "training", /*if_none=*/false).value_or(false)) {
    return Verdict::reject(packet_name(node).find("batch_norm") != std::string_view::npos
                               ? "batch norm in training mode"
                               : "training mode (training=True)");
  }
  if (bool_arg(node, "train", /*if_none=*/false).value_or(false)) {
    return Verdict::reject("training mode (train=True)");
  }
  return Verdict::accept();
}

Verdict check_value_types(const ir::Node& node, std::span<const DType> dtypes) {
  auto check = [&](const ir::Value* v, std::string_view role) -> std::optional<std::string> {
    if (!v || v->kind != ir::ValueKind::kTensor) return std::nullopt;
    if (std::find(dtypes.begin(), dtypes.end(), v->dtype) != dtypes.end()) return std::nullopt;
    return str_cat(dtype_name(v->dtype), " ", role);
  };
  for (const ir::Value* v : node.input_values()) {
    if (auto bad = check(v, "input")) return Verdict::reject(*bad);
  }
  for (const ir::Value* v : node.outputs) {
    if (auto bad = check(v, "output")) return Verdict::reject(*bad);
  }
  return Verdict::accept();
}

namespace {

constexpr std::array<DType, 10> kCpuDTypes = {
    DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64, DType::kInt64,
    DType::kInt32,   DType::kInt16,   DType::kInt8,     DType::kUInt8,   DType::kBool};

// complex64 is read and produced by the spectral ops alone (their inference checks which side is
// complex); every other kernel declines it.
constexpr std::array<DType, 2> kCpuSpectralDTypes = {DType::kFloat32, DType::kComplex64};

bool returns_tensor(const ir::OpSchema& schema) {
  return std::any_of(schema.returns().begin(), schema.returns().end(),
                     [](const ir::ArgSchema& r) { return r.base == ir::BaseType::kTensor; });
}

// The random ops the reference backend runs with its own per-process generator
// (kernels/cpu/random.cc). Their results are random by design, and the reference backend is
// where a program that draws them runs whole; the CUDA backend keeps declining them through
// check_deterministic. Their overloads with a Generator argument stay declined: kiln cannot draw
// from a torch.Generator.
constexpr std::array<ir::OpKey, 4> kCpuRandomOps = {
    ir::OpKey::aten_rand_default, ir::OpKey::aten_randn_default, ir::OpKey::aten_randperm_default,
    ir::OpKey::aten_native_dropout_default};

Verdict check_deterministic_on_cpu(const ir::Node& node) {
  if (std::find(kCpuRandomOps.begin(), kCpuRandomOps.end(), node.op) != kCpuRandomOps.end()) {
    return Verdict::accept();
  }
  return check_deterministic(node);
}

// The reference backend's executor runs node by node, inferring each node's output from its
// inputs' values: nonzero's row count, data, is counted there (ir/infer/indexing.cc), so its
// unbacked size is the CPU backend's to run. The other data-dependent ops stay declined.
Verdict check_static_output_shape_on_cpu(const ir::Node& node) {
  if (node.op == ir::OpKey::aten_nonzero_default) return Verdict::accept();
  return check_static_output_shape(node);
}

Verdict validate_on_cpu(const Backend& backend, const ir::Node& node) {
  if (!backend.supports(node)) {
    return Verdict::reject(ir::shape_inference_table().find(node.op)
                               ? str_cat("no ", backend.name(), " kernel")
                               : std::string("no shape inference"));
  }
  if (node.op == ir::OpKey::aten__embedding_bag_default && ir::embedding_bag_cuda_form(node)) {
    return Verdict::reject("index outputs recorded in eager CUDA's form (a program exported on "
                           "CUDA); the CPU kernel computes eager's CPU form");
  }
  for (auto check : {check_deterministic_on_cpu, check_static_output_shape_on_cpu,
                     check_inference_mode}) {
    Verdict verdict = check(node);
    if (!verdict.accepted()) return verdict;
  }
  if (ir::takes_complex(node.op)) return check_value_types(node, kCpuSpectralDTypes);
  return check_value_types(node, kCpuDTypes);
}

}  // namespace

Status register_cpu_implementations(OpRegistry& registry, const Backend& backend) {
  KILN_RETURN_IF_ERROR(ir::shape_inference_status());
  const ir::OpFunctionTable& inference = ir::shape_inference_table();
  // The CPU backend's answer depends only on the op and on whether the node makes tensors, so a
  // bare node with one tensor output asks it whether it has a kernel, without a second list of
  // its kernel families here. Ops without tensor results (symbolic arithmetic, assertions) need
  // only shape inference, which computes them.
  ir::Value tensor_output;
  tensor_output.kind = ir::ValueKind::kTensor;
  for (const ir::OpSchema& schema : ir::all_op_schemas()) {
    if (schema.key == ir::OpKey::kInvalid || !inference.find(schema.key)) continue;
    ir::Node probe;
    probe.op = schema.key;
    probe.outputs = {&tensor_output};
    if (!backend.supports(probe) && returns_tensor(schema)) continue;
    KILN_RETURN_IF_ERROR(registry.add(OpImplementation{
        .op = schema.key,
        .backend = std::string(backend.name()),
        .priority = Priority::kStandard,
        .supports_dynamic_shapes = true,
        .validator = [&backend](const ir::Node& node) { return validate_on_cpu(backend, node); },
    }));
  }
  return ok_status();
}

namespace {

struct CpuRegistry {
  OpRegistry registry;
  Status status;
  CpuRegistry() { status = register_cpu_implementations(registry, cpu::cpu_backend()); }
};

const CpuRegistry& cpu_instance() {
  static const CpuRegistry instance;
  return instance;
}

struct DefaultRegistry {
  OpRegistry registry;
  Status status;
  DefaultRegistry() {
    status = register_cpu_implementations(registry, cpu::cpu_backend());
    if (status.ok()) status = register_cuda_implementations(registry);
  }
};

const DefaultRegistry& default_instance() {
  static const DefaultRegistry instance;
  return instance;
}

}  // namespace

const OpRegistry& cpu_registry() {
  return cpu_instance().registry;
}
const Status& cpu_registry_status() {
  return cpu_instance().status;
}
const OpRegistry& default_registry() {
  return default_instance().registry;
}
const Status& default_registry_status() {
  return default_instance().status;
}

#ifndef KILN_WITH_CUDA
Status register_cuda_implementations(OpRegistry&) {
  return ok_status();
}
#endif

}  // namespace kiln::convert
