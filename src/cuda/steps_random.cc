// The random family of library ops (steps.h, LibraryFamily): rand, randn, randperm and
// native_dropout in training, through kernel_library_random.h's Philox kernels. Each step owns
// its generator states (DeviceGenerators, one per GPU, seeded from std::random_device when the
// step first binds there); its launch draws, then advances the state on the same stream, so
// repeated runs and CUDA-graph replays draw new numbers. Values are random, not eager's: the
// conformance harness checks them by distribution (tests/conformance/compare.py).
#include <memory>
#include <optional>
#include <vector>

#include "cuda/kernel_library_random.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using convert::Verdict;
using ir::OpKey;

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
constexpr DType kDropoutTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                   DType::kBool};

// --- reading arguments --------------------------------------------------------------------------


// rand's and randn's sizes, when every one is a constant.
bool constant_sizes(const ir::Node& node) {
  if (node.args.empty()) return false;
  const auto* list = std::get_if<std::vector<ir::SymInt>>(&node.args[0]);
  if (!list) return false;
  for (const ir::SymInt& s : *list) {
    if (s.value) return false;
  }
  return true;
}

// native_dropout(input, p, train): p as the program wrote it (an int counts), or nullopt.
std::optional<double> dropout_p(const ir::Node& node) {
  if (node.args.size() < 2) return std::nullopt;
  if (const double* v = std::get_if<double>(&node.args[1])) return *v;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[1])) return static_cast<double>(*v);
  return std::nullopt;
}
// train: None counts as training (as in PyTorch); nullopt when known only at run time.
std::optional<bool> dropout_train(const ir::Node& node) {
  if (node.args.size() < 3 || std::holds_alternative<ir::NoneArg>(node.args[2])) return true;
  if (const bool* v = std::get_if<bool>(&node.args[2])) return *v;
  return std::nullopt;
}

// The largest n whose randperm the dtype holds exactly: eager's bound (n <= 2^digits for
// floating types, n - 1 representable for integers), within the kernel's block.
int64_t randperm_limit(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return int64_t{1} << 11;
    case DType::kBFloat16: return int64_t{1} << 8;
    case DType::kInt8: return 128;
    case DType::kUInt8: return 256;
    default: return kRandpermMax;
  }
}

// The outputs given a buffer by the planner (read later or returned); null for the others.
const ir::Value* stored_output(const ir::Node& node, const Slots& slots, size_t i) {
  const ir::Value* v = i < node.outputs.size() ? node.outputs[i] : nullptr;
  return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v
                                                                                     : nullptr;
}

// --- verdicts -----------------------------------------------------------------------------------

Verdict within_kernel_rank(const ir::Value* v) {
  if (v && v->shape.size() > static_cast<size_t>(kMaxKernelDims)) {
    return Verdict::reject(str_cat("a tensor of rank ", v->shape.size(), " (the kernels take <= ",
                                   kMaxKernelDims, ")"));
  }
  return Verdict::accept();
}

Verdict sized_verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kFloatTypes); !v.accepted()) return v;
  if (!constant_sizes(node)) {
    return Verdict::reject("sizes known only at run time (the kernels take sizes fixed when "
                           "the engine is built)");
  }
  return within_kernel_rank(node.outputs[0]);
}

Verdict randperm_verdict(const ir::Node& node) {
  const int64_t* n = node.args.empty() ? nullptr : std::get_if<int64_t>(&node.args[0]);
  if (!n) return Verdict::reject("n known only at run time");
  const DType dtype = node.outputs[0]->dtype;
  if (dtype == DType::kBool || dtype == DType::kFloat64) {
    return Verdict::reject(str_cat("randperm in ", dtype_name(dtype)));
  }
  if (*n > kRandpermMax) {
    return Verdict::reject(str_cat("randperm of n > ", kRandpermMax, " (n = ", *n,
                                   "; the kernel sorts at most ", kRandpermMax,
                                   " keys in one block)"));
  }
  if (*n > randperm_limit(dtype)) {
    return Verdict::reject(str_cat("randperm of n = ", *n, " in ", dtype_name(dtype),
                                   " (it holds 0..n-1 exactly only up to n = ",
                                   randperm_limit(dtype), ")"));
  }
  return Verdict::accept();
}

Verdict dropout_verdict(const ir::Node& node) {
  if (Verdict v = convert::check_value_types(node, kDropoutTypes); !v.accepted()) return v;
  const ir::Value* in = value_arg(node, 0);
  if (!in || in->dtype == DType::kBool) return Verdict::reject("expected a floating input");
  const std::optional<double> p = dropout_p(node);
  const std::optional<bool> train = dropout_train(node);
  if (!p) return Verdict::reject("p known only at run time");
  if (!train) return Verdict::reject("train known only at run time");
  // Outside training (or at p = 0) the kernel runs with p = 0: every element kept, scale 1,
  // a mask of ones, as eager's identity.
  if (*train && !(*p >= 0.0 && *p <= 1.0)) {
    return Verdict::reject(str_cat("dropout with p = ", *p, " (expected 0 <= p <= 1)"));
  }
  return within_kernel_rank(in);
}

bool takes(OpKey op) {
  return op == OpKey::aten_rand_default || op == OpKey::aten_randn_default ||
         op == OpKey::aten_randperm_default || op == OpKey::aten_native_dropout_default;
}

