// Steps that run one node through kiln's kernel library (kernel_library.h).
#include <cmath>
#include <limits>
#include <optional>

#include "cuda/kernel_library_conv_direct.h"
#include "cuda/steps.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

std::optional<std::vector<int64_t>> int_list(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const auto* list = std::get_if<std::vector<ir::SymInt>>(&node.args[i])) {
    std::vector<int64_t> out;
    for (const ir::SymInt& s : *list) {
      if (s.value) return std::nullopt;
      out.push_back(s.constant);
    }
    return out;
  }
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return std::vector<int64_t>{*v};
  return std::nullopt;
}
std::optional<int64_t> int_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return *v;
  return std::nullopt;
}
bool bool_arg(const ir::Node& node, size_t i, bool fallback) {
  if (i >= node.args.size()) return fallback;
  if (const bool* v = std::get_if<bool>(&node.args[i])) return *v;
  return fallback;
}
std::optional<double> number_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return std::nullopt;
  if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return double(*v);
  if (const double* v = std::get_if<double>(&node.args[i])) return *v;
  if (const bool* v = std::get_if<bool>(&node.args[i])) return *v ? 1.0 : 0.0;
  return std::nullopt;
}
int64_t wrap(int64_t dim, int64_t rank) { return dim < 0 ? dim + rank : dim; }

Result<std::unique_ptr<Step>> reduction(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  ReduceOp op;
  std::optional<std::vector<int64_t>> dims;
  bool keepdim = false;
  switch (node.op) {
    case OpKey::aten_sum_dim_IntList: op = ReduceOp::kSum; break;
    case OpKey::aten_sum_default: op = ReduceOp::kSum; break;
    case OpKey::aten_mean_dim: op = ReduceOp::kMean; break;
    case OpKey::aten_mean_default: op = ReduceOp::kMean; break;
    case OpKey::aten_amax_default: op = ReduceOp::kMax; break;
    case OpKey::aten_amin_default: op = ReduceOp::kMin; break;
    case OpKey::aten_prod_dim_int: op = ReduceOp::kProd; break;
    case OpKey::aten_prod_default: op = ReduceOp::kProd; break;
    case OpKey::aten_any_dim: op = ReduceOp::kAny; break;
    case OpKey::aten_any_dims: op = ReduceOp::kAny; break;
    case OpKey::aten_any_default: op = ReduceOp::kAny; break;
    default: return unsupported("not a reduction: ", ir::op_name(node.op));
  }
  const bool whole = node.op == OpKey::aten_sum_default || node.op == OpKey::aten_mean_default ||
                     node.op == OpKey::aten_any_default || node.op == OpKey::aten_prod_default;
  if (!whole) {
    dims = int_list(node, 1);
    keepdim = bool_arg(node, 2, false);
  }
  const int64_t rank = static_cast<int64_t>(in->shape.size());
  // An empty list reduces every dim, except for any.dims, where it reduces none (any.dims(x, [])
  // is x != 0); any.dims's None reduces all.
  const bool empty_is_none = node.op == OpKey::aten_any_dims;
  std::vector<bool> reduced(rank, dims ? dims->empty() && !empty_is_none : true);
  // A 0-d input has no dims to mark: PyTorch accepts dim 0 or -1 there and returns the element
  // itself (any: != 0), which the kernel does with a one-element reduction.
  if (dims && rank > 0) {
    for (int64_t d : *dims) {
      const int64_t w = wrap(d, rank);
      if (w < 0 || w >= rank) {
        return invalid_argument("reduction '", node.name, "': dim ", d, " out of range for rank ",
                                rank);
      }
      reduced[w] = true;
    }
  }
  const std::string kernel = reduce_kernel(module, op, in->dtype, out->dtype);
  (void)keepdim;
  return make_step(node, "reduce", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor& x = slot_tensor(slots, in);
    const Tensor& y = slot_tensor(slots, out);
    Shape keep = x.sizes();
    for (int64_t d = 0; d < rank; ++d) {
      if (reduced[d]) keep[d] = 1;
    }
    const Tensor y_keep = y.view_as(keep, contiguous_strides(keep), y.offset());
    return kernel_launch(ctx, kernel, [x, y_keep](cudaKernel_t fn, cudaStream_t s) {
      return launch_reduce(fn, x, y_keep, s);
    });
  });
}

