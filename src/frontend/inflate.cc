#include "frontend/inflate.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

namespace kiln {

namespace {

constexpr int kMaxCodeLength = 15;
constexpr int kFastBits = 10;  // codes up to this long decode with one table look-up
constexpr int kNumLitLenSymbols = 288;
constexpr int kNumDistSymbols = 32;

constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                      15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint16_t kDistBase[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                    33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                    1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                    6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// The order in which a dynamic block lists the code-length alphabet's own code lengths.
constexpr uint8_t kCodeLengthOrder[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                          11, 4,  12, 3, 13, 2, 14, 1, 15};

// Reads the stream's bits least-significant first, holding up to 64 of them. Bits past the end of
// the input read as zero; callers check `count` before trusting them.
struct BitReader {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;       // bytes moved into `buffer` so far
  uint64_t buffer = 0;  // bits above `count` are the next input bits or zero
  unsigned count = 0;   // valid bits in `buffer`

  void refill() {
    if constexpr (std::endian::native == std::endian::little) {
      if (size - pos >= 8) {
        uint64_t word;
        std::memcpy(&word, data + pos, 8);
        buffer |= word << count;
        pos += (63 - count) >> 3;
        count |= 56;
        return;
      }
    }
    while (count < 56 && pos < size) {
      buffer |= static_cast<uint64_t>(data[pos++]) << count;
      count += 8;
    }
  }

  void consume(unsigned n) {
    buffer >>= n;
    count -= n;
  }

  // Reads n <= 32 bits; false if the input ends first.
  bool read(unsigned n, uint32_t* value) {
    if (count < n) {
      refill();
      if (count < n) return false;
    }
    *value = static_cast<uint32_t>(buffer & ((uint64_t{1} << n) - 1));
    consume(n);
    return true;
  }

  // Drops the bits up to the next byte boundary and gives back the whole bytes still buffered, so
  // that `pos` is the next unread byte.
  void align_to_byte() {
    consume(count & 7);
    pos -= count >> 3;
    buffer = 0;
    count = 0;
  }

  // The byte that holds the next unread bit, for error messages.
  size_t byte_offset() const { return pos - (count + 7) / 8; }
};

uint32_t reverse_bits(uint32_t code, int length) {
  uint32_t reversed = 0;
  for (int i = 0; i < length; ++i, code >>= 1) reversed = reversed << 1 | (code & 1);
  return reversed;
}

// A canonical Huffman code: a fast table indexed by the next kFastBits input bits, and the
// canonical counts and symbol order for the rare longer codes.
struct HuffmanCode {
  // symbol << 4 | length, or 0 where the code is longer than kFastBits or unused.
  uint16_t fast[1 << kFastBits];
  uint16_t count[kMaxCodeLength + 1];
  uint16_t symbols[kNumLitLenSymbols];  // in canonical order: by length, then by symbol
  int max_length = 0;                   // no code is longer: the slow path stops there

  // Returns false for an over-subscribed code or a disallowed incomplete one. As in zlib, a code
  // may be incomplete only when it has a single code of length 1 (or none at all), and never when
  // `allow_incomplete` is false.
  bool build(const uint8_t* lengths, int num_symbols, bool allow_incomplete) {
    std::fill(std::begin(count), std::end(count), 0);
    for (int i = 0; i < num_symbols; ++i) ++count[lengths[i]];
    count[0] = 0;
    max_length = 0;
    int left = 1;
    for (int len = 1; len <= kMaxCodeLength; ++len) {
      left = left * 2 - count[len];
      if (left < 0) return false;
      if (count[len] > 0) max_length = len;
    }
    if (left > 0 && max_length != 0 && (!allow_incomplete || max_length != 1)) return false;
    uint16_t offsets[kMaxCodeLength + 2];
    offsets[1] = 0;
    for (int len = 1; len <= kMaxCodeLength; ++len) offsets[len + 1] = offsets[len] + count[len];
    for (int i = 0; i < num_symbols; ++i) {
      if (lengths[i] != 0) symbols[offsets[lengths[i]]++] = static_cast<uint16_t>(i);
    }
    std::fill(std::begin(fast), std::end(fast), 0);
    uint32_t code = 0;
    int index = 0;
    for (int len = 1; len <= kFastBits; ++len) {
      for (int k = 0; k < count[len]; ++k, ++code, ++index) {
        // Huffman codes are sent most-significant bit first, so the table index is reversed.
        const uint32_t reversed = reverse_bits(code, len);
        for (uint32_t i = reversed; i < (1u << kFastBits); i += 1u << len) {
          fast[i] = static_cast<uint16_t>(symbols[index] << 4 | len);
        }
      }
      code <<= 1;
    }
    return true;
  }

  // Decodes one symbol: >= 0 is the symbol, -1 an unused code, -2 the input ending mid-code.
  int decode(BitReader& bits) const {
    if (bits.count < kMaxCodeLength) bits.refill();
    const uint16_t entry = fast[bits.buffer & ((1u << kFastBits) - 1)];
    if (entry != 0) {
      const unsigned length = entry & 15;
      if (length > bits.count) return -2;
      bits.consume(length);
      return entry >> 4;
    }
    // Walk the canonical code one bit at a time (RFC 1951 section 3.2.2).
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= max_length; ++len) {
      if (static_cast<unsigned>(len) > bits.count) return -2;
      code |= static_cast<int>((bits.buffer >> (len - 1)) & 1);
      if (code - count[len] < first) {
        bits.consume(len);
        return symbols[index + (code - first)];
      }
      index += count[len];
      first = (first + count[len]) << 1;
      code <<= 1;
    }
    return -1;
  }
};

class Inflater {
 public:
  Inflater(std::span<const uint8_t> compressed, std::span<uint8_t> out)
      : bits_{compressed.data(), compressed.size()}, out_(out) {}

