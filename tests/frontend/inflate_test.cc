#include "frontend/inflate.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace kiln {
namespace {

using Bytes = std::vector<uint8_t>;

// The generators of tests/data/make_zip_npy_fixtures.py.
std::string lcg_text(size_t size) {
  static const char* const kWords[16] = {"tensor",  "graph", "kernel", "node",   "shape", "weight",
                                         "bias",    "relu",  "conv",   "matmul", "add",   "mul",
                                         "softmax", "layer", "norm",   "x"};
  uint64_t x = 12345;
  std::string out;
  while (out.size() < size) {
    x = (x * 1103515245 + 12345) % (uint64_t{1} << 31);
    out += kWords[(x >> 16) % 16];
    out += (x >> 8) % 10 == 0 ? '\n' : ' ';
  }
  out.resize(size);
  return out;
}

std::string pattern_bytes(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 7 + i / 251) % 256);
  return out;
}

Bytes fixture(const std::string& name) {
  std::ifstream in(std::string(KILN_TEST_DATA_DIR) + "/inflate/" + name, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  const std::string s = std::move(out).str();
  EXPECT_FALSE(s.empty()) << "missing fixture " << name;
  return Bytes(s.begin(), s.end());
}

std::string as_string(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Inflates and expects success.
std::string inflate_ok(const Bytes& compressed, size_t size) {
  Result<Bytes> result = inflate_raw(compressed, size);
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  return result.ok() ? as_string(*result) : "";
}

// Inflates and expects data_loss; returns the message.
std::string inflate_error(const Bytes& compressed, size_t size) {
  Result<Bytes> result = inflate_raw(compressed, size);
  EXPECT_FALSE(result.ok());
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), StatusCode::kDataLoss) << result.status().to_string();
  return result.status().message();
}

// Writes DEFLATE's bit order: header fields least-significant bit first, Huffman codes most
// significant bit first.
class BitWriter {
 public:
  void bits(uint32_t value, int count) {
    for (int i = 0; i < count; ++i) push((value >> i) & 1);
  }
  void code(uint32_t code, int length) {
    for (int i = length - 1; i >= 0; --i) push((code >> i) & 1);
  }
  // A symbol of the fixed literal/length code (RFC 1951 section 3.2.6).
  void fixed_symbol(int symbol) {
    if (symbol < 144) {
      code(0x30 + symbol, 8);
    } else if (symbol < 256) {
      code(0x190 + symbol - 144, 9);
    } else if (symbol < 280) {
      code(symbol - 256, 7);
    } else {
      code(0xC0 + symbol - 280, 8);
    }
  }
  void align() {
    while (used_ != 0) push(0);
  }
  void byte(uint8_t value) {
    align();
    bytes_.push_back(value);
  }
  Bytes finish() {
    align();
    return bytes_;
  }

 private:
  void push(uint32_t bit) {
    if (used_ == 0) bytes_.push_back(0);
    bytes_.back() |= static_cast<uint8_t>(bit << used_);
    used_ = (used_ + 1) % 8;
  }
  Bytes bytes_;
  int used_ = 0;
};

TEST(InflateTest, TinyStreamsFromZlib) {
  EXPECT_EQ(inflate_ok({0x03, 0x00}, 0), "");
  EXPECT_EQ(inflate_ok({0x4b, 0x04, 0x00}, 1), "a");
  EXPECT_EQ(
      inflate_ok({0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xd7, 0x51, 0xc8, 0x40, 0xa2, 0x14, 0x01}, 20),
      "hello, hello, hello!");
  // A match that overlaps its own output (distance 2, length 30).
  EXPECT_EQ(inflate_ok({0x4b, 0x4c, 0x4a, 0xc4, 0x0b, 0x01}, 32),
            "abababababababababababababababab");
  EXPECT_EQ(inflate_ok({0x01, 0x04, 0x00, 0xfb, 0xff, 'k', 'i', 'l', 'n'}, 4), "kiln");
  EXPECT_EQ(inflate_ok({0x01, 0x00, 0x00, 0xff, 0xff}, 0), "");
}