Result<std::unique_ptr<Step>> softmax(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  const bool log = node.op == OpKey::aten__log_softmax_default ||
                   node.op == OpKey::aten_log_softmax_int;
  auto dim = int_arg(node, 1);
  if (!in || !dim) return unsupported("softmax '", node.name, "': bad arguments");
  const int64_t d = wrap(*dim, static_cast<int64_t>(in->shape.size()));
  const std::string kernel = softmax_kernel(module, in->dtype, out->dtype, log);
  return make_step(node, "softmax", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor& x = slot_tensor(slots, in);
    const Tensor& y = slot_tensor(slots, out);
    return kernel_launch(ctx, kernel, [x, y, d](cudaKernel_t fn, cudaStream_t s) {
      return launch_softmax(fn, x, y, d, s);
    });
  });
}

Result<std::unique_ptr<Step>> norm(const ir::Node& node, const Slots& slots,
                                  ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  auto shape = int_list(node, 1);
  const ir::Value* weight = value_arg(node, 2);
  const bool rms = node.op == OpKey::aten_rms_norm_default;
  const ir::Value* bias = rms ? nullptr : value_arg(node, 3);
  double eps = 1e-5;
  if (rms) {
    auto e = number_arg(node, 3);
    eps = e ? *e
            : (in->dtype == DType::kFloat16    ? 0.0009765625
               : in->dtype == DType::kBFloat16 ? 0.0078125
                                               : double(std::numeric_limits<float>::epsilon()));
  } else if (auto e = number_arg(node, 4)) {
    eps = *e;
  }
  if (!in || !shape) return unsupported("norm '", node.name, "': bad arguments");
  int64_t normalized = 1;
  for (int64_t s : *shape) normalized *= s;
  // native_layer_norm's mean and rstd, where the planner gave them a buffer (a reader or a
  // program output): the kernel writes them beside the output.
  const ir::Value* mean = nullptr;
  const ir::Value* rstd = nullptr;
  if (node.op == OpKey::aten_native_layer_norm_default && node.outputs.size() == 3) {
    auto stored = [&](const ir::Value* v) {
      return v && v->kind == ir::ValueKind::kTensor && slot_tensor(slots, v).has_data() ? v
                                                                                        : nullptr;
    };
    mean = stored(node.outputs[1]);
    rstd = stored(node.outputs[2]);
  }
  if (mean || rstd) {
    const DType stats = (mean ? mean : rstd)->dtype;
    if ((mean && rstd && mean->dtype != rstd->dtype) ||
        (stats != DType::kFloat32 && stats != in->dtype)) {
      return unsupported("native_layer_norm '", node.name, "': statistics in ",
                         dtype_name(stats), " for a ", dtype_name(in->dtype), " input");
    }
    const std::string kernel =
        layer_norm_stats_kernel(module, in->dtype, stats, weight != nullptr, bias != nullptr);
    auto step = make_step(node, "norm", {in, weight, bias},
                          [=](const Slots& slots, BindContext& ctx, size_t) {
      const Tensor x = slot_tensor(slots, in);
      const Tensor y = slot_tensor(slots, out);
      const Tensor w = weight ? slot_tensor(slots, weight) : Tensor();
      const Tensor b = bias ? slot_tensor(slots, bias) : Tensor();
      const Tensor m = mean ? slot_tensor(slots, mean) : Tensor();
      const Tensor r = rstd ? slot_tensor(slots, rstd) : Tensor();
      return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
        return launch_layer_norm_stats(fn, x, weight ? &w : nullptr, bias ? &b : nullptr, y,
                                       mean ? &m : nullptr, rstd ? &r : nullptr, normalized, eps,
                                       s);
      });
    });
    for (const ir::Value* v : {mean, rstd}) {
      if (v) step->writes.push_back(v->id);
    }
    return step;
  }
  const std::string kernel =
      layer_norm_kernel(module, in->dtype, weight != nullptr, bias != nullptr, rms);
  return make_step(node, "norm", {in, weight, bias},
                   [=](const Slots& slots, BindContext& ctx, size_t) {
                     const Tensor x = slot_tensor(slots, in);
                     const Tensor y = slot_tensor(slots, out);
                     const Tensor w = weight ? slot_tensor(slots, weight) : Tensor();
                     const Tensor b = bias ? slot_tensor(slots, bias) : Tensor();
                     const bool has_w = weight != nullptr, has_b = bias != nullptr;
                     return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                       return launch_layer_norm(fn, x, has_w ? &w : nullptr,
                                                has_b ? &b : nullptr, y, normalized, eps, s);
                     });
                   });
}

