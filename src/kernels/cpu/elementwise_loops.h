// Private to the CPU elementwise kernels: the strided, broadcasting loops that every elementwise op
// runs on, and the drivers that pick element types and bind single values.
//
// An op is a functor on its compute type C = ComputeType<T> (float for 16-bit floats): each element
// is loaded, converted to C, computed and rounded once into the output type. The loops coalesce
// dims, run contiguous rows as plain (vectorizable) loops, and split large tensors across the
// thread pool.
#pragma once

#include <algorithm>
#include <array>
#include <vector>

#include "kernels/cpu/elementwise_common.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu::elementwise {

constexpr size_t kMaxOperands = 4;  // the output and up to three inputs
constexpr int64_t kGrain = 32768;   // elements per parallel chunk
using Offsets = std::array<int64_t, kMaxOperands>;

// A loop over the output's shape, with each operand's strides (0 on broadcast dims). Operand 0 is
// the output. Dims of size 1 are dropped and dims that are contiguous in every operand merged.
struct LoopGeometry {
  Shape sizes;
  std::vector<Shape> strides;
  int64_t numel() const { return shape_numel(sizes); }
};
LoopGeometry make_geometry(const Tensor& out, std::initializer_list<const Tensor*> inputs);

// Calls row(n, offsets, strides) for each run of the innermost dim within the linear (row-major)
// element range [begin, end): `n` elements, each operand starting at offsets[k] with stride
// strides[k].
template <typename Row>
void for_each_row(const LoopGeometry& g, int64_t begin, int64_t end, const Row& row) {
  const size_t num_ops = g.strides.size();
  const size_t rank = g.sizes.size();
  Offsets inner{}, base{};
  if (rank == 0) {
    row(end - begin, base, inner);
    return;
  }
  for (size_t k = 0; k < num_ops; ++k) inner[k] = g.strides[k][rank - 1];
  const int64_t len = g.sizes[rank - 1];
  std::vector<int64_t> index(rank, 0);
  int64_t col = begin % len;
  for (int64_t d = static_cast<int64_t>(rank) - 2, rest = begin / len; d >= 0; --d) {
    index[d] = rest % g.sizes[d];
    rest /= g.sizes[d];
    for (size_t k = 0; k < num_ops; ++k) base[k] += index[d] * g.strides[k][d];
  }
  for (int64_t pos = begin; pos < end;) {
    const int64_t n = std::min(len - col, end - pos);
    Offsets offsets;
    for (size_t k = 0; k < num_ops; ++k) offsets[k] = base[k] + col * inner[k];
    row(n, offsets, inner);
    pos += n;
    col = 0;
    for (int64_t d = static_cast<int64_t>(rank) - 2; d >= 0; --d) {  // next row
      for (size_t k = 0; k < num_ops; ++k) base[k] += g.strides[k][d];
      if (++index[d] < g.sizes[d]) break;
      for (size_t k = 0; k < num_ops; ++k) base[k] -= g.strides[k][d] * g.sizes[d];
      index[d] = 0;
    }
  }
}

// Runs the rows of the whole loop, in parallel chunks when it is large.
template <typename Row>
void run_rows(const LoopGeometry& g, const Row& row) {
  const int64_t numel = g.numel();
  if (numel == 0) return;
  if (numel < 2 * kGrain) {
    for_each_row(g, 0, numel, row);
    return;
  }
  parallel_for(0, numel, kGrain,
               [&](int64_t begin, int64_t end) { for_each_row(g, begin, end, row); });
}

template <typename T>
inline ComputeType<T> load(T v) {
  return static_cast<ComputeType<T>>(v);
}

// out = f(a), elementwise; `a` broadcasts to out's shape.
template <typename Out, typename A, typename F>
void unary_loop(Tensor& out, const Tensor& a, const F& f) {
  Out* po = out.data<Out>();
  const A* pa = a.data<A>();
  run_rows(make_geometry(out, {&a}), [&](int64_t n, const Offsets& off, const Offsets& st) {
    Out* o = po + off[0];
    const A* x = pa + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = element_cast<Out>(f(load(x[i])));
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = element_cast<Out>(f(load(x[i * st[1]])));
    }
  });
}

// out = f(a, b); a row where one input is broadcast (stride 0) binds its value.
template <typename Out, typename A, typename B, typename F>
void binary_loop(Tensor& out, const Tensor& a, const Tensor& b, const F& f) {
  Out* po = out.data<Out>();
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  run_rows(make_geometry(out, {&a, &b}), [&](int64_t n, const Offsets& off, const Offsets& st) {
    Out* o = po + off[0];
    const A* x = pa + off[1];
    const B* y = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = element_cast<Out>(f(load(x[i]), load(y[i])));
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const auto yv = load(*y);
      for (int64_t i = 0; i < n; ++i) o[i] = element_cast<Out>(f(load(x[i]), yv));
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const auto xv = load(*x);
      for (int64_t i = 0; i < n; ++i) o[i] = element_cast<Out>(f(xv, load(y[i])));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        o[i * st[0]] = element_cast<Out>(f(load(x[i * st[1]]), load(y[i * st[2]])));
      }
    }
  });
}

