// GEMM steps (mm, addmm, bmm, linear, matmul) on cuBLASLt. Operand layouts are read from the
// bound tensors' strides: row-major or transposed matrices, batches with one stride; anything
// else is an error naming the step (the planner keeps GEMM operands in those layouts).
#include <algorithm>
#include <optional>

#include "cuda/cuda_check.h"
#include "cuda/steps.h"
#include "kernels/cpu/shape_op_util.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

struct MatrixLayout {
  bool trans = false;
  int64_t ld = 0;
};

// A [rows, cols] matrix with the given row and column strides, as cuBLASLt can read it.
std::optional<MatrixLayout> matrix_layout(int64_t rows, int64_t cols, int64_t row_stride,
                                          int64_t col_stride) {
  if ((col_stride == 1 || cols == 1) && row_stride >= std::max<int64_t>(cols, 1)) {
    return MatrixLayout{false, row_stride};
  }
  if (rows == 1 && (col_stride == 1 || cols == 1)) return MatrixLayout{false, cols};
  if ((row_stride == 1 || rows == 1) && col_stride >= std::max<int64_t>(rows, 1)) {
    return MatrixLayout{true, col_stride};
  }
  if (cols == 1 && row_stride == 1) return MatrixLayout{true, rows};
  return std::nullopt;
}

// t seen as [batch, rows, cols] with one batch stride: merges its leading dims when their
// strides allow.
struct BatchedMatrix {
  int64_t batch = 1, rows = 0, cols = 0;
  int64_t batch_stride = 0;
  MatrixLayout layout;
};
std::optional<BatchedMatrix> batched_matrix(const Tensor& t) {
  if (t.dim() < 2) return std::nullopt;
  BatchedMatrix m;
  const int64_t r = t.dim();
  m.rows = t.size(r - 2);
  m.cols = t.size(r - 1);
  auto layout = matrix_layout(m.rows, m.cols, t.strides()[r - 2], t.strides()[r - 1]);
  if (!layout) return std::nullopt;
  m.layout = *layout;
  // Leading dims: merge into one batch dim with a single stride.
  int64_t stride = 0;
  bool first = true;
  for (int64_t d = r - 3; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (first) {
      stride = t.strides()[d];
      m.batch = t.size(d);
      first = false;
    } else if (t.strides()[d] == stride * m.batch) {
      m.batch *= t.size(d);
    } else {
      return std::nullopt;
    }
  }
  m.batch_stride = first ? 0 : stride;
  return m;
}

// x [..., k] as [M, k] rows when its leading dims merge.
std::optional<Tensor> as_rows(const Tensor& x) {
  if (x.dim() == 2) return x;
  const int64_t k = x.size(x.dim() - 1);
  const int64_t m = k == 0 ? 0 : x.numel() / k;
  auto strides = cpu::view_strides(x.sizes(), x.strides(), Shape{m, k});
  if (!strides) return std::nullopt;
  return x.view_as(Shape{m, k}, *strides, x.offset());
}

}  // namespace

Tensor permuted(const Tensor& t, const std::vector<int64_t>& order) {
  Shape sizes, strides;
  for (int64_t d : order) {
    sizes.push_back(t.size(d));
    strides.push_back(t.strides()[d]);
  }
  return t.view_as(sizes, strides, t.offset());
}

std::optional<std::vector<int64_t>> leading_dims_in_memory_order(const Tensor& x) {
  if (x.dim() <= 2 || as_rows(x)) return std::nullopt;
  std::vector<int64_t> order(x.dim());
  for (int64_t d = 0; d < x.dim(); ++d) order[d] = d;
  std::stable_sort(order.begin(), order.end() - 1, [&](int64_t a, int64_t b) {
    return x.strides()[a] > x.strides()[b];
  });
  if (!as_rows(permuted(x, order))) return std::nullopt;
  return order;
}

