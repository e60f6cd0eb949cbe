// Random numbers (kernel_library_random.h): rand, randn, randperm and native_dropout, drawn from
// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011), a counter-based generator: draw i of a launch is the 128-bit block
// philox(counter = offset + i, key = seed), so every thread computes its own draws with no shared
// state, and a launch's numbers depend only on (seed, offset).
//
// The generator state {seed, offset} lives in device memory, one per step: the generating
// kernels read it, and kiln_random_advance (one thread, launched after them on the same stream)
// adds the draws the launch used to the offset. A CUDA graph replaying the pair thus draws new
// numbers each time, and no block of the generating kernel ever sees an advanced offset.
namespace kiln_random {

// The host mirror is kiln::cuda::GeneratorState.
struct State {
  u64 seed;
  u64 offset;
};

struct Block4 {
  unsigned int w[4];
};

// The published Philox4x32 with 10 rounds: each round multiplies words 0 and 2 by the round
// constants, crosses the halves with words 1 and 3 and the round key; the key is bumped by the
// Weyl constants between rounds.
__device__ __forceinline__ Block4 philox4x32_10(Block4 c, unsigned int k0, unsigned int k1) {
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const unsigned int hi0 = __umulhi(0xD2511F53u, c.w[0]), lo0 = 0xD2511F53u * c.w[0];
    const unsigned int hi1 = __umulhi(0xCD9E8D57u, c.w[2]), lo1 = 0xCD9E8D57u * c.w[2];
    const Block4 next = {{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
    c = next;
  }
  return c;
}

// Draw i of a launch under state s: the counter is offset + i (64 bits, the upper words zero).
__device__ __forceinline__ Block4 draw(const State& s, u64 i) {
  const u64 counter = s.offset + i;
  const Block4 c = {{(unsigned int)counter, (unsigned int)(counter >> 32), 0u, 0u}};
  return philox4x32_10(c, (unsigned int)s.seed, (unsigned int)(s.seed >> 32));
}

// Mantissa bits of T with the implicit one: a uniform keeps that many random bits, so it is a
// T exactly and below 1 (a float draw rounded to half could round up to 1).
template <typename T> struct UniformBits { static constexpr int value = 24; };
template <> struct UniformBits<kiln_half> { static constexpr int value = 11; };
template <> struct UniformBits<kiln_bf16> { static constexpr int value = 8; };

// The top `bits` of w as a multiple of 2^-bits in [0, 1).
template <int bits>
__device__ __forceinline__ float uniform(unsigned int w) {
  return (float)(w >> (32 - bits)) * (1.0f / (float)(1u << bits));
}

// Element i of out in row-major order (out coalesced by the host).
template <typename T>
__device__ __forceinline__ T& at(const KTensor& out, i64 i) {
  return ktensor_ptr<T>(out)[kiln_lib::offset1<i64>(out, i)];
}

// rand: four uniforms per draw, one from each word.
template <typename T>
__device__ void rand(const KTensor& out, i64 n, const State* state) {
  const State s = *state;
  const i64 draws = (n + 3) / 4;
  for (i64 q = blockIdx.x * (i64)blockDim.x + threadIdx.x; q < draws;
       q += (i64)gridDim.x * blockDim.x) {
    const Block4 b = draw(s, (u64)q);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const i64 i = 4 * q + j;
      if (i < n) at<T>(out, i) = from_float<T>(uniform<UniformBits<T>::value>(b.w[j]));
    }
  }
}

// randn: Box-Muller in fp32 on two pairs of words per draw. u1 = 1 - uniform is in (0, 1], so
// the log is finite (|z| <= sqrt(2 * 24 * ln 2) ~ 5.8); sincospif keeps the angle exact in turns.
template <typename T>
__device__ void randn(const KTensor& out, i64 n, const State* state) {
  const State s = *state;
  const i64 draws = (n + 3) / 4;
  for (i64 q = blockIdx.x * (i64)blockDim.x + threadIdx.x; q < draws;
       q += (i64)gridDim.x * blockDim.x) {
    const Block4 b = draw(s, (u64)q);
#pragma unroll
    for (int pair = 0; pair < 2; ++pair) {
      const float u1 = 1.0f - uniform<24>(b.w[2 * pair]);
      const float u2 = uniform<24>(b.w[2 * pair + 1]);
      const float r = sqrtf(-2.0f * logf(u1));
      float sin_t, cos_t;
      sincospif(2.0f * u2, &sin_t, &cos_t);
      const i64 i = 4 * q + 2 * pair;
      if (i < n) at<T>(out, i) = from_float<T>(r * cos_t);
      if (i + 1 < n) at<T>(out, i + 1) = from_float<T>(r * sin_t);
    }
  }
}

// randperm in one block: element i gets the key (51 random bits << 12) | i, keys unique by
// their low bits; a bitonic network sorts the p keys (n padded to a power of two with keys above
// every real one) in shared memory, and the low bits of the sorted keys are the permutation.
// Two keys per draw. Launched with p * 8 bytes of dynamic shared memory; n <= p <= 4096.
template <typename T>
__device__ void randperm(const KTensor& out, int n, int p, const State* state) {
  extern __shared__ u64 kiln_randperm_keys[];
  u64* keys = kiln_randperm_keys;
  const State s = *state;
  for (int q = threadIdx.x; 2 * q < p; q += blockDim.x) {
    Block4 b = {{0u, 0u, 0u, 0u}};
    if (2 * q < n) b = draw(s, (u64)q);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int i = 2 * q + j;
      const u64 bits = ((u64)b.w[2 * j + 1] << 32) | b.w[2 * j];
      if (i < p) keys[i] = i < n ? ((bits >> 13) << 12) | (u64)i : ~0ull;
    }
  }
  __syncthreads();
  const int half = p >> 1;
  for (int size = 2; size <= p; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < half; t += blockDim.x) {
        const int i = 2 * t - (t & (stride - 1));
        const int j = i + stride;
        const u64 ki = keys[i], kj = keys[j];
        const bool up = (i & size) == 0;
        if ((kj < ki) == up) {
          keys[i] = kj;
          keys[j] = ki;
        }
      }
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    at<T>(out, i) = kiln_lib::convert<T>((int)(keys[i] & 0xfffull));
  }
}