// An unbatched [C, H, W] pooling operand as the kernels' [1, C, H, W].
Tensor batched(const Tensor& t) {
  if (t.dim() != 3) return t;
  return t.view_as({1, t.size(0), t.size(1), t.size(2)},
                   {t.size(0) * t.strides()[0], t.strides()[0], t.strides()[1], t.strides()[2]},
                   t.offset());
}

Result<std::unique_ptr<Step>> pooling(const ir::Node& node, const Slots& slots,
                                     ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  if (node.op == OpKey::aten__adaptive_avg_pool2d_default ||
      node.op == OpKey::aten_adaptive_avg_pool2d_default) {
    const std::string kernel = adaptive_avg_pool2d_kernel(module, in->dtype);
    return make_step(node, "pool", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
      const Tensor x = batched(slot_tensor(slots, in)), y = batched(slot_tensor(slots, out));
      return kernel_launch(ctx, kernel, [x, y](cudaKernel_t fn, cudaStream_t s) {
        return launch_adaptive_avg_pool2d(fn, x, y, s);
      });
    });
  }
  const bool is_max = node.op != OpKey::aten_avg_pool2d_default;
  auto kernel_size = int_list(node, 1);
  auto stride = int_list(node, 2);
  auto padding = int_list(node, 3);
  if (!kernel_size || !stride || !padding) return unsupported("pool '", node.name, "': args");
  auto two = [](std::vector<int64_t> v, int64_t fallback0) {
    if (v.empty()) v = {fallback0};
    if (v.size() == 1) v.push_back(v[0]);
    return v;
  };
  Pool2dParams params;
  const auto k = two(*kernel_size, 1);
  const auto st = stride->empty() ? k : two(*stride, 1);
  const auto pad = two(*padding, 0);
  for (int i = 0; i < 2; ++i) {
    params.kernel[i] = k[i];
    params.stride[i] = st[i];
    params.padding[i] = pad[i];
  }
  if (is_max) {
    auto dilation = int_list(node, 4);
    const auto dl = two(dilation.value_or(std::vector<int64_t>{1}), 1);
    params.dilation[0] = dl[0];
    params.dilation[1] = dl[1];
  } else {
    params.count_include_pad = bool_arg(node, 5, true);
    params.divisor_override = int_arg(node, 6).value_or(0);
  }
  // max_pool2d_with_indices' indices, where the planner gave them a buffer (a reader or a program
  // output).
  const ir::Value* indices =
      node.op == OpKey::aten_max_pool2d_with_indices_default && node.outputs.size() == 2 &&
              node.outputs[1] && slot_tensor(slots, node.outputs[1]).has_data()
          ? node.outputs[1]
          : nullptr;
  if (indices) {
    // Values nothing reads have no buffer: the kernel writes them to scratch.
    const bool values_stored = slot_tensor(slots, out).has_data();
    const std::string kernel = max_pool2d_indices_kernel(module, in->dtype);
    auto step = make_step(node, "pool", {in},
                          [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
      const Tensor x = batched(slot_tensor(slots, in));
      const Tensor& values = slot_tensor(slots, out);
      Tensor y = values;
      if (!values_stored) {
        KILN_ASSIGN_OR_RETURN(y, scratch_tensor(ctx, index, 0, values,
                                                contiguous_strides(values.sizes())));
      }
      y = batched(y);
      const Tensor i = batched(slot_tensor(slots, indices));
      return kernel_launch(ctx, kernel, [x, y, i, params](cudaKernel_t fn, cudaStream_t s) {
        return launch_max_pool2d_indices(fn, x, y, i, params, s);
      });
    });
    if (values_stored) {
      step->writes.push_back(indices->id);
    } else {
      step->writes = {indices->id};
      step->scratch_bytes = {slot_tensor(slots, out).nbytes()};
    }
    return step;
  }
  const std::string kernel =
      pool2d_kernel(module, is_max ? PoolKind::kMax : PoolKind::kAvg, in->dtype);
  return make_step(node, "pool", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor x = batched(slot_tensor(slots, in)), y = batched(slot_tensor(slots, out));
    return kernel_launch(ctx, kernel, [x, y, params](cudaKernel_t fn, cudaStream_t s) {
      return launch_pool2d(fn, x, y, params, s);
    });
  });
}

