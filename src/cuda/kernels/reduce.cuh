// Reductions: sum, mean, max, min, prod, any, all over any set of dims. The host splits the input
// into a "kept" view (one element per output, with the output's view beside it) and a "reduced"
// view (the elements folded into each output, relative to the kept element), both coalesced.
// One entry point, three schedules:
//   kRowWarp / kRowBlock: a warp or a block per output, for reduced elements that lie together
//     (contiguous ones are read with 16-byte loads where aligned);
//   kColumn: 32 neighbouring outputs per block along threadIdx.x, the reduced range split over
//     threadIdx.y, for reduced elements strided apart while the outputs' inputs are adjacent
//     (NHWC mean over H, W): each load instruction reads 32 neighbouring elements.
namespace kiln_reduce {

enum { kSum = 0, kMean = 1, kMax = 2, kMin = 3, kProd = 4, kAny = 5, kAll = 6 };
enum { kRowWarp = 0, kRowBlock = 1, kColumn = 2 };

// The accumulator: fp32 for 16- and 32-bit floats, double for double, int64 for integers.
template <typename T>
struct AccOf {
  typedef float type;
};
template <>
struct AccOf<double> {
  typedef double type;
};
template <>
struct AccOf<i64> {
  typedef i64 type;
};
template <>
struct AccOf<int> {
  typedef i64 type;
};
template <>
struct AccOf<short> {
  typedef i64 type;
};
template <>
struct AccOf<signed char> {
  typedef i64 type;
};
template <>
struct AccOf<unsigned char> {
  typedef i64 type;
};
template <>
struct AccOf<bool> {
  typedef i64 type;
};

template <typename A>
struct Limits;
template <>
struct Limits<float> {
  __device__ static float lowest() { return __int_as_float(0xff800000); }
  __device__ static float highest() { return __int_as_float(0x7f800000); }
};
template <>
struct Limits<double> {
  __device__ static double lowest() { return __longlong_as_double(0xfff0000000000000LL); }
  __device__ static double highest() { return __longlong_as_double(0x7ff0000000000000LL); }
};
template <>
struct Limits<i64> {
  __device__ static i64 lowest() { return (i64)0x8000000000000000ULL; }
  __device__ static i64 highest() { return (i64)0x7fffffffffffffffULL; }
};

// Sum and mean.
template <int Op, typename In>
struct Reducer {
  typedef typename AccOf<In>::type A;
  __device__ static A identity() { return (A)0; }
  __device__ static A load(In x) { return kiln_lib::convert<A>(x); }
  __device__ static A combine(A a, A b) { return a + b; }
};
template <typename In>
struct Reducer<kProd, In> {
  typedef typename AccOf<In>::type A;
  __device__ static A identity() { return (A)1; }
  __device__ static A load(In x) { return kiln_lib::convert<A>(x); }
  __device__ static A combine(A a, A b) { return a * b; }
};
// A NaN on either side wins (a != a only for NaN), as in PyTorch.
template <typename In>
struct Reducer<kMax, In> {
  typedef typename AccOf<In>::type A;
  __device__ static A identity() { return Limits<A>::lowest(); }
  __device__ static A load(In x) { return kiln_lib::convert<A>(x); }
  __device__ static A combine(A a, A b) { return (a != a || a > b) ? a : b; }
};
template <typename In>
struct Reducer<kMin, In> {
  typedef typename AccOf<In>::type A;
  __device__ static A identity() { return Limits<A>::highest(); }
  __device__ static A load(In x) { return kiln_lib::convert<A>(x); }
  __device__ static A combine(A a, A b) { return (a != a || a < b) ? a : b; }
};
template <typename In>
struct Reducer<kAny, In> {
  typedef int A;
  __device__ static A identity() { return 0; }
  __device__ static A load(In x) { return kiln_lib::nonzero(x) ? 1 : 0; }
  __device__ static A combine(A a, A b) { return a | b; }
};
template <typename In>
struct Reducer<kAll, In> {
  typedef int A;
  __device__ static A identity() { return 1; }
  __device__ static A load(In x) { return kiln_lib::nonzero(x) ? 1 : 0; }
  __device__ static A combine(A a, A b) { return a & b; }
};

// Every lane ends with the same value: each butterfly step combines the same pair in both lanes.
template <class R>
__device__ __forceinline__ typename R::A warp_reduce(typename R::A v) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) {
    v = R::combine(v, __shfl_xor_sync(0xffffffffu, v, mask));
  }
  return v;
}

template <int Op, typename Out, typename A>
__device__ __forceinline__ Out finish(A acc, i64 count) {
  if constexpr (Op == kMean) {
    if constexpr (kiln_lib::Same<A, i64>::value) {
      return kiln_lib::convert<Out>((float)acc / (float)count);
    } else {
      return kiln_lib::convert<Out>(acc / (A)count);
    }
  } else {
    return kiln_lib::convert<Out>(acc);
  }
}

