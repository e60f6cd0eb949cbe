// The scatter family: gather, scatter (src or value, plain or reducing: sum, prod, mean, amax,
// amin), index_put (plain or accumulating) and masked_scatter. The functional ops are a copy of
// self into out (launched by the host before these kernels) followed by an in-place scatter into
// out. Several writers to one element: the plain forms keep one of them (which one is unspecified,
// as on PyTorch's CUDA), the reducing forms combine them with atomics in the storage dtype (fp16
// and bf16 sums round each partial sum, as PyTorch's CUDA kernels do). An index outside its dim
// writes nothing (gather writes zero); PyTorch asserts on the device there.
namespace kiln_scatter {

using kiln_lib::convert;
using kiln_lib::Kind;

// How elements combine, as the host's ScatterReduce numbers them.
enum Reduce : int { kAssign = 0, kSum = 1, kProd = 2, kMean = 3, kAmax = 4, kAmin = 5 };

// Bit patterns of T, for compare-and-swap loops.
template <typename T>
__device__ __forceinline__ u64 to_bits(T v) {
  if constexpr (sizeof(T) == 8) {
    union { T v; u64 b; } u;
    u.v = v;
    return u.b;
  } else if constexpr (sizeof(T) == 4) {
    union { T v; unsigned int b; } u;
    u.v = v;
    return u.b;
  } else if constexpr (sizeof(T) == 2) {
    union { T v; unsigned short b; } u;
    u.v = v;
    return u.b;
  } else {
    union { T v; unsigned char b; } u;
    u.v = v;
    return u.b;
  }
}
template <typename T>
__device__ __forceinline__ T from_bits(u64 bits) {
  if constexpr (sizeof(T) == 8) {
    union { T v; u64 b; } u;
    u.b = bits;
    return u.v;
  } else if constexpr (sizeof(T) == 4) {
    union { T v; unsigned int b; } u;
    u.b = (unsigned int)bits;
    return u.v;
  } else if constexpr (sizeof(T) == 2) {
    union { T v; unsigned short b; } u;
    u.b = (unsigned short)bits;
    return u.v;
  } else {
    union { T v; unsigned char b; } u;
    u.b = (unsigned char)bits;
    return u.v;
  }
}

// *p = f(*p) atomically, by compare-and-swap. Elements narrower than 4 bytes swap the aligned
// 32-bit word that holds them, leaving its other bytes as they are.
template <typename T, typename F>
__device__ void atomic_update(T* p, F f) {
  if constexpr (sizeof(T) == 8) {
    u64* word = reinterpret_cast<u64*>(p);
    u64 old = *word, assumed;
    do {
      assumed = old;
      old = atomicCAS(word, assumed, to_bits<T>(f(from_bits<T>(assumed))));
    } while (old != assumed);
  } else if constexpr (sizeof(T) == 4) {
    unsigned int* word = reinterpret_cast<unsigned int*>(p);
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      old = atomicCAS(word, assumed, (unsigned int)to_bits<T>(f(from_bits<T>(assumed))));
    } while (old != assumed);
  } else {
    const u64 address = reinterpret_cast<u64>(p);
    unsigned int* word = reinterpret_cast<unsigned int*>(address & ~(u64)3);
    const unsigned int shift = (unsigned int)(address & 3) * 8;
    const unsigned int mask = (sizeof(T) == 2 ? 0xffffu : 0xffu) << shift;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      const T now = from_bits<T>((assumed & mask) >> shift);
      const unsigned int next = (unsigned int)to_bits<T>(f(now)) << shift;
      old = atomicCAS(word, assumed, (assumed & ~mask) | (next & mask));
    } while (old != assumed);
  }
}

template <typename T>
__device__ __forceinline__ bool is_nan(T v) {
  if constexpr (Kind<T>::value == 0) {
    const float f = to_float(v);
    return f != f;
  } else {
    return false;
  }
}