Result<std::unique_ptr<Step>> gather(const ir::Node& node, ModuleSource& module) {
  const ir::Value* out = node.outputs[0];
  if (node.op == OpKey::aten_embedding_default) {
    const ir::Value* weight = value_arg(node, 0);
    const ir::Value* indices = value_arg(node, 1);
    const std::string kernel = embedding_kernel(module, weight->dtype, indices->dtype);
    return make_step(node, "gather", {weight, indices},
                     [=](const Slots& slots, BindContext& ctx, size_t) {
                       const Tensor w = slot_tensor(slots, weight);
                       const Tensor i = slot_tensor(slots, indices);
                       const Tensor y = slot_tensor(slots, out);
                       return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
                         return launch_embedding(fn, w, i, y, s);
                       });
                     });
  }
  const ir::Value* in = value_arg(node, 0);
  auto dim = int_arg(node, 1);
  const ir::Value* index = value_arg(node, 2);
  if (!in || !dim || !index) return unsupported("index_select '", node.name, "': args");
  // PyTorch reads a 0-d input as one element along dim 0 (dim 0 or -1) and returns a 0-d result;
  // the kernel sees both as 1-D.
  const bool scalar = in->shape.empty();
  const int64_t d = scalar ? 0 : wrap(*dim, static_cast<int64_t>(in->shape.size()));
  const std::string kernel = index_select_kernel(module, in->dtype, index->dtype);
  return make_step(node, "gather", {in, index}, [=](const Slots& slots, BindContext& ctx, size_t) {
    Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
    const Tensor i = slot_tensor(slots, index);
    if (scalar) {
      x = x.view_as({1}, {1}, x.offset());
      y = y.view_as({i.numel()}, {1}, y.offset());
    }
    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
      return launch_index_select(fn, x, d, i, y, s);
    });
  });
}

// aten.index.Tensor (and _unsafe_index, the same without PyTorch's bounds checks): the index
// list's None entries stay null.
Result<std::unique_ptr<Step>> advanced_index(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  const auto* list =
      node.args.size() > 1 ? std::get_if<std::vector<ir::Value*>>(&node.args[1]) : nullptr;
  if (!in || !list) return unsupported("index '", node.name, "': args");
  const std::vector<const ir::Value*> indices(list->begin(), list->end());
  std::vector<const ir::Value*> reads = {in};
  for (const ir::Value* v : indices) {
    if (v) reads.push_back(v);
  }
  const std::string kernel = index_tensor_kernel(module, in->dtype);
  return make_step(node, "gather", reads, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
    std::vector<std::optional<Tensor>> index_tensors;
    for (const ir::Value* v : indices) {
      index_tensors.push_back(v ? std::optional<Tensor>(slot_tensor(slots, v)) : std::nullopt);
    }
    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
      std::vector<const Tensor*> entries;
      for (const std::optional<Tensor>& t : index_tensors) entries.push_back(t ? &*t : nullptr);
      return launch_index_tensor(fn, x, entries, y, s);
    });
  });
}

