// _embedding_bag: sums, means or maxima of weight rows over bags of indices, with the four
// outputs eager's CUDA kernel gives (EmbeddingBag.cu), which differ from its CPU kernel's: bag 0
// starts at index 0 whatever offsets[0] says, the last bag runs to the end of the indices (with
// include_last_offset too), offset2bag has an element per index, bag_size counts each bag's
// non-padding indices in every mode, and max_indices is -1 for a bag with nothing to take.
// A thread per (bag, feature), adding in fp32 in index order: deterministic, and eager's order.
// Contract: kernel_library_embedding_bag.h.
namespace kiln_embedding_bag {

// The host's BagArgs (kernel_library_embedding_bag.cc).
struct BagArgs {
  i64 bags;           // bags computed (offsets.size(0), less one with include_last_offset)
  i64 bag_size_len;   // bag_size's elements: offsets.size(0)
  i64 rows;           // weight rows: an index outside [0, rows) reads zeros
  i64 padding_idx;
  int has_weights;    // per_sample_weights given
  int pad_;
};

// out [bags, d], offset2bag [n], bag_size [offsets.size(0)], max_indices [bags, d] (max mode);
// an output whose data is null is not written. weight [rows, d], indices [n], offsets and
// per_sample_weights [n]: any strides. kMode: 0 sum, 1 mean, 2 max; I: the index type.
template <int kMode, typename T, typename I>
__device__ void embedding_bag(const KTensor& weight, const KTensor& indices,
                              const KTensor& offsets, const KTensor& psw, const KTensor& out,
                              const KTensor& offset2bag, const KTensor& bag_size,
                              const KTensor& max_indices, const BagArgs& a, i64 total) {
  const T* w = ktensor_ptr<T>(weight);
  const I* idx = ktensor_ptr<I>(indices);
  const I* off = ktensor_ptr<I>(offsets);
  const T* scale = ktensor_ptr<T>(psw);
  T* y = ktensor_ptr<T>(out);
  I* o2b = ktensor_ptr<I>(offset2bag);
  I* sizes = ktensor_ptr<I>(bag_size);
  I* arg = ktensor_ptr<I>(max_indices);
  const i64 d = weight.sizes[1], n = indices.sizes[0];
  // Eager compares in the index type.
  const I padding = (I)a.padding_idx;
  const i64 start = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (start == 0 && sizes) {
    // include_last_offset's extra element, which eager leaves unwritten: 0 here.
    for (i64 b = a.bags; b < a.bag_size_len; ++b) sizes[b * bag_size.strides[0]] = (I)0;
  }
  for (i64 linear = start; linear < total; linear += (i64)gridDim.x * blockDim.x) {
    const i64 f = linear % d;
    const i64 bag = linear / d;
    // Eager reads offsets as they are; kiln keeps them inside the indices (eager would fault).
    i64 begin = bag == 0 ? 0 : (i64)off[bag * offsets.strides[0]];
    i64 end = bag < a.bags - 1 ? (i64)off[(bag + 1) * offsets.strides[0]] : n;
    begin = begin < 0 ? 0 : begin > n ? n : begin;
    end = end > n ? n : end;
    const T* column = w + f * weight.strides[1];
    float acc = 0.f;
    i64 count = 0, word = -1;
    for (i64 e = begin; e < end; ++e) {
      const I row = idx[e * indices.strides[0]];
      const bool pad = row == padding;
      // An index outside the table (eager's device assert) reads 0.
      const bool inside = (i64)row >= 0 && (i64)row < a.rows;
      const float v = inside ? to_float(column[(i64)row * weight.strides[0]]) : 0.f;
      if (kMode == 2) {
        // The first non-padding value, then strictly greater ones: a NaN is kept only first.
        if (count == 0 || v > acc) {
          acc = pad ? acc : v;
          word = pad ? word : (i64)row;
        }
      } else {
        const float value = pad ? 0.f : v;
        if (a.has_weights) {
          acc += to_float(scale[e * psw.strides[0]]) * value;
        } else {
          acc += value;
        }
      }
      count += pad ? 0 : 1;
      if (f == 0 && o2b) o2b[e * offset2bag.strides[0]] = (I)bag;
    }
    if (kMode == 1 && count != 0) acc = acc / (float)count;
    if (f == 0 && sizes) sizes[bag * bag_size.strides[0]] = (I)count;
    if (kMode == 2 && arg) arg[bag * max_indices.strides[0] + f * max_indices.strides[1]] = (I)word;
    if (y) y[bag * out.strides[0] + f * out.strides[1]] = from_float<T>(acc);
  }
}

}  // namespace kiln_embedding_bag