Verdict verdict(const ir::Node& node) {
  if (node.outputs.empty() || !node.outputs[0]) return Verdict::reject("no output");
  switch (node.op) {
    case OpKey::aten_rand_default:
    case OpKey::aten_randn_default: return sized_verdict(node);
    case OpKey::aten_randperm_default: return randperm_verdict(node);
    default: return dropout_verdict(node);
  }
}

// --- steps --------------------------------------------------------------------------------------

// A launch given the bound kernels and the state: f(kernel, advance, state, stream).
using RandomLaunch =
    std::function<Status(cudaKernel_t, cudaKernel_t, GeneratorState*, cudaStream_t)>;

// A step that binds `kernel` and the advance kernel to its own generator state on the current
// device (made at the first bind there), then runs what `launch_for(slots)` gives. An empty
// `kernel` (no output is stored) runs nothing. The kernel was made for the planned dtypes of
// `reads` and `writes`; a binding whose tensors have others is refused.
std::unique_ptr<Step> random_step(const ir::Node& node, std::vector<const ir::Value*> reads,
                                  std::vector<const ir::Value*> writes, std::string kernel,
                                  std::string advance,
                                  std::function<RandomLaunch(const Slots&)> launch_for) {
  auto generators = std::make_shared<DeviceGenerators>();
  const ir::Value* named = writes.empty() ? node.outputs[0] : writes[0];
  std::vector<const ir::Value*> typed = reads;
  typed.insert(typed.end(), writes.begin(), writes.end());
  const std::string node_name = node.name;
  auto step = std::make_unique<FunctionStep>(
      "random", str_cat("random[", ir::op_name(node.op), "] -> ", named->name),
      [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
        if (kernel.empty()) return Launch([](cudaStream_t) { return ok_status(); });
        for (const ir::Value* v : typed) {
          const Tensor& t = slot_tensor(slots, v);
          if (t.dtype() != v->dtype) {
            return internal_error("random step '", node_name, "': '", v->name, "' was planned in ",
                                  dtype_name(v->dtype), " but is bound as ", t.description());
          }
        }
        KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernel));
        KILN_ASSIGN_OR_RETURN(cudaKernel_t adv, ctx.kernel(advance));
        KILN_ASSIGN_OR_RETURN(GeneratorState * state, generators->current());
        RandomLaunch launch = launch_for(slots);
        // The launch keeps the states alive as long as a binding may replay it.
        return Launch([=, keep = generators](cudaStream_t stream) {
          return launch(fn, adv, state, stream);
        });
      });
  for (const ir::Value* v : reads) step->reads.push_back(v->id);
  for (const ir::Value* v : writes) step->writes.push_back(v->id);
  step->name = node.name;
  return step;
}

Result<std::unique_ptr<Step>> make(const ir::Node& node, const Slots& slots,
                                   ModuleSource& module) {
  if (Verdict v = verdict(node); !v.accepted()) {
    return unsupported("'", node.name, "' (", ir::op_name(node.op), "): ", v.reason());
  }
  if (node.op == OpKey::aten_native_dropout_default) {
    const ir::Value* in = value_arg(node, 0);
    const ir::Value* out = stored_output(node, slots, 0);
    const ir::Value* mask = stored_output(node, slots, 1);
    const double p = *dropout_train(node) ? *dropout_p(node) : 0.0;
    std::vector<const ir::Value*> writes;
    for (const ir::Value* v : {out, mask}) {
      if (v) writes.push_back(v);
    }
    const bool any = !writes.empty();
    const std::string kernel = any ? dropout_kernel(module, in->dtype) : std::string();
    const std::string advance = any ? generator_advance_kernel(module) : std::string();
    return random_step(node, {in}, writes, kernel, advance, [=](const Slots& slots) {
      const Tensor x = slot_tensor(slots, in);
      const Tensor y = out ? slot_tensor(slots, out) : Tensor();
      const Tensor m = mask ? slot_tensor(slots, mask) : Tensor();
      const bool has_y = out != nullptr, has_m = mask != nullptr;
      return RandomLaunch([=](cudaKernel_t fn, cudaKernel_t adv, GeneratorState* state,
                              cudaStream_t s) {
        return launch_dropout(fn, adv, x, has_y ? &y : nullptr, has_m ? &m : nullptr, p, state,
                              s);
      });
    });
  }
  const ir::Value* out = stored_output(node, slots, 0);
  std::string kernel, advance;
  if (out) {
    const DType dtype = out->dtype;
    kernel = node.op == OpKey::aten_randperm_default ? randperm_kernel(module, dtype)
             : node.op == OpKey::aten_randn_default
                 ? rand_kernel(module, RandomDistribution::kNormal, dtype)
                 : rand_kernel(module, RandomDistribution::kUniform, dtype);
    advance = generator_advance_kernel(module);
  }
  const bool permutation = node.op == OpKey::aten_randperm_default;
  std::vector<const ir::Value*> writes;
  if (out) writes.push_back(out);
  return random_step(node, {}, writes, kernel, advance, [=](const Slots& slots) {
    const Tensor y = slot_tensor(slots, out);
    return RandomLaunch([=](cudaKernel_t fn, cudaKernel_t adv, GeneratorState* state,
                            cudaStream_t s) {
      return permutation ? launch_randperm(fn, adv, y, state, s)
                         : launch_rand(fn, adv, y, state, s);
    });
  });
}

}  // namespace

const LibraryFamily& random_family() {
  static const LibraryFamily family{"random", takes, verdict, make};
  return family;
}

}  // namespace kiln::cuda