// cumsum(self, dim, dtype=None): the output value carries the dtype (int64 for integer inputs).
Result<std::unique_ptr<Step>> scan(const ir::Node& node, ModuleSource& module) {
  const ir::Value* in = value_arg(node, 0);
  const ir::Value* out = node.outputs[0];
  auto dim = int_arg(node, 1);
  if (!in || !dim) return unsupported("cumsum '", node.name, "': args");
  const int64_t rank = static_cast<int64_t>(in->shape.size());
  const int64_t d = rank == 0 ? 0 : wrap(*dim, rank);
  const std::string kernel = cumsum_kernel(module, in->dtype, out->dtype);
  return make_step(node, "scan", {in}, [=](const Slots& slots, BindContext& ctx, size_t) {
    const Tensor x = slot_tensor(slots, in), y = slot_tensor(slots, out);
    return kernel_launch(ctx, kernel, [x, y, d](cudaKernel_t fn, cudaStream_t s) {
      return launch_cumsum(fn, x, y, d, s);
    });
  });
}

Result<std::unique_ptr<Step>> concatenate(const ir::Node& node, ModuleSource& module) {
  const auto* list = std::get_if<std::vector<ir::Value*>>(&node.args[0]);
  auto dim = int_arg(node, 1);
  const ir::Value* out = node.outputs[0];
  if (!list || !dim) return unsupported("cat '", node.name, "': args");
  std::vector<const ir::Value*> parts(list->begin(), list->end());
  std::vector<std::string> kernels;
  for (const ir::Value* p : parts) kernels.push_back(copy_kernel(module, p->dtype, out->dtype));
  const int64_t d = wrap(*dim, static_cast<int64_t>(out->shape.size()));
  return make_step(node, "cat", parts, [=](const Slots& slots, BindContext& ctx, size_t) -> Result<Launch> {
    const Tensor y = slot_tensor(slots, out);
    std::vector<std::pair<cudaKernel_t, std::pair<Tensor, Tensor>>> copies;
    int64_t at = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      const Tensor x = slot_tensor(slots, parts[i]);
      if (x.dim() == 1 && x.size(0) == 0 && y.dim() != 1) continue;  // legacy empty input
      KILN_ASSIGN_OR_RETURN(cudaKernel_t fn, ctx.kernel(kernels[i]));
      const Tensor dst = y.view_as(x.sizes(), y.strides(), y.offset() + at * y.strides()[d]);
      copies.push_back({fn, {x, dst}});
      at += x.size(d);
    }
    return Launch([copies](cudaStream_t s) -> Status {
      for (const auto& [fn, pair] : copies) {
        KILN_RETURN_IF_ERROR(launch_copy(fn, pair.first, pair.second, s));
      }
      return ok_status();
    });
  });
}