// out = f(a, b, c).
template <typename Out, typename A, typename B, typename Z, typename F>
void ternary_loop(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, const F& f) {
  Out* po = out.data<Out>();
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  const Z* pc = c.data<Z>();
  run_rows(make_geometry(out, {&a, &b, &c}), [&](int64_t n, const Offsets& off, const Offsets& st) {
    Out* o = po + off[0];
    const A* x = pa + off[1];
    const B* y = pb + off[2];
    const Z* z = pc + off[3];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
      for (int64_t i = 0; i < n; ++i)
        o[i] = element_cast<Out>(f(load(x[i]), load(y[i]), load(z[i])));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        o[i * st[0]] =
            element_cast<Out>(f(load(x[i * st[1]]), load(y[i * st[2]]), load(z[i * st[3]])));
      }
    }
  });
}

// The output element type of a functor returning R on an op computed in T: bool for predicates,
// T otherwise.
template <typename T, typename R>
using OutputOf = std::conditional_t<std::is_same_v<R, bool>, bool, T>;

template <typename Out>
Status check_output(const Tensor& out) {
  if (out.dtype() == DTypeOf<Out>::value) return ok_status();
  return internal_error("elementwise kernel computes ", dtype_name(DTypeOf<Out>::value),
                        " but the output is ", out.description());
}

// Runs `fn.template operator()<T>()` for the element type of `dtype` when its category is in
// kClasses; other dtypes were rejected by shape inference, so reaching one is a kiln bug.
template <uint8_t kClasses, typename Fn>
Status dispatch_classes(DType dtype, Fn&& fn) {
  return dispatch_dtype(dtype, [&]<typename T>() -> Status {
    if constexpr ((kClassOf<T> & kClasses) != 0) {
      return fn.template operator()<T>();
    } else {
      return internal_error("elementwise kernel instantiated without dtype ", dtype_name(dtype));
    }
  });
}

// A unary op on argument 0. `make` is a template lambda: make.template operator()<C>() returns the
// functor on compute type C (returning C, or bool for predicates). The op computes in the output
// dtype, or in the input dtype for predicates.
template <uint8_t kClasses, typename Make>
Status run_unary(ir::OpContext& ctx, Make&& make) {
  const Tensor& in = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  const DType dtype = out.dtype() == DType::kBool ? in.dtype() : out.dtype();
  return dispatch_classes<kClasses>(dtype, [&]<typename T>() -> Status {
    using C = ComputeType<T>;
    const auto f = make.template operator()<C>();
    using Out = OutputOf<T, decltype(f(C{}))>;
    KILN_RETURN_IF_ERROR(check_output<Out>(out));
    KILN_ASSIGN_OR_RETURN(Tensor x, cast_to(in, dtype));
    unary_loop<Out, T>(out, x, f);
    return ok_status();
  });
}

struct BinaryOptions {
  size_t a = 0, b = 1;        // argument positions of the operands
  bool common_dtype = false;  // compute in result_type(a, b) rather than the output dtype
  bool exact_scalar = false;  // see single_value()
};

template <typename T, typename F>
Status binary_typed(Tensor& out, const Operand& a, const Operand& b, bool exact, const F& f) {
  using C = ComputeType<T>;
  using Out = OutputOf<T, decltype(f(C{}, C{}))>;
  KILN_RETURN_IF_ERROR(check_output<Out>(out));
  constexpr DType kT = DTypeOf<T>::value;
  if (b.is_single() && !a.is_number && a.tensor.sizes() == out.sizes()) {
    const C bv = single_value<T, C>(b, exact);
    KILN_ASSIGN_OR_RETURN(Tensor x, cast_to(a.tensor, kT));
    unary_loop<Out, T>(out, x, [&f, bv](C v) { return f(v, bv); });
    return ok_status();
  }
  if (a.is_single() && !b.is_number && b.tensor.sizes() == out.sizes()) {
    const C av = single_value<T, C>(a, exact);
    KILN_ASSIGN_OR_RETURN(Tensor y, cast_to(b.tensor, kT));
    unary_loop<Out, T>(out, y, [&f, av](C v) { return f(av, v); });
    return ok_status();
  }
  KILN_ASSIGN_OR_RETURN(Tensor x, operand_tensor(a, kT));
  KILN_ASSIGN_OR_RETURN(Tensor y, operand_tensor(b, kT));
  binary_loop<Out, T, T>(out, x, y, f);
  return ok_status();
}

// A binary op on two operands (tensors or numbers). `make` is as for run_unary, with functors of
// two C arguments.
template <uint8_t kClasses, typename Make>
Status run_binary(ir::OpContext& ctx, const BinaryOptions& options, Make&& make) {
  KILN_ASSIGN_OR_RETURN(Operand a, read_operand(ctx, options.a));
  KILN_ASSIGN_OR_RETURN(Operand b, read_operand(ctx, options.b));
  Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  const DType dtype = options.common_dtype ? result_type_of({&a, &b}) : out.dtype();
  return dispatch_classes<kClasses>(dtype, [&]<typename T>() -> Status {
    return binary_typed<T>(out, a, b, options.exact_scalar,
                           make.template operator()<ComputeType<T>>());
  });
}

}  // namespace kiln::cpu::elementwise