// a (op) b, floating types in fp32 and rounded once, integers in their own type (wrapping as
// PyTorch's do). amax/amin propagate NaN: a NaN in either operand wins.
template <int R, typename T>
__device__ __forceinline__ T combine(T a, T b) {
  if constexpr (Kind<T>::value == 0) {
    const float x = to_float(a), y = to_float(b);
    if constexpr (R == kSum || R == kMean) {
      return from_float<T>(x + y);
    } else if constexpr (R == kProd) {
      return from_float<T>(x * y);
    } else if constexpr (R == kAmax) {
      return (y != y || x < y) ? b : a;
    } else if constexpr (R == kAmin) {
      return (y != y || y < x) ? b : a;
    } else {
      return b;
    }
  } else {
    if constexpr (R == kSum || R == kMean) {
      return (T)((u64)(i64)a + (u64)(i64)b);
    } else if constexpr (R == kProd) {
      return (T)((u64)(i64)a * (u64)(i64)b);
    } else if constexpr (R == kAmax) {
      return a < b ? b : a;
    } else if constexpr (R == kAmin) {
      return b < a ? b : a;
    } else {
      return b;
    }
  }
}

// *p = *p (op) v, atomically; the hardware's own atomics where they exist.
template <int R, typename T>
__device__ __forceinline__ void atomic_combine(T* p, T v) {
  if constexpr (R == kAssign) {
    *p = v;
  } else if constexpr ((R == kSum || R == kMean) && kiln_lib::Same<T, float>::value) {
    atomicAdd(p, v);
  } else if constexpr ((R == kSum || R == kMean) && kiln_lib::Same<T, int>::value) {
    atomicAdd(p, v);
  } else if constexpr ((R == kSum || R == kMean) && kiln_lib::Same<T, i64>::value) {
    atomicAdd(reinterpret_cast<u64*>(p), (u64)v);
  } else {
    atomic_update<T>(p, [v](T now) { return combine<R, T>(now, v); });
  }
}

// The value a reduction starts from where include_self is false: the identity of its operation.
template <int R, typename T>
__device__ __forceinline__ T identity() {
  if constexpr (R == kProd) {
    return convert<T>(1.0f);
  } else if constexpr (R == kAmax || R == kAmin) {
    if constexpr (Kind<T>::value == 0) {
      const float inf = __int_as_float(0x7f800000);
      return from_float<T>(R == kAmax ? -inf : inf);
    } else {
      // The smallest (amax) or largest (amin) value of the integer type.
      const u64 top = (u64)1 << (sizeof(T) * 8 - 1);
      const bool is_signed = (T)(-1) < (T)0;
      const i64 lo = is_signed ? (i64)~(top - 1) : 0;
      const i64 hi = is_signed ? (i64)(top - 1) : (i64)(top * 2 - 1);
      return (T)(R == kAmax ? lo : hi);
    }
  } else {
    return convert<T>(0.0f);
  }
}

template <typename T>
__device__ __forceinline__ T divide(T sum, int count) {
  if constexpr (Kind<T>::value == 0) {
    return from_float<T>(to_float(sum) / (float)count);
  } else {
    // Floor division, as PyTorch's integer mean.
    const i64 s = (i64)sum;
    i64 q = s / count;
    if (s % count != 0 && s < 0) --q;
    return (T)q;
  }
}

template <typename I>
__device__ __forceinline__ i64 read_index(const char* data, i64 offset) {
  return (i64)reinterpret_cast<const I*>(data)[offset];
}

