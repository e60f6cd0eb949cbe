// Movement: the ops that build a new tensor from elements of their input moved to new places
// (constant_pad_nd, flip, repeat, pixel_shuffle, pixel_unshuffle), as one gather. A thread per
// output element takes its coordinates, maps them to the input element it holds (Op picks the
// mapping), and copies that element, or writes the fill value where the mapping falls outside
// the input (pad's border). The input is read only at coordinates inside its sizes, so a bad
// parameter can give a wrong value but never a read out of bounds.
namespace kiln_move {

// Which mapping; the host's MoveOp (kernel_library_movement.h) numbers them the same way.
enum { kPad = 0, kFlip = 1, kRepeat = 2, kPixelShuffle = 3, kPixelUnshuffle = 4 };

// The host mirror is MoveParams (kernel_library_movement.cc): keep the two in step.
struct Params {
  // Per output dim: pad, the elements added before it (negative: cropped); flip, 1 where flipped.
  i64 per_dim[KILN_MAX_DIMS];
  i64 fill_integer;     // the fill value as the program wrote it: an integer,
  double fill_floating;  // or a float (fill_is_integer says which)
  i64 factor;           // pixel (un)shuffle's upscale factor r
  int lead;             // repeat: leading output dims the input lacks
  int fill_is_integer;
};

// The offset in `in` of the element output coordinate `c` (dim d) reads, or false where it reads
// none. Dims are visited last to first; the pixel ops gather their last three coordinates first.
template <int Op>
__device__ __forceinline__ bool map_dim(const KTensor& in, const Params& p, int d, i64 c,
                                        i64& offset) {
  if constexpr (Op == kPad) {
    const i64 s = c - p.per_dim[d];
    offset += s * in.strides[d];
    return s >= 0 && s < in.sizes[d];
  } else if constexpr (Op == kFlip) {
    offset += (p.per_dim[d] ? in.sizes[d] - 1 - c : c) * in.strides[d];
    return true;
  } else if constexpr (Op == kRepeat) {
    if (d < p.lead) return true;  // a new leading dim: every index reads the same input
    const int k = d - p.lead;
    offset += (c % in.sizes[k]) * in.strides[k];
    return true;
  } else {
    offset += c * in.strides[d];  // a batch dim of the pixel ops
    return true;
  }
}

// pixel_shuffle: out[..., c, y, x] = in[..., c*r*r + (y%r)*r + x%r, y/r, x/r];
// pixel_unshuffle: out[..., k, h, w] = in[..., k/(r*r), h*r + (k/r)%r, w*r + k%r].
template <int Op>
__device__ __forceinline__ i64 pixel_offset(const KTensor& in, i64 r, i64 c, i64 y, i64 x) {
  const int b = in.rank - 3;
  if constexpr (Op == kPixelShuffle) {
    return (c * r * r + (y % r) * r + x % r) * in.strides[b] + (y / r) * in.strides[b + 1] +
           (x / r) * in.strides[b + 2];
  } else {
    return (c / (r * r)) * in.strides[b] + (y * r + (c / r) % r) * in.strides[b + 1] +
           (x * r + c % r) * in.strides[b + 2];
  }
}

template <int Op, typename T, typename Idx>
__device__ void move_loop(const KTensor& in, const KTensor& out, const Params& p, Idx total) {
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  const T fill = p.fill_is_integer ? kiln_lib::convert<T>(p.fill_integer)
                                   : kiln_lib::convert<T>(p.fill_floating);
  constexpr bool kPixel = Op == kPixelShuffle || Op == kPixelUnshuffle;
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    Idx rest = linear;
    i64 yo = 0, xo = 0;
    i64 channel = 0, row = 0, column = 0;  // the pixel ops' last three coordinates
    bool inside = true;
    for (int d = out.rank - 1; d >= 0; --d) {
      const Idx size = (Idx)out.sizes[d];
      const i64 c = (i64)(rest % size);
      rest /= size;
      yo += c * out.strides[d];
      if (kPixel && d >= out.rank - 3) {
        const int k = d - (out.rank - 3);
        (k == 2 ? column : k == 1 ? row : channel) = c;
      } else {
        inside = map_dim<Op>(in, p, d, c, xo) && inside;
      }
    }
    if constexpr (kPixel) xo += pixel_offset<Op>(in, p.factor, channel, row, column);
    if (inside) {
      y[yo] = x[xo];
    } else {
      y[yo] = fill;
    }
  }
}

template <int Op, typename T>
__device__ void move(const KTensor& in, const KTensor& out, const Params& p, i64 total) {
  move_loop<Op, T, unsigned int>(in, out, p, (unsigned int)total);  // < 2^31: launch_move checks
}

}  // namespace kiln_move
