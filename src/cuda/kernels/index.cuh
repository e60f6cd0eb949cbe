// Advanced indexing (aten.index.Tensor): out = in[i0, :, i2, ...] with int64 or int32 index
// tensors. The host lays every operand over the output's dims (coalesced): `in` steps through the
// output dims that keep one of its dims and has stride 0 along the broadcast index dims; each
// index tensor steps through the broadcast index dims only. A thread per output element then adds
// each picked index value times the stride of the dim it picks. Negative indices wrap once; an
// index still outside [0, size) writes zero (as the gathers in gather.cuh: never a fault).
namespace kiln_index {

// The index tensors (mirrored by IndexOperands in kernel_library_index.cc), passed by value.
struct Operands {
  const char* data[KILN_MAX_DIMS];            // element 0 of each index tensor
  i64 strides[KILN_MAX_DIMS][KILN_MAX_DIMS];  // [k][d]: index k's stride along output dim d
  i64 size[KILN_MAX_DIMS];                    // the size of the input dim index k picks
  i64 stride[KILN_MAX_DIMS];                  // and its stride
  int wide[KILN_MAX_DIMS];                    // 1: int64 values, 0: int32
  int count;
  int pad_;
};

// Loops over k are unrolled to KILN_MAX_DIMS so that the per-index offsets stay in registers.
template <typename T, typename Idx>
__device__ void index_loop(const KTensor& in, const KTensor& out, const Operands& ix, Idx total) {
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  const T zero = kiln_lib::convert<T>(0);
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    Idx rest = linear;
    i64 xo = 0, yo = 0;
    i64 io[KILN_MAX_DIMS];
#pragma unroll
    for (int k = 0; k < KILN_MAX_DIMS; ++k) io[k] = 0;
    for (int d = out.rank - 1; d >= 0; --d) {
      const Idx size = (Idx)out.sizes[d];
      const i64 i = (i64)(rest % size);
      rest /= size;
      xo += i * in.strides[d];
      yo += i * out.strides[d];
#pragma unroll
      for (int k = 0; k < KILN_MAX_DIMS; ++k) {
        if (k < ix.count) io[k] += i * ix.strides[k][d];
      }
    }
    bool valid = true;
#pragma unroll
    for (int k = 0; k < KILN_MAX_DIMS; ++k) {
      if (k < ix.count) {
        i64 v = ix.wide[k] ? reinterpret_cast<const i64*>(ix.data[k])[io[k]]
                           : (i64)reinterpret_cast<const int*>(ix.data[k])[io[k]];
        if (v < 0) v += ix.size[k];
        valid = valid && v >= 0 && v < ix.size[k];
        xo += v * ix.stride[k];
      }
    }
    y[yo] = valid ? x[xo] : zero;
  }
}

template <typename T>
__device__ void index(const KTensor& in, const KTensor& out, const Operands& ix, i64 total) {
  if (total < 2147483648LL) {
    index_loop<T, unsigned int>(in, out, ix, (unsigned int)total);
  } else {
    index_loop<T, u64>(in, out, ix, (u64)total);
  }
}

}  // namespace kiln_index
