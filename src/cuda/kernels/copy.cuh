// Data movement: strided copy with dtype conversion, fill, arange; and, in kiln_lib, the device
// helpers every library family builds on: PyTorch's dtype conversions, 16-byte packed loads and
// stores, warp and block reductions. Every family's piece needs this one first in the module.
namespace kiln_lib {

template <typename A, typename B>
struct Same {
  static constexpr bool value = false;
};
template <typename A>
struct Same<A, A> {
  static constexpr bool value = true;
};

// How a type converts: 0 float, kiln_half, kiln_bf16 (through float); 1 double; 2 integers;
// 3 bool.
template <typename T>
struct Kind {
  static constexpr int value = 0;
};
template <>
struct Kind<double> {
  static constexpr int value = 1;
};
template <>
struct Kind<i64> {
  static constexpr int value = 2;
};
template <>
struct Kind<int> {
  static constexpr int value = 2;
};
template <>
struct Kind<short> {
  static constexpr int value = 2;
};
template <>
struct Kind<signed char> {
  static constexpr int value = 2;
};
template <>
struct Kind<unsigned char> {
  static constexpr int value = 2;
};
template <>
struct Kind<bool> {
  static constexpr int value = 3;
};

// NaN counts as true, as in PyTorch.
template <typename S>
__device__ __forceinline__ bool nonzero(S s) {
  if constexpr (Kind<S>::value == 0) {
    return to_float(s) != 0.0f;
  } else {
    return s != 0;
  }
}

// s as a D: floats to integers truncate toward zero, anything to bool is "nonzero", integers
// convert to integers and double exactly (as far as the target holds them).
template <typename D, typename S>
__device__ __forceinline__ D convert(S s) {
  if constexpr (Same<D, S>::value) {
    return s;
  } else if constexpr (Kind<D>::value == 3) {
    return nonzero(s);
  } else if constexpr (Kind<S>::value == 0) {
    const float f = to_float(s);
    if constexpr (Kind<D>::value == 1) {
      return (double)f;
    } else {
      return from_float<D>(f);
    }
  } else if constexpr (Kind<D>::value == 0) {
    return from_float<D>((float)s);
  } else {
    return (D)s;
  }
}

// One index walk gives both operands' element offsets. Idx is 32-bit when the element count
// allows: 64-bit division costs several times more.
template <typename Idx>
__device__ __forceinline__ void offsets2(const KTensor& a, const KTensor& b, Idx linear, i64& oa,
                                         i64& ob) {
  oa = 0;
  ob = 0;
  for (int d = a.rank - 1; d >= 0; --d) {
    const Idx size = (Idx)a.sizes[d];
    const Idx i = linear % size;
    linear /= size;
    oa += (i64)i * a.strides[d];
    ob += (i64)i * b.strides[d];
  }
}

template <typename Idx>
__device__ __forceinline__ i64 offset1(const KTensor& a, Idx linear) {
  i64 offset = 0;
  for (int d = a.rank - 1; d >= 0; --d) {
    const Idx size = (Idx)a.sizes[d];
    offset += (i64)(linear % size) * a.strides[d];
    linear /= size;
  }
  return offset;
}

// Loads and stores of V neighbouring elements as one access of V * sizeof(T) <= 16 bytes; the
// pointer must be aligned to that size.
template <int Bytes>
struct Raw;
template <>
struct Raw<1> {
  typedef unsigned char type;
};
template <>
struct Raw<2> {
  typedef unsigned short type;
};
template <>
struct Raw<4> {
  typedef unsigned int type;
};
template <>
struct Raw<8> {
  typedef uint2 type;
};
template <>
struct Raw<16> {
  typedef uint4 type;
};

template <typename T, int V>
__device__ __forceinline__ void load_pack(const T* p, float* dst) {
  typedef typename Raw<V * sizeof(T)>::type R;
  union {
    R raw;
    T v[V];
  } u;
  u.raw = *reinterpret_cast<const R*>(p);
#pragma unroll
  for (int k = 0; k < V; ++k) dst[k] = to_float(u.v[k]);
}

template <typename T, int V>
__device__ __forceinline__ void store_pack(T* p, const float* src) {
  typedef typename Raw<V * sizeof(T)>::type R;
  union {
    R raw;
    T v[V];
  } u;
#pragma unroll
  for (int k = 0; k < V; ++k) u.v[k] = convert<T>(src[k]);
  *reinterpret_cast<R*>(p) = u.raw;
}

__device__ __forceinline__ float neg_inf() {
  return __int_as_float(0xff800000);
}

// Every lane ends with the same value: each butterfly step combines the same pair in both lanes.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) v += __shfl_xor_sync(0xffffffffu, v, mask);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, mask));
  return v;
}