// Where one element of `index` points, for gather and scatter. `walk` holds index's sizes and
// strides; `at` and `src` the strides of out (or gather's input) and src laid over index's dims,
// with at's stride along `dim` zero; `lin` out's row-major strides the same way (for the counts
// of mean).
struct Target {
  i64 at, src, lin;
  bool valid;
};
template <typename I, typename Idx>
__device__ __forceinline__ Target target(const KTensor& index, const KTensor& at,
                                         const KTensor& src, const KTensor& lin, Idx linear,
                                         i64 dim_size, i64 dim_stride, i64 dim_lin) {
  i64 io = 0;
  Target t{0, 0, 0, false};
  for (int d = index.rank - 1; d >= 0; --d) {
    const Idx size = (Idx)index.sizes[d];
    const i64 i = (i64)(linear % size);
    linear /= size;
    io += i * index.strides[d];
    t.at += i * at.strides[d];
    t.src += i * src.strides[d];
    t.lin += i * lin.strides[d];
  }
  const i64 k = read_index<I>(index.data, io);
  t.valid = k >= 0 && k < dim_size;
  if (t.valid) {
    t.at += k * dim_stride;
    t.lin += k * dim_lin;
  }
  return t;
}

// gather: out[i] = in[i with i[dim] = index[i]] for every element of index (out has its sizes).
template <typename T, typename I, typename Idx>
__device__ void gather_loop(const KTensor& in, const KTensor& index, const KTensor& out,
                            i64 dim_size, i64 dim_stride, Idx total) {
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    const Target t = target<I, Idx>(index, in, out, out, linear, dim_size, dim_stride, 0);
    y[t.src] = t.valid ? x[t.at] : convert<T>(0.0f);
  }
}

template <typename T, typename I>
__device__ void gather(const KTensor& in, const KTensor& index, const KTensor& out, i64 dim_size,
                       i64 dim_stride, i64 total) {
  if (total < 2147483648LL) {
    gather_loop<T, I, unsigned int>(in, index, out, dim_size, dim_stride, (unsigned int)total);
  } else {
    gather_loop<T, I, u64>(in, index, out, dim_size, dim_stride, (u64)total);
  }
}

// The phases of a scatter, each one launch: where include_self is false, the targets first
// take the reduction's identity; then every index element combines into its target (mean also
// counts them); then mean divides each target by its count (plus one for self).
enum ScatterPhase : int { kIdentity = 0, kCombine = 1, kFinish = 2 };

struct ScatterArgs {
  KTensor out;    // out, its own sizes and strides (the finish phase walks it)
  KTensor index;  // index's sizes and strides
  KTensor at;     // out's strides over index's dims, zero along dim
  KTensor src;    // src's strides over index's dims (unused for a value)
  KTensor lin;    // out's row-major strides over index's dims, zero along dim
  i64 dim_size, dim_stride, dim_lin;
  double value;   // the scattered value when there is no src
  int* counts;    // mean: per element of out (row-major), zeroed by the host
  int include_self;
  int pad_;
};

template <int R, typename T, typename I, bool kValue, typename Idx>
__device__ void scatter_loop(const ScatterArgs& a, int phase, Idx total) {
  T* y = ktensor_ptr<T>(a.out);
  const T* s = ktensor_ptr<T>(a.src);
  const Idx step = (Idx)gridDim.x * blockDim.x;
  Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x;
  if (phase == kFinish) {
    for (; linear < total; linear += step) {
      const int count = a.counts[linear] + (a.include_self ? 1 : 0);
      if (count > 1) {
        T* p = y + kiln_lib::offset1<Idx>(a.out, linear);
        *p = divide<T>(*p, count);
      }
    }
    return;
  }
  T value = convert<T>(0.0f);
  if constexpr (kValue) {
    if constexpr (Kind<T>::value == 2) {
      value = (T)(i64)a.value;
    } else {
      value = convert<T>(a.value);
    }
  }
  for (; linear < total; linear += step) {
    const Target t = target<I, Idx>(a.index, a.at, a.src, a.lin, linear, a.dim_size,
                                    a.dim_stride, a.dim_lin);
    if (!t.valid) continue;
    if (phase == kIdentity) {
      y[t.at] = identity<R, T>();  // every writer writes the same value
      continue;
    }
    T v;
    if constexpr (kValue) {
      v = value;
    } else {
      v = s[t.src];
    }
    atomic_combine<R, T>(y + t.at, v);
    if constexpr (R == kMean) atomicAdd(a.counts + t.lin, 1);
  }
}

