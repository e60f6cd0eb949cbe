// grid_sampler_2d: samples input [N, C, H, W] at the points of grid [N, Ho, Wo, 2] into
// out [N, C, Ho, Wo], any strides. The arithmetic is that of PyTorch's CUDA kernel
// (GridSampler.cu / GridSampler.cuh), which differs from its CPU one: coordinates are in fp32
// whatever the storage type, a coordinate that is not finite (or past the int range) after
// padding becomes -100 (outside the image: zeros padding then reads nothing, so a NaN grid point
// gives 0, not NaN), and bicubic pads each tap coordinate in the storage type (fp16 and bf16 round
// it). Contract: kernel_library_grid_sample.h.
namespace kiln_grid_sample {

// The storage type's rounding of an fp32 value (none for float): eager's bicubic taps pass their
// coordinates through scalar_t, and c10's Half/BFloat16 round every arithmetic result.
template <typename T>
__device__ __forceinline__ float in_type(float v) {
  return to_float(from_float<T>(v));
}

__device__ __forceinline__ bool finite(float v) {
  return (__float_as_uint(v) & 0x7f800000u) != 0x7f800000u;
}

// [-1, 1] to pixel coordinates: corner pixel centres with align_corners, the image edges without.
__device__ __forceinline__ float unnormalize(float coord, int size, bool align_corners) {
  if (align_corners) return ((coord + 1.f) / 2) * (size - 1);
  return ((coord + 1.f) * size - 1) / 2;
}

// Into [0, size - 1]; fmaxf makes a NaN 0.
template <typename T>
__device__ __forceinline__ float clip(float x, int size) {
  return in_type<T>(fminf(in_type<T>((float)(size - 1)), fmaxf(x, 0.f)));
}

// Reflects x about the bounds twice_low / 2 and twice_high / 2 (ints so that half pixels are
// exact), each step rounded to T as eager's scalar_t arithmetic rounds it.
template <typename T>
__device__ __forceinline__ float reflect(float x, int twice_low, int twice_high) {
  if (twice_low == twice_high) return 0.f;
  const float low = in_type<T>(in_type<T>((float)twice_low) / 2.f);
  const float span = in_type<T>(in_type<T>((float)(twice_high - twice_low)) / 2.f);
  x = in_type<T>(fabsf(in_type<T>(x - low)));
  const float extra = in_type<T>(fmodf(x, span));
  const int flips = (int)floorf(in_type<T>(x / span));
  return flips % 2 == 0 ? in_type<T>(extra + low) : in_type<T>(in_type<T>(span - extra) + low);
}

// Eager's compute_coordinates: padding, then -100 for what an int cannot hold (see #35506 in
// PyTorch): every tap of such a point lies outside the image.
template <int kPadding, typename T>
__device__ __forceinline__ float pad_coordinate(float x, int size, bool align_corners) {
  if (kPadding == 1) {
    x = clip<T>(x, size);
  } else if (kPadding == 2) {
    x = align_corners ? reflect<T>(x, 0, 2 * (size - 1)) : reflect<T>(x, -1, 2 * size - 1);
    x = clip<T>(x, size);
  }
  if (x > 2147483646.f || x < -2147483648.f || !finite(x)) return -100.f;
  return x;
}

// Bicubic weights of PyTorch's upsampling (A = -0.75) for the taps at -1, 0, 1, 2 from t.
__device__ __forceinline__ float cubic_near(float x, float a) {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}
__device__ __forceinline__ float cubic_far(float x, float a) {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}
__device__ __forceinline__ float cubic_interp(float v0, float v1, float v2, float v3, float t) {
  const float a = -0.75f;
  const float c0 = cubic_far(t + 1.f, a);
  const float c1 = cubic_near(t, a);
  const float u = 1.f - t;
  const float c2 = cubic_near(u, a);
  const float c3 = cubic_far(u + 1.f, a);
  return v0 * c0 + v1 * c1 + v2 * c2 + v3 * c3;
}

struct Plane {
  i64 h, w, sh, sw;
  __device__ __forceinline__ bool inside(i64 y, i64 x) const {
    return y >= 0 && y < h && x >= 0 && x < w;
  }
};

// One bicubic tap: its coordinates padded in T, then truncated; outside the image reads 0.
template <int kPadding, typename T>
__device__ __forceinline__ float cubic_tap(const T* p, const Plane& pl, float x, float y,
                                           bool align_corners) {
  const int ix = (int)pad_coordinate<kPadding, T>(in_type<T>(x), (int)pl.w, align_corners);
  const int iy = (int)pad_coordinate<kPadding, T>(in_type<T>(y), (int)pl.h, align_corners);
  return pl.inside(iy, ix) ? to_float(p[iy * pl.sh + ix * pl.sw]) : 0.f;
}

// kMode: 0 bilinear, 1 nearest, 2 bicubic; kPadding: 0 zeros, 1 border, 2 reflection. A thread
// per output point (n, h, w), looping over the channels as eager does.
template <int kMode, int kPadding, typename T>
__device__ void grid_sample(const KTensor& in, const KTensor& grid, const KTensor& out,
                            bool align_corners, i64 total) {
  const T* x = ktensor_ptr<T>(in);
  const T* g = ktensor_ptr<T>(grid);
  T* y = ktensor_ptr<T>(out);
  const i64 channels = in.sizes[1];
  const Plane pl{in.sizes[2], in.sizes[3], in.strides[2], in.strides[3]};
  const int in_h = (int)pl.h, in_w = (int)pl.w;
  const i64 out_h = grid.sizes[1], out_w = grid.sizes[2];
  for (i64 linear = (i64)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (i64)gridDim.x * blockDim.x) {
    const i64 w = linear % out_w;
    const i64 h = (linear / out_w) % out_h;
    const i64 n = linear / (out_h * out_w);
    const T* point = g + n * grid.strides[0] + h * grid.strides[1] + w * grid.strides[2];
    const float gx = to_float(point[0]), gy = to_float(point[grid.strides[3]]);
    const T* plane = x + n * in.strides[0];
    T* dst = y + n * out.strides[0] + h * out.strides[2] + w * out.strides[3];
    if (kMode == 2) {
      // Unpadded point; each tap is padded on its own.
      const float ix = unnormalize(gx, in_w, align_corners);
      const float iy = unnormalize(gy, in_h, align_corners);
      const float x0 = floorf(ix), y0 = floorf(iy);
      const float tx = ix - x0, ty = iy - y0;
      for (i64 c = 0; c < channels; ++c, plane += in.strides[1], dst += out.strides[1]) {
        float rows[4];
        for (int i = 0; i < 4; ++i) {
          const float ty_i = y0 - 1 + (float)i;
          rows[i] = cubic_interp(cubic_tap<kPadding, T>(plane, pl, x0 - 1, ty_i, align_corners),
                                 cubic_tap<kPadding, T>(plane, pl, x0 + 0, ty_i, align_corners),
                                 cubic_tap<kPadding, T>(plane, pl, x0 + 1, ty_i, align_corners),
                                 cubic_tap<kPadding, T>(plane, pl, x0 + 2, ty_i, align_corners),
                                 tx);
        }
        *dst = from_float<T>(cubic_interp(rows[0], rows[1], rows[2], rows[3], ty));
      }
      continue;
    }
    // Bilinear and nearest pad the point itself, in fp32.
    const float ix = pad_coordinate<kPadding, float>(unnormalize(gx, in_w, align_corners), in_w,
                                                     align_corners);
    const float iy = pad_coordinate<kPadding, float>(unnormalize(gy, in_h, align_corners), in_h,
                                                     align_corners);
    if (kMode == 1) {
      const i64 px = (i64)rintf(ix), py = (i64)rintf(iy);
      const bool inside = pl.inside(py, px);
      const i64 at = inside ? py * pl.sh + px * pl.sw : 0;
      for (i64 c = 0; c < channels; ++c, plane += in.strides[1], dst += out.strides[1]) {
        *dst = inside ? plane[at] : from_float<T>(0.f);
      }
      continue;
    }
    const i64 x0 = (i64)floorf(ix), y0 = (i64)floorf(iy);
    const i64 x1 = x0 + 1, y1 = y0 + 1;
    // Eager's surfaces, each from the opposite corner.
    const float nw = ((float)x1 - ix) * ((float)y1 - iy);
    const float ne = (ix - (float)x0) * ((float)y1 - iy);
    const float sw = ((float)x1 - ix) * (iy - (float)y0);
    const float se = (ix - (float)x0) * (iy - (float)y0);
    const bool in_nw = pl.inside(y0, x0), in_ne = pl.inside(y0, x1);
    const bool in_sw = pl.inside(y1, x0), in_se = pl.inside(y1, x1);
    for (i64 c = 0; c < channels; ++c, plane += in.strides[1], dst += out.strides[1]) {
      // Only taps inside the image are read, in eager's order: a NaN pixel under a tap of
      // weight 0 still gives NaN.
      float acc = 0.f;
      if (in_nw) acc += to_float(plane[y0 * pl.sh + x0 * pl.sw]) * nw;
      if (in_ne) acc += to_float(plane[y0 * pl.sh + x1 * pl.sw]) * ne;
      if (in_sw) acc += to_float(plane[y1 * pl.sh + x0 * pl.sw]) * sw;
      if (in_se) acc += to_float(plane[y1 * pl.sh + x1 * pl.sw]) * se;
      *dst = from_float<T>(acc);
    }
  }
}

}  // namespace kiln_grid_sample