TEST(InflateTest, ZlibFixtures) {
  const std::string text = lcg_text(40000);
  EXPECT_EQ(inflate_ok(fixture("text_dynamic.deflate"), text.size()), text);
  EXPECT_EQ(inflate_ok(fixture("text_fixed.deflate"), text.size()), text);
  EXPECT_EQ(inflate_ok(fixture("text_rle.deflate"), 20000), text.substr(0, 20000));
  EXPECT_EQ(inflate_ok(fixture("text_stored.deflate"), 3000), text.substr(0, 3000));
  EXPECT_EQ(inflate_ok(fixture("text_multi_block.deflate"), text.size()), text);
  const std::string far = pattern_bytes(300) + std::string(32000, 'a') + pattern_bytes(300);
  EXPECT_EQ(inflate_ok(fixture("far_match.deflate"), far.size()), far);
}

TEST(InflateTest, IntoCallersBuffer) {
  const std::string text = lcg_text(40000);
  std::string out(text.size(), '\0');
  const Bytes compressed = fixture("text_dynamic.deflate");
  ASSERT_TRUE(inflate_raw_into(compressed, std::span<uint8_t>(
                                               reinterpret_cast<uint8_t*>(out.data()), out.size()))
                  .ok());
  EXPECT_EQ(out, text);
}

TEST(InflateTest, TrailingBytesAreIgnored) {
  Bytes compressed = {0x4b, 0x04, 0x00};
  compressed.insert(compressed.end(), {0xde, 0xad, 0xbe, 0xef});
  EXPECT_EQ(inflate_ok(compressed, 1), "a");
}

TEST(InflateTest, OutputSizeMustMatch) {
  const Bytes compressed = fixture("text_dynamic.deflate");
  EXPECT_EQ(inflate_error(compressed, 40001),
            "DEFLATE stream ends after 40000 bytes of output, expected 40001");
  EXPECT_EQ(inflate_error(compressed, 39999),
            "DEFLATE stream produces more than the expected 39999 bytes");
  EXPECT_EQ(inflate_error({0x01, 0x04, 0x00, 0xfb, 0xff, 'k', 'i', 'l', 'n'}, 3),
            "DEFLATE stream produces more than the expected 3 bytes");
  EXPECT_NE(inflate_error({0x4b, 0x04, 0x00}, 0).find("more than the expected 0"),
            std::string::npos);
}

TEST(InflateTest, ImpossibleSizeIsRefusedBeforeAllocating) {
  EXPECT_NE(inflate_error({0x03, 0x00}, size_t{1} << 40).find("cannot produce"), std::string::npos);
  EXPECT_EQ(inflate_size_bound(1), 1032u + 258u);
  EXPECT_EQ(inflate_size_bound(std::numeric_limits<size_t>::max()),
            std::numeric_limits<size_t>::max());
}

TEST(InflateTest, EmptyInputIsTruncated) {
  EXPECT_NE(inflate_error({}, 0).find("truncated"), std::string::npos);
}

TEST(InflateTest, BadBlockType) {
  BitWriter w;
  w.bits(1, 1);
  w.bits(3, 2);
  EXPECT_NE(inflate_error(w.finish(), 0).find("expected block type 0, 1 or 2, found 3"),
            std::string::npos);
}

TEST(InflateTest, StoredBlockErrors) {
  EXPECT_NE(inflate_error({0x01, 0x05, 0x00, 0x34, 0x12, 'a', 'b', 'c', 'd', 'e'}, 5)
                .find("stored block length 5 does not match its complement 4660"),
            std::string::npos);
  EXPECT_NE(inflate_error({0x01, 0x05, 0x00, 0xfa, 0xff, 'a', 'b'}, 5).find("truncated"),
            std::string::npos);
  EXPECT_NE(inflate_error({0x01, 0x05, 0x00}, 5).find("truncated"), std::string::npos);
  // Not final, and nothing follows.
  EXPECT_NE(inflate_error({0x00, 0x00, 0x00, 0xff, 0xff}, 0).find("truncated"), std::string::npos);
}

