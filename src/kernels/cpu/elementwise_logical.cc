// Comparisons, logical and bitwise ops, and the predicates isnan/isinf/isfinite. Comparisons and
// logical ops compute in the operands' common dtype (as PyTorch casts both operands to it) and
// write bool.
#include <cmath>
#include <functional>

#include "kernels/cpu/elementwise_loops.h"
#include "kernels/cpu/elementwise_math.h"

namespace kiln::cpu::elementwise {
namespace {

constexpr BinaryOptions kCommon{.common_dtype = true};

// A comparison from <functional> (std::less, ...), applied in the common dtype.
template <typename Cmp>
Status compare_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(
      ctx, kCommon, []<typename C>() { return [](C a, C b) -> bool { return Cmp{}(a, b); }; });
}

template <typename C>
bool truthy(C v) {
  return v != C(0);  // NaN is true
}

Status logical_and_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(ctx, kCommon, []<typename C>() {
    return [](C a, C b) -> bool { return truthy(a) && truthy(b); };
  });
}
Status logical_or_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(ctx, kCommon, []<typename C>() {
    return [](C a, C b) -> bool { return truthy(a) || truthy(b); };
  });
}
Status logical_xor_kernel(ir::OpContext& ctx) {
  return run_binary<kAnyOk>(ctx, kCommon, []<typename C>() {
    return [](C a, C b) -> bool { return truthy(a) != truthy(b); };
  });
}

// A bitwise op from <functional> (std::bit_and, ...) on integers and bools.
template <typename Op>
Status bitwise_kernel(ir::OpContext& ctx) {
  return run_binary<kIntOk | kBoolOk>(ctx, {}, []<typename C>() {
    return [](C a, C b) -> C { return static_cast<C>(Op{}(a, b)); };
  });
}

Status bitwise_not_kernel(ir::OpContext& ctx) {
  return run_unary<kIntOk | kBoolOk>(ctx, []<typename C>() {
    return [](C a) -> C {
      if constexpr (std::is_same_v<C, bool>) {
        return !a;
      } else {
        return static_cast<C>(~a);
      }
    };
  });
}

Status logical_not_kernel(ir::OpContext& ctx) {
  return run_unary<kAnyOk>(ctx,
                           []<typename C>() { return [](C a) -> bool { return !truthy(a); }; });
}

Status isnan_kernel(ir::OpContext& ctx) {
  return run_unary<kAnyOk>(ctx, []<typename C>() { return [](C a) -> bool { return a != a; }; });
}

Status isinf_kernel(ir::OpContext& ctx) {
  return run_unary<kAnyOk>(ctx, []<typename C>() {
    return [](C a) -> bool {
      if constexpr (std::is_floating_point_v<C>) {
        return std::isinf(a);
      } else {
        return false;
      }
    };
  });
}

Status isfinite_kernel(ir::OpContext& ctx) {
  return run_unary<kAnyOk>(ctx, []<typename C>() {
    return [](C a) -> bool {
      if constexpr (std::is_floating_point_v<C>) {
        return std::isfinite(a);
      } else {
        return true;
      }
    };
  });
}

}  // namespace

Status register_logical_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(table,
                     {
                         {OpKey::aten_eq_Tensor, compare_kernel<std::equal_to<>>},
                         {OpKey::aten_eq_Scalar, compare_kernel<std::equal_to<>>},
                         {OpKey::aten_ne_Tensor, compare_kernel<std::not_equal_to<>>},
                         {OpKey::aten_ne_Scalar, compare_kernel<std::not_equal_to<>>},
                         {OpKey::aten_lt_Tensor, compare_kernel<std::less<>>},
                         {OpKey::aten_lt_Scalar, compare_kernel<std::less<>>},
                         {OpKey::aten_le_Tensor, compare_kernel<std::less_equal<>>},
                         {OpKey::aten_le_Scalar, compare_kernel<std::less_equal<>>},
                         {OpKey::aten_gt_Tensor, compare_kernel<std::greater<>>},
                         {OpKey::aten_gt_Scalar, compare_kernel<std::greater<>>},
                         {OpKey::aten_ge_Tensor, compare_kernel<std::greater_equal<>>},
                         {OpKey::aten_ge_Scalar, compare_kernel<std::greater_equal<>>},
                         {OpKey::aten_logical_and_default, logical_and_kernel},
                         {OpKey::aten_logical_or_default, logical_or_kernel},
                         {OpKey::aten_logical_xor_default, logical_xor_kernel},
                         {OpKey::aten_bitwise_and_Tensor, bitwise_kernel<std::bit_and<>>},
                         {OpKey::aten_bitwise_and_Scalar, bitwise_kernel<std::bit_and<>>},
                         {OpKey::aten_bitwise_and_Scalar_Tensor, bitwise_kernel<std::bit_and<>>},
                         {OpKey::aten_bitwise_or_Tensor, bitwise_kernel<std::bit_or<>>},
                         {OpKey::aten_bitwise_or_Scalar, bitwise_kernel<std::bit_or<>>},
                         {OpKey::aten_bitwise_or_Scalar_Tensor, bitwise_kernel<std::bit_or<>>},
                         {OpKey::aten_bitwise_xor_Tensor, bitwise_kernel<std::bit_xor<>>},
                         {OpKey::aten_bitwise_xor_Scalar, bitwise_kernel<std::bit_xor<>>},
                         {OpKey::aten_bitwise_xor_Scalar_Tensor, bitwise_kernel<std::bit_xor<>>},
                         {OpKey::aten_bitwise_not_default, bitwise_not_kernel},
                         {OpKey::aten_logical_not_default, logical_not_kernel},
                         {OpKey::aten_isnan_default, isnan_kernel},
                         {OpKey::aten_isinf_default, isinf_kernel},
                         {OpKey::aten_isfinite_default, isfinite_kernel},
                     });
}

}  // namespace kiln::cpu::elementwise