// Over the whole block, every thread getting the result. `scratch` holds 32 floats; the leading
// barrier lets consecutive calls share it.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  v = warp_max(v);
  const int lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : neg_inf();
  return warp_max(v);
}
template <bool kBlock>
__device__ __forceinline__ float row_sum(float v, float* scratch) {
  if constexpr (kBlock) {
    return block_sum(v, scratch);
  } else {
    return warp_sum(v);
  }
}
template <bool kBlock>
__device__ __forceinline__ float row_max(float v, float* scratch) {
  if constexpr (kBlock) {
    return block_max(v, scratch);
  } else {
    return warp_max(v);
  }
}

}  // namespace kiln_lib

namespace kiln_copy {

using kiln_lib::convert;

// The element conversions copy_loop applies.
template <typename S, typename D>
struct ConvertOp {
  __device__ __forceinline__ D operator()(S s) const { return convert<D>(s); }
};
// A boolean attention mask as an additive bias: true (attend) -> 0, false -> -inf.
template <typename D>
struct MaskBiasOp {
  __device__ __forceinline__ D operator()(bool s) const {
    return ::from_float<D>(s ? 0.0f : __int_as_float(0xff800000));
  }
};

template <typename S, typename D, typename Op, typename Idx>
__device__ void copy_loop(const KTensor& src, const KTensor& dst, Idx n, bool flat) {
  const S* s = ktensor_ptr<S>(src);
  D* d = ktensor_ptr<D>(dst);
  const Op op;
  const Idx step = (Idx)gridDim.x * blockDim.x;
  if (flat) {
    for (Idx i = (Idx)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
      d[i] = op(s[i]);
    }
    return;
  }
  for (Idx i = (Idx)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    i64 so, dof;
    kiln_lib::offsets2<Idx>(src, dst, i, so, dof);
    d[dof] = op(s[so]);
  }
}

// src and dst share sizes (coalesced on the host); `flat` when both are contiguous.
template <typename S, typename D, typename Op = ConvertOp<S, D>>
__device__ void copy(const KTensor& src, const KTensor& dst, i64 n, int flat) {
  if (n < 2147483648LL) {
    copy_loop<S, D, Op, unsigned int>(src, dst, (unsigned int)n, flat != 0);
  } else {
    copy_loop<S, D, Op, u64>(src, dst, (u64)n, flat != 0);
  }
}

template <typename D, typename Idx>
__device__ void fill_loop(const KTensor& out, D value, Idx n, bool flat) {
  D* d = ktensor_ptr<D>(out);
  const Idx step = (Idx)gridDim.x * blockDim.x;
  for (Idx i = (Idx)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    d[flat ? (i64)i : kiln_lib::offset1<Idx>(out, i)] = value;
  }
}

template <typename D>
__device__ void fill(const KTensor& out, double value, i64 n, int flat) {
  const D v = convert<D>(value);
  if (n < 2147483648LL) {
    fill_loop<D, unsigned int>(out, v, (unsigned int)n, flat != 0);
  } else {
    fill_loop<D, u64>(out, v, (u64)n, flat != 0);
  }
}

// out is 1-D: element i at i * stride.
template <typename D>
__device__ void arange(const KTensor& out, double start, double step) {
  D* d = ktensor_ptr<D>(out);
  const i64 n = out.sizes[0], stride = out.strides[0];
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (i64)gridDim.x * blockDim.x) {
    d[i * stride] = convert<D>(start + (double)i * step);
  }
}

}  // namespace kiln_copy
