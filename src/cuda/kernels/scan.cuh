// Inclusive scans (cumsum) along one dim. The host splits the input into rows (the other dims,
// coalesced, with the output's view beside them) and the scanned dim (n elements, stride xs in
// the input and ys in the output). One entry point, three schedules:
//   kScanWarp: a warp per row, 32 * kVec elements a step: each lane loads kVec elements 32 apart
//     (each load instruction reads 32 neighbours), kVec independent shuffle scans give their
//     prefixes, and a running carry joins them and the steps.
//   kScanBlock: a block per row, for long rows: each warp scans its 32 * kVec elements of the
//     block's step as above, and the warps' totals are scanned through shared memory.
//   kScanColumn: a thread per row adding sequentially, for rows whose neighbours lie next to each
//     other (a scan along an outer dim): each load instruction reads 32 neighbouring rows.
// Elements are first converted to the output's dtype (PyTorch scans self.to(dtype)) and then
// added in the accumulator: fp32 for 16- and 32-bit floats, int64 for integers and bool. Each
// output is rounded from the accumulator once.
namespace kiln_scan {

enum { kScanWarp = 0, kScanBlock = 1, kScanColumn = 2 };
constexpr int kVec = 4;

template <typename Out>
struct AccOf {
  typedef i64 type;
};
template <>
struct AccOf<float> {
  typedef float type;
};
template <>
struct AccOf<kiln_half> {
  typedef float type;
};
template <>
struct AccOf<kiln_bf16> {
  typedef float type;
};
template <>
struct AccOf<double> {
  typedef double type;
};

template <typename In, typename Out, typename A>
__device__ __forceinline__ A load(const In* x, i64 at) {
  return kiln_lib::convert<A>(kiln_lib::convert<Out>(x[at]));
}

// Inclusive scan over the warp's lanes (Kogge-Stone: five shuffles).
template <typename A>
__device__ __forceinline__ A warp_scan(A v, int lane) {
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    const A u = __shfl_up_sync(0xffffffffu, v, d);
    if (lane >= d) v += u;
  }
  return v;
}

// Scans the warp's segment [start, start + 32 * kVec) of a row: v[j] becomes the sum of the
// segment's elements up to element start + 32 * j + lane. Returns the segment's total (in every
// lane). Elements past n count as zero.
template <typename In, typename Out, typename A>
__device__ __forceinline__ A scan_segment(const In* x, i64 xs, i64 n, i64 start, int lane,
                                          A (&v)[kVec]) {
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const i64 k = start + 32 * j + lane;
    v[j] = k < n ? load<In, Out, A>(x, k * xs) : (A)0;
  }
#pragma unroll
  for (int j = 0; j < kVec; ++j) v[j] = warp_scan(v[j], lane);
  A total = 0;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const A part = __shfl_sync(0xffffffffu, v[j], 31);
    v[j] += total;
    total += part;
  }
  return total;
}

template <typename Out, typename A>
__device__ __forceinline__ void store_segment(Out* y, i64 ys, i64 n, i64 start, int lane,
                                              const A (&v)[kVec], A prefix) {
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const i64 k = start + 32 * j + lane;
    if (k < n) y[k * ys] = kiln_lib::convert<Out>(v[j] + prefix);
  }
}

template <typename In, typename Out>
__device__ void scan_rows_warp(const KTensor& in, const KTensor& out, i64 rows, i64 n, i64 xs,
                               i64 ys) {
  typedef typename AccOf<Out>::type A;
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (i64 r = (i64)blockIdx.x * warps + (threadIdx.x >> 5); r < rows;
       r += (i64)gridDim.x * warps) {
    i64 xo, yo;
    kiln_lib::offsets2<u64>(in, out, (u64)r, xo, yo);
    const In* x = ktensor_ptr<In>(in) + xo;
    Out* y = ktensor_ptr<Out>(out) + yo;
    A carry = 0;
    for (i64 start = 0; start < n; start += 32 * kVec) {
      A v[kVec];
      const A total = scan_segment<In, Out, A>(x, xs, n, start, lane, v);
      store_segment<Out, A>(y, ys, n, start, lane, v, carry);
      carry += total;
    }
  }
}

template <typename In, typename Out>
__device__ void scan_rows_block(const KTensor& in, const KTensor& out, i64 rows, i64 n, i64 xs,
                                i64 ys) {
  typedef typename AccOf<Out>::type A;
  __shared__ A totals[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  const i64 step = (i64)warps * 32 * kVec;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 xo, yo;
    kiln_lib::offsets2<u64>(in, out, (u64)r, xo, yo);
    const In* x = ktensor_ptr<In>(in) + xo;
    Out* y = ktensor_ptr<Out>(out) + yo;
    A carry = 0;
    for (i64 first = 0; first < n; first += step) {
      const i64 start = first + (i64)warp * 32 * kVec;
      A v[kVec];
      const A total = scan_segment<In, Out, A>(x, xs, n, start, lane, v);
      if (lane == 0) totals[warp] = total;
      __syncthreads();
      const A mine = lane < warps ? totals[lane] : (A)0;
      const A inclusive = warp_scan(mine, lane);
      A exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
      if (lane == 0) exclusive = 0;
      const A before = __shfl_sync(0xffffffffu, exclusive, warp);
      const A all = __shfl_sync(0xffffffffu, inclusive, warps - 1);
      store_segment<Out, A>(y, ys, n, start, lane, v, carry + before);
      carry += all;
      __syncthreads();  // the next step writes `totals` again
    }
  }
}

template <typename In, typename Out>
__device__ void scan_columns(const KTensor& in, const KTensor& out, i64 rows, i64 n, i64 xs,
                             i64 ys) {
  typedef typename AccOf<Out>::type A;
  for (i64 r = (i64)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (i64)gridDim.x * blockDim.x) {
    i64 xo, yo;
    kiln_lib::offsets2<u64>(in, out, (u64)r, xo, yo);
    const In* x = ktensor_ptr<In>(in) + xo;
    Out* y = ktensor_ptr<Out>(out) + yo;
    A acc = 0;
#pragma unroll 4
    for (i64 k = 0; k < n; ++k) {
      acc += load<In, Out, A>(x, k * xs);
      y[k * ys] = kiln_lib::convert<Out>(acc);
    }
  }
}

template <typename In, typename Out>
__device__ void cumsum(const KTensor& in, const KTensor& out, i64 rows, i64 n, i64 xs, i64 ys,
                       int mode) {
  if (mode == kScanColumn) {
    scan_columns<In, Out>(in, out, rows, n, xs, ys);
  } else if (mode == kScanBlock) {
    scan_rows_block<In, Out>(in, out, rows, n, xs, ys);
  } else {
    scan_rows_warp<In, Out>(in, out, rows, n, xs, ys);
  }
}

}  // namespace kiln_scan