  Status run() {
    uint32_t final_block = 0;
    while (final_block == 0) {
      uint32_t type;
      if (!bits_.read(1, &final_block) || !bits_.read(2, &type)) return truncated();
      switch (type) {
        case 0: KILN_RETURN_IF_ERROR(stored_block()); break;
        case 1: KILN_RETURN_IF_ERROR(fixed_block()); break;
        case 2: KILN_RETURN_IF_ERROR(dynamic_block()); break;
        default: return corrupt("expected block type 0, 1 or 2, found 3");
      }
    }
    if (written_ != out_.size()) {
      return data_loss("DEFLATE stream ends after ", written_, " bytes of output, expected ",
                       out_.size());
    }
    return ok_status();
  }

 private:
  Status truncated() const {
    return data_loss("DEFLATE stream is truncated: the input (", bits_.size,
                     " bytes) ends before the final block does");
  }
  Status corrupt(std::string_view what) const {
    return data_loss("DEFLATE stream is corrupt at byte ", bits_.byte_offset(), ": ", what);
  }
  Status too_long() const {
    return data_loss("DEFLATE stream produces more than the expected ", out_.size(), " bytes");
  }

  Status stored_block() {
    bits_.align_to_byte();
    const size_t pos = bits_.pos;
    if (bits_.size - pos < 4) return truncated();
    const uint8_t* header = bits_.data + pos;
    const uint32_t length = header[0] | header[1] << 8;
    const uint32_t complement = header[2] | header[3] << 8;
    if ((length ^ 0xFFFF) != complement) {
      return corrupt(
          str_cat("stored block length ", length, " does not match its complement ", complement));
    }
    if (bits_.size - pos - 4 < length) return truncated();
    if (out_.size() - written_ < length) return too_long();
    if (length > 0) std::memcpy(out_.data() + written_, header + 4, length);
    written_ += length;
    bits_.pos = pos + 4 + length;
    return ok_status();
  }

  Status fixed_block() {
    if (!fixed_ready_) {
      uint8_t lengths[kNumLitLenSymbols + kNumDistSymbols];
      std::fill(lengths, lengths + 144, 8);
      std::fill(lengths + 144, lengths + 256, 9);
      std::fill(lengths + 256, lengths + 280, 7);
      std::fill(lengths + 280, lengths + 288, 8);
      std::fill(lengths + 288, lengths + 320, 5);
      lit_.build(lengths, kNumLitLenSymbols, false);
      dist_.build(lengths + kNumLitLenSymbols, kNumDistSymbols, false);
      fixed_ready_ = true;
    }
    return codes();
  }