Result<std::unique_ptr<Step>> factory(const ir::Node& node, ModuleSource& module) {
  const ir::Value* out = node.outputs[0];
  const OpKey op = node.op;
  if (op == OpKey::aten_arange_start_step || op == OpKey::aten_arange_default ||
      op == OpKey::aten_arange_start) {
    double start = 0, step = 1;
    if (op == OpKey::aten_arange_default) {
      // arange(end): start 0, step 1
    } else {
      auto s = number_arg(node, 0);
      if (!s) return unsupported("arange '", node.name, "': symbolic start");
      start = *s;
      if (op == OpKey::aten_arange_start_step) {
        auto st = number_arg(node, 2);
        if (!st) return unsupported("arange '", node.name, "': symbolic step");
        step = *st;
      }
    }
    const std::string kernel = arange_kernel(module, out->dtype);
    return make_step(node, "factory", {}, [=](const Slots& slots, BindContext& ctx, size_t) {
      const Tensor y = slot_tensor(slots, out);
      return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
        return launch_arange(fn, y, start, step, s);
      });
    });
  }
  double value = 0;
  const ir::Value* bound_value = nullptr;  // a fill value the graph computes from sizes
  switch (op) {
    case OpKey::aten_full_default:
    case OpKey::aten_full_like_default:
    case OpKey::aten_scalar_tensor_default: {
      const size_t at = op == OpKey::aten_scalar_tensor_default ? 0 : 1;
      if (auto v = number_arg(node, at)) {
        value = *v;
      } else if (const ir::Value* const* sym =
                     at < node.args.size() ? std::get_if<ir::Value*>(&node.args[at]) : nullptr;
                 sym && *sym && (*sym)->kind != ir::ValueKind::kTensor) {
        bound_value = *sym;
      } else {
        return unsupported("'", node.name, "': a fill value known only at run time");
      }
      break;
    }
    case OpKey::aten_ones_default:
    case OpKey::aten_ones_like_default: value = 1; break;
    default: value = 0;  // zeros, zeros_like, empty: zeros (deterministic engines)
  }
  const std::string kernel = fill_kernel(module, out->dtype);
  const std::string name = node.name;
  return make_step(node, "factory", {}, [=](const Slots& slots, BindContext& ctx,
                                            size_t) -> Result<Launch> {
    const Tensor y = slot_tensor(slots, out);
    double fill = value;
    if (bound_value) {  // the binding's shape inference computed it
      const ir::RtValue& v = slots[bound_value->id];
      switch (v.kind) {
        case ir::RtValue::Kind::kInt: fill = static_cast<double>(v.i); break;
        case ir::RtValue::Kind::kFloat: fill = v.f; break;
        case ir::RtValue::Kind::kBool: fill = v.b ? 1.0 : 0.0; break;
        default:
          return internal_error("'", name, "': fill value '", bound_value->name,
                                "' has no value at binding");
      }
    }
    return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
      return launch_fill(fn, y, fill, s);
    });
  });
}

}  // namespace

const ir::Value* value_arg(const ir::Node& node, size_t i) {
  if (i >= node.args.size()) return nullptr;
  const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
  return v && *v && (*v)->kind == ir::ValueKind::kTensor ? *v : nullptr;
}

std::unique_ptr<Step> make_step(const ir::Node& node, std::string kind,
                                std::vector<const ir::Value*> reads, BindFn bind) {
  const ir::Value* out = node.outputs[0];
  auto step = std::make_unique<FunctionStep>(
      kind, str_cat(kind, "[", ir::op_name(node.op), "] -> ", out->name), std::move(bind));
  for (const ir::Value* v : reads) {
    if (v) step->reads.push_back(v->id);
  }
  step->writes = {out->id};
  step->name = node.name;
  return step;
}

const LibraryFamily* library_family(ir::OpKey op) {
  static const LibraryFamily* const families[] = {
      &index_reduction_family(), &group_norm_family(), &movement_family(),  &scatter_family(),
      &sort_family(),            &resample_family(),   &pooling_extra_family(),
      &grid_sample_family(),     &embedding_bag_family(), &random_family(),
      &conv_direct_family()};
  for (const LibraryFamily* family : families) {
    if (family->takes(op)) return family;
  }
  return nullptr;
}

bool is_library_op(ir::OpKey op) {
  if (library_family(op)) return true;
  switch (op) {
    case OpKey::aten_sum_dim_IntList:
    case OpKey::aten_sum_default:
    case OpKey::aten_mean_dim:
    case OpKey::aten_mean_default:
    case OpKey::aten_amax_default:
    case OpKey::aten_amin_default:
    case OpKey::aten_prod_dim_int:
    case OpKey::aten_prod_default:
    case OpKey::aten_any_dim:
    case OpKey::aten_any_dims:
    case OpKey::aten_any_default:
    case OpKey::aten__softmax_default:
    case OpKey::aten__log_softmax_default:
    case OpKey::aten_softmax_int:
    case OpKey::aten_log_softmax_int:
    case OpKey::aten_layer_norm_default:
    case OpKey::aten_native_layer_norm_default:
    case OpKey::aten_rms_norm_default:
    case OpKey::aten_max_pool2d_default:
    case OpKey::aten_max_pool2d_with_indices_default:
    case OpKey::aten_avg_pool2d_default:
    case OpKey::aten_adaptive_avg_pool2d_default:
    case OpKey::aten__adaptive_avg_pool2d_default:
    case OpKey::aten_embedding_default:
    case OpKey::aten_index_select_default:
    case OpKey::aten_index_Tensor:
    case OpKey::aten__unsafe_index_Tensor:
    case OpKey::aten_cumsum_default:
    case OpKey::aten_cat_default:
    case OpKey::aten_arange_start_step:
    case OpKey::aten_arange_default:
    case OpKey::aten_arange_start:
    case OpKey::aten_full_default:
    case OpKey::aten_full_like_default:
    case OpKey::aten_scalar_tensor_default:
    case OpKey::aten_zeros_default:
    case OpKey::aten_zeros_like_default:
    case OpKey::aten_ones_default:
    case OpKey::aten_ones_like_default:
    case OpKey::aten_empty_memory_format:
    case OpKey::aten_empty_like_default:
      return true;
    default:
      return false;
  }
}

