// Index reductions and moments: argmax/argmin and max/min along a dim with their indices, and
// var/std (with the mean, for var_mean) over any set of dims. As in reduce.cuh the host splits the
// input into a "kept" view (one element per output, both outputs' views beside it) and a
// "reduced" view (the elements folded into each output, relative to the kept element, in
// row-major order of the reduced dims: a reduced element's position there is the index argmax
// returns).
// One entry point per op and dtype, three schedules:
//   kRowWarp / kRowBlock: a warp or a block per output, lanes striding over the reduced elements
//     and combining their partial results by warp shuffles (and shared memory across warps);
//   kColumn: a thread per output folding its elements in order, for outputs whose inputs lie
//     side by side while a row's elements are strided apart (argmax over the channels of NCHW).
namespace kiln_index_reduce {

enum { kRowWarp = 0, kRowBlock = 1, kColumn = 2 };

// What elements compare as: fp32 for the 16- and 32-bit floats (exact), double for double, int64
// for integers and bool (exact, where fp32 would merge neighbouring large int64 values).
template <typename T>
struct KeyOf {
  typedef float type;
};
template <>
struct KeyOf<double> {
  typedef double type;
};
template <>
struct KeyOf<i64> {
  typedef i64 type;
};
template <>
struct KeyOf<int> {
  typedef i64 type;
};
template <>
struct KeyOf<short> {
  typedef i64 type;
};
template <>
struct KeyOf<signed char> {
  typedef i64 type;
};
template <>
struct KeyOf<unsigned char> {
  typedef i64 type;
};
template <>
struct KeyOf<bool> {
  typedef i64 type;
};

template <typename K>
__device__ __forceinline__ bool is_nan(K v) {
  return v != v;  // false for integers
}

// Whether candidate (a, ia) beats (b, ib) in a max (Max) or min reduction: a NaN beats every
// number, and of two equal values (or two NaNs) the one seen first (smaller index) wins, as in
// PyTorch's CUDA argmax. Index -1 is "no candidate yet", which every candidate beats.
template <bool Max, typename K>
__device__ __forceinline__ bool beats(K a, i64 ia, K b, i64 ib) {
  if (ia < 0) return false;
  if (ib < 0) return true;
  const bool a_nan = is_nan(a), b_nan = is_nan(b);
  if (a_nan || b_nan) return a_nan && (!b_nan || ia < ib);
  if (a == b) return ia < ib;
  return Max ? a > b : a < b;
}

// argmax/argmin and max/min.dim: the first extreme element and its index. Writes the element
// itself (read back from the input, so the values keep their bits and dtype) to out0 and the
// index to out1, each where it has data.
template <bool Max, typename In>
struct ArgOp {
  typedef typename KeyOf<In>::type K;
  struct State {
    K value;
    i64 index;
  };
  __device__ static State init() {
    State s;
    s.value = (K)0;
    s.index = -1;
    return s;
  }
  __device__ static void add(State& s, In x, i64 r) {
    const K v = kiln_lib::convert<K>(x);
    if (beats<Max>(v, r, s.value, s.index)) {
      s.value = v;
      s.index = r;
    }
  }
  __device__ static State combine(State lower, State upper) {
    return beats<Max>(upper.value, upper.index, lower.value, lower.index) ? upper : lower;
  }
  __device__ static State shuffle(State s, int mask) {
    s.value = __shfl_xor_sync(0xffffffffu, s.value, mask);
    s.index = __shfl_xor_sync(0xffffffffu, s.index, mask);
    return s;
  }
  // No candidate only for an empty reduction, which the launch refuses (PyTorch raises).
  __device__ void finish(const State& s, const In* base, const KTensor& red, const KTensor& out0,
                         i64 off0, const KTensor& out1, i64 off1) const {
    if (s.index < 0) return;
    if (out0.data) ktensor_ptr<In>(out0)[off0] = base[ktensor_offset(red, s.index)];
    if (out1.data) ktensor_ptr<i64>(out1)[off1] = s.index;
  }
};

// var/std (Sqrt) by Welford's update in fp32, partial results merged by Chan's formula, as
// PyTorch's WelfordOps: a constant row gives exactly 0. Writes var (or std) to out0 and the mean
// to out1, each where it has data. Divides by max(0, n - correction), so n <= correction gives
// m2 / 0: NaN for 0 / 0 (a constant row, or no elements), inf otherwise.
template <typename In, bool Sqrt>
struct MomentsOp {
  struct State {
    float mean, m2, n;
  };
  float correction;

