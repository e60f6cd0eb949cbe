// The device-side ABI shared by every kernel kiln compiles with NVRTC: tensor references, the
// 16-bit float types and conversions, index arithmetic. It uses no headers, so NVRTC needs no CUDA
// include directory at build time. Embedded by kernel_sources.cc; keep it free of `)"` sequences.
typedef long long i64;
typedef unsigned long long u64;
#define KILN_MAX_DIMS 8

// A tensor as kernels see it: data pointer (element 0 of the view), sizes and strides in
// elements. Mirrors kiln::cuda::KTensor on the host (kernel_library.h); passed by value.
struct KTensor {
  char* data;
  i64 sizes[KILN_MAX_DIMS];
  i64 strides[KILN_MAX_DIMS];
  int rank;
  int pad_;
};

struct kiln_half { unsigned short bits; };
struct kiln_bf16 { unsigned short bits; };

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(double x) { return (float)x; }
__device__ __forceinline__ float to_float(kiln_half x) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
  return f;
}
__device__ __forceinline__ float to_float(kiln_bf16 x) {
  return __uint_as_float(((unsigned int)x.bits) << 16);
}
__device__ __forceinline__ float to_float(i64 x) { return (float)x; }
__device__ __forceinline__ float to_float(int x) { return (float)x; }
__device__ __forceinline__ float to_float(short x) { return (float)x; }
__device__ __forceinline__ float to_float(signed char x) { return (float)x; }
__device__ __forceinline__ float to_float(unsigned char x) { return (float)x; }
__device__ __forceinline__ float to_float(bool x) { return x ? 1.0f : 0.0f; }

template <typename T> struct Conv;
template <> struct Conv<float> { __device__ static float from(float x) { return x; } };
template <> struct Conv<double> { __device__ static double from(float x) { return x; } };
template <> struct Conv<kiln_half> {
  __device__ static kiln_half from(float x) {
    kiln_half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
    return h;
  }
};
template <> struct Conv<kiln_bf16> {
  __device__ static kiln_bf16 from(float x) {
    kiln_bf16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
    return h;
  }
};
template <> struct Conv<i64> { __device__ static i64 from(float x) { return (i64)x; } };
template <> struct Conv<int> { __device__ static int from(float x) { return (int)x; } };
template <> struct Conv<short> { __device__ static short from(float x) { return (short)x; } };
template <> struct Conv<signed char> {
  __device__ static signed char from(float x) { return (signed char)x; }
};
template <> struct Conv<unsigned char> {
  __device__ static unsigned char from(float x) { return (unsigned char)x; }
};
template <> struct Conv<bool> { __device__ static bool from(float x) { return x != 0.0f; } };
template <typename T> __device__ __forceinline__ T from_float(float x) { return Conv<T>::from(x); }

// Element `linear` of t in row-major order over t.sizes, as an element offset (stride-aware).
__device__ __forceinline__ i64 ktensor_offset(const KTensor& t, i64 linear) {
  i64 offset = 0;
  for (int d = t.rank - 1; d >= 0; --d) {
    const i64 size = t.sizes[d];
    const i64 i = linear % size;
    linear /= size;
    offset += i * t.strides[d];
  }
  return offset;
}
template <typename T> __device__ __forceinline__ T* ktensor_ptr(const KTensor& t) {
  return reinterpret_cast<T*>(t.data);
}
__device__ __forceinline__ i64 ktensor_numel(const KTensor& t) {
  i64 n = 1;
  for (int d = 0; d < t.rank; ++d) n *= t.sizes[d];
  return n;
}