namespace {

// x [..., k] and d [..., n] as rows: as they stand, or both walked in x's memory order (a
// permuted x, d stored in the same order by the planner). False when neither folds.
bool fold_into_rows(Tensor& x, Tensor& d) {
  if (x.dim() != d.dim()) return false;
  if (as_rows(x) && as_rows(d)) return true;
  auto order = leading_dims_in_memory_order(x);
  if (!order) return false;
  const Tensor px = permuted(x, *order), pd = permuted(d, *order);
  if (!as_rows(px) || !as_rows(pd)) return false;
  x = px;
  d = pd;
  return true;
}

// `t` expanded to `d`'s sizes by PyTorch's broadcasting (right-aligned, size-1 dims stride 0),
// or nullopt when it does not broadcast.
std::optional<Tensor> broadcast_to_matrix(const Tensor& t, const Tensor& d) {
  if (t.dim() > d.dim()) return std::nullopt;
  const int64_t lead = d.dim() - t.dim();
  Shape strides(d.dim(), 0);
  for (int64_t i = 0; i < t.dim(); ++i) {
    const int64_t size = t.size(i), want = d.size(lead + i);
    if (size == want && size != 1) {
      strides[lead + i] = t.strides()[i];
    } else if (size != 1) {
      return std::nullopt;
    }
  }
  return t.view_as(d.sizes(), strides, t.offset());
}

// A vector operand as the matrix cuBLASLt multiplies: a row [1, n] (first operand) or a column
// [n, 1] (second), keeping its stride.
Tensor vector_as_row(const Tensor& v) {
  const int64_t n = v.size(0), s = v.strides()[0];
  return v.view_as(Shape{1, n}, Shape{std::max<int64_t>(n * s, 1), s}, v.offset());
}
Tensor vector_as_column(const Tensor& v) {
  const int64_t n = v.size(0), s = v.strides()[0];
  return v.view_as(Shape{n, 1}, Shape{s, std::max<int64_t>(n * s, 1)}, v.offset());
}
// The product D of a vector form as a matrix: the dim a vector operand lost comes back as 1.
Tensor product_as_matrix(const Tensor& d, bool row_vector, bool column_vector) {
  Shape sizes = d.sizes(), strides = d.strides();
  if (row_vector) {  // [..., n] -> [..., 1, n]
    const int64_t at = static_cast<int64_t>(sizes.size()) - (column_vector ? 0 : 1);
    sizes.insert(sizes.begin() + at, 1);
    strides.insert(strides.begin() + at,
                   std::max<int64_t>(at < d.dim() ? d.strides()[at] * d.size(at) : 1, 1));
  }
  if (column_vector) {  // [..., m] -> [..., m, 1]
    sizes.push_back(1);
    strides.push_back(1);
  }
  return d.view_as(sizes, strides, d.offset());
}

std::string layout_error(const std::string& step, const char* operand, const Tensor& t) {
  return str_cat("GEMM step '", step, "': operand ", operand, " ", t.description(),
                 " has strides ", shape_to_string(t.strides()),
                 " that cuBLASLt cannot read (a kiln planning bug)");
}

}  // namespace

std::optional<GemmEpilogue> gemm_epilogue_for(const ir::Node& node) {
  if (node.op == OpKey::aten_relu_default) return GemmEpilogue::kRelu;
  if (node.op == OpKey::aten_gelu_default && node.args.size() > 1) {
    const std::string* approx = std::get_if<std::string>(&node.args[1]);
    if (approx && *approx == "tanh") return GemmEpilogue::kGeluTanh;
  }
  return std::nullopt;
}