// native_dropout: element i is kept when its 53-bit uniform k * 2^-53 is >= p, i.e. when
// k >= threshold = ceil(p * 2^53) (the host's; 2^53 for p == 1 keeps none). Two elements per
// draw, each from a pair of words. out = x * keep * scale in fp32, as eager computes it (a
// dropped NaN or inf gives NaN). `out` or `mask` with null data is not written.
template <typename T>
__device__ void dropout(const KTensor& in, const KTensor& out, const KTensor& mask, i64 n,
                        u64 threshold, float scale, const State* state) {
  const State s = *state;
  const i64 draws = (n + 1) / 2;
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  bool* m = ktensor_ptr<bool>(mask);
  for (i64 q = blockIdx.x * (i64)blockDim.x + threadIdx.x; q < draws;
       q += (i64)gridDim.x * blockDim.x) {
    const Block4 b = draw(s, (u64)q);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const i64 i = 2 * q + j;
      if (i >= n) break;
      const u64 k = (((u64)b.w[2 * j + 1] << 32) | b.w[2 * j]) >> 11;
      const bool keep = k >= threshold;
      if (y) {
        const float v = to_float(x[kiln_lib::offset1<i64>(in, i)]) * (keep ? 1.0f : 0.0f) * scale;
        y[kiln_lib::offset1<i64>(out, i)] = from_float<T>(v);
      }
      if (m) m[kiln_lib::offset1<i64>(mask, i)] = keep;
    }
  }
}

// Moves the generator past the draws the launch before it used (one thread).
__device__ __forceinline__ void advance(State* state, u64 draws) {
  if (threadIdx.x == 0 && blockIdx.x == 0) state->offset += draws;
}

}  // namespace kiln_random
