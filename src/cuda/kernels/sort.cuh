// Sort and topk along one dim (kernel_library_sort.h). The host splits the input into rows (the
// other dims, coalesced, with the two outputs' views beside them) and the sorted dim (n elements,
// stride xs in the input; k written, stride vs in `values` and is in `indices`).
//
// A block per row: each element becomes a 64-bit key whose unsigned order is PyTorch's order of
// the values (reversed for descending), paired with its index; a bitonic network sorts the
// (key, index) pairs in shared memory, the row padded to p (a power of two) with pairs that sort
// last. Pairs compare by key, then index: every pair differs, so the network's result is the one
// total order, which is the stable sort's. The first k pairs give the outputs; values are read
// back from the input at their index, so they are the input's elements bit for bit.
namespace kiln_sort {

// The key of a value: unsigned order of keys == PyTorch's ascending order of values. Floats go
// through fp32 (exact for 16-bit floats); -0.0 becomes 0.0 and every NaN one NaN, above +inf;
// then the usual flip (negatives: all bits, positives: the sign bit) makes the IEEE order an
// unsigned one. Integers offset by 2^63 (signed order as unsigned); bool is 0 or 1.
template <typename T>
__device__ __forceinline__ u64 order_key(T v) {
  if constexpr (kiln_lib::Kind<T>::value == 0) {
    const float f = to_float(v);
    unsigned int bits = __float_as_uint(f);
    if (f != f) {
      bits = 0x7fc00000u;
    } else if (f == 0.0f) {
      bits = 0u;
    }
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return (u64)bits;
  } else if constexpr (kiln_lib::Kind<T>::value == 1) {
    const double d = (double)v;
    u64 bits = (u64)__double_as_longlong(d);
    if (d != d) {
      bits = 0x7ff8000000000000ull;
    } else if (d == 0.0) {
      bits = 0ull;
    }
    return (bits & 0x8000000000000000ull) ? ~bits : (bits | 0x8000000000000000ull);
  } else if constexpr (kiln_lib::Kind<T>::value == 2) {
    return (u64)(i64)v ^ 0x8000000000000000ull;
  } else {
    return v ? 1ull : 0ull;
  }
}

// Whether pair a comes before pair b.
__device__ __forceinline__ bool before(u64 key_a, int index_a, u64 key_b, int index_b) {
  return key_a < key_b || (key_a == key_b && index_a < index_b);
}

// Sorts p pairs (p a power of two) in shared memory, the whole block taking part. Each step
// compares p / 2 disjoint pairs (i, i + stride); within a run of `size`, runs whose bit `size`
// of i is clear sort up and the others down, so that each merge sees a bitonic sequence; the
// last runs (size == p) all sort up.
__device__ __forceinline__ void bitonic_sort(u64* keys, int* indices, int p) {
  const int half = p >> 1;
  for (int size = 2; size <= p; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < half; t += blockDim.x) {
        const int i = 2 * t - (t & (stride - 1));
        const int j = i + stride;
        const u64 ki = keys[i], kj = keys[j];
        const int ii = indices[i], ij = indices[j];
        const bool up = (i & size) == 0;
        if (before(kj, ij, ki, ii) == up) {
          keys[i] = kj;
          keys[j] = ki;
          indices[i] = ij;
          indices[j] = ii;
        }
      }
      __syncthreads();
    }
  }
}

// The three views' element offsets for row r (the rows' coalesced dims).
__device__ __forceinline__ void row_offsets(const KTensor& in, const KTensor& values,
                                            const KTensor& indices, i64 r, i64& xo, i64& vo,
                                            i64& io) {
  xo = 0;
  vo = 0;
  io = 0;
  for (int d = in.rank - 1; d >= 0; --d) {
    const i64 size = in.sizes[d];
    const i64 c = r % size;
    r /= size;
    xo += c * in.strides[d];
    vo += c * values.strides[d];
    io += c * indices.strides[d];
  }
}

// The pairs live in a dynamic shared buffer of p * (8 + 4) bytes, or, for rows longer than a
// block's shared memory holds, in `global_pairs`: p * (8 + 4) bytes per block of the grid (the
// barriers make a block's global writes visible to its own threads as they do shared ones).
// n <= p, k <= n, p < 2^31. `values` or `indices` with null data is not written.
template <typename T>
__device__ void sort_rows(const KTensor& in, const KTensor& values, const KTensor& indices,
                          i64 rows, int n, int k, int p, i64 xs, i64 vs, i64 is,
                          int descending, u64* global_pairs) {
  extern __shared__ u64 kiln_sort_shared[];
  u64* keys = global_pairs ? reinterpret_cast<u64*>(reinterpret_cast<char*>(global_pairs) +
                                                    (i64)blockIdx.x * p * 12)
                           : kiln_sort_shared;
  int* index = reinterpret_cast<int*>(keys + p);
  const T* x_base = ktensor_ptr<T>(in);
  T* v_base = ktensor_ptr<T>(values);
  i64* i_base = ktensor_ptr<i64>(indices);
  const u64 flip = descending ? ~0ull : 0ull;
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
    i64 xo, vo, io;
    row_offsets(in, values, indices, r, xo, vo, io);
    const T* x = x_base + xo;
    for (int i = threadIdx.x; i < p; i += blockDim.x) {
      // Padding: the largest key and an index past every element's, so it sorts last.
      keys[i] = i < n ? order_key<T>(x[i * xs]) ^ flip : ~0ull;
      index[i] = i;
    }
    __syncthreads();
    bitonic_sort(keys, index, p);
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
      const int from = index[j];
      if (v_base) v_base[vo + j * vs] = x[from * xs];
      if (i_base) i_base[io + j * is] = (i64)from;
    }
    __syncthreads();  // the next row writes the shared pairs again
  }
}

}  // namespace kiln_sort