Result<std::unique_ptr<Step>> make_library_step(const ir::Node& node, const Slots& slots,
                                                ModuleSource& module) {
  if (const LibraryFamily* family = library_family(node.op)) {
    return family->make(node, slots, module);
  }
  if (needs_direct_conv(node)) return make_direct_conv_step(node, slots, module);
  switch (node.op) {
    case OpKey::aten__softmax_default:
    case OpKey::aten__log_softmax_default:
    case OpKey::aten_softmax_int:
    case OpKey::aten_log_softmax_int:
      return softmax(node, module);
    case OpKey::aten_layer_norm_default:
    case OpKey::aten_native_layer_norm_default:
    case OpKey::aten_rms_norm_default:
      return norm(node, slots, module);
    case OpKey::aten_max_pool2d_default:
    case OpKey::aten_max_pool2d_with_indices_default:
    case OpKey::aten_avg_pool2d_default:
    case OpKey::aten_adaptive_avg_pool2d_default:
    case OpKey::aten__adaptive_avg_pool2d_default:
      return pooling(node, slots, module);
    case OpKey::aten_embedding_default:
    case OpKey::aten_index_select_default:
      return gather(node, module);
    case OpKey::aten_index_Tensor:
    case OpKey::aten__unsafe_index_Tensor:
      return advanced_index(node, module);
    case OpKey::aten_cumsum_default:
      return scan(node, module);
    case OpKey::aten_cat_default:
      return concatenate(node, module);
    default:
      break;
  }
  if (node.op == OpKey::aten_sum_dim_IntList || node.op == OpKey::aten_sum_default ||
      node.op == OpKey::aten_mean_dim || node.op == OpKey::aten_mean_default ||
      node.op == OpKey::aten_amax_default || node.op == OpKey::aten_amin_default ||
      node.op == OpKey::aten_prod_dim_int || node.op == OpKey::aten_prod_default ||
      node.op == OpKey::aten_any_dim || node.op == OpKey::aten_any_dims ||
      node.op == OpKey::aten_any_default) {
    return reduction(node, module);
  }
  if (is_library_op(node.op)) return factory(node, module);
  return unsupported("no CUDA library kernel for ", ir::op_name(node.op));
}

std::unique_ptr<Step> make_reshape_copy_step(const ir::Value& from, const ir::Value& to,
                                             ModuleSource& module) {
  const std::string kernel = copy_kernel(module, from.dtype, to.dtype);
  const ir::Value* src = &from;
  const ir::Value* dst = &to;
  auto step = std::make_unique<FunctionStep>(
      "copy", str_cat("copy[reshape] ", from.name, " -> ", to.name),
      [=](const Slots& slots, BindContext& ctx, size_t) {
        const Tensor x = slot_tensor(slots, src);
        const Tensor y = slot_tensor(slots, dst);
        const Tensor y_as_x = y.view_as(x.sizes(), contiguous_strides(x.sizes()), y.offset());
        return kernel_launch(ctx, kernel, [=](cudaKernel_t fn, cudaStream_t s) {
          return launch_copy(fn, x, y_as_x, s);
        });
      });
  step->reads = {from.id};
  step->writes = {to.id};
  step->name = to.name;
  return step;
}

}  // namespace kiln::cuda
