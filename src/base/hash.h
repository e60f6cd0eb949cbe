// Fast non-cryptographic hashing for cache keys and content fingerprints: XXH64 (Yann Collet's
// published algorithm) and a 128-bit digest made of two independently seeded XXH64 lanes.
// Not for security: a cache key only has to make accidental collisions negligible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

uint64_t xxhash64(const void* data, size_t size, uint64_t seed = 0);

// Accumulates bytes and yields a 128-bit digest as 32 hex characters. Each add() is hashed on its
// own and folded in with its length, so ("ab", "c") and ("a", "bc") differ.
class Digest128 {
 public:
  Digest128& add(const void* data, size_t size);
  Digest128& add(std::string_view text) { return add(text.data(), text.size()); }
  Digest128& add_u64(uint64_t value) { return add(&value, sizeof(value)); }
  std::string hex() const;

 private:
  uint64_t lo_ = 0x6b696c6e00000001ull;  // "kiln"
  uint64_t hi_ = 0x6b696c6e00000002ull;
};

}  // namespace kiln