Result<std::unique_ptr<Step>> make_gemm_step(const ir::Node& node, const ir::Node* activation,
                                             const ir::Node* residual_add, const Slots& slots,
                                             const PlanOptions& options, ModuleSource& module) {
  const OpKey op = node.op;
  auto value_arg = [&](size_t i) -> const ir::Value* {
    if (i >= node.args.size()) return nullptr;
    const ir::Value* const* v = std::get_if<ir::Value*>(&node.args[i]);
    return v ? *v : nullptr;
  };
  const ir::Value *a = nullptr, *b = nullptr, *bias = nullptr;
  double alpha = 1.0, beta = 1.0;
  bool b_is_linear_weight = false;
  if (op == OpKey::aten_mm_default || op == OpKey::aten_bmm_default ||
      op == OpKey::aten_matmul_default) {
    a = value_arg(0);
    b = value_arg(1);
  } else if (op == OpKey::aten_addmm_default) {
    bias = value_arg(0);
    a = value_arg(1);
    b = value_arg(2);
    auto num = [&](size_t i, double fallback) {
      if (i >= node.args.size()) return fallback;
      if (const int64_t* v = std::get_if<int64_t>(&node.args[i])) return double(*v);
      if (const double* v = std::get_if<double>(&node.args[i])) return *v;
      return fallback;
    };
    beta = num(3, 1.0);
    alpha = num(4, 1.0);
  } else if (op == OpKey::aten_linear_default) {
    a = value_arg(0);
    b = value_arg(1);
    bias = value_arg(2);
    b_is_linear_weight = true;
  } else {
    return unsupported("not a GEMM op: ", ir::op_name(op));
  }
  if (!a || !b) return unsupported("GEMM node '", node.name, "' without tensor operands");
  const ir::Node* last = activation ? activation : residual_add ? residual_add : &node;
  const ir::Value* out = last->outputs[0];
  const GemmEpilogue epilogue =
      activation ? gemm_epilogue_for(*activation).value_or(GemmEpilogue::kNone)
                 : GemmEpilogue::kNone;
  const std::string name = last->name;
  // D = A·B (+ bias) + residual, the residual as cuBLASLt's C: read in place when it has D's
  // layout, else first copied into D (then C is D).
  const ir::Value* residual = nullptr;
  if (residual_add) {
    for (const ir::Value* v : residual_add->input_values()) {
      if (v != node.outputs[0]) residual = v;
    }
    if (!residual) return internal_error("GEMM step '", name, "': residual add without operand");
  }
  const std::string residual_copy = residual ? copy_kernel(module, out->dtype, out->dtype) : "";
  // An addmm input that is neither a row bias under beta 1 nor a matrix of D's layout (a 0-d,
  // [1, N], [M, 1] or strided input, or a row bias under another beta) is broadcast into D first
  // and read back as C: D = alpha * A·B + beta * D.
  const std::string bias_copy =
      op == OpKey::aten_addmm_default && bias ? copy_kernel(module, bias->dtype, out->dtype) : "";
  const bool allow_tf32 = options.allow_tf32;
  const bool weight_2d_operand = slots[b->id].tensor.dim() == 2;
  // A is copied into scratch only when its rows fold neither as they stand nor in memory order.
  bool may_pack = false;
  if (weight_2d_operand && slots[a->id].tensor.dim() > 2) {
    Tensor ta = slot_tensor(slots, a), td = slot_tensor(slots, out);
    may_pack = !td.has_data() || !fold_into_rows(ta, td);
  }
  const std::string copy = may_pack ? copy_kernel(module, a->dtype, a->dtype) : "";
  // An empty inner dim: cuBLASLt takes none, so the step multiplies a zero column by a zero
  // row (K = 1) from scratch it clears, and the epilogue does the rest (beta * C, bias,
  // activation, residual) as for any K.
  const bool empty_k = !a->shape.empty() && a->shape.back().is_static() && a->shape.back().value == 0;
  const size_t zeros_scratch = may_pack ? 1 : 0;
  auto bind = [=](const Slots& slots, BindContext& ctx, size_t index) -> Result<Launch> {
    Tensor ta = slot_tensor(slots, a), tb = slot_tensor(slots, b), td = slot_tensor(slots, out);
    const Tensor d_full = td;
    const bool row_vector = ta.dim() == 1, column_vector = tb.dim() == 1 && !b_is_linear_weight;
    if (row_vector) ta = vector_as_row(ta);
    if (column_vector) tb = vector_as_column(tb);
    if (row_vector || column_vector) td = product_as_matrix(td, row_vector, column_vector);
    std::optional<std::pair<Tensor, Tensor>> pack;  // A copied into contiguous scratch
    cudaKernel_t copy_fn = nullptr;
    const bool fold = weight_2d_operand && ta.dim() > 2;
    if (fold && !fold_into_rows(ta, td)) {
      if (!may_pack) return internal_error(layout_error(name, "A", ta), "; no scratch planned");
      KILN_ASSIGN_OR_RETURN(Tensor packed,
                            scratch_tensor(ctx, index, 0, ta, contiguous_strides(ta.sizes())));
      KILN_ASSIGN_OR_RETURN(copy_fn, ctx.kernel(copy));
      pack = std::pair(ta, packed);
      ta = packed;
    }
    const Tensor* tbias = bias ? &slot_tensor(slots, bias) : nullptr;
    GemmDesc desc;
    desc.dtype = td.dtype();
    desc.allow_tf32 = allow_tf32;
    desc.epilogue = epilogue;
    desc.alpha = static_cast<float>(alpha);
    // Fold the leading dims of a 2-D-weight product into rows.
    const bool weight_2d = tb.dim() == 2;
    if (weight_2d && ta.dim() > 2) {
      auto rows = as_rows(ta);
      if (!rows) return internal_error(layout_error(name, "A", ta));
      ta = *rows;
      const int64_t n = td.size(td.dim() - 1);
      auto drows = as_rows(td);
      if (!drows) return internal_error(layout_error(name, "D", td));
      td = *drows;
      (void)n;
    }
    auto ma = batched_matrix(ta);
    if (!ma) return internal_error(layout_error(name, "A", ta));
    std::optional<BatchedMatrix> mb;
    if (b_is_linear_weight) {  // weight [n, k]: B = weight^T
      if (tb.dim() != 2) return internal_error("linear weight of rank ", tb.dim());
      auto l = matrix_layout(tb.size(1), tb.size(0), tb.strides()[1], tb.strides()[0]);
      if (!l) return internal_error(layout_error(name, "weight", tb));
      mb = BatchedMatrix{1, tb.size(1), tb.size(0), 0, *l};
    } else {
      mb = batched_matrix(tb);
      if (!mb) return internal_error(layout_error(name, "B", tb));
    }
    auto md = batched_matrix(td);
    if (!md || md->layout.trans) return internal_error(layout_error(name, "D", td));
    desc.m = ma->rows;
    desc.k = ma->cols;
    desc.n = mb->cols;
    if (mb->rows != desc.k) {
      return internal_error("GEMM step '", name, "': inner dims ", desc.k, " and ", mb->rows);
    }
    desc.batch = std::max(ma->batch, mb->batch);
    if ((ma->batch != 1 && ma->batch != desc.batch) || (mb->batch != 1 && mb->batch != desc.batch)) {
      return internal_error("GEMM step '", name, "': batch ", ma->batch, " vs ", mb->batch);
    }
    desc.trans_a = ma->layout.trans;
    desc.lda = ma->layout.ld;
    desc.stride_a = ma->batch == 1 ? 0 : ma->batch_stride;
    desc.trans_b = mb->layout.trans;
    desc.ldb = mb->layout.ld;
    desc.stride_b = mb->batch == 1 ? 0 : mb->batch_stride;
    desc.ldd = md->layout.ld;
    desc.stride_d = md->batch_stride == 0 ? desc.m * desc.ldd : md->batch_stride;
    const void* c_ptr = nullptr;
    const void* bias_ptr = nullptr;
    std::optional<std::pair<Tensor, Tensor>> bias_into_d;
    cudaKernel_t bias_copy_fn = nullptr;
    if (tbias) {
      const bool row_bias = tbias->numel() == desc.n &&
                            (tbias->dim() == 1 || (tbias->dim() == 2 && tbias->size(0) == 1)) &&
                            (tbias->strides().back() == 1 || desc.n == 1);
      if (row_bias && beta == 1.0) {
        desc.has_bias = true;
        bias_ptr = tbias->raw_data();
      } else if (tbias->dim() == 2 && tbias->size(0) == desc.m && tbias->size(1) == desc.n &&
                 tbias->strides()[1] == 1 && tbias->strides()[0] == desc.ldd) {
        desc.has_c = true;
        desc.beta = static_cast<float>(beta);
        desc.ldc = desc.ldd;
        desc.stride_c = desc.stride_d;
        c_ptr = tbias->raw_data();
      } else {
        auto broadcast = broadcast_to_matrix(*tbias, d_full);
        if (!broadcast || bias_copy.empty()) {
          return internal_error("GEMM step '", name, "': addmm input ", tbias->description(),
                                " does not broadcast to the output ", d_full.description());
        }
        KILN_ASSIGN_OR_RETURN(bias_copy_fn, ctx.kernel(bias_copy));
        bias_into_d = std::pair(*broadcast, d_full);
        desc.has_c = true;
        desc.beta = static_cast<float>(beta);
        desc.ldc = desc.ldd;
        desc.stride_c = desc.stride_d;
        c_ptr = td.raw_data();
      }
    }
    std::optional<std::pair<Tensor, Tensor>> residual_into_d = bias_into_d;
    cudaKernel_t residual_copy_fn = bias_copy_fn;
    if (residual) {
      if (desc.has_c) {
        return internal_error("GEMM step '", name, "': a residual and an addmm input read as C (",
                              tbias ? tbias->description() : std::string(), ")");
      }
      const Tensor& tr = slot_tensor(slots, residual);
      desc.has_c = true;
      desc.beta = 1.0f;
      desc.ldc = desc.ldd;
      desc.stride_c = desc.stride_d;
      if (tr.sizes() == d_full.sizes() && tr.strides() == d_full.strides()) {
        c_ptr = tr.raw_data();
      } else {
        KILN_ASSIGN_OR_RETURN(residual_copy_fn, ctx.kernel(residual_copy));
        residual_into_d = std::pair(tr, d_full);
        c_ptr = td.raw_data();
      }
    }
    if (desc.m == 0 || desc.n == 0) return Launch([](cudaStream_t) { return ok_status(); });
    std::optional<Tensor> zeros;  // K = 0: a zero [m, 1] column, then a zero [1, n] row
    if (desc.k == 0) {
      if (!empty_k) {
        // A symbolic inner dim that is 0 at run time: no scratch was planned for the zeros.
        return unsupported("GEMM step '", name, "' with an inner dim of 0 at run time");
      }
      const Tensor like = td.view_as(Shape{desc.m + desc.n}, Shape{1}, td.offset());
      KILN_ASSIGN_OR_RETURN(zeros, scratch_tensor(ctx, index, zeros_scratch, like, Shape{1}));
      desc.k = 1;
      desc.trans_a = desc.trans_b = false;
      desc.lda = 1;
      desc.ldb = desc.n;
      desc.stride_a = desc.stride_b = 0;
    }
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<const GemmPlan> plan, ctx.gemm_plan(desc),
                          "GEMM step '", name, "'");
    GemmArgs args;
    args.a = zeros ? zeros->raw_data() : ta.raw_data();
    args.b = zeros ? static_cast<const char*>(zeros->raw_data()) +
                         desc.m * dtype_size(td.dtype())
                   : tb.raw_data();
    args.c = c_ptr;
    args.bias = bias_ptr;
    args.d = td.raw_data();
    args.workspace = ctx.workspace();
    args.workspace_bytes = ctx.workspace_bytes();
    return Launch([plan, args, pack, copy_fn, residual_into_d, residual_copy_fn,
                   zeros](cudaStream_t stream) -> Status {
      if (zeros) {
        KILN_CUDA_CHECK(cudaMemsetAsync(zeros->raw_data(), 0, zeros->nbytes(), stream));
      }
      if (pack) {
        KILN_RETURN_IF_ERROR(launch_copy(copy_fn, pack->first, pack->second, stream));
      }
      if (residual_into_d) {
        KILN_RETURN_IF_ERROR(launch_copy(residual_copy_fn, residual_into_d->first,
                                         residual_into_d->second, stream));
      }
      KILN_ASSIGN_OR_RETURN(cublasLtHandle_t handle, cublaslt_handle());
      return plan->run(handle, args, stream);
    });
  };
  std::string what = str_cat("gemm[", ir::op_name(op));
  if (activation) what += str_cat(" + ", ir::op_name(activation->op));
  if (residual) what += str_cat(" + residual ", residual->name);
  auto step = std::make_unique<FunctionStep>("gemm", str_cat(what, "] -> ", out->name), bind);
  step->reads = {a->id, b->id};
  if (bias) step->reads.push_back(bias->id);
  if (residual) step->reads.push_back(residual->id);
  step->writes = {out->id};
  step->name = name;
  if (may_pack) step->scratch_bytes = {slots[a->id].tensor.nbytes()};
  if (empty_k) {
    // m + n elements at the planning shapes (the largest): D's rows plus its columns.
    const Tensor& d = slots[out->id].tensor;
    const int64_t n = d.dim() == 0 ? 1 : d.size(d.dim() - 1);
    const int64_t m = n == 0 ? 0 : d.numel() / n;
    step->scratch_bytes.push_back(static_cast<size_t>(m + n) * dtype_size(d.dtype()));
  }
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace kiln::cuda