TEST(InflateTest, FixedBlockErrors) {
  {  // A match before any output.
    BitWriter w;
    w.bits(1, 1);
    w.bits(1, 2);
    w.fixed_symbol('a');
    w.fixed_symbol(257);  // length 3
    w.code(1, 5);         // distance 2
    w.fixed_symbol(256);
    EXPECT_NE(inflate_error(w.finish(), 4)
                  .find("distance 2 reaches before the start of the output (1 bytes written)"),
              std::string::npos);
  }
  {  // Literal/length symbols 286 and 287 exist in the fixed code but mean nothing.
    BitWriter w;
    w.bits(1, 1);
    w.bits(1, 2);
    w.fixed_symbol(286);
    EXPECT_NE(inflate_error(w.finish(), 4).find("invalid length symbol 286"), std::string::npos);
  }
  {  // So do distance symbols 30 and 31.
    BitWriter w;
    w.bits(1, 1);
    w.bits(1, 2);
    w.fixed_symbol('a');
    w.fixed_symbol(257);
    w.code(30, 5);
    EXPECT_NE(inflate_error(w.finish(), 4).find("invalid distance symbol 30"), std::string::npos);
  }
  {  // A match longer than the output left.
    BitWriter w;
    w.bits(1, 1);
    w.bits(1, 2);
    w.fixed_symbol('a');
    w.fixed_symbol(284);  // length 227..257, 5 extra bits
    w.bits(0, 5);
    w.code(0, 5);  // distance 1
    w.fixed_symbol(256);
    EXPECT_NE(inflate_error(w.finish(), 100).find("more than the expected 100"), std::string::npos);
  }
}

// A dynamic block header whose code-length code gives length 1 to symbols 18 and 0 (HCLEN = 0:
// only symbols 16, 17, 18 and 0 are listed). Symbol 0 is code 0, symbol 18 code 1.
void dynamic_header_with_18_and_0(BitWriter& w, int hlit, int hdist) {
  w.bits(1, 1);
  w.bits(2, 2);
  w.bits(hlit, 5);
  w.bits(hdist, 5);
  w.bits(0, 4);
  for (int length : {0, 0, 1, 1}) w.bits(length, 3);  // symbols 16, 17, 18, 0
}

TEST(InflateTest, DynamicBlockErrors) {
  {
    BitWriter w;
    w.bits(1, 1);
    w.bits(2, 2);
    w.bits(30, 5);  // 287 literal/length codes
    w.bits(0, 5);
    w.bits(0, 4);
    EXPECT_NE(inflate_error(w.finish(), 0).find("at most 286 literal/length"), std::string::npos);
  }
  {  // 19 code-length codes of length 1: over-subscribed.
    BitWriter w;
    w.bits(1, 1);
    w.bits(2, 2);
    w.bits(0, 5);
    w.bits(0, 5);
    w.bits(15, 4);
    for (int i = 0; i < 19; ++i) w.bits(1, 3);
    EXPECT_NE(inflate_error(w.finish(), 0).find("invalid code-length code"), std::string::npos);
  }
  {  // Code-length symbols 16 (code 1) and 0 (code 0); a repeat comes first.
    BitWriter w;
    w.bits(1, 1);
    w.bits(2, 2);
    w.bits(0, 5);
    w.bits(0, 5);
    w.bits(0, 4);
    for (int length : {1, 0, 0, 1}) w.bits(length, 3);
    w.code(1, 1);
    w.bits(0, 2);
    EXPECT_NE(inflate_error(w.finish(), 0).find("repeat with no previous length"),
              std::string::npos);
  }
  {  // 258 zero lengths: no end-of-block code.
    BitWriter w;
    dynamic_header_with_18_and_0(w, 0, 0);
    w.code(1, 1);
    w.bits(127, 7);  // 138 zeros
    w.code(1, 1);
    w.bits(109, 7);  // 120 zeros
    EXPECT_NE(inflate_error(w.finish(), 0).find("end-of-block code is missing"), std::string::npos);
  }
  {  // A repeat past the 258 lengths.
    BitWriter w;
    dynamic_header_with_18_and_0(w, 0, 0);
    w.code(1, 1);
    w.bits(127, 7);
    w.code(1, 1);
    w.bits(127, 7);
    EXPECT_NE(inflate_error(w.finish(), 0).find("runs past the last code"), std::string::npos);
  }
}