  Status dynamic_block() {
    fixed_ready_ = false;  // lit_ and dist_ are about to hold this block's codes
    uint32_t hlit, hdist, hclen;
    if (!bits_.read(5, &hlit) || !bits_.read(5, &hdist) || !bits_.read(4, &hclen)) {
      return truncated();
    }
    const uint32_t num_lit = hlit + 257, num_dist = hdist + 1, num_code_lengths = hclen + 4;
    if (num_lit > 286 || num_dist > 30) {
      return corrupt(str_cat("expected at most 286 literal/length and 30 distance codes, found ",
                             num_lit, " and ", num_dist));
    }
    uint8_t code_length_lengths[19] = {};
    for (uint32_t i = 0; i < num_code_lengths; ++i) {
      uint32_t length;
      if (!bits_.read(3, &length)) return truncated();
      code_length_lengths[kCodeLengthOrder[i]] = static_cast<uint8_t>(length);
    }
    HuffmanCode& code_length_code = lit_;  // reused: lit_ is rebuilt below
    if (!code_length_code.build(code_length_lengths, 19, false)) {
      return corrupt("invalid code-length code");
    }
    uint8_t lengths[kNumLitLenSymbols + kNumDistSymbols] = {};
    const uint32_t total = num_lit + num_dist;
    for (uint32_t i = 0; i < total;) {
      const int symbol = code_length_code.decode(bits_);
      if (symbol == -2) return truncated();
      if (symbol < 0) return corrupt("invalid code in the code lengths");
      if (symbol < 16) {
        lengths[i++] = static_cast<uint8_t>(symbol);
        continue;
      }
      uint32_t repeat;
      uint8_t value = 0;
      if (symbol == 16) {
        if (i == 0) return corrupt("code length repeat with no previous length");
        value = lengths[i - 1];
        if (!bits_.read(2, &repeat)) return truncated();
        repeat += 3;
      } else if (symbol == 17) {
        if (!bits_.read(3, &repeat)) return truncated();
        repeat += 3;
      } else {
        if (!bits_.read(7, &repeat)) return truncated();
        repeat += 11;
      }
      if (repeat > total - i) return corrupt("code length repeat runs past the last code");
      std::fill(lengths + i, lengths + i + repeat, value);
      i += repeat;
    }
    if (lengths[256] == 0) return corrupt("the end-of-block code is missing");
    if (!lit_.build(lengths, static_cast<int>(num_lit), true)) {
      return corrupt("invalid literal/length code");
    }
    if (!dist_.build(lengths + num_lit, static_cast<int>(num_dist), true)) {
      return corrupt("invalid distance code");
    }
    return codes();
  }

  // Decodes literals and matches up to the end-of-block symbol.
  Status codes() {
    uint8_t* const out = out_.data();
    const size_t capacity = out_.size();
    size_t written = written_;
    while (true) {
      const int symbol = lit_.decode(bits_);
      if (symbol < 256) {
        if (symbol < 0) {
          written_ = written;
          return symbol == -2 ? truncated() : corrupt("invalid literal/length code");
        }
        if (written == capacity) return too_long();
        out[written++] = static_cast<uint8_t>(symbol);
        continue;
      }
      if (symbol == 256) break;
      written_ = written;
      const int length_index = symbol - 257;
      if (length_index >= 29) return corrupt(str_cat("invalid length symbol ", symbol));
      uint32_t extra;
      if (!bits_.read(kLengthExtra[length_index], &extra)) return truncated();
      const size_t length = kLengthBase[length_index] + extra;
      const int dist_symbol = dist_.decode(bits_);
      if (dist_symbol == -2) return truncated();
      if (dist_symbol < 0) return corrupt("invalid distance code");
      if (dist_symbol >= 30) return corrupt(str_cat("invalid distance symbol ", dist_symbol));
      if (!bits_.read(kDistExtra[dist_symbol], &extra)) return truncated();
      const size_t distance = kDistBase[dist_symbol] + extra;
      if (distance > written) {
        return corrupt(str_cat("distance ", distance, " reaches before the start of the output (",
                               written, " bytes written)"));
      }
      if (length > capacity - written) return too_long();
      uint8_t* dst = out + written;
      const uint8_t* src = dst - distance;
      if (distance >= length) {
        std::memcpy(dst, src, length);
      } else {
        for (size_t i = 0; i < length; ++i) dst[i] = src[i];  // overlapping: repeats the pattern
      }
      written += length;
    }
    written_ = written;
    return ok_status();
  }

  BitReader bits_;
  std::span<uint8_t> out_;
  size_t written_ = 0;
  bool fixed_ready_ = false;
  HuffmanCode lit_;
  HuffmanCode dist_;
};

}  // namespace

size_t inflate_size_bound(size_t compressed_size) {
  // At best one byte holds four 258-byte matches (1-bit length and distance codes).
  constexpr size_t kMaxRatio = 4 * 258;
  if (compressed_size > (std::numeric_limits<size_t>::max() - 258) / kMaxRatio) {
    return std::numeric_limits<size_t>::max();
  }
  return compressed_size * kMaxRatio + 258;
}

Status inflate_raw_into(std::span<const uint8_t> compressed, std::span<uint8_t> out) {
  if (out.size() > inflate_size_bound(compressed.size())) {
    return data_loss("DEFLATE stream of ", compressed.size(), " bytes cannot produce the expected ",
                     out.size(), " bytes");
  }
  return Inflater(compressed, out).run();
}

Result<std::vector<uint8_t>> inflate_raw(std::span<const uint8_t> compressed,
                                         size_t expected_size) {
  if (expected_size > inflate_size_bound(compressed.size())) {
    return data_loss("DEFLATE stream of ", compressed.size(), " bytes cannot produce the expected ",
                     expected_size, " bytes");
  }
  std::vector<uint8_t> out(expected_size);
  KILN_RETURN_IF_ERROR(Inflater(compressed, out).run());
  return out;
}

}  // namespace kiln