// Thread `tid` of `nthreads` folds its share of p[0, count): 16-byte loads when p is aligned.
template <class R, typename In>
__device__ __forceinline__ typename R::A fold_contiguous(const In* p, i64 count, int tid,
                                                         int nthreads) {
  typedef typename R::A A;
  constexpr int V = 16 / sizeof(In);
  A acc = R::identity();
  i64 start = 0;
  if (V > 1 && ((u64)p & 15) == 0) {
    const i64 packs = count / V;
    for (i64 c = tid; c < packs; c += nthreads) {
      union {
        uint4 raw;
        In v[V];
      } u;
      u.raw = reinterpret_cast<const uint4*>(p)[c];
#pragma unroll
      for (int k = 0; k < V; ++k) acc = R::combine(acc, R::load(u.v[k]));
    }
    start = packs * V;
  }
  for (i64 r = start + tid; r < count; r += nthreads) acc = R::combine(acc, R::load(p[r]));
  return acc;
}

template <int Op, typename In, typename Out>
__device__ void reduce_rows(const KTensor& in, const KTensor& out, const KTensor& red, i64 outputs,
                            i64 count, bool block) {
  typedef Reducer<Op, In> R;
  typedef typename R::A A;
  __shared__ A partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  const i64 first = block ? (i64)blockIdx.x : (i64)blockIdx.x * warps + warp;
  const i64 step = block ? (i64)gridDim.x : (i64)gridDim.x * warps;
  const int tid = block ? threadIdx.x : lane;
  const int nthreads = block ? blockDim.x : 32;
  for (i64 o = first; o < outputs; o += step) {
    i64 in_offset, out_offset;
    kiln_lib::offsets2<u64>(in, out, (u64)o, in_offset, out_offset);
    const In* base = ktensor_ptr<In>(in) + in_offset;
    A acc;
    if (red.rank == 1 && red.strides[0] == 1) {
      acc = fold_contiguous<R, In>(base, count, tid, nthreads);
    } else if (red.rank == 1) {
      acc = R::identity();
      const i64 stride = red.strides[0];
      for (i64 r = tid; r < count; r += nthreads) acc = R::combine(acc, R::load(base[r * stride]));
    } else {
      acc = R::identity();
      for (i64 r = tid; r < count; r += nthreads) {
        acc = R::combine(acc, R::load(base[ktensor_offset(red, r)]));
      }
    }
    acc = warp_reduce<R>(acc);
    if (block) {
      __syncthreads();  // the previous output's readers of `partial` are done
      if (lane == 0) partial[warp] = acc;
      __syncthreads();
      if (warp == 0) {
        acc = lane < warps ? partial[lane] : R::identity();
        acc = warp_reduce<R>(acc);
      }
    }
    if (tid == 0) ktensor_ptr<Out>(out)[out_offset] = finish<Op, Out>(acc, count);
  }
}

template <int Op, typename In, typename Out>
__device__ void reduce_columns(const KTensor& in, const KTensor& out, const KTensor& red,
                               i64 outputs, i64 count) {
  typedef Reducer<Op, In> R;
  typedef typename R::A A;
  __shared__ A column[32][33];
  const int tx = threadIdx.x, ty = threadIdx.y, ny = blockDim.y;
  for (i64 first = (i64)blockIdx.x * 32; first < outputs; first += (i64)gridDim.x * 32) {
    const i64 o = first + tx;
    A acc = R::identity();
    i64 in_offset = 0, out_offset = 0;
    if (o < outputs) {
      kiln_lib::offsets2<u64>(in, out, (u64)o, in_offset, out_offset);
      const In* base = ktensor_ptr<In>(in) + in_offset;
      if (red.rank == 1) {
        const i64 stride = red.strides[0];
        for (i64 r = ty; r < count; r += ny) acc = R::combine(acc, R::load(base[r * stride]));
      } else {
        for (i64 r = ty; r < count; r += ny) {
          acc = R::combine(acc, R::load(base[ktensor_offset(red, r)]));
        }
      }
    }
    if (ny > 1) {
      __syncthreads();
      column[ty][tx] = acc;
      __syncthreads();
      if (ty == 0) {
        for (int k = 1; k < ny; ++k) acc = R::combine(acc, column[k][tx]);
      }
    }
    if (ty == 0 && o < outputs) {
      ktensor_ptr<Out>(out)[out_offset] = finish<Op, Out>(acc, count);
    }
  }
}

template <int Op, typename In, typename Out>
__device__ void reduce(const KTensor& in, const KTensor& out, const KTensor& red, i64 outputs,
                       i64 count, int mode) {
  if (mode == kColumn) {
    reduce_columns<Op, In, Out>(in, out, red, outputs, count);
  } else {
    reduce_rows<Op, In, Out>(in, out, red, outputs, count, mode == kRowBlock);
  }
}

}  // namespace kiln_reduce