template <int R, typename T, typename I, bool kValue>
__device__ void scatter(const ScatterArgs& a, int phase, i64 total) {
  if (total < 2147483648LL) {
    scatter_loop<R, T, I, kValue, unsigned int>(a, phase, (unsigned int)total);
  } else {
    scatter_loop<R, T, I, kValue, u64>(a, phase, (u64)total);
  }
}

// index_put's index tensors (mirrored by IndexPutOperands in kernel_library_scatter.cc), passed
// by value: as aten.index.Tensor's (index.cuh), over the indexed shape.
struct IndexOperands {
  const char* data[KILN_MAX_DIMS];            // element 0 of each index tensor
  i64 strides[KILN_MAX_DIMS][KILN_MAX_DIMS];  // [k][d]: index k's stride along walked dim d
  i64 size[KILN_MAX_DIMS];                    // the size of the dim of out index k picks
  i64 stride[KILN_MAX_DIMS];                  // and its stride
  int wide[KILN_MAX_DIMS];                    // 1: int64 values, 0: int32
  int count;
  int pad_;
};

// index_put: a thread per element of the indexed shape (out[indices]'s): `dest` holds out's
// strides over it (zero along the index block), `values` the values broadcast to it. Negative
// indices wrap once; an index still outside its dim writes nothing.
template <typename T, bool kAccumulate, typename Idx>
__device__ void index_put_loop(const KTensor& dest, const KTensor& values,
                               const IndexOperands& ix, Idx total) {
  T* y = ktensor_ptr<T>(dest);
  const T* v = ktensor_ptr<T>(values);
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    Idx rest = linear;
    i64 yo = 0, vo = 0;
    i64 io[KILN_MAX_DIMS];
#pragma unroll
    for (int k = 0; k < KILN_MAX_DIMS; ++k) io[k] = 0;
    for (int d = dest.rank - 1; d >= 0; --d) {
      const Idx size = (Idx)dest.sizes[d];
      const i64 i = (i64)(rest % size);
      rest /= size;
      yo += i * dest.strides[d];
      vo += i * values.strides[d];
#pragma unroll
      for (int k = 0; k < KILN_MAX_DIMS; ++k) {
        if (k < ix.count) io[k] += i * ix.strides[k][d];
      }
    }
    bool valid = true;
#pragma unroll
    for (int k = 0; k < KILN_MAX_DIMS; ++k) {
      if (k < ix.count) {
        i64 p = ix.wide[k] ? read_index<i64>(ix.data[k], io[k])
                           : read_index<int>(ix.data[k], io[k]);
        if (p < 0) p += ix.size[k];
        valid = valid && p >= 0 && p < ix.size[k];
        if (valid) yo += p * ix.stride[k];
      }
    }
    if (!valid) continue;
    if constexpr (kAccumulate) {
      atomic_combine<kSum, T>(y + yo, v[vo]);
    } else {
      y[yo] = v[vo];
    }
  }
}

template <typename T, bool kAccumulate>
__device__ void index_put(const KTensor& dest, const KTensor& values, const IndexOperands& ix,
                          i64 total) {
  if (total < 2147483648LL) {
    index_put_loop<T, kAccumulate, unsigned int>(dest, values, ix, (unsigned int)total);
  } else {
    index_put_loop<T, kAccumulate, u64>(dest, values, ix, (u64)total);
  }
}

