// Gathers: embedding (rows of a [V, D] table picked by indices of any shape) and index_select.
// An index outside the table writes zeros; the kernels never fault on a bad index.
namespace kiln_gather {

// Embedding: blockDim.y rows per block, threadIdx.x walking a row as `Unit`s (the widest access,
// up to 16 bytes, that the row size and both pointers allow). Rows are copied as raw bytes.
template <typename Unit, typename I>
__device__ void embedding_rows(const char* weight, const KTensor& indices, char* out, i64 vocab,
                               i64 row_bytes, i64 rows) {
  const Unit* table = reinterpret_cast<const Unit*>(weight);
  Unit* y = reinterpret_cast<Unit*>(out);
  const i64 units = row_bytes / (i64)sizeof(Unit);
  const I* index = ktensor_ptr<I>(indices);
  for (i64 r = (i64)blockIdx.x * blockDim.y + threadIdx.y; r < rows;
       r += (i64)gridDim.x * blockDim.y) {
    const i64 k = (i64)index[ktensor_offset(indices, r)];
    Unit* dst = y + r * units;
    if (k >= 0 && k < vocab) {
      const Unit* src = table + k * units;
      for (i64 u = threadIdx.x; u < units; u += blockDim.x) dst[u] = src[u];
    } else {
      const Unit zero{};
      for (i64 u = threadIdx.x; u < units; u += blockDim.x) dst[u] = zero;
    }
  }
}

template <typename I>
__device__ void embedding(const char* weight, const KTensor& indices, char* out, i64 vocab,
                          i64 row_bytes, i64 rows, int unit) {
  switch (unit) {
    case 16: embedding_rows<uint4, I>(weight, indices, out, vocab, row_bytes, rows); break;
    case 8: embedding_rows<uint2, I>(weight, indices, out, vocab, row_bytes, rows); break;
    case 4: embedding_rows<unsigned int, I>(weight, indices, out, vocab, row_bytes, rows); break;
    case 2: embedding_rows<unsigned short, I>(weight, indices, out, vocab, row_bytes, rows); break;
    default: embedding_rows<unsigned char, I>(weight, indices, out, vocab, row_bytes, rows); break;
  }
}

// index_select: a thread per output element. The index along `dim` wraps once when negative.
template <typename T, typename I, typename Idx>
__device__ void index_select_loop(const KTensor& in, const KTensor& out, const I* index,
                                  i64 index_stride, int dim, Idx total) {
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  const T zero = kiln_lib::convert<T>(0);
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    Idx rest = linear;
    i64 xo = 0, yo = 0;
    bool valid = true;
    for (int d = out.rank - 1; d >= 0; --d) {
      const Idx size = (Idx)out.sizes[d];
      const Idx i = rest % size;
      rest /= size;
      yo += (i64)i * out.strides[d];
      if (d == dim) {
        i64 k = (i64)index[(i64)i * index_stride];
        if (k < 0) k += in.sizes[d];
        valid = k >= 0 && k < in.sizes[d];
        xo += k * in.strides[d];
      } else {
        xo += (i64)i * in.strides[d];
      }
    }
    y[yo] = valid ? x[xo] : zero;
  }
}

template <typename T, typename I>
__device__ void index_select(const KTensor& in, const KTensor& out, const I* index,
                             i64 index_stride, int dim, i64 total) {
  if (total < 2147483648LL) {
    index_select_loop<T, I, unsigned int>(in, out, index, index_stride, dim, (unsigned int)total);
  } else {
    index_select_loop<T, I, u64>(in, out, index, index_stride, dim, (u64)total);
  }
}

}  // namespace kiln_gather