  __device__ static State init() {
    State s;
    s.mean = 0.0f;
    s.m2 = 0.0f;
    s.n = 0.0f;
    return s;
  }
  __device__ static void add(State& s, In x, i64) {
    const float v = to_float(x);
    s.n += 1.0f;
    const float delta = v - s.mean;
    s.mean += delta / s.n;
    s.m2 += delta * (v - s.mean);
  }
  // Not symmetric in rounding: callers pass the lower lane's part first, so every lane of a
  // butterfly holds the same result.
  __device__ static State combine(State a, State b) {
    if (a.n == 0.0f) return b;
    if (b.n == 0.0f) return a;
    State s;
    s.n = a.n + b.n;
    const float delta = b.mean - a.mean;
    const float b_share = b.n / s.n;
    s.mean = a.mean + delta * b_share;
    s.m2 = a.m2 + b.m2 + delta * delta * a.n * b_share;
    return s;
  }
  __device__ static State shuffle(State s, int mask) {
    s.mean = __shfl_xor_sync(0xffffffffu, s.mean, mask);
    s.m2 = __shfl_xor_sync(0xffffffffu, s.m2, mask);
    s.n = __shfl_xor_sync(0xffffffffu, s.n, mask);
    return s;
  }
  __device__ void finish(const State& s, const In*, const KTensor&, const KTensor& out0, i64 off0,
                         const KTensor& out1, i64 off1) const {
    const float divisor = s.n > correction ? s.n - correction : 0.0f;
    float var = s.m2 / divisor;
    if (Sqrt) var = sqrtf(var);
    if (out0.data) ktensor_ptr<In>(out0)[off0] = kiln_lib::convert<In>(var);
    // The mean of nothing is NaN, as in PyTorch's var_mean.
    const float mean = s.n > 0.0f ? s.mean : __int_as_float(0x7fc00000);
    if (out1.data) ktensor_ptr<In>(out1)[off1] = kiln_lib::convert<In>(mean);
  }
};

// One walk over the kept dims gives the input's and both outputs' offsets.
__device__ __forceinline__ void kept_offsets(const KTensor& in, const KTensor& out0,
                                             const KTensor& out1, u64 linear, i64& oi, i64& o0,
                                             i64& o1) {
  oi = 0;
  o0 = 0;
  o1 = 0;
  for (int d = in.rank - 1; d >= 0; --d) {
    const u64 size = (u64)in.sizes[d];
    const i64 i = (i64)(linear % size);
    linear /= size;
    oi += i * in.strides[d];
    o0 += i * out0.strides[d];
    o1 += i * out1.strides[d];
  }
}

// Thread `tid` of `nthreads` folds reduced elements tid, tid + nthreads, ... in increasing order.
template <class Op, typename In>
__device__ __forceinline__ typename Op::State fold(const In* base, const KTensor& red, i64 count,
                                                   int tid, int nthreads) {
  typename Op::State s = Op::init();
  if (red.rank == 1) {
    const i64 stride = red.strides[0];
    for (i64 r = tid; r < count; r += nthreads) Op::add(s, base[r * stride], r);
  } else {
    for (i64 r = tid; r < count; r += nthreads) Op::add(s, base[ktensor_offset(red, r)], r);
  }
  return s;
}

// Every lane ends with the combination of the warp's 32 parts, lower lanes first.
template <class Op>
__device__ __forceinline__ typename Op::State warp_combine(typename Op::State s) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) {
    const typename Op::State other = Op::shuffle(s, mask);
    s = (lane & mask) ? Op::combine(other, s) : Op::combine(s, other);
  }
  return s;
}

template <class Op, typename In>
__device__ void reduce_rows(const Op& op, const KTensor& in, const KTensor& out0,
                            const KTensor& out1, const KTensor& red, i64 outputs, i64 count,
                            bool block) {
  typedef typename Op::State State;
  __shared__ State partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  const i64 first = block ? (i64)blockIdx.x : (i64)blockIdx.x * warps + warp;
  const i64 step = block ? (i64)gridDim.x : (i64)gridDim.x * warps;
  const int tid = block ? threadIdx.x : lane;
  const int nthreads = block ? blockDim.x : 32;
  for (i64 o = first; o < outputs; o += step) {
    i64 in_offset, off0, off1;
    kept_offsets(in, out0, out1, (u64)o, in_offset, off0, off1);
    const In* base = ktensor_ptr<In>(in) + in_offset;
    State s = warp_combine<Op>(fold<Op, In>(base, red, count, tid, nthreads));
    if (block) {
      __syncthreads();  // the previous output's readers of `partial` are done
      if (lane == 0) partial[warp] = s;
      __syncthreads();
      if (warp == 0) s = warp_combine<Op>(lane < warps ? partial[lane] : Op::init());
    }
    if (tid == 0) op.finish(s, base, red, out0, off0, out1, off1);
  }
}

template <class Op, typename In>
__device__ void reduce_columns(const Op& op, const KTensor& in, const KTensor& out0,
                               const KTensor& out1, const KTensor& red, i64 outputs, i64 count) {
  const i64 stride = (i64)gridDim.x * blockDim.x;
  for (i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x; o < outputs; o += stride) {
    i64 in_offset, off0, off1;
    kept_offsets(in, out0, out1, (u64)o, in_offset, off0, off1);
    const In* base = ktensor_ptr<In>(in) + in_offset;
    op.finish(fold<Op, In>(base, red, count, 0, 1), base, red, out0, off0, out1, off1);
  }
}

template <class Op, typename In>
__device__ void reduce(const Op& op, const KTensor& in, const KTensor& out0, const KTensor& out1,
                       const KTensor& red, i64 outputs, i64 count, int mode) {
  if (mode == kColumn) {
    reduce_columns<Op, In>(op, in, out0, out1, red, outputs, count);
  } else {
    reduce_rows<Op, In>(op, in, out0, out1, red, outputs, count, mode == kRowBlock);
  }
}

template <bool Max, typename In>
__device__ void arg_reduce(const KTensor& in, const KTensor& values, const KTensor& indices,
                           const KTensor& red, i64 outputs, i64 count, int mode) {
  const ArgOp<Max, In> op{};
  reduce<ArgOp<Max, In>, In>(op, in, values, indices, red, outputs, count, mode);
}

template <typename In, bool Sqrt>
__device__ void moments(const KTensor& in, const KTensor& var, const KTensor& mean,
                        const KTensor& red, i64 outputs, i64 count, int mode, float correction) {
  MomentsOp<In, Sqrt> op;
  op.correction = correction;
  reduce<MomentsOp<In, Sqrt>, In>(op, in, var, mean, red, outputs, count, mode);
}

}  // namespace kiln_index_reduce