// index_put with a leading bool mask whose values broadcast to every selected row (no data-
// dependent shape): a thread per element of out (holding self); `mask` and `values` are laid
// over out's sizes (mask stride 0 along the rows' trailing dims, values stride 0 along the
// mask's dims). A selected element takes the value (kAccumulate: adds it); no element is
// written twice, so no atomics.
template <typename T, bool kAccumulate, typename M>
__device__ void masked_put(const KTensor& out, const KTensor& mask, const KTensor& values,
                           i64 total) {
  T* y = ktensor_ptr<T>(out);
  const M* m = ktensor_ptr<M>(mask);
  const T* v = ktensor_ptr<T>(values);
  for (i64 linear = (i64)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (i64)gridDim.x * blockDim.x) {
    i64 rest = linear, yo = 0, mo = 0, vo = 0;
    for (int d = out.rank - 1; d >= 0; --d) {
      const i64 i = rest % out.sizes[d];
      rest /= out.sizes[d];
      yo += i * out.strides[d];
      mo += i * mask.strides[d];
      vo += i * values.strides[d];
    }
    if (!m[mo]) continue;
    if constexpr (kAccumulate) {
      y[yo] = convert<T>(to_float(y[yo]) + to_float(v[vo]));
    } else {
      y[yo] = v[vo];
    }
  }
}

// masked_scatter: the k-th true element of the mask (row-major over out's sizes) takes source's
// k-th element (row-major over source's sizes). Out is cut into chunks of one block's threads
// (an element each); k is the count of true elements in earlier chunks plus those before it in
// its chunk. Phases: each chunk counts its true elements; one block turns the counts into
// exclusive prefix sums; each chunk scatters. k past source's end writes nothing.
enum MaskPhase : int { kCount = 0, kScan = 1, kScatter = 2 };

// The exclusive prefix sum of v over the block (a multiple of 32 threads, at most 1024), and in
// `total` the block's sum. `shared` holds 32 values; the leading barrier lets calls share it.
template <typename V>
__device__ __forceinline__ V block_exclusive_scan(V v, V* shared, V& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  V x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const V y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  __syncthreads();
  if (lane == 31) shared[warp] = x;
  __syncthreads();
  if (warp == 0) {
    V w = lane < warps ? shared[lane] : (V)0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const V y = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += y;
    }
    shared[lane] = w;
  }
  __syncthreads();
  total = shared[warps - 1];
  return (warp > 0 ? shared[warp - 1] : (V)0) + x - v;
}

template <typename T>
__device__ void masked_scatter(const KTensor& out, const KTensor& mask, const KTensor& source,
                               i64* chunk_counts, i64 n, i64 chunks, i64 source_n, int phase) {
  __shared__ i64 shared[32];
  if (phase == kScan) {
    if (blockIdx.x != 0) return;
    i64 carry = 0;
    for (i64 base = 0; base < chunks; base += blockDim.x) {
      const i64 c = base + threadIdx.x;
      const i64 v = c < chunks ? chunk_counts[c] : 0;
      i64 total;
      const i64 before = block_exclusive_scan<i64>(v, shared, total);
      if (c < chunks) chunk_counts[c] = carry + before;
      carry += total;
    }
    return;
  }
  T* y = ktensor_ptr<T>(out);
  const bool* m = ktensor_ptr<bool>(mask);
  const T* s = ktensor_ptr<T>(source);
  for (i64 chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const i64 e = chunk * blockDim.x + threadIdx.x;
    i64 yo = 0, mo = 0;
    if (e < n) kiln_lib::offsets2<u64>(out, mask, (u64)e, yo, mo);
    const i64 flag = e < n && m[mo] ? 1 : 0;
    i64 total;
    const i64 before = block_exclusive_scan<i64>(flag, shared, total);
    if (phase == kCount) {
      if (threadIdx.x == 0) chunk_counts[chunk] = total;
      continue;
    }
    const i64 k = chunk_counts[chunk] + before;
    if (flag && k < source_n) y[yo] = s[kiln_lib::offset1<u64>(source, (u64)k)];
  }
}

}  // namespace kiln_scatter