// A dynamic block whose literal/length code has only the end-of-block symbol, of length 1 (an
// incomplete code that RFC 1951 and zlib allow), and no distance codes. Then `first_code`.
Bytes only_end_of_block(uint32_t first_code) {
  BitWriter w;
  w.bits(1, 1);
  w.bits(2, 2);
  w.bits(0, 5);   // 257 literal/length codes
  w.bits(0, 5);   // 1 distance code
  w.bits(14, 4);  // 18 code-length lengths, up to symbol 1
  // Symbol order: 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1. Lengths: 18 -> 1, 0 -> 2, 1 -> 2,
  // so 18 is code 0, 0 is code 10 and 1 is code 11.
  for (int length : {0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}) w.bits(length, 3);
  w.code(0, 1);
  w.bits(127, 7);  // 138 zeros
  w.code(0, 1);
  w.bits(107, 7);  // 118 zeros: 256 in all
  w.code(3, 2);    // symbol 256 has length 1
  w.code(2, 2);    // the distance code has length 0
  w.code(first_code, 1);
  return w.finish();
}

TEST(InflateTest, IncompleteCodes) {
  EXPECT_EQ(inflate_ok(only_end_of_block(0), 0), "");
  EXPECT_NE(inflate_error(only_end_of_block(1), 0).find("invalid literal/length code"),
            std::string::npos);
}

TEST(InflateTest, EveryPrefixIsAnError) {
  for (const char* name : {"far_match.deflate", "text_stored.deflate"}) {
    const Bytes full = fixture(name);
    const size_t size = name[0] == 'f' ? 32600 : 3000;
    for (size_t n = 0; n < full.size(); ++n) {
      Result<Bytes> result = inflate_raw(std::span(full).first(n), size);
      ASSERT_FALSE(result.ok()) << name << " prefix " << n;
      EXPECT_EQ(result.status().code(), StatusCode::kDataLoss);
    }
  }
  const Bytes text = fixture("text_dynamic.deflate");
  for (size_t n = 0; n < text.size(); n += 97) {
    EXPECT_FALSE(inflate_raw(std::span(text).first(n), 40000).ok()) << n;
  }
}

TEST(InflateTest, CorruptStreamsFailCleanly) {
  std::mt19937 rng(1234);
  for (const char* name : {"text_dynamic.deflate", "text_fixed.deflate", "text_multi_block.deflate",
                           "far_match.deflate"}) {
    const Bytes original = fixture(name);
    const size_t size = name[0] == 'f' ? 32600 : 40000;
    for (int trial = 0; trial < 300; ++trial) {
      Bytes corrupt = original;
      // Early bytes hold the block headers and code tables: hit them more often.
      const size_t limit = trial % 2 == 0 ? std::min<size_t>(corrupt.size(), 64) : corrupt.size();
      for (int flips = 0; flips < 1 + trial % 3; ++flips) {
        corrupt[rng() % limit] ^= static_cast<uint8_t>(1 + rng() % 255);
      }
      Result<Bytes> result = inflate_raw(corrupt, size);
      if (!result.ok()) {
        EXPECT_EQ(result.status().code(), StatusCode::kDataLoss);
      } else {
        EXPECT_EQ(result->size(), size);
      }
    }
  }
  // Random bytes: whatever they decode to, nothing crashes.
  for (int trial = 0; trial < 2000; ++trial) {
    Bytes noise(1 + rng() % 200);
    for (uint8_t& b : noise) b = static_cast<uint8_t>(rng());
    (void)inflate_raw(noise, rng() % 2000).ok();
  }
}

}  // namespace
}  // namespace kiln
